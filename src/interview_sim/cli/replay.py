"""`replay`, `import`."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interview_sim.cli import app, fail, user_errors
from interview_sim.cli.common import JsonFlag, message_printer
from interview_sim.cli.panel import board_lines, debrief_lines
from interview_sim.cli.signals import run_async
from interview_sim.cli.terminal import clean, console

if TYPE_CHECKING:
    from rich.console import Console

    from interview_sim.autogen02 import ImportReport
    from interview_sim.replay import Replay, ReplayTurn, RerunResult

# Module-level so tests can replace it and never sleep.
_sleep = time.sleep

_COLOURS = {"interviewer": "cyan", "candidate": "green", "lead-analyst": "magenta", "analyst": "yellow"}


def _turn_header(t: ReplayTurn) -> str:
    from rich.markup import escape

    model = t.model or ("opening line" if t.source == "template" else "model not recorded" if t.source == "imported" else "?")
    if t.model == "human":
        tokens = "typed by a person"
    elif t.completion_tokens is not None:
        tokens = f"{t.completion_tokens} tok (prompt {t.prompt_tokens}){' cached' if t.cached else ''}"
    else:
        tokens = "tokens not recorded" if t.source == "imported" else "template"
    parts = [tokens]
    if t.elapsed_minutes is not None and t.remaining_minutes is not None:
        parts.append(f"clock {t.elapsed_minutes:g}/{t.elapsed_minutes + t.remaining_minutes:g} min")
    if t.stage:
        parts.append(t.stage)
    colour = _COLOURS.get(t.role, "white")
    return f"\n[dim]turn {t.turn}[/] [bold {colour}]{escape(t.speaker)}[/] ({t.role}, {escape(model)}) · " + " · ".join(parts)


def _render_header(out: Console, replay: Replay) -> None:
    from rich.markup import escape

    models = ", ".join(f"{role}: {name}" for role, name in replay.models.items())
    if replay.imported:
        # An AutoGen 0.2 file names its models only in the cost block, not which agent used which.
        listed = [m for m in replay.usage.get("usage_including_cached_inference", {}) if m != "total_cost"]
        models = f"models (per agent unknown): {', '.join(listed) or 'none recorded'}"
    out.print(f"[bold]{replay.scenario_id}[/] · {replay.kind} {replay.run_id} · {escape(models)}")
    if replay.imported:
        info = replay.imported
        where = "/".join(x for x in (info.get("batch"), info.get("original_name")) if x)
        out.print(f"imported ({info['format']}) from {escape(where)} · topic: {escape(str(info.get('topic')))}")
    if replay.replay_of:
        out.print(f"offline re-execution of run {replay.replay_of}")
    if replay.turns and replay.turns[0].turn > 1:
        out.print(f"starting at turn {replay.turns[0].turn} of {replay.total_turns}")


def _render_usage(out: Console, replay: Replay) -> None:
    from rich.table import Table

    view = replay.usage.get("usage_including_cached_inference", {})
    table = Table(title="Usage per model (including cached)", title_justify="left")
    for column in ("model", "prompt", "completion", "total"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for model, entry in view.items():
        if model != "total_cost" and isinstance(entry, dict):
            table.add_row(
                model, str(entry.get("prompt_tokens")), str(entry.get("completion_tokens")), str(entry.get("total_tokens"))
            )
    from interview_sim.cli.tables import print_whole

    print_whole(out, table)
    for warning in replay.warnings:
        out.print(f"[yellow]warning:[/] {warning}")


def _render_rerun(out: Console, result: RerunResult) -> None:
    from rich.markup import escape

    out.print(
        f"\nre-executed run {result.original_run_id} offline → {result.run_dir}\n"
        f"messages: original {result.messages_original}, rerun {result.messages_rerun};"
        f" stop: original {result.stop_reason_original}, rerun {result.stop_reason_rerun}"
    )
    if result.identical:
        out.print(f"[green]identical[/]: all {result.messages_original} messages match (role, agent, content, stage, clock)")
        return
    d = result.first_difference
    assert d is not None
    where = f"turn {d.turn}" if d.turn is not None else "the stop reason"
    out.print(f"[red]diverged[/] at {where} ({d.field}):")
    out.print(f"  original: {escape(json.dumps(d.original, ensure_ascii=False))}")
    out.print(f"  rerun:    {escape(json.dumps(d.rerun, ensure_ascii=False))}")
    if result.error:
        out.print(f"  the rerun stopped on an error: {escape(result.error)}")


def _divergence_line(result: RerunResult) -> str:
    d = result.first_difference
    assert d is not None
    where = f"turn {d.turn}" if d.turn is not None else "the stop reason"
    return f"rerun of {result.original_run_id} diverged at {where} ({d.field}); new run in {result.run_dir}"


@app.command("replay")
@user_errors
def replay_command(
    run: Annotated[Path, typer.Argument(help="A run folder or transcript path (also an attached analysis-<id>.json).")],
    speed: Annotated[float, typer.Option(help="Play this many times faster than the recorded latencies.")] = 10.0,
    instant: Annotated[bool, typer.Option("--instant", help="Show every turn at once.")] = False,
    turn: Annotated[int, typer.Option("--turn", min=1, help="Start at this turn (1 = the opening line).")] = 1,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Re-execute the session offline with the recorded answers and compare.")
    ] = False,
    runs_dir: Annotated[
        Path | None, typer.Option("--runs-dir", help="Where --rerun writes its run (default: beside the original).")
    ] = None,
    thinking: Annotated[
        bool, typer.Option("--thinking", help="Show thinking models' reasoning in full (default: one collapsed line).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Play a recorded run turn by turn, or re-execute it offline (--rerun) and check it reproduces."""
    if rerun:
        from interview_sim.replay import rerun as rerun_run

        out = console()
        result = run_async(rerun_run(run, runs_dir=runs_dir, on_event=None if as_json else message_printer(out)))
        if as_json:
            typer.echo(json.dumps(result.model_dump(mode="json")))
        else:
            _render_rerun(out, result)
        if not result.identical:
            raise fail(_divergence_line(result), 1)
        return

    from interview_sim.replay import pacing, replay_run

    replay = replay_run(run, turn=turn)
    if as_json:
        typer.echo(json.dumps(replay.model_dump(mode="json")))
        return
    from rich.markup import escape

    waits = pacing(replay.turns, speed=speed, instant=instant)
    out = console()
    _render_header(out, replay)
    for t, wait in zip(replay.turns, waits, strict=True):
        if wait > 0:
            _sleep(wait)
        out.print(_turn_header(t))
        if t.thinking and thinking:
            out.print(f"[dim]reasoning:\n{escape(t.thinking)}[/]")
        elif t.thinking:
            out.print(f"[dim]▸ reasoning: {len(t.thinking.split())} words (--thinking shows it)[/]")
        out.print(escape(t.content))
        for line in board_lines(t.board_changes):
            out.print(line)
    out.print(f"\nstopped: {replay.stop_reason} after {replay.total_turns} turns")
    for line in debrief_lines(replay.debriefs):
        out.print(line)
    from interview_sim.health import health_line

    out.print(f"health: {health_line(replay.health)}")
    _render_usage(out, replay)


