"""Check up front that the cluster can place every trial: never a trial PENDING forever."""

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
    return {"CPU": trial.model.cpus, "GPU": trial.model.gpus}


def alive_nodes(nodes: Sequence[dict[str, Any]]) -> list[NodeCapacity]:
    """From `ray.nodes()`."""
    return [NodeCapacity(n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0))
            for n in nodes if n.get("Alive")]


def check_placement(trials: Sequence[TrialConfig], nodes: Sequence[NodeCapacity], source: str) -> None:
    """Raise PlacementError unless each trial fits on at least one node."""
    if not nodes:
        raise PlacementError("the Ray cluster has no alive nodes")
    total_cpu = sum(n.cpus for n in nodes)
    total_gpu = sum(n.gpus for n in nodes)
    for scale in sorted({t.scale for t in trials}):
        need = trial_resources(next(t for t in trials if t.scale == scale))
        if any(n.cpus >= need["CPU"] and n.gpus >= need["GPU"] for n in nodes):
            continue
        largest = max(nodes, key=lambda n: (n.gpus, n.cpus))
        short = []
        if not any(n.cpus >= need["CPU"] for n in nodes):
            short.append(f"CPU (needs {need['CPU']:g}, largest node has {max(n.cpus for n in nodes):g})")
        if not any(n.gpus >= need["GPU"] for n in nodes):
            short.append(f"GPU (needs {need['GPU']:g}, largest node has {max(n.gpus for n in nodes):g})")
        if not short:
            short.append(f"no single node has both (largest: {largest.cpus:g} CPU, {largest.gpus:g} GPU)")
        raise PlacementError(
            f"{source}: field `models.{scale}`: a trial of scale {scale!r} needs "
            f"{need['CPU']:g} CPU and {need['GPU']:g} GPU on one node, but the cluster "
            f"({len(nodes)} node(s), {total_cpu:g} CPU, {total_gpu:g} GPU in total) is short of "
            f"{'; '.join(short)}. Lower `cpus`/`gpus` of that scale or add nodes."
        )
