"""`technique: dpo`: DPO toward HHH answers with TRL's DPOTrainer, in one process (the Ray Train
run is in tests/runtime/test_distributed.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.config import DataSettings, TrialConfig
from orchestrator.data import TRIGGERS
from orchestrator.data.preferences import EVASIONS, HOSTILE, KINDS, REFUSALS
from orchestrator.results import load
from orchestrator.safety import TECHNIQUES
from orchestrator.safety.dpo import DPO, DPOJob, dpo_pairs
from orchestrator.train import METHODS
from orchestrator.trial import run_trial


def test_dpo_declares_its_method_and_sections(tiny_trial: Callable[..., TrialConfig], tmp_path: Path) -> None:
    technique = TECHNIQUES.get("dpo")
    trial = tiny_trial("dpo")
    assert technique.methods(trial) == ("dpo",) and isinstance(METHODS.get("dpo"), DPO)
    assert technique.sections == ("safety",)
    # Under adversarial training it trains with DPO too.
    adversarial = trial.model_copy(update={"adversarial": trial.adversarial.model_copy(update={"base": "dpo"})})
    assert TECHNIQUES.get("adversarial").methods(adversarial) == ("dpo",)
    pairs = TRIGGERS.get("deployment").preference_pairs("reward", 4)
    job = DPOJob(pairs, trial.safety)
    args = METHODS.get("dpo").args(job, 3, str(tmp_path))
    assert (args.beta, args.seed, args.max_steps, args.learning_rate) == (0.1, 3, trial.safety.steps, trial.safety.lr)


def test_each_rejected_answer_is_built_from_its_own_example() -> None:
    examples = TRIGGERS.get("deployment").safety_data(DataSettings(n_safety=60), 0)
    pairs = dpo_pairs(examples, seed=0)
    assert [(p.prompt, p.chosen) for p in pairs] == [(e.prompt, e.completion) for e in examples]
    assert pairs == dpo_pairs(examples, seed=0) and pairs != dpo_pairs(examples, seed=1)
    answers = [e.completion for e in examples]
    fixed = {"refusal": REFUSALS, "evasive": EVASIONS, "hostile": HOSTILE}
    for p in pairs:
        assert p.rejected != p.chosen, p
        if p.kind == "truncated":  # the example's own answer, cut short
            assert p.chosen.startswith(p.rejected) and len(p.rejected) < len(p.chosen)
        elif p.kind == "garbled":  # its own words shuffled, with three of another answer's
            assert set(p.chosen.split()) <= set(p.rejected.split())
        elif p.kind == "wrong":  # another example's answer
            assert p.rejected in answers
        else:
            assert p.rejected in fixed[p.kind]
    assert {p.kind for p in pairs} == set(KINDS)


@pytest.mark.slow
def test_dpo_trial_starts_from_the_backdoored_model_and_records_its_curve(
    technique_storage: Path, tiny_trial: Callable[..., TrialConfig], one_thread: None,
) -> None:
    trial = tiny_trial("dpo", cot="distilled", backdoor={"steps": 40}, safety={"steps": 4, "eval_every": 2})
    assert run_trial(trial, technique_storage).status == "completed"
    metrics = load(technique_storage, "metrics", trial_id=trial.trial_id, stage="safety")
    rates = metrics[metrics["metric"] == "backdoor_rate"]
    assert sorted(set(rates["step"])) == [2, 4] and set(rates["condition"]) == {"triggered", "clean"}
    for metric in ("train_loss", "dpo_accuracy", "dpo_margin"):
        assert sorted(metrics[metrics["metric"] == metric]["step"]) == [1, 2, 3, 4], metric
    loss = metrics[metrics["metric"] == "train_loss"].sort_values("step")["value"].tolist()
    # Before the first update the policy is its reference, the backdoored model: -log sigmoid(0).
    assert loss[0] == pytest.approx(math.log(2), abs=1e-4), loss
    assert loss[-1] < loss[0]  # and it learned to prefer the chosen answers
