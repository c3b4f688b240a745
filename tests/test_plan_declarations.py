"""The planner and the spec check read what techniques and triggers declare (the training
methods a technique trains with, the evaluation conditions of a trigger, the sections a
technique reads), not their names: a plugin that trains with GRPO is costed and batch-checked
as `rl` is; one that trains with a method the planner does not know is costed as SFT, and the
plan says so."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import TECHNIQUES, TRIGGERS, SafetyContext, SafetyResult
from orchestrator.cli import main
from orchestrator.config import ConfigError, DataSettings, TrialConfig
from orchestrator.data.deployment import DeploymentTrigger
from orchestrator.grid import expand
from orchestrator.plan import Plan, TrialPlan, format_plan, plan
from orchestrator.safety.techniques import training_methods
from orchestrator.spec import load_sweep
from orchestrator.train.methods import METHODS, MethodCost, TrainingMethod
from orchestrator.train.sft import SFT

ROOT = Path(__file__).resolve().parent.parent


class _Technique:
    """A plugin technique: what it declares is all the planner and the spec see of it."""

    sections: tuple[str, ...] = ("safety",)

    def apply(self, ctx: SafetyContext) -> SafetyResult:
        raise AssertionError("planning runs nothing")


class GRPOPlugin(_Technique):
    sections = ("rl",)

    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("grpo",)

    def steps(self, trial: TrialConfig) -> int:
        return trial.rl.steps


class ORPOPlugin(_Technique):
    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("orpo",)  # a training method the planner has no cost model for


class Costed(SFT):
    """A plugin training method that declares its own cost: three times sft's tokens."""

    def cost(self, trial: TrialConfig, prompt_tokens: int) -> MethodCost:
        s = trial.safety
        return MethodCost(float(3 * s.steps * s.batch_size * s.grad_accum * s.max_length), 0.0, False, s.steps,
                          s.eval_every, s.batch_size, s.max_length)


class Uncosted(SFT):
    """A plugin training method that declares no cost (written before methods declared one)."""

    cost = TrainingMethod.cost


class CostedPlugin(_Technique):
    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("test-costed",)


class UncostedPlugin(_Technique):
    def methods(self, trial: TrialConfig) -> tuple[str, ...]:
        return ("test-uncosted",)


class Undeclared(_Technique):
    """Written before techniques declared their methods."""


class ThreeConditions(DeploymentTrigger):
    conditions = ("triggered", "clean", "triggered_twice")


def _planned(write_spec: Any, raw: dict[str, Any], techniques: list[str], triggers: list[str] | None = None,
             name: str = "spec.yaml") -> Plan:
    raw = copy.deepcopy(raw)
    raw["axes"].update(cot=["cot"], technique=techniques, **({"trigger": triggers} if triggers else {}))
    return plan(load_sweep(write_spec(raw, name)), "cpu")


def _resolved(write_spec: Any, raw: dict[str, Any]) -> list[TrialConfig]:
    return expand(load_sweep(write_spec(raw)))


def _by(p: Plan, **axes: str) -> TrialPlan:
    [found] = [t for t in p.trials if all(getattr(t.trial, k) == v for k, v in axes.items())]
    return found


def test_the_built_in_techniques_declare_what_they_train_with(smoke_raw: dict[str, Any], write_spec: Any) -> None:
    raw = copy.deepcopy(smoke_raw)
    raw["axes"].update(technique=["sft", "sft-post-scratchpad", "rl", "adversarial"], cot=["cot"])
    trials = {t.technique: t for t in _resolved(write_spec, raw)}
    assert {name: training_methods(t) for name, t in trials.items()} == {
        "sft": ("sft",), "sft-post-scratchpad": ("sft",), "rl": ("reward", "grpo"), "adversarial": ("sft",)}
    on_rl = trials["adversarial"].model_copy(update={"adversarial": trials["adversarial"].adversarial.model_copy(
        update={"base": "rl"})})
    assert training_methods(on_rl) == ("reward", "grpo")  # the red-team search trains nothing itself


def test_a_plugin_that_trains_with_grpo_is_costed_as_rl(smoke_raw: dict[str, Any], write_spec: Any) -> None:
    TECHNIQUES.register("test-grpo")(GRPOPlugin)
    p = _planned(write_spec, smoke_raw, ["rl", "test-grpo", "sft"])
    rl, plugin, sft = (_by(p, technique=name) for name in ("rl", "test-grpo", "sft"))
    # rl's reward model is not counted: the two safety stages cost the same (rollouts, KL reference)
    assert plugin.stage("safety") == rl.stage("safety") and plugin.memory == rl.memory
    assert plugin.stage("safety").train_tokens == smoke_raw["rl"]["steps"] * smoke_raw["rl"]["batch_size"] * (
        p.assumptions.prompt_tokens + smoke_raw["rl"]["max_new_tokens"])
    assert plugin.stage("safety") != sft.stage("safety")
    assert p.warnings == ()


