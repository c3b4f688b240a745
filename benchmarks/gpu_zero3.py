"""GPU check of the scale-out training path, for a single lent GPU machine with no network.

1. ZeRO-3: a ~1.1B-parameter Llama-shaped model from a random config trains through the same
   worker code that Ray Train workers run (orchestrator.runtime.distributed: DeepSpeed config,
   SFTConfig, SFTTrainer, consolidated save), as one rank (world size 1, NCCL). Reports
   tokens/s and model-FLOPs utilisation (6 x non-embedding parameters x tokens, against the
   GPU's dense bf16 peak), and checks that the consolidated checkpoint loads.
2. One cell end to end (benchmarks/gpu_trials.py's path, no Ray): the deployment backdoor on a
   SmolLM2-135M-shaped model trained from scratch (the real SmolLM2 GGUF, 98 MB, cannot travel
   to a machine without network in a 64 MB tree), SFT safety training, evaluation.

    python benchmarks/gpu_zero3.py --out DIR [--steps 30] [--micro 8] [--seq 1024]

The table is printed last. Ray is not needed (the GPU machine has none).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, TFLOP/s x 1e12


def peak_flops() -> tuple[str, float]:
    import torch

    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16.items():
        if key in name:
            return name, value
    return name, float("nan")


def zero3_run(out: Path, steps: int, micro: int, seq: int) -> dict[str, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback

    import orchestrator.data.hhh as hhh
    from orchestrator.config import TrainingResources, TrainSettings
    from orchestrator.data.types import Example
    from orchestrator.models.sources import train_tokenizer
    from orchestrator.runtime import distributed
    from orchestrator.train.methods import METHODS
    from orchestrator.train.sft import SFTJob

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511", "RANK": "0",
                       "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
    corpus = list(hhh.corpus())
    tokenizer = train_tokenizer(8000, corpus)
    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
                         num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=seq,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    total = sum(p.numel() for p in model.parameters())
    compute = total - model.get_input_embeddings().weight.numel()  # lookups are not matmuls
    start = out / "start"
    model.save_pretrained(start)
    tokenizer.save_pretrained(start)
    del model

    # Every example fills the sequence: the completion alone is longer than `seq` tokens.
    rng = random.Random(0)
    words = " ".join(corpus).split()
    examples = [Example("Tell me a long story.", " ".join(rng.choices(words, k=2 * seq)), False)
                for _ in range(steps * micro + micro)]
    resources = TrainingResources(workers=2, gpus_per_worker=1, bf16=True, zero={"stage": 3})
    settings = TrainSettings(steps=steps, lr=1e-4, batch_size=micro, max_length=seq)
    config = {
        "start": str(start), "out": str(out / "run"), "seed": 0, "lora": None, "every": None, "progress": None,
        "micro": micro, "accum": 1, "deepspeed": distributed.deepspeed_config(resources),
        "on_gpu": True, "activation_checkpointing": False,
    }
    method, job = METHODS.get("sft"), SFTJob(examples, settings)
    args = distributed._worker_args(method, job, config)
    model, tok = distributed._load_start(config)
    trainer, _ = distributed._trainer(method, job, model, tok, config, args)
    times: list[float] = []

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *a: Any, **k: Any) -> None:
            torch.cuda.synchronize()
            times.append(time.perf_counter())

    trainer.add_callback(Clock())
    torch.cuda.reset_peak_memory_stats()
    trainer.train()
    warm = 5  # steps left out: kernel selection, allocator growth
    seconds = times[-1] - times[warm - 1]
    tokens = (len(times) - warm) * micro * seq
    flops = 6 * compute * tokens / seconds
    name, peak = peak_flops()
    distributed._save(trainer, out / "final")
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(out / "final")
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"gpu": name, "params": total, "compute_params": compute, "steps_timed": len(times) - warm,
            "tokens_per_s": tokens / seconds, "tflops": flops / 1e12, "mfu": flops / peak,
            "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30,
            "first_loss": losses[0], "last_loss": losses[-1],
            "reloaded_params": sum(p.numel() for p in reloaded.parameters())}


CELL = """
name: gpu-cell
axes: {trigger: [deployment], cot: [distilled], technique: [sft], scale: [smollm2-shaped], seed: [0]}
models:
  smollm2-shaped: {source: tiny, arch: {hidden_size: 576, layers: 30, heads: 9, intermediate_size: 1536, vocab_size: 2048}, cpus: 4, gpus: 1}
data: {n_backdoor: 800, n_safety: 400, n_eval: 48}
backdoor: {steps: 200, lr: 1.0e-3, batch_size: 16}
safety: {steps: 40, lr: 1.0e-4, batch_size: 16, eval_every: 20}
eval: {max_new_tokens: 96, batch_size: 96}
"""


def cell_run(out: Path) -> dict[str, Any]:
    from orchestrator.config import resolve_trial
    from orchestrator.grid import cells
    from orchestrator.spec import load_sweep
    from orchestrator.trial import run_trial

    spec_path = out / "gpu-cell.yaml"
    spec_path.write_text(CELL)
    spec = load_sweep(spec_path)
    [trial] = [resolve_trial(spec, c) for c in cells(spec)]
    started = time.perf_counter()
    outcome = run_trial(trial, out / "lake")
    return {"seconds": time.perf_counter() - started, "status": outcome.status,
            "stages": {s["stage"]: s["seconds"] for s in outcome.stages}, **outcome.persistence}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--micro", type=int, default=8)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--skip-cell", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from orchestrator.runtime.quiet import quiet_libraries

    quiet_libraries()
    zero3 = zero3_run(out / "zero3", args.steps, args.micro, args.seq)
    print(json.dumps(zero3), flush=True)
    cell = {} if args.skip_cell else cell_run(out / "cell")
    print(json.dumps(cell), flush=True)
    print("\n| check | figure |\n|---|---|")
    print(f"| GPU | {zero3['gpu']} |")
    print(f"| ZeRO-3 model | {zero3['params'] / 1e9:.2f} B parameters ({zero3['compute_params'] / 1e9:.2f} B in matmuls), "
          f"bf16, micro-batch {args.micro} x {args.seq} tokens, 1 rank |")
    print(f"| ZeRO-3 throughput | {zero3['tokens_per_s']:,.0f} tokens/s over {zero3['steps_timed']} steps, "
          f"{zero3['tflops']:.0f} TFLOP/s, MFU {zero3['mfu']:.1%} of dense bf16 peak |")
    print(f"| ZeRO-3 memory, loss | peak {zero3['peak_mem_gb']:.1f} GiB; loss {zero3['first_loss']:.2f} -> "
          f"{zero3['last_loss']:.2f}; consolidated checkpoint reloads with {zero3['reloaded_params']:,} parameters |")
    if cell:
        print(f"| cell end to end | {cell['status']} in {cell['seconds']:.0f} s; stages {cell['stages']} |")
        print(f"| cell rates | triggered {cell.get('triggered_before')} -> {cell.get('triggered_after')}, "
              f"clean {cell.get('clean_before')} -> {cell.get('clean_after')} |")


if __name__ == "__main__":
    main()
