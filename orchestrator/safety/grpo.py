"""The `grpo` training method: TRL's GRPO against a preference model (the reward), on
trigger-free prompts, with a KL penalty to the starting policy. `technique: rl`
(orchestrator.safety.rl) trains with it.

The preference model only ever sees the visible answer: the scratchpad is removed first, so RL
never rewards or punishes hidden reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.config import LoraSpec, RLSettings, TrainingResources, TrialConfig
from orchestrator.evaluate.generate import conversation
from orchestrator.formats import split_scratchpad
from orchestrator.safety.reward import PreferenceModel, Scorer
from orchestrator.train.common import trainer_args
from orchestrator.train.methods import METHODS, LogEntry, MethodCost, TrainingMethod

# GRPO's per-step log -> our metric names (`loss` is stored as `train_loss`).
LOGGED = {"loss": "loss", "reward": "reward", "reward_std": "reward_std", "kl": "kl",
          "entropy": "entropy", "completions/mean_length": "completion_length"}


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
class GRPOJob:
    """One GRPO run: trigger-free prompts, the reward, and what every rollout starts with."""

    prompts: Sequence[str]
    settings: RLSettings
    reward: Scorer | None  # None only on the way to Ray Train workers (they load it from its folder)
    prefill: str = ""  # e.g. an opened scratchpad


def grpo_args(settings: RLSettings, seed: int, out: str, **overrides: Any) -> Any:
    """The GRPOConfig; `overrides` replace fields (e.g. DeepSpeed's on Ray Train workers)."""
    from trl import GRPOConfig

    return GRPOConfig(**(trainer_args(
        out, steps=settings.steps, lr=settings.lr, batch_size=settings.batch_size, seed=seed,
        logging_steps=1, lr_scheduler_type="constant", num_generations=settings.num_generations,
        max_completion_length=settings.max_new_tokens, temperature=settings.temperature,
        beta=settings.beta, gradient_checkpointing=False,
    ) | overrides))


def grpo_trainer(model: Any, tokenizer: Any, prompts: Sequence[str], reward: Scorer, args: Any, *,
                 callbacks: Sequence[Any] = (), prefill: str = "", peft_config: Any = None) -> Any:
    """The TRL GRPOTrainer. With LoRA (`peft_config`), TRL's KL reference is the model with the
    adapters disabled; without, the model at the policy's `_name_or_path`. With `prefill`, every
    rollout starts with it (e.g. an opened scratchpad)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    if prefill:  # TRL always adds a fresh assistant turn to chat prompts: give it rendered text
        rows = [{"prompt": tokenizer.apply_chat_template(conversation(p, prefill), tokenize=False,
                                                         continue_final_message=True),
                 "question": p, "prefill": prefill} for p in prompts]
    else:
        rows = [{"prompt": [{"role": "user", "content": p}]} for p in prompts]
    trainer = GRPOTrainer(model=model, reward_funcs=[PreferenceReward(reward)], args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          peft_config=peft_config, callbacks=list(callbacks))
    trainer.remove_callback(PrinterCallback)  # the log is returned, not printed
    return trainer


def grpo_log(history: Sequence[dict[str, Any]]) -> list[LogEntry]:
    """GRPO's per-step log entries in our metric names."""
    return [{"step": r["step"], **{ours: float(r[theirs]) for theirs, ours in LOGGED.items()
                                   if isinstance(r.get(theirs), int | float)}}
            for r in history if "reward" in r]


@METHODS.register("grpo")
class GRPO(TrainingMethod):
    """GRPO toward a preference model; logs reward, kl, entropy, loss and completion length."""

    logged = LOGGED

    def inputs(self, job: GRPOJob, seed: int, lora: LoraSpec | None) -> tuple[Any, ...]:
        return job.settings.model_dump(mode="json"), seed, list(job.prompts), lora, job.prefill

    def args(self, job: GRPOJob, seed: int, out: str, **overrides: Any) -> Any:
        return grpo_args(job.settings, seed, out, **overrides)

    def trainer(self, model: Any, tokenizer: Any, job: GRPOJob, args: Any, callbacks: Sequence[Any],
                peft_config: Any) -> Any:
        assert job.reward is not None  # `on_worker` loads it where `portable` dropped it
        return grpo_trainer(model, tokenizer, job.prompts, job.reward, args, callbacks=callbacks,
                            prefill=job.prefill, peft_config=peft_config)

    def log(self, history: Sequence[dict[str, Any]]) -> list[LogEntry]:
        return grpo_log(history)

    def batch(self, job: GRPOJob) -> tuple[int, int]:
        return job.settings.batch_size, 1

    def cost(self, trial: TrialConfig, prompt_tokens: int) -> MethodCost:
        """rl.steps x rl.batch_size completions of (prompt + rl.max_new_tokens), the completions
        generated on the training GPUs; a KL reference where rl.beta > 0."""
        r = trial.rl
        seq = prompt_tokens + r.max_new_tokens
        return MethodCost(float(r.steps * r.batch_size * seq), float(r.steps * r.batch_size * r.max_new_tokens),
                          r.beta > 0, r.steps, r.eval_every, r.batch_size, seq)

    def check_workers(self, job: GRPOJob, resources: TrainingResources, micro: int) -> None:
        if (micro * resources.workers) % job.settings.num_generations:  # checked by the spec too
            raise ValueError(f"{resources.workers} workers x {micro} completions per step is not a "
                             f"multiple of num_generations {job.settings.num_generations}")

    def reference(self, job: GRPOJob) -> bool:
        return job.settings.beta > 0

    def portable(self, job: GRPOJob) -> tuple[GRPOJob, dict[str, Path]]:
        folder = getattr(job.reward, "folder", None)
        if folder is None:
            raise ValueError("GRPO on Ray Train workers needs a preference model saved in a folder")
        return replace(job, reward=None), {"reward_model": Path(folder)}

    def on_worker(self, job: GRPOJob, folders: Mapping[str, str]) -> GRPOJob:
        return replace(job, reward=PreferenceModel.load(folders["reward_model"]))
