"""`compare` and `sweep`: leaderboards of models over cells of ordinary runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interview_sim.cli import app, fail, user_errors
from interview_sim.cli.common import JsonFlag, RunsDir, Timeout, apply_timeout, check_runs_dir, console
from interview_sim.cli.otel import OtelFlag, comparison_runs, send_traces
from interview_sim.cli.signals import run_async
from interview_sim.cli.tables import print_whole

if TYPE_CHECKING:
    from rich.console import Console

    from interview_sim.compare import BatchProgress, Comparison

Models = Annotated[str | None, typer.Option("--models", help="Comma-separated model references compared in the role.")]
Role = Annotated[str, typer.Option("--role", help="The role the compared models play: candidate or interviewer.")]
Repeats = Annotated[int, typer.Option("--repeats", min=1, help="Runs per model; repeat r uses seed S+r for every agent.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed S of the first repeat.")]
EvaluatorModel = Annotated[str | None, typer.Option("--evaluator-model", help="The judge's model (held fixed).")]
InterviewerModel = Annotated[
    str | None, typer.Option("--interviewer-model", help="The fixed interviewer's model when candidates are compared.")
]
CandidateModel = Annotated[
    str | None, typer.Option("--candidate-model", help="The fixed candidate's model when interviewers are compared.")
]
MaxTurns = Annotated[int | None, typer.Option("--max-turns", min=1, help="Messages per session, the opening line included.")]
Concurrency = Annotated[int, typer.Option("--concurrency", min=1, help="Cells run at once.")]
OllamaHosts = Annotated[
    str | None, typer.Option("--ollama-hosts", help="Comma-separated Ollama endpoints to spread Ollama cells over.")
]
EndpointLimit = Annotated[int, typer.Option("--endpoint-limit", min=1, help="Ollama cells at once per endpoint.")]
Cache = Annotated[bool, typer.Option("--cache", help="Answer identical model requests from the disk cache.")]
Fresh = Annotated[bool, typer.Option("--fresh", help="Start over instead of resuming the same request.")]
Pairwise = Annotated[bool, typer.Option("--pairwise/--no-pairwise", help="Judge models pairwise per repeat (win rates).")]
Executor = Annotated[
    str, typer.Option("--executor", help="Where cells run: local (this process) or ray (one task per cell on a Ray cluster).")
]
RayAddress = Annotated[str, typer.Option("--ray-address", help="With --executor ray: auto, host:port, or ray://host:10001.")]


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _hosts(value: str | None) -> list[str]:
    """`--ollama-hosts`; compare_models checks each address before anything runs."""
    from interview_sim.errors import BatchError

    hosts = _split(value)
    if value is not None and not hosts:
        raise BatchError(f"--ollama-hosts {value!r} names no endpoint")
    return hosts


def _interrupted_kept(runs_dir: Path) -> Callable[[], str]:
    def kept() -> str:
        return f"finished cells are kept under {runs_dir / 'comparisons'}; run the same command again to resume"

    return kept


def _raise_if_incomplete(comparison: Comparison, out: Console, as_json: bool) -> None:
    """A comparison with failed cells or judgments: list them (stdout), then one line on stderr and exit 6."""
    from rich.markup import escape

    from interview_sim.errors import BatchIncompleteError

    cells = [c for c in comparison.cells if c.status != "ok"]
    pairs = [p for p in comparison.pairs if p.status != "ok"]
    if not cells and not pairs:
        return
    if not as_json:
        for cell in cells:
            out.print(f"[red]failed cell[/] {escape(cell.key)}: {escape(cell.error or 'not run')}")
        for pair in pairs:
            out.print(f"[red]failed pairwise judgment[/] {escape(pair.key)}: {escape(pair.error or 'not judged')}")
    parts = []
    if cells:
        names = ", ".join(c.key for c in cells[:3]) + (", ..." if len(cells) > 3 else "")
        parts.append(f"{len(cells)} of {len(comparison.cells)} cell(s) failed ({names})")
    if pairs:
        parts.append(f"{len(pairs)} of {len(comparison.pairs)} pairwise judgment(s) failed")
    message = "; ".join(parts) + ": run the same command again to retry them (finished ones are kept)"
    raise BatchIncompleteError(message)


def _fixed_model(role: str, interviewer_model: str | None, candidate_model: str | None) -> str | None:
    from interview_sim.errors import BatchError

    compared = interviewer_model if role == "interviewer" else candidate_model
    if compared is not None:
        raise BatchError(f"--{role}-model names the compared role ({role}): list those models in --models")
    return candidate_model if role == "interviewer" else interviewer_model


@contextmanager
def _progress(out: Console, enabled: bool) -> Iterator[Callable[[BatchProgress], None] | None]:
    """A rich progress bar per phase (cells, then pairwise judgments): done/failed, tokens/s, ETA.

    Without it (--json), stdout carries only the JSON document: whatever a library prints meanwhile (Ray
    reports a node that died on stdout) goes to stderr.
    """
    if not enabled:
        with redirect_stdout(sys.stderr):
            yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=out,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(p: BatchProgress) -> None:
        if p.phase not in tasks:
            label = "cells" if p.phase == "cells" else "pairwise"
            tasks[p.phase] = bar.add_task(label, total=p.total, failed=0, rate="")
        rate = f"{p.tokens_per_second:.1f} tok/s" if p.tokens_per_second else ""
        bar.update(tasks[p.phase], completed=p.done, total=p.total, failed=p.failed, rate=rate)

    with bar:
        yield update


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _health_table(rows: list[Any], all_groups: bool) -> Any:
    """Judge-free health per model: mean share over its runs and the 95% interval."""
    from rich.markup import escape
    from rich.table import Table

    from interview_sim.health import HEADLINE_LABELS, HIGHER_IS_BETTER

    title = "Conversation health, mean [95% Wilson CI] over runs (judge-free)" + (" (all groups)" if all_groups else "")
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    for r in rows:
        table.add_column(escape(r.model), justify="right")
    for name, label in HEADLINE_LABELS.items():
        if not any(name in r.health for r in rows):
            continue
        better = "higher is better" if HIGHER_IS_BETTER.get(name) else "lower is better"

        def cell(row: Any, name: str = name) -> str:
            stat = row.health.get(name)
            if stat is None or stat.mean is None:
                return "-"
            interval = f" [{stat.ci_low:.0%}, {stat.ci_high:.0%}]" if stat.ci_low is not None else " (too few runs)"
            return f"{stat.mean:.0%}{interval}"

        table.add_row(f"{label} [dim]({better})[/]", *(cell(r) for r in rows))
    return table


def render_comparison(out: Console, comparison: Comparison, folder: Path) -> None:
    """One leaderboard table per group, then the per-criterion means, the notes and what this command did."""
    from rich.markup import escape
    from rich.table import Table

    request = comparison.request
    groups: dict[str, list[Any]] = {}
    for row in comparison.leaderboard:
        groups.setdefault(row.group, []).append(row)
    judges = ", ".join(dict.fromkeys(ref for g in request.groups for ref in g.evaluator_models))
    for group, rows in groups.items():
        table = Table(title=escape(f"{group} · {request.role}s · judge {judges}"), title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("model", no_wrap=True)
        for column in ("n", "mean", "95% CI", "win", "tokens in/out", "gen tok/s", "prompt tok/s", "failed"):
            table.add_column(column, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(
                str(r.rank),
                escape(r.model),
                str(r.n),
                _fmt(r.mean),
                f"{_fmt(r.ci_low)}–{_fmt(r.ci_high)}" if r.ci_low is not None else "too few runs" if r.n else "-",
                _fmt(r.win_rate),
                f"{r.prompt_tokens}/{r.completion_tokens}",
                _fmt(r.tokens_per_second, 1),
                _fmt(r.prompt_tokens_per_second, 1),
                str(r.failed),
            )
        print_whole(out, table, keys=2)
    out.print(_trust_line(comparison))
    overall_rows = groups.get("all") or next(iter(groups.values()), [])
    if comparison.criteria and overall_rows:
        table = Table(title="Mean score per criterion" + (" (all groups)" if "all" in groups else ""), title_justify="left")
        table.add_column("criterion")
        for r in overall_rows:
            table.add_column(escape(r.model), justify="right")
        for cid, name in comparison.criteria.items():
            table.add_row(escape(name), *(_fmt(r.criteria.get(cid)) for r in overall_rows))
        print_whole(out, table)
    if any(r.health for r in overall_rows):
        print_whole(out, _health_table(overall_rows, "all" in groups))
    for note in comparison.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")
    inv = comparison.last_invocation
    if inv is not None:
        out.print(
            f"cells run: {inv.cells_run}, skipped (already finished): {inv.cells_skipped};"
            f" pairwise run: {inv.pairs_run}, skipped: {inv.pairs_skipped}"
        )
        out.print(f"model calls: {inv.model_calls}, cached: {inv.cached_calls} · {inv.wall_s or 0:.1f} s")
    out.print(f"comparison: {folder / 'comparison.json'}")


def _trust_line(comparison: Comparison) -> str:
    """The judges' calibration over the graded cells, shown under the leaderboard: never bare means."""
    from rich.markup import escape

    from interview_sim.grading.gate import summary

    graded = [c for c in comparison.cells if c.status == "ok" and c.overall is not None]
    lines = list(dict.fromkeys(c.calibration_summary or summary("not calibrated") for c in graded))
    if not lines:
        return "no graded cells"
    passed = all(c.calibration == "passed" for c in graded)
    return f"[{'green' if passed else 'bold red'}]scores: {escape('; '.join(lines))}[/]"


