from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.grid import expand
from orchestrator.runtime.placement import NodeCapacity, PlacementError, check_placement
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
