"""Check up front that the cluster can place every trial: never a trial PENDING forever.

A trial is its own process (the Ray Tune trial: data, evaluation, and training when its scale
has one worker) plus, for multi-worker scales, the Ray Train workers it launches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.config import TrialConfig


class PlacementError(Exception):
    """The resource plan does not fit the cluster; the message says what is short."""


@dataclass(frozen=True)
class NodeCapacity:
    cpus: float
    gpus: float


def trial_resources(trial: TrialConfig) -> dict[str, float]:
    """The Ray resources of the trial's own process."""
    return {"CPU": trial.model.cpus, "GPU": trial.model.gpus}


def tune_bundle(trial: TrialConfig) -> dict[str, float]:
    """The trial's placement-group bundle for Tune. A bundle may not be empty: a driver that
    needs no CPU (its workers train) asks for a token amount of memory instead."""
    return {k: v for k, v in trial_resources(trial).items() if v} or {"memory": 1024 * 1024}


def worker_resources(trial: TrialConfig) -> list[dict[str, float]]:
    """One bundle per Ray Train worker; none for a one-worker scale."""
    training = trial.model.training
    if not training.distributed:
        return []
    return [{"CPU": training.cpus_per_worker, "GPU": float(training.gpus_per_worker)}] * training.workers


def alive_nodes(nodes: Sequence[dict[str, Any]]) -> list[NodeCapacity]:
    """From `ray.nodes()`."""
    return [NodeCapacity(n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0))
            for n in nodes if n.get("Alive")]


def _fits(need: dict[str, float], node: NodeCapacity) -> bool:
    return node.cpus >= need.get("CPU", 0.0) and node.gpus >= need.get("GPU", 0.0)


def check_placement(trials: Sequence[TrialConfig], nodes: Sequence[NodeCapacity], source: str) -> None:
    """Raise PlacementError unless each trial's process fits on one node and its workers fit
    the cluster alongside it (each on some node; on distinct nodes for STRICT_SPREAD)."""
    if not nodes:
        raise PlacementError("the Ray cluster has no alive nodes")
    total_cpu = sum(n.cpus for n in nodes)
    total_gpu = sum(n.gpus for n in nodes)
    cluster = f"the cluster ({len(nodes)} node(s), {total_cpu:g} CPU, {total_gpu:g} GPU in total)"
    for scale in sorted({t.scale for t in trials}):
        trial = next(t for t in trials if t.scale == scale)
        need = trial_resources(trial)
        if not any(_fits(need, n) for n in nodes):
            short = []
            if not any(n.cpus >= need["CPU"] for n in nodes):
                short.append(f"CPU (needs {need['CPU']:g}, largest node has {max(n.cpus for n in nodes):g})")
            if not any(n.gpus >= need["GPU"] for n in nodes):
                short.append(f"GPU (needs {need['GPU']:g}, largest node has {max(n.gpus for n in nodes):g})")
            if not short:
                largest = max(nodes, key=lambda n: (n.gpus, n.cpus))
                short.append(f"no single node has both (largest: {largest.cpus:g} CPU, {largest.gpus:g} GPU)")
            raise PlacementError(
                f"{source}: field `models.{scale}`: a trial of scale {scale!r} needs "
                f"{need['CPU']:g} CPU and {need['GPU']:g} GPU on one node, but {cluster} is short of "
                f"{'; '.join(short)}. Lower `cpus`/`gpus` of that scale or add nodes."
            )
        workers = worker_resources(trial)
        if not workers:
            continue
        worker = workers[0]
        fitting = [n for n in nodes if _fits(worker, n)]
        cpu = need["CPU"] + sum(w["CPU"] for w in workers)
        gpu = need["GPU"] + sum(w["GPU"] for w in workers)
        strict = trial.model.training.placement == "STRICT_SPREAD"
        problem = None
        if not fitting:
            problem = (f"a worker needs {worker['CPU']:g} CPU and {worker['GPU']:g} GPU on one node, "
                       "which no node has")
        elif strict and len(fitting) < len(workers):
            problem = (f"STRICT_SPREAD needs {len(workers)} nodes that each hold a worker, "
                       f"the cluster has {len(fitting)}")
        elif cpu > total_cpu or gpu > total_gpu:
            problem = (f"the trial's process and its {len(workers)} workers need {cpu:g} CPU and "
                       f"{gpu:g} GPU together")
        if problem:
            raise PlacementError(
                f"{source}: field `models.{scale}.training`: {problem}; {cluster} cannot run them "
                "at once. Lower `cpus`, `training.workers` or `training.cpus_per_worker`, or add nodes."
            )
