"""The evaluation records (pydantic, `schema_version` first) and the statistics over several judges.

Re-exported by `interview_sim.grading.evaluate`, which is where callers import them from.
"""

from __future__ import annotations

import itertools
import warnings
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interview_sim.config import Rubric
from interview_sim.record import Usage

EVALUATION_SCHEMA_VERSION = 1
Side = Literal["a", "b", "tie"]


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class _Versioned(_Rec):
    @model_validator(mode="before")
    @classmethod
    def _check_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            version = data.get("schema_version", EVALUATION_SCHEMA_VERSION)
            if not isinstance(version, int) or version > EVALUATION_SCHEMA_VERSION:
                raise ValueError(
                    f"schema_version {version!r} is newer than this interview-sim understands"
                    f" ({EVALUATION_SCHEMA_VERSION}): upgrade interview-sim"
                )
        return data


class CriterionGrade(_Rec):
    """One judge's grade on one criterion."""

    criterion: str
    """The rubric criterion's id."""
    score: int
    """The score the judge wrote (sampled)."""
    rationale: str
    evidence: list[str]
    """Quotes found word for word (up to whitespace and case) in the candidate's turns."""
    position: int | None = None
    """Where the criterion stood in what this judge was shown or asked, 0 = first (None in old records)."""
    expected_score: float | None = None
    """The judge's probability-weighted score over the scale's points (G-Eval), where the backend returned
    token probabilities for the score; None otherwise (see `JudgeGrade.probabilities`)."""
    probabilities: dict[int, float] | None = None
    """The judge's probability of each point of the scale at the score, renormalised over the scale."""
    probability_mass: float | None = None
    """How much of the judge's probability at that token fell on the scale's points at all (before renormalising)."""
    turns: list[str] | None = None
    """Routed mode: what this criterion was graded on ("turn 4", "section Caching"), the units routed to it. None:
    the whole transcript (criterion and rubric modes, and a routed criterion no unit went to or with nothing quotable)."""

    @property
    def value(self) -> float:
        """The score that counts: the expected score where known, else the sampled one."""
        return self.expected_score if self.expected_score is not None else float(self.score)


class RoutedUnit(_Rec):
    """Routed mode: one candidate turn or whiteboard section, how likely it addresses each criterion, and where it went."""

    where: str
    """"turn 4" (the message's number as the judges' transcript shows it) or "section <title>"."""
    likelihood: dict[str, float]
    """Per criterion id, the judge model's P(yes) that the unit addresses it."""
    criteria: list[str]
    """The criteria it was routed to."""


class JudgeGrade(_Rec):
    """One judge's complete, validated grade."""

    judge: str
    """The model reference the judge was called through."""
    model: str
    """The model's name as the backend reported it."""
    seed: int
    temperature: float
    criteria: list[CriterionGrade]
    overall: float
    """Weighted mean of this judge's criterion scores, expected scores where known (computed here, never
    asked of the model)."""
    mode: Literal["criterion", "rubric", "routed"] = "rubric"
    """criterion: one call per criterion; rubric: every criterion in one answer (old records); routed: one call per
    criterion on the units routed to it."""
    routing: list[RoutedUnit] | None = None
    """Routed mode: every unit and where it went (`grading.routing`); None in the other modes."""
    order: list[str] = Field(default_factory=list)
    """The criterion ids in the order this judge was shown (asked) them."""
    probabilities: str = "not recorded"
    """Where the expected scores come from: "token probabilities", or why there are none."""
    repeat_penalty: float | None = None
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    attempts: int
    """Asks it took: 1, or more when answers were rejected and re-asked."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens of every attempt, rejected ones included."""


class JudgeFailure(_Rec):
    """A judge that gave no valid grade: its raw answers are in `Evaluation.raw_outputs` (same judge and seed)."""

    judge: str
    seed: int
    error: str


class CalibrationState(_Rec):
    """How far the judge of an evaluation has been shown to be trustworthy, at the time it graded."""

    state: Literal["passed", "failed", "not calibrated"]
    failed_checks: list[str] = Field(default_factory=list)
    """The checks a failed calibration did not pass (e.g. "position bias", "ordering")."""
    calibration_id: str | None = None
    key: dict[str, str] = Field(default_factory=dict)
    """What the calibration is keyed by: judge model identity, rubric hash, judge-prompt version, mode."""
    summary: str
    """One line for people, e.g. "judge failed calibration: position bias, ordering - this score is not evidence"."""
    judge_qwk: dict[str, float | int | None] | None = None
    """The judge's agreement with the labelled set's known levels, as its calibration measured it: value, low,
    high (95 % interval) and n (labelled transcripts); None when that calibration graded no labelled set."""