def _finish(comparison: Comparison, runs_dir: Path, as_json: bool, out: Console, report: bool, otel: bool) -> None:
    from interview_sim.compare import comparison_dir
    from interview_sim.record import dump_record

    folder = comparison_dir(runs_dir, comparison.comparison_id)
    send_traces(comparison_runs(comparison, runs_dir), otel)
    pages = None
    if report:
        from interview_sim.report import write_comparison_report

        pages = write_comparison_report(folder)
    if as_json:
        data = dump_record(comparison)
        if pages is not None:
            data["report"] = str(pages.path)
        typer.echo(json.dumps(data))
        return
    render_comparison(out, comparison, folder)
    if pages is not None:
        out.print(f"report: {pages.path} (and {len(pages.run_pages)} run page(s))")


def _finish_checked(comparison: Comparison, runs_dir: Path, as_json: bool, out: Console, report: bool, otel: bool) -> None:
    _finish(comparison, runs_dir, as_json, out, report, otel)
    _raise_if_incomplete(comparison, out, as_json)


Report = Annotated[bool, typer.Option("--report", help="Also write the HTML page of the comparison and of every cell's run.")]


@app.command("compare")
@user_errors
def compare_command(
    scenario: Annotated[
        str | None, typer.Argument(help="A scenario id from scenarios/ or a path to a scenario file (not with --from-runs).")
    ] = None,
    models: Models = None,
    role: Role = "candidate",
    repeats: Repeats = 1,
    seed: Seed = 0,
    evaluator_model: EvaluatorModel = None,
    interviewer_model: InterviewerModel = None,
    candidate_model: CandidateModel = None,
    max_turns: MaxTurns = None,
    pairwise: Pairwise = True,
    concurrency: Concurrency = 1,
    ollama_hosts: OllamaHosts = None,
    endpoint_limit: EndpointLimit = 1,
    cache: Cache = False,
    fresh: Fresh = False,
    runs_dir: RunsDir = Path("runs"),
    report: Report = False,
    from_runs: Annotated[
        str | None,
        typer.Option(
            "--from-runs",
            metavar="FILTER",
            help="Rank the models of existing runs by their evaluations instead of running new ones. FILTER: key=value"
            " pairs (scenario, model, source, batch) separated by commas, or `all`.",
        ),
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="With --from-runs: whose grades count (default: the most used judge).")
    ] = None,
    as_json: JsonFlag = False,
    executor: Executor = "local",
    ray_address: RayAddress = "auto",
    timeout: Timeout = None,
    otel: OtelFlag = False,
) -> None:
    """Compare models in one role on the same scenario: a leaderboard with confidence intervals and win rates.

    With --from-runs FILTER, nothing is run: the leaderboard comes from the matching runs' existing evaluations.
    """
    from interview_sim.compare import compare_models

    if from_runs is not None:
        if scenario is not None or models is not None:
            raise fail("--from-runs ranks existing runs: give a FILTER, not a scenario or --models", 2)
        _from_runs(from_runs, runs_dir, role, judge, as_json)
        return
    if scenario is None:
        raise fail("compare needs a scenario (or --from-runs FILTER)", 2)
    if judge is not None:
        raise fail("--judge picks among existing grades: it goes with --from-runs (use --evaluator-model here)", 2)

    fixed = _fixed_model(role, interviewer_model, candidate_model)
    hosts = _hosts(ollama_hosts)
    check_runs_dir(runs_dir)
    apply_timeout(timeout)
    out = console()
    with _progress(out, not as_json) as on_progress:
        comparison = run_async(
            compare_models(
                scenario,
                _split(models),
                role=role,  # type: ignore[arg-type]  # checked by compare_models
                repeats=repeats,
                seed=seed,
                evaluator_model=evaluator_model,
                fixed_model=fixed,
                max_turns=max_turns,
                pairwise=pairwise,
                concurrency=concurrency,
                ollama_hosts=hosts,
                per_endpoint=endpoint_limit,
                cache=cache,
                fresh=fresh,
                runs_dir=runs_dir,
                on_progress=on_progress,
                executor=executor,  # type: ignore[arg-type]  # checked before anything runs
                ray_address=ray_address,
            ),
            _interrupted_kept(runs_dir),
        )
    _finish_checked(comparison, runs_dir, as_json, out, report, otel)


