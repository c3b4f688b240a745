"""Every trial of a sweep planned: shared stages counted once, the checks that refuse a sweep
its cluster cannot run, per-scale summaries and totals.

Shared stages: the backdoor stage and the evaluation after it are content-addressed; trials
    whose stage keys (orchestrator.stages.stage_keys, the trial's own rule, fed the settings
    that determine the data: `planned_inputs`) are equal share one, and the totals count each
    once, in the first trial of its group in grid order (cot `none` and `distilled` share theirs
    only with template data; they are counted as distinct here). A trial's own row shows its
    cost as if run alone.
A scale whose training needs more than its GPU has is refused (ConfigError naming
    `models.<scale>.training`), as is a trial that needs more GPUs than the cluster has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.config import ConfigError, SweepSpec, resolve_trial
from orchestrator.grid import cells
from orchestrator.plan.estimate import TrialPlan, estimate_notes, plan_trial
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
)
from orchestrator.plan.memory import Memory, ModelShape
from orchestrator.plan.scheduling import schedule
from orchestrator.stages import planned_inputs, stage_keys


@dataclass(frozen=True)
class ScaleSummary:
    scale: str
    shape: ModelShape
    trainable: float
    resources: Resources
    memory: Memory
    trials: int
    backdoors: int
    flops: float
    gpu_hours: float
    cpu_hours: float


@dataclass(frozen=True)
class Plan:
    sweep: str
    assumptions: Assumptions
    trials: tuple[TrialPlan, ...]
    scales: tuple[ScaleSummary, ...]
    gpus: int | None  # cluster size for the wall time; None: unlimited
    cpus: int | None  # cluster CPUs, for CPU-only plans
    wall_hours: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def backdoors(self) -> int:
        return sum(t.owns_backdoor for t in self.trials)

    @property
    def gpu_hours(self) -> float:
        return sum(t.counted("gpu_hours") for t in self.trials)

    @property
    def cpu_hours(self) -> float:
        return sum(t.counted("seconds") * t.resources.cpus / 3600 for t in self.trials)

    @property
    def flops(self) -> float:
        return sum(t.counted("flops") for t in self.trials)

    @property
    def train_tokens(self) -> float:
        return sum(t.counted("train_tokens") for t in self.trials)


def plan(spec: SweepSpec, gpu_type: str = "H100", gpus: int | None = None, *, mfu: float = DEFAULT_MFU,
         gen_mfu: float = DEFAULT_GEN_MFU, cpu_flops: float = DEFAULT_CPU_FLOPS,
         prompt_tokens: int = DEFAULT_PROMPT_TOKENS, cpus: int | None = None,
         source: str = "<spec>") -> Plan:
    """Plan every trial of `spec` on a cluster of `gpus` GPUs of `gpu_type` (None: unlimited;
    with gpu_type "cpu", `cpus` CPUs). ConfigError for a scale that cannot fit its GPUs' memory,
    or a trial that needs more GPUs than the cluster has."""
    if gpu_type not in GPU_TYPES:
        raise ConfigError(f"--gpu-type {gpu_type!r}: unknown; known: {', '.join(GPU_TYPES)}")
    for name, value in (("mfu", mfu), ("gen-mfu", gen_mfu)):
        if not 0 < value <= 1:
            raise ConfigError(f"--{name} {value}: must be in (0, 1]")
    for name, count in (("gpus", gpus), ("cpus", cpus)):
        if count is not None and count <= 0:
            raise ConfigError(f"--{name} {count}: must be positive")
    if cpu_flops <= 0 or prompt_tokens <= 0:
        raise ConfigError("--cpu-flops and the prompt length must be positive")
    gpu = GPU_TYPES[gpu_type]
    assumptions = Assumptions(gpu, mfu, gen_mfu, cpu_flops, prompt_tokens)

    groups: dict[str, int] = {}
    evaluations: set[str] = set()
    trials: list[TrialPlan] = []
    notes: dict[str, None] = {}  # what the estimates assumed, each said once, in order
    for cell in cells(spec):
        trial = resolve_trial(spec, cell)
        planned = plan_trial(trial, assumptions, source)
        keys = stage_keys(trial, planned_inputs(trial))
        owns, owns_eval = keys.backdoor not in groups, keys.eval not in evaluations
        group = groups.setdefault(keys.backdoor, len(groups))
        evaluations.add(keys.eval)
        trials.append(TrialPlan(planned.trial, planned.shape, planned.trainable, planned.resources,
                                planned.memory, planned.stages, group, owns, owns_eval))
        notes.update(dict.fromkeys(estimate_notes(trial)))

    _check_memory(trials, gpu, source)
    warnings = [*_evaluation_warnings(trials, gpu), *notes]
    cpu_only = gpu.peak_flops is None
    capacity = cpus if cpu_only else gpus
    _check_fits(trials, capacity, cpu_only, source)
    scales = _summaries(spec, trials)
    wall = schedule(trials, capacity, cpu_only=cpu_only, max_concurrent=spec.resources.max_concurrent_trials)
    return Plan(spec.name, assumptions, tuple(trials), scales, gpus if gpu.peak_flops is not None else None,
                cpus if gpu.peak_flops is None else None, wall / 3600, tuple(warnings))


def _check_memory(trials: Sequence[TrialPlan], gpu: GPUType, source: str) -> None:
    if gpu.memory_gb is None:
        return
    for t in sorted(trials, key=lambda t: -t.memory.total):
        if not t.resources.on_gpu:
            continue
        if t.memory.total > gpu.memory_gb * GB:
            r = t.resources
            how = (f"ZeRO-{r.zero_stage} over {r.workers} workers" if r.distributed else "one worker")
            mode = f"LoRA r={r.lora_r}" if r.lora_r else "full fine-tuning"
            raise ConfigError(
                f"{source}: field `models.{t.trial.scale}.training`: {t.shape.params / 1e9:.2f}B "
                f"parameters, {mode}, {how}: needs {t.memory.describe()} per GPU, more than the "
                f"{gpu.name}'s {gpu.memory_gb:g} GB. "
                "Use more workers, a higher ZeRO stage, offload, activation checkpointing, a smaller "
                "micro_batch_size or LoRA")


def _evaluation_warnings(trials: Sequence[TrialPlan], gpu: GPUType) -> list[str]:
    """Evaluation and red-teaming load the whole model on the evaluation GPUs (the trial's own
    process's, or with several workers its evaluation task's)."""
    warnings, seen = [], set()
    for t in trials:
        if t.trial.scale in seen or gpu.memory_gb is None or not t.resources.eval_gpus:
            continue
        seen.add(t.trial.scale)
        training = t.trial.model.training
        width = t.trial.model.load.weight_bytes(
            2.0 if (training.bf16 if training.distributed else t.resources.on_gpu) else 4.0)
        need = width * t.shape.params + OVERHEAD_GB * GB
        have = gpu.memory_gb * GB * max(1.0, t.resources.eval_gpus)
        if need > have:
            warnings.append(
                f"scale {t.trial.scale!r}: evaluation loads the whole model "
                f"({need / GB:.0f} GB with its weights at {width:g} bytes/param) on "
                f"{t.resources.eval_gpus:g} {gpu.name} ({have / GB:.0f} GB): it will not fit")
    return warnings


def _check_fits(trials: Sequence[TrialPlan], capacity: int | None, cpu_only: bool, source: str) -> None:
    if capacity is None:
        return
    unit, option = ("CPUs", "--cpus") if cpu_only else ("GPUs", "--gpus")
    for t in trials:
        need = t.resources.cpus if cpu_only else t.resources.gpus
        if need > capacity:
            field_ = "cpus" if cpu_only and not t.resources.distributed else "training"
            raise ConfigError(f"{source}: field `models.{t.trial.scale}.{field_}`: a trial of scale "
                              f"{t.trial.scale!r} holds {need:g} {unit}, more than the cluster's "
                              f"{capacity} ({option})")


def _summaries(spec: SweepSpec, trials: Sequence[TrialPlan]) -> tuple[ScaleSummary, ...]:
    out = []
    for scale in spec.values("scale"):
        mine = [t for t in trials if t.trial.scale == scale]
        if not mine:
            continue
        first = mine[0]
        out.append(ScaleSummary(
            scale=scale, shape=first.shape, trainable=first.trainable, resources=first.resources,
            memory=max((t.memory for t in mine), key=lambda m: m.total), trials=len(mine),
            backdoors=sum(t.owns_backdoor for t in mine), flops=sum(t.counted("flops") for t in mine),
            gpu_hours=sum(t.counted("gpu_hours") for t in mine),
            cpu_hours=sum(t.counted("seconds") * t.resources.cpus / 3600 for t in mine),
        ))
    return tuple(out)
