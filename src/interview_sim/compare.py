"""Compare models on the same scenario, and sweep topics: cells, resume, cache, concurrency, leaderboards.

A *cell* is one model in the compared role on one repeat of one group (a scenario with one solution topic).
Every cell is an ordinary run folder (`runs/<scenario-id>/<run-id>/`) made by `session.run_scenario`, then
graded by `evaluate.evaluate_run`; the other agents, the evaluator included, are the same in every cell, and
repeat r uses seed `seed + r` for every agent, so the models of one repeat see the same seeds.

A comparison lives in `runs/comparisons/<id>/`: `comparison.json` (the request, every cell and pairwise
judgment, the leaderboard) and `comparison.csv` (the leaderboard). The id is a hash of the request, so
running the same command again resumes: finished cells are kept, failed and unfinished ones run again.
`comparison.json` is rewritten atomically after every cell, so a killed batch loses at most the cells in
flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from interview_sim._batch import (
    CellOutcome,
    CellTask,
    Endpoints,
    ModelFactory,
    PairOutcome,
    PairTask,
    Scheduler,
    cell_runner,
    pair_runner,
)
from interview_sim._comparison import (
    ALL_GROUPS,
    COMPARISON_FILE,
    COMPARISONS_DIR,
    CSV_FILE,
    SCHEMA_VERSION,
    BatchProgress,
    Cell,
    CompareRole,
    Comparison,
    ComparisonRequest,
    GroupInfo,
    Invocation,
    LeaderboardRow,
    PairJudgment,
    ProgressSink,
    comparison_dir,
    leaderboard,
    leaderboard_csv,
    load_comparison,
    notes,
    save_comparison,
)
from interview_sim.config import LoadedScenario, LoadedSweep, load_agent, load_scenario, load_sweep, project_root
from interview_sim.errors import BatchError, ConfigError
from interview_sim.models import ModelOptions, create_model, parse_ref
from interview_sim.record import utc_now

__all__ = [
    "ALL_GROUPS",
    "COMPARISONS_DIR",
    "COMPARISON_FILE",
    "CSV_FILE",
    "SCHEMA_VERSION",
    "BatchProgress",
    "Cell",
    "Comparison",
    "ComparisonRequest",
    "GroupInfo",
    "Invocation",
    "LeaderboardRow",
    "PairJudgment",
    "compare_models",
    "comparison_dir",
    "leaderboard",
    "leaderboard_csv",
    "load_comparison",
    "run_sweep",
]

FINISHED_RUN = ("max_turns", "time_budget", "end_marker")
"""Stop reasons of a run that finished: its evaluation can be retried without running it again."""

# ---------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Group:
    info: GroupInfo
    scenario: LoadedScenario


@dataclass(frozen=True)
class _Options:
    concurrency: int
    ollama_hosts: tuple[str, ...]
    per_endpoint: int
    cache: bool
    fresh: bool
    runs_dir: Path
    on_progress: ProgressSink | None
    model_factory: ModelFactory


def _scenario_hash(loaded: LoadedScenario) -> str:
    data = {
        "spec": loaded.spec.model_dump(mode="json"),
        "agents": {r: a.model_dump(mode="json") for r, a in loaded.agents.items()},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _other_role(role: CompareRole) -> Literal["candidate", "interviewer"]:
    return "interviewer" if role == "candidate" else "candidate"


def _default_evaluator(loaded: LoadedScenario) -> str:
    if "evaluator" in loaded.agents:
        return loaded.agents["evaluator"].model
    fallback = project_root() / "agents" / "evaluator.yaml"
    if not fallback.exists():
        raise BatchError(f"{loaded.path}: no evaluator agent and no {fallback}: pass --evaluator-model")
    return load_agent(fallback).model


def _make_group(
    group_id: str, loaded: LoadedScenario, *, role: CompareRole, fixed_model: str | None, evaluator_model: str | None
) -> _Group:
    other = _other_role(role)
    if fixed_model is not None:
        agents = {**loaded.agents, other: loaded.agents[other].model_copy(update={"model": fixed_model})}
        loaded = loaded.model_copy(update={"agents": agents})
    info = GroupInfo(
        id=group_id,
        scenario_id=loaded.spec.id,
        scenario_path=loaded.path,
        title=loaded.spec.title,
        topic=loaded.spec.topic,
        solution_topic=loaded.spec.solution_topic,
        scenario_hash=_scenario_hash(loaded),
        fixed_model=loaded.agents[other].model,
        evaluator_models=[evaluator_model or _default_evaluator(loaded)],
    )
    return _Group(info=info, scenario=loaded)


async def _check_refs(refs: Sequence[str], factory: ModelFactory) -> None:
    """Fail before anything runs on a reference no provider knows (a typo would otherwise fail every cell)."""
    for ref in dict.fromkeys(refs):
        parse_ref(ref)
        model = factory(ref, ModelOptions())
        await model.aclose()


def _check_request(models: Sequence[str], role: str, repeats: int, concurrency: int, per_endpoint: int) -> None:
    if role not in ("candidate", "interviewer"):
        raise BatchError(f"--role must be candidate or interviewer, not {role!r}")
    if not models:
        raise BatchError("no models to compare: pass --models REF,REF,...")
    if len(set(models)) != len(models):
        raise BatchError(f"--models lists a model twice: {', '.join(models)}")
    if repeats < 1:
        raise BatchError("--repeats must be at least 1")
    if concurrency < 1 or per_endpoint < 1:
        raise BatchError("--concurrency and the per-endpoint limit must be at least 1")


def _options(
    *,
    concurrency: int,
    ollama_hosts: Sequence[str],
    per_endpoint: int,
    cache: bool,
    fresh: bool,
    runs_dir: str | Path,
    on_progress: ProgressSink | None,
    model_factory: ModelFactory,
) -> _Options:
    hosts: list[str] = []
    if ollama_hosts:
        from interview_sim.models.ollama import resolve_host

        try:
            hosts = list(dict.fromkeys(resolve_host(h) for h in ollama_hosts))
        except ConfigError as exc:
            raise BatchError(f"--ollama-hosts: {exc}") from None
    return _Options(concurrency, tuple(hosts), per_endpoint, cache, fresh, Path(runs_dir), on_progress, model_factory)


# ---------------------------------------------------------------------------------------------- public API


async def compare_models(
    scenario: str | Path,
    models: Sequence[str],
    *,
    role: CompareRole = "candidate",
    repeats: int = 1,
    seed: int = 0,
    evaluator_model: str | None = None,
    fixed_model: str | None = None,
    max_turns: int | None = None,
    pairwise: bool = True,
    concurrency: int = 1,
    ollama_hosts: Sequence[str] = (),
    per_endpoint: int = 1,
    cache: bool = False,
    fresh: bool = False,
    runs_dir: str | Path = "runs",
    on_progress: ProgressSink | None = None,
    model_factory: ModelFactory = create_model,
) -> Comparison:
    """Run `scenario` once per model and repeat with the models in `role`, grade every run, build the leaderboard.

    Args:
        scenario: a scenario id from `scenarios/` or a path.
        models: model references compared in `role`.
        role: "candidate" or "interviewer"; the other agents are held fixed.
        repeats: runs per model; repeat r uses seed `seed + r` for every agent (and the judge).
        seed: the first repeat's seed.
        evaluator_model: the judge's model (default: the scenario's evaluator agent).
        fixed_model: the model of the other session agent (default: the scenario's).
        max_turns: messages per session (default: the scenario's).
        pairwise: also judge the models' runs of the same repeat against each other (win rates).
        concurrency: cells run at once.
        ollama_hosts: Ollama endpoints to spread Ollama cells over (default: OLLAMA_HOST).
        per_endpoint: Ollama cells at once per endpoint.
        cache: answer identical model requests from the disk cache (`<runs_dir>/.model-cache`).
        fresh: start over instead of resuming an earlier run of the same request.
        runs_dir: where run folders and `comparisons/<id>/` are written.
        on_progress: called with a progress snapshot as cells start and finish.
        model_factory: builds a model from a reference (in-process cells); defaults to the registry.

    Returns:
        The comparison, also saved as `runs/comparisons/<id>/comparison.json` and `.csv`.

    Raises:
        InterviewSimError: a bad scenario or request. Failed cells do not raise: they are recorded.
    """
    _check_request(models, role, repeats, concurrency, per_endpoint)
    loaded = load_scenario(scenario)
    group = _make_group(loaded.spec.id, loaded, role=role, fixed_model=fixed_model, evaluator_model=evaluator_model)
    request = ComparisonRequest(
        kind="compare",
        name=loaded.spec.id,
        role=role,
        models=list(models),
        repeats=repeats,
        seed=seed,
        evaluator_model=evaluator_model,
        fixed_model=fixed_model,
        max_turns=max_turns,
        pairwise=pairwise,
        groups=[group.info],
    )
    options = _options(
        concurrency=concurrency,
        ollama_hosts=ollama_hosts,
        per_endpoint=per_endpoint,
        cache=cache,
        fresh=fresh,
        runs_dir=runs_dir,
        on_progress=on_progress,
        model_factory=model_factory,
    )
    return await _execute(request, {group.info.id: group}, options)


async def run_sweep(
    sweep: str | Path | LoadedSweep,
    *,
    models: Sequence[str] | None = None,
    role: CompareRole | None = None,
    repeats: int | None = None,
    seed: int | None = None,
    evaluator_model: str | None = None,
    fixed_model: str | None = None,
    max_turns: int | None = None,
    pairwise: bool | None = None,
    concurrency: int = 1,
    ollama_hosts: Sequence[str] = (),
    per_endpoint: int = 1,
    cache: bool = False,
    fresh: bool = False,
    runs_dir: str | Path = "runs",
    on_progress: ProgressSink | None = None,
    model_factory: ModelFactory = create_model,
) -> Comparison:
    """Run a sweep file: topics × solution topics × models × repeats, with a leaderboard per group.

    Every argument left None takes the sweep file's value; the others are `compare_models`'s.

    Returns:
        The comparison (kind "sweep"), saved like a compare's; the leaderboard has rows per group and,
        with more than one group, rows over `all` groups.
    """
    loaded = sweep if isinstance(sweep, LoadedSweep) else load_sweep(sweep)
    spec = loaded.spec
    role = role or spec.role
    models = list(models) if models else spec.models
    repeats = repeats if repeats is not None else spec.repeats
    evaluator_model = evaluator_model or spec.evaluator_model
    fixed_model = fixed_model or getattr(spec, f"{_other_role(role)}_model")
    _check_request(models, role, repeats, concurrency, per_endpoint)
    groups: dict[str, _Group] = {}
    for topic, scenario in zip(spec.topics, loaded.scenarios, strict=True):
        solution_topics = topic.solution_topics or [scenario.spec.solution_topic]
        for k, solution_topic in enumerate(solution_topics, 1):
            group_id = scenario.spec.id if len(solution_topics) == 1 else f"{scenario.spec.id}~{k}"
            if group_id in groups:
                raise BatchError(f"{loaded.path}: topics: {scenario.spec.id} is listed twice")
            variant = scenario.model_copy(update={"spec": scenario.spec.model_copy(update={"solution_topic": solution_topic})})
            groups[group_id] = _make_group(group_id, variant, role=role, fixed_model=fixed_model, evaluator_model=evaluator_model)
    request = ComparisonRequest(
        kind="sweep",
        name=spec.sweep,
        role=role,
        models=models,
        repeats=repeats,
        seed=seed if seed is not None else spec.seed,
        evaluator_model=evaluator_model,
        fixed_model=fixed_model,
        max_turns=max_turns if max_turns is not None else spec.max_turns,
        pairwise=pairwise if pairwise is not None else spec.pairwise,
        groups=[g.info for g in groups.values()],
    )
    options = _options(
        concurrency=concurrency,
        ollama_hosts=ollama_hosts,
        per_endpoint=per_endpoint,
        cache=cache,
        fresh=fresh,
        runs_dir=runs_dir,
        on_progress=on_progress,
        model_factory=model_factory,
    )
    return await _execute(request, groups, options)


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
    group: _Group, model: str, repeat: int, request: ComparisonRequest, previous: Comparison | None, runs_dir: Path
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
            "usage": outcome.usage,
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


async def _execute(request: ComparisonRequest, groups: dict[str, _Group], options: _Options) -> Comparison:
    evaluators = [ref for g in request.groups for ref in g.evaluator_models]
    await _check_refs([*request.models, *(g.fixed_model for g in request.groups), *evaluators], options.model_factory)
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
    folder.mkdir(parents=True, exist_ok=True)
    save_comparison(folder, comparison)

    from interview_sim.models.cache import default_cache_dir

    cache_dir = default_cache_dir(runs_dir).resolve() if options.cache else None
    scheduler = Scheduler(
        concurrency=options.concurrency,
        endpoints=Endpoints(list(options.ollama_hosts), options.per_endpoint),
        cache_dir=cache_dir,
    )
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
            save_comparison(folder, comparison)
            cells_progress.finished(outcome.status == "ok", outcome.meter.completion_tokens)

        cells_progress.emit()
        await scheduler.run(
            tasks, cell_runner(cache_dir, options.model_factory), on_start=cells_progress.started, on_done=cell_done
        )
        if request.pairwise and len(request.models) > 1:
            await _judge_pairs(comparison, scheduler, cache_dir, options, invocation, folder, start)
    finally:
        scheduler.close()
        invocation.ended_at = utc_now()
        invocation.wall_s = round(time.perf_counter() - start, 4)
        save_comparison(folder, comparison)

    comparison.leaderboard = leaderboard(comparison)
    comparison.notes = notes(comparison)
    comparison.status = "complete"
    save_comparison(folder, comparison, csv_too=True)
    return comparison


async def _judge_pairs(
    comparison: Comparison,
    scheduler: Scheduler,
    cache_dir: Path | None,
    options: _Options,
    invocation: Invocation,
    folder: Path,
    start: float,
) -> None:
    request, runs_dir = comparison.request, options.runs_dir
    ok = {c.key: c for c in comparison.cells if c.status == "ok" and c.run_dir}
    previous = {p.key: p for p in comparison.pairs}
    pairs: list[PairJudgment] = []
    tasks: list[PairTask] = []
    for group in request.groups:
        evaluator_models = tuple(group.evaluator_models)
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
                    tasks.append(
                        PairTask(key, runs_dir / cell_a.run_dir, runs_dir / cell_b.run_dir, evaluator_models, cell_a.seed)
                    )
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
        save_comparison(folder, comparison)
        progress.finished(outcome.status == "ok", outcome.meter.completion_tokens)

    progress.emit()
    await scheduler.run(tasks, pair_runner(cache_dir, options.model_factory), on_start=progress.started, on_done=pair_done)
