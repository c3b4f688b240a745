"""A trial's rows in the results lake: its evaluations, training logs and outcome shaped into
`metrics`, `samples`, `persistence` and `trials` rows (orchestrator.results.lake holds the
schemas; orchestrator.trial calls `write_results` once its stages are done)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from orchestrator.config import TrialConfig
from orchestrator.evaluate.run import Evaluation
from orchestrator.results import lake
from orchestrator.results.report import before_after, persistence_rows
from orchestrator.results.validity import Validity
from orchestrator.storage import Storage
from orchestrator.train.methods import LogEntry
from orchestrator.version import code_version


class Outcome(Protocol):
    """What a trial's `trials` row records of its outcome (orchestrator.trial.TrialOutcome)."""

    status: str
    stages: list[dict[str, Any]]
    training: list[dict[str, Any]]  # Ray Train runs
    tasks: list[dict[str, Any]]  # model tasks (a multi-worker scale's evaluations)
    where: dict[str, Any]
    validity: Validity | None
    started_at: datetime


def lake_axes(trial: TrialConfig) -> dict[str, Any]:
    """The columns every lake table starts with (orchestrator.results.lake.AXES)."""
    return {"trial_id": trial.trial_id, "sweep": trial.sweep, **trial.core_axes(),
            "overrides": trial.overrides}


def metric_name(logged_name: str) -> str:
    """The lake's (and the live view's) name of a training-log field: `loss` is `train_loss`."""
    return "train_loss" if logged_name == "loss" else logged_name


def log_rows(entry: LogEntry, base: dict[str, Any]) -> list[dict[str, Any]]:
    """One training-log entry -> metrics rows. An entry has `step`, an optional `condition`
    (default `train`) and any numeric fields: `loss` becomes `train_loss`, others keep their
    name (e.g. an RL technique's `reward`, `kl`, or `heldout_pm_score` on `clean` prompts)."""
    condition = entry.get("condition", "train")
    return [{**base, "step": int(entry["step"]), "condition": condition, "group": "all",
             "metric": metric_name(name), "value": float(value)}
            for name, value in entry.items()
            if name not in ("step", "condition") and isinstance(value, int | float)]


def metrics_rows(trial: TrialConfig, evaluations: Sequence[tuple[str, int, Evaluation]],
                 logs: Sequence[tuple[str, Sequence[LogEntry]]],
                 generated: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """`metrics` rows: model-written data counts (`generated`, stage `data`), every evaluation
    (stage, step, evaluation), then each stage's training log."""
    axes = lake_axes(trial)
    metrics = [{**axes, **row} for row in generated]
    metrics += [{**axes, "stage": stage, "step": step, **row} for stage, step, e in evaluations for row in e.metrics]
    for stage, log in logs:
        for entry in log:
            metrics += log_rows(entry, {**axes, "stage": stage})
    return metrics


def samples_rows(trial: TrialConfig, evaluations: Sequence[tuple[str, int, Evaluation]],
                 technique_samples: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """`samples` rows: every evaluated answer, then the safety technique's own rows (e.g.
    red-team candidates, at safety step 0)."""
    axes = lake_axes(trial)
    samples = [
        {**axes, "stage": stage, "step": step,
         **{k: s[k] for k in ("condition", "prompt", "completion", "scratchpad", "answer", "fired")},
         "detail": {k: v for k, v in s.items() if k == "detail" or k.startswith("meta_")}}
        for stage, step, e in evaluations for s in e.samples
    ]
    return samples + [{**axes, "stage": "safety", "step": 0, **s} for s in technique_samples]


def trial_persistence(metrics: Sequence[dict[str, Any]], validity: Validity | None) -> list[dict[str, Any]]:
    """The trial's `persistence` rows, from its own `metrics` rows, by the rules that
    orchestrator.results.persistence() applies to the lake."""
    columns = lake.SCHEMAS["metrics"].names
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in metrics], columns=columns)
    frame["overrides"] = [lake.cell(v) for v in frame["overrides"]]  # as the lake stores it
    parts = before_after(frame)
    if parts is None:
        return []
    verdict = {"validity": validity.label, "validity_reason": validity.reason} if validity else {}
    return [{**row, **verdict} for row in persistence_rows(parts)]


def write_results(trial: TrialConfig, storage: Storage, outcome: Outcome,
                  evaluations: Sequence[tuple[str, int, Evaluation]], logs: Sequence[tuple[str, Sequence[LogEntry]]],
                  technique_samples: Sequence[dict[str, Any]] = (), generated: Sequence[dict[str, Any]] = ()) -> None:
    """The trial's `metrics`, `samples` and `persistence` rows, then its `trials` row (the
    commit marker). `evaluations`: (stage, step, evaluation) with stages `base` (the untrained
    model, where extra evaluations ask for the control), `backdoor` (after backdoor training),
    `safety` (each safety checkpoint; none where safety training was skipped); `logs`: (stage,
    training log); `generated`: the model-written data's counts (stage `data`)."""
    metrics = metrics_rows(trial, evaluations, logs, generated)
    lake.write_trial(storage, trial.sweep, trial.trigger, trial.trial_id,
                     {"metrics": metrics, "samples": samples_rows(trial, evaluations, technique_samples),
                      "persistence": trial_persistence(metrics, outcome.validity)})
    write_trial_row(trial, storage, outcome)


def trials_row(trial: TrialConfig, outcome: Outcome, finished: datetime, error: str | None = None) -> dict[str, Any]:
    """The trial's `trials` row; a failed attempt's with its error and no validity."""
    return {**lake_axes(trial), "status": outcome.status, "error": error,
            "started_at": outcome.started_at, "finished_at": finished,
            "wall_seconds": (finished - outcome.started_at).total_seconds(), "stages": outcome.stages,
            "training": [*outcome.training, *outcome.tasks],
            "backdoor_cached": next((s["cached"] for s in outcome.stages if s["stage"] == "backdoor"), None),
            "config": trial.model_dump(mode="json"), "code_version": code_version(),
            "host": socket.gethostname(), **outcome.where,
            "validity": outcome.validity.label if outcome.validity and error is None else None,
            "validity_reason": outcome.validity.reason if outcome.validity and error is None else None}


def write_trial_row(trial: TrialConfig, storage: Storage, outcome: Outcome, error: str | None = None) -> None:
    finished = datetime.now(UTC)
    # A failed attempt gets its own file; the completed one is the trial's commit marker.
    name = trial.trial_id if error is None else f"{trial.trial_id}.failed-{finished:%Y%m%dT%H%M%S%f}"
    lake.write_trial(storage, trial.sweep, trial.trigger, trial.trial_id,
                     {"trials": [trials_row(trial, outcome, finished, error)]}, name=name)
