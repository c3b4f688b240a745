"""The results lake: Parquet tables `trials`, `metrics`, `samples`, `persistence`, read with pandas."""

from orchestrator.results.html import Report, build_report, plot_persistence
from orchestrator.results.lake import SCHEMAS, TABLES, is_complete, write_trial
from orchestrator.results.query import load
from orchestrator.results.report import format_persistence, over_seeds, persistence
from orchestrator.results.uncertainty import seed_intervals

__all__ = ["SCHEMAS", "TABLES", "Report", "build_report", "format_persistence", "is_complete", "load",
           "over_seeds", "persistence", "plot_persistence", "seed_intervals", "write_trial"]
