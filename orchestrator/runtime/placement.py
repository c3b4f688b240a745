"""Check up front that the cluster can place every trial: never a trial PENDING forever.

A trial is its own process (the Ray Tune trial: data, evaluation, and training when its scale
has one worker) plus, for multi-worker scales, the Ray Train workers it launches and, in turn
with them (never at the same time), its evaluation tasks on the scale's `gpus`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import NodeType, TrialConfig
from orchestrator.storage import Storage

log = logging.getLogger(__name__)
# A node type with no limit (max_count -1) is counted as this many nodes: enough for any trial.
UNBOUNDED_NODES = 64
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")  # where `ray up` puts the config on the head


class PlacementError(Exception):
    """The resource plan does not fit the cluster; the message says what is short."""


@dataclass(frozen=True)
class NodeCapacity:
    cpus: float
    gpus: float


def trial_resources(trial: TrialConfig) -> dict[str, float]:
    """The Ray resources of the trial's own process (no GPU for a multi-worker scale)."""
    return {"CPU": trial.model.cpus, "GPU": trial.model.process_gpus}


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


def launchable_nodes(declared: Sequence[NodeType] | None = None) -> list[NodeCapacity]:
    """The nodes an autoscaler may add: from `declared` (the spec's `resources.node_types`), else
    from Ray's cluster config (autoscaler v2, KubeRay), else from the `ray up` bootstrap config
    on this head node; [] on a cluster that does not autoscale."""
    types = [(t.cpus, t.gpus, t.max_workers) for t in declared or ()]
    if not types:
        types = _ray_node_groups() or _bootstrap_node_types()
    return [NodeCapacity(cpus, gpus) for cpus, gpus, count in types
            for _ in range(min(count, UNBOUNDED_NODES) if count >= 0 else UNBOUNDED_NODES)]


def _ray_node_groups() -> list[tuple[float, float, int]]:
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception as err:  # an older or a non-autoscaling cluster
        log.debug("no cluster config from Ray: %s", err)
        return []
    if config is None:
        return []
    return [(float(g.resources.get("CPU", 0)), float(g.resources.get("GPU", 0)), int(g.max_count))
            for g in config.node_group_configs]


def _bootstrap_node_types(path: Path = BOOTSTRAP_CONFIG) -> list[tuple[float, float, int]]:
    import yaml

    file = path.expanduser()
    if not file.is_file():
        return []
    config = yaml.safe_load(file.read_text()) or {}
    head = config.get("head_node_type")
    return [(float(t.get("resources", {}).get("CPU", 0)), float(t.get("resources", {}).get("GPU", 0)),
             int(t.get("max_workers", config.get("max_workers", 0))))
            for name, t in (config.get("available_node_types") or {}).items() if name != head]


def check_storage(storage: Storage, nodes: Sequence[NodeCapacity], launchable: Sequence[NodeCapacity],
                  shared_fs: bool) -> None:
    """Raise PlacementError for a local folder on a cluster of several nodes (alive, or that the
    autoscaler may add) unless `shared_fs` says it is one filesystem mounted on every node:
    else each node would write its own lake and stage cache."""
    if storage.is_local and (len(nodes) > 1 or launchable) and not shared_fs:
        raise PlacementError(
            f"--storage {storage}: a local folder, but the Ray cluster has {len(nodes)} node(s)"
            f"{' and may add more' if launchable else ''}: each node would write its own lake and "
            "stage cache. Use --storage s3://bucket/prefix, or pass --shared-fs if this folder is "
            "one shared filesystem (NFS, EFS, Lustre) mounted at the same path on every node.")


def _fits(need: dict[str, float], node: NodeCapacity) -> bool:
    return node.cpus >= need.get("CPU", 0.0) and node.gpus >= need.get("GPU", 0.0)


def check_placement(trials: Sequence[TrialConfig], nodes: Sequence[NodeCapacity], source: str,
                    launchable: Sequence[NodeCapacity] = ()) -> None:
    """Raise PlacementError unless each trial's process fits on one node and its workers fit
    the cluster alongside it (each on some node; on distinct nodes for STRICT_SPREAD), and so
    does its evaluation task (on one node), which runs when the workers are done. Nodes the
    autoscaler may add (`launchable`) count as well as the alive `nodes`."""
    alive = len(nodes)
    nodes = [*nodes, *launchable]
    if not nodes:
        raise PlacementError("the Ray cluster has no alive nodes")
    total_cpu = sum(n.cpus for n in nodes)
    total_gpu = sum(n.gpus for n in nodes)
    cluster = (f"the cluster ({alive} node(s) alive"
               + (f" and {len(launchable)} the autoscaler may add" if launchable else "")
               + f", {total_cpu:g} CPU, {total_gpu:g} GPU in total)")
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
        task = trial.model.task_resources
        if not any(_fits(task, n) for n in nodes) or need["CPU"] + task["CPU"] > total_cpu:
            raise PlacementError(
                f"{source}: field `models.{scale}`: its evaluation task needs {task['CPU']:g} CPU and "
                f"{task['GPU']:g} GPU on one node, beside the trial's process ({need['CPU']:g} CPU); "
                f"{cluster} cannot run them. Lower `cpus`/`gpus` of that scale or add nodes.")
