"""A leaderboard from runs that already exist: rank the models of a whole corpus by their evaluations.

`compare` runs new cells; this reads the runs folder's index instead (measured and imported runs alike), so a
user who re-graded their 2024 AutoGen 0.2 corpus with a new judge can rank its candidate models. Per model:
the mean overall score of its graded runs with a 95 % percentile-bootstrap interval (none with too few runs),
ranks shared where the Mann-Whitney U test does not separate two models' scores,
per-criterion means, and a win rate
from the pairwise verdicts recorded between runs of different models (`evaluate --pairwise`). One judge is
used throughout (scores of different judges are not comparable): the one given, else the judge that graded
the most of the selected runs; each run counts once, with that judge's latest successful evaluation.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from interview_sim.catalog import EvaluationRow, RunFilter, open_catalog
from interview_sim.compare.comparison import Standing
from interview_sim.errors import RecordError
from interview_sim.grading import stats

Role = Literal["candidate", "interviewer"]


class _CorpusHead(BaseModel):
    rank: int
    model: str
    runs: int
    """Selected runs where this model played the role."""
    n: int
    """Of those, runs graded by the judge: the sample behind mean and interval."""


class CorpusRow(Standing, _CorpusHead):
    """One model's standing (the head's fields, then the standing's: pydantic orders the later base first);
    its win rate is from pairwise verdicts between runs of different models."""


class CorpusLeaderboard(BaseModel):
    filter: str
    role: Role
    judge: str | None
    runs: int
    rows: list[CorpusRow] = Field(default_factory=list)
    criteria: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _pick_judge(graded: dict[str, list[EvaluationRow]], judge: str | None, notes: list[str]) -> str | None:
    counts = Counter(e.judge for evaluations in graded.values() for e in {x.judge: x for x in evaluations}.values())
    if judge is not None:
        if judge not in counts:
            known = ", ".join(sorted(counts)) or "none"
            raise RecordError(f"no selected run has an evaluation by judge {judge!r} (judges found: {known})")
        return judge
    if not counts:
        return None
    chosen = max(sorted(counts), key=lambda j: counts[j])
    others = sorted(j for j in counts if j != chosen)
    if others:
        notes.append(f"scores by judge {chosen} only ({counts[chosen]} runs); also graded by: {', '.join(others)} (--judge)")
    return chosen


def _ranks(rows: list[CorpusRow], overall: dict[str, list[float]], notes: list[str]) -> list[int]:
    """Competition ranks for rows sorted best first: graded models share a rank unless the Mann-Whitney U test
    separates their scores (a corpus's runs are not paired by seed, so the test is unpaired); ungraded ones follow."""
    graded = [r for r in rows if overall[r.model]]
    ranks = stats.shared_ranks_by([overall[r.model] for r in graded], stats.unpaired_p_value)
    ranks += [len(graded) + i for i in range(1, len(rows) - len(graded) + 1)]
    tiers = Counter(ranks[: len(graded)])
    shared = sorted(f"rank {rank}" for rank, count in tiers.items() if count > 1)
    if shared:
        notes.append(
            f"shared ranks ({', '.join(shared)}): the models' scores do not differ significantly (Mann-Whitney U over"
            f" their runs, p >= {stats.SIGNIFICANCE:g}; the runs are not paired by seed)"
        )
    return ranks


def leaderboard_from_runs(
    runs_dir: str | Path,
    where: RunFilter | str = "all",
    *,
    role: Role = "candidate",
    judge: str | None = None,
    confidence: float = stats.CONFIDENCE,
) -> CorpusLeaderboard:
    """Rank the models found in existing runs by those runs' evaluations.

    Args:
        runs_dir: the runs folder (its index is built if missing).
        where: a RunFilter or its text form (`scenario=...,model=...,source=imported,batch=...`, or `all`).
        role: whose models are ranked.
        judge: the judge whose grades count (as `runs` shows it, e.g. `scripted:judge`); default: the most used.

    Raises:
        RecordError: no runs folder, a bad filter, or an unknown judge.
    """
    selection = RunFilter.parse(where) if isinstance(where, str) else where
    root = Path(runs_dir)
    if not root.is_dir():
        raise RecordError(f"{root}: no such runs folder")
    notes: list[str] = []
    with open_catalog(root) as catalog:
        runs = [r for r in catalog.runs(selection) if r.kind == "interview"]
        model_of = {r.run_dir: (r.candidate_model if role == "candidate" else r.interviewer_model) for r in runs}
        unknown = [d for d, m in model_of.items() if not m]
        if unknown:
            notes.append(f"{len(unknown)} run(s) left out: their {role}'s model is not known")
        graded = {d: [e for e in catalog.evaluations(d) if e.status == "ok" and e.overall is not None] for d in model_of}
        chosen = _pick_judge(graded, judge, notes)
        games_rows = catalog.pairwise(model_of)
    latest = {d: [e for e in evaluations if e.judge == chosen][-1:] for d, evaluations in graded.items()}
    models = sorted({m for m in model_of.values() if m})
    games = [
        (model_of[a], model_of[b], outcome)
        for a, b, outcome, by, _ in games_rows
        if model_of.get(a) and model_of.get(b) and model_of[a] != model_of[b] and (chosen is None or by == chosen)
    ]
    records = stats.win_records([(str(a), str(b), o) for a, b, o in games], models)
    criteria = sorted({c for evaluations in latest.values() for e in evaluations for c in e.criteria})
    rows = []
    overall_by_model: dict[str, list[float]] = {}
    for model in models:
        mine = [d for d, m in model_of.items() if m == model]
        scores = [e for d in mine for e in latest[d]]
        criterion_scores = [{k: v for k, v in e.criteria.items() if v is not None} for e in scores]
        overall = overall_by_model[model] = [e.overall for e in scores if e.overall is not None]
        figures = Standing.figures(overall, criterion_scores, criteria, records[model], confidence)
        rows.append(CorpusRow(rank=0, model=model, runs=len(mine), **figures))
    rows.sort(key=lambda r: (r.mean is None, -(r.mean or 0.0), -(r.win_rate or 0.0), r.model))
    ranks = _ranks(rows, overall_by_model, notes)
    ungraded = sum(r.runs - r.n for r in rows)
    if ungraded:
        notes.append(f"{ungraded} run(s) have no evaluation by {chosen or 'any judge'}: grade them with `evaluate --where ...`")
    if not games and len(models) > 1:
        notes.append("no pairwise verdicts between runs of different models: no win rates (`evaluate --pairwise RUN_A RUN_B`)")
    return CorpusLeaderboard(
        filter=where if isinstance(where, str) else "custom",
        role=role,
        judge=chosen,
        runs=len(runs),
        rows=[r.model_copy(update={"rank": rank}) for rank, r in zip(ranks, rows, strict=True)],
        criteria=criteria,
        notes=notes,
    )
