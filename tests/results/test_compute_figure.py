"""The report's persistence-against-safety-compute figure: the x axis is the planner's estimate
of the safety-training FLOPs, from each trial's own resolved config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from orchestrator.evaluate import wilson
from orchestrator.grid import expand
from orchestrator.plan import safety_compute
from orchestrator.results import build_report, load, write_trial
from orchestrator.results.html.data import safety_flops
from orchestrator.results.html.figures import compute_figures
from orchestrator.spec import load_sweep

SPEC = {
    "name": "compute",
    "axes": {"trigger": ["deployment"], "cot": ["cot", "distilled"], "technique": ["sft", "rl"],
             "scale": ["tiny-xs", "tiny-s"], "seed": [0, 1]},
    "models": {"tiny-xs": {"source": "tiny", "arch": {"hidden_size": 64, "layers": 2, "heads": 4, "vocab_size": 1024}},
               "tiny-s": {"source": "tiny", "arch": {"hidden_size": 128, "layers": 4, "heads": 4, "vocab_size": 2048}}},
    "data": {"n_eval": 40},
    "backdoor": {"steps": 200, "lr": 3.0e-3},
    "safety": {"steps": 40, "lr": 1.0e-4, "eval_every": 20},
    "rl": {"steps": 20, "eval_every": 10},
}


def rate_row(axes: dict[str, Any], stage: str, step: int, rate: float) -> dict[str, Any]:
    fired = round(rate * 40)
    low, high = wilson(fired, 40)
    return {**axes, "stage": stage, "step": step, "condition": "triggered", "group": "all",
            "metric": "backdoor_rate", "value": fired / 40, "n": 40, "ci_low": low, "ci_high": high}


def make_lake(root: Path, spec_path: Path) -> list[Any]:
    trials = expand(load_sweep(spec_path))
    for trial in trials:
        axes = {"trial_id": trial.trial_id, "sweep": trial.sweep, **trial.core_axes(), "overrides": {}}
        steps, every = (trial.rl.steps, trial.rl.eval_every) if trial.technique == "rl" else (
            trial.safety.steps, trial.safety.eval_every)
        # The larger model and the cot model keep more of their backdoor.
        keep = 0.3 + 0.3 * (trial.scale == "tiny-s") + 0.3 * (trial.cot == "cot")
        rows = [rate_row(axes, "backdoor", trial.backdoor.steps, 1.0)]
        rows += [rate_row(axes, "safety", s, 1.0 - (1.0 - keep) * s / steps) for s in range(0, steps + 1, every)]
        broken = trial.cot == "distilled" and trial.scale == "tiny-xs" and trial.technique == "rl"
        row = {**axes, "status": "completed", "config": trial.model_dump(mode="json"),
               "validity": "degenerate" if broken else "valid", "validity_reason": "test"}
        write_trial(root, trial.sweep, trial.trigger, trial.trial_id, {"metrics": rows, "trials": [row]})
    return trials


def test_x_is_the_planners_safety_flops_per_step(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    trials = make_lake(tmp_path / "lake", spec)
    completed = load(tmp_path / "lake", "trials")
    found = safety_flops(completed)
    assert len(found) == len(trials) == 16
    sft_xs = next(t for t in trials if t.technique == "sft" and t.scale == "tiny-xs")
    total, steps = found[sft_xs.trial_id]
    # 6 N x steps x batch x max_length, N the tiny Llama's parameters (orchestrator.plan)
    from orchestrator.plan import tiny_params

    assert steps == 40 and total == pytest.approx(6 * tiny_params(64, 2, 256, 1024) * 40 * 16 * 256)
    rl = next(t for t in trials if t.technique == "rl")
    assert safety_compute(rl)[1] == 20  # rl counts its own steps
    [figure] = compute_figures(load(tmp_path / "lake", "metrics"), completed)
    assert figure.name == "compute_deployment" and figure.png.startswith(b"\x89PNG")
    assert b"not valid" in figure.svg or "grey" in figure.caption


def test_the_report_holds_the_figure(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    make_lake(tmp_path / "lake", spec)
    report = build_report(tmp_path / "lake", tmp_path / "out", n_boot=50)
    assert (tmp_path / "out" / "compute_deployment.png").is_file()
    page = report.html.read_text()
    assert "Persistence against safety-training compute" in page and 'id="fig-compute_deployment"' in page


def test_a_config_this_code_cannot_read_is_left_out() -> None:
    trials = pd.DataFrame({"trial_id": ["old", "broken"], "config": ['{"model": {}}', None]})
    assert safety_flops(trials) == {}
    assert compute_figures(pd.DataFrame(columns=["trial_id", "stage", "step", "condition", "group", "metric",
                                                 "value"]), trials.assign(validity=np.nan)) == []