@app.command("import")
@user_errors
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="AutoGen 0.2 records (any form), or results trees (every file in them).")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders are written.")] = Path("runs"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parser processes (1: parse in this process).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"runs": [...], "files": [...]} as JSON.')] = False,
    interviewer_model: Annotated[
        str | None, typer.Option("--interviewer-model", help="The model the interviewer used, recorded as given.")
    ] = None,
    candidate_model: Annotated[
        str | None, typer.Option("--candidate-model", help="The model the candidate used, recorded as given.")
    ] = None,
) -> None:
    """Import AutoGen 0.2 transcripts and whole results trees; every file ends imported, merged, attached, skipped or failed.

    The files do not say which agent used which model. A seat's model is inferred (and marked so) when the agent's
    name and the Cost block agree on exactly one; --interviewer-model / --candidate-model record it as given.

    Exit 0 when no file failed, 2 when at least one did (the others are still imported).
    """
    from interview_sim.autogen02 import import_transcripts
    from interview_sim.models import parse_ref

    seats = {role: ref for role, ref in (("interviewer", interviewer_model), ("candidate", candidate_model)) if ref}
    for ref in seats.values():
        parse_ref(ref)  # a malformed reference: one line, exit 2, before anything is read
    with import_progress() as progress:
        report = import_transcripts(list(paths), runs_dir=runs_dir, jobs=jobs, progress=progress, seat_models=seats)
    for f in report.files:
        if f.status == "failed":
            typer.echo(clean(f"error: {f.path}: {f.reason}"), err=True)
    if as_json:
        run_keys = ["run_dir", "kind", "messages", "source_file", "sources", "path", "run_id", "scenario_id"]
        run_keys += ["format", "topic", "warnings", "notes", "created"]
        runs = [{k: getattr(r, k) for k in run_keys} for r in report.runs]
        files = [f.model_dump(mode="json") for f in report.files]
        typer.echo(json.dumps({"runs": runs, "files": files, "counts": report.counts()}))
    else:
        _render_import(console(), report, runs_dir)
    failed = report.counts()["failed"]
    if failed:
        raise fail(f"{failed} of {len(report.files)} file(s) failed", 2)


