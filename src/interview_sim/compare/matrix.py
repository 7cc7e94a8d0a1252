"""Compare models on the same scenario, and sweep topics: cells, resume, cache, concurrency, leaderboards.

A *cell* is one model in the compared role on one repeat of one group (a scenario with one solution topic).
Every cell is an ordinary run folder (`runs/<scenario-id>/<run-id>/`) made by `session.run_scenario`, then
graded by `evaluate.evaluate_run`; the other agents, the evaluator included, are the same in every cell, and
repeat r uses seed `seed + r` for every agent, so the models of one repeat see the same seeds.

A comparison lives in `runs/comparisons/<id>/`: `comparison.json` (the request, every cell and pairwise
judgment, the leaderboard) and `comparison.csv` (the leaderboard). The id is a hash of the request, so
running the same command again resumes: finished cells are kept, failed and unfinished ones run again.
Each finished cell and pair is appended to `records.jsonl` at once (see `journal`), and `comparison.json` is
written when the batch starts, ends or is interrupted, so a killed batch loses at most the cells in flight
and a big batch costs the same per cell as a small one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from interview_sim.compare.cells import (
    ModelFactory,
)
from interview_sim.compare.comparison import (
    CompareRole,
    Comparison,
    ComparisonRequest,
    GroupInfo,
    ProgressSink,
)
from interview_sim.compare.execution import CellGroup, RunOptions, execute
from interview_sim.compare.executors import ExecutorChoice, ExecutorKind, check_executor
from interview_sim.config import LoadedScenario, LoadedSweep, load_agent, load_scenario, load_sweep, project_root
from interview_sim.errors import BatchError, ConfigError
from interview_sim.models import create_model
from interview_sim.session import prepare_scenario

# ---------------------------------------------------------------------------------------------- planning


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
) -> CellGroup:
    other = _other_role(role)
    if fixed_model is not None:
        # Through the session's own overrides, so a panel's interviewers all get the fixed model too.
        if other == "interviewer":
            loaded = prepare_scenario(loaded, interviewer_model=fixed_model)
        else:
            loaded = prepare_scenario(loaded, candidate_model=fixed_model)
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
    return CellGroup(info=info, scenario=loaded)


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
    executor: ExecutorChoice,
) -> RunOptions:
    check_executor(executor)
    hosts: list[str] = []
    if ollama_hosts:
        from interview_sim.models.ollama import resolve_host

        try:
            hosts = list(dict.fromkeys(resolve_host(h) for h in ollama_hosts))
        except ConfigError as exc:
            raise BatchError(f"--ollama-hosts: {exc}") from None
    return RunOptions(concurrency, tuple(hosts), per_endpoint, cache, fresh, Path(runs_dir), on_progress, model_factory, executor)


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
    executor: ExecutorKind = "local",
    ray_address: str = "auto",
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
        model_factory: builds a model from a reference; defaults to the registry (with Ray, it is sent to
            the tasks, so it must pickle).
        executor: "local" (this process) or "ray" (every cell a task on a Ray cluster; needs the `ray` extra).
        ray_address: the Ray cluster: "auto", "host:port" or "ray://host:10001".

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
        executor=ExecutorChoice(executor, ray_address),
    )
    return await execute(request, {group.info.id: group}, options)


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
    executor: ExecutorKind = "local",
    ray_address: str = "auto",
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
    groups: dict[str, CellGroup] = {}
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
        executor=ExecutorChoice(executor, ray_address),
    )
    return await execute(request, groups, options)
