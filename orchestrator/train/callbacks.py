"""The transformers Trainer callbacks of every training run here: evaluate along the way, pass
each log entry on as it is logged, commit checkpoints. Their own module because they subclass
transformers' TrainerCallback, which is imported only where a model trains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from transformers import TrainerCallback

from orchestrator.train.common import Progress, StepHook


class Commits(Protocol):
    """What SaveProgress needs of a run's progress (train/progress.py's RunProgress)."""

    def commit(self, step: int) -> None: ...


class EveryNSteps(TrainerCallback):  # type: ignore[misc]
    """Calls hook(model, step) every `every` steps, except at the last (the caller evaluates that)."""

    def __init__(self, every: int, hook: StepHook) -> None:
        self.every, self.hook = every, hook

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self.hook(kwargs["model"], state.global_step)


class ReportLog(TrainerCallback):  # type: ignore[misc]
    """Passes each logged entry to `progress` as it is logged (Ray Tune's status table, TensorBoard,
    MLflow): `step` plus the logged values named in `names` (theirs -> ours)."""

    def __init__(self, progress: Progress, names: Mapping[str, str]) -> None:
        self.progress, self.names = progress, names

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        logs = logs or {}
        values = {ours: float(logs[theirs]) for theirs, ours in self.names.items()
                  if isinstance(logs.get(theirs), int | float)}
        if values:
            self.progress({"step": float(state.global_step), **values})


class SaveProgress(TrainerCallback):  # type: ignore[misc]
    """Commits each checkpoint the Trainer saves; no checkpoint at the last step (the stage
    saves the final model itself)."""

    def __init__(self, progress: Commits) -> None:
        self.progress = progress

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= state.max_steps:
            control.should_save = False

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.commit(state.global_step)
