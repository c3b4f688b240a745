"""Model tasks (orchestrator/runtime/gpu_tasks.py) on a real local Ray: a task whose process
dies runs again; an error it raises is the caller's at once, not retried."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.storage import as_storage


def die_once(marker: str) -> str:
    """Kills its own process the first time (as a lost node would), answers the second."""
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    return "answered"


def fail(marker: str) -> None:
    with open(marker, "a") as attempts:
        attempts.write("x")
    raise ValueError("the function's own error")


def test_a_dead_task_runs_again_and_an_error_does_not(ray_local: None, tmp_path: Path) -> None:
    from orchestrator.runtime.gpu_tasks import RayTasks

    tasks = RayTasks({"CPU": 0.0}, as_storage(tmp_path / "scratch"), "t")
    assert tasks.run("die-once", die_once, str(tmp_path / "died")) == "answered"
    assert [run["function"] for run in tasks.runs] == ["die-once"]
    with pytest.raises(ValueError, match="the function's own error"):
        tasks.run("fail", fail, str(tmp_path / "attempts"))
    assert (tmp_path / "attempts").read_text() == "x"  # once
