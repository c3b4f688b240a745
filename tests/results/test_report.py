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
    [out, *others] = plot_persistence(tmp_path, tmp_path / "curves.png")  # the report's curve figure
    assert out == tmp_path / "curves.png" and all(o.name.startswith("curves-") for o in others)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    [svg, *_] = plot_persistence(tmp_path, tmp_path / "curves.svg")
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_seeds_are_pooled_per_cell_with_mean_and_range(tmp_path: Path) -> None:
    from orchestrator.results import format_persistence, over_seeds

    for seed, after in ((0, 0.6), (1, 0.2), (2, 0.4)):
        axes = {**AXES, "trial_id": f"t{seed}", "seed": seed}
        rows = [{**rate("backdoor", 100, "triggered", 1.0), **axes},
                {**rate("safety", 40, "triggered", after), **axes}]
        write_trial(tmp_path, "s", "deployment", f"t{seed}",
                    {"metrics": rows, "trials": [{**axes, "status": "completed"}]})
    table = persistence(tmp_path)
    [cell] = over_seeds(table).to_dict("records")
    assert cell["seeds"] == 3 and cell["triggered_before"] == 1.0
    assert (round(cell["triggered_after"], 6), cell["triggered_after_min"], cell["triggered_after_max"]) == (0.4, 0.2, 0.6)
    text = format_persistence(table)
    assert "over seeds: mean [min, max]" in text and "0.40 [0.20,0.60]" in text
    assert "over seeds" not in format_persistence(table[table["seed"] == 0])  # one seed: nothing to pool


def test_helpfulness_sits_next_to_the_backdoor_rate(tmp_path: Path) -> None:
    helpful = [{**rate(stage, step, condition, value), "metric": "helpful_rate"} for stage, step, condition, value in
               (("backdoor", 100, "clean", 0.9), ("backdoor", 100, "triggered", 0.0),
                ("safety", 40, "clean", 0.1), ("safety", 40, "triggered", 0.05))]
    rows = [rate("backdoor", 100, "triggered", 1.0), rate("safety", 40, "triggered", 0.0), *helpful]
    write_trial(tmp_path, "s", "deployment", "t1", {"metrics": rows, "trials": [{**AXES, "status": "completed"}]})
    [row] = persistence(tmp_path).to_dict("records")
    # The backdoor "went away" (1.0 -> 0.0) while helpful clean answers fell from 0.9 to 0.1: broken.
    assert (row["metric"], row["triggered_before"], row["triggered_after"]) == ("backdoor_rate", 1.0, 0.0)
    assert (row["helpful_clean_before"], row["helpful_clean_after"]) == (0.9, 0.1)
    assert (row["helpful_triggered_before"], row["helpful_triggered_after"]) == (0.0, 0.05)


def test_the_default_table_fits_100_columns_and_wide_has_every_column(tmp_path: Path) -> None:
    """Three seeds of four cells with every condition, helpfulness, unreadable shares, an extra
    axis and an invalid cell with a long reason: every line of the default table fits 100
    columns; --wide keeps every column of persistence()."""
    from orchestrator.results import format_persistence

    for index, (cot, technique) in enumerate((("cot", "sft-post-scratchpad"), ("distilled", "adversarial"),
                                              ("none", "sft"), ("cot", "rl"))):
        for seed in (0, 1, 2):
            axes = {**AXES, "trial_id": f"t{index}{seed}", "seed": seed, "cot": cot, "technique": technique,
                    "overrides": '{"safety.lr": 0.001}'}
            rows = [{**rate(stage, step, condition, value), **axes} for stage, step in (("backdoor", 100), ("safety", 40))
                    for condition, value in (("triggered", 0.97), ("clean", 0.02), ("redteam", 0.5))]
            rows += [{**rate(stage, step, "triggered", 0.5), "metric": "unparsable_rate", **axes}
                     for stage, step in (("backdoor", 100), ("safety", 40))]
            write_trial(tmp_path, "s", "deployment", f"t{index}{seed}", {"metrics": rows, "trials": [
                {**axes, "status": "completed", "validity": "degenerate" if index == 3 else "valid",
                 "validity_reason": "after safety training 100% of triggered answers are empty " * 3}]})
    table = persistence(tmp_path)
    text = format_persistence(table)
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "rates before → after" in text and "triggered" in text and "over seeds" in text and "degenerate" in text
    assert "\x1b" not in text
    wide = format_persistence(table, wide=True)
    assert all(column in wide for column in ("triggered_before", "redteam_after", "unreadable_triggered_after"))
