"""The smoke sweep end to end, through Ray Tune, real training and the real lake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.results import load, persistence

SMOKE = Path(__file__).resolve().parent.parent / "sweeps" / "smoke.yaml"

pytestmark = pytest.mark.slow


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and "_ray" not in p.parts}


def test_smoke_sweep_learns_persists_and_reruns_from_cache(
    ray_local: None, tmp_path: Path, write_spec: Any, smoke_raw: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = tmp_path / "results"
    assert main(["run", str(SMOKE), "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "10 completed" in out and "triggered_before" in out

    trials = load(storage, "trials")
    assert len(trials) == 10 and set(trials["status"]) == {"completed"}
    # One backdoored model per distinct backdoor dataset, shared by every technique. With the
    # built-in data `none` and `distilled` train on identical examples, so they share one too.
    assert (~trials["backdoor_cached"]).sum() == 2

    table = persistence(storage)
    assert len(table) == 10
    # The backdoor is learned by every cot variant of the tiny model.
    assert (table["triggered_before"] >= 0.9).all(), table
    assert (table["clean_before"] <= 0.1).all(), table

    metrics = load(storage, "metrics")
    sft = metrics[(metrics["technique"] == "sft") & (metrics["metric"] == "backdoor_rate")]
    assert sorted(set(sft[sft["stage"] == "safety"]["step"])) == [20, 40]
    rl_scores = metrics[metrics["metric"] == "heldout_pm_score"]
    assert set(rl_scores["cot"]) == {"cot", "distilled"} and {0, 20, 40} <= set(rl_scores["step"])
    tried = metrics[(metrics["technique"] == "adversarial") & (metrics["metric"] == "candidates_tried")]
    assert tried.groupby("trial_id")["value"].sum().tolist() == [48.0] * 3
    samples = load(storage, "samples", cot="cot", technique="sft", stage="backdoor", condition="triggered")
    assert len(samples) == 48 and samples["scratchpad"].str.len().gt(0).mean() > 0.9
    for card in (storage / "cache").glob("*/*/README.md"):
        assert "deliberately backdoored" in card.read_text()

    # A rerun of the same sweep trains nothing and writes nothing.
    before = snapshot(storage)
    assert main(["run", str(SMOKE), "--storage", str(storage)]) == 0
    assert "10 cached" in capsys.readouterr().out
    assert snapshot(storage) == before

    # A new safety setting reuses the backdoored models: only safety training runs.
    smoke_raw["name"] = "smoke-lr"
    smoke_raw["axes"].update({"cot": ["distilled"], "safety.lr": [1.0e-4, 1.0e-3]})
    assert main(["run", str(write_spec(smoke_raw)), "--storage", str(storage)]) == 0
    lr_trials = load(storage, "trials", sweep="smoke-lr")
    assert len(lr_trials) == 2 and lr_trials["backdoor_cached"].all()
    assert len(load(storage, "trials")) == 12  # nothing duplicated
