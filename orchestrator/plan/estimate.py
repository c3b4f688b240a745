"""One trial's estimate: tokens, FLOPs and seconds of each stage, and its peak memory per GPU.

The safety stage is costed by the training methods its technique declares (`methods(trial)`,
orchestrator.safety.techniques), not by the technique's name, so a plugin technique is costed
as what it trains with; the trigger's evaluation conditions come from the trigger
(`Trigger.conditions`).

Training tokens (upper bounds: every sequence counted at `max_length`, as if padded to it):
    backdoor = steps x batch_size x grad_accum x max_length;
    per training method of the safety stage, what the method declares (`TrainingMethod.cost`,
    orchestrator.train.methods, a `MethodCost`):
    sft = the same over `safety` (train/sft.py);
    grpo = rl.steps x rl.batch_size x (prompt + rl.max_new_tokens), prompt = `prompt_tokens`
    (safety/grpo.py);
    dpo = twice sft's (a chosen and a rejected answer per example), with a KL reference
    (safety/dpo.py);
    reward: not counted (a tiny preference model, trained once through the stage cache and
    shared by every trial that uses it; or a given model that is not trained at all);
    a method that declares no cost or is not registered, or a technique that declares no
    methods: costed as sft, and the plan says so.
Generated tokens: evaluation = n_eval x the trigger's conditions x eval.max_new_tokens per
    evaluation, with one evaluation after the backdoor and ceil(steps / eval_every) + 1 during
    safety training (step 0, every eval_every, the end; steps and eval_every of each method's
    section); a technique that reads the `adversarial` section (AdversarialSettings) red-teams
    first: rounds x candidates_per_round x samples_per_candidate x adversarial.max_new_tokens of
    sampling and up to heldout_fraction x rounds x candidates_per_round `redteam` prompts in the
    last evaluation; grpo adds its rollouts, rl.steps x rl.batch_size x rl.max_new_tokens.
    Prompts (prefill) are not counted.
FLOPs = 6 N x training tokens (forward + backward; with LoRA still 6 N: the backward through the
    frozen model is ~4 N, so this is an upper bound) + 2 N x the training tokens of a method with
    a KL reference (grpo with rl.beta > 0, dpo: the reference's forward) + 2 N x generated tokens.
Time: training FLOPs / (training GPUs x peak x `mfu`) + generated FLOPs / (GPUs x peak x
    `gen_mfu`), peak = the GPU's dense bf16 FLOP/s (GPU_TYPES). Training runs on the scale's
    workers (or the trial's own GPUs with one worker); evaluation and red-team sampling on the
    trial process's GPUs; grpo rollouts on the training GPUs. On CPUs (`gpu_type="cpu"`, or a
    scale with no GPU) everything runs at `cpu_flops` per CPU the process holds, no MFU applied.
GPU-hours: a trial holds its GPUs (its own process's plus its workers') for its whole run.
Memory: the peak over the trial's training stages (orchestrator.plan.memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.config import AdversarialSettings, TrialConfig
from orchestrator.data import TRIGGERS
from orchestrator.plan.hardware import (
    DEFAULT_CPU_FLOPS,
    DEFAULT_GEN_MFU,
    DEFAULT_MFU,
    DEFAULT_PROMPT_TOKENS,
    GPU_TYPES,
    Assumptions,
    Resources,
    resources,
)
from orchestrator.plan.memory import (
    Memory,
    ModelShape,
    micro_batch,
    model_shape,
    trainable_params,
    training_memory,
)
from orchestrator.safety import TECHNIQUES  # which also registers every built-in training method in METHODS
from orchestrator.safety.techniques import training_methods, training_steps
from orchestrator.train.methods import METHODS, MethodCost, TrainingMethod

DEFAULT_CONDITIONS = 2  # evaluation conditions of a trigger that declares none (triggered, clean)


FALLBACK = "sft"  # the cost model of a method that declares none


def declared_cost(method: str) -> TrainingMethod | None:
    """The registered method, where it declares its cost (`TrainingMethod.cost`); else None."""
    if method not in METHODS:
        return None
    model = METHODS.get(method)
    return model if type(model).cost is not TrainingMethod.cost else None


def method_costs(trial: TrialConfig, prompt_tokens: int) -> list[MethodCost]:
    """The cost of each training method of the trial's safety stage that is counted."""
    fallback = METHODS.get(FALLBACK)
    methods = training_methods(trial)
    if methods is None:
        methods = (FALLBACK,)
    costs = []
    for method in methods:
        cost = (declared_cost(method) or fallback).cost(trial, prompt_tokens)
        if cost is not None:
            costs.append(cost)
    return costs


