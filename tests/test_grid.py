from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.config import resolve_trial
from orchestrator.grid import cells, expand, param_space, resolve_grid
from orchestrator.spec import load_sweep


def test_grid_is_the_product_of_the_axes(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["seed"] = [0, 1]
    smoke_raw["axes"]["safety.lr"] = [1e-4, 1e-3]
    spec = load_sweep(write_spec(smoke_raw))
    trials = expand(spec)
    assert len(trials) == 3 * 2 * 2
    cells = {(t.cot, t.seed, t.safety.lr) for t in trials}
    assert cells == set(itertools.product(("cot", "distilled", "none"), (0, 1), (1e-4, 1e-3)))
    assert len({t.trial_id for t in trials}) == len(trials)


def test_param_space_uses_tune_grid_search(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    space = param_space(load_sweep(write_spec(smoke_raw)))
    assert space["axes"]["cot"] == {"grid_search": ["cot", "distilled", "none"]}


def test_trial_ids_are_stable(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    first = [t.trial_id for t in expand(load_sweep(write_spec(smoke_raw, "a.yaml")))]
    second = [t.trial_id for t in expand(load_sweep(write_spec(smoke_raw, "b.yaml")))]
    assert first == second
    smoke_raw["safety"]["lr"] = 5e-4  # any setting change is a different trial
    third = [t.trial_id for t in expand(load_sweep(write_spec(smoke_raw, "c.yaml")))]
    assert not set(first) & set(third)


def test_cli_grid_json(write_spec: Any, smoke_raw: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", str(write_spec(smoke_raw)), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["cot"] for r in rows] == ["cot", "distilled", "none"]
    assert {"trigger", "cot", "technique", "scale", "seed", "trial_id"} <= set(rows[0])


def test_a_union_of_grids(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    first = dict(smoke_raw["axes"])
    second = {**first, "cot": ["distilled"], "seed": [1, 2]}
    smoke_raw["axes"] = [first, second]
    spec = load_sweep(write_spec(smoke_raw))
    trials = expand(spec)
    assert [(t.cot, t.seed) for t in trials] == [
        ("cot", 0), ("distilled", 0), ("none", 0), ("distilled", 1), ("distilled", 2)]
    assert spec.values("seed") == (0, 1, 2)


def test_overlapping_grids_are_refused(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    from orchestrator.config import ConfigError

    smoke_raw["axes"] = [smoke_raw["axes"], {**smoke_raw["axes"], "cot": ["cot"]}]
    with pytest.raises(ConfigError, match="overlap"):
        load_sweep(write_spec(smoke_raw))


@pytest.mark.parametrize("sweep", ["smoke.yaml", "local.yaml"])
def test_cells_without_ray_are_the_trials_tune_expands(sweep: str) -> None:
    spec = load_sweep(Path(__file__).resolve().parent.parent / "sweeps" / sweep)
    plain = [resolve_trial(spec, cell).trial_id for cell in cells(spec)]
    assert sorted(plain) == sorted(t.trial_id for t in expand(spec)) and len(set(plain)) == len(plain)


def test_each_cell_is_resolved_once_and_found_by_its_axes(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    """A sweep looks each trial up by the axes Tune hands it (`Grid.trial`): the same trial,
    with the same id, as resolving the cell again; whatever the order of the axes."""
    from ray.tune.search.variant_generator import generate_variants

    first = dict(smoke_raw["axes"])
    smoke_raw["axes"] = [first, {**first, "cot": ["distilled"], "seed": [1], "safety.lr": [1e-3, 3e-4]}]
    spec = load_sweep(write_spec(smoke_raw))
    grid = resolve_grid(spec)
    assert grid.trials == expand(spec) and len(grid.by_cell) == len(grid.trials) == 5
    for index, (_, config) in enumerate(generate_variants(param_space(spec))):
        axes = dict(config["axes"])
        assert grid.trial(axes) is grid.trials[index]
        assert grid.trial(dict(reversed(list(axes.items())))).trial_id == resolve_trial(spec, axes).trial_id
    with pytest.raises(KeyError):
        grid.trial({**axes, "seed": 7})
