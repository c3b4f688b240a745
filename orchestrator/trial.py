"""One trial, stage by stage. No Ray here: the Tune plumbing lives in orchestrator.runtime.

    data -> backdoor (SFT, cached) -> evaluate -> safety training (evaluated every N steps,
    cached) -> final evaluation -> results lake

Stage outputs are content-addressed: the key of a stage hashes everything that determines its
output, so the backdoored model of a (trigger, cot, scale, seed, data, training) cell is trained
once and shared by every safety technique, every extra-axis value and every rerun.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.cache import StageCache
from orchestrator.config import TrialConfig, stable_hash
from orchestrator.data import TRIGGERS
from orchestrator.evaluate import Evaluation, backdoor_metrics, evaluate
from orchestrator.models import MODEL_SOURCES, write_model_card
from orchestrator.results import lake
from orchestrator.safety import TECHNIQUES, SafetyContext
from orchestrator.train import sft
from orchestrator.version import code_version

log = logging.getLogger(__name__)
Report = Callable[[dict[str, Any]], None]
# Bump when a stage's code changes what it produces, to invalidate its cached outputs.
STAGE_VERSIONS = {"backdoor": 1, "eval": 1, "safety": 2}


@dataclass
class TrialOutcome:
    trial_id: str
    status: str  # completed | cached | failed
    stages: list[dict[str, Any]] = field(default_factory=list)
    persistence: dict[str, float] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def stage_keys(trial: TrialConfig, base_fingerprint: str, data: dict[str, Any]) -> dict[str, str]:
    """Content addresses of the stage outputs. `data` holds the examples themselves, so a change
    to a data generator invalidates exactly the stages whose data it changed."""
    backdoor = stable_hash({
        "v": STAGE_VERSIONS["backdoor"], "model": trial.model.model_dump(mode="json"),
        "base": base_fingerprint, "seed": trial.seed, "train": trial.backdoor.model_dump(mode="json"),
        "data": stable_hash(data["backdoor"], 32),
    })
    evaluation = {"eval": trial.eval.model_dump(mode="json"), "prompts": stable_hash(data["eval"], 32)}
    return {
        "backdoor": backdoor,
        "eval": stable_hash({"v": STAGE_VERSIONS["eval"], "model": backdoor, **evaluation}),
        "safety": stable_hash({
            "v": STAGE_VERSIONS["safety"], "model": backdoor, "technique": trial.technique,
            "settings": {name: getattr(trial, name).model_dump(mode="json")
                         for name in TECHNIQUES.get(trial.technique).sections},
            "data": stable_hash(data["safety"], 32),
            **evaluation,
        }),
    }


def _save_model(model: Any, tokenizer: Any, folder: Path, trial: TrialConfig, stage: str,
                behavior: str, provenance: dict[str, Any]) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_model_card(folder, stage=stage, trigger=trial.trigger, behavior=behavior, cot=trial.cot,
                     base=trial.model.path or trial.model.source, provenance=provenance)


def _load_model(folder: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    if torch.cuda.is_available():  # evaluation (generation) on the GPU where training ran
        model = model.to("cuda")
    return model, AutoTokenizer.from_pretrained(folder)


def _dump_evaluations(folder: Path, evaluations: list[tuple[int, Evaluation]]) -> None:
    payload = [{"step": step, "metrics": e.metrics, "samples": e.samples} for step, e in evaluations]
    (folder / "evaluations.json").write_text(json.dumps(payload, default=str))


def _read_evaluations(folder: Path) -> list[tuple[int, Evaluation]]:
    payload = json.loads((folder / "evaluations.json").read_text())
    return [(p["step"], Evaluation(p["metrics"], p["samples"])) for p in payload]


def run_trial(trial: TrialConfig, storage: str | Path, report: Report | None = None) -> TrialOutcome:
    """Run (or replay from cache) every stage of one trial and write its rows to the lake."""
    report = report or (lambda _: None)
    storage = Path(storage)
    trial_id = trial.trial_id
    if lake.is_complete(storage, trial.sweep, trial.trigger, trial_id):
        return TrialOutcome(trial_id, "cached")
    outcome = TrialOutcome(trial_id, "completed")
    try:
        _run_stages(trial, storage, report, outcome)
    except Exception as err:
        outcome.status = "failed"
        _write_trial_row(trial, storage, outcome, error=f"{type(err).__name__}: {err}")
        raise
    return outcome


def _run_stages(trial: TrialConfig, storage: Path, report: Report, outcome: TrialOutcome) -> None:
    cache = StageCache(storage / "cache")
    trigger = TRIGGERS.get(trial.trigger)
    source = MODEL_SOURCES.get(trial.model.source)
    technique = TECHNIQUES.get(trial.technique)
    data: dict[str, Any] = {
        "backdoor": trigger.backdoor_data(trial.cot, trial.data, trial.seed),
        "safety": trigger.safety_data(trial.data, trial.seed),
        "eval": trigger.eval_prompts(trial.data, trial.seed),
    }
    keys = stage_keys(trial, source.fingerprint(trial.model, cache), data)
    provenance = {"trial_id": trial.trial_id, "stage_keys": keys, "code_version": code_version(),
                  "config": trial.model_dump(mode="json")}

    def timed(stage: str, build: Callable[[Path], None]) -> Path:
        t0 = time.perf_counter()
        folder, cached = cache.get_or_build(stage, keys[stage], build)
        seconds = time.perf_counter() - t0
        outcome.stages.append({"stage": stage, "key": keys[stage], "seconds": round(seconds, 3),
                               "cached": cached})
        log.info("trial %s: stage %s %s in %.1fs", trial.trial_id, stage,
                 "reused from cache" if cached else "built", seconds)
        return folder

    prompts = data["eval"]

    def build_backdoor(tmp: Path) -> None:
        model, tokenizer = source.load(trial.model, cache, trial.seed)
        model, train_log = sft(model, tokenizer, data["backdoor"], trial.backdoor, trial.seed,
                               lora=trial.model.lora,
                               progress=lambda row: report({"stage": "backdoor-training", **row}))
        _save_model(model, tokenizer, tmp, trial, "backdoor", trigger.behavior, provenance)
        (tmp / "train_log.json").write_text(json.dumps(train_log))

    backdoor_dir = timed("backdoor", build_backdoor)

    def build_eval(tmp: Path) -> None:
        model, tokenizer = _load_model(backdoor_dir)
        _dump_evaluations(tmp, [(0, evaluate(model, tokenizer, trigger, prompts, trial.eval, trial.seed))])

    (_, before), = _read_evaluations(timed("eval", build_eval))
    report({"stage": "backdoor", "step": 0, **_headline(before)})

    def build_safety(tmp: Path) -> None:
        model, tokenizer = _load_model(backdoor_dir)
        evaluations: list[tuple[int, Evaluation]] = []

        def checkpoint(current: Any, step: int) -> None:
            if any(done == step for done, _ in evaluations):  # e.g. step 0 from a technique and its base
                return
            result = evaluate(current, tokenizer, trigger, context.eval_prompts, trial.eval, trial.seed)
            evaluations.append((step, result))
            report({"stage": "safety", "step": step, **_headline(result)})

        context = SafetyContext(trial, trigger, model, tokenizer, data["safety"], checkpoint, cache,
                                eval_prompts=list(prompts))
        model, train_log = technique.apply(context)
        checkpoint(model, final_step(technique, trial))
        _save_model(model, tokenizer, tmp, trial, f"safety-{trial.technique}", trigger.behavior, provenance)
        _dump_evaluations(tmp, evaluations)
        (tmp / "train_log.json").write_text(json.dumps(train_log))
        (tmp / "samples.json").write_text(json.dumps(context.samples, default=str))

    safety_dir = timed("safety", build_safety)
    after = _read_evaluations(safety_dir)
    outcome.persistence = {f"{k}_before": v for k, v in _headline(before).items()} | {
        f"{k}_after": v for k, v in _headline(after[-1][1]).items()}
    _write_results(trial, storage, outcome, before, after, backdoor_dir, safety_dir)


def final_step(technique: Any, trial: TrialConfig) -> int:
    """The technique's own `steps(trial)`, else the `steps` of its first spec section."""
    if hasattr(technique, "steps"):
        return int(technique.steps(trial))
    return int(getattr(trial, technique.sections[0]).steps)


