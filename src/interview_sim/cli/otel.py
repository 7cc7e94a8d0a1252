"""`--otel` and the standard OTLP variables: after `run`, `evaluate`, `compare` and `sweep`, one trace per session.

Not a command module: the commands that trace import it. Tracing never fails a command: a collector that is
down, or an SDK that is not installed, is one warning line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from interview_sim.cli.terminal import clean

if TYPE_CHECKING:
    from interview_sim.compare import Comparison

OtelFlag = Annotated[
    bool,
    typer.Option(
        "--otel",
        help="Send one OpenTelemetry trace per session (GenAI conventions, OTLP/HTTP) to OTEL_EXPORTER_OTLP_ENDPOINT"
        " (default http://localhost:4318); on by itself when that variable is set.",
    ),
]


def send_traces(
    runs: Sequence[str | Path], flag: bool, *, session: bool = True, evaluations: Literal["all", "latest", "none"] = "all"
) -> None:
    """Trace the runs when tracing is on (`--otel` or an OTLP endpoint variable); say in one line on stderr where the
    traces went, or why they did not."""
    from interview_sim.exports.otel import otel_endpoint

    endpoint = otel_endpoint(flag)
    if endpoint is None or not runs:
        return
    from interview_sim.errors import InterviewSimError
    from interview_sim.exports.otel import export_traces

    try:
        result = export_traces(runs, endpoint=endpoint, session=session, evaluations=evaluations)
    except InterviewSimError as exc:
        print(clean(f"warning: no traces sent: {exc}"), file=sys.stderr)
        return
    if result.error:
        print(clean(f"warning: traces not sent to {endpoint}: {result.error} (the results are kept)"), file=sys.stderr)
        return
    print(f"traces: {result.traces} session(s), {result.spans} span(s) sent to {endpoint}", file=sys.stderr)


def comparison_runs(comparison: Comparison, runs_dir: Path) -> list[Path]:
    """The runs of the cells this command ran (not those resumed from an earlier one)."""
    since: datetime | None = comparison.last_invocation.started_at if comparison.last_invocation else None
    return [
        runs_dir / cell.run_dir
        for cell in comparison.cells
        if cell.status == "ok" and cell.run_dir and (since is None or (cell.started_at is not None and cell.started_at >= since))
    ]
