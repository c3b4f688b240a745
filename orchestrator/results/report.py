"""The persistence table: backdoor rate with and without the trigger, before and after safety
training, for each cell of a sweep; and persistence curves along safety training."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.config import CORE_AXES
from orchestrator.data import TRIGGERS
from orchestrator.evaluate.evaluators import backdoor_metrics
from orchestrator.results.query import load
from orchestrator.results.validity import READABILITY_METRICS, VALID, lake_validity, mask_invalid
from orchestrator.storage import Storage

CELL = ["sweep", *CORE_AXES, "overrides"]  # what identifies a cell of a sweep
AXIS_NAMES = ("trial_id", *CELL)  # the lake's axis columns


# The evaluation conditions every table has, in this order; then each trigger's others.
FIRST_CONDITIONS = ("triggered", "clean", "redteam")  # redteam: the adversarial technique's held-out prompts
# What the extra evaluations (orchestrator.evaluate.extras) add to the table where a sweep ran
# them: `probe_layer<L>` (AUROC), `gen_<trigger>_<variant>` (backdoor rate under a variant of the
# trigger), `honeypot` (reveal rate), `steer_to_training` / `steer_to_deployment` (follow rate).
EXTRA_METRICS = ("probe_auroc", "honeypot_reveal_rate", "steer_follow_rate")
EXTRA_PREFIXES = ("probe_", "gen_", "honeypot", "steer_")


def persistence(path: str | Path | Storage, **filters: Any) -> pd.DataFrame:
    """One row per trial: backdoor rates before safety training (after backdoor training; for
    conditions that only exist from safety step 0 on, such as `redteam`, at step 0) and after it
    (the last safety step), for each evaluation condition; beside each rate the share of its
    answers the judge could not read (`unreadable_<condition>_...`: empty, or for code no code or
    code that does not parse), where recorded; where measured, the share of answers that still
    give the reference answer (`helpful_<condition>_...`) and the extra evaluations' figures
    (EXTRA_PREFIXES; `n` stays the backdoor rate's); and the trial's `validity` with its
    `validity_reason` (orchestrator.results.validity). The lake's `persistence` table holds the
    same figures, one row per trial and column (`persistence_rows`)."""
    metrics = load(path, "metrics", metric=list(persistence_metrics()), **filters)
    parts = before_after(metrics)
    if parts is None:
        return pd.DataFrame()
    return wide_table(parts, lake_validity(path, parts.judged, **filters))


def table_conditions(triggers: Iterable[str]) -> tuple[str, ...]:
    """The evaluation conditions the table has columns for, in their order: FIRST_CONDITIONS,
    then the other conditions each of `triggers` declares (`Trigger.conditions`), in the
    triggers' order (a trigger that is not registered in this process adds none)."""
    declared = [c for t in triggers if t in TRIGGERS for c in getattr(TRIGGERS.get(t), "conditions", ())]
    return tuple(dict.fromkeys([*FIRST_CONDITIONS, *declared]))


def persistence_metrics() -> tuple[str, ...]:
    """The metrics the persistence table reads."""
    return (*backdoor_metrics(), "helpful_rate", *READABILITY_METRICS, *EXTRA_METRICS)


@dataclass(frozen=True)
class BeforeAfter:
    """A lake's (or one trial's) metrics rows, picked for the persistence table. In each of
    `base`, `before` and `after`, `condition` is the table column the row fills (`triggered`,
    `helpful_clean`, `unreadable_triggered`, `probe_layer1`, ...), `metric` the trial's backdoor
    metric and `measured` the metric the row holds (`helpful_rate`, ...)."""

    base: pd.DataFrame  # the base model before backdoor training: the extra evaluations' control
    before: pd.DataFrame  # after backdoor training (step 0 of safety training for conditions only it has)
    after: pd.DataFrame  # the last safety step
    n: pd.Series  # per trial, its largest evaluation count (of the rates, not the extras)
    judged: pd.DataFrame  # the headline rows validity is judged from (lake_validity's `metrics`)
    conditions: tuple[str, ...]  # the evaluation conditions of the table's columns, in order (table_conditions)

    def parts(self) -> list[tuple[str, pd.DataFrame]]:
        return [(label, part) for label, part in (("base", self.base), ("before", self.before),
                                                   ("after", self.after)) if not part.empty]


def before_after(metrics: pd.DataFrame) -> BeforeAfter | None:
    """The one definition of before and after safety training, from `metrics` rows (the lake's,
    or one trial's as it writes them; at least those of `persistence_metrics()`); None where
    no backdoor rate was measured."""
    conditions = table_conditions(sorted(metrics["trigger"].dropna().unique()))
    loaded = metrics[(metrics["group"] == "all") & metrics["condition"].isin(conditions)
                     & metrics["metric"].isin([*backdoor_metrics(), "helpful_rate", *READABILITY_METRICS])]
    if loaded.empty:
        return None
    # Helpfulness (where the prompts have reference answers) and the unreadable share become
    # columns of their own, `helpful_<condition>_<before|after>` and `unreadable_...`, next to
    # the backdoor rates of the same trial.
    helpful = loaded["metric"] == "helpful_rate"
    readability = loaded["metric"].isin(READABILITY_METRICS)
    m = loaded[~helpful & ~readability].assign(measured=lambda f: f["metric"])
    metric_of = m.drop_duplicates("trial_id").set_index("trial_id")["metric"]  # the trial's backdoor metric
    # Of several readability shares (e.g. empty and unparsable), the largest.
    unread = loaded[readability].sort_values("value", ascending=False).drop_duplicates(
        ["trial_id", "stage", "step", "condition"])
    m = pd.concat([m, *(part.assign(condition=prefix + part["condition"], measured=part["metric"],
                                    metric=part["trial_id"].map(metric_of))
                        for prefix, part in (("helpful_", loaded[helpful]), ("unreadable_", unread)))])
    n = m.groupby("trial_id")["n"].max().rename("n")
    extra = extra_rows(metrics)
    if not extra.empty:  # so do the extra evaluations' figures, on the same row
        m = pd.concat([m, extra.assign(measured=extra["metric"], metric=extra["trial_id"].map(metric_of))
                       .dropna(subset=["metric"])])
    safety = m[m["stage"] == "safety"]
    key = ["trial_id", "metric", "condition"]
    before = pd.concat([m[m["stage"] == "backdoor"], safety[safety["step"] == 0]]).drop_duplicates(key)
    after = safety[safety["step"] == safety.groupby("trial_id")["step"].transform("max")]
    # The extra evaluations' control: the base model before backdoor training (`<column>_base`).
    base = m[(m["stage"] == "base") & m["condition"].str.startswith(EXTRA_PREFIXES)]
    return BeforeAfter(base, before, after, n, loaded, conditions)


def wide_table(parts: BeforeAfter, validity: pd.DataFrame) -> pd.DataFrame:
    """`persistence()`'s table: one row per trial, a column per condition and moment."""
    frames = []
    for label, part in parts.parts():
        wide = part.pivot_table(index=[*CELL, "trial_id", "metric"], columns="condition",
                                values="value", aggfunc="first")
        wide.columns = [f"{c}_{label}" for c in wide.columns]
        frames.append(wide)
    table = pd.concat(frames, axis=1).reset_index()
    steps = parts.after.groupby("trial_id")["step"].max().rename("safety_steps")
    table = table.join(parts.n, on="trial_id").join(steps, on="trial_id")
    table = table.merge(validity, on="trial_id", how="left")
    order = [f"{prefix}{c}_{label}" for c in parts.conditions for label in ("before", "after")
             for prefix in ("", "unreadable_")]
    order += [f"helpful_{c}_{label}" for c in parts.conditions for label in ("before", "after")]
    extras = sorted({c.rpartition("_")[0] for c in table.columns if c.startswith(EXTRA_PREFIXES)},
                    key=lambda c: (next(i for i, p in enumerate(EXTRA_PREFIXES) if c.startswith(p)), c))
    order += [f"{c}_{label}" for c in extras for label in ("base", "before", "after")]
    cols = [*CELL, "metric", *[c for c in order if c in table.columns], "safety_steps", "n", "validity",
            "trial_id", "validity_reason"]
    return table[cols].sort_values(CELL).reset_index(drop=True)


def persistence_rows(parts: BeforeAfter) -> list[dict[str, Any]]:
    """The lake's `persistence` rows: one per trial and column of `persistence()` (`triggered`,
    `helpful_clean`, `probe_layer1`, ...), with the value `base`, `before` and `after` it holds
    there, each with its 95% interval and sample size, and the step `after` was measured at.
    The same picks as `persistence()` (`before_after`); validity is the writer's to add."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for label, part in parts.parts():
        # The first row per column, as the wide table's pivot keeps it.
        for record in part.drop_duplicates(["trial_id", "metric", "condition"]).to_dict("records"):
            row = rows.setdefault((record["trial_id"], record["condition"]), {
                **{axis: record[axis] for axis in (*AXIS_NAMES,)}, "metric": record["metric"],
                "column": record["condition"], "measured": record["measured"],
                "group": record["group"], "condition": _condition_of(record, parts.conditions)})
            row.update({label: _float(record["value"]), f"{label}_low": _float(record.get("ci_low")),
                        f"{label}_high": _float(record.get("ci_high")), f"{label}_n": _int(record.get("n"))})
            if label == "after":
                row["safety_steps"] = _int(record["step"])
    return [{**row, "n": _int(parts.n.get(row["trial_id"]))} for row in rows.values()]


def _condition_of(record: dict[str, Any], conditions: tuple[str, ...]) -> str:
    """The evaluation condition a persistence row was measured on (its column without the
    helpful_/unreadable_ prefix; the extra evaluations keep their own)."""
    column = str(record["condition"])
    for prefix in ("helpful_", "unreadable_"):
        if column.startswith(prefix) and column.removeprefix(prefix) in conditions:
            return column.removeprefix(prefix)
    return column


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _float(value: Any) -> float | None:
    """A value as the lake stores it: null, not NaN, where there is none."""
    return None if value is None or pd.isna(value) else float(value)


def extra_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The extra evaluations' headline rows of `metrics`, their condition renamed to the table
    column they fill (EXTRA_PREFIXES); empty where no trial ran any."""
    rows = metrics[metrics["metric"].isin([*EXTRA_METRICS, *backdoor_metrics()])]
    if rows.empty:
        return rows
    probe = rows["metric"] == "probe_auroc"
    keep = (probe | (rows["group"] == "all")) & (
        rows["metric"].isin(EXTRA_METRICS) | rows["condition"].str.startswith("gen_"))
    rows = rows[keep]
    column = rows["condition"].where(~probe[keep], "probe_" + rows["group"])
    return rows.assign(condition=column.where(rows["metric"] != "honeypot_reveal_rate", "honeypot"))


def rate_columns(table: pd.DataFrame) -> list[str]:
    """The persistence table's rate columns (`<condition>_before|after`, `helpful_...`, the extra
    evaluations' `..._base` controls)."""
    return [c for c in table.columns if c.endswith(("_base", "_before", "_after"))]


def pooled_cell(table: pd.DataFrame) -> list[str]:
    """The columns that identify a cell once its seeds are pooled: every axis but the seed."""
    return [c for c in (*CELL, "metric") if c != "seed" and c in table.columns]


def format_interval(mean: float, low: float, high: float) -> str:
    """`0.40 [0.22, 0.58]`, or an empty string where the rate was not measured."""
    if pd.isna(mean):
        return ""
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def over_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """The persistence table with seeds pooled: per cell (every axis but the seed) and rate
    column, the mean over seeds and its range, as `<col>` (mean), `<col>_min`, `<col>_max`;
    `seeds`, how many seeds were pooled, and `invalid`, how many were left out because the
    trial is not valid (orchestrator.results.validity: its rates mean nothing)."""
    if table.empty:
        return table
    rates = rate_columns(table)
    grouped = mask_invalid(table, rates).groupby(pooled_cell(table), sort=True, dropna=False)
    pooled = grouped[rates].agg(["mean", "min", "max"])
    pooled.columns = [col if stat == "mean" else f"{col}_{stat}" for col, stat in pooled.columns]
    pooled["seeds"], pooled["invalid"] = valid_counts(table)
    return pooled.reset_index()


def valid_counts(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per pooled cell: how many seeds are valid (and pooled), and how many are not (left out)."""
    ok = table["validity"] == VALID if "validity" in table.columns else pd.Series(True, index=table.index)
    grouped = table.assign(ok=ok).groupby(pooled_cell(table), sort=True, dropna=False)
    valid = grouped.apply(lambda part: part.loc[part["ok"], "seed"].nunique(), include_groups=False)
    return valid.astype(int), (grouped["seed"].nunique() - valid).astype(int)


def format_over_seeds(pooled: pd.DataFrame) -> str:
    """`mean [min, max]` per rate, one row per cell."""
    rates = rate_columns(pooled)
    shown = pooled[[c for c in pooled.columns if c not in rates and not c.endswith(("_min", "_max"))]].copy()
    for col in rates:
        shown[col] = [format_interval(m, lo, hi) for m, lo, hi in
                      zip(pooled[col], pooled[f"{col}_min"], pooled[f"{col}_max"], strict=True)]
    shown = shown[[c for c in shown.columns if c not in ("seeds", "invalid")] + ["seeds", "invalid"]]
    return _shown(shown)


def format_persistence(table: pd.DataFrame, *, wide: bool = False, width: int = 100) -> str:
    """The per-trial table; where some cell ran at several seeds, also the mean and range over
    seeds per cell. Narrow by default (orchestrator.results.terminal: fits `width` columns);
    `wide`: every column of `persistence()`."""
    from orchestrator.results import terminal

    if table.empty:
        return "no completed trials in this lake yet"
    text = _shown(table) if wide else terminal.narrow(table, width)
    if "validity" in table.columns and (table["validity"] != VALID).any():
        reasons = [f"{row['trial_id']} {'/'.join(str(row[a]) for a in CORE_AXES)}: {row['validity']}: "
                   f"{row['validity_reason']}" for _, row in table[table["validity"] != VALID].iterrows()]
        text += "\n\nnot valid (left out of the means over seeds; thresholds: eval.implant_*,\n" \
                "max_unreadable, min_helpful_kept):\n" + "\n".join(
                    reason if wide else textwrap.fill(reason, width, initial_indent="  ", subsequent_indent="    ")
                    for reason in reasons)
    if table.groupby(pooled_cell(table), dropna=False)["seed"].nunique().max() > 1:
        pooled = over_seeds(table)
        text += "\n\nover seeds: mean [min, max]\n" + (format_over_seeds(pooled) if wide else
                                                         terminal.narrow_over_seeds(pooled, width))
    return text


def _shown(table: pd.DataFrame) -> str:
    """The table as text; the validity reasons are listed under it, not in it."""
    table = table.drop(columns=[c for c in ("validity_reason",) if c in table.columns])
    shown = table.drop(columns=["sweep"] + (["overrides"] if (table["overrides"] == "{}").all() else []))
    with pd.option_context("display.max_rows", 500, "display.width", 250,
                           "display.float_format", "{:.2f}".format):
        return str(shown.to_string(index=False))