def estimate_notes(trial: TrialConfig) -> list[str]:
    """What the estimate of this trial assumed for lack of a declaration or a cost model."""
    notes = []
    methods = training_methods(trial)
    if methods is None:
        notes.append(f"technique {trial.technique!r} declares no training methods (`methods(trial)`): "
                     "costed as sft on the `safety` settings")
    else:
        for method in methods:
            if declared_cost(method) is None:
                notes.append(f"technique {trial.technique!r} trains with {method!r}, which declares no cost "
                             "(`TrainingMethod.cost`) or is not registered: costed as sft on the `safety` settings")
    if eval_conditions(trial.trigger) is None:
        notes.append(f"trigger {trial.trigger!r} declares no evaluation conditions (`conditions`): "
                     f"counted as {DEFAULT_CONDITIONS}")
    return notes


def eval_conditions(trigger: str) -> int | None:
    """How many evaluation conditions the trigger's `eval_prompts` have (`n_eval` prompts each)."""
    declared = getattr(TRIGGERS.get(trigger), "conditions", None)
    return None if declared is None else len(declared)


def redteam_settings(trial: TrialConfig) -> AdversarialSettings | None:
    """The red-team search settings, for a technique that reads them (its `sections`)."""
    for name in TECHNIQUES.get(trial.technique).sections:
        settings = getattr(trial, name)
        if isinstance(settings, AdversarialSettings):
            return settings
    return None


@dataclass(frozen=True)
class StageEstimate:
    stage: str  # backdoor | eval | safety (orchestrator.stages.STAGES, the lake's `stages`)
    train_tokens: float
    generated_tokens: float
    flops: float
    seconds: float
    train_seconds: float = 0.0  # of `seconds`, training (on the Ray Train workers where there are several)
    train_flops: float = 0.0  # of `flops`, those of training (no generation)


