"""Running a planned comparison: cells and pairs on the scheduler, resume, the comparison record as cells finish.

`matrix` plans the groups and options and calls `execute`; everything here works on a `ComparisonRequest`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from interview_sim.compare.cells import (
    CellOutcome,
    CellTask,
    Endpoints,
    ModelFactory,
    PairOutcome,
    PairTask,
    Scheduler,
    pair_runner,
)
from interview_sim.compare.comparison import (
    COMPARISON_FILE,
    BatchProgress,
    Cell,
    Comparison,
    ComparisonRequest,
    GroupInfo,
    Invocation,
    PairJudgment,
    ProgressSink,
    comparison_dir,
    leaderboard,
    load_comparison,
    notes,
    save_comparison,
)
from interview_sim.compare.executors import CellExecutor, ExecutorChoice, make_executor
from interview_sim.compare.journal import Journal
from interview_sim.compare.lock import comparison_lock
from interview_sim.config import LoadedScenario
from interview_sim.errors import BatchError
from interview_sim.models import ChatModel, ModelOptions, parse_ref
from interview_sim.record import dump_record, utc_now

FINISHED_RUN = ("max_turns", "time_budget", "end_marker")
"""Stop reasons of a run that finished: its evaluation can be retried without running it again."""


@dataclass(frozen=True)
class CellGroup:
    info: GroupInfo
    scenario: LoadedScenario


@dataclass(frozen=True)
class RunOptions:
    concurrency: int
    ollama_hosts: tuple[str, ...]
    per_endpoint: int
    cache: bool
    fresh: bool
    runs_dir: Path
    on_progress: ProgressSink | None
    model_factory: ModelFactory
    executor: ExecutorChoice = field(default_factory=ExecutorChoice)


async def _check_refs(refs: Sequence[str], factory: ModelFactory) -> None:
    """Fail before anything runs on a reference no provider knows (a typo would otherwise fail every cell)."""
    for ref in dict.fromkeys(refs):
        parse_ref(ref)
        model = factory(ref, ModelOptions())
        await model.aclose()
        if model.interactive:
            raise BatchError(f"compare and sweep run models only: {ref!r} is a person's seat (use it with `interview-sim run`)")


async def _check_ready(refs: Sequence[str], factory: ModelFactory, hosts: Sequence[str]) -> None:
    """Every model ready on every endpoint that will serve it, as `run` checks (a server down, a tag not pulled,
    an embedded model missing), before anything is written: within Ollama's 5 s readiness deadline, all at once."""
    from dataclasses import replace

    from interview_sim.models.llamacpp import resolve_model_path

    models: list[ChatModel] = []
    files: list[str] = []
    for ref in dict.fromkeys(refs):
        provider, name = parse_ref(ref)
        if provider == "llamacpp":  # its file only: loading it here would hold a model the cells load themselves
            files.append(name)
            continue
        ollama = provider == "ollama"
        for host in hosts if ollama and hosts else [None]:
            options = ModelOptions() if host is None else replace(ModelOptions(), host=host)
            models.append(factory(ref, options))
    try:
        for name in files:
            await asyncio.to_thread(resolve_model_path, name)
        await asyncio.gather(*(m.check_ready() for m in models))
    finally:
        for model in models:
            await model.aclose()


# ---------------------------------------------------------------------------------------------- execution


def _rel(path: Path, runs_dir: Path) -> str:
    try:
        return str(path.relative_to(runs_dir))
    except ValueError:
        return str(path)


def _evaluation_recorded(runs_dir: Path, cell: Cell) -> bool:
    return (
        cell.run_dir is not None
        and cell.evaluation_id is not None
        and (runs_dir / cell.run_dir / f"evaluation-{cell.evaluation_id}.json").exists()
    )


