"""`run`, `models`, `validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interview_sim.cli import app, fail, user_errors
from interview_sim.cli.common import JsonFlag, RunsDir, Timeout, apply_timeout, check_runs_dir, console
from interview_sim.cli.otel import OtelFlag, send_traces
from interview_sim.cli.signals import run_async
from interview_sim.cli.terminal import clean

if TYPE_CHECKING:
    from rich.console import Console

    from interview_sim.record import Transcript, UsageView


def usage_table(title: str, view: UsageView, key: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in (key, "calls", "prompt", "completion", "total", "gen s", "gen tok/s", "prompt tok/s"):
        table.add_column(column, justify="left" if column == key else "right", no_wrap=True)
    rows = getattr(view, f"by_{key}")
    for name, u in rows.items():
        tps = f"{u.tokens_per_second:.1f}" if u.tokens_per_second is not None else "-"
        pps = f"{u.prompt_tokens_per_second:.1f}" if u.prompt_tokens_per_second is not None else "-"
        table.add_row(
            name,
            str(u.calls),
            str(u.prompt_tokens),
            str(u.completion_tokens),
            str(u.total_tokens),
            f"{u.generation_s:.2f}",
            tps,
            pps,
        )
    return table


def render_usage(out: Console, transcript: Transcript) -> None:
    ledger = transcript.usage
    from interview_sim.cli.tables import print_whole

    print_whole(out, usage_table("Usage per model (including cached)", ledger.including_cached, "model"))
    print_whole(out, usage_table("Usage per role (including cached)", ledger.including_cached, "role"))
    if transcript.panel:  # several interviewers share a role: show each agent too
        print_whole(out, usage_table("Usage per agent (including cached)", ledger.including_cached, "agent"))
    cached = ledger.including_cached.total.calls - ledger.excluding_cached.total.calls
    if cached:
        out.print(f"{cached} cached call(s): excluded from usage excluding cached.")
    for warning in ledger.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    for note in ledger.notes:
        out.print(f"note: {note}")


def render_health(out: Console, transcript: Transcript) -> None:
    """The run's judge-free health figures in one line, and which turns to look at."""
    from interview_sim.health import compute_health, health_line

    health = compute_health(transcript)
    out.print(f"health: {health_line(health)}")
    flagged = {
        "no question": health.stage_compliance.turns,
        "cut off": health.shown_cut_off.turns,
        "out of role": [*health.role_adherence["candidate"].turns, *health.role_adherence["interviewer"].turns],
        "off topic": health.topic_adherence.turns,
        "echo": health.echo.turns,
    }
    notes = [f"{what} #{', #'.join(map(str, sorted(turns)))}" for what, turns in flagged.items() if turns]
    if notes:
        out.print(f"[dim]  turns to look at: {'; '.join(notes)}[/]")


def run_summary(transcript: Transcript, run_dir: Path, transcript_path: Path) -> dict[str, Any]:
    """The `run --json` object."""
    from interview_sim.health import compute_health

    view = transcript.usage.including_cached
    return {
        "run_id": transcript.run_id,
        "run_dir": str(run_dir),
        "transcript": str(transcript_path),
        "scenario": transcript.scenario_id,
        "stop_reason": transcript.stop_reason,
        "messages": len(transcript.messages),
        "simulated_minutes": transcript.simulated_minutes_used,
        "usage": {model: u.model_dump(mode="json") for model, u in view.by_model.items()},
        "usage_by_role": {role: u.model_dump(mode="json") for role, u in view.by_role.items()},
        "usage_by_agent": {agent: u.model_dump(mode="json") for agent, u in view.by_agent.items()},
        "cost": transcript.cost,
        "health": compute_health(transcript).model_dump(mode="json"),
    }


