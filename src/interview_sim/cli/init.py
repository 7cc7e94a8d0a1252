"""`init`: a starter project of one's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from interview_sim.cli import app, user_errors
from interview_sim.cli.common import JsonFlag


@app.command("init")
@user_errors
def init_command(
    folder: Annotated[Path, typer.Argument(help="Where the project goes (created if missing).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the project's files if they are already there.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write an editable starter project: the agents, the scenarios, a sweep file and a README of what to edit.

    Run from that folder, its files win over the packaged ones with the same id. Refuses to overwrite a file
    that is already there (exit 2, nothing written) unless --force.
    """
    from interview_sim.starter import init_project

    starter = init_project(folder, force=force)
    if as_json:
        typer.echo(json.dumps({"folder": str(starter.folder), "written": [str(p) for p in starter.written]}))
        return
    replaced = f" ({len(starter.overwritten)} overwritten)" if starter.overwritten else ""
    typer.echo(f"wrote {len(starter.written)} files{replaced} into {starter.folder}:")
    for top in sorted({p.parts[0] for p in starter.written}):
        typer.echo(f"  {top}/" if (starter.folder / top).is_dir() else f"  {top}")
    typer.echo(f"next: cd {starter.folder} && interview-sim validate, then edit agents/ and scenarios/ (see README.md)")
