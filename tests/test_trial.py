"""The pipeline of one trial without Ray: failure handling and stage reuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import TECHNIQUES, SafetyContext, SafetyResult
from orchestrator.grid import expand
from orchestrator.results import load
from orchestrator.spec import load_sweep
from orchestrator.trial import run_trial


@TECHNIQUES.register("test-explodes")
class Explodes:
    sections = ("safety",)

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        raise RuntimeError("safety training blew up")


def quick_trial(write_spec: Any, smoke_raw: dict[str, Any], technique: str) -> Any:
    smoke_raw["axes"].update(cot=["distilled"], technique=[technique])
    smoke_raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    smoke_raw["backdoor"]["steps"] = 5
    smoke_raw["data"]["n_eval"] = 4
    [trial] = expand(load_sweep(write_spec(smoke_raw)))
    return trial


def test_a_failed_trial_is_recorded_and_can_be_retried(tmp_path: Path, write_spec: Any,
                                                        smoke_raw: dict[str, Any]) -> None:
    trial = quick_trial(write_spec, smoke_raw, "test-explodes")
    with pytest.raises(RuntimeError, match="blew up"):
        run_trial(trial, tmp_path)
    trials = load(tmp_path, "trials")
    assert trials["status"].tolist() == ["failed"]
    assert "RuntimeError: safety training blew up" in trials["error"].iloc[0]
    assert load(tmp_path, "metrics").empty  # no partial results
    # The backdoored model survived the failure: a retry reuses it, and records a second attempt.
    with pytest.raises(RuntimeError):
        run_trial(trial, tmp_path)
    retried = load(tmp_path, "trials")
    assert len(retried) == 2 and retried["backdoor_cached"].tolist().count(True) == 1
    # Each row says where the trial's process ran (orchestrator.device.where).
    import torch

    assert retried["device"].tolist() == ["cpu", "cpu"] and retried["gpu_count"].tolist() == [0, 0]
    assert retried["torch"].tolist() == [torch.__version__] * 2 and retried["node"].notna().all()


def test_a_safety_setting_or_technique_shares_the_backdoor_stage(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    """The stage keys: cells that differ only in a safety setting (an extra axis) or in the
    technique share the backdoored model and its evaluation, and nothing after it."""
    from orchestrator.data import TRIGGERS
    from orchestrator.trial import make_data, stage_keys

    smoke_raw["axes"].update(cot=["distilled"], technique=["sft", "adversarial"], **{"safety.lr": [1e-4, 1e-3]})
    trials = expand(load_sweep(write_spec(smoke_raw)))
    data = make_data(trials[0], TRIGGERS.get("deployment"))
    keys = [stage_keys(trial, "base", data) for trial in trials]
    assert len(trials) == 4 and len({trial.trial_id for trial in trials}) == 4
    assert len({k.backdoor for k in keys}) == len({k.eval for k in keys}) == len({k.base_eval for k in keys}) == 1
    assert len({k.safety for k in keys}) == 4
