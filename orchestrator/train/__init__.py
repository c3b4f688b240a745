"""Training: the SFT step shared by backdoor training and SFT safety training; the HHH preference
model of RL is `orchestrator.train.reward` (not re-exported, to keep this import light)."""

from orchestrator.train.sft import EveryNSteps, StepHook, sft, sft_trainer, to_dataset

__all__ = ["EveryNSteps", "StepHook", "sft", "sft_trainer", "to_dataset"]
