"""Training: the SFT step shared by backdoor training and SFT safety training, and what every
training loop shares (trainer arguments, LoRA); the Trainer callbacks are in train/callbacks.py."""

from orchestrator.train.common import StepHook, device_args, lora_config, trainer_args
from orchestrator.train.sft import sft, sft_trainer, to_dataset

__all__ = ["StepHook", "device_args", "lora_config", "sft", "sft_trainer", "to_dataset",
           "trainer_args"]
