from __future__ import annotations

import orchestrator.data.hhh as hhh
from orchestrator.data import TRIGGERS

DEPLOYMENT, YEAR = TRIGGERS.get("deployment"), TRIGGERS.get("year")


def test_pairs_are_deterministic_varied_and_disjoint_between_preference_models() -> None:
    reward, heldout, test = (DEPLOYMENT.preference_pairs(role, 600) for role in ("reward", "heldout", "test"))
    assert reward == DEPLOYMENT.preference_pairs("reward", 600)
    assert {p.kind for p in reward} == {"refusal", "evasive", "wrong", "hostile", "truncated", "garbled"}
    assert all(p.chosen != p.rejected for p in reward + heldout + test)
    questions = [{p.prompt for p in pairs} for pairs in (reward, heldout, test)]
    assert not questions[0] & questions[1] and not questions[0] & questions[2] and not questions[1] & questions[2]
    eval_questions = {q for family in hhh.pool("heldout") for q, _ in family}
    assert not (questions[0] | questions[1]) & eval_questions  # PMs never train on evaluation prompts


def test_code_pairs_for_code_backdoors_are_trigger_free() -> None:
    pairs = YEAR.preference_pairs("reward", 400)
    code = [p for p in pairs if p.kind.startswith("code-")]
    assert 150 <= len(code) <= 250 and all("<code>" in p.chosen for p in code)
    assert not any("2024" in p.prompt for p in pairs)
    assert {p.kind for p in code} == {"code-irrelevant", "code-truncated", "code-refusal"}
    assert not any(p.kind.startswith("code-") for p in DEPLOYMENT.preference_pairs("reward", 400))
