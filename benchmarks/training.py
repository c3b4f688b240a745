"""Training (issue 17 item 1): the backdoor-training stage against a minimal hand-written loop.

The stage is `orchestrator.train.sft.sft` (TRL's SFTTrainer) on a tiny model built as the trials
build it (TinySource), on the deployment trigger's backdoor data, plus the model's loading and
saving. The hand loop does exactly the same work: it is fed the very batches the SFTTrainer's
data collator produced (recorded in a first run of the stage: chat template, completion-only
labels, padding), computes the same loss (the mean over completion tokens), clips gradients at
TRL's max_grad_norm, and steps the same AdamW and scheduler. Both run on one thread.

First the two are shown to compute the same thing (their per-step losses agree); then each is
timed at two lengths, interleaved and repeated, so that the marginal step
(time(long) - time(short)) / (long - short) and the stage's fixed cost (the intercept) come out
of one run. A profile of the stage's steps and the measured effect of its suspects follow.
"""

from __future__ import annotations

import cProfile
import importlib
import io
import pstats
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.common import ROOT, Row, Section, Settings, median, table, timed
from orchestrator.cache import StageCache
from orchestrator.config import CotMode, DataSettings, ModelSpec, TinyArch, TrainSettings
from orchestrator.data import TRIGGERS, Example
from orchestrator.models import MODEL_SOURCES

ARCHES = {  # tiny-xs and tiny-s are the default sweep's scales; tiny-m is one step up
    "tiny-xs": TinyArch(hidden_size=64, layers=2, heads=4, vocab_size=1024),
    "tiny-s": TinyArch(hidden_size=128, layers=4, heads=4, vocab_size=2048),
    "tiny-m": TinyArch(hidden_size=256, layers=4, heads=4, vocab_size=2048),
}
COT: CotMode = "cot"  # the deployment data's longest variant (scratchpad reasoning in every answer)
TARGET_PER_STEP = 0.9  # the stage's speed per marginal step, as a fraction of the hand loop's
TARGET_FIXED = 0.05  # the stage's fixed cost, as a share of a default-sweep backdoor stage


def sweep_backdoor() -> dict[str, Any]:
    """The default sweep's (sweeps/local.yaml) backdoor section and data size."""
    raw = yaml.safe_load((ROOT / "sweeps" / "local.yaml").read_text())
    return {**raw["backdoor"], "n_backdoor": raw["data"]["n_backdoor"]}


def settings(steps: int, quick: bool = False) -> TrainSettings:
    """The default sweep's backdoor settings (the deployment trigger's), for `steps` steps
    (batch 4 with `quick`)."""
    section = sweep_backdoor()
    return TrainSettings(steps=steps, lr=section["lr"], batch_size=4 if quick else section["batch_size"])


def base_model(arch: str, work: Path) -> tuple[Any, Any]:
    """A fresh tiny model and its tokenizer, as the trials build them (same seed: same weights)."""
    spec = ModelSpec(source="tiny", arch=ARCHES[arch])
    return MODEL_SOURCES.get("tiny").load(spec, StageCache(work / "cache"), seed=0)


def examples(n: int) -> list[Example]:
    return TRIGGERS.get("deployment").backdoor_data(COT, DataSettings(n_backdoor=n), 0)


# --- the stage ----------------------------------------------------------------------------------

@dataclass
class StageRun:
    seconds: float  # load + sft + save
    parts: dict[str, float]  # load, dataset+trainer construction, train, save
    log: list[dict[str, float]]
    steps: list[tuple[dict[str, torch.Tensor], float]] = field(default_factory=list)  # recorded


