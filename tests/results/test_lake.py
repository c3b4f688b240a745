from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestrator.results import SCHEMAS, load, persistence, write_trial
from orchestrator.results.lake import LakeError, discard_uncommitted, to_table, trial_key, write_once
from orchestrator.storage import Storage

AXES = {"trial_id": "t1", "sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft",
        "scale": "tiny", "seed": 0, "overrides": {}}


def metric(value: float, condition: str = "triggered", **extra: object) -> dict[str, object]:
    return {**AXES, "stage": "backdoor", "step": 0, "condition": condition, "group": "all",
            "metric": "backdoor_rate", "value": value, "n": 10, "ci_low": 0.0, "ci_high": 1.0, **extra}


def trial_row(trial_id: str = "t1", status: str = "completed") -> dict[str, object]:
    return {**AXES, "trial_id": trial_id, "status": status}


def test_write_once_refuses_to_overwrite(storage: str) -> None:
    key = "lake/metrics/x.parquet"
    assert write_once(storage, key, to_table("metrics", [metric(1.0)]))
    assert not write_once(storage, key, to_table("metrics", [metric(0.0)]))
    store = Storage.parse(storage)
    fs, root = store.filesystem()
    assert pq.read_table(f"{root}/{key}", filesystem=fs).column("value").to_pylist() == [1.0]
    assert store.files("lake/metrics") == ["x.parquet"]  # no temporary left behind


def test_hive_layout_and_round_trip(storage: str) -> None:
    write_trial(storage, "s", "deployment", "t1", {"metrics": [metric(1.0), metric(0.0, "clean")],
                                                   "trials": [trial_row()]})
    key = trial_key("metrics", "s", "deployment", "t1")
    assert key.split("/")[-3:] == ["sweep=s", "trigger=deployment", "t1.parquet"]
    fs, root = Storage.parse(storage).filesystem()
    assert "sweep" not in pq.read_table(f"{root}/{key}", filesystem=fs).column_names  # in the path
    df = load(storage, "metrics")
    assert list(df.columns) == SCHEMAS["metrics"].names
    assert set(df["sweep"]) == {"s"} and set(df["trigger"]) == {"deployment"}
    assert load(storage, "metrics", condition="clean")["value"].tolist() == [0.0]
    assert len(load(storage, "metrics", condition=["clean", "triggered"])) == 2


def test_readers_see_committed_trials_only(storage: str) -> None:
    write_trial(storage, "s", "deployment", "t1", {"metrics": [metric(1.0)], "trials": [trial_row()]})
    # t2 died after its metrics, before its trials row (the commit); t3 failed.
    write_trial(storage, "s", "deployment", "t2", {"metrics": [{**metric(0.5), "trial_id": "t2"}]})
    write_trial(storage, "s", "deployment", "t3", {"trials": [trial_row("t3", "failed")]})
    assert load(storage, "metrics")["trial_id"].tolist() == ["t1"]
    assert sorted(load(storage, "trials")["trial_id"]) == ["t1", "t3"]
    assert discard_uncommitted(storage, "s", "deployment", "t2") == [trial_key("metrics", "s", "deployment", "t2")]
    assert discard_uncommitted(storage, "s", "deployment", "t1") == []  # committed: kept


def test_readers_skip_unfinished_temporaries(tmp_path: Path) -> None:
    write_trial(tmp_path, "s", "deployment", "t1", {"metrics": [metric(1.0)], "trials": [trial_row()]})
    folder = tmp_path / trial_key("metrics", "s", "deployment", "t1")
    (folder.parent / ".t2.parquet.tmp-deadbeef").write_bytes(b"half a file")
    assert len(load(tmp_path, "metrics")) == 1


def test_schema_is_enforced(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="not in the schema"):
        to_table("metrics", [metric(1.0, bogus=1)])
    with pytest.raises(ValueError, match="unknown table"):
        load(tmp_path, "nope")
    with pytest.raises(ValueError, match="has no column"):
        load(tmp_path, "metrics", colour="red")


def test_empty_lake_gives_empty_frame_with_columns(storage: str) -> None:
    df = load(storage, "trials")
    assert df.empty and "status" in df.columns


