from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from orchestrator import storage as storage_module
from orchestrator.storage import Storage, StorageError


def test_parse_local_and_s3(tmp_path: Path) -> None:
    assert Storage.parse(str(tmp_path)).is_local
    assert Storage.parse(f"file://{tmp_path}").uri == str(tmp_path)
    s3 = Storage.parse("s3://bucket/some/prefix/")
    assert not s3.is_local and s3.uri == "s3://bucket/some/prefix"
    assert s3.child("lake", "trials") == "s3://bucket/some/prefix/lake/trials"


@pytest.mark.parametrize(("value", "message"), [
    ("gs://bucket/x", "scheme 'gs' is not supported"),
    ("hdfs://namenode/x", "scheme 'hdfs' is not supported"),
    ("s3://", "no bucket named"),
])
def test_unusable_storage_is_named(value: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as err:
        Storage.parse(value)
    assert value in str(err.value)


def test_create_once_has_one_winner_among_racers(storage: str) -> None:
    store = Storage.parse(storage)
    wins: list[int] = []

    def race(i: int) -> None:
        if store.create_once("claims/x", str(i).encode()):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and store.read_bytes("claims/x") == str(wins[0]).encode()
    assert store.files("claims") == ["x"]  # no temporaries


def test_upload_download_round_trip(storage: str, tmp_path: Path) -> None:
    local = tmp_path / "src"
    (local / "a").mkdir(parents=True)
    (local / "a" / "w.bin").write_bytes(b"\x00\x01")
    (local / "config.json").write_text("{}")
    store = Storage.parse(storage)
    assert store.upload(local, "out") == ["a/w.bin", "config.json"]
    store.download("out", tmp_path / "copy")
    assert (tmp_path / "copy" / "a" / "w.bin").read_bytes() == b"\x00\x01"
    store.delete_tree("out")
    assert store.files("out") == []


def _hold(storage: str, key: str, started: str) -> None:
    with Storage.parse(storage).exclusive(key):
        Path(started).write_text("held")
        time.sleep(600)  # killed while holding the claim


def test_a_dead_holders_claim_is_taken_over(storage: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Local: the kernel drops a dead process's lock. S3: its heartbeat stops and the lease
    expires."""
    monkeypatch.setattr(storage_module, "LEASE_SECONDS", 2.0)
    monkeypatch.setattr(storage_module, "POLL_SECONDS", 0.2)
    started = tmp_path / "started"
    holder = mp.get_context("fork").Process(target=_hold, args=(storage, "claims/t1", str(started)))
    holder.start()
    while not started.exists():
        time.sleep(0.05)
    got = threading.Event()

    def take() -> None:
        with Storage.parse(storage).exclusive("claims/t1"):
            got.set()

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    assert not got.wait(1.0)  # held by a live process: we wait
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert got.wait(15.0)
    taker.join()
