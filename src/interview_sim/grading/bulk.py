"""Grading many runs at once: a list or a filter of the runs folder, a few at a time, resumable.

Resume: a run that already has a successful evaluation by the same judge (models and judges per model) against
the same rubric (its content hash) is skipped, so re-running a bulk grading after an interruption, or after
adding runs, grades only what is missing. A run that fails to grade is reported and the others go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from interview_sim.catalog import RunFilter, list_runs
from interview_sim.errors import InterviewSimError
from interview_sim.grading.evaluate import _evaluator_agent, _refs, _rubric, evaluate_run, load_evaluations
from interview_sim.grading.judge_session import ModelFactory
from interview_sim.models import create_model
from interview_sim.record import load_transcript, transcript_path


class BulkResult(BaseModel):
    """What became of one run in a bulk grading."""

    run_dir: str
    status: Literal["graded", "skipped", "failed"]
    overall: float | None = None
    evaluation_id: str | None = None
    reason: str | None = None


BulkProgress = Callable[[int, int, BulkResult], None]


def select_runs(runs_dir: str | Path, where: RunFilter) -> list[Path]:
    """The interview runs of a runs folder that match a filter, oldest first."""
    root = Path(runs_dir)
    return [root / r.run_dir for r in list_runs(root, where) if r.kind == "interview"]


def _already_graded(run: Path, evaluator_models: list[str] | None, judges: int, scenario: str | Path | None) -> str | None:
    """The id of a successful evaluation of this run by the same judge against the same rubric, if any."""
    transcript = load_transcript(run)
    rubric, scenario_agents = _rubric(transcript, scenario)
    refs = _refs(evaluator_models, _evaluator_agent(transcript, scenario_agents))
    digest = rubric.content_hash()
    for evaluation in reversed(load_evaluations(run)):
        same_judge = evaluation.evaluator_models == refs and evaluation.judges_per_model == judges
        if evaluation.status == "ok" and same_judge and evaluation.rubric_hash == digest:
            return evaluation.evaluation_id
    return None


async def evaluate_runs(
    runs: list[Path],
    *,
    evaluator_models: list[str] | None = None,
    judges: int = 1,
    seed: int | None = None,
    scenario: str | Path | None = None,
    max_tokens: int | None = None,
    concurrency: int = 1,
    resume: bool = True,
    progress: BulkProgress | None = None,
    model_factory: ModelFactory = create_model,
) -> list[BulkResult]:
    """Grade each run (as `evaluate_run` does), `concurrency` at a time.

    Args:
        runs: run folders or transcript paths.
        resume: skip runs already graded by the same judge against the same rubric.
        progress: called after each run with (done, total, its result).
        The others: as `evaluate_run`.

    Returns:
        One result per run, in the order given.
    """
    if concurrency < 1:
        raise InterviewSimError("--concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(run: Path) -> BulkResult:
        nonlocal done
        folder = str(transcript_path(run).parent)
        async with gate:
            try:
                previous = _already_graded(run, evaluator_models, judges, scenario) if resume else None
                if previous is not None:
                    result = BulkResult(run_dir=folder, status="skipped", evaluation_id=previous, reason="already graded")
                else:
                    evaluation = await evaluate_run(
                        run,
                        evaluator_models=evaluator_models,
                        judges=judges,
                        seed=seed,
                        scenario=scenario,
                        model_factory=model_factory,
                        max_tokens=max_tokens,
                    )
                    result = BulkResult(
                        run_dir=folder, status="graded", overall=evaluation.overall, evaluation_id=evaluation.evaluation_id
                    )
            except InterviewSimError as exc:
                result = BulkResult(run_dir=folder, status="failed", reason=str(exc))
        done += 1
        if progress:
            progress(done, len(runs), result)
        return result

    return list(await asyncio.gather(*(one(r) for r in runs)))
