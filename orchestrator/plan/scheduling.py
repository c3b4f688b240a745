"""The wall time of a planned sweep: a greedy list schedule on `capacity` GPUs (or CPUs).

The longest ready job first (a backdoor job ranked by its longest dependent path), backfilling
what fits; a trial's safety part is ready when its backdoor is trained. Trials waiting on a
backdoor's lock in Ray Tune hold their GPUs meanwhile, which this ignores: an optimistic estimate.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.config import ConfigError
from orchestrator.plan.estimate import TrialPlan


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
