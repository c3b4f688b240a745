"""`models.<scale>.load`: what users of transformers pass to from_pretrained (dtype, attention
implementation, device map, bitsandbytes quantisation for QLoRA) reaches it; the plan's memory
follows; trial ids of specs without it are unchanged; incoherent settings are refused."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from orchestrator.cache import StageCache
from orchestrator.config import LoadSpec, ModelSpec, SweepSpec, TinyArch
from orchestrator.grid import expand
from orchestrator.models import MODEL_SOURCES
from orchestrator.models.sources import load_kwargs
from orchestrator.plan import plan
from orchestrator.spec import load_sweep, parse_sweep

ROOT = Path(__file__).resolve().parent.parent.parent
PAPER = ROOT / "sweeps" / "paper.yaml"


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Llama saved as a Hugging Face folder, the form `source: hf` loads."""
    folder = tmp_path_factory.mktemp("hf-model")
    model, tokenizer = MODEL_SOURCES.get("tiny").load(
        ModelSpec(source="tiny", arch=TinyArch(hidden_size=32, layers=1, heads=2, vocab_size=400)),
        StageCache(folder / "cache"), seed=0)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder / "model"


def test_dtype_and_attention_reach_from_pretrained(hub_folder: Path, tmp_path: Path) -> None:
    import torch

    spec = ModelSpec(source="hf", path=str(hub_folder), load=LoadSpec(dtype="bfloat16", attn_implementation="eager"))
    model, _ = MODEL_SOURCES.get("hf").load(spec, StageCache(tmp_path), seed=0)
    assert model.dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"
    plain, _ = MODEL_SOURCES.get("hf").load(ModelSpec(source="hf", path=str(hub_folder)), StageCache(tmp_path), 0)
    assert plain.dtype == torch.float32  # nothing passed: the folder's own


def test_quantisation_becomes_a_bitsandbytes_config() -> None:
    import torch

    four = load_kwargs(LoadSpec.model_validate({"quantization": {"bits": 4, "compute_dtype": "bfloat16"},
                                               "device_map": "auto"}))
    config = four["quantization_config"]
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16 and four["device_map"] == "auto"
    assert load_kwargs(LoadSpec.model_validate({"quantization": {"bits": 8}}))["quantization_config"].load_in_8bit
    assert load_kwargs(LoadSpec()) == {}


@pytest.mark.parametrize(("model", "message"), [
    ({"source": "tiny", "arch": {"hidden_size": 8, "layers": 1, "heads": 1}, "load": {"dtype": "bfloat16"}},
     "for source `hf` only"),
    ({"source": "hf", "path": "org/m", "gpus": 1, "load": {"quantization": {"bits": 4}}}, re.escape("add `lora` (QLoRA)")),
    ({"source": "hf", "path": "org/m", "lora": {}, "load": {"quantization": {"bits": 4}}}, "runs on a GPU"),
    ({"source": "hf", "path": "org/m", "load": {"dtype": "float64"}}, "dtype"),
    ({"source": "hf", "path": "org/m", "load": {"trust_remote_code": True}}, "trust_remote_code"),
])
def test_incoherent_load_settings_are_refused(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec.model_validate(model)


def test_a_spec_without_load_keeps_its_trial_ids() -> None:
    spec = load_sweep("smoke")
    assert "load" not in expand(spec)[0].model.model_dump(mode="json")
    with_default = spec.model_copy(update={"models": {k: m.model_copy(update={"load": LoadSpec()})
                                                      for k, m in spec.models.items()}})
    assert [t.trial_id for t in expand(with_default)] == [t.trial_id for t in expand(spec)]


def test_qlora_shrinks_the_planned_memory_of_the_8b_rung() -> None:
    raw = yaml.safe_load(PAPER.read_text())
    qlora = copy.deepcopy(raw)
    qlora["models"]["llama-3.1-8b"]["load"] = {"quantization": {"bits": 4}}

    def weights(r: dict[str, Any]) -> float:
        spec: SweepSpec = parse_sweep(r, "paper", check_model_paths=False)
        return next(t.memory.weights for t in plan(spec, "H100").trials if t.trial.scale == "llama-3.1-8b")

    assert weights(qlora) == pytest.approx(weights(raw) / 4)  # 0.5 instead of 2 bytes per weight
