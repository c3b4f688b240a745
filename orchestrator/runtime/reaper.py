"""Stops a local Ray whose driver was killed outright (SIGKILL, the OOM killer): the driver
cannot clean up then, and Ray's GCS, raylet, dashboard and runtime-env agents of an in-process
cluster would linger for minutes, holding memory and ports.

`watch(session_dir)` starts this module as a small process of its own (its own session, so a
signal to the driver's process group does not reach it) that checks once a second whether the
driver is alive, noting the processes below it; once the driver is gone, it terminates those
(and any whose command line names the Ray session folder), kills what is left after 5 s, and
exits. When the driver ends normally, Ray has
already stopped those processes and the watcher exits finding nothing."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

POLL_SECONDS = 1.0
GRACE_SECONDS = 5.0


def watch(session_dir: str) -> subprocess.Popen[bytes]:
    """Watch this process on behalf of the Ray session in `session_dir`."""
    driver = psutil.Process()
    return subprocess.Popen([sys.executable, "-m", "orchestrator.runtime.reaper", str(driver.pid),
                             repr(driver.create_time()), session_dir],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def alive(pid: int, created: float) -> bool:
    try:
        process = psutil.Process(pid)
        return bool(process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def descendants(pid: int) -> set[tuple[int, float]]:
    """(pid, start time) of every process below `pid` now: Ray's GCS, raylet, agents (whose
    command lines Ray rewrites, e.g. `ray::DashboardAgent`) and trial workers."""
    found = set()
    try:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                found.add((child.pid, child.create_time()))
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    return found


def session_processes(session_dir: str, known: set[tuple[int, float]]) -> list[psutil.Process]:
    """The processes of the Ray session: those seen below the driver (still the same process:
    same start time) and any whose command line names the session folder."""
    me = psutil.Process().pid
    found = {}
    for process in psutil.process_iter(["cmdline", "create_time"]):
        try:
            ours = (process.pid, process.info["create_time"]) in known
            if process.pid != me and (ours or session_dir in " ".join(process.info["cmdline"] or ())):
                found[process.pid] = process
        except psutil.Error:
            continue
    return list(found.values())


def reap(session_dir: str, known: set[tuple[int, float]]) -> int:
    """Terminate, then kill, the processes of the Ray session; how many there were."""
    processes = session_processes(session_dir, known)
    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            continue
    _, left = psutil.wait_procs(processes, timeout=GRACE_SECONDS)
    for process in left:
        try:
            process.kill()
        except psutil.Error:
            continue
    return len(processes)


def main(argv: list[str]) -> int:
    pid, created, session_dir = int(argv[0]), float(argv[1]), argv[2]
    known: set[tuple[int, float]] = set()
    while alive(pid, created):
        known |= descendants(pid)  # the processes Ray starts later (agents, workers) too
        time.sleep(POLL_SECONDS)
    reap(session_dir, known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
