"""The results lake: hive-partitioned Parquet, one immutable file per trial per table.

    <storage>/lake/<table>/sweep=<sweep>/trigger=<trigger>/<trial_id>.parquet

`<storage>` is a local folder or an s3:// URI (orchestrator.storage). Every file is created
with `create_once` (a hard link on local disk, a conditional PUT on S3), which fails if the
name exists: a file is never rewritten, so results are never lost or duplicated. `trials` is
written last: a trial whose row is there is complete (committed), and `load()` reads only the
rows of committed trials.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.config import CORE_AXES
from orchestrator.storage import Storage, as_storage

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
        # Where the trial's own process ran, read there (orchestrator.device.where); Ray Train
        # ranks record theirs in `training` (each run's `shard` entries).
        ("node", pa.string()),  # host name (and Ray node id)
        ("device", pa.string()),  # cuda | cpu: where its training and evaluation ran
        ("gpu_name", pa.string()),
        ("gpu_count", pa.int64()),
        ("driver", pa.string()),  # NVIDIA driver
        ("cuda", pa.string()),  # torch's CUDA build (null: a CPU build)
        ("torch", pa.string()),
        ("nccl", pa.string()),
        ("deepspeed", pa.string()),
        ("validity", pa.string()),  # valid | not_implanted | degenerate (orchestrator.results.validity)
        ("validity_reason", pa.string()),  # why, with the figures that decided it
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


class LakeWarning(UserWarning):
    """A lake file that cannot be read was skipped."""


FAILED_SUFFIX = ".failed-"  # a failed attempt's `trials` file: <trial_id>.failed-<UTC time>.parquet


def file_problem(fs: Any, path: str, table: str, *, deep: bool = False) -> str | None:
    """Why the file at `path` (in the pyarrow filesystem `fs`) cannot be used as a `table` file;
    None if it can. Columns added to a schema later may be missing (read as null); others may not.
    A file must hold the trial its name says (a stray copy such as `copy-<id>.parquet` would be
    read twice). `deep`: also decode every row group (corrupt data pages behind an intact footer)."""
    try:
        meta = pq.read_metadata(path, filesystem=fs)
        physical = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as err:
        return f"not a readable Parquet file ({str(err).splitlines()[0][:120]})"
    expected = SCHEMAS[table]
    unknown = [f.name for f in physical if f.name not in expected.names]
    if unknown:
        return f"columns not in the {table} schema: {', '.join(unknown[:5])}"
    wrong = [f"{f.name} is {f.type}, not {expected.field(f.name).type}" for f in physical
             if f.type != expected.field(f.name).type and f.type != pa.null()]
    if wrong:
        return "; ".join(wrong[:3])
    if "trial_id" not in physical.names:
        return "no trial_id column"
    stem = path.rsplit("/", 1)[-1].removesuffix(".parquet").partition(FAILED_SUFFIX)[0]
    try:
        ids = _trial_ids(fs, path, meta)
        if deep:
            reader = pq.ParquetFile(path, filesystem=fs)
            for index in range(reader.num_row_groups):
                reader.read_row_group(index)
    except (pa.ArrowException, OSError) as err:
        return f"damaged data pages ({' '.join(str(err).split())[:120]})"
    if ids - {stem}:
        return (f"a stray copy: it holds trial {sorted(ids)[0]!r} under another name (only "
                f"<trial_id>.parquet files are read)")
    return None


def _trial_ids(fs: Any, path: str, meta: Any) -> set[str]:
    """The trial ids a file holds, from its row-group statistics where they are kept."""
    column = meta.schema.to_arrow_schema().get_field_index("trial_id")
    ids: set[str] = set()
    for index in range(meta.num_row_groups):
        stats = meta.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max:
            table = pq.read_table(path, filesystem=fs, columns=["trial_id"])
            return {str(v) for v in table.column("trial_id").to_pylist() if v is not None}
        ids.update({str(stats.min), str(stats.max)})
    return ids


def trial_key(table: str, sweep: str, trigger: str, name: str) -> str:
    """The key of one trial's file of `table`, relative to the storage root."""
    return f"lake/{table}/sweep={sweep}/trigger={trigger}/{name}.parquet"


def is_complete(storage: str | Path | Storage, sweep: str, trigger: str, trial_id: str) -> bool:
    return as_storage(storage).exists(trial_key("trials", sweep, trigger, trial_id))


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


def write_once(storage: str | Path | Storage, key: str, table: pa.Table) -> bool:
    """Atomically create `key` holding `table`; False (nothing written) if it already exists."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return as_storage(storage).create_once(key, sink.getvalue().to_pybytes())


def write_trial(storage: str | Path | Storage, sweep: str, trigger: str, trial_id: str,
                rows: dict[str, Sequence[dict[str, Any]]], *, name: str | None = None) -> list[str]:
    """Write one trial's rows of every table; `trials` last, as the commit marker. Returns
    the keys written.

    Partition columns live in the path only, as in any hive-partitioned dataset.
    """
    store = as_storage(storage)
    written = []
    for table in ("metrics", "samples", "trials"):
        if table not in rows:
            continue
        data = to_table(table, rows[table]).drop_columns(list(PARTITIONS))
        key = trial_key(table, sweep, trigger, name or trial_id)
        if write_once(store, key, data):
            written.append(key)
    return written


def discard_uncommitted(storage: str | Path | Storage, sweep: str, trigger: str, trial_id: str) -> list[str]:
    """Delete the metrics/samples files an earlier, unfinished attempt of a trial left (it died
    before writing its `trials` row). Only for the holder of the trial's claim."""
    store = as_storage(storage)
    if is_complete(store, sweep, trigger, trial_id):
        return []
    stale = [key for key in (trial_key(t, sweep, trigger, trial_id) for t in ("metrics", "samples"))
             if store.exists(key)]
    for key in stale:
        store.delete(key)
    return stale
