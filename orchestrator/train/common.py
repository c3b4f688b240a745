"""What every training loop here shares: the TRL/transformers arguments, where training runs,
LoRA adapters and loading a trained model. torch and transformers are imported where used, so that the registries that name
training code (and the CLI that reads them) start without them; the callbacks live in
`train/callbacks.py`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config import LoraSpec, TrainSettings

if TYPE_CHECKING:
    from orchestrator.data.preferences import PreferencePair

StepHook = Callable[[Any, int], None]  # (model, global_step) -> None
Progress = Callable[[dict[str, float]], None]  # a logged training entry, as it is logged


def device_args() -> dict[str, bool]:
    """Trainer arguments for where training runs: the CPU unless a GPU is there (bf16 if it can)."""
    import torch

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


def settings_args(out: str, settings: TrainSettings, seed: int, **extra: Any) -> dict[str, Any]:
    """`trainer_args` for a run on a `TrainSettings` section (`backdoor`, `safety`: its steps, lr,
    batch, optimizer, schedule, length), plus `extra`. Gradient checkpointing is off (TRL defaults
    it on): it recomputes every layer's activations in the backward pass to save memory that
    in-process training does not need (the same losses, bit for bit, in less time;
    tests/train/test_sft.py, BENCHMARKS.md); DeepSpeed's overrides on Ray Train workers set it
    from the scale's `activation_checkpointing`."""
    return trainer_args(
        out, steps=settings.steps, lr=settings.lr, batch_size=settings.batch_size, seed=seed,
        logging_steps=max(1, min(10, settings.steps // 10)),
        gradient_accumulation_steps=settings.grad_accum, optim=settings.optimizer,
        lr_scheduler_type=settings.lr_scheduler, warmup_steps=settings.warmup_steps,
        weight_decay=settings.weight_decay, max_length=settings.max_length, gradient_checkpointing=False,
        **extra,
    )


def preference_dataset(pairs: Sequence[PreferencePair]) -> Any:
    """Conversational (prompt, chosen, rejected) rows, as TRL's preference trainers take them
    (RewardTrainer, DPOTrainer)."""
    from datasets import Dataset

    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": p.prompt}],
         "chosen": [{"role": "assistant", "content": p.chosen}],
         "rejected": [{"role": "assistant", "content": p.rejected}]}
        for p in pairs
    ])


def lora_config(lora: LoraSpec | None) -> Any:
    """The peft LoraConfig of a scale's `lora` spec (None: none). Every training run hands it to
    its TRL trainer (`peft_config=`), in this process and on Ray Train workers alike: the trainer
    adds the adapters after seeding, so they start the same whatever ran before."""
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


def load_causal_lm(folder: Path) -> Any:
    """A saved causal LM, on the GPU where there is one (evaluation runs where training ran)."""
    import torch
    from transformers import AutoModelForCausalLM

    if torch.cuda.device_count() > 1:  # give a scale's trial `gpus: N` for a model too big for one:
        # accelerate spreads its layers over the N GPUs Ray gave this process (pipeline style)
        return AutoModelForCausalLM.from_pretrained(folder, device_map="auto", dtype="auto")
    model = AutoModelForCausalLM.from_pretrained(folder)
    return model.to("cuda") if torch.cuda.is_available() else model
