"""What every training loop here shares: the TRL/transformers arguments, where training runs,
LoRA adapters, and the callback that evaluates the model along the way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from transformers import TrainerCallback

from orchestrator.config import LoraSpec

StepHook = Callable[[Any, int], None]  # (model, global_step) -> None
Progress = Callable[[dict[str, float]], None]  # a logged training entry, as it is logged


def device_args() -> dict[str, bool]:
    """Trainer arguments for where training runs: the CPU unless a GPU is there (bf16 if it can)."""
    on_gpu = torch.cuda.is_available()
    return {"use_cpu": not on_gpu, "bf16": on_gpu and torch.cuda.is_bf16_supported()}


def trainer_args(out: str, *, steps: int, lr: float, batch_size: int, seed: int, logging_steps: int,
                 **extra: Any) -> dict[str, Any]:
    """The arguments every TRL config here takes (SFTConfig, GRPOConfig, RewardConfig), plus
    `extra`: scratch files in `out`, no checkpoints, no progress bars, no external loggers (the
    log is returned to the caller, which writes it to the lake)."""
    return {
        "output_dir": out, "max_steps": steps, "learning_rate": lr,
        "per_device_train_batch_size": batch_size, "seed": seed, "data_seed": seed,
        "logging_steps": logging_steps, "save_strategy": "no", "report_to": [],
        "disable_tqdm": True, "dataloader_num_workers": 0, **device_args(), **extra,
    }


def lora_config(lora: LoraSpec) -> Any:
    """The peft LoraConfig of a scale's `lora` spec."""
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


class EveryNSteps(TrainerCallback):  # type: ignore[misc]
    """Calls hook(model, step) every `every` steps, except at the last (the caller evaluates that)."""

    def __init__(self, every: int, hook: StepHook) -> None:
        self.every, self.hook = every, hook

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self.hook(kwargs["model"], state.global_step)


class ReportLog(TrainerCallback):  # type: ignore[misc]
    """Passes each logged entry to `progress` as it is logged (Ray Tune's status table, TensorBoard,
    MLflow): `step` plus the logged values named in `names` (theirs -> ours)."""

    def __init__(self, progress: Progress, names: Mapping[str, str]) -> None:
        self.progress, self.names = progress, names

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        logs = logs or {}
        values = {ours: float(logs[theirs]) for theirs, ours in self.names.items()
                  if isinstance(logs.get(theirs), int | float)}
        if values:
            self.progress({"step": float(state.global_step), **values})
