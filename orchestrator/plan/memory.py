"""A model's shape and what training it holds per GPU.

Parameters N: `models.<scale>.size.params`; for source `tiny` counted from `arch` (a Llama with
    tied embeddings and as many key/value heads as heads):
    N = V h + L (4 h^2 + 3 h I + 2 h) + h (embeddings, attention q/k/v/o, gated MLP, two RMSNorms
    per layer, final norm); for `smollm2-gguf` SmolLM2-135M-Instruct's 134.5M (30 layers, hidden
    576, vocabulary 49152).
Trainable parameters T: N, or with LoRA 2 r h x (target modules) x L (A and B of every adapted
    projection, each taken as h x h: an estimate).
Memory per GPU (bytes; ZeRO divides by the W workers):
    weights 2 N (4 N without bf16), / W at ZeRO-3, on CPU with offload_params;
    gradients 2 T (4 T), / W at ZeRO >= 2;
    optimizer 12 T (Adam: fp32 master + m + v; 8 T in fp32 training), / W at ZeRO >= 1, on
    CPU with offload_optimizer;
    ZeRO-3 also holds two layers' parameters gathered (2 x bytes x N / L);
    a method with a KL reference (grpo with rl.beta > 0) and full fine-tuning: a reference copy
    of the weights, sharded like them;
    activations micro_batch x seq x h x 34 bytes per layer x L (Korthikanti et al., 16-bit,
    flash attention); with activation checkpointing only the layer inputs (2 h bytes per layer
    per token) plus one layer's full activations: micro x seq x h x (2 L + 34); doubled in fp32;
    a one-worker scale trains in the trial's process as the code does: the section's batch_size
    per device step, no checkpointing, bf16 on a GPU (float32 on CPU);
    logits micro x seq x V x 8 bytes (fp32 logits and their gradient);
    OVERHEAD_GB for the CUDA context, communication buffers and fragmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import ConfigError, LoadSpec, ModelSpec, TrainingResources
from orchestrator.plan.hardware import GB, OVERHEAD_GB

ACTIVATION_BYTES = 34  # per token per hidden unit per layer, 16-bit, no attention-score storage
LOGIT_BYTES = 8


@dataclass(frozen=True)
class ModelShape:
    params: float
    layers: int
    hidden: int
    vocab: int


# The real SmolLM2-135M-Instruct that source `smollm2-gguf` ships.
SMOLLM2_135M = ModelShape(params=134_515_008.0, layers=30, hidden=576, vocab=49152)


def gb_text(value: float) -> str:
    """Bytes as GB, one decimal (two significant digits below 0.1 GB)."""
    return f"{value / GB:.1f}" if value >= 0.1 * GB else f"{value / GB:.2g}"


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
        text = " + ".join(f"{name} {gb_text(value)}" for name, value in parts if value)
        if self.cpu_offload:
            text += f" (and {gb_text(self.cpu_offload)} GB offloaded to CPU memory per worker)"
        return f"{gb_text(self.total)} GB = {text} (micro-batch {self.micro} x {self.seq} tokens)"


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


def micro_batch(training: TrainingResources, batch_size: int) -> int:
    """Examples per forward pass of one worker. A one-worker scale trains in the trial's process
    with the section's batch_size per device step (micro_batch_size is for Ray Train workers)."""
    if not training.distributed:
        return batch_size
    return training.micro_batch_size or max(1, batch_size // training.workers)
