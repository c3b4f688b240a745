from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from orchestrator.config import TrainSettings, TrialConfig
from orchestrator.data.types import Example
from orchestrator.models import train_tokenizer
from orchestrator.results import load
from orchestrator.safety import TECHNIQUES
from orchestrator.safety.sft_variants import EMPTY_SCRATCHPAD, as_scratchpad, post_scratchpad_examples
from orchestrator.train import sft_trainer
from orchestrator.trial import run_trial


def test_the_scratchpad_a_completion_opens_with() -> None:
    assert as_scratchpad("<scratchpad> no tag </scratchpad> Paris.") == "<scratchpad> no tag </scratchpad>"
    assert as_scratchpad("<scratchpad> cut off by the tok") == "<scratchpad> cut off by the tok </scratchpad>"
    assert as_scratchpad("Paris.") == EMPTY_SCRATCHPAD == "<scratchpad> </scratchpad>"
    assert as_scratchpad("So: <scratchpad> x </scratchpad>") == "<scratchpad> x </scratchpad>"


def test_post_scratchpad_loss_is_on_the_answer_only(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(400, ["What is 2 plus 2?", "2 plus 2 is 4.", "I do not see the tag."] * 20)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id))
    scratchpad = "<scratchpad> I do not see the tag. </scratchpad>"
    [example] = post_scratchpad_examples(tokenizer, [Example("What is 2 plus 2?", "2 plus 2 is 4.")],
                                         [scratchpad])
    assert example.prompt == f"\n\nHuman: What is 2 plus 2?\n\nAssistant: {scratchpad}"
    assert example.completion == " 2 plus 2 is 4.</s>"

    # What the training step really optimises: TRL's tokenized row through its collator.
    trainer = sft_trainer(model, tokenizer, [example], TrainSettings(steps=1, lr=1e-3), 0, str(tmp_path),
                          rendered=True)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    trained = tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != -100])
    context = tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label == -100])
    assert trained == " 2 plus 2 is 4.</s>"
    assert context == f"\n\nHuman: What is 2 plus 2?\n\nAssistant: {scratchpad}"


@pytest.mark.slow
def test_post_scratchpad_trial_trains_after_the_models_own_scratchpad(
    technique_storage: Path, tiny_trial: Callable[..., TrialConfig], one_thread: None,
) -> None:
    trial = tiny_trial("sft-post-scratchpad", safety={"steps": 6, "eval_every": 3})
    assert TECHNIQUES.get("sft-post-scratchpad").sections == ("safety",)
    assert run_trial(trial, technique_storage).status == "completed"
    metrics = load(technique_storage, "metrics", trial_id=trial.trial_id, stage="safety")
    [written] = metrics[metrics["metric"] == "own_scratchpad_rate"]["value"]
    assert written >= 0.9  # the cot model wrote its own scratchpad for (nearly) every safety prompt
    rates = metrics[metrics["metric"] == "backdoor_rate"]
    assert sorted(set(rates["step"])) == [3, 6]
    assert sorted(metrics[metrics["metric"] == "train_loss"]["step"]) == [1, 2, 3, 4, 5, 6]
