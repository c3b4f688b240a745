"""`python -m benchmarks --quick` (the harness, not its figures: no timing is asserted): every
measurement runs and has its rows in the printed table and in the report, the stage and the hand
loop compute the same losses, and the orchestration table reads a lake's trials rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.orchestration import sweep_overhead, union
from orchestrator.results import write_trial

ROWS = [
    "training: stage vs hand loop, per marginal step (speed)",
    "training: stage fixed cost, share of a 200-step stage",
    "training: stage vs hand loop, whole run of 4 steps (speed)",
    "training: stage losses vs hand loop, max abs difference over first 4 steps",
    "training: stage achieved FLOP/s / matmul peak",
    "training: hand loop achieved FLOP/s / matmul peak",
    "training: per step, gradient checkpointing on / current",
    "training: per step, TRL's fused LM head / current (model's own head on CPU)",
    "training (SmolLM2-135M, LoRA): stage vs hand loop, per marginal step (speed)",
    "training (SmolLM2-135M, LoRA): TRL's fused LM head / current, whole 2-step stage",
    "evaluation: batched generate vs one prompt at a time (answers/s)",
    "evaluation: oracle in memory vs bandit's file API (samples/s)",
    "scale: lake write per trial, 10 trials vs 3",
    "orchestration: overhead, share of the sweep's wall time",
    "orchestration: backdoor trainings saved by the stage cache",
]


def sweep_lake(storage: Path) -> None:
    """Two trials of one sweep, 10 s apart: the second found the first's backdoor in the cache."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (cached, backdoor_s) in enumerate([(False, 60.0), (True, 0.5)]):
        started = start + timedelta(seconds=110 * i)
        stages = [{"stage": "tokenizer", "key": "tok", "seconds": 2.0, "cached": bool(i)},
                  {"stage": "backdoor", "key": "bd", "seconds": backdoor_s, "cached": cached},
                  {"stage": "eval", "key": f"e{i}", "seconds": 10.0, "cached": False},
                  {"stage": "safety", "key": f"s{i}", "seconds": 20.0, "cached": False}]
        row = {"trial_id": f"t{i}", "sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft",
               "scale": "tiny-xs", "seed": 0, "overrides": {}, "status": "completed", "started_at": started,
               "finished_at": started + timedelta(seconds=100), "wall_seconds": 100.0,
               "stages": stages, "backdoor_cached": cached}
        write_trial(storage, "s", "deployment", f"t{i}", {"trials": [row]})


def test_orchestration_figures(tmp_path: Path) -> None:
    sweep_lake(tmp_path)
    found = sweep_overhead(tmp_path / "lake")
    assert found["span"] == 210 and found["busy"] == 200 and found["gaps"] == 10
    assert found["stage_seconds"] == 60 + 0.5 + 2 * (10 + 20)  # the nested tokenizer is not counted again
    assert found["backdoors_saved"] == 1 and found["backdoor_seconds_saved"] == 60
    assert found["overhead"] == pytest.approx(1 - (120.5 / 200) * (200 / 210))
    assert union([(0, 2), (1, 3), (5, 6)]) == 4
    assert json.dumps(found)  # plain figures


def test_quick_run_has_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_lake(tmp_path / "sweep")
    out = tmp_path / "BENCHMARKS.md"
    sections = main(["--quick", "--out", str(out), "--lake", str(tmp_path / "sweep")])
    printed = capsys.readouterr().out
    ratios = printed[printed.index("## Ratios"):]  # the table comes last
    written = out.read_text()
    for name in ROWS:
        assert name in ratios and name in written, name
    assert [s.title for s in sections] == ["Training", "Training with LoRA (SmolLM2-135M)", "Evaluation", "Scale",
                                               "Orchestration"]
    training = sections[0].data
    assert len(training["stage_losses"]) == len(training["hand_losses"]) == 4
    assert training["diff_first"] <= 1e-5  # the hand loop computes what the stage computes
    for heading in ("## Machine", "load average", "git commit", "torch threads"):
        assert heading in written
