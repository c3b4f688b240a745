from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator.results import SCHEMAS, load, write_trial
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
