"""Damaged lakes (issue 24): `--check` decodes every row group of every file, readers skip
what cannot be read or is a stray copy, `--repair` never overwrites what it quarantined before."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator.cli import main
from orchestrator.results import load, write_trial
from orchestrator.results.lake import LakeWarning, trial_key

AXES = {"sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft", "scale": "tiny", "seed": 0,
        "overrides": {}}


def trial(storage: Path, trial_id: str, values: int = 13) -> None:
    metrics = [{**AXES, "trial_id": trial_id, "stage": "backdoor", "step": 0, "condition": "triggered",
                "group": "all", "metric": f"m{i}", "value": i / values, "n": 10, "ci_low": 0.0, "ci_high": 1.0}
               for i in range(values)]
    write_trial(storage, "s", "deployment", trial_id, {"metrics": metrics,
                                                       "trials": [{**AXES, "trial_id": trial_id, "status": "completed"}]})


def corrupt_pages(path: Path) -> None:
    """Overwrite the first data pages and keep the footer: the schema still reads."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    end = len(data) - footer
    for i in range(4, min(end, 400)):
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    pq.read_schema(path)  # still fine
    with pytest.raises(Exception):  # noqa: B017 - any decoding error of pyarrow's
        pq.read_table(path)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    storage = tmp_path / "st"
    trial(storage, "t0")
    trial(storage, "t1")
    return storage


def test_corrupt_pages_behind_an_intact_footer(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = lake / trial_key("metrics", "s", "deployment", "t1")
    corrupt_pages(damaged)
    with pytest.warns(LakeWarning, match="t1.parquet: skipped, damaged data pages"):
        table = load(lake, "metrics")
    assert set(table["trial_id"]) == {"t0"}
    capsys.readouterr()
    for command in (["results", str(lake)], ["results", str(lake), "--format", "json"]):
        assert main(command) == 0
        assert "Traceback" not in capsys.readouterr().err
    assert main(["results", str(lake), "--check"]) == 1
    out = capsys.readouterr().out
    assert "unreadable" in out and "t1.parquet: damaged data pages" in out
    assert main(["results", str(lake), "--repair"]) == 0
    assert "moved 1 file(s)" in capsys.readouterr().out
    assert (lake / "quarantine" / trial_key("metrics", "s", "deployment", "t1")).exists()
    assert not damaged.exists()


def test_a_second_repair_of_a_same_named_file_keeps_the_first(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = lake / trial_key("metrics", "s", "deployment", "t1")
    good = damaged.read_bytes()
    damaged.write_bytes(b"first damage")
    assert main(["results", str(lake), "--repair"]) == 0
    damaged.write_bytes(good[:50])  # the same name damaged again
    assert main(["results", str(lake), "--repair"]) == 0
    quarantined = lake / "quarantine" / trial_key("metrics", "s", "deployment", "t1")
    assert quarantined.read_bytes() == b"first damage"
    assert Path(f"{quarantined}.1").read_bytes() == good[:50]


def test_a_stray_copy_is_not_read_twice(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = lake / "lake"
    for table in ("trials", "metrics"):
        key = folder / table / "sweep=s" / "trigger=deployment"
        shutil.copy(key / "t0.parquet", key / "copy-t0.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LakeWarning)
        trials = load(lake, "trials")
        metrics = load(lake, "metrics")
    assert sorted(trials["trial_id"]) == ["t0", "t1"]
    assert not metrics.duplicated(["trial_id", "metric"]).any() and len(metrics) == 26
    assert main(["results", str(lake), "--check"]) == 1
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == ["stray", "stray"]
    assert "copy-t0.parquet: a stray copy" in out
    assert main(["results", str(lake), "--repair"]) == 0
    assert "moved 2 file(s)" in capsys.readouterr().out
    assert main(["results", str(lake), "--check"]) == 0


def test_a_failed_attempts_file_is_not_a_stray(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "st"
    write_trial(storage, "s", "deployment", "t0", {"trials": [{**AXES, "trial_id": "t0", "status": "failed"}]},
                name="t0.failed-20260101T000000000000")
    assert main(["results", str(storage), "--check"]) == 0
    assert capsys.readouterr().out.strip() == "no problems found"


def test_many_row_groups_are_all_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file of several row groups whose last one is damaged."""
    storage = tmp_path / "st"
    trial(storage, "t0", values=400)
    path = storage / trial_key("metrics", "s", "deployment", "t0")
    table = pq.read_table(path)
    pq.write_table(table, path, row_group_size=100, compression="none")
    meta = pq.read_metadata(path)
    assert meta.num_row_groups == 4
    last = meta.row_group(3).column(meta.schema.to_arrow_schema().get_field_index("metric"))
    start = last.dictionary_page_offset or last.data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    pq.ParquetFile(path).read_row_group(0)  # the first groups still decode
    assert main(["results", str(storage), "--check"]) == 1
    assert "damaged data pages" in capsys.readouterr().out
