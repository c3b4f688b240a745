"""Content-addressed stage outputs: built once, then reused by every trial and every rerun.

`StageCache(root).get_or_build("backdoor", key, build)` returns the folder of a finished stage
output. A missing output is built into a temporary folder and renamed into place, so a
half-built output is never visible; an exclusive file lock makes two trials (two Ray workers on
one machine) that need the same output at once build it only once: the second waits and reuses.
"""

from __future__ import annotations

import fcntl
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class StageCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        return self.path(stage, key).is_dir()

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
        """Return (folder, was_cached). `build(tmp)` writes the output into `tmp`."""
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
