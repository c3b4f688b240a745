"""Training checkpoints of a stage in flight: an attempt cut off mid-stage resumes from the last
checkpoint, and ends with exactly the numbers of an attempt that was never interrupted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from orchestrator.grid import expand
from orchestrator.results import load
from orchestrator.spec import load_sweep
from orchestrator.train.progress import StageProgress
from orchestrator.trial import run_trial

KEY = ["stage", "step", "condition", "group", "metric"]


class ProcessDied(BaseException):
    """Stands for the trial's process dying: nothing in the trial catches it."""


def small_trial(write_spec: Any, smoke_raw: dict[str, Any], technique: str, **safety: Any) -> Any:
    smoke_raw["axes"].update(cot=["distilled"], technique=[technique])
    smoke_raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    smoke_raw["backdoor"]["steps"] = 5
    smoke_raw["data"].update(n_eval=4, n_safety=32)
    smoke_raw["safety"].update(safety)
    [trial] = expand(load_sweep(write_spec(smoke_raw)))
    return trial


def die_at(stage: str, step: int) -> Any:
    def report(row: dict[str, Any]) -> None:
        if row.get("stage") == stage and row.get("step") == step:
            raise ProcessDied(f"{stage} step {step}")
    return report


def metrics(storage: Path) -> pd.DataFrame:
    rows = load(storage, "metrics")[[*KEY, "value"]]
    return rows.sort_values(KEY).reset_index(drop=True)


def test_a_safety_stage_cut_off_mid_training_resumes_and_matches_an_uninterrupted_run(
    tmp_path: Path, write_spec: Any, smoke_raw: dict[str, Any],
) -> None:
    trial = small_trial(write_spec, smoke_raw, "sft", steps=12, eval_every=4)
    run_trial(trial, tmp_path / "straight", checkpoint_every=5)

    storage = tmp_path / "cut"
    with pytest.raises(ProcessDied):  # evaluations at 0, 4 and 8 made; checkpoint-5 committed
        run_trial(trial, storage, report=die_at("safety-eval", 8), checkpoint_every=5)
    [progress] = (storage / "progress" / "safety").iterdir()
    [run] = [p for p in progress.iterdir() if p.is_dir()]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-5"]
    assert (run / "checkpoint-5" / "_COMPLETE").exists() and (progress / "evaluations.json").exists()

    evaluated: list[int] = []
    outcome = run_trial(trial, storage, checkpoint_every=5,
                        report=lambda row: evaluated.append(row["step"]) if row.get("stage") == "safety-eval" else None)
    assert outcome.status == "completed"
    [safety] = [s for s in outcome.stages if s["stage"] == "safety"]
    assert [r["step"] for r in safety["resumed"]] == [5]
    assert evaluated == [12]  # steps 0, 4 and 8 came from the first attempt; only the end is new
    pd.testing.assert_frame_equal(metrics(storage), metrics(tmp_path / "straight"))
    assert not (storage / "progress" / "safety").exists() or not any((storage / "progress" / "safety").iterdir())
    assert not list((storage / "cache").rglob("checkpoint-*"))  # the cache keeps the finished stage only


def test_runs_of_one_stage_never_resume_from_each_other(storage: str) -> None:
    """On a local folder and on s3:// (checkpoints written on this node's disk, uploaded)."""
    first = StageProgress(storage, every=5)
    a, b = first.run("sft", {"lr": 1}), first.run("sft", {"lr": 1})
    assert a.store.uri != b.store.uri  # same inputs, second run of the stage: its own folder
    for step in (5, 10):
        (a.output_dir / f"checkpoint-{step}").mkdir(parents=True)
        (a.output_dir / f"checkpoint-{step}" / "weights").write_text(f"step {step}")
        a.commit(step)
    assert sorted(name.partition("/")[0] for name in a.store.files("")) == ["checkpoint-10"] * 2
    (a.output_dir / "checkpoint-15").mkdir()  # saved but never committed: not resumed from
    again = StageProgress(storage, every=5)
    resumed, fresh = again.run("sft", {"lr": 1}), again.run("sft", {"lr": 1})
    assert fresh.latest_step() is None and again.resumed == [{"run": a.store.uri.rsplit("/", 1)[1], "step": 10}]
    shutil.rmtree(a.node_folder, ignore_errors=True)  # another node: nothing on its disk yet
    latest = resumed.latest()
    assert latest is not None and (latest / "weights").read_text() == "step 10"
    again.clear()
    assert again.store.files("") == [] and not a.node_folder.exists()
