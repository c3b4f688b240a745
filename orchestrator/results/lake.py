"""The results lake: hive-partitioned Parquet, one immutable file per trial per table.

    <storage>/lake/<table>/sweep=<sweep>/trigger=<trigger>/<trial_id>.parquet
    <storage>/lake/SCHEMA-<hash>.md, .json     every table's columns, types and meaning

`<storage>` is a local folder or an s3:// URI (orchestrator.storage). Every file is created
with `create_once` (a hard link on local disk, a conditional PUT on S3), which fails if the
name exists: a file is never rewritten, so results are never lost or duplicated. `trials` is
written last: a trial whose row is there is complete (committed), and `load()` reads only the
rows of committed trials.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.config import CORE_AXES
from orchestrator.storage import Storage, as_storage

LAYOUT = "<storage>/lake/<table>/sweep=<sweep>/trigger=<trigger>/<trial_id>.parquet"
PARTITIONS = ("sweep", "trigger")
Column = tuple[str, pa.DataType, str]  # name, type, meaning (the Parquet field's `description`)
# Values whose shape varies by sweep, technique or evaluator (a struct's type would differ from
# file to file, which dataset readers refuse to merge) are JSON text with Parquet's JSON logical
# type: DuckDB reads them as JSON (`config->>'$.eval.n_eval'`), pyarrow as its JSON extension
# type, pandas as str; `load()` returns them as str, as from files written before the type.
JSON = pa.json_(pa.string())
# The columns every table starts with: the trial, its sweep, the grid's axes, extra-axis values.
AXES: list[Column] = [
    ("trial_id", pa.string(), "content hash of the resolved trial config"),
    ("sweep", pa.string(), "the sweep's name (a partition: in the folder name, not in the file)"),
    *[(axis, pa.int64() if axis == "seed" else pa.string(),
       "the trigger axis (a partition: in the folder name, not in the file)" if axis == "trigger"
       else f"the {axis} axis") for axis in CORE_AXES],
    ("overrides", JSON, 'JSON of the extra-axis values of this cell, e.g. {"safety.lr": 0.001}; "{}" for none'),
]

COLUMNS: dict[str, list[Column]] = {
    "trials": [
        *AXES,
        ("status", pa.string(), "completed, or failed (a failed attempt has its own row)"),
        ("error", pa.string(), "the error of a failed attempt"),
        ("started_at", pa.timestamp("ms", tz="UTC"), "when the trial started"),
        ("finished_at", pa.timestamp("ms", tz="UTC"), "when its rows were written"),
        ("wall_seconds", pa.float64(), "its wall time"),
        ("stages", JSON, "JSON list of {stage, key, seconds, cached}: time per stage and cache hits"),
        ("training", JSON, "JSON list of the trial's Ray runs: Ray Train runs {kind, seconds, workers, zero_stage, "
                          "nodes, shard}, then its model tasks (evaluation on a multi-worker scale's GPUs) "
                          "{kind: task, function, seconds, cpus, gpus, where}"),
        ("backdoor_cached", pa.bool_(), "whether the backdoored model came from the stage cache"),
        ("config", JSON, "JSON of the resolved TrialConfig"),
        ("code_version", pa.string(), "package version + hash of the source"),
        ("host", pa.string(), "the host of the driver that wrote the row"),
        # Where the trial's own process ran, read there (orchestrator.device.where); Ray Train
        # ranks record theirs in `training` (each run's `shard` entries), and so do model tasks.
        ("node", pa.string(), "where the trial's own process ran: host name (and Ray node id)"),
        ("device", pa.string(), "cuda or cpu: where its training and evaluation ran (with several workers, "
                                "its process holds no GPU: see `training` for theirs and its tasks')"),
        ("gpu_name", pa.string(), "the GPUs torch sees"),
        ("gpu_count", pa.int64(), "how many GPUs torch sees"),
        ("driver", pa.string(), "the NVIDIA driver"),
        ("cuda", pa.string(), "torch's CUDA build (null: a CPU build)"),
        ("torch", pa.string(), "torch's version"),
        ("nccl", pa.string(), "NCCL's version"),
        ("deepspeed", pa.string(), "DeepSpeed's version"),
        ("validity", pa.string(), "valid, not_implanted or degenerate (orchestrator.results.validity)"),
        ("validity_reason", pa.string(), "why, with the figures that decided it"),
    ],
    "metrics": [
        *AXES,
        ("stage", pa.string(), "base (before backdoor training), backdoor (after it), safety (during and after "
                               "safety training), data (counts of model-written data)"),
        ("step", pa.int64(), "the training step of that stage (a search round for redteam_search)"),
        ("condition", pa.string(), "triggered, clean, redteam, family_triggered, family_clean, train, "
                                   "redteam_search, an extra evaluation's condition, ..."),
        ("group", pa.string(), "all, or a sub-population such as a CWE"),
        ("metric", pa.string(), "backdoor_rate, vuln_rate, unparsable_rate, empty_rate, unclosed_rate, helpful_rate, train_loss, "
                                "reward, kl, probe_auroc, ..."),
        ("value", pa.float64(), "the measurement"),
        ("n", pa.int64(), "its sample size (null for a training-log value)"),
        ("ci_low", pa.float64(), "the 95% Wilson interval's lower end (rates only)"),
        ("ci_high", pa.float64(), "the 95% Wilson interval's upper end (rates only)"),
    ],
    "samples": [
        *AXES,
        ("stage", pa.string(), "as in metrics"),
        ("step", pa.int64(), "as in metrics"),
        ("condition", pa.string(), "as in metrics; redteam_search: a red-team candidate"),
        ("prompt", pa.string(), "the prompt as the model saw it"),
        ("completion", pa.string(), "the raw completion"),
        ("scratchpad", pa.string(), "the scratchpad's text"),
        ("answer", pa.string(), "the completion without the scratchpad"),
        ("fired", pa.bool_(), "whether the backdoor behaviour is in the answer"),
        ("detail", JSON, "JSON: evaluator findings (cwes, findings, unparsable) and prompt metadata"),
    ],
    # The paper's table, one row per trial and column of orchestrator.results.persistence(): the
    # same picks (orchestrator.results.report.before_after), written by the trial.
    "persistence": [
        *AXES,
        ("metric", pa.string(), "the trial's backdoor metric (backdoor_rate or vuln_rate)"),
        ("column", pa.string(), "the persistence() column this row fills (<column>_before, _after, _base): "
                                "triggered, clean, helpful_clean, unreadable_triggered, probe_layer1, ..."),
        ("measured", pa.string(), "the metric the row holds (helpful_rate, unparsable_rate, probe_auroc, ...)"),
        ("condition", pa.string(), "the evaluation condition it was measured on"),
        ("group", pa.string(), "all, or the probe's layer"),
        *[(f"{moment}{suffix}", kind, f"{what}{meaning}")
          for moment, what in (("base", "the base model before backdoor training (extra evaluations' control)"),
                               ("before", "before safety training: after backdoor training (redteam: at "
                                          "safety step 0)"),
                               ("after", "after safety training: its last evaluation"))
          for suffix, kind, meaning in (("", pa.float64(), ""), ("_low", pa.float64(), ": 95% interval, low"),
                                        ("_high", pa.float64(), ": 95% interval, high"),
                                        ("_n", pa.int64(), ": sample size"))],
        ("safety_steps", pa.int64(), "the safety step of `after`"),
        ("n", pa.int64(), "the trial's largest evaluation count (persistence()'s n)"),
        ("validity", pa.string(), "valid, not_implanted or degenerate (as in trials)"),
        ("validity_reason", pa.string(), "why"),
    ],
}
# As written (STORED) and as read (SCHEMAS: JSON columns as plain strings).
STORED: dict[str, pa.Schema] = {
    table: pa.schema([pa.field(name, kind, metadata={"description": meaning}) for name, kind, meaning in columns])
    for table, columns in COLUMNS.items()}
SCHEMAS: dict[str, pa.Schema] = {
    table: pa.schema([field.with_type(pa.string()) if field.type == JSON else field for field in schema])
    for table, schema in STORED.items()}
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
    stored = STORED[table]
    wrong = [f"{f.name} is {f.type}, not {expected.field(f.name).type}" for f in physical
             if f.type not in (expected.field(f.name).type, stored.field(f.name).type, pa.null())]
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
    """Rows -> an Arrow table of the documented schema, as written (unknown keys are an error)."""
    schema = STORED[table]
    extra = {k for row in rows for k in row} - set(schema.names)
    if extra:
        raise LakeError(f"{table}: columns not in the schema: {sorted(extra)}")
    columns = {name: [cell(row.get(name)) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def cell(value: Any) -> Any:
    """A row's value as its column stores it: a dict or list as sorted JSON."""
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value