@dataclass(frozen=True)
class TrialPlan:
    trial: TrialConfig
    shape: ModelShape
    trainable: float
    resources: Resources
    memory: Memory  # the peak over the trial's training stages
    stages: tuple[StageEstimate, ...]
    backdoor_group: int  # trials of the same group share one backdoor training
    owns_backdoor: bool  # the first trial of its group in grid order: the totals count it there
    owns_eval: bool  # likewise for the evaluation after the backdoor (shared with the same eval settings)

    def stage(self, name: str) -> StageEstimate:
        return next(s for s in self.stages if s.stage == name)

    @property
    def train_tokens(self) -> float:
        return sum(s.train_tokens for s in self.stages)

    @property
    def flops(self) -> float:
        return sum(s.flops for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def gpu_hours(self) -> float:
        return sum(self.stage_gpu_hours(s) for s in self.stages)

    def stage_gpu_hours(self, stage: StageEstimate) -> float:
        """A stage's GPU-hours: with several workers, its training on theirs and the rest
        (evaluation, generation) on the evaluation tasks'; else all on the trial's own."""
        res = self.resources
        if not res.distributed:
            return stage.seconds * res.eval_gpus / 3600
        return (stage.train_seconds * res.training_gpus + (stage.seconds - stage.train_seconds) * res.eval_gpus) / 3600

    @property
    def counted_stages(self) -> tuple[StageEstimate, ...]:
        """The stages the totals count in this trial: a shared backdoor (and the evaluation after
        it) only in the trial that owns it."""
        owned = {"backdoor": self.owns_backdoor, "eval": self.owns_eval}
        return tuple(s for s in self.stages if owned.get(s.stage, True))

    def counted(self, attribute: str) -> float:
        """flops / train_tokens / seconds / gpu_hours as the totals count them (`counted_stages`)."""
        stages = self.counted_stages
        seconds = sum(s.seconds for s in stages)
        values = {"flops": sum(s.flops for s in stages), "train_tokens": sum(s.train_tokens for s in stages),
                  "seconds": seconds, "gpu_hours": sum(self.stage_gpu_hours(s) for s in stages)}
        return values[attribute]


def plan_trial(trial: TrialConfig, assumptions: Assumptions, source: str = "<spec>") -> TrialPlan:
    """The trial's estimate as if it ran alone (it owns its backdoor and evaluation)."""
    model = trial.model
    shape = model_shape(model, trial.scale, source)
    trainable = trainable_params(model, shape)
    res = resources(model, assumptions.gpu)
    n = shape.params
    costs = method_costs(trial, assumptions.prompt_tokens)

    # Tokens.
    backdoor_tokens = float(trial.backdoor.steps * trial.backdoor.batch_size * trial.backdoor.grad_accum
                            * trial.backdoor.max_length)
    safety_tokens = sum(c.train_tokens for c in costs)
    rollouts = sum(c.rollout_tokens for c in costs)
    declared = eval_conditions(trial.trigger)
    conditions = DEFAULT_CONDITIONS if declared is None else declared
    per_eval = float(trial.data.n_eval * conditions * trial.eval.max_new_tokens)
    safety_evals = sum(math.ceil(c.steps / c.eval_every) for c in costs) + 1
    safety_generated = per_eval * safety_evals
    redteam = redteam_settings(trial)
    if redteam is not None:
        a = redteam
        safety_generated += float(a.rounds * a.candidates_per_round * a.samples_per_candidate * a.max_new_tokens)
        safety_generated += (a.heldout_fraction * a.rounds * a.candidates_per_round) * trial.eval.max_new_tokens

    # Throughputs (FLOP/s).
    gpu = assumptions.gpu
    peak = gpu.peak_flops or 0.0

    def speed(gpus: float, cpus: float, mfu: float) -> float:
        if gpus > 0 and peak > 0:
            return gpus * peak * mfu
        return max(cpus, 1.0) * assumptions.cpu_flops

    train_speed = speed(res.training_gpus if res.on_gpu else 0.0, res.training_cpus, assumptions.mfu)
    rollout_speed = speed(res.training_gpus if res.on_gpu else 0.0, res.training_cpus, assumptions.gen_mfu)
    eval_speed = speed(res.eval_gpus, res.process_cpus, assumptions.gen_mfu)

    backdoor_flops = 6 * n * backdoor_tokens
    safety_train_flops = sum((6 + (2 if c.reference else 0)) * n * c.train_tokens for c in costs)
    stages = (
        StageEstimate("backdoor", backdoor_tokens, 0.0, backdoor_flops, backdoor_flops / train_speed,
                      backdoor_flops / train_speed, train_flops=backdoor_flops),
        StageEstimate("eval", 0.0, per_eval, 2 * n * per_eval, 2 * n * per_eval / eval_speed),
        StageEstimate("safety", safety_tokens, safety_generated + rollouts,
                      safety_train_flops + 2 * n * (safety_generated + rollouts),
                      safety_train_flops / train_speed + 2 * n * rollouts / rollout_speed
                      + 2 * n * safety_generated / eval_speed,
                      safety_train_flops / train_speed + 2 * n * rollouts / rollout_speed,
                      train_flops=safety_train_flops),
    )

    # Memory: the peak over the trial's training stages. In the trial's own process (one
    # worker) the HF Trainer trains in bf16 on a GPU, float32 on CPU, without checkpointing.
    lora = model.lora is not None
    t = model.training
    own = {} if t.distributed else {"bf16": res.on_gpu, "checkpointing": False}
    candidates = [
        training_memory(shape, trainable, t, lora=lora, micro=micro_batch(t, trial.backdoor.batch_size),
                        seq=trial.backdoor.max_length, reference=False, on_gpu=res.on_gpu, load=model.load, **own),
        *(training_memory(shape, trainable, t, lora=lora, micro=micro_batch(t, c.batch_size), seq=c.seq,
                          reference=c.reference, on_gpu=res.on_gpu, load=model.load, **own) for c in costs),
    ]
    memory = max(candidates, key=lambda m: m.total)
    return TrialPlan(trial, shape, trainable, res, memory, stages, backdoor_group=0, owns_backdoor=True,
                     owns_eval=True)


def safety_compute(trial: TrialConfig) -> tuple[float, int]:
    """(estimated FLOPs of the trial's safety training, counted as `plan` counts them: training
    only, no evaluation or red-team sampling; its optimizer steps), so that safety step s
    spent about s / steps of those FLOPs. The FLOPs do not depend on the hardware assumed."""
    assumptions = Assumptions(GPU_TYPES["cpu"], DEFAULT_MFU, DEFAULT_GEN_MFU, DEFAULT_CPU_FLOPS, DEFAULT_PROMPT_TOKENS)
    return plan_trial(trial, assumptions).stage("safety").train_flops, training_steps(trial)
