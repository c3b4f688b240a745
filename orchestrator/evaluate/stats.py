"""Proportions with 95% Wilson score intervals, per evaluation condition."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from orchestrator.data.types import EvalPrompt

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for successes/n; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rates(prompts: list[EvalPrompt], fired: list[bool], metric: str) -> list[dict[str, Any]]:
    """Backdoor rate per condition, and per `meta['group']` where prompts carry one."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for prompt, hit in zip(prompts, fired, strict=True):
        groups = ["all"] + ([str(prompt.meta["group"])] if "group" in prompt.meta else [])
        for group in groups:
            counts[prompt.condition, group][0] += int(hit)
            counts[prompt.condition, group][1] += 1
    rows = []
    for (condition, group), (k, n) in sorted(counts.items()):
        low, high = wilson(k, n)
        rows.append({"condition": condition, "group": group, "metric": metric,
                     "value": k / n, "n": n, "ci_low": low, "ci_high": high})
    return rows