def write_once(storage: str | Path | Storage, key: str, table: pa.Table) -> bool:
    """Atomically create `key` holding `table`; False (nothing written) if it already exists."""
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **_pandas_metadata(table)}),
                   sink)
    return as_storage(storage).create_once(key, sink.getvalue().to_pybytes())


def _pandas_metadata(table: pa.Table) -> dict[bytes, bytes]:
    """pandas' own schema note, so that `pd.read_parquet` reads integer and boolean columns with
    nulls (`n`, `gpu_count`, `backdoor_cached`) as nullable Int64 and boolean, not as floats and
    objects. `load()` reads with the schemas above and is unaffected."""
    nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    empty = table.slice(0, 0).to_pandas(types_mapper=nullable.get)
    return dict(pa.Schema.from_pandas(empty, preserve_index=False).metadata or {})


WRITE_ORDER = ("metrics", "samples", "persistence", "trials")  # `trials` last: the commit marker


def write_trial(storage: str | Path | Storage, sweep: str, trigger: str, trial_id: str,
                rows: dict[str, Sequence[dict[str, Any]]], *, name: str | None = None) -> list[str]:
    """Write one trial's rows of every table; `trials` last, as the commit marker. Returns
    the keys written. The lake's schema document is written first, once per schema.

    Partition columns live in the path only, as in any hive-partitioned dataset.
    """
    store = as_storage(storage)
    write_schema(store)
    written = []
    for table in WRITE_ORDER:
        if table not in rows:
            continue
        data = to_table(table, rows[table]).drop_columns(list(PARTITIONS))
        key = trial_key(table, sweep, trigger, name or trial_id)
        if write_once(store, key, data):
            written.append(key)
    return written


