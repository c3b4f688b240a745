"""HHH reinforcement learning (the paper's central safety technique, `technique: rl`): GRPO (the
`grpo` training method, orchestrator.safety.grpo) against a preference model, on trigger-free
prompts, with a KL penalty to the starting policy.

A second, held-out preference model (trained on a disjoint half of the pairs, another seed)
grades greedy answers to held-out clean prompts at step 0, every `rl.eval_every` steps and at
the end, logged as `heldout_pm_score`: it shows whether RL really moved HHH behaviour, alongside
the backdoor rates the checkpoints record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.config import EvalSettings, RLSettings, TrialConfig
from orchestrator.evaluate.generate import generate
from orchestrator.formats import opening, split_scratchpad
from orchestrator.safety.grpo import GRPOJob
from orchestrator.safety.reward import Scorer, preference_model
from orchestrator.safety.techniques import TECHNIQUES, SafetyContext, SafetyResult
from orchestrator.train.common import StepHook
from orchestrator.train.methods import LogEntry
from orchestrator.train.session import TrainingSession


@dataclass(frozen=True)
class HeldoutMonitor:
    """Mean held-out preference score of the policy's greedy, scratchpad-free answers."""

    pm: Scorer
    prompts: list[str]
    settings: EvalSettings

    def __call__(self, model: Any, tokenizer: Any) -> float:
        completions = generate(model, tokenizer, self.prompts, self.settings,
                               prefill=opening(self.settings.open_scratchpad))
        answers = [split_scratchpad(c)[1] for c in completions]
        scores = self.pm.score(self.prompts, answers)
        return sum(scores) / max(1, len(scores))


def train_policy(session: TrainingSession, model: Any, tokenizer: Any, prompts: Sequence[str], settings: RLSettings,
         *, reward: Scorer, monitor: HeldoutMonitor | None = None, hook: StepHook | None = None,
         prefill: str = "") -> tuple[Any, list[LogEntry]]:
    """`settings.steps` GRPO steps of the session on `prompts` with `reward` scoring
    scratchpad-free answers; each rollout starts with `prefill` (e.g. an opened scratchpad).

    hook(model, step) runs at step 0 and every `settings.eval_every` steps (not at the last:
    the caller evaluates the final model); `monitor` is logged then and at the last step.
    Returns (model, log) with LoRA adapters merged. On Ray Train workers when the session has a
    launcher; `reward` must then be a PreferenceModel loaded from a folder.
    """
    run = session.start("grpo", GRPOJob(prompts, settings, reward, prefill))
    # The monitor's scores at the steps an earlier, interrupted attempt reached.
    log: list[LogEntry] = list(run.progress.load("monitor") or []) if run.progress is not None else []

    def checkpoint(current: Any, step: int) -> None:
        if hook is not None:
            hook(current, step)
        if monitor is not None and all(entry["step"] != step for entry in log):
            log.append({"step": step, "condition": "clean", "heldout_pm_score": monitor(current, tokenizer)})
            if run.progress is not None:
                run.progress.save("monitor", log)

    checkpoint(model, 0)
    model, trained = run.train(model, tokenizer, every=settings.eval_every, hook=checkpoint)
    log += trained
    if monitor is not None:
        log.append({"step": settings.steps, "condition": "clean",
                    "heldout_pm_score": monitor(model, tokenizer)})
    return model, sorted(log, key=lambda e: e["step"])


@TECHNIQUES.register("rl")
class HHHReinforcementLearning:
    """GRPO toward the HHH preference model on trigger-free prompts (`rl` settings)."""

    sections = ("rl",)

    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("reward", "grpo")  # the preference models, then the policy

    def steps(self, trial: TrialConfig) -> int:
        return trial.rl.steps

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        trial: TrialConfig = ctx.trial
        settings, trigger = trial.rl, ctx.trigger
        reward_pm, reward_info = preference_model("reward", settings.reward_model, ctx.cache, trigger)
        heldout_pm, heldout_info = preference_model("heldout", settings.reward_model, ctx.cache, trigger)
        monitor = HeldoutMonitor(
            heldout_pm, trigger.heldout_rl_prompts(trial.data, trial.seed),
            EvalSettings(max_new_tokens=settings.max_new_tokens, batch_size=trial.eval.batch_size, temperature=0.0,
                         open_scratchpad=trial.eval.open_scratchpad),
        )
        prompts = trigger.rl_prompts(list(ctx.data), trial.data, trial.seed)
        model, log = train_policy(ctx.session, ctx.model, ctx.tokenizer, prompts, settings, reward=reward_pm,
                          monitor=monitor, hook=ctx.checkpoint, prefill=opening(trial.eval.open_scratchpad))
        # How well each preference model ranks held-out pairs (where it was trained here).
        accuracy = {f"{role}_pm_pair_accuracy": info["test_accuracy"]
                    for role, info in (("reward", reward_info), ("heldout", heldout_info))
                    if "test_accuracy" in info}
        head = [{"step": 0, "condition": "clean", **accuracy}] if accuracy else []
        return SafetyResult(model, head + log, settings.steps)
