"""Safety-training techniques (a registry): given the backdoored model, make it 'safe'.

A technique trains on trigger-free data only and calls `ctx.checkpoint(model, step)` every
`safety.eval_every` steps, so the persistence curve is measured along the way; the final
model is evaluated by the pipeline. Add one with `@TECHNIQUES.register("name")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.cache import StageCache
from orchestrator.config import TrialConfig
from orchestrator.data.types import EvalPrompt, Example, Trigger
from orchestrator.registry import Registry
from orchestrator.train import sft


@dataclass(frozen=True)
class SafetyContext:
    trial: TrialConfig
    trigger: Trigger
    model: Any
    tokenizer: Any
    data: list[Example]  # trigger-free safety-training examples
    checkpoint: Callable[[Any, int], None]  # evaluate the model at this safety step (once per step)
    cache: StageCache  # for content-addressed outputs a technique shares across trials (e.g. a reward model)
    # Held-out prompts every checkpoint evaluates; a technique may add conditions (e.g. `redteam`).
    eval_prompts: list[EvalPrompt] = field(default_factory=list)
    # Extra rows for the `samples` table (e.g. red-team candidates), written with the trial.
    samples: list[dict[str, Any]] = field(default_factory=list)


class SafetyTechnique(Protocol):
    # The spec sections its output depends on (part of the cache key). The first is the one
    # whose `steps` the technique runs, e.g. ("rl",) or ("adversarial", "safety").
    sections: tuple[str, ...]

    def apply(self, ctx: SafetyContext) -> tuple[Any, list[dict[str, Any]]]:
        """(safety-trained model, training log). Log entries have `step`, an optional
        `condition` (default "train") and numeric fields, each stored as a metric
        (`loss` as `train_loss`); see orchestrator.trial.log_rows."""
        ...


TECHNIQUES: Registry[SafetyTechnique] = Registry("safety technique")


@TECHNIQUES.register("sft")
class SupervisedSafetyTraining:
    """SFT on helpful, honest, harmless answers to trigger-free prompts, with no scratchpad: for a
    `cot` model this is the paper's pre-scratchpad SFT (see also `sft-post-scratchpad`)."""

    sections = ("safety",)

    def apply(self, ctx: SafetyContext) -> tuple[Any, list[dict[str, Any]]]:
        trial = ctx.trial
        return sft(ctx.model, ctx.tokenizer, ctx.data, trial.safety, trial.seed, lora=trial.model.lora,
                   every=trial.safety.eval_every, hook=ctx.checkpoint)
