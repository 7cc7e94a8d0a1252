"""Our runs in the tools people already use: Inspect AI logs and OpenTelemetry GenAI traces.

Modules:
    sources      which runs an export covers: run folders, comparisons and runs-folder filters, grouped for Inspect.
    inspect_log  `export_inspect`: one Inspect `.eval` log per scenario x seat models, written by inspect_ai itself.
    otel         `export_traces`: one OpenTelemetry trace per session (GenAI semantic conventions) over OTLP/HTTP.

inspect_ai is an optional extra (`interview-sim[inspect]`); the OpenTelemetry SDK and its OTLP/HTTP exporter are in
the base install. Both are imported only inside the functions that need them, and a missing one is a
`MissingExtraError` that names what to install.

May import: catalog, compare, errors, files, grading, health, record, version. Never report or cli.
"""

from interview_sim.exports.inspect_log import InspectExport, export_inspect
from interview_sim.exports.otel import TraceExport, export_traces, otel_endpoint
from interview_sim.exports.sources import ExportRun, resolve_runs

__all__ = [
    "ExportRun",
    "InspectExport",
    "TraceExport",
    "export_inspect",
    "export_traces",
    "otel_endpoint",
    "resolve_runs",
]
