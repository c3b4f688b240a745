"""Training: the SFT step shared by backdoor training and SFT safety training, and what every
training loop shares (trainer arguments, LoRA, the evaluate-every-N-steps callback)."""

from orchestrator.train.common import EveryNSteps, StepHook, device_args, lora_config, trainer_args
from orchestrator.train.sft import sft, sft_trainer, to_dataset

__all__ = ["EveryNSteps", "StepHook", "device_args", "lora_config", "sft", "sft_trainer", "to_dataset",
           "trainer_args"]
