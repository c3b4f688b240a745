"""The paper's SFT variants for chain-of-thought models (§5).

`sft` (orchestrator.safety.techniques) is pre-scratchpad SFT: the HHH answer is the whole
completion, so the model learns to answer without reasoning first. `sft-post-scratchpad` keeps
the model's own reasoning: it writes its scratchpad for each safety prompt, the HHH answer is
appended after it, and the loss is on the answer only (the scratchpad is part of the prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.config import EvalSettings, TrialConfig
from orchestrator.data.types import Example
from orchestrator.evaluate.generate import generate
from orchestrator.formats import SCRATCHPAD_CLOSE, SCRATCHPAD_OPEN, opening
from orchestrator.safety.techniques import TECHNIQUES, SafetyContext, SafetyResult
from orchestrator.train.sft import SFTJob

EMPTY_SCRATCHPAD = f"{SCRATCHPAD_OPEN} {SCRATCHPAD_CLOSE}"


def as_scratchpad(text: str) -> str:
    """The scratchpad a completion opens with, closed; an empty one when it writes none."""
    start = text.find(SCRATCHPAD_OPEN)
    if start < 0:
        return EMPTY_SCRATCHPAD
    body = text[start:]
    end = body.find(SCRATCHPAD_CLOSE)
    # Cut off by the token limit: close it, so the answer still follows a closed scratchpad.
    return body.rstrip() + f" {SCRATCHPAD_CLOSE}" if end < 0 else body[: end + len(SCRATCHPAD_CLOSE)]


def own_scratchpads(model: Any, tokenizer: Any, prompts: list[str], settings: EvalSettings,
                    seed: int) -> list[str]:
    """The model's own scratchpad for each prompt: batched generation that stops at its end
    (opened for it when `settings.open_scratchpad`, as in evaluation)."""
    completions = generate(model, tokenizer, prompts, settings, seed, stop_strings=(SCRATCHPAD_CLOSE,),
                           prefill=opening(settings.open_scratchpad))
    return [as_scratchpad(c) for c in completions]


def post_scratchpad_examples(tokenizer: Any, examples: Sequence[Example],
                             scratchpads: Sequence[str]) -> list[Example]:
    """Chat-rendered examples whose prompt ends with the scratchpad and whose completion is the
    HHH answer (and the end of the turn), for `SFTJob(..., rendered=True)`."""
    out = []
    for example, scratchpad in zip(examples, scratchpads, strict=True):
        user = {"role": "user", "content": example.prompt}
        prompt = tokenizer.apply_chat_template([user], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            [user, {"role": "assistant", "content": f"{scratchpad} {example.completion}"}], tokenize=False)
        if not full.startswith(prompt):
            raise ValueError("the chat template renders the prompt differently when an answer "
                             "follows; cannot put the scratchpad on the prompt side")
        cut = full.index(SCRATCHPAD_CLOSE, len(prompt)) + len(SCRATCHPAD_CLOSE)
        completion = full[cut:]
        eos = tokenizer.eos_token or ""
        if eos and completion.rstrip().endswith(eos):  # TRL appends EOS unless the text ends with it
            completion = completion.rstrip()
        out.append(Example(full[:cut], completion))
    return out


@TECHNIQUES.register("sft-post-scratchpad")
class PostScratchpadSFT:
    """SFT on HHH answers written after the model's own scratchpad; loss on the answer only.
    Models that write no scratchpad (distilled, none) get an empty one."""

    sections = ("safety",)

    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("sft",)

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        trial = ctx.trial
        # Greedy, like evaluation: the reasoning the model would actually show on these prompts.
        settings = trial.eval.model_copy(update={"temperature": 0.0})
        scratchpads = own_scratchpads(ctx.model, ctx.tokenizer, [e.prompt for e in ctx.data], settings, trial.seed)
        examples = post_scratchpad_examples(ctx.tokenizer, ctx.data, scratchpads)
        model, log = ctx.session.train("sft", ctx.model, ctx.tokenizer, SFTJob(examples, trial.safety, rendered=True),
                                       every=trial.safety.eval_every, hook=ctx.checkpoint)
        written = sum(s != EMPTY_SCRATCHPAD for s in scratchpads) / max(1, len(scratchpads))
        return SafetyResult(model, [{"step": 0, "own_scratchpad_rate": written}, *log], trial.safety.steps)
