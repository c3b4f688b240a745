"""Content-addressed stage outputs: built once, then reused by every trial and every rerun.

`StageCache(root).get_or_build("backdoor", key, build)` returns a local folder holding the
finished stage output. `root` is a local folder or an s3:// URI (orchestrator.storage):

- Local: the output lives at `<root>/<stage>/<key>/`. A missing output is built into a
  temporary folder and renamed into place, so a half-built output is never visible.
- S3: the output lives at `<root>/<stage>/<key>/`, committed by a `_COMPLETE` manifest
  written last; each node uses it from a local copy (`Storage.local_mirror`), downloaded once.
  A node that builds an output uploads it, then writes the manifest.

Either way the build holds the claim `<stage>/.<key>.claim` (`Storage.exclusive`), so two
trials (on one machine or on two nodes) that need the same output at once build it once: the
second waits and reuses. A builder that died leaves a temporary folder or a partial upload;
the next holder of the claim removes or overwrites it.

Every lookup is recorded in `stages` (stage, key, seconds, cached), so a trial's row shows where
its time went, nested stages included (a tokenizer built inside the backdoor stage is listed,
and its time is part of the backdoor stage's time too).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.storage import Storage, as_storage

log = logging.getLogger(__name__)
COMPLETE = "_COMPLETE"  # the manifest that commits a stage output on an object store


class StageCache:
    def __init__(self, root: str | Path | Storage) -> None:
        self.store = as_storage(root)
        self.stages: list[dict[str, Any]] = []  # {stage, key, seconds, cached}, in completion order

    def has(self, stage: str, key: str) -> bool:
        if self.store.is_local:
            return (self.store.local_root / stage / key).is_dir()
        return self.store.exists(f"{stage}/{key}/{COMPLETE}")

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
        """Return (local folder, was_cached). `build(tmp)` writes the output into `tmp`."""
        started = time.perf_counter()
        if self.store.is_local:
            folder, cached = self._local(stage, key, build)
        else:
            folder, cached = self._remote(stage, key, build)
        seconds = time.perf_counter() - started
        self.stages.append({"stage": stage, "key": key, "seconds": round(seconds, 3), "cached": cached})
        log.info("stage %s %s: %s in %.1fs", stage, key, "reused from cache" if cached else "built", seconds)
        return folder, cached

    def _local(self, stage: str, key: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
        final = self.store.local_root / stage / key
        if final.is_dir():
            return final, True
        with self.store.exclusive(f"{stage}/.{key}.claim"):
            if final.is_dir():  # another trial built it while we waited
                return final, True
            for stale in final.parent.glob(f".{key}.tmp-*"):  # left by a builder that died
                shutil.rmtree(stale, ignore_errors=True)
            _build_into(final, build)
        return final, False

    def _remote(self, stage: str, key: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
        mirror = self.store.local_mirror() / stage / key
        if mirror.is_dir():
            return mirror, True
        if self._download(stage, key, mirror):
            return mirror, True
        with self.store.exclusive(f"{stage}/.{key}.claim"):
            if self._download(stage, key, mirror):  # another node built it while we waited
                return mirror, True

            def build_and_upload(tmp: Path) -> None:
                build(tmp)
                files = self.store.upload(tmp, f"{stage}/{key}")
                manifest = json.dumps({"files": files}).encode()
                if not self.store.create_once(f"{stage}/{key}/{COMPLETE}", manifest):
                    raise RuntimeError(f"{self.store.child(stage, key)} was committed by another "
                                       "builder while this one held its claim")

            _build_into(mirror, build_and_upload)
        return mirror, False

    def delete(self, stage: str, key: str) -> bool:
        """Remove a committed output from the store (a retention policy's choice: a trial that
        needs it later builds it again). Under the build claim, and uncommitted first (local:
        renamed aside; object store: the manifest deleted before the files), so no reader finds
        it half-deleted. Nodes' local mirrors keep their copies. False if there was none."""
        with self.store.exclusive(f"{stage}/.{key}.claim"):
            if self.store.is_local:
                final = self.store.local_root / stage / key
                if not final.is_dir():
                    return False
                aside = final.parent / f".{key}.deleting-{uuid.uuid4().hex[:8]}"
                final.rename(aside)
                shutil.rmtree(aside, ignore_errors=True)
                return True
            if not self.store.exists(f"{stage}/{key}/{COMPLETE}"):
                return False
            self.store.delete(f"{stage}/{key}/{COMPLETE}")
            self.store.delete_tree(f"{stage}/{key}")
            return True

    def _download(self, stage: str, key: str, mirror: Path) -> bool:
        """Copy a committed output into this node's mirror; False if it is not committed."""
        if not self.store.exists(f"{stage}/{key}/{COMPLETE}"):
            return False
        files = json.loads(self.store.read_bytes(f"{stage}/{key}/{COMPLETE}"))["files"]
        _build_into(mirror, lambda tmp: self.store.download(f"{stage}/{key}", tmp, files))
        return True


def _build_into(final: Path, build: Callable[[Path], object]) -> None:
    """Build into a temporary sibling of `final`, then rename it into place (a process that
    got there first wins; its copy is as good as ours)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