@app.command("run")
@user_errors
def run_command(
    scenario: Annotated[
        str, typer.Argument(help="A scenario id from scenarios/ or a path to a scenario file.")
    ] = "scalability-issues",
    interviewer_model: Annotated[str | None, typer.Option(help="Model reference for the interviewer.")] = None,
    candidate_model: Annotated[str | None, typer.Option(help="Model reference for the candidate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed for every agent.")] = None,
    max_turns: Annotated[int | None, typer.Option(min=1, help="Messages in the session, the opening line included.")] = None,
    think: Annotated[
        str | None,
        typer.Option(
            help="Thinking models (deepseek-r1, qwen3, gpt-oss): on, off, low, medium or high for the interviewer and"
            " candidate (default: each agent file's `think`, off in the shipped agents)."
        ),
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    as_json: JsonFlag = False,
    cache: Annotated[
        bool, typer.Option("--cache", help="Answer identical model requests from the disk cache (<runs-dir>/.model-cache).")
    ] = False,
    evaluate: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="Grade the run when the session ends (the evaluator agent).")
    ] = True,
    evaluator_model: Annotated[
        str | None,
        typer.Option(help="Judge model reference(s) for the grading, comma-separated (default: the evaluator agent's)."),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Also write the run's HTML page (report.html in the run folder).")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Show model turns token by token (only on a terminal, not with --json).")
    ] = True,
    answer_time: Annotated[
        float | None, typer.Option("--answer-time", min=1, help="Seconds a person has for each answer in a `human` seat.")
    ] = None,
    timeout: Timeout = None,
    otel: OtelFlag = False,
) -> None:
    """Run a scripted whiteboard interview, record it under runs/ and grade it.

    `--candidate-model human` (or `--interviewer-model human`) puts you in that seat: type your answers, an
    empty line ends each one, `/quit` stops (the answers so far are kept).

    If the session succeeds but its grading fails, the run is kept, the failed evaluation is recorded beside it,
    and the command ends with one error line and exit code 5 (regrade with `interview-sim evaluate RUN`).
    """
    from rich.markup import escape

    from interview_sim.cli.evaluate import render_evaluation, split_refs
    from interview_sim.cli.live import board_editor, live_run, render_feedback
    from interview_sim.errors import EvaluationError
    from interview_sim.grading.evaluate import evaluate_run, evaluation_path
    from interview_sim.models import create_model
    from interview_sim.models.cache import cached_factory, default_cache_dir
    from interview_sim.models.thinking import parse_think
    from interview_sim.record import RunStarted, load_transcript
    from interview_sim.session import run_scenario

    try:
        think_setting = parse_think(think) if think is not None else None
    except ValueError as exc:
        raise fail(f"--think: {exc}", 2) from None
    check_runs_dir(runs_dir)
    apply_timeout(timeout)
    out = console()
    judges = split_refs(evaluator_model)
    factory = cached_factory(create_model, default_cache_dir(runs_dir)) if cache else create_model
    live = live_run(
        out,
        factory,
        interviewer_model=interviewer_model,
        candidate_model=candidate_model,
        judges=judges,
        stream=stream,
        as_json=as_json,
        answer_time=answer_time,
        board=board_editor,
    )
    started: list[Path] = []

    def on_event(event: Any) -> None:
        if isinstance(event, RunStarted):
            started.append(runs_dir / event.scenario_id / event.run_id)
        if live.on_event is not None:
            live.on_event(event)

    def kept() -> str:
        return f"what finished is kept in {started[0]}" if started else "nothing was recorded (the run had not started)"

    async def session_then_grade() -> tuple[Any, Any, EvaluationError | None]:
        live.watch()
        result = await run_scenario(
            scenario,
            interviewer_model=interviewer_model,
            candidate_model=candidate_model,
            seed=seed,
            max_turns=max_turns,
            think=think_setting,
            runs_dir=runs_dir,
            on_event=on_event,
            model_factory=live.factory,
            on_text=live.on_text,
        )
        if not evaluate or result.transcript.stop_reason == "interrupted":  # a person's /quit: nothing to grade yet
            return result, None, None
        grade_factory = live.factory
        if not as_json:
            judge = (
                ", ".join(judges)
                if judges
                else result.transcript.agents.get("evaluator", {}).get("model_ref", "agents/evaluator.yaml")
            )
            out.print(_stopped_line(result.transcript))
            out.print(f"grading with {escape(judge)}: one line per judge call as it finishes")
            grade_factory = _reporting_calls(live.factory, out)
        try:
            return result, await evaluate_run(result.run_dir, evaluator_models=judges, model_factory=grade_factory), None
        except EvaluationError as exc:
            return result, exc.evaluation, exc

    result, evaluation, failure = run_async(session_then_grade(), kept)
    transcript = load_transcript(result.run_dir) if evaluate else result.transcript  # now with the judge's calls
    summary = run_summary(transcript, result.run_dir, result.transcript_path)
    if report:
        from interview_sim.report import write_run_report

        summary["report"] = str(write_run_report(result.run_dir))
    if as_json:
        if evaluate:
            summary["evaluation"] = evaluation.model_dump(mode="json") if evaluation is not None else None
            if evaluation is not None and evaluation.overall is not None:
                from interview_sim.grading.gate import describe

                summary["score"] = {"overall": evaluation.overall, "calibration": describe(evaluation.calibration).model_dump()}
        typer.echo(json.dumps(summary))
    else:
        if evaluation is None and failure is None:  # not graded: the stop line was not printed before grading
            out.print(_stopped_line(transcript))
        render_health(out, transcript)
        render_usage(out, transcript)
        if evaluation is not None and failure is None:
            person = "candidate" in live.humans  # their feedback below lists the criteria: not twice
            render_evaluation(out, evaluation, evaluation_path(result.run_dir, evaluation.evaluation_id), table=not person)
            if person:
                render_feedback(out, evaluation)
        elif live.humans and transcript.stop_reason == "interrupted":
            out.print(f"your answers so far are kept; grade them with `interview-sim evaluate {result.run_dir}`", soft_wrap=True)
        # The last lines say where the results are.
        out.print(f"transcript: {result.transcript_path}", soft_wrap=True)
        if report:
            out.print(f"page: {summary['report']}", soft_wrap=True)
        else:
            out.print(f"page: not written (add --report, or run `interview-sim report {result.run_dir}`)", soft_wrap=True)
    send_traces([result.run_dir], otel)
    if failure is not None:
        raise fail(f"{failure} (the run itself is kept: {result.run_dir})", failure.exit_code)


