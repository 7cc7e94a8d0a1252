"""`runs`: list the runs folder (from its SQLite index), `runs show RUN`, `runs reindex`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interview_sim.cli import app, user_errors
from interview_sim.cli.terminal import clean

if TYPE_CHECKING:
    from interview_sim.catalog import RunDetails, RunRow

runs_app = typer.Typer(no_args_is_help=False, help="Browse the runs folder: measured and imported runs, their latest grades.")
app.add_typer(runs_app, name="runs")

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="The runs folder.")]
Scenario = Annotated[str | None, typer.Option("--scenario", help="Only runs of this scenario id.")]
Model = Annotated[
    str | None, typer.Option("--model", help="Only runs where the interviewer's or candidate's model contains this.")
]
Source = Annotated[
    str | None,
    typer.Option("--source", help="measured (run here), replayed (replay --rerun copies) or imported (AutoGen 0.2 files)."),
]
Batch = Annotated[str | None, typer.Option("--batch", help="Only imported runs of this batch folder (e.g. interview_26).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _narrow_lines(rows: list[RunRow]) -> list[str]:
    """A terminal too narrow for the table: each run as a short block, no line broken inside a name or a path."""
    lines = []
    for r in rows:
        score = f"score {r.score:.2f}" if r.score is not None else "not graded"
        source = r.source + (f":{r.batch}" if r.batch else "")
        lines.append(clean(r.run_dir))
        lines.append(clean(f"  {r.started_at[:10]} · {source} · {r.messages} msgs · {score}"))
        lines.append(clean(f"  interviewer {r.interviewer_model or '-'}"))
        lines.append(clean(f"  candidate   {r.candidate_model or '-'}"))
        if r.judge:
            lines.append(clean(f"  judge       {r.judge} ({r.calibration or 'calibration not recorded'})"))
    return lines


def _table_lines(rows: list[RunRow]) -> list[str]:
    """Plain aligned columns: rendering 10,000 rows through a rich table takes seconds, this takes milliseconds."""
    header = ("run", "date", "source", "interviewer", "candidate", "msgs", "score", "judge (calibration)")
    body = []
    for r in rows:
        judge = f"{r.judge} ({r.calibration or 'calibration not recorded'})" if r.judge else "-"
        cells = (
            r.run_dir,
            r.started_at[:10],
            r.source + (f":{r.batch}" if r.batch else ""),
            r.interviewer_model or "-",
            r.candidate_model or "-",
            str(r.messages),
            f"{r.score:.2f}" if r.score is not None else "-",
            judge,
        )
        body.append(tuple(clean(cell) for cell in cells))  # ids, models and batches come from imported files
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:{'>' if i in (5, 6) else '<'}{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header).rstrip(), *(fmt.format(*b).rstrip() for b in body)]


@runs_app.callback(invoke_without_command=True)
@user_errors
def runs_command(
    ctx: typer.Context,
    runs_dir: RunsDir = Path("runs"),
    scenario: Scenario = None,
    model: Model = None,
    source: Source = None,
    batch: Batch = None,
    as_json: JsonOut = False,
) -> None:
    """List runs: scenario, date, source, models per role, messages, latest score and its judge's calibration state."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = runs_dir
        return
    from interview_sim.catalog import RunFilter, list_runs

    rows = list_runs(runs_dir, RunFilter(scenario=scenario, model=model, source=source, batch=batch))
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in rows]) + "\n")
        return
    lines = _table_lines(rows)
    width = max(map(len, lines))
    if sys.stdout.isatty() and width > shutil.get_terminal_size().columns:
        lines = _narrow_lines(rows)
    sys.stdout.write("\n".join(lines) + f"\n{len(rows)} run(s)\n")


def _runs_dir(ctx: typer.Context, runs_dir: Path | None) -> Path:
    return runs_dir or (ctx.obj if isinstance(ctx.obj, Path) else Path("runs"))


def _render(details: RunDetails) -> None:
    from rich.markup import escape

    from interview_sim.cli.terminal import console

    out = console()
    r = details.run
    out.print(f"[bold]{escape(r.run_id)}[/] {r.kind} · {escape(r.scenario_id)} · {r.started_at}", soft_wrap=True)
    out.print(f"folder: {escape(details.folder)}", soft_wrap=True)
    out.print(
        f"source: {r.source}"
        + (f" (batch {escape(r.batch)})" if r.batch else "")
        + (f" · topic: {escape(r.topic)}" if r.topic else "")
    )
    seat = {
        role: escape(model or "-") + (" (inferred)" if role in details.inferred else "")
        for role, model in (("interviewer", r.interviewer_model), ("candidate", r.candidate_model))
    }
    out.print(f"interviewer: {seat['interviewer']} · candidate: {seat['candidate']}")
    out.print(f"messages: {r.messages} · analyses attached: {r.analyses} · evaluations: {r.evaluations}")
    for record, path in details.sources:
        out.print(f"  from ({record}): {escape(path)}", soft_wrap=True)
    for e in details.evaluations:
        score = f"{e.overall:.2f}" if e.overall is not None else "-"
        calibration = e.calibration or "calibration not recorded"
        out.print(f"  evaluation {e.evaluation_id}: {e.status} {score} by {escape(e.judge)} ({escape(calibration)})")
    for note in details.notes:
        out.print(f"[dim]note:[/] {escape(note)}", soft_wrap=True)
    for warning in details.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


@runs_app.command("show")
@user_errors
def show_command(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A run id (or its unique prefix), or a run folder.")],
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="The runs folder.")] = None,
    as_json: JsonOut = False,
) -> None:
    """One run: where it came from, its models, its evaluations and their judges' calibration state."""
    from interview_sim.catalog import show_run

    details = show_run(_runs_dir(ctx, runs_dir), run)
    if as_json:
        typer.echo(json.dumps(details.as_dict()))
    else:
        _render(details)


@runs_app.command("reindex")
@user_errors
def reindex_command(
    ctx: typer.Context, runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="The runs folder.")] = None
) -> None:
    """Rebuild the run index (runs folder/index.sqlite) from the run folders."""
    from interview_sim.catalog import INDEX_FILE, reindex

    folder = _runs_dir(ctx, runs_dir)
    count = reindex(folder)
    typer.echo(f"indexed {count} run(s) in {folder / INDEX_FILE}")
