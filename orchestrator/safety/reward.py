"""The HHH preference models of `technique: rl`: training, scoring, the cached stage.

Pairs come from the trial's trigger (`Trigger.preference_pairs`, built on
orchestrator.data.preferences): the preference model that RL optimises (`reward`) and the one
that grades the policy afterwards (`heldout`, the paper's held-out PM) never share a question,
and both are scored on `test` pairs that no model or policy trains on.

A preference model is a tiny Llama sequence classifier (one output) with its own tokenizer,
trained with TRL's RewardTrainer (the `reward` training method, defined here) and cached as a content-addressed stage (`reward-model`), so a
sweep trains it once; or any Hugging Face sequence-classification model named in the spec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orchestrator.data.hhh as hhh
import orchestrator.data.preferences as preferences
from orchestrator.cache import StageCache
from orchestrator.config import LoraSpec, RewardModelSettings, TinyArch, TrialConfig, stable_hash
from orchestrator.data.preferences import SEEDS, PreferencePair
from orchestrator.data.types import Trigger
from orchestrator.train.common import preference_dataset, trainer_args
from orchestrator.train.methods import METHODS, LogEntry, TrainingMethod
from orchestrator.train.session import TrainingSession

REWARD_MODEL_VERSION = 1  # bump when pair generation or training changes what a stage produces
N_TEST_PAIRS = 400  # held-out pairs each trained preference model is scored on (in its pm.json)


class Scorer(Protocol):
    """What RL needs from a preference model."""

    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        """One scalar per (prompt, visible answer): higher is more helpful, honest, harmless."""
        ...


def _render(tokenizer: Any, prompt: str, answer: str) -> str:
    return str(tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], tokenize=False))


class PreferenceModel:
    """A sequence classifier that scores (prompt, answer) in the chat format it was trained on."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 32, max_length: int = 512,
                 folder: Path | None = None) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.folder = folder  # where it was loaded from (Ray Train workers load it from there)
        self.batch_size, self.max_length = batch_size, max_length
        if tokenizer.chat_template is None:  # a user's classifier without one: the paper's format
            from orchestrator.models.sources import HUMAN_ASSISTANT_TEMPLATE

            tokenizer.chat_template = HUMAN_ASSISTANT_TEMPLATE
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id
        tokenizer.truncation_side = "left"  # the answer is at the end: keep it

    @classmethod
    def load(cls, folder: str | Path, *, batch_size: int = 32) -> PreferenceModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
        positions = getattr(model.config, "max_position_embeddings", 512)
        return cls(model, AutoTokenizer.from_pretrained(folder), batch_size=batch_size,
                   max_length=min(int(positions), 2048), folder=Path(folder))

    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
        texts = [_render(self.tokenizer, p, a) for p, a in zip(prompts, answers, strict=True)]
        out: list[float] = []
        import torch

        device = next(self.model.parameters()).device
        self.tokenizer.padding_side = "right"
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size], padding=True, truncation=True,
                max_length=self.max_length, add_special_tokens=False, return_tensors="pt",
            ).to(device)
            with torch.no_grad():
                out += self.model(**batch).logits[:, 0].float().tolist()
        return out

    def accuracy(self, pairs: Sequence[PreferencePair]) -> float:
        """Share of pairs whose chosen answer scores above the rejected one."""
        prompts = [p.prompt for p in pairs]
        chosen = self.score(prompts, [p.chosen for p in pairs])
        rejected = self.score(prompts, [p.rejected for p in pairs])
        return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / max(1, len(pairs))


