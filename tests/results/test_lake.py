from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator.results import SCHEMAS, load, write_trial
from orchestrator.results.lake import LakeError, to_table, trial_file, write_once

AXES = {"trial_id": "t1", "sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft",
        "scale": "tiny", "seed": 0, "overrides": {}}


def metric(value: float, condition: str = "triggered", **extra: object) -> dict[str, object]:
    return {**AXES, "stage": "backdoor", "step": 0, "condition": condition, "group": "all",
            "metric": "backdoor_rate", "value": value, "n": 10, "ci_low": 0.0, "ci_high": 1.0, **extra}


def test_write_once_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    assert write_once(path, to_table("metrics", [metric(1.0)]))
    assert not write_once(path, to_table("metrics", [metric(0.0)]))
    assert pq.read_table(path).column("value").to_pylist() == [1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]  # no temporary left behind


def test_hive_layout_and_round_trip(tmp_path: Path) -> None:
    write_trial(tmp_path, "s", "deployment", "t1", {"metrics": [metric(1.0), metric(0.0, "clean")]})
    path = trial_file(tmp_path, "metrics", "s", "deployment", "t1")
    assert path.parts[-3:] == ("sweep=s", "trigger=deployment", "t1.parquet")
    assert "sweep" not in pq.read_table(path).column_names  # partition columns live in the path
    df = load(tmp_path, "metrics")
    assert list(df.columns) == SCHEMAS["metrics"].names
    assert set(df["sweep"]) == {"s"} and set(df["trigger"]) == {"deployment"}
    assert load(tmp_path, "metrics", condition="clean")["value"].tolist() == [0.0]
    assert len(load(tmp_path, "metrics", condition=["clean", "triggered"])) == 2


def test_readers_skip_unfinished_temporaries(tmp_path: Path) -> None:
    write_trial(tmp_path, "s", "deployment", "t1", {"metrics": [metric(1.0)]})
    folder = trial_file(tmp_path, "metrics", "s", "deployment", "t1").parent
    (folder / ".t2.parquet.tmp-deadbeef").write_bytes(b"half a file")
    assert len(load(tmp_path, "metrics")) == 1


def test_schema_is_enforced(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="not in the schema"):
        to_table("metrics", [metric(1.0, bogus=1)])
    with pytest.raises(ValueError, match="unknown table"):
        load(tmp_path, "nope")
    with pytest.raises(ValueError, match="has no column"):
        load(tmp_path, "metrics", colour="red")


def test_empty_lake_gives_empty_frame_with_columns(tmp_path: Path) -> None:
    df = load(tmp_path, "trials")
    assert df.empty and "status" in df.columns
