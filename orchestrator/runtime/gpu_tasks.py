"""Functions run as Ray tasks with a fixed set of resources, each holding them only while it runs.

A trial whose training runs on Ray Train workers holds no GPU in its own process; what needs its
model on GPUs runs through one of these (orchestrator.models.saved). The tasks leave the trial's
placement group (Tune's bundle has no GPU to give them) and are scheduled like the Ray Train
workers: by the cluster, when the resources are free. A task that asks for GPUs refuses to run
where CUDA is not usable (orchestrator.device), and records where it ran.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.device import DeviceError, require_cuda, where
from orchestrator.storage import Storage


class RayTasks:
    """Runs `fn(*args)` as Ray tasks with `resources` ({"CPU": n, "GPU": m}). Folders reach
    tasks on other nodes through `scratch`: uploaded to it when it is an object store; when it
    is a local folder (one machine, or a filesystem every node mounts), read in place if they
    are under `shared` (the storage's folder, e.g. the stage cache), else copied into it."""

    def __init__(self, resources: dict[str, float], scratch: Storage, name: str, shared: Path | None = None) -> None:
        self.resources, self.scratch, self.name, self.shared = resources, scratch, name, shared
        self.runs: list[dict[str, Any]] = []  # {kind: task, function, seconds, cpus, gpus, where}: per task
        self._copies: dict[Path, str] = {}  # folder -> its copy or upload, made once

    def share(self, folder: Path) -> str:
        """Where a task on any node reads `folder` (copied or uploaded once per folder)."""
        if self.scratch.is_local and self.shared is not None and folder.resolve().is_relative_to(self.shared.resolve()):
            return str(folder)
        if folder not in self._copies:
            key = f"{self.name}-models/{uuid.uuid4().hex[:12]}"
            if self.scratch.is_local:  # node-local (a temporary folder, the Hugging Face cache)
                shutil.copytree(folder, self.scratch.local_root / key)
            else:
                self.scratch.upload(folder, key)
            self._copies[folder] = self.scratch.child(key)
        return self._copies[folder]

    def run(self, label: str, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in a task; `label` names it in the trials row and in errors."""
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        cpus, gpus = self.resources.get("CPU", 0.0), self.resources.get("GPU", 0.0)
        task = ray.remote(_task).options(
            # A task whose process or node died runs again elsewhere; an error it raises does not.
            num_cpus=cpus, num_gpus=gpus, max_retries=2, retry_exceptions=False,
            # Not in the calling trial's placement group, which has no GPU bundle to give.
            scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=None))
        what = f"{self.name}: {label} task"
        try:
            value, place, seconds = ray.get(task.remote(fn, args, gpus, what))
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, DeviceError):  # its one line, not the remote traceback
                raise err.cause from None
            raise
        self.runs.append({"kind": "task", "function": label, "seconds": round(seconds, 3),
                          "cpus": cpus, "gpus": gpus, "where": place})
        return value

    def close(self) -> None:
        """Remove the folders shared with tasks."""
        if self._copies:
            self.scratch.delete_tree(f"{self.name}-models")
        self._copies.clear()


def _task(fn: Callable[..., Any], args: tuple[Any, ...], gpus: float, what: str) -> tuple[Any, dict[str, Any], float]:
    """In the task's process: the CUDA check, the call, and where it ran."""
    import ray
    import torch

    require_cuda(gpus, what)
    # The CPUs Ray gave this task, not the machine's cores.
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0))))
    started = time.perf_counter()
    value = fn(*args)
    return value, where(), time.perf_counter() - started