def _stopped_line(transcript: Transcript) -> str:
    minutes = transcript.simulated_minutes_used
    return f"\nstopped: {transcript.stop_reason} after {len(transcript.messages)} messages, {minutes:g} simulated minutes"


def _reporting_calls(factory: Any, out: Console) -> Any:
    """`factory`, whose judge models print one line as each call finishes: grading takes minutes on a CPU."""
    import time

    from rich.markup import escape

    calls = 0

    def build(ref: str, options: Any) -> Any:
        model = factory(ref, options)
        inner = model.complete

        async def complete(request: Any) -> Any:
            nonlocal calls
            start = time.perf_counter()
            result = await inner(request)
            calls += 1
            out.print(f"[dim]  judge call {calls} done ({escape(ref)}, {time.perf_counter() - start:.1f} s)[/]")
            return result

        setattr(model, "complete", complete)  # noqa: B010  (an instance attribute shadows the method)
        return model

    return build


@app.command("models")
@user_errors
def models_command(as_json: JsonFlag = False) -> None:
    """List backends and models, whether each is ready, its size and where its file is.

    A model shipped in parts (llamacpp:qwen2.5-coder-1.5b) shows its hash state: verified, not yet assembled
    (the first run that uses it joins the parts into the model cache), or parts missing N of 22.
    """
    from interview_sim.models import list_models

    infos = list_models()
    if as_json:
        typer.echo(json.dumps([info.__dict__ for info in infos]))
        return
    from rich.table import Table

    table = Table(min_width=60)
    table.add_column("model", no_wrap=True)
    table.add_column("ready", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for info in infos:
        table.add_row(info.ref, "[green]yes[/]" if info.ready else "[red]no[/]", _size(info.size_bytes), info.detail)
    out = console()
    out.print(table)
    from interview_sim import lookup

    where = "; ".join(f"{place.label} {place.root}" for place in lookup.places()) or "nowhere"
    out.print(f"scenarios and agents, first found wins: {where} (`interview-sim validate` shows each file used)", soft_wrap=True)


def _size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return ""
    return f"{size_bytes / 1e9:.1f} GB" if size_bytes >= 1e9 else f"{size_bytes / 1e6:.0f} MB"


@app.command("validate")
@user_errors
def validate_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Agent, scenario or sweep files, or ids (scalability-issues, candidate); none: every file an id can"
            " name, found in $INTERVIEW_SIM_HOME, the working directory and the packaged ones, and which one is used.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check agent, scenario and sweep files; one line per file, exit 2 if any is invalid.

    An id (or no argument at all) also says which file is used and where it comes from: $INTERVIEW_SIM_HOME,
    the working directory (your own files win) or the packaged ones.
    """
    from interview_sim import lookup
    from interview_sim.config import load_any
    from interview_sim.errors import ConfigError, ModelNotFoundError
    from interview_sim.models import check_references

    targets: list[tuple[str, Path, lookup.Found | None]] = []
    if paths:
        for ref in paths:
            found = None if Path(ref).suffix in {".yaml", ".yml"} or Path(ref).exists() else lookup.find_id(ref)
            targets.append((ref, found.path if found else Path(ref), found))
    else:
        targets = [(name, found.path, found) for name, found in lookup.visible().items()]
        if not targets:
            raise fail("no scenarios or agents found: run `interview-sim init` to start a project", 2)
    bad = 0
    for shown, path, found in targets:
        try:
            kind, loaded = load_any(path)
            check_references(loaded, path)
        except (ConfigError, ModelNotFoundError) as exc:
            bad += 1
            typer.echo(f"error: {clean(str(exc))}", err=True)
        else:
            line = f"ok: {shown} ({kind}, {found.describe()}): {path}" if found is not None else f"ok: {shown} ({kind})"
            typer.echo(clean(line))
    if bad:
        raise fail(f"{bad} of {len(targets)} file(s) invalid", 2)
