"""Training checkpoints of a stage in flight: a trial whose process dies resumes its long
training runs where they stopped, not from step 0.

The stage cache keeps finished stage outputs only. While a stage is being built, each of its
training runs saves a Hugging Face Trainer checkpoint (weights or adapters, optimizer,
scheduler, RNG states, trainer state with the log) every `every` optimizer steps under

    <storage>/progress/<stage>/<key>/<run>/checkpoint-<step>/

`<run>` is the run's order in the stage plus a hash of its inputs, so the two training runs of
one stage (e.g. adversarial training's) never resume from each other. A checkpoint counts once
its `_COMPLETE` marker is written; the older ones are removed then. On a local (or shared)
folder the trainer writes there directly; on an object store it writes to this node's disk and
each checkpoint is uploaded before it is marked. The stage also keeps small JSON state there
(the evaluations it already made), and deletes the whole folder once its output is cached.

The trial puts a stage's progress on the stage's `TrainingSession` (train/session.py); its
runner gives each training run (in this process or on Ray Train workers) its `RunProgress`, so
every technique resumes without knowing it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from orchestrator.config import stable_hash
from orchestrator.storage import Storage, as_storage

log = logging.getLogger(__name__)
COMPLETE = "_COMPLETE"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


class _State:
    """Small JSON state kept next to the checkpoints (e.g. evaluations already made)."""

    store: Storage

    def load(self, name: str) -> Any:
        """What an earlier attempt saved under `name`, or None."""
        key = f"{name}.json"
        return json.loads(self.store.read_bytes(key)) if self.store.exists(key) else None

    def save(self, name: str, value: Any) -> None:
        self.store.write_bytes(f"{name}.json", json.dumps(value, default=str).encode())


class StageProgress(_State):
    """The in-flight state of one stage build: its training runs' checkpoints and JSON state."""

    def __init__(self, store: str | Path | Storage, every: int) -> None:
        self.store, self.every = as_storage(store), every
        self._order = itertools.count()
        self.resumed: list[dict[str, Any]] = []  # {run, step}: runs that resumed a checkpoint

    def run(self, kind: str, *inputs: Any) -> RunProgress:
        """The progress of the stage's next training run (`inputs`: what determines it)."""
        name = f"{next(self._order)}-{kind}-{stable_hash(inputs, 12)}"
        run = RunProgress(self.store.sub(name), self.every, _node_folder(self.store) / name)
        step = run.latest_step()
        if step is not None:
            self.resumed.append({"run": name, "step": step})
        return run

    def clear(self) -> None:
        """Forget it all (the stage's output is in the cache now)."""
        self.store.delete_tree("")
        if not self.store.is_local:
            shutil.rmtree(_node_folder(self.store), ignore_errors=True)


class RunProgress(_State):
    """Checkpoints of one training run; picklable (it travels to Ray Train workers)."""

    def __init__(self, store: str | Storage, every: int, node_folder: str | Path) -> None:
        self.store, self.every, self.node_folder = as_storage(store), every, Path(node_folder)

    def __reduce__(self) -> tuple[Any, ...]:
        return RunProgress, (self.store.uri, self.every, str(self.node_folder))

    @property
    def output_dir(self) -> Path:
        """Where the trainer writes its checkpoints: the store itself, or this node's disk."""
        return self.store.local_root if self.store.is_local else self.node_folder

    def trainer_args(self) -> dict[str, Any]:
        """TrainingArguments fields that save a checkpoint every `every` steps (kept: one)."""
        return {"output_dir": str(self.output_dir), "save_strategy": "steps", "save_steps": self.every,
                "save_total_limit": None, "save_only_model": False}

    def latest_step(self) -> int | None:
        steps = [int(m.group(1)) for name in self.store.files("")
                 if (m := _CHECKPOINT.fullmatch(name.partition("/")[0])) and name.endswith(f"/{COMPLETE}")]
        return max(steps, default=None)

    def latest(self) -> Path | None:
        """The last complete checkpoint on this node's disk (downloaded from an object store by
        the first process of each node), or None. Every training process calls it."""
        step = self.latest_step()
        if step is not None:
            folder = self.output_dir / f"checkpoint-{step}"
            if not self.store.is_local and _local_rank() == 0 and not (folder / COMPLETE).exists():
                shutil.rmtree(folder, ignore_errors=True)
                self.store.download(folder.name, folder)
            log.info("resuming training from %s", self.store.child(folder.name))
        _barrier()
        return None if step is None else self.output_dir / f"checkpoint-{step}"

    def commit(self, step: int) -> None:
        """Make checkpoint-`step` (just written by every process) the one to resume from."""
        name = f"checkpoint-{step}"
        if not self.store.is_local and _local_rank() == 0:
            self.store.upload(self.output_dir / name, name)
        _barrier()
        if _rank() == 0:
            self.store.write_bytes(f"{name}/{COMPLETE}", b"")
            older = {n.partition("/")[0] for n in self.store.files("") if _CHECKPOINT.fullmatch(n.partition("/")[0])}
            for folder in older - {name}:
                self.store.delete_tree(folder)
        if not self.store.is_local and _local_rank() == 0:
            for stale in self.output_dir.glob("checkpoint-*"):
                if stale.name != name:
                    shutil.rmtree(stale, ignore_errors=True)
        _barrier()

    def callback(self) -> Any:
        from orchestrator.train.callbacks import SaveProgress

        return SaveProgress(self)

    # Models saved for evaluation every few steps by Ray Train workers (evaluated after the
    # run): kept here too, so the evaluations of steps before a resume are not lost.

    def eval_folder(self, step: int) -> Path:
        return self.output_dir / "evals" / f"step-{step}"

    def commit_eval(self, step: int) -> None:
        """Keep the model that rank 0 just saved in `eval_folder(step)`."""
        if _rank() == 0:
            key = f"evals/step-{step}"
            if not self.store.is_local:
                self.store.upload(self.eval_folder(step), key)
            self.store.write_bytes(f"{key}/{COMPLETE}", b"")

    def eval_steps(self) -> list[int]:
        return sorted(int(m.group(1)) for name in self.store.files("evals")
                      if (m := re.fullmatch(rf"step-(\d+)/{COMPLETE}", name)))

    def fetch_eval(self, step: int, local: Path) -> Path:
        """The model kept for `step`, on this machine's disk (under `local` when downloaded)."""
        if self.store.is_local:
            return self.eval_folder(step)
        folder = local / f"step-{step}"
        self.store.download(f"evals/step-{step}", folder)
        return folder


def _node_folder(store: Storage) -> Path:
    return store.local_mirror() / "progress" / stable_hash(store.uri, 16)


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _barrier() -> None:
    """Wait for every training process (on Ray Train workers; a no-op in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
