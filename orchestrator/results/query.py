"""Read the results lake into pandas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from orchestrator.results.lake import PARTITIONS, SCHEMAS, TABLES, lake_root


def load(path: str | Path, table: str, **filters: Any) -> pd.DataFrame:
    """One table of the lake at `path` (the storage folder) as a DataFrame.

    Keyword filters select rows by equality, or membership for a list/tuple/set:
    `load("results", "metrics", trigger="deployment", cot=["cot", "distilled"])`.
    """
    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    schema = SCHEMAS[table]
    unknown = set(filters) - set(schema.names)
    if unknown:
        raise ValueError(f"{table} has no column(s) {sorted(unknown)}; columns: {', '.join(schema.names)}")
    root = lake_root(path) / table
    if not root.is_dir():
        return schema.empty_table().to_pandas()
    partitioning = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
    dataset = ds.dataset(root, format="parquet", partitioning=partitioning,
                         schema=schema)
    expr = None
    for column, wanted in filters.items():
        values = list(wanted) if isinstance(wanted, list | tuple | set) else [wanted]
        term = pc.field(column).isin(values)
        expr = term if expr is None else expr & term
    return dataset.to_table(filter=expr).to_pandas()
