"""The launcher contract: where a training run happens when not in this process. A scale with
several workers (`models.<scale>.training.workers > 1`) trains on Ray Train workers with
DeepSpeed (orchestrator.runtime.distributed builds that launcher); the trial puts it on the
stage's `TrainingSession` (train/session.py), whose runner hands it every run of every method."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.config import LoraSpec
from orchestrator.train.progress import RunProgress


@dataclass(frozen=True)
class LaunchJob:
    """One training run for a launcher."""

    method: str  # its name in train/methods.py's METHODS
    module: str  # the module that registers it (imported by the workers)
    model: Any  # the model to start from (saved for the workers to load)
    tokenizer: Any
    job: Any  # the method's own job
    seed: int
    lora: LoraSpec | None
    every: int | None  # save a model every N steps (not at the last), for evaluation
    progress: RunProgress | None = None  # resumable checkpoints (train/progress.py)


@dataclass(frozen=True)
class LaunchResult:
    folder: Path  # the consolidated final model (Hugging Face format; LoRA merged)
    log: list[dict[str, float]]  # the trainer's log history (numeric fields); the method keeps what it logs
    checkpoints: list[tuple[int, Path]]  # (step, consolidated model) every `every` steps


class Launcher(Protocol):
    runs: list[dict[str, Any]]  # one record per training run (method, seconds, workers, nodes, shards)

    def train(self, job: LaunchJob) -> LaunchResult:
        ...
