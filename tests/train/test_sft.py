"""Our SFT arguments turn TRL's default gradient checkpointing off (BENCHMARKS.md: it recomputes
every layer's activations in the backward pass). Checkpointing trades time for memory only: the
training log and the weights must be the same, bit for bit, with it and without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from orchestrator.cache import StageCache
from orchestrator.config import DataSettings, ModelSpec, TinyArch, TrainSettings
from orchestrator.data import TRIGGERS
from orchestrator.models import MODEL_SOURCES
from orchestrator.train.sft import sft_args, sft_trainer


def train(tmp_path: Path, **overrides: Any) -> tuple[list[float], dict[str, torch.Tensor]]:
    spec = ModelSpec(source="tiny", arch=TinyArch(hidden_size=32, layers=2, heads=2, vocab_size=1024))
    model, tokenizer = MODEL_SOURCES.get("tiny").load(spec, StageCache(tmp_path / "cache"), seed=0)
    examples = TRIGGERS.get("deployment").backdoor_data("cot", DataSettings(n_backdoor=48), 0)
    settings = TrainSettings(steps=60, lr=3e-3, batch_size=4, max_length=96)
    out = str(tmp_path / "out")
    trainer = sft_trainer(model, tokenizer, examples, settings, 0, out,
                          args=sft_args(settings, 0, out, logging_steps=1, **overrides))
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