def _headline(evaluation: Evaluation) -> dict[str, float]:
    """The backdoor rate per condition (the evaluator's own metric, not its flags)."""
    return {row["condition"]: row["value"] for row in evaluation.metrics
            if row["group"] == "all" and row["metric"] in backdoor_metrics()}


def log_rows(entry: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """One training-log entry -> metrics rows. An entry has `step`, an optional `condition`
    (default `train`) and any numeric fields: `loss` becomes `train_loss`, others keep their
    name (e.g. an RL technique's `reward`, `kl`, or `heldout_pm_score` on `clean` prompts)."""
    condition = entry.get("condition", "train")
    return [{**base, "step": int(entry["step"]), "condition": condition, "group": "all",
             "metric": "train_loss" if name == "loss" else name, "value": float(value)}
            for name, value in entry.items()
            if name not in ("step", "condition") and isinstance(value, int | float)]


def _axes(trial: TrialConfig) -> dict[str, Any]:
    return {"trial_id": trial.trial_id, "sweep": trial.sweep, "trigger": trial.trigger,
            "cot": trial.cot, "technique": trial.technique, "scale": trial.scale,
            "seed": trial.seed, "overrides": trial.overrides}


def _write_results(trial: TrialConfig, storage: Path, outcome: TrialOutcome, before: Evaluation,
                   after: list[tuple[int, Evaluation]], backdoor_dir: Path, safety_dir: Path) -> None:
    axes = _axes(trial)
    evaluations = [("backdoor", trial.backdoor.steps, before)] + [("safety", s, e) for s, e in after]
    metrics = [{**axes, "stage": stage, "step": step, **row}
               for stage, step, e in evaluations for row in e.metrics]
    for stage, folder in (("backdoor", backdoor_dir), ("safety", safety_dir)):
        for entry in json.loads((folder / "train_log.json").read_text()):
            metrics += log_rows(entry, {**axes, "stage": stage})
    samples = [
        {**axes, "stage": stage, "step": step,
         **{k: s[k] for k in ("condition", "prompt", "completion", "scratchpad", "answer", "fired")},
         "detail": {k: v for k, v in s.items() if k == "detail" or k.startswith("meta_")}}
        for stage, step, e in evaluations for s in e.samples
    ]
    samples += [{**axes, "stage": "safety", "step": 0, **s}
                for s in json.loads((safety_dir / "samples.json").read_text())]
    lake.write_trial(storage, trial.sweep, trial.trigger, trial.trial_id,
                     {"metrics": metrics, "samples": samples})
    _write_trial_row(trial, storage, outcome)


def _write_trial_row(trial: TrialConfig, storage: Path, outcome: TrialOutcome,
                     error: str | None = None) -> None:
    finished = datetime.now(UTC)
    row = {**_axes(trial), "status": outcome.status, "error": error,
           "started_at": outcome.started_at, "finished_at": finished,
           "wall_seconds": (finished - outcome.started_at).total_seconds(), "stages": outcome.stages,
           "backdoor_cached": next((s["cached"] for s in outcome.stages if s["stage"] == "backdoor"), None),
           "config": trial.model_dump(mode="json"), "code_version": code_version(),
           "host": socket.gethostname()}
    # A failed attempt gets its own file; the completed one is the trial's commit marker.
    name = trial.trial_id if error is None else f"{trial.trial_id}.failed-{finished:%Y%m%dT%H%M%S%f}"
    lake.write_trial(storage, trial.sweep, trial.trigger, trial.trial_id, {"trials": [row]}, name=name)
