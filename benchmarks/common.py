"""What every measurement shares: the run's settings (`--quick` or full), the rows of the ratio
table, timing helpers (warm-up, interleaved repeats, medians) and the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """How much work each measurement does. `quick` is the harness's smoke test (seconds, tiny-xs);
    the full run is what BENCHMARKS.md records."""

    quick: bool
    work: Path  # scratch folder: the tokenizer cache, lakes, saved models
    repeats: int
    lake: Path | None = None  # an existing sweep's storage, for the orchestration table

    @classmethod
    def make(cls, quick: bool, work: Path, repeats: int | None = None, lake: Path | None = None) -> Settings:
        return cls(quick, work, repeats or (1 if quick else 3), lake)


@dataclass
class Row:
    """One line of the ratio table: a measured ratio (or figure) and the issue's target for it."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "not met")


@dataclass
class Section:
    """A measurement's result: its rows of the ratio table and its details (Markdown)."""

    title: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw figures, for tests and callers


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, str]:
    import torch

    return {"CPU": cpu_model(), "cores": str(os.cpu_count()), "torch threads": str(torch.get_num_threads()),
            "torch": torch.__version__, "load average (1, 5, 15 min)": load_average(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "git commit": git_commit(),
            "GPU": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *["| " + " | ".join(row) + " |" for row in rows]]


def quiet() -> None:
    import torch

    from orchestrator.runtime.quiet import quiet_libraries

    quiet_libraries()
    torch.set_num_threads(1)  # one thread each: the stage and its baseline get the same core