class ScreenFinding(_Rec):
    """One piece of candidate text the injection screen found aimed at the grader (see `grading.screen`)."""

    rule: str
    """e.g. "addresses the grader", "forges a speaker", "keyword list"."""
    where: str
    """"turn 5" (numbered as the judge sees the turns) or "whiteboard section 'Plan'"."""
    excerpt: str


class Screen(_Rec):
    """What the injection screen found in a run before it was graded, and what that did to the score."""

    version: int
    """The screen's rules version (part of the calibration key)."""
    findings: list[ScreenFinding] = Field(default_factory=list)
    action: Literal["none", "capped", "off"]
    """none: nothing found; capped: every score capped at the scale's lowest point; off: not screened."""
    uncapped_overall: float | None = None
    """The judges' own overall score before the cap (capped grades only)."""
    left_out: list[ScreenFinding] = Field(default_factory=list)
    """The candidate's sentences kept from the judges, each with why (`rule`): no subject matter (version 2 on) or a
    self-assessment (version 3 on)."""


class CriterionSummary(_Rec):
    """All judges on one criterion."""

    name: str
    weight: float
    mean: float
    stdev: float
    """Sample standard deviation across judges; 0 with one judge."""
    min: float
    max: float
    scores: list[int]
    """The sampled scores, one per judge, in the order of `Evaluation.judges`."""
    values: list[float] = Field(default_factory=list)
    """The scores that count (expected where known, else sampled), one per judge; mean and spread are over these."""


class RawOutput(_Rec):
    """One answer exactly as a judge gave it, and why it was rejected (None when accepted)."""

    judge: str
    seed: int
    attempt: int
    order: Literal["ab", "ba"] | None = None
    """Pairwise only: which run was shown first."""
    content: str
    finish_reason: str
    error: str | None = None
    thinking: str | None = None
    """The judge's reasoning before this answer (thinking models); the answer alone was parsed."""


class Evaluation(_Versioned):
    """`evaluation-<id>.json`: one grading of one run. `schema_version` is always the first key."""

    schema_version: int = EVALUATION_SCHEMA_VERSION
    interview_sim_version: str | None = None
    """The interview-sim release that wrote this record (None: written before releases were recorded)."""
    evaluation_id: str
    run_id: str
    scenario_id: str
    status: Literal["ok", "failed"]
    error: str | None = None
    evaluator_models: list[str]
    judges_per_model: int = 1
    seed: int
    """Seed of the first judge of each model; judge k uses seed + k."""
    rubric_hash: str
    rubric: dict[str, Any]
    """The rubric as graded against (snapshot)."""
    scale_min: int
    scale_max: int
    judges: list[JudgeGrade] = Field(default_factory=list)
    """Every judge whose grade validated."""
    failed_judges: list[JudgeFailure] = Field(default_factory=list)
    """Every judge that gave no valid grade; the others still count. The evaluation fails only when all do."""
    mode: Literal["criterion", "rubric", "routed"] = "rubric"
    prompt_version: str | None = None
    """The judge prompts' version (part of the calibration key)."""
    calibration: CalibrationState | None = None
    """The judge's calibration state when it graded (None in old records: shown as not calibrated)."""
    judge_ids: dict[str, str] = Field(default_factory=dict)
    """Per judge model reference, what identifies its weights (file hash, Ollama digest): the calibration key."""
    criteria: dict[str, CriterionSummary] = Field(default_factory=dict)
    """Per criterion id: mean, spread and range across judges. Empty when the evaluation failed."""
    overall: float | None = None
    """Weighted mean over criteria of the judges' mean scores; None only when the evaluation failed."""
    agreement: dict[str, float | None] = Field(default_factory=dict)
    """Between judges: `krippendorff_alpha` (ordinal) and `mean_pairwise_spearman`; None when undefined."""
    agreement_notes: dict[str, str] = Field(default_factory=dict)
    """Why an agreement figure is None."""
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    """The judges' token usage, rejected attempts included."""
    usage_by_model: dict[str, Usage] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    raw_outputs: list[RawOutput] = Field(default_factory=list)
    """Every answer every judge gave, accepted or rejected."""
    started_at: datetime
    ended_at: datetime | None = None
    screen: Screen | None = None
    """The injection screen's findings and action (None in records written before it existed)."""


class PairwiseVerdict(_Rec):
    """One judge's answer for one presentation order, mapped back to the runs (a = the first run given)."""

    judge: str
    model: str
    seed: int
    order: Literal["ab", "ba"]
    criteria: dict[str, Side]
    overall: Side
    rationales: dict[str, str]
    attempts: int


