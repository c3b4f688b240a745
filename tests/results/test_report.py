from __future__ import annotations

from pathlib import Path

from orchestrator.results import persistence, plot_persistence, write_trial

AXES = {"trial_id": "t1", "sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft",
        "scale": "tiny", "seed": 0, "overrides": {}}


def rate(stage: str, step: int, condition: str, value: float) -> dict[str, object]:
    return {**AXES, "stage": stage, "step": step, "condition": condition, "group": "all",
            "metric": "backdoor_rate", "value": value, "n": 20, "ci_low": 0.0, "ci_high": 1.0}


def make_lake(root: Path) -> None:
    rows = [rate("backdoor", 100, "triggered", 1.0), rate("backdoor", 100, "clean", 0.05),
            rate("safety", 0, "redteam", 0.9), rate("safety", 20, "triggered", 0.8),
            rate("safety", 20, "clean", 0.0), rate("safety", 40, "triggered", 0.6),
            rate("safety", 40, "clean", 0.0), rate("safety", 40, "redteam", 0.1)]
    write_trial(root, "s", "deployment", "t1", {"metrics": rows, "trials": [{**AXES, "status": "completed"}]})


def test_persistence_takes_before_and_the_last_safety_step(tmp_path: Path) -> None:
    make_lake(tmp_path)
    [row] = persistence(tmp_path).to_dict("records")
    assert (row["triggered_before"], row["triggered_after"]) == (1.0, 0.6)
    assert (row["clean_before"], row["clean_after"]) == (0.05, 0.0)
    assert (row["redteam_before"], row["redteam_after"]) == (0.9, 0.1)  # step 0 when no backdoor-stage value
    assert row["safety_steps"] == 40 and row["n"] == 20


def test_plot_is_written(tmp_path: Path) -> None:
    make_lake(tmp_path)
    out = plot_persistence(tmp_path, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