def _plan_cell(
    group: CellGroup, model: str, repeat: int, request: ComparisonRequest, previous: Comparison | None, runs_dir: Path
) -> tuple[Cell, CellTask | None]:
    """The cell's record, and the task to run for it (None when it is finished)."""
    key = f"{group.info.id}|{model}|{repeat}"
    seed = request.seed + repeat
    old = previous.cell(key) if previous else None
    if old is not None and old.status == "ok" and _evaluation_recorded(runs_dir, old):
        return old, None
    reuse = None
    if old is not None and old.run_dir and old.stop_reason in FINISHED_RUN and (runs_dir / old.run_dir).is_dir():
        reuse = runs_dir / old.run_dir  # the run finished; only its grading failed or went missing
    cell = Cell(key=key, group=group.info.id, model=model, repeat=repeat, seed=seed, attempts=old.attempts if old else 0)
    if reuse is not None and old is not None:
        cell = cell.model_copy(update={"run_dir": old.run_dir, "run_id": old.run_id, "stop_reason": old.stop_reason})
    task = CellTask(
        key=key,
        scenario=group.scenario,
        role=request.role,
        model=model,
        seed=seed,
        max_turns=request.max_turns,
        evaluator_models=tuple(group.info.evaluator_models),
        runs_dir=runs_dir,
        reuse_run=reuse,
    )
    return cell, task


def _apply_cell(cell: Cell, outcome: CellOutcome, runs_dir: Path) -> Cell:
    return cell.model_copy(
        update={
            "status": outcome.status,
            "run_dir": _rel(outcome.run_dir, runs_dir) if outcome.run_dir else cell.run_dir,
            "run_id": outcome.run_id or cell.run_id,
            "stop_reason": outcome.stop_reason or cell.stop_reason,
            "evaluation_id": outcome.evaluation_id,
            "overall": outcome.overall,
            "criteria": outcome.criteria,
            "calibration": outcome.calibration,
            "calibration_summary": outcome.calibration_summary,
            "usage": outcome.usage,
            "health": outcome.health or cell.health,
            "model_calls": outcome.meter.model_calls,
            "cached_calls": outcome.meter.cached_calls,
            "attempts": cell.attempts + 1,
            "error": outcome.error,
            "started_at": outcome.started_at,
            "ended_at": outcome.ended_at,
        }
    )


class _Tracker:
    """Progress of one phase of this command, for the on_progress callback and the invocation record."""

    def __init__(
        self, phase: Literal["cells", "pairs"], total: int, skipped: int, sink: ProgressSink | None, start: float
    ) -> None:
        self.phase, self.total, self.skipped, self.sink, self.start = phase, total, skipped, sink, start
        self.done = self.failed = self.running = 0
        self.completion_tokens = 0

    def emit(self) -> None:
        if self.sink is not None:
            self.sink(
                BatchProgress(
                    phase=self.phase,
                    total=self.total,
                    done=self.done + self.skipped,
                    failed=self.failed,
                    skipped=self.skipped,
                    running=self.running,
                    completion_tokens=self.completion_tokens,
                    elapsed_s=time.perf_counter() - self.start,
                )
            )

    def started(self, _task: object) -> None:
        self.running += 1
        self.emit()

    def finished(self, ok: bool, completion_tokens: int) -> None:
        self.running -= 1
        self.done += 1
        self.failed += 0 if ok else 1
        self.completion_tokens += completion_tokens
        self.emit()


async def execute(request: ComparisonRequest, groups: dict[str, CellGroup], options: RunOptions) -> Comparison:
    """Run the comparison's cells and pairs; one command at a time per comparison (`comparison_lock`)."""
    evaluators = [ref for g in request.groups for ref in g.evaluator_models]
    refs = [*request.models, *(g.fixed_model for g in request.groups), *evaluators]
    await _check_refs(refs, options.model_factory)
    if options.executor.kind == "local":  # a cluster's nodes reach their own servers: they check in their cells
        await _check_ready(refs, options.model_factory, options.ollama_hosts)
    with comparison_lock(comparison_dir(options.runs_dir, request.comparison_id())):
        return await _execute(request, groups, options)


