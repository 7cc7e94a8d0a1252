"""`export`: a run in an AutoGen 0.2 form, or runs and comparisons as Inspect AI logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from interview_sim.cli import app, fail, user_errors

FORMATS = ("autogen02-json", "autogen02-markdown", "inspect")


@app.command("export")
@user_errors
def export_command(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Runs (folder, transcript.json or run id); for --format inspect also comparisons (folder or id).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="autogen02-json, autogen02-markdown or inspect.")] = "autogen02-json",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="AutoGen forms: the file ('-': stdout, the default). inspect: the folder of logs."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar="FILTER",
            help="inspect: also export the runs of --runs-dir matching FILTER (scenario, model, source, batch, or `all`).",
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run and comparison ids and --where are looked up.")] = Path(
        "runs"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="inspect: print the logs written as JSON.")] = False,
) -> None:
    """Write a run in an AutoGen 0.2 form for older tooling, or runs and comparisons as Inspect AI logs (`inspect view`)."""
    names = list(targets or [])
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", 2)
    if fmt == "inspect":
        if output is None:
            raise fail("--format inspect needs -o DIR, the folder to write the .eval logs to", 2)
        from interview_sim.exports import export_inspect, resolve_runs

        result = export_inspect(resolve_runs(names, where=where, runs_dir=runs_dir), output)
        if as_json:
            typer.echo(json.dumps({"logs": [str(p) for p in result.logs], "samples": result.samples}))
            return
        typer.echo(f"{len(result.logs)} Inspect log(s), {result.samples} sample(s) in {output}")
        typer.echo(f"view them: inspect view --log-dir {output}")
        return
    from interview_sim.exports import resolve_runs

    runs = [] if where is not None else resolve_runs(names, runs_dir=runs_dir)
    if len(runs) != 1:
        raise fail(f"--format {fmt} exports exactly one run (got {len(runs) if runs else 'a filter' if where else 0})", 2)
    from interview_sim.autogen02 import export_run
    from interview_sim.files import write_output

    text = export_run(runs[0].run_dir, fmt)  # type: ignore[arg-type]  # export_run rejects unknown formats in one line
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        return
    if write_output(output, text).is_file():  # through a device or FIFO (/dev/stdout), the text is the output
        typer.echo(f"exported: {output}")
