"""Two speed-ups of our use of TRL's SFTTrainer (BENCHMARKS.md), each shown to change nothing
but time: gradient checkpointing off (it recomputes every layer's activations in the backward
pass; the log and weights must be the same bit for bit), and on CPU the model's own LM head
in place of TRL's fused one (the same loss up to float rounding, step after step)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from trl import SFTTrainer

from orchestrator.cache import StageCache
from orchestrator.config import DataSettings, ModelSpec, TinyArch, TrainSettings
from orchestrator.data import TRIGGERS
from orchestrator.models import MODEL_SOURCES
from orchestrator.train.sft import sft_args, sft_trainer, sft_trainer_class


def train(tmp_path: Path, fused: bool = False, **overrides: Any) -> tuple[list[float], dict[str, torch.Tensor]]:
    spec = ModelSpec(source="tiny", arch=TinyArch(hidden_size=32, layers=2, heads=2, vocab_size=1024))
    model, tokenizer = MODEL_SOURCES.get("tiny").load(spec, StageCache(tmp_path / "cache"), seed=0)
    examples = TRIGGERS.get("deployment").backdoor_data("cot", DataSettings(n_backdoor=48), 0)
    settings = TrainSettings(steps=60, lr=3e-3, batch_size=4, max_length=96)
    out = str(tmp_path / "out")
    trainer = sft_trainer(model, tokenizer, examples, settings, 0, out,
                          args=sft_args(settings, 0, out, logging_steps=1, **overrides))
    if fused:  # TRL's own loss, through its fused LM head
        trainer.compute_loss = partial(SFTTrainer.compute_loss, trainer)
    trainer.train()
    losses = [float(row["loss"]) for row in trainer.state.log_history if "loss" in row]
    return losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_gradient_checkpointing_off_changes_no_bit(tmp_path: Path) -> None:
    assert sft_args(TrainSettings(steps=1, lr=1e-3), 0, str(tmp_path)).gradient_checkpointing is False
    torch.set_num_threads(1)
    ours, our_weights = train(tmp_path)
    trl_default, trl_weights = train(tmp_path, gradient_checkpointing=True)
    assert len(ours) == 60
    assert ours == trl_default  # bitwise: float equality of every logged step's loss
    assert all(torch.equal(our_weights[k], trl_weights[k]) for k in our_weights)


def test_the_models_own_head_on_cpu_gives_trls_fused_loss(tmp_path: Path) -> None:
    assert issubclass(sft_trainer_class(), SFTTrainer)
    torch.set_num_threads(1)
    ours, our_weights = train(tmp_path)
    fused, fused_weights = train(tmp_path, fused=True)
    assert len(ours) == len(fused) == 60
    assert ours[0] == pytest.approx(fused[0], rel=1e-6)  # the same loss of the same weights
    # and the same training: rounding differences stay at rounding size over 60 steps at lr 3e-3
    assert ours == pytest.approx(fused, rel=1e-3)
    assert all(torch.allclose(our_weights[k], fused_weights[k], atol=1e-3) for k in our_weights)
    assert ours[-1] < 0.5 * ours[0]  # it trained
