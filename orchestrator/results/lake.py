"""The results lake: hive-partitioned Parquet, one immutable file per trial per table.

    <storage>/lake/<table>/sweep=<sweep>/trigger=<trigger>/<trial_id>.parquet

Files are written under a hidden temporary name and hard-linked into place, which fails if
the name exists: a file is never rewritten, so results are never lost or duplicated. Readers
(pyarrow, pandas) skip the hidden temporaries. `trials` is written last: a trial whose row is
there is complete.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.config import CORE_AXES

PARTITIONS = ("sweep", "trigger")
# The columns every table starts with: the trial, its sweep, the grid's axes, extra-axis values.
AXES = [("trial_id", pa.string()), ("sweep", pa.string()),
        *[(axis, pa.int64() if axis == "seed" else pa.string()) for axis in CORE_AXES],
        ("overrides", pa.string())]

SCHEMAS: dict[str, pa.Schema] = {
    "trials": pa.schema([
        *AXES,
        ("status", pa.string()),  # completed | failed
        ("error", pa.string()),
        ("started_at", pa.timestamp("ms", tz="UTC")),
        ("finished_at", pa.timestamp("ms", tz="UTC")),
        ("wall_seconds", pa.float64()),
        ("stages", pa.string()),  # JSON list of {stage, key, seconds, cached}
        ("training", pa.string()),  # JSON list of Ray Train runs: {seconds, workers, zero_stage, nodes, shard}
        ("backdoor_cached", pa.bool_()),
        ("config", pa.string()),  # JSON of the resolved TrialConfig
        ("code_version", pa.string()),
        ("host", pa.string()),
    ]),
    "metrics": pa.schema([
        *AXES,
        ("stage", pa.string()),  # backdoor | safety
        ("step", pa.int64()),
        ("condition", pa.string()),  # triggered | clean | train | ...
        ("group", pa.string()),  # "all", or a sub-population such as a CWE
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("n", pa.int64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
    ]),
    "samples": pa.schema([
        *AXES,
        ("stage", pa.string()),
        ("step", pa.int64()),
        ("condition", pa.string()),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("scratchpad", pa.string()),
        ("answer", pa.string()),
        ("fired", pa.bool_()),
        ("detail", pa.string()),  # JSON: evaluator findings, prompt metadata
    ]),
}
TABLES = tuple(SCHEMAS)


class LakeError(Exception):
    pass


def lake_root(storage: str | Path) -> Path:
    return Path(storage) / "lake"


def trial_file(storage: str | Path, table: str, sweep: str, trigger: str, name: str) -> Path:
    return lake_root(storage) / table / f"sweep={sweep}" / f"trigger={trigger}" / f"{name}.parquet"


def is_complete(storage: str | Path, sweep: str, trigger: str, trial_id: str) -> bool:
    return trial_file(storage, "trials", sweep, trigger, trial_id).is_file()


def to_table(table: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows -> an Arrow table of the documented schema (unknown keys are an error)."""
    schema = SCHEMAS[table]
    extra = {k for row in rows for k in row} - set(schema.names)
    if extra:
        raise LakeError(f"{table}: columns not in the schema: {sorted(extra)}")
    columns = {name: [_cell(row.get(name)) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value


def write_once(path: Path, table: pa.Table) -> bool:
    """Atomically create `path` with `table`; False (nothing written) if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses to replace an existing file
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def write_trial(storage: str | Path, sweep: str, trigger: str, trial_id: str,
                rows: dict[str, Sequence[dict[str, Any]]], *, name: str | None = None) -> list[Path]:
    """Write one trial's rows of every table; `trials` last, as the commit marker.

    Partition columns live in the path only, as in any hive-partitioned dataset.
    """
    written = []
    for table in ("metrics", "samples", "trials"):
        if table not in rows:
            continue
        data = to_table(table, rows[table]).drop_columns(list(PARTITIONS))
        path = trial_file(storage, table, sweep, trigger, name or trial_id)
        if write_once(path, data):
            written.append(path)
    return written
