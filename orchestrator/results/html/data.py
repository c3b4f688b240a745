"""The frames the report's figures and tables share, shaped from the lake's tables."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.config import ConfigError, ModelSpec
from orchestrator.evaluate.evaluators import backdoor_metrics
from orchestrator.results.html.style import CONDITION_STYLE
from orchestrator.results.validity import VALID


def parameter_counts(trials: pd.DataFrame) -> dict[str, float]:
    """Parameters per scale, from each trial's resolved config (`trials.config`) with the
    planner's count (orchestrator.plan.model_shape: `size.params`, a tiny model's `arch`, the
    SmolLM2 GGUF's known count). A scale whose count cannot be known is left out."""
    from orchestrator.plan import model_shape

    counts: dict[str, float] = {}
    for scale, config in zip(trials["scale"], trials["config"], strict=True):
        if scale in counts or not isinstance(config, str):
            continue
        try:
            model = ModelSpec.model_validate(json.loads(config)["model"])
            counts[str(scale)] = float(model_shape(model, str(scale)).params)
        except (ValueError, KeyError, TypeError, ConfigError):
            # An old config this code cannot read, or an `hf` model without `size`: no count.
            continue
    return counts


def cell_label(row: Any, *, seed: bool = False) -> str:
    """`deployment / cot / sft / tiny-xs` (+ ` seed 1`, + extra-axis values when not `{}`)."""
    label = " / ".join(str(row[axis]) for axis in ("trigger", "cot", "technique", "scale"))
    if seed:
        label += f" / seed {row['seed']}"
    overrides = row.get("overrides", "{}") if hasattr(row, "get") else "{}"
    return label if overrides in ("{}", None) else f"{label} {overrides}"


def rate_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Backdoor-rate rows of the curve conditions, with the evaluation after backdoor training
    as safety step 0 (where both exist, the backdoor stage's)."""
    m = metrics[(metrics["group"] == "all") & metrics["metric"].isin(backdoor_metrics())
                & metrics["condition"].isin(list(CONDITION_STYLE))]
    m = m[m["stage"] != "base"]  # the untrained model's control: not on the safety-training axis
    m = m.assign(step=m["step"].where(m["stage"] == "safety", 0), first=m["stage"] == "backdoor")
    m = m.sort_values("first", ascending=False).drop_duplicates(["trial_id", "metric", "condition", "step"])
    return m.sort_values("step")


def invalid_trials(trials: pd.DataFrame) -> dict[str, str]:
    """trial_id -> validity label of the trials that are not valid (orchestrator.results.validity)."""
    if "validity" not in trials.columns:
        return {}
    bad = trials[trials["validity"].notna() & (trials["validity"] != VALID)]
    return dict(zip(bad["trial_id"].astype(str), bad["validity"].astype(str), strict=True))


def safety_flops(trials: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """trial_id -> (estimated safety-training FLOPs, safety steps), from each trial's resolved
    config with the planner's estimate (orchestrator.plan.safety_compute); a trial whose config
    this code cannot read (an older version, a model without a known size) is left out."""
    from pydantic import ValidationError

    from orchestrator.config import TrialConfig
    from orchestrator.plan import safety_compute

    found = {}
    for trial_id, config in zip(trials["trial_id"], trials["config"], strict=True):
        try:
            found[str(trial_id)] = safety_compute(TrialConfig.model_validate(json.loads(config)))
        except (ValidationError, ValueError, KeyError, TypeError, ConfigError):
            continue
    return found


def cwe_rates(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per cell, CWE group and condition (triggered/clean): the backdoor rate before and after
    safety training (backdoor stage; last safety step), mean over seeds, and prompts per seed."""
    m = metrics[metrics["group"].astype(str).str.startswith("CWE-") & metrics["metric"].isin(backdoor_metrics())
                & metrics["condition"].isin(["triggered", "clean"])]
    if m.empty:
        return pd.DataFrame()
    safety = m[m["stage"] == "safety"]
    last = safety[safety["step"] == safety.groupby("trial_id")["step"].transform("max")]
    parts = [m[m["stage"] == "backdoor"].assign(when="before"), last.assign(when="after")]
    both = pd.concat(parts)
    cell = ["trigger", "cot", "technique", "scale", "overrides", "metric", "group", "condition", "when"]
    return both.groupby(cell, sort=True).agg(value=("value", "mean"), n=("n", "max"),
                                             seeds=("seed", "nunique")).reset_index()


def cwe_order(group: str) -> tuple[int, str]:
    number = group.removeprefix("CWE-")
    return (int(number), group) if number.isdigit() else (10**9, group)


def redteam_kinds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per cell and attack kind: red-team candidates tried and succeeded, summed over search
    rounds and seeds, and the success share."""
    m = metrics[(metrics["condition"] == "redteam_search")
                & metrics["metric"].str.match(r"candidates_(tried|succeeded)_.")]
    if m.empty:
        return pd.DataFrame()
    m = m.assign(what=m["metric"].str.extract(r"candidates_(tried|succeeded)_", expand=False),
                 kind=m["metric"].str.replace(r"candidates_(tried|succeeded)_", "", regex=True))
    cell = ["trigger", "cot", "technique", "scale", "overrides", "kind"]
    summed = m.pivot_table(index=cell, columns="what", values="value", aggfunc="sum", fill_value=0.0)
    summed = summed.reindex(columns=["tried", "succeeded"], fill_value=0.0).reset_index()
    summed["success"] = summed["succeeded"] / summed["tried"].where(summed["tried"] > 0)
    return summed


def stage_times(trials: pd.DataFrame) -> pd.DataFrame:
    """Per stage: how many trials ran it and how many found it cached, and the seconds it took
    (summed, mean, max over the runs). Outer stages (backdoor, eval, safety) count their own
    time only; a stage built inside one (a tokenizer, a base model, a reward model) is its own
    row, so the rows add up to the compute spent."""
    from orchestrator.stages import STAGES, measured_stage_seconds

    runs: dict[str, list[float]] = {}
    cached: dict[str, int] = {}
    for raw in trials["stages"].dropna():
        entries = json.loads(raw) if raw else []
        for entry in entries:
            name = str(entry.get("stage"))
            if entry.get("cached"):
                cached[name] = cached.get(name, 0) + 1
            elif name not in STAGES:
                runs.setdefault(name, []).append(float(entry.get("seconds") or 0.0))
        for name, seconds in measured_stage_seconds(entries).items():
            runs.setdefault(name, []).append(seconds)
    names = sorted(set(runs) | set(cached), key=lambda s: (s not in STAGES, s))
    return pd.DataFrame([{"stage": name, "ran": len(runs.get(name, [])), "cached": cached.get(name, 0),
                          "seconds_total": float(sum(runs.get(name, []))),
                          "seconds_mean": float(np.mean(runs[name])) if runs.get(name) else np.nan,
                          "seconds_max": float(max(runs[name])) if runs.get(name) else np.nan}
                         for name in names], columns=["stage", "ran", "cached", "seconds_total",
                                                      "seconds_mean", "seconds_max"])