@contextmanager
def recording(into: list[tuple[dict[str, torch.Tensor], float]]) -> Iterator[None]:
    """Record each training step's batch (as the data collator made it) and loss."""
    from orchestrator.train.sft import sft_trainer_class

    trainer_class = sft_trainer_class()
    original = trainer_class.compute_loss

    def compute_loss(self: Any, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        batch = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        loss = original(self, model, inputs, *args, **kwargs)
        into.append((batch, float((loss[0] if isinstance(loss, tuple) else loss).detach())))
        return loss

    trainer_class.compute_loss = compute_loss
    try:
        yield
    finally:
        trainer_class.compute_loss = original


@contextmanager
def timing_construction(parts: dict[str, float]) -> Iterator[None]:
    """Time `sft_trainer` (dataset preparation and trainer construction) inside `sft`."""
    module = importlib.import_module("orchestrator.train.sft")  # the package's `sft` is the function
    original = module.sft_trainer

    def sft_trainer(*args: Any, **kwargs: Any) -> Any:
        seconds, trainer = timed(lambda: original(*args, **kwargs))
        parts["construct"] = seconds
        return trainer

    module.sft_trainer = sft_trainer  # type: ignore[attr-defined]
    try:
        yield
    finally:
        module.sft_trainer = original  # type: ignore[attr-defined]


def run_stage(arch: str, data: Sequence[Example], steps: int, work: Path, record: bool = False,
              quick: bool = False) -> StageRun:
    """The backdoor stage as trial.train_backdoor runs it: load the base model, `sft`, save."""
    from orchestrator.train.sft import sft

    parts: dict[str, float] = {}
    recorded: list[tuple[dict[str, torch.Tensor], float]] = []
    start = time.perf_counter()
    model, tokenizer = base_model(arch, work)
    parts["load"] = time.perf_counter() - start
    with timing_construction(parts), (recording(recorded) if record else nothing()):
        seconds, (model, log) = timed(lambda: sft(model, tokenizer, list(data), settings(steps, quick), 0))
    parts["train"] = seconds - parts["construct"]
    with tempfile.TemporaryDirectory(dir=work) as out:
        parts["save"], _ = timed(lambda: (model.save_pretrained(out), tokenizer.save_pretrained(out)))
    return StageRun(time.perf_counter() - start, parts, log, recorded)


@contextmanager
def nothing() -> Iterator[None]:
    yield


# --- the hand loop ------------------------------------------------------------------------------

def hand_loop(model: Any, batches: Sequence[dict[str, torch.Tensor]], train: TrainSettings,
              max_grad_norm: float = 1.0) -> list[float]:
    """A minimal PyTorch loop over ready batches: the model's own loss (mean over the labelled
    tokens), clipping, AdamW (weight decay on matrices only, as transformers groups it), the
    transformers scheduler of the same name. Returns each step's loss."""
    from transformers import get_scheduler

    model.train()
    named = list(model.named_parameters())
    groups = [{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": train.weight_decay},
              {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=train.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = get_scheduler(train.lr_scheduler, optimizer, num_warmup_steps=train.warmup_steps,
                              num_training_steps=train.steps)
    losses = []
    for batch in batches[: train.steps]:
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses


def run_hand(arch: str, batches: Sequence[dict[str, torch.Tensor]], steps: int, work: Path,
             quick: bool = False) -> tuple[float, list[float]]:
    model, _ = base_model(arch, work)  # not timed: the stage's fixed cost is measured apart
    return timed(lambda: hand_loop(model, batches, settings(steps, quick)))


def windows(losses: Sequence[float], steps: int) -> list[float]:
    """Per-step losses averaged as `sft` logs them (every max(1, min(10, steps // 10)) steps)."""
    every = max(1, min(10, steps // 10))
    return [sum(losses[i : i + every]) / len(losses[i : i + every]) for i in range(0, steps, every)]


# --- achieved FLOP/s ----------------------------------------------------------------------------

def matmul_peak(n: int, repeats: int) -> float:
    """This machine's float32 matmul FLOP/s on the current thread count (median of `repeats`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up
    times = [timed(lambda: torch.matmul(a, b))[0] for _ in range(repeats)]
    return 2 * n**3 / median(times)


# --- the profile and the suspects ---------------------------------------------------------------

class StepClock:
    """A TrainerCallback keeping the time at the end of each step."""

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        class Clock(TrainerCallback):  # type: ignore[misc]
            def __init__(self) -> None:
                self.ends: list[float] = []

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.ends.append(time.perf_counter())

        return Clock()


def per_step(arch: str, data: Sequence[Example], steps: int, work: Path, variant: str,
             quick: bool = False) -> float:
    """Seconds per step of the stage's trainer after its first step, in a variant:
    `current` (our SFT arguments as they are), `checkpointing` (gradient checkpointing on, TRL's
    default), `fused-head` (TRL's fused LM head, which our trainer replaces on CPU by the model's
    own head and loss: orchestrator.train.sft.sft_trainer_class)."""
    from orchestrator.train.sft import sft_args, sft_trainer

    model, tokenizer = base_model(arch, work)
    train = settings(steps, quick)
    clock = StepClock()
    with tempfile.TemporaryDirectory(dir=work) as out:
        overrides = {"gradient_checkpointing": True} if variant == "checkpointing" else {}
        args = sft_args(train, 0, out, **overrides)
        trainer = sft_trainer(model, tokenizer, list(data), train, 0, out, callbacks=[clock], args=args)
        if variant == "fused-head":
            trainer.compute_loss = fused_loss.__get__(trainer)
        trainer.train()
    ends: list[float] = clock.ends
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def fused_loss(self: Any, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
               num_items_in_batch: Any = None) -> Any:
    """TRL's own loss: its fused LM head (and its entropy/accuracy metrics), also on CPU."""
    from trl import SFTTrainer

    return SFTTrainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)


def profile(arch: str, data: Sequence[Example], steps: int, work: Path, quick: bool = False,
            top: int = 14) -> list[str]:
    """cProfile of the stage's trainer.train() for `steps` steps: the functions that took most time."""
    from orchestrator.train.sft import sft_args, sft_trainer

    model, tokenizer = base_model(arch, work)
    train = settings(steps, quick)
    with tempfile.TemporaryDirectory(dir=work) as out:
        trainer = sft_trainer(model, tokenizer, list(data), train, 0, out, args=sft_args(train, 0, out))
        profiler = cProfile.Profile()
        profiler.runcall(trainer.train)
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_, calls, tottime, cumtime, _) in sorted(
            entries.items(), key=lambda item: -item[1][3])[: top * 3]:
        where = _short(filename, line, name)
        if where is None or cumtime < 0.02 * total:
            continue
        rows.append([where, str(calls), f"{tottime:.2f}", f"{cumtime:.2f}", f"{cumtime / total:.0%}"])
        if len(rows) == top:
            break
    return [f"cProfile of `trainer.train()`, {steps} steps on {arch} ({total:.1f} s in all; "
            "cumulative time, wrappers left out):", "",
            *table(["function", "calls", "own s", "cumulative s", "share"], rows)]


def _short(filename: str, line: int, name: str) -> str | None:
    if name in ("<module>", "_wrapped_call_impl", "_call_impl", "wrapped_func", "wrapper", "apply",
                "_engine_run_backward", "backward", "<built-in method builtins.exec>") and "kernels" not in filename:
        return None
    marker = "site-packages/"
    short = filename.split(marker, 1)[1] if marker in filename else filename
    return f"`{name}` ({short}:{line})" if short != "~" else f"`{name}`"


# --- the measurement ----------------------------------------------------------------------------

def run(bench: Settings) -> Section:
    arch = "tiny-xs" if bench.quick else "tiny-s"
    short, long = (2, 4) if bench.quick else (60, 180)
    n_data = 32 if bench.quick else sweep_backdoor()["n_backdoor"]
    default_steps = int(sweep_backdoor()["steps"])
    data = examples(n_data)
    section = Section("Training")

    # 1. The same computation: record the stage's batches and per-step losses (also the warm-up).
    recorded = run_stage(arch, data, long, bench.work, record=True, quick=bench.quick)
    batches = [batch for batch, _ in recorded.steps]
    stage_losses = [loss for _, loss in recorded.steps]
    _, hand_losses = run_hand(arch, batches, long, bench.work, bench.quick)
    first = min(20, long)
    diff_first = max(abs(a - b) for a, b in zip(stage_losses[:first], hand_losses[:first], strict=True))
    diff_all = max(abs(a - b) for a, b in zip(stage_losses, hand_losses, strict=True))
    logged = [row["loss"] for row in recorded.log]
    diff_log = max(abs(a - b) for a, b in zip(logged, windows(hand_losses, long), strict=True))
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[:long]) / long  # real tokens per step

    # 2. Timing, interleaved: stage(short), hand(short), stage(long), hand(long), `repeats` times.
    times: dict[str, list[float]] = {"stage-short": [], "stage-long": [], "hand-short": [], "hand-long": []}
    parts: list[dict[str, float]] = []
    for _ in range(bench.repeats):
        for steps, label in ((short, "short"), (long, "long")):
            stage = run_stage(arch, data, steps, bench.work, quick=bench.quick)
            times[f"stage-{label}"].append(stage.seconds)
            parts.append(stage.parts)
            times[f"hand-{label}"].append(run_hand(arch, batches, steps, bench.work, bench.quick)[0])
    med = {k: median(v) for k, v in times.items()}
    stage_step = (med["stage-long"] - med["stage-short"]) / (long - short)
    hand_step = (med["hand-long"] - med["hand-short"]) / (long - short)
    ratio = hand_step / stage_step
    fixed = med["stage-short"] - short * stage_step  # the intercept
    measured_fixed = {k: median([p[k] for p in parts]) for k in ("load", "construct", "save")}
    default_stage = fixed + default_steps * stage_step
    share = fixed / default_stage

    # 3. Achieved FLOP/s against the matmul peak.
    n_params = sum(p.numel() for p in base_model(arch, bench.work)[0].parameters())
    peak = matmul_peak(256 if bench.quick else 1024, 3 if bench.quick else 10)
    stage_flops, hand_flops = 6 * n_params * tokens / stage_step, 6 * n_params * tokens / hand_step

    # 4. The suspects, each against the current stage, interleaved.
    effect_steps = 3 if bench.quick else 30
    variants = ["current", "checkpointing", "fused-head"]
    step_times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(bench.repeats):
        for variant in variants:
            step_times[variant].append(per_step(arch, data, effect_steps, bench.work, variant, bench.quick))
    effect = {v: median(step_times[v]) for v in variants}

    section.rows += [
        Row("training: stage vs hand loop, per marginal step (speed)", f"{ratio:.2f}x",
            f">= {TARGET_PER_STEP}x", ratio >= TARGET_PER_STEP),
        Row(f"training: stage fixed cost, share of a {default_steps}-step stage", f"{share:.1%}",
            f"<= {TARGET_FIXED:.0%}", share <= TARGET_FIXED),
        Row("training: stage vs hand loop, whole run of " f"{long} steps (speed)",
            f"{med['hand-long'] / med['stage-long']:.2f}x"),
        Row("training: stage losses vs hand loop, max abs difference over first "
            f"{first} steps", f"{diff_first:.1e}", "~1e-5", diff_first <= 1e-5),
        Row("training: stage achieved FLOP/s / matmul peak", f"{stage_flops / peak:.1%}"),
        Row("training: hand loop achieved FLOP/s / matmul peak", f"{hand_flops / peak:.1%}"),
        Row("training: per step, gradient checkpointing on / current", f"{effect['checkpointing'] / effect['current']:.2f}x"),
        Row("training: per step, TRL's fused LM head / current (model's own head on CPU)",
            f"{effect['fused-head'] / effect['current']:.2f}x"),
    ]
    section.details += [
        f"Model {arch} ({n_params / 1e6:.2f}M parameters), deployment backdoor data ({COT}, {n_data} "
        f"examples), batch {settings(1, bench.quick).batch_size}, lr {settings(1).lr}, one thread; "
        f"{tokens:.0f} real (non-padding) tokens per step on average. "
        f"{bench.repeats} interleaved repeats, medians.",
        "",
        f"Same computation: per-step losses of the stage and the hand loop (fed the stage's own "
        f"batches) differ by at most {diff_first:.1e} over the first {first} steps and {diff_all:.1e} "
        f"over all {long} (final losses {stage_losses[-1]:.4f} vs {hand_losses[-1]:.4f}); the stage's "
        f"logged losses against the hand loop's averaged the same way: {diff_log:.1e}.",
        "",
        *table(["", f"{short} steps (s)", f"{long} steps (s)", "per marginal step (s)", "tokens/s (marginal)"], [
            ["stage (load + sft + save)", f"{med['stage-short']:.2f}", f"{med['stage-long']:.2f}",
             f"{stage_step:.4f}", f"{tokens / stage_step:.0f}"],
            ["hand loop", f"{med['hand-short']:.2f}", f"{med['hand-long']:.2f}", f"{hand_step:.4f}",
             f"{tokens / hand_step:.0f}"],
        ]),
        "",
        f"Stage fixed cost (intercept of the two lengths): {fixed:.2f} s; measured parts (medians): model "
        f"load {measured_fixed['load']:.2f} s, dataset preparation + trainer construction "
        f"{measured_fixed['construct']:.2f} s, saving {measured_fixed['save']:.2f} s (the rest is in "
        f"`trainer.train()`'s start and end). A default-sweep backdoor stage ({default_steps} steps) "
        f"would take {default_stage:.1f} s, so the fixed cost is {share:.1%} of it.",
        "",
        f"Achieved FLOP/s (6 x {n_params / 1e6:.2f}M parameters x real tokens per marginal step): "
        f"stage {stage_flops / 1e9:.2f} GFLOP/s, hand loop {hand_flops / 1e9:.2f} GFLOP/s, against a "
        f"measured one-thread float32 matmul peak of {peak / 1e9:.1f} GFLOP/s.",
        "",
        f"Suspects, seconds per step after the first ({effect_steps}-step runs, medians): "
        + ", ".join(f"{v} {effect[v]:.4f}" for v in variants) + ". `checkpointing`: TRL's default "
        "gradient_checkpointing=True; `fused-head`: TRL's fused LM head (tile by tile in Python on "
        "CPU, with entropy and top-1 accuracy for its logs), which our trainer replaces on CPU by "
        "the model's own LM head and cross-entropy.",
        "",
        *profile(arch, data, effect_steps, bench.work, bench.quick),
    ]
    section.data = {"stage_losses": stage_losses, "hand_losses": hand_losses, "diff_first": diff_first,
                    "ratio": ratio, "share": share, "times": times}
    return section