def test_a_damaged_lake_still_reads_and_check_repair_find_everything(
    storage: str, capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import time

    from orchestrator.cli import main
    from orchestrator.results.check import TEMPORARY_AGE_SECONDS
    from orchestrator.results.lake import LakeWarning

    for i in range(3):
        write_trial(storage, "s", "deployment", f"t{i}", {"metrics": [{**metric(1.0), "trial_id": f"t{i}"}],
                                                          "trials": [trial_row(f"t{i}")]})
    store = Storage.parse(storage)
    folder = "lake/metrics/sweep=s/trigger=deployment"
    good = store.read_bytes(f"{folder}/t0.parquet")
    store.write_bytes(f"{folder}/t1.parquet", good[: len(good) // 2])  # truncated
    store.write_bytes(f"{folder}/t2.parquet", b"")  # empty
    store.write_bytes(f"{folder}/notes.parquet", b"not parquet at all")  # foreign
    write_once(storage, f"{folder}/other.parquet", to_table("trials", [trial_row("x")]))  # another schema
    write_trial(storage, "s", "deployment", "t9", {"samples": [], "metrics": [{**metric(0.1), "trial_id": "t9"}]})
    if store.is_local:  # a write that died long ago
        stale = Path(storage) / folder / ".t5.parquet.tmp-deadbeef"
        stale.write_bytes(b"half")
        old = time.time() - 2 * TEMPORARY_AGE_SECONDS
        os.utime(stale, (old, old))

    with pytest.warns(LakeWarning, match="t1.parquet: skipped, not a readable Parquet file"):
        df = load(storage, "metrics")
    assert df["trial_id"].tolist() == ["t0"]  # the damaged ones skipped, t9 uncommitted

    assert main(["results", storage, "--check"]) == 1
    report = capsys.readouterr().out
    expected = {"t1.parquet", "t2.parquet", "notes.parquet", "other.parquet"}
    assert {line.split(": ")[0].rsplit("/", 1)[-1] for line in report.splitlines()
            if line.startswith("unreadable")} == expected
    assert "uncommitted" in report and "t9.parquet" in report
    assert ("temporary" in report) == store.is_local
    assert main(["results", storage, "--repair"]) == 0
    moved = store.files("quarantine/lake/metrics/sweep=s/trigger=deployment")
    assert set(moved) == expected | ({".t5.parquet.tmp-deadbeef"} if store.is_local else set())
    capsys.readouterr()
    assert main(["results", storage, "--check"]) == 1  # only t9 is left (metrics, samples), listed
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["uncommitted"] * 2


# --- the lake explains itself ----------------------------------------------------------------------

def test_the_lake_documents_itself_and_its_root_is_not_read_as_one_table(tmp_path: Path) -> None:
    import json

    from orchestrator.results.lake import COLUMNS, schema_keys

    write_trial(tmp_path, "s", "deployment", "t1", {"metrics": [metric(1.0), {**metric(0.5), "n": None}],
                                                   "trials": [trial_row()]})
    markdown, machine = schema_keys()
    assert markdown.startswith("lake/SCHEMA-") and (tmp_path / markdown).is_file()
    documented = json.loads((tmp_path / machine).read_text())["tables"]
    assert set(documented) == set(SCHEMAS) == set(COLUMNS)
    for table, schema in SCHEMAS.items():
        assert [c["name"] for c in documented[table]] == schema.names
        assert all(c["description"] for c in documented[table])
        assert f"## `{table}`" in (tmp_path / markdown).read_text()
    # Parquet field metadata carries each column's meaning.
    key = trial_key("metrics", "s", "deployment", "t1")
    field = pq.read_schema(tmp_path / key).field("n")
    assert field.metadata[b"description"].startswith(b"its sample size")
    # pandas reads one table with integer `n` (nulls kept), and refuses the root, naming the document.
    raw = pd.read_parquet(tmp_path / "lake" / "metrics")
    assert str(raw["n"].dtype) == "Int64" and raw["n"].isna().sum() == 1
    assert load(tmp_path, "metrics")["n"].tolist()[0] == 10  # the package's reader: unchanged
    with pytest.raises(Exception, match="SCHEMA-"):
        pd.read_parquet(tmp_path / "lake")
    # Created once: a second trial writes no second copy.
    write_trial(tmp_path, "s", "deployment", "t2", {"trials": [trial_row("t2")]})
    assert sorted(p.name for p in (tmp_path / "lake").iterdir() if p.is_file()) == \
        sorted(Path(k).name for k in schema_keys())


@pytest.mark.slow
def test_a_real_trial_writes_the_paper_s_table(tmp_path: Path, write_spec: Any, smoke_raw: dict[str, Any],
                                              one_thread: None) -> None:
    """A real tiny trial (backdoor, evaluation, safety SFT with two checkpoints): its `persistence`
    rows read with plain pandas hold what persistence() reads from its metrics, with validity."""
    from orchestrator.grid import expand
    from orchestrator.results import persistence
    from orchestrator.spec import load_sweep
    from orchestrator.trial import run_trial

    smoke_raw["axes"].update(cot=["none"])
    smoke_raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    smoke_raw["backdoor"]["steps"] = 3
    smoke_raw["safety"].update(steps=2, eval_every=1)
    smoke_raw["data"].update(n_eval=4, n_backdoor=32, n_safety=16)
    [trial] = expand(load_sweep(write_spec(smoke_raw)))
    outcome = run_trial(trial, tmp_path)
    assert outcome.status == "completed"
    raw = pd.read_parquet(tmp_path / "lake" / "persistence")
    wide = persistence(tmp_path)
    [row] = wide.to_dict("records")
    triggered = raw[raw["column"] == "triggered"].iloc[0]
    assert triggered["before"] == row["triggered_before"] and triggered["after"] == row["triggered_after"]
    assert triggered["after_n"] == row["n"] == 4 and triggered["safety_steps"] == row["safety_steps"] == 2
    assert triggered["validity"] == row["validity"] and triggered["validity_reason"] == row["validity_reason"]
    assert {"triggered", "clean"} <= set(raw["column"]) and set(raw["trial_id"]) == {trial.trial_id}
    assert str(raw["n"].dtype) == "Int64" and list(raw["sweep"].unique()) == [trial.sweep]


def test_persistence_rows_keep_a_missing_sample_size_or_interval_as_null(tmp_path: Path) -> None:
    from orchestrator.results.rows import trial_persistence

    rows = [metric(1.0), {**metric(0.5, "clean"), "n": None, "ci_low": None, "ci_high": None},
            {**metric(0.25), "stage": "safety", "step": 7}, {**AXES, "stage": "backdoor", "step": 3,
                                                             "condition": "train", "group": "all",
                                                             "metric": "train_loss", "value": 2.0}]
    written = trial_persistence(rows, None)
    write_trial(tmp_path, "s", "deployment", "t1", {"persistence": written, "trials": [trial_row()]})
    table = load(tmp_path, "persistence").set_index("column")
    assert table.at["triggered", "before"] == 1.0 and table.at["triggered", "after"] == 0.25
    assert table.at["triggered", "safety_steps"] == 7 and table.at["triggered", "before_n"] == 10
    assert pd.isna(table.at["clean", "before_n"]) and pd.isna(table.at["clean", "before_low"])
    assert pd.isna(table.at["clean", "after"]) and table["validity"].isna().all()


def test_a_plugin_trigger_s_conditions_are_persistence_columns(tmp_path: Path) -> None:
    from orchestrator.data import TRIGGERS
    from orchestrator.data.deployment import DeploymentTrigger
    from orchestrator.results.rows import trial_persistence

    class Paraphrased(DeploymentTrigger):
        conditions = ("triggered", "clean", "paraphrased")

    TRIGGERS.register("test-paraphrased")(Paraphrased)
    plugin = {"trigger": "test-paraphrased"}
    rows = [{**metric(v, c), **plugin} for v, c in ((1.0, "triggered"), (0.0, "clean"), (0.75, "paraphrased"))]
    rows += [{**metric(0.25, "paraphrased"), **plugin, "stage": "safety", "step": 4},
             {**metric(0.5, "unknown"), **plugin}]  # a condition the trigger does not declare: no column
    written = trial_persistence(rows, None)
    assert [r["column"] for r in written] == ["triggered", "clean", "paraphrased"]
    write_trial(tmp_path, "s", "test-paraphrased", "t1",
                {"metrics": rows, "persistence": written, "trials": [trial_row()]})
    table = load(tmp_path, "persistence").set_index("column")
    assert table.at["paraphrased", "before"] == 0.75 and table.at["paraphrased", "after"] == 0.25
    wide = persistence(tmp_path)
    assert [c for c in wide.columns if c.endswith(("_before", "_after"))] == [
        "triggered_before", "clean_before", "paraphrased_before", "paraphrased_after"]
