"""`report`: write the self-contained HTML page of a run or a comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from interview_sim.cli import app, user_errors


@app.command("report")
@user_errors
def report_command(
    target: Annotated[
        str, typer.Argument(help="A run (folder, transcript.json or run id) or a comparison (folder, comparison.json or id).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="The HTML file to write (default: report.html beside the record; '-': stdout)."),
    ] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    run_pages: Annotated[
        bool, typer.Option("--run-pages/--no-run-pages", help="Comparisons: also write the page of every cell's run.")
    ] = True,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run and comparison ids are looked up.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Write one HTML page (CSS, script and charts inline) for a run or a comparison."""
    from interview_sim.report import write_report

    if output is not None and str(output) == "-":
        from interview_sim.report.pages import report_text

        sys.stdout.write(report_text(target, runs_dir=runs_dir))
        return
    result = write_report(target, output, runs_dir=runs_dir, run_pages=run_pages)
    if as_json:
        typer.echo(json.dumps({"kind": result.kind, "path": str(result.path), "run_pages": [str(p) for p in result.run_pages]}))
    else:
        typer.echo(f"{result.kind} page: {result.path}")
        if result.run_pages:
            typer.echo(f"run pages: {len(result.run_pages)} written beside their transcripts")
    if open_page:
        import webbrowser

        if not webbrowser.open(result.path.resolve().as_uri()):
            typer.echo(f"no browser to open it with; the page is {result.path}", err=True)
