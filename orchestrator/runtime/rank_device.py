"""Each Ray Train rank that asks for a GPU checks CUDA in its own process before it trains.

The check has to run before Ray Train forms the NCCL process group: on a node whose torch cannot
use CUDA, `init_process_group("nccl")` fails first, with a traceback that names neither the node
nor the reason (for a CPU build of torch: "Distributed package doesn't have NCCL built in"), and
a check inside the training loop never runs. So the torch backend's start, which Ray Train runs
once every rank's process exists, first runs `orchestrator.device.require_cuda` on every rank
(Ray's own TorchftConfig extends the torch backend's start the same way), and the trial's
process turns what comes back from `fit()` into that rank's `DeviceError` (`rank_refusal`): the
trials row then names the node and the reason. Ray Train does not retry it (its FailureConfig
allows no failure by default), and the trial reports it as failed rather than raising, so Tune
does not retry it either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray
from ray.train.torch import TorchConfig
from ray.train.torch.config import _TorchBackend

from orchestrator.device import DeviceError, require_cuda


@dataclass
class RankCheckedTorchConfig(TorchConfig):  # type: ignore[misc]
    """Ray Train's TorchConfig; with `gpus_per_worker` > 0 every rank checks CUDA first."""

    gpus_per_worker: int = 0

    @property
    def backend_cls(self) -> type[_TorchBackend]:
        return _RankCheckedBackend


class _RankCheckedBackend(_TorchBackend):  # type: ignore[misc]
    def on_start(self, worker_group: Any, backend_config: RankCheckedTorchConfig) -> None:
        if backend_config.gpus_per_worker:
            ray.get([worker_group.execute_single_async(rank, require_cuda, backend_config.gpus_per_worker,
                                                       f"Ray Train rank {rank}")
                     for rank in range(len(worker_group))])
        super().on_start(worker_group, backend_config)


def rank_refusal(error: BaseException) -> DeviceError | None:
    """The DeviceError of a rank inside what `TorchTrainer.fit()` raised, if it holds one."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        err = pending.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, DeviceError):
            return DeviceError(*err.args)  # the message alone, not Ray's wrapper around it
        # ControllerError.controller_failure, WorkerGroupError.worker_failures, RayTaskError.cause
        pending += [getattr(err, "controller_failure", None), getattr(err, "cause", None),
                    *(getattr(err, "worker_failures", None) or {}).values(), err.__cause__, err.__context__]
    return None