def _from_runs(where: str, runs_dir: Path, role: str, judge: str | None, as_json: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from interview_sim.compare import leaderboard_from_runs

    if role not in ("candidate", "interviewer"):
        raise fail(f"--role must be candidate or interviewer, got {role!r}", 2)
    board = leaderboard_from_runs(runs_dir, where, role=role, judge=judge)  # type: ignore[arg-type]  # checked above
    if as_json:
        typer.echo(json.dumps(board.model_dump(mode="json")))
        return
    out = console()
    title = f"{where} · {board.runs} run(s) · {role}s · judge {board.judge or '-'}"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("model", no_wrap=True)
    for column in ("runs", "n", "mean", "95% CI", "win", "W/L/T"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in board.rows:
        table.add_row(
            str(r.rank),
            escape(r.model),
            str(r.runs),
            str(r.n),
            _fmt(r.mean),
            f"{_fmt(r.ci_low)}–{_fmt(r.ci_high)}" if r.ci_low is not None else "too few runs" if r.n else "-",
            _fmt(r.win_rate),
            f"{r.wins}/{r.losses}/{r.ties}",
        )
    print_whole(out, table, keys=2)
    if board.criteria and board.rows:
        crit = Table(title="Mean score per criterion", title_justify="left")
        crit.add_column("criterion")
        for r in board.rows:
            crit.add_column(escape(r.model), justify="right")
        for cid in board.criteria:
            crit.add_row(escape(cid), *(_fmt(r.criteria.get(cid)) for r in board.rows))
        print_whole(out, crit)
    for note in board.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")


@app.command("sweep")
@user_errors
def sweep_command(
    sweep: Annotated[str, typer.Argument(help="A sweep file (scenarios/sweep-*.yaml) or its id.")],
    models: Models = None,
    role: Annotated[str | None, typer.Option("--role", help="Override the sweep's compared role.")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", min=1, help="Override the sweep's repeats.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the sweep's seed.")] = None,
    evaluator_model: EvaluatorModel = None,
    interviewer_model: InterviewerModel = None,
    candidate_model: CandidateModel = None,
    max_turns: MaxTurns = None,
    concurrency: Concurrency = 1,
    ollama_hosts: OllamaHosts = None,
    endpoint_limit: EndpointLimit = 1,
    cache: Cache = False,
    fresh: Fresh = False,
    runs_dir: RunsDir = Path("runs"),
    report: Report = False,
    as_json: JsonFlag = False,
    executor: Executor = "local",
    ray_address: RayAddress = "auto",
    timeout: Timeout = None,
    otel: OtelFlag = False,
) -> None:
    """Run a sweep: topics × solution topics × models × repeats, a leaderboard per group; resumable."""
    from interview_sim.compare import run_sweep
    from interview_sim.config import load_sweep

    loaded = load_sweep(sweep)
    effective_role = role or loaded.spec.role
    fixed = _fixed_model(effective_role, interviewer_model, candidate_model)
    hosts = _hosts(ollama_hosts)
    check_runs_dir(runs_dir)
    apply_timeout(timeout)
    out = console()
    with _progress(out, not as_json) as on_progress:
        comparison = run_async(
            run_sweep(
                loaded,
                models=_split(models) or None,
                role=effective_role,  # type: ignore[arg-type]  # checked by run_sweep
                repeats=repeats,
                seed=seed,
                evaluator_model=evaluator_model,
                fixed_model=fixed,
                max_turns=max_turns,
                concurrency=concurrency,
                ollama_hosts=hosts,
                per_endpoint=endpoint_limit,
                cache=cache,
                fresh=fresh,
                runs_dir=runs_dir,
                on_progress=on_progress,
                executor=executor,  # type: ignore[arg-type]  # checked before anything runs
                ray_address=ray_address,
            ),
            _interrupted_kept(runs_dir),
        )
    _finish_checked(comparison, runs_dir, as_json, out, report, otel)