def _connect(options: RunOptions) -> tuple[Path | None, Scheduler, CellExecutor]:
    """The cache folder, the local scheduler and the executor (connected to its Ray cluster, for `ray`)."""
    from interview_sim.models.cache import default_cache_dir

    cache_dir = default_cache_dir(options.runs_dir).resolve() if options.cache else None
    scheduler = Scheduler(
        concurrency=options.concurrency,
        endpoints=Endpoints(list(options.ollama_hosts), options.per_endpoint),
        cache_dir=cache_dir,
    )
    try:
        return cache_dir, scheduler, make_executor(options.executor, scheduler, cache_dir, options.model_factory)
    except BaseException:
        scheduler.close()
        raise


async def _execute(request: ComparisonRequest, groups: dict[str, CellGroup], options: RunOptions) -> Comparison:
    runs_dir = options.runs_dir
    comparison_id = request.comparison_id()
    folder = comparison_dir(runs_dir, comparison_id)
    previous = None
    if not options.fresh and (folder / COMPARISON_FILE).exists():
        previous = load_comparison(folder)
    now = utc_now()
    invocation = Invocation(
        started_at=now,
        fresh=options.fresh,
        cache=options.cache,
        concurrency=options.concurrency,
        endpoints=list(options.ollama_hosts),
        executor=options.executor.kind,
    )
    comparison = Comparison(
        comparison_id=comparison_id,
        kind=request.kind,
        request=request,
        created_at=previous.created_at if previous else now,
        updated_at=now,
        criteria={c.id: c.name for g in groups.values() for c in g.scenario.spec.rubric.criteria},
        pairs=previous.pairs if previous else [],
        last_invocation=invocation,
    )
    tasks: list[CellTask] = []
    for group in groups.values():
        for model in request.models:
            for repeat in range(request.repeats):
                cell, task = _plan_cell(group, model, repeat, request, previous, runs_dir)
                comparison.cells.append(cell)
                if task is not None:
                    tasks.append(task)
    invocation.cells_skipped = len(comparison.cells) - len(tasks)
    cache_dir, scheduler, executor = _connect(options)  # before anything is written: a missing cluster leaves none
    journal = Journal(folder)  # creates the folder
    save_comparison(folder, comparison)
    journal.clear()  # everything it held is in the summary now
    start = time.perf_counter()
    try:
        index = {c.key: i for i, c in enumerate(comparison.cells)}
        cells_progress = _Tracker("cells", len(comparison.cells), invocation.cells_skipped, options.on_progress, start)

        def cell_done(task: CellTask, outcome: CellOutcome) -> None:
            i = index[task.key]
            comparison.cells[i] = _apply_cell(comparison.cells[i], outcome, runs_dir)
            invocation.cells_run += 1
            invocation.model_calls += outcome.meter.model_calls
            invocation.cached_calls += outcome.meter.cached_calls
            journal.append("cell", dump_record(comparison.cells[i]))
            cells_progress.finished(outcome.status == "ok", outcome.meter.completion_tokens)

        cells_progress.emit()
        await executor.run(tasks, on_start=cells_progress.started, on_done=cell_done)
        if request.pairwise and len(request.models) > 1:
            await _judge_pairs(comparison, scheduler, cache_dir, options, invocation, journal, start)
    finally:
        executor.close()
        scheduler.close()
        invocation.ended_at = utc_now()
        invocation.wall_s = round(time.perf_counter() - start, 4)
        _write_summary(folder, comparison, journal)

    comparison.leaderboard = leaderboard(comparison)
    comparison.notes = notes(comparison)
    comparison.status = "complete"
    save_comparison(folder, comparison, csv_too=True)
    return comparison