TABLE_ROWS = 30
"""A big tree's created records and warnings are listed up to this many; --json has them all."""


@contextlib.contextmanager
def import_progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr while files are parsed and written (only on a terminal)."""
    from rich.progress import Progress

    err = console(stderr=True, highlight=True)
    if not err.is_terminal:
        yield None
        return
    with Progress(console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task("parsing" if stage == "parse" else "writing", total=total)
            bar.update(tasks[stage], completed=done)

        yield update


def _render_import(out: Console, report: ImportReport, runs_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from interview_sim.autogen02 import STATUSES

    if not out.is_terminal:
        out.width = max(out.width, 200)  # piped or captured: keep the long AutoGen file names on one line
    created = report.created
    if created:
        table = Table(title=f"Created {len(created)} record(s) in {escape(str(runs_dir))}", title_justify="left")
        for column in ("source file", "kind", "messages", "topic", "warnings", "run"):
            table.add_column(column, justify="right" if column in ("messages", "warnings") else "left", overflow="fold")
        for r in created[:TABLE_ROWS]:
            run = Path(r.run_dir)
            where = f"{run.parent.name}/{run.name}" + (f"/{Path(r.path).name}" if r.kind == "analysis" else "")
            table.add_row(
                escape(Path(r.source_file).name),
                r.kind,
                str(r.messages),
                escape(r.topic or "-"),
                str(len(r.warnings)),
                escape(where),
            )
        out.print(table)
        if len(created) > TABLE_ROWS:
            out.print(f"... and {len(created) - TABLE_ROWS} more (--json lists them all)")
        warnings = [(r, w) for r in created for w in r.warnings]
        for r, warning in warnings[:TABLE_ROWS]:
            out.print(f"[yellow]warning:[/] {escape(Path(r.source_file).name)}: {escape(warning)}")
        if len(warnings) > TABLE_ROWS:
            out.print(f"[yellow]warning:[/] ... and {len(warnings) - TABLE_ROWS} more usage warning(s) (--json lists them all)")
    skipped = [f for f in report.files if f.status == "skipped"]
    already = sum(1 for f in skipped if (f.reason or "").startswith("already imported"))
    others = [f for f in skipped if not (f.reason or "").startswith("already imported")]
    for f in others[:TABLE_ROWS]:
        out.print(f"skipped: {escape(f.path)}: {escape(f.reason or '')}", soft_wrap=True)
    if len(others) > TABLE_ROWS:
        out.print(f"skipped: ... and {len(others) - TABLE_ROWS} more file(s) that are not transcripts (--json lists them all)")
    if already:
        out.print(f"skipped: {already} file(s) already imported (their runs are unchanged)")
    counts = Table(title=f"{len(report.files)} file(s)", title_justify="left")
    counts.add_column("form")
    for status in STATUSES:
        counts.add_column(status, justify="right")
    for form, by_status in report.forms().items():
        counts.add_row(form, *(str(by_status.get(s, 0)) for s in STATUSES))
    totals = report.counts()
    counts.add_row("[bold]all[/]", *(f"[bold]{totals[s]}[/]" for s in STATUSES))
    out.print(counts)