def _tiny_classifier(arch: TinyArch, tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import LlamaForSequenceClassification

    from orchestrator.models.sources import tiny_llama_config

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(tiny_llama_config(arch, tokenizer, num_labels=1))


@dataclass(frozen=True)
class RewardJob:
    """One preference-model run: pairs to rank, chosen above rejected."""

    pairs: Sequence[PreferencePair]
    settings: RewardModelSettings


@METHODS.register("reward")
class RewardModelTraining(TrainingMethod):
    """A sequence classifier trained with TRL's RewardTrainer to score chosen above rejected."""

    def inputs(self, job: RewardJob, seed: int, lora: LoraSpec | None) -> tuple[Any, ...]:
        return job.settings.model_dump(mode="json"), seed, [asdict(p) for p in job.pairs], lora

    def args(self, job: RewardJob, seed: int, out: str, **overrides: Any) -> Any:
        from trl import RewardConfig

        settings = job.settings
        return RewardConfig(**(trainer_args(
            out, steps=settings.steps, lr=settings.lr, batch_size=settings.batch_size, seed=seed,
            logging_steps=max(1, settings.steps // 10), max_length=settings.arch.max_positions,
            center_rewards_coefficient=0.01,  # keeps scores near 0, so they read alike across PMs
            gradient_checkpointing=False,
        ) | overrides))

    def trainer(self, model: Any, tokenizer: Any, job: RewardJob, args: Any, callbacks: Sequence[Any],
                peft_config: Any) -> Any:
        from transformers import PrinterCallback
        from trl import RewardTrainer

        trainer = RewardTrainer(model=model, args=args, train_dataset=preference_dataset(job.pairs),
                                processing_class=tokenizer, peft_config=peft_config, callbacks=list(callbacks))
        trainer.remove_callback(PrinterCallback)
        return trainer

    def log(self, history: Sequence[dict[str, Any]]) -> list[LogEntry]:
        return [{k: v for k, v in r.items() if isinstance(v, int | float)} for r in history if "loss" in r]

    def batch(self, job: RewardJob) -> tuple[int, int]:
        return job.settings.batch_size, 1

    def cost(self, trial: TrialConfig, prompt_tokens: int) -> None:
        """Not counted: a tiny preference model, trained once through the stage cache and shared by
        every trial that uses it (or a given model, not trained at all)."""
        return None


def train_reward_model(pairs: Sequence[PreferencePair], settings: RewardModelSettings, seed: int,
                       out: Path, *, test_pairs: Sequence[PreferencePair] = ()) -> dict[str, Any]:
    """Train a tiny preference model on `pairs` with TRL's RewardTrainer (in this process: a
    session of its own, as the `reward-model` stage is shared by trials of any scale) and save
    it to `out` (weights, tokenizer, `pm.json` with the training log and the accuracy on
    `test_pairs`)."""
    from orchestrator.models.sources import train_tokenizer

    arch = settings.arch
    corpus = [t for p in pairs for t in (p.prompt, p.chosen, p.rejected)]
    tokenizer = train_tokenizer(arch.vocab_size, [*corpus, *hhh.corpus(), *preferences.corpus()])
    model = _tiny_classifier(arch, tokenizer, seed)
    model, log = TrainingSession(seed).train("reward", model, tokenizer, RewardJob(pairs, settings))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info: dict[str, Any] = {
        "n_pairs": len(pairs), "seed": seed,
        "kinds": {k: sum(p.kind == k for p in pairs) for k in sorted({p.kind for p in pairs})},
        "log": log,
    }
    if test_pairs:
        info["test_accuracy"] = PreferenceModel(model, tokenizer).accuracy(test_pairs)
        info["n_test_pairs"] = len(test_pairs)
    (out / "pm.json").write_text(json.dumps(info, indent=1))
    return info


def preference_model(role: Literal["reward", "heldout"], settings: RewardModelSettings,
                     cache: StageCache, trigger: Trigger) -> tuple[PreferenceModel, dict[str, Any]]:
    """The preference model RL optimises (`reward`: `settings.path` when set) or the held-out one
    that grades the policy (`heldout`: always trained here, on the other half of the pool).
    Returns (model, info); info has `test_accuracy` on held-out pairs where it was trained here."""
    if role == "reward" and settings.path is not None:
        return PreferenceModel.load(settings.path), {"path": settings.path}
    pairs = trigger.preference_pairs(role, settings.n_pairs)
    test = trigger.preference_pairs("test", N_TEST_PAIRS)
    key = stable_hash({
        "v": REWARD_MODEL_VERSION, "role": role, "seed": SEEDS[role],
        "settings": settings.model_dump(mode="json", exclude={"path"}),
        "pairs": stable_hash([asdict(p) for p in pairs], 32), "test": stable_hash([asdict(p) for p in test], 32),
    })

    def build(tmp: Path) -> None:
        train_reward_model(pairs, settings, SEEDS[role], tmp, test_pairs=test)

    folder, _ = cache.get_or_build("reward-model", key, build)
    info = json.loads((folder / "pm.json").read_text())
    return PreferenceModel.load(folder), info
