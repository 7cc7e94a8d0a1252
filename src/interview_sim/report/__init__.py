"""Self-contained HTML pages: one per run, one per comparison (no network, no script from elsewhere).

Modules:
    records    which records a target names, and their free-form parts made safe to show.
    pages      gathering records into page contexts and rendering them (`write_report` and friends).
    charts     chart geometry and evidence lookup, pure functions of the records.
    health_strip  the run page's strip of judge-free health figures.
    trust      the calibration badge beside every score.
    templates  the Jinja templates, CSS and the small inline script.

May import: errors, record, grading, compare (to read their records). Nothing imports report but cli.
"""

from interview_sim.report.pages import (
    REPORT_FILE,
    ReportResult,
    render_comparison_report,
    render_run_report,
    write_comparison_report,
    write_report,
    write_run_report,
)
from interview_sim.report.records import resolve_target

__all__ = [
    "REPORT_FILE",
    "ReportResult",
    "render_comparison_report",
    "render_run_report",
    "resolve_target",
    "write_comparison_report",
    "write_report",
    "write_run_report",
]