class PairwiseResult(_Versioned):
    """`pairwise-<id>.json`, saved in the first run's folder. A verdict that flips with the order is a tie."""

    schema_version: int = EVALUATION_SCHEMA_VERSION
    interview_sim_version: str | None = None
    """The interview-sim release that wrote this record (None: written before releases were recorded)."""
    pairwise_id: str
    run_a: str
    run_b: str
    run_a_dir: str
    run_b_dir: str
    status: Literal["ok", "failed"]
    error: str | None = None
    evaluator_models: list[str]
    seed: int
    rubric_hash: str
    rubric: dict[str, Any]
    criteria: dict[str, Side] = Field(default_factory=dict)
    """Per criterion id: the run that did better in both orders (majority over judge models), else tie."""
    overall: Side | None = None
    """None only when the comparison failed."""
    inconsistent: list[str] = Field(default_factory=list)
    """Criteria (and `overall`) where some judge's verdict flipped with the presentation order."""
    verdicts: list[PairwiseVerdict] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    raw_outputs: list[RawOutput] = Field(default_factory=list)
    started_at: datetime
    ended_at: datetime | None = None


# ---------------------------------------------------------------------------------------------- statistics


def summarise(judges: list[JudgeGrade], rubric: Rubric) -> tuple[dict[str, CriterionSummary], float]:
    """Per criterion mean, sample stdev and range across judges (expected scores where known); overall =
    weighted mean of the means."""
    import numpy as np

    summaries: dict[str, CriterionSummary] = {}
    for criterion in rubric.criteria:
        grades = [next(g for g in j.criteria if g.criterion == criterion.id) for j in judges]
        scores = [g.score for g in grades]
        values = np.array([g.value for g in grades], dtype=float)
        summaries[criterion.id] = CriterionSummary(
            name=criterion.name,
            weight=criterion.weight,
            mean=round(float(values.mean()), 4),
            stdev=round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0,
            min=float(values.min()),
            max=float(values.max()),
            scores=scores,
            values=[round(float(v), 4) for v in values],
        )
    total_weight = sum(c.weight for c in rubric.criteria)
    overall = sum(summaries[c.id].mean * c.weight for c in rubric.criteria) / total_weight
    return summaries, round(overall, 4)


def agreement(judges: list[JudgeGrade], rubric: Rubric) -> tuple[dict[str, float | None], dict[str, str]]:
    """Agreement between judges over the rubric's criteria, and a note for each figure that is undefined.

    Krippendorff's alpha (ordinal, on the rubric's scale) treats criteria as units and judges as coders; the
    mean pairwise Spearman correlation compares each two judges' score profiles over the criteria, leaving out
    pairs where a judge gave every criterion the same score (the correlation is undefined there).
    """
    import krippendorff
    import numpy as np
    from scipy.stats import spearmanr

    ids = [c.id for c in rubric.criteria]
    matrix = np.array(
        [[next(g.score for g in j.criteria if g.criterion == cid) for cid in ids] for j in judges], dtype=float
    ).reshape(len(judges), len(ids))
    figures: dict[str, float | None] = {"krippendorff_alpha": None, "mean_pairwise_spearman": None}
    notes: dict[str, str] = {}
    if len(judges) < 2:
        reason = "undefined with one judge"
        return figures, {"krippendorff_alpha": reason, "mean_pairwise_spearman": reason}

    if len(np.unique(matrix)) < 2:
        notes["krippendorff_alpha"] = "undefined: every judge gave every criterion the same score (no variation)"
    else:
        domain = list(range(rubric.scale.min, rubric.scale.max + 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            alpha = float(krippendorff.alpha(reliability_data=matrix, value_domain=domain, level_of_measurement="ordinal"))
        if np.isfinite(alpha):
            figures["krippendorff_alpha"] = round(alpha, 4)
        else:
            notes["krippendorff_alpha"] = "undefined for these scores"

    rhos = []
    if len(ids) >= 2:
        for a, b in itertools.combinations(range(len(judges)), 2):
            if np.ptp(matrix[a]) == 0 or np.ptp(matrix[b]) == 0:
                continue
            rhos.append(float(spearmanr(matrix[a], matrix[b]).statistic))
    if rhos:
        figures["mean_pairwise_spearman"] = round(float(np.mean(rhos)), 4)
    else:
        notes["mean_pairwise_spearman"] = (
            "undefined: the rubric has one criterion"
            if len(ids) < 2
            else "undefined: in every pair, a judge gave every criterion the same score"
        )
    return figures, notes


def merge_lists(lists: list[list[str]]) -> list[str]:
    """The judges' strengths (or weaknesses, ...) in order, each once (compared up to whitespace and case)."""
    seen: set[str] = set()
    merged = []
    for item in itertools.chain.from_iterable(lists):
        key = " ".join(item.split()).casefold()
        if key and key not in seen:
            seen.add(key)
            merged.append(item.strip())
    return merged


def total_usage(usages: list[Usage]) -> Usage:
    total = Usage()
    for u in usages:
        total = total + u
    return total
