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
    targets: Annotated[
        list[str],
        typer.Argument(
            help="A run (folder, transcript.json or run id) or a comparison (folder, comparison.json or id); two runs"
            " RUN_A RUN_B, or COMPARISON MODEL_A MODEL_B, for one page with the two side by side.",
            show_default=False,
        ),
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
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="COMPARISON MODEL_A MODEL_B: which repeat (1 = the first).")] = 1,
    group: Annotated[
        str | None, typer.Option("--group", help="COMPARISON MODEL_A MODEL_B of a sweep: the group (scenario) to show.")
    ] = None,
) -> None:
    """Write one HTML page (CSS, script and charts inline) for a run or a comparison, or two runs side by side."""
    if len(targets) > 1:
        _side_by_side(targets, output, runs_dir, repeat, group, as_json, open_page)
        return
    target = targets[0]
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


def _side_by_side(
    targets: list[str], output: Path | None, runs_dir: Path, repeat: int, group: str | None, as_json: bool, open_page: bool
) -> None:
    from interview_sim.report.side_by_side import render_side_by_side, side_by_side_runs, write_side_by_side

    if output is not None and str(output) == "-":
        run_a, run_b, _ = side_by_side_runs(targets, runs_dir=runs_dir, repeat=repeat, group=group)
        sys.stdout.write(render_side_by_side(run_a, run_b))
        return
    path = write_side_by_side(targets, output, runs_dir=runs_dir, repeat=repeat, group=group)
    if as_json:
        typer.echo(json.dumps({"kind": "side-by-side", "path": str(path)}))
    else:
        typer.echo(f"side-by-side page: {path}")
    if open_page:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            typer.echo(f"no browser to open it with; the page is {path}", err=True)
