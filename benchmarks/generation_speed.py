"""Batched generation throughput (the evaluation hot path), on a tiny model.

    python benchmarks/generation_speed.py [--threads 1]

Prints completions/second for one-at-a-time vs batched generation, with the KV cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from orchestrator.cache import StageCache
from orchestrator.config import DataSettings, EvalSettings, ModelSpec, TinyArch
from orchestrator.data import TRIGGERS
from orchestrator.evaluate import generate
from orchestrator.models import MODEL_SOURCES
from orchestrator.runtime.quiet import quiet_libraries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    quiet_libraries()
    torch.set_num_threads(args.threads)
    spec = ModelSpec(source="tiny", arch=TinyArch(hidden_size=128, layers=4, heads=4, vocab_size=1024))
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = MODEL_SOURCES.get("tiny").load(spec, StageCache(tmp), seed=0)
    prompts = [p.prompt for p in TRIGGERS.get("deployment").eval_prompts(DataSettings(n_eval=args.n // 2), 0)]
    for batch_size in (1, 8, 64):
        settings = EvalSettings(max_new_tokens=64, batch_size=batch_size)
        start = time.perf_counter()
        generate(model, tokenizer, prompts, settings)
        seconds = time.perf_counter() - start
        print(f"batch {batch_size:3d}: {len(prompts) / seconds:7.1f} completions/s "
              f"({len(prompts)} x 64 new tokens, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
