"""Ray and DeepSpeed plumbing, kept apart from the experiment's logic: Tune trials, Ray Train
workers with DeepSpeed ZeRO (`distributed`), placement checks."""

from orchestrator.runtime.placement import PlacementError, check_placement
from orchestrator.runtime.tune import SweepResult, run_sweep

__all__ = ["PlacementError", "SweepResult", "check_placement", "run_sweep"]
