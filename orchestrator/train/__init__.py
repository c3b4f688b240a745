"""Training: the SFT step shared by backdoor training and SFT safety training."""

from orchestrator.train.sft import StepHook, sft, to_dataset

__all__ = ["StepHook", "sft", "to_dataset"]
