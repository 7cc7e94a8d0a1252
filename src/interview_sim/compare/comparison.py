"""The comparison record (`comparison.json`), its CSV, and how its leaderboard is computed from its cells."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from interview_sim.compare.journal import JOURNAL_FILE, read_journal
from interview_sim.errors import RecordError
from interview_sim.files import read_text
from interview_sim.grading import stats
from interview_sim.record import Usage, utc_now, write_json_atomic, write_text_atomic

SCHEMA_VERSION = 1
COMPARISONS_DIR = "comparisons"
COMPARISON_FILE = "comparison.json"
CSV_FILE = "comparison.csv"
ALL_GROUPS = "all"
"""The group of a sweep's leaderboard rows over every group together."""

CompareRole = Literal["candidate", "interviewer"]
Verdict = Literal["a", "b", "tie"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


# ---------------------------------------------------------------------------------------------- records


class GroupInfo(_Record):
    """One group of cells: a scenario run with one solution topic."""

    id: str
    scenario_id: str
    scenario_path: str
    title: str
    topic: str
    solution_topic: str
    scenario_hash: str
    """Hash of the scenario and agent files as run: editing them makes a new comparison, not a resumed one."""
    fixed_model: str
    """The model of the other session agent, held fixed across the group's cells."""
    evaluator_models: list[str]


class ComparisonRequest(_Record):
    """What was asked. The comparison id is a hash of it: the same request resumes the same comparison."""

    kind: Literal["compare", "sweep"]
    name: str
    """The scenario id (compare) or the sweep id (sweep)."""
    role: CompareRole
    models: list[str]
    repeats: int
    seed: int
    evaluator_model: str | None
    """As asked; None means each scenario's evaluator agent (resolved per group in `groups`)."""
    fixed_model: str | None
    """As asked (`--interviewer-model` / `--candidate-model`); None means each scenario's own agent."""
    max_turns: int | None
    pairwise: bool
    groups: list[GroupInfo]

    def comparison_id(self) -> str:
        # The scenario's location is left out: `scalability-issues` and `scenarios/scalability-issues.yaml`
        # are the same request. Its content is in the hash through scenario_hash.
        data = self.model_dump(mode="json", exclude={"groups": {"__all__": {"scenario_path"}}})
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return f"{self.name}-{digest[:12]}"


class Cell(_Record):
    """One model on one repeat of one group."""

    key: str
    group: str
    model: str
    repeat: int
    seed: int
    status: Literal["pending", "ok", "failed"] = "pending"
    run_dir: str | None = None
    """The run folder, relative to the runs directory (`../../<run_dir>` from comparison.json)."""
    run_id: str | None = None
    stop_reason: str | None = None
    evaluation_id: str | None = None
    overall: float | None = None
    criteria: dict[str, float] = Field(default_factory=dict)
    """Per criterion id, the judges' mean score."""
    calibration: str | None = None
    """The judge's calibration state when it graded this cell: passed, failed or not calibrated."""
    calibration_summary: str | None = None
    """The line shown beside the cell's score, e.g. "judge not calibrated - this score is not evidence"."""
    usage: Usage = Field(default_factory=Usage)
    """The compared model's usage in the run (its role only), cached calls included."""
    health: dict[str, float | None] = Field(default_factory=dict)
    """The run's judge-free health figures (interview_sim.health headline: shares in [0, 1])."""
    model_calls: int = 0
    """Calls a backend answered for this cell (session and evaluation), the last time it ran."""
    cached_calls: int = 0
    """Calls the cache answered for this cell, the last time it ran."""
    attempts: int = 0
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class PairJudgment(_Record):
    """The judge's verdict between two models' runs of the same group and repeat."""

    key: str
    group: str
    repeat: int
    model_a: str
    model_b: str
    run_a: str
    run_b: str
    status: Literal["ok", "failed"]
    outcome: Verdict | None = None
    winner: str | None = None
    """The winning model reference, or "tie"."""
    criteria: dict[str, str] = Field(default_factory=dict)
    pairwise_id: str | None = None
    model_calls: int = 0
    cached_calls: int = 0
    attempts: int = 0
    error: str | None = None


class HealthStat(_Record):
    """One health figure over a model's runs: mean share, 95% Wilson interval (None with fewer than 2 runs)."""

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    note: str | None = None
    """Why there is no interval (too few runs)."""


class Standing(BaseModel):
    """A model's standing on a leaderboard: its graded sample's mean score with an interval, its per-criterion
    means, and its pairwise record. Built by `Standing.figures`, shared by `LeaderboardRow` and `CorpusRow`."""

    mean: float | None
    """Mean overall score of the graded sample."""
    stdev: float | None
    ci_low: float | None
    ci_high: float | None
    """95% percentile-bootstrap interval of the mean (within the scale); None with too few graded scores."""
    ci_note: str | None = None
    """Why there is no interval, e.g. "too few runs for an interval (2 graded; 5 needed)"."""
    criteria: dict[str, float | None]
    """Per criterion id, the mean of the graded sample's criterion scores."""
    wins: int
    losses: int
    ties: int
    win_rate: float | None
    """(wins + ties / 2) / games, from pairwise judgments against the other models; None without any."""

    @staticmethod
    def figures(
        scores: list[float],
        criterion_scores: Iterable[Mapping[str, float]],
        criteria: list[str],
        record: stats.WinRecord,
        confidence: float,
    ) -> dict[str, Any]:
        """The standing's fields, and `n` (the graded sample's size), for a row's constructor."""
        summary = stats.mean_ci(scores, confidence)
        return {
            "n": summary.n,
            "mean": summary.mean,
            "stdev": summary.stdev,
            "ci_low": summary.ci_low,
            "ci_high": summary.ci_high,
            "ci_note": summary.note,
            "criteria": stats.key_means(criterion_scores, criteria),
            "wins": record.wins,
            "losses": record.losses,
            "ties": record.ties,
            "win_rate": record.rate,
        }


class _LeaderboardHead(_Record):
    group: str
    rank: int
    model: str
    n: int
    """Cells graded: the sample behind mean and interval."""
    cells: int
    failed: int


class LeaderboardRow(Standing, _LeaderboardHead):
    """One model in one group (or in `all` groups of a sweep). Its fields come in the order of the file: the
    head's, the standing's, then these (pydantic orders the fields of the later base first)."""

    prompt_tokens: int
    completion_tokens: int
    generation_s: float
    tokens_per_second: float | None
    """The model's own usage in its role, cached calls included (a cached answer still took those tokens);
    the speed is generation tok/s: completion tokens / generation time."""
    prompt_tokens_per_second: float | None = None
    """Prompt tokens evaluated / prompt evaluation time."""
    health: dict[str, HealthStat] = Field(default_factory=dict)
    """Per health figure (interview_sim.health headline), its mean over the model's recorded runs and interval."""


class Invocation(_Record):
    """What the latest command did: how much it ran, skipped, and called."""

    started_at: datetime
    ended_at: datetime | None = None
    wall_s: float | None = None
    fresh: bool
    cache: bool
    concurrency: int
    endpoints: list[str]
    executor: Literal["local", "ray"] = "local"
    """Where the cells ran: this process, or tasks on a Ray cluster."""
    cells_run: int = 0
    cells_skipped: int = 0
    pairs_run: int = 0
    pairs_skipped: int = 0
    model_calls: int = 0
    """Calls a backend answered during this command."""
    cached_calls: int = 0
    """Calls the cache answered during this command."""


class Comparison(_Record):
    """`comparison.json`. `schema_version` is always the first key."""

    schema_version: int = SCHEMA_VERSION
    comparison_id: str
    kind: Literal["compare", "sweep"]
    status: Literal["running", "complete"] = "running"
    request: ComparisonRequest
    confidence: float = stats.CONFIDENCE
    created_at: datetime
    updated_at: datetime
    criteria: dict[str, str] = Field(default_factory=dict)
    """Criterion id → name, over every group's rubric."""
    leaderboard: list[LeaderboardRow] = Field(default_factory=list)
    cells: list[Cell] = Field(default_factory=list)
    pairs: list[PairJudgment] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    """What to keep in mind reading the figures (no interval with one repeat, failed cells, ...)."""
    last_invocation: Invocation | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            version = data.get("schema_version", SCHEMA_VERSION)
            if isinstance(version, int) and version > SCHEMA_VERSION:
                raise ValueError(
                    f"schema_version {version} is newer than this interview-sim understands ({SCHEMA_VERSION}):"
                    " upgrade interview-sim"
                )
        return data

    def cell(self, key: str) -> Cell | None:
        return next((c for c in self.cells if c.key == key), None)

    def pair(self, key: str) -> PairJudgment | None:
        return next((p for p in self.pairs if p.key == key), None)


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot for a progress bar; `phase` is "cells" then "pairs"."""

    phase: Literal["cells", "pairs"]
    total: int
    done: int
    failed: int
    skipped: int
    running: int
    completion_tokens: int
    """Generated by the backends so far in this command (cache hits left out)."""
    elapsed_s: float

    @property
    def tokens_per_second(self) -> float | None:
        return self.completion_tokens / self.elapsed_s if self.elapsed_s > 0 and self.completion_tokens else None


ProgressSink = Callable[[BatchProgress], None]


# ---------------------------------------------------------------------------------------------- files


def comparison_dir(runs_dir: str | Path, comparison_id: str) -> Path:
    return Path(runs_dir) / COMPARISONS_DIR / comparison_id


def load_comparison(path: str | Path) -> Comparison:
    """Read a comparison from its folder or its comparison.json. Raises RecordError."""
    p = Path(path)
    file = p / COMPARISON_FILE if p.is_dir() else p
    if not file.exists():
        raise RecordError(f"{path}: no comparison there (no {COMPARISON_FILE})")
    try:
        comparison = Comparison.model_validate_json(read_text(file, RecordError))
    except ValidationError as exc:
        raise RecordError(f"{file}: {_first_error(exc)}") from None
    return apply_journal(comparison, file.parent)


def apply_journal(comparison: Comparison, folder: Path) -> Comparison:
    """The comparison with the cells and pairs appended to its journal since the summary was written."""
    records = read_journal(folder)
    if not records:
        return comparison
    cells = {c.key: i for i, c in enumerate(comparison.cells)}
    pairs = {p.key: i for i, p in enumerate(comparison.pairs)}
    for number, (kind, data) in enumerate(records, start=1):
        try:
            if kind == "cell":
                cell = Cell.model_validate(data)
                if cell.key in cells:
                    comparison.cells[cells[cell.key]] = cell
                else:
                    cells[cell.key] = len(comparison.cells)
                    comparison.cells.append(cell)
            else:
                pair = PairJudgment.model_validate(data)
                if pair.key in pairs:
                    comparison.pairs[pairs[pair.key]] = pair
                else:
                    pairs[pair.key] = len(comparison.pairs)
                    comparison.pairs.append(pair)
        except ValidationError as exc:
            raise RecordError(f"{folder / JOURNAL_FILE}: record {number}: {_first_error(exc)}") from None
    return comparison


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
    return f"{loc}: {first['msg']}"


def leaderboard_csv(comparison: Comparison) -> str:
    """The leaderboard as CSV: one row per model and group, one column per criterion."""
    criteria = list(comparison.criteria)
    columns = [
        "group", "rank", "model", "n", "cells", "failed", "mean", "stdev", "ci_low", "ci_high", "win_rate",
        "wins", "losses", "ties", "prompt_tokens", "completion_tokens", "generation_s", "tokens_per_second",
        "prompt_tokens_per_second",
    ]  # fmt: skip
    buffer = io.StringIO()
    health = sorted({name for row in comparison.leaderboard for name in row.health})
    fields = columns + [f"criterion:{c}" for c in criteria] + [f"health:{h}" for h in health]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in comparison.leaderboard:
        data = row.model_dump(mode="json")
        record = {col: "" if data[col] is None else data[col] for col in columns}
        record.update({f"criterion:{c}": "" if row.criteria.get(c) is None else row.criteria[c] for c in criteria})
        for h in health:
            stat = row.health.get(h)
            record[f"health:{h}"] = "" if stat is None or stat.mean is None else stat.mean
        writer.writerow(record)
    return buffer.getvalue()


def save_comparison(folder: Path, comparison: Comparison, *, csv_too: bool = False) -> None:
    comparison.updated_at = utc_now()
    write_json_atomic(folder / COMPARISON_FILE, comparison)
    if csv_too:
        write_text_atomic(folder / CSV_FILE, leaderboard_csv(comparison))


# ---------------------------------------------------------------------------------------------- leaderboard


def leaderboard(comparison: Comparison) -> list[LeaderboardRow]:
    """Per group (and over all groups of a sweep), one row per model, ranked by mean overall score."""
    request = comparison.request
    scopes = [g.id for g in request.groups]
    if len(scopes) > 1:
        scopes.append(ALL_GROUPS)
    rows: list[LeaderboardRow] = []
    for scope in scopes:

        def included(group: str, scope: str = scope) -> bool:
            return scope == ALL_GROUPS or group == scope

        cells = [c for c in comparison.cells if included(c.group)]
        games = [(p.model_a, p.model_b, p.outcome) for p in comparison.pairs if included(p.group) and p.outcome is not None]
        records = stats.win_records(games, request.models)
        scope_rows = []
        for model in request.models:
            mine = [c for c in cells if c.model == model]
            graded = [c for c in mine if c.status == "ok" and c.overall is not None]
            usage = sum((c.usage for c in mine), Usage())
            health = {}
            for name in sorted({k for c in mine for k in c.health}):
                values = [v for c in mine if c.run_dir and (v := c.health.get(name)) is not None]
                h = stats.share_ci(values, comparison.confidence)
                health[name] = HealthStat(n=h.n, mean=h.mean, ci_low=h.ci_low, ci_high=h.ci_high, note=h.note)
            scores = [c.overall for c in graded if c.overall is not None]
            figures = Standing.figures(
                scores, (c.criteria for c in graded), list(comparison.criteria), records[model], comparison.confidence
            )
            scope_rows.append(
                LeaderboardRow(
                    group=scope,
                    rank=0,
                    model=model,
                    cells=len(mine),
                    failed=sum(1 for c in mine if c.status != "ok"),
                    **figures,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    generation_s=round(usage.generation_s, 4),
                    tokens_per_second=usage.tokens_per_second,
                    prompt_tokens_per_second=usage.prompt_tokens_per_second,
                    health=health,
                )
            )
        scope_rows.sort(key=lambda r: (r.mean is None, -(r.mean or 0.0), -(r.win_rate or 0.0), request.models.index(r.model)))
        paired = [
            {(c.group, c.repeat): c.overall for c in cells if c.model == r.model and c.status == "ok" and c.overall is not None}
            for r in scope_rows
        ]
        ranks = stats.shared_ranks(paired)
        rows.extend(row.model_copy(update={"rank": rank}) for rank, row in zip(ranks, scope_rows, strict=True))
    return rows


def notes(comparison: Comparison) -> list[str]:
    """What to keep in mind reading the leaderboard."""
    found: list[str] = []
    rows = comparison.leaderboard
    few = sorted({r.model for r in rows if 0 < r.n < stats.MIN_SCORES_FOR_INTERVAL})
    if few:
        found.append(
            f"too few runs for an interval for {', '.join(few)}: a bootstrap interval of the mean needs at least"
            f" {stats.MIN_SCORES_FOR_INTERVAL} graded repeats (use --repeats {stats.MIN_SCORES_FOR_INTERVAL} or more)"
        )
    shared = sorted(
        {f"{r.group}: rank {r.rank}" for r in rows if sum(1 for x in rows if x.group == r.group and x.rank == r.rank) > 1}
    )
    if shared:
        found.append(
            f"shared ranks ({', '.join(shared)}): the models' difference is not significant (Wilcoxon signed-rank"
            f" over the seeds they share, p >= {stats.SIGNIFICANCE:g}; it needs at least 6 shared seeds to be)"
        )
    flat = sorted({r.model for r in rows if r.n >= stats.MIN_SCORES_FOR_INTERVAL and r.stdev == 0})
    if flat:
        found.append(
            f"{', '.join(flat)}: the same score on every repeat, so the interval has zero width"
            " (a deterministic judge or model shows no spread)"
        )
    failed = sum(1 for c in comparison.cells if c.status != "ok")
    if failed:
        found.append(f"{failed} cell(s) failed: run the same command again to retry them (finished cells are kept)")
    failed_pairs = sum(1 for p in comparison.pairs if p.status != "ok")
    if failed_pairs:
        found.append(f"{failed_pairs} pairwise judgment(s) failed: win rates leave them out")
    if comparison.request.pairwise and len(comparison.request.models) < 2:
        found.append("win rates need at least two models")
    return found
