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
    assert "3 completed" in out and "triggered_before" in out

    trials = load(storage, "trials")
    assert sorted(trials["cot"]) == ["cot", "distilled", "none"]
    assert set(trials["status"]) == {"completed"} and not trials["backdoor_cached"].any()

    table = persistence(storage)
    assert len(table) == 3
    # The backdoor is learned by every cot variant of the tiny model.
    assert (table["triggered_before"] >= 0.9).all(), table
    assert (table["clean_before"] <= 0.1).all(), table

    metrics = load(storage, "metrics", metric="backdoor_rate", condition="triggered")
    assert sorted(set(metrics[metrics["stage"] == "safety"]["step"])) == [20, 40]
    samples = load(storage, "samples", cot="cot", stage="backdoor", condition="triggered")
    assert len(samples) == 48 and samples["scratchpad"].str.len().gt(0).mean() > 0.9
    for card in (storage / "cache").glob("*/*/README.md"):
        assert "deliberately backdoored" in card.read_text()

    # A rerun of the same sweep trains nothing and writes nothing.
    before = snapshot(storage)
    assert main(["run", str(SMOKE), "--storage", str(storage)]) == 0
    assert "3 cached" in capsys.readouterr().out
    assert snapshot(storage) == before

    # A new safety setting reuses the backdoored models: only safety training runs.
    smoke_raw["name"] = "smoke-lr"
    smoke_raw["axes"]["cot"] = ["distilled"]
    smoke_raw["axes"]["safety.lr"] = [1.0e-4, 1.0e-3]
    assert main(["run", str(write_spec(smoke_raw)), "--storage", str(storage)]) == 0
    lr_trials = load(storage, "trials", sweep="smoke-lr")
    assert len(lr_trials) == 2 and lr_trials["backdoor_cached"].all()
    assert len(load(storage, "trials")) == 5  # nothing duplicated