def _write_summary(folder: Path, comparison: Comparison, journal: Journal) -> None:
    """The summary of what finished (also when interrupted); the journal it now holds is emptied and closed."""
    try:
        save_comparison(folder, comparison)
        journal.clear()
    finally:
        journal.close()


def _plan_pairs(comparison: Comparison, runs_dir: Path) -> tuple[list[PairJudgment], list[PairTask]]:
    """Every pair of finished cells of one repeat: the judgments to keep, and the tasks for the rest."""
    request = comparison.request
    ok = {c.key: c for c in comparison.cells if c.status == "ok" and c.run_dir}
    previous = {p.key: p for p in comparison.pairs}
    pairs: list[PairJudgment] = []
    tasks: list[PairTask] = []
    for group in request.groups:
        for repeat in range(request.repeats):
            for i, model_a in enumerate(request.models):
                for model_b in request.models[i + 1 :]:
                    cell_a = ok.get(f"{group.id}|{model_a}|{repeat}")
                    cell_b = ok.get(f"{group.id}|{model_b}|{repeat}")
                    if cell_a is None or cell_b is None or cell_a.run_dir is None or cell_b.run_dir is None:
                        continue
                    key = f"{group.id}|{repeat}|{model_a}|{model_b}"
                    old = previous.get(key)
                    if (
                        old is not None
                        and old.status == "ok"
                        and (old.run_a, old.run_b) == (cell_a.run_dir, cell_b.run_dir)
                        and (runs_dir / old.run_a / f"pairwise-{old.pairwise_id}.json").exists()
                    ):
                        pairs.append(old)
                        continue
                    pairs.append(
                        PairJudgment(
                            key=key,
                            group=group.id,
                            repeat=repeat,
                            model_a=model_a,
                            model_b=model_b,
                            run_a=cell_a.run_dir,
                            run_b=cell_b.run_dir,
                            status="failed",
                            error="not judged yet",
                            attempts=old.attempts if old else 0,
                        )
                    )
                    run_a, run_b = runs_dir / cell_a.run_dir, runs_dir / cell_b.run_dir
                    tasks.append(PairTask(key, run_a, run_b, tuple(group.evaluator_models), cell_a.seed))
    return pairs, tasks


async def _judge_pairs(
    comparison: Comparison,
    scheduler: Scheduler,
    cache_dir: Path | None,
    options: RunOptions,
    invocation: Invocation,
    journal: Journal,
    start: float,
) -> None:
    pairs, tasks = _plan_pairs(comparison, options.runs_dir)
    comparison.pairs = pairs
    invocation.pairs_skipped = len(pairs) - len(tasks)
    index = {p.key: i for i, p in enumerate(pairs)}
    progress = _Tracker("pairs", len(pairs), invocation.pairs_skipped, options.on_progress, start)

    def pair_done(task: PairTask, outcome: PairOutcome) -> None:
        i = index[task.key]
        pair = comparison.pairs[i]
        winner = None
        if outcome.outcome is not None:
            winner = {"a": pair.model_a, "b": pair.model_b, "tie": "tie"}[outcome.outcome]
        comparison.pairs[i] = pair.model_copy(
            update={
                "status": outcome.status,
                "outcome": outcome.outcome,
                "winner": winner,
                "criteria": outcome.criteria,
                "pairwise_id": outcome.pairwise_id,
                "model_calls": outcome.meter.model_calls,
                "cached_calls": outcome.meter.cached_calls,
                "attempts": pair.attempts + 1,
                "error": outcome.error,
            }
        )
        invocation.pairs_run += 1
        invocation.model_calls += outcome.meter.model_calls
        invocation.cached_calls += outcome.meter.cached_calls
        journal.append("pair", dump_record(comparison.pairs[i]))
        progress.finished(outcome.status == "ok", outcome.meter.completion_tokens)

    progress.emit()
    await scheduler.run(tasks, pair_runner(cache_dir, options.model_factory), on_start=progress.started, on_done=pair_done)