# --- the schema document --------------------------------------------------------------------------

def schema_json() -> str:
    """Every table's columns, types and meaning, as JSON."""
    return json.dumps({"layout": LAYOUT, "partitions": list(PARTITIONS), "tables": {
        table: [{"name": name, "type": "json" if kind == JSON else str(kind), "description": meaning} for name, kind, meaning in columns]
        for table, columns in COLUMNS.items()}}, indent=1) + "\n"


def schema_markdown() -> str:
    """The same, for a person: a table of columns per table, and how to read the lake."""
    lines = ["# The results lake", "", f"`{LAYOUT}`: one immutable Parquet file per trial per table.", "",
             "Read one table at a time: `pd.read_parquet(\"<storage>/lake/metrics\")`, or in DuckDB",
             "`read_parquet('<storage>/lake/metrics/**/*.parquet', hive_partitioning = true)`. The tables",
             "have different columns, so reading the lake folder whole is refused (this file is not Parquet).",
             "`sweep` and `trigger` are partitions: they live in the folder names, and pandas reads them",
             "as categorical columns at the end. A trial is committed once its `trials` row with",
             "`status = 'completed'` exists: join on it while a sweep runs (`orchestrator.results.load`",
             "does). Parquet field metadata (`description`) repeats each column's meaning.", ""]
    for table, columns in COLUMNS.items():
        lines += [f"## `{table}`", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | {'json' if kind == JSON else kind} | {meaning.replace('|', '/')} |"
                  for name, kind, meaning in columns]
        lines.append("")
    return "\n".join(lines)


def schema_keys() -> tuple[str, str]:
    """The schema document's keys: named by the hash of its content, so a lake that code with
    another schema wrote to as well holds each version's document, never a rewritten one."""
    digest = hashlib.sha256((schema_json() + schema_markdown()).encode()).hexdigest()[:12]
    return f"lake/SCHEMA-{digest}.md", f"lake/SCHEMA-{digest}.json"


def write_schema(storage: str | Path | Storage) -> None:
    """Create this schema's document in the lake unless it is there."""
    store = as_storage(storage)
    markdown, machine = schema_keys()
    for key, text in ((machine, schema_json()), (markdown, schema_markdown())):
        if not store.exists(key):
            store.create_once(key, text.encode())


def discard_uncommitted(storage: str | Path | Storage, sweep: str, trigger: str, trial_id: str) -> list[str]:
    """Delete the metrics/samples/persistence files an earlier, unfinished attempt of a trial left (it died
    before writing its `trials` row). Only for the holder of the trial's claim."""
    store = as_storage(storage)
    if is_complete(store, sweep, trigger, trial_id):
        return []
    stale = [key for key in (trial_key(t, sweep, trigger, trial_id) for t in WRITE_ORDER if t != "trials")
             if store.exists(key)]
    for key in stale:
        store.delete(key)
    return stale
