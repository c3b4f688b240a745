"""The results lake: Parquet tables `trials`, `metrics`, `samples`, read with pandas."""

from orchestrator.results.lake import SCHEMAS, TABLES, is_complete, write_trial
from orchestrator.results.query import load
from orchestrator.results.report import format_persistence, over_seeds, persistence, plot_persistence

__all__ = ["SCHEMAS", "TABLES", "format_persistence", "is_complete", "load", "over_seeds", "persistence",
           "plot_persistence", "write_trial"]
