"""Training: the session every training run of a stage goes through (session.py: in this process
or on Ray Train workers, resuming, LoRA, merging, the log), the registry of training methods
(methods.py), the `sft` method (sft.py), what every method shares (common.py: trainer arguments,
preference datasets, LoRA) and the Trainer callbacks (callbacks.py)."""

from orchestrator.train.common import (
    StepHook,
    device_args,
    load_causal_lm,
    lora_config,
    preference_dataset,
    settings_args,
    trainer_args,
)
from orchestrator.train.methods import METHODS, LogEntry, MethodCost, TrainingMethod
from orchestrator.train.session import TrainingRun, TrainingSession
from orchestrator.train.sft import SFTJob, sft, sft_trainer, to_dataset

__all__ = ["METHODS", "LogEntry", "MethodCost", "SFTJob", "StepHook", "TrainingMethod", "TrainingRun",
           "TrainingSession", "device_args", "load_causal_lm", "lora_config", "preference_dataset", "settings_args",
           "sft", "sft_trainer", "to_dataset", "trainer_args"]