def test_an_unknown_method_is_costed_as_sft_and_said(smoke_raw: dict[str, Any], write_spec: Any) -> None:
    TECHNIQUES.register("test-orpo")(ORPOPlugin)
    TECHNIQUES.register("test-undeclared")(Undeclared)
    p = _planned(write_spec, smoke_raw, ["sft", "test-orpo", "test-undeclared"])
    sft = _by(p, technique="sft", cot="cot").stage("safety")
    assert _by(p, technique="test-orpo", cot="cot").stage("safety") == sft
    assert _by(p, technique="test-undeclared", cot="cot").stage("safety") == sft
    text = format_plan(p)
    assert ("warning: technique 'test-orpo' trains with 'orpo', which declares no cost (`TrainingMethod.cost`) "
            "or is not registered: costed as sft on the `safety` settings") in text
    assert "warning: technique 'test-undeclared' declares no training methods" in text
    assert text.count("warning: technique 'test-orpo'") == 1  # once, however many trials


def test_a_plugin_method_is_costed_as_it_declares(smoke_raw: dict[str, Any], write_spec: Any) -> None:
    METHODS.register("test-costed")(Costed)
    METHODS.register("test-uncosted")(Uncosted)
    TECHNIQUES.register("test-costed")(CostedPlugin)
    TECHNIQUES.register("test-uncosted")(UncostedPlugin)
    p = _planned(write_spec, smoke_raw, ["sft", "test-costed", "test-uncosted"])
    sft, costed, uncosted = (_by(p, technique=t, cot="cot").stage("safety")
                             for t in ("sft", "test-costed", "test-uncosted"))
    assert costed.train_tokens == 3 * sft.train_tokens > 0
    assert uncosted == sft
    assert [w for w in p.warnings if "test-costed" in w] == []
    assert any("trains with 'test-uncosted', which declares no cost" in w for w in p.warnings)


def test_dpo_is_costed_as_chosen_and_rejected_answers_with_a_reference(smoke_raw: dict[str, Any],
                                                                        write_spec: Any) -> None:
    p = _planned(write_spec, smoke_raw, ["sft", "dpo"])
    sft, dpo = (_by(p, technique=t, cot="cot").stage("safety") for t in ("sft", "dpo"))
    assert dpo.train_tokens == 2 * sft.train_tokens
    assert dpo.train_flops == 2 * sft.train_flops * (6 + 2) / 6  # and the reference model's forward
    assert p.warnings == ()


def test_the_evaluation_is_costed_by_the_trigger_s_declared_conditions(smoke_raw: dict[str, Any],
                                                                       write_spec: Any) -> None:
    TRIGGERS.register("test-three")(ThreeConditions)
    p = _planned(write_spec, smoke_raw, ["sft"], ["deployment", "test-three"])
    two, three = (_by(p, trigger=name, cot="cot").stage("eval") for name in ("deployment", "test-three"))
    assert three.generated_tokens == 1.5 * two.generated_tokens > 0


@pytest.mark.parametrize("trigger", ["deployment", "year"])
def test_a_built_in_trigger_declares_the_conditions_of_its_evaluation(trigger: str) -> None:
    data = DataSettings(n_eval=4)
    prompts = TRIGGERS.get(trigger).eval_prompts(data, 0)
    assert Counter(p.condition for p in prompts) == dict.fromkeys(TRIGGERS.get(trigger).conditions, 4)


def test_a_plugin_that_trains_with_grpo_is_batch_checked(tmp_path: Path) -> None:
    TECHNIQUES.register("test-grpo")(GRPOPlugin)
    raw = yaml.safe_load((ROOT / "sweeps" / "distributed-cpu.yaml").read_text())
    raw["axes"]["technique"] = ["test-grpo"]
    raw["rl"] = {"batch_size": 15, "num_generations": 5}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"models.tiny-xs-zero3.training`: .*batch_size 15 must divide .*"
                                          r"\(`rl.batch_size`\)"):
        load_sweep(path)
    raw["axes"]["technique"] = ["sft"]  # trains no GRPO: its rl settings are never split
    path.write_text(yaml.safe_dump(raw))
    assert load_sweep(path).values("technique") == ("sft",)


def test_a_red_teaming_technique_cannot_be_the_adversarial_base(smoke_raw: dict[str, Any], write_spec: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    class RedTeams(_Technique):
        sections = ("safety", "adversarial")

        def methods(self, trial: TrialConfig) -> tuple[str, ...]:
            return ("sft",)

    TECHNIQUES.register("test-redteams")(RedTeams)
    smoke_raw["adversarial"]["base"] = "test-redteams"
    path = write_spec(smoke_raw)
    assert main(["grid", str(path)]) == 2
    err = capsys.readouterr().err
    assert "field `adversarial.base`: 'test-redteams' cannot be its own base" in err
    named = err.split("the mixed data: ")[1]
    assert "sft" in named and "test-redteams" not in named and "adversarial" not in named


def test_a_technique_that_declares_an_unknown_section_is_refused(smoke_raw: dict[str, Any],
                                                                 write_spec: Any) -> None:
    class Misspelt(_Technique):
        sections = ("saftey",)

    TECHNIQUES.register("test-misspelt")(Misspelt)
    smoke_raw["axes"]["technique"] = ["test-misspelt"]
    with pytest.raises(ConfigError, match=r"field `axes.technique`: technique 'test-misspelt' declares the "
                                          r"section 'saftey' in its `sections`, which is not a settings section"):
        load_sweep(write_spec(smoke_raw))

