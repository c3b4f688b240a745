from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.grid import expand
from orchestrator.runtime.placement import (
    NodeCapacity,
    PlacementError,
    _bootstrap_node_types,
    check_placement,
    launchable_nodes,
)
from orchestrator.spec import load_sweep


def test_fits_or_says_what_is_short(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    trials = expand(load_sweep(write_spec(smoke_raw)))
    check_placement(trials, [NodeCapacity(2, 0)], "spec.yaml")
    smoke_raw["models"]["tiny-xs"]["gpus"] = 1
    trials = expand(load_sweep(write_spec(smoke_raw)))
    with pytest.raises(PlacementError, match=r"models.tiny-xs.*short of GPU \(needs 1, largest node has 0\)"):
        check_placement(trials, [NodeCapacity(2, 0), NodeCapacity(8, 0)], "spec.yaml")


def test_cli_refuses_an_unplaceable_plan_at_once(
    ray_local: None, write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    smoke_raw["models"]["tiny-xs"]["cpus"] = 64
    storage = tmp_path / "lake"
    assert main(["run", str(write_spec(smoke_raw)), "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert "needs 64 CPU" in err and "short of CPU" in err
    assert not (storage / "lake").exists()


def test_node_types_the_autoscaler_may_add_count(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    """A fresh cluster from cluster.yaml: a head without GPUs, GPU workers scaled from zero."""
    smoke_raw["models"]["tiny-xs"]["gpus"] = 1
    smoke_raw["resources"] = {"node_types": [{"name": "gpu", "cpus": 8, "gpus": 4, "max_workers": 2}]}
    spec = load_sweep(write_spec(smoke_raw))
    trials = expand(spec)
    head = [NodeCapacity(4, 0)]
    launchable = launchable_nodes(spec.resources.node_types)
    assert launchable == [NodeCapacity(8, 4)] * 2
    check_placement(trials, head, "spec.yaml", launchable)
    with pytest.raises(PlacementError, match="1 node\\(s\\) alive, 4 CPU, 0 GPU"):
        check_placement(trials, head, "spec.yaml")  # without them: no GPU anywhere
    smoke_raw["models"]["tiny-xs"]["gpus"] = 8  # no node type holds it: refused all the same
    with pytest.raises(PlacementError, match=r"and 2 the autoscaler may add.*largest node has 4"):
        check_placement(expand(load_sweep(write_spec(smoke_raw))), head, "spec.yaml", launchable)


def test_node_types_from_the_ray_up_bootstrap_config(tmp_path: Path) -> None:
    config = tmp_path / "ray_bootstrap_config.yaml"
    config.write_text(yaml.safe_dump({
        "max_workers": 10, "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 8}, "node_config": {}},
            "gpu-8x": {"resources": {"CPU": 192, "GPU": 8}, "max_workers": 2, "node_config": {}},
            "gpu-1x": {"resources": {"CPU": 16, "GPU": 1}, "node_config": {}},  # the cluster's max
        }}))
    assert sorted(_bootstrap_node_types(config)) == [(16.0, 1.0, 10), (192.0, 8.0, 2)]
    assert _bootstrap_node_types(tmp_path / "absent.yaml") == []


def test_local_storage_on_several_nodes_is_refused(
    ray_local: None, write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    smoke_raw["resources"] = {"node_types": [{"name": "cpu", "cpus": 2, "max_workers": 4}]}
    storage = tmp_path / "lake"
    assert main(["run", str(write_spec(smoke_raw)), "--storage", str(storage)]) == 2
    assert "each node would write its own lake" in capsys.readouterr().err
    assert not storage.exists()
