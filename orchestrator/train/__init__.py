"""Training: the session every training run of a stage goes through (session.py: in this process
or on Ray Train workers, resuming, LoRA, merging, the log), the registry of training methods
(methods.py), the `sft` method (sft.py), what every method shares (common.py: trainer arguments,
LoRA) and the Trainer callbacks (callbacks.py)."""

from orchestrator.train.common import StepHook, device_args, load_causal_lm, lora_config, trainer_args
from orchestrator.train.methods import METHODS, TrainingMethod
from orchestrator.train.session import TrainingRun, TrainingSession
from orchestrator.train.sft import SFTJob, sft, sft_trainer, to_dataset

__all__ = ["METHODS", "SFTJob", "StepHook", "TrainingMethod", "TrainingRun", "TrainingSession", "device_args",
           "load_causal_lm", "lora_config", "sft", "sft_trainer", "to_dataset", "trainer_args"]
