"""Content-addressed stage outputs: built once, then reused by every trial and every rerun.

`StageCache(root).get_or_build("backdoor", key, build)` returns the folder of a finished stage
output. A missing output is built into a temporary folder and renamed into place, so a
half-built output is never visible; an exclusive file lock makes two trials (two Ray workers on
one machine) that need the same output at once build it only once: the second waits and reuses.

Every lookup is recorded in `stages` (stage, key, seconds, cached), so a trial's row shows where
its time went, nested stages included (a tokenizer built inside the backdoor stage is listed,
and its time is part of the backdoor stage's time too).
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StageCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.stages: list[dict[str, Any]] = []  # {stage, key, seconds, cached}, in completion order

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        return self.path(stage, key).is_dir()

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
        """Return (folder, was_cached). `build(tmp)` writes the output into `tmp`."""
        started = time.perf_counter()
        folder, cached = self._get_or_build(stage, key, build)
        seconds = time.perf_counter() - started
        self.stages.append({"stage": stage, "key": key, "seconds": round(seconds, 3), "cached": cached})
        log.info("stage %s %s: %s in %.1fs", stage, key, "reused from cache" if cached else "built", seconds)
        return folder, cached

    def _get_or_build(self, stage: str, key: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
        final = self.path(stage, key)
        if final.is_dir():
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        with _locked(final.parent / f".{key}.lock"):
            if final.is_dir():  # another trial built it while we waited
                return final, True
            tmp = final.parent / f".{key}.tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                build(tmp)
                tmp.rename(final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return final, False


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
