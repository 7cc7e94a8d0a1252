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

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypedDict, Unpack

from interview_sim import lookup
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
from interview_sim.config import LoadedScenario, LoadedSweep, load_agent, load_scenario, load_sweep
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
    fallback = lookup.find("agents/evaluator.yaml")
    if fallback is None:
        raise BatchError(f"{loaded.path}: no evaluator agent and no agents/evaluator.yaml: pass --evaluator-model")
    return load_agent(fallback.path).model


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


def _check_request(models: Sequence[str], role: str, repeats: int, options: RunOptions) -> None:
    if role not in ("candidate", "interviewer"):
        raise BatchError(f"--role must be candidate or interviewer, not {role!r}")
    if not models:
        raise BatchError("no models to compare: pass --models REF,REF,...")
    if len(set(models)) != len(models):
        raise BatchError(f"--models lists a model twice: {', '.join(models)}")
    if repeats < 1:
        raise BatchError("--repeats must be at least 1")
    if options.concurrency < 1 or options.per_endpoint < 1:
        raise BatchError("--concurrency and the per-endpoint limit must be at least 1")


class BatchOptions(TypedDict, total=False):
    """How a comparison or sweep runs, not what it compares: the keyword arguments `compare_models` and `run_sweep`
    share. Each one left out takes the default named here."""

    concurrency: int
    """Cells run at once (1)."""
    ollama_hosts: Sequence[str]
    """Ollama endpoints to spread Ollama cells over (none: OLLAMA_HOST)."""
    per_endpoint: int
    """Ollama cells at once per endpoint (1)."""
    cache: bool
    """Answer identical model requests from the disk cache, `<runs_dir>/.model-cache` (False)."""
    fresh: bool
    """Start over instead of resuming an earlier run of the same request (False)."""
    runs_dir: str | Path
    """Where run folders and `comparisons/<id>/` are written ("runs")."""
    on_progress: ProgressSink | None
    """Called with a progress snapshot as cells start and finish (None)."""
    model_factory: ModelFactory
    """Builds a model from a reference (the registry's `create_model`); with Ray it is sent to the tasks, so it
    must pickle."""
    executor: ExecutorKind
    """"local" (this process) or "ray": every cell a task on a Ray cluster, which needs the `ray` extra ("local")."""
    ray_address: str
    """The Ray cluster: "auto", "host:port" or "ray://host:10001" ("auto")."""


def _options(caller: str, options: BatchOptions) -> RunOptions:
    """The options object, defaults filled in; nothing checked yet but the names (see `_checked`)."""
    unknown = sorted(set(options) - set(BatchOptions.__annotations__))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    return RunOptions(
        concurrency=options.get("concurrency", 1),
        ollama_hosts=tuple(options.get("ollama_hosts", ())),
        per_endpoint=options.get("per_endpoint", 1),
        cache=options.get("cache", False),
        fresh=options.get("fresh", False),
        runs_dir=Path(options.get("runs_dir", "runs")),
        on_progress=options.get("on_progress"),
        model_factory=options.get("model_factory", create_model),
        executor=ExecutorChoice(options.get("executor", "local"), options.get("ray_address", "auto")),
    )


def _checked(options: RunOptions) -> RunOptions:
    """The executor checked and the Ollama hosts resolved (each once), just before anything runs."""
    check_executor(options.executor)
    hosts: list[str] = []
    if options.ollama_hosts:
        from interview_sim.models.ollama import resolve_host

        try:
            hosts = list(dict.fromkeys(resolve_host(h) for h in options.ollama_hosts))
        except ConfigError as exc:
            raise BatchError(f"--ollama-hosts: {exc}") from None
    return dataclasses.replace(options, ollama_hosts=tuple(hosts))


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
    **options: Unpack[BatchOptions],
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
        **options: how the batch runs (`BatchOptions`): concurrency, ollama_hosts, per_endpoint, cache, fresh,
            runs_dir, on_progress, model_factory, executor, ray_address.

    Returns:
        The comparison, also saved as `runs/comparisons/<id>/comparison.json` and `.csv`.

    Raises:
        InterviewSimError: a bad scenario or request. Failed cells do not raise: they are recorded.
    """
    run_options = _options("compare_models", options)
    _check_request(models, role, repeats, run_options)
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
    return await execute(request, {group.info.id: group}, _checked(run_options))


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
    **options: Unpack[BatchOptions],
) -> Comparison:
    """Run a sweep file: topics × solution topics × models × repeats, with a leaderboard per group.

    Every argument left None takes the sweep file's value; the others are `compare_models`'s.

    Returns:
        The comparison (kind "sweep"), saved like a compare's; the leaderboard has rows per group and,
        with more than one group, rows over `all` groups.
    """
    run_options = _options("run_sweep", options)
    loaded = sweep if isinstance(sweep, LoadedSweep) else load_sweep(sweep)
    spec = loaded.spec
    role = role or spec.role
    models = list(models) if models else spec.models
    repeats = repeats if repeats is not None else spec.repeats
    evaluator_model = evaluator_model or spec.evaluator_model
    fixed_model = fixed_model or getattr(spec, f"{_other_role(role)}_model")
    _check_request(models, role, repeats, run_options)
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
    return await execute(request, groups, _checked(run_options))
