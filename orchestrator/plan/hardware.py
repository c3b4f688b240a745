"""The cluster a plan assumes: GPU types, utilisation, and how a trial of a scale holds its GPUs
and CPUs (its own process, its Ray Train workers, ZeRO, LoRA)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import ModelSpec, TrainingResources

GB = 1e9
OVERHEAD_GB = 2.0  # per GPU: the CUDA context, communication buffers and fragmentation


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
class Resources:
    """How a trial of a scale runs: its own process, its workers, ZeRO, LoRA."""

    workers: int
    gpus_per_worker: int
    cpus_per_worker: float
    # Where evaluation runs: the trial's own process (which trains too, with one worker), or
    # with several workers its evaluation tasks, which hold them only between training runs.
    eval_gpus: float
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
        """The most GPUs the trial holds at once: its workers' or its evaluation task's, in turn."""
        return max(self.eval_gpus, self.workers * self.gpus_per_worker) if self.distributed else self.eval_gpus

    @property
    def cpus(self) -> float:
        return self.process_cpus + (self.workers * self.cpus_per_worker if self.distributed else 0)

    @property
    def training_gpus(self) -> float:
        return self.workers * self.gpus_per_worker if self.distributed else self.eval_gpus

    @property
    def training_cpus(self) -> float:
        return self.workers * self.cpus_per_worker if self.distributed else self.process_cpus

    def describe(self) -> str:
        """workers x GPUs each (then the evaluation tasks' GPUs), or the CPUs of a CPU-only trial."""
        if not self.gpus:
            return f"{self.workers}x{self.cpus_per_worker:g}cpu" if self.distributed else f"{self.process_cpus:g}cpu"
        if self.distributed:
            text = f"{self.workers}x{self.gpus_per_worker}"
            return text + (f"|{self.eval_gpus:g}" if self.eval_gpus else "")
        return f"1x{self.eval_gpus:g}"

    @property
    def zero(self) -> str:
        if not self.distributed:
            return "-"
        offload = [name for name, on in (("opt", self.offload_optimizer), ("par", self.offload_params)) if on]
        return str(self.zero_stage) + (f"+off:{','.join(offload)}" if offload else "")


def resources(model: ModelSpec, gpu: GPUType) -> Resources:
    t: TrainingResources = model.training
    has_gpus = gpu.peak_flops is not None
    on_gpu = has_gpus and (bool(t.gpus_per_worker) if t.distributed else model.gpus > 0)
    return Resources(
        workers=t.workers, gpus_per_worker=t.gpus_per_worker if has_gpus else 0,
        cpus_per_worker=t.cpus_per_worker, eval_gpus=model.gpus if has_gpus else 0.0,
        process_cpus=model.cpus, zero_stage=t.zero.stage, offload_optimizer=t.zero.offload_optimizer,
        offload_params=t.zero.offload_params, lora_r=model.lora.r if model.lora else None, on_gpu=on_gpu,
    )
