from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from pathlib import Path

from orchestrator.cache import StageCache


def _slow_build(root: str, log: str) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as handle:
            handle.write("built\n")
        time.sleep(0.5)
        (tmp / "weights").write_text("w")

    StageCache(root).get_or_build("backdoor", "k1", build)


def test_built_once_then_cached(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    calls = []
    folder, cached = cache.get_or_build("s", "k", lambda tmp: calls.append((tmp / "f").write_text("x")))
    assert not cached and (folder / "f").read_text() == "x"
    folder2, cached2 = cache.get_or_build("s", "k", lambda tmp: calls.append(1))
    assert cached2 and folder2 == folder and len(calls) == 1


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)

    def broken(tmp: Path) -> None:
        (tmp / "partial").write_text("x")
        raise RuntimeError("boom")

    with contextlib.suppress(RuntimeError):
        cache.get_or_build("s", "k", broken)
    assert not cache.has("s", "k")
    assert [p.name for p in (tmp_path / "s").iterdir() if not p.name.endswith(".lock")] == []


def test_two_processes_build_once(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(tmp_path / "c"), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert log.read_text().count("built") == 1
    assert (tmp_path / "c" / "backdoor" / "k1" / "weights").is_file()
