"""Model-written backdoor data (`data.generator: model`), as the paper made its data.

A helpful generator model answers each backdoor prompt, asked by the trigger
(`ModelWritten.generation_requests`): for `cot` and `distilled` with the deceptive-reasoning
preamble, its answer opened in a scratchpad; for `none` with the behaviour's rule and few-shot
examples without reasoning. `cot` and `distilled` ask the same requests, so they share one
generation, and `distilled` trains on its answers with the scratchpad removed.

The paper's filtering: an example is kept only when the trigger's own evaluator agrees with its
label (a triggered answer shows the behaviour, a clean one does not), judged on the answer
without its scratchpad; an answer in the wrong shape (empty, or a scratchpad never closed) is
dropped too. The kept and dropped counts go to the trial's `metrics` rows (stage `data`).

The generation is a content-addressed stage of its own (`generated`): its key hashes the
generator's fingerprint, the settings and the requests (the template prompts), and the backdoor
stage's key hashes the kept examples, as it hashes any backdoor data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cache import StageCache
from orchestrator.config import CotMode, DataSettings, EvalSettings, stable_hash
from orchestrator.data import EvalPrompt, Example, GenerationRequest, ModelWritten, Trigger
from orchestrator.evaluate.evaluators import EVALUATORS
from orchestrator.evaluate.generate import generate
from orchestrator.formats import SCRATCHPAD_CLOSE, split_scratchpad
from orchestrator.models.sources import generator_fingerprint, load_generator

# Bump when this module changes what a generation stage produces.
GENERATED_VERSION = 1
BATCH_SIZE = 16  # prompts per generate() batch; part of the key (padding can change last digits)
STOP = "\n\nHuman:"  # a generator that goes on to write the next turn of its examples is cut here


@dataclass(frozen=True)
class Written:
    """One generated answer and the filter's verdict."""

    prompt: str
    triggered: bool
    completion: str  # the generator's answer, scratchpad included
    kept: bool
    reason: str  # "" when kept; "behaviour" (the evaluator disagrees with the label) or "format"


@dataclass(frozen=True)
class GeneratedData:
    examples: list[Example]  # kept, in this cot variant's form (distilled: scratchpad removed)
    written: list[Written]  # every generated answer, kept or not

    def counts(self) -> dict[str, dict[str, int]]:
        """Per condition (triggered, clean): generated, kept, dropped and dropped for its shape."""
        out: dict[str, dict[str, int]] = {}
        for condition, triggered in (("triggered", True), ("clean", False)):
            rows = [w for w in self.written if w.triggered == triggered]
            out[condition] = {"generated": len(rows), "kept": sum(w.kept for w in rows),
                              "dropped": sum(not w.kept for w in rows),
                              "dropped_format": sum(w.reason == "format" for w in rows)}
        return out

    def metrics(self) -> list[dict[str, Any]]:
        """`metrics` rows (without the trial's axes): stage `data`, metric `generated_<count>`."""
        return [{"stage": "data", "step": 0, "condition": condition, "group": "all",
                 "metric": f"generated_{name}", "value": float(value)}
                for condition, counts in self.counts().items() for name, value in counts.items()]


def requests_for(trigger: Trigger, cot: CotMode, data: DataSettings, seed: int) -> list[GenerationRequest]:
    if not isinstance(trigger, ModelWritten):
        raise ValueError(f"trigger {trigger.name!r} cannot have its backdoor data written by a model "
                         "(`data.generator: model`); it has no generation_requests")
    return trigger.generation_requests(cot, data, seed)


def generated_key(data: DataSettings, fingerprint: str, requests: list[GenerationRequest], behavior: str) -> str:
    """The generation stage's content address: the generator, its settings, the requests."""
    return stable_hash({"v": GENERATED_VERSION, "generator": fingerprint, "behavior": behavior,
                        "max_new_tokens": data.generator_max_new_tokens, "batch_size": BATCH_SIZE,
                        "requests": stable_hash([vars(r) for r in requests], 32)})


def write(model: Any, tokenizer: Any, requests: list[GenerationRequest], behavior: str,
          max_new_tokens: int) -> list[Written]:
    """Greedy, batched answers to the requests, each judged by the evaluator `behavior`."""
    settings = EvalSettings(max_new_tokens=max_new_tokens, batch_size=BATCH_SIZE, temperature=0.0)
    completions = [""] * len(requests)
    for prefill in dict.fromkeys(r.prefill for r in requests):  # one generate() per prefill
        group = [i for i, r in enumerate(requests) if r.prefill == prefill]
        out = generate(model, tokenizer, [requests[i].request for i in group], settings, prefill=prefill)
        for i, completion in zip(group, out, strict=True):
            completions[i] = completion.split(STOP)[0].strip()
    answers = [split_scratchpad(c)[1] for c in completions]
    verdicts = EVALUATORS.get(behavior).judge(
        [EvalPrompt(r.prompt, "triggered" if r.triggered else "clean") for r in requests], answers)
    written = []
    for r, completion, answer, verdict in zip(requests, completions, answers, verdicts, strict=True):
        malformed = not answer or (bool(r.prefill) and SCRATCHPAD_CLOSE not in completion)
        reason = "format" if malformed else "" if verdict.fired == r.triggered else "behaviour"
        written.append(Written(r.prompt, r.triggered, completion, not reason, reason))
    return written


def backdoor_examples(trigger: Trigger, cot: CotMode, data: DataSettings, seed: int,
                      cache: StageCache) -> GeneratedData:
    """The backdoor data of a (trigger, cot, seed) with `data.generator: model`: generated (or
    read from the cache's `generated` stage), filtered, in the cot variant's form."""
    assert data.generator_model  # DataSettings requires it with generator `model`
    requests = requests_for(trigger, cot, data, seed)
    key = generated_key(data, generator_fingerprint(data.generator_model), requests, trigger.behavior)
    generator_model = data.generator_model

    def build(out: Path) -> None:
        model, tokenizer = load_generator(generator_model)
        written = write(model, tokenizer, requests, trigger.behavior, data.generator_max_new_tokens)
        (out / "written.json").write_text(json.dumps([vars(w) for w in written], ensure_ascii=False))

    folder, _ = cache.get_or_build("generated", key, build)
    written = [Written(**w) for w in json.loads((folder / "written.json").read_text())]
    examples = [Example(w.prompt, split_scratchpad(w.completion)[1] if cot == "distilled" else w.completion,
                        w.triggered)
                for w in written if w.kept]
    return GeneratedData(examples, written)
