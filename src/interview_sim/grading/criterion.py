"""Criterion-wise grading: one fresh prompt per criterion, its behavioural anchors, and the score's probabilities.

Asking for every criterion in one answer lets a small judge write a pattern instead of grades (1, 2, 3, 4, 5 in
rubric order, whatever the transcript). Here each call holds the transcript and one criterion alone, with what a
low, middle and high answer look like for it, and the criteria are asked in an order shuffled per judge seed.

Where the backend returns token probabilities, the score is also read as a distribution over the scale's points
at the score token (G-Eval): the expected score keeps what the judge was unsure about, which a sampled integer
throws away.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from interview_sim.config import AgentSpec, Criterion, Rubric
from interview_sim.grading.judge import (
    _DATA_RULE,
    MAX_QUOTE_CHARS,
    MAX_QUOTES,
    MIN_QUOTE_WORDS,
    _Out,
    _Quote,
    _shape_hint,
    json_schema,
)
from interview_sim.models import ChatMessage, ChatModel, Completion
from interview_sim.text import ascii_int

_SCORE_KEY = re.compile(r'"score"\s*:\s*')


def presentation_order(rubric: Rubric, seed: int, *, reverse: bool = False) -> list[Criterion]:
    """The criteria in the order one judge sees them: shuffled by its seed, and reversed on request.

    Reversing the shuffled order (rather than shuffling the reversed rubric) moves every criterion to the
    mirror position, which is what the position-bias check compares.
    """
    order = list(rubric.criteria)
    random.Random(seed).shuffle(order)
    return order[::-1] if reverse else order


def levels_text(criterion: Criterion, rubric: Rubric) -> str:
    """The criterion's behavioural anchors, lowest first, and what the points between them mean."""
    lo, hi = rubric.scale.min, rubric.scale.max
    lines = [f"{point} = {text}" for point, text in sorted(criterion.levels.items())]
    described = set(criterion.levels)
    between = [p for p in range(lo, hi + 1) if p not in described]
    if not lines:
        labels = rubric.scale.labels
        lines = [f"{p} = {labels[p]}" for p in range(lo, hi + 1) if p in labels] or [f"{lo} = lowest, {hi} = highest"]
    elif between:
        lines.append(f"{', '.join(map(str, between))}: between the neighbouring levels.")
    return "\n".join(lines)


def sampling_seed(judge_seed: int, criterion_id: str) -> int:
    """The seed of one criterion's call: the judge's seed mixed with the criterion's id (stable across runs).

    One seed for all of a judge's criterion calls drew the same random number for every score token: a sampling
    judge (repeats at temperature 0.7) then gave the same quantile of each criterion's distribution, e.g. 5, 1, 1,
    1, 1 from five distributions centred near 2.5 (seen in the test-retest of the default judge). Greedy decoding
    ignores the seed, so a greedy judge's grades do not depend on this.
    """
    return (judge_seed * 1_000_003 + zlib.crc32(criterion_id.encode("utf-8"))) % 2**31


CRITERION_RATIONALE_CHARS = 200


def output_model(criterion: Criterion, rubric: Rubric, quotes: list[str] | None) -> type[BaseModel]:
    """One criterion's answer: the score first, then the evidence quotes, then a one-sentence rationale.

    The score comes first, as in G-Eval: its probabilities are then the judge's reading of the transcript and
    the level descriptions alone, not of its own evidence and prose, which a small model lets drift (it loops,
    or copies one sentence across criteria). The evidence is still required and checked word for word.
    """
    lo, hi = rubric.scale.min, rubric.scale.max
    quote = (
        Annotated[str, Field(min_length=1, max_length=MAX_QUOTE_CHARS, json_schema_extra={"enum": list(quotes)})]
        if quotes
        else _Quote
    )
    score = Annotated[int, Field(ge=lo, le=hi, strict=True, json_schema_extra={"enum": list(range(lo, hi + 1))})]
    rationale = Annotated[str, Field(min_length=1, max_length=CRITERION_RATIONALE_CHARS)]
    return create_model(
        "CriterionGrade",
        __base__=_Out,
        score=(score, ...),
        evidence=(
            list[quote],  # type: ignore[valid-type]
            Field(min_length=1, max_length=MAX_QUOTES, description="Exact quotes from the candidate's turns."),
        ),
        rationale=(rationale, Field(description="One sentence.")),
    )


def schema_for(criterion: Criterion, model: type[BaseModel]) -> dict[str, Any]:
    """The answer's JSON schema, titled with the criterion (a schema-reading judge sees what it grades)."""
    schema = json_schema(model)
    schema["title"] = criterion.name
    schema["description"] = criterion.description
    return schema


def messages(
    agent: AgentSpec,
    rubric: Rubric,
    criterion: Criterion,
    transcript_block: str,
    schema: dict[str, Any],
    model: ChatModel,
) -> list[ChatMessage]:
    """The prompt for one criterion. Everything before the criterion is the same for every criterion of a
    transcript, so a backend that reuses its prompt cache (llama.cpp) evaluates the transcript once per judge."""
    example = '{"score": integer, "evidence": [quotes], "rationale": text}'
    system = "\n\n".join(
        [
            agent.system_prompt.strip(),
            "Task: grade the candidate in the interview transcript the user sends on the one criterion named after it.",
            "Rules:\n"
            '- Grade only what the candidate said (role="candidate"); the interviewer\'s turns are context.\n'
            f"- {_DATA_RULE}\n"
            "- score: the level of the criterion whose description fits the candidate's answers best. If the candidate"
            " never addresses the criterion, give the lowest level.\n"
            f"- evidence: 1 to 3 quotes copied word for word from the candidate's turns (at least {MIN_QUOTE_WORDS} words"
            " each), the ones that matter most for the criterion.\n"
            "- rationale: one short sentence on why.",
            _shape_hint(schema, model, example),
        ]
    )
    user = (
        "Here is the interview transcript to grade.\n\n"
        f"{transcript_block}\n\n"
        "The transcript has ended.\n\n"
        f"Criterion: {criterion.name}. {criterion.description}\n"
        f"Levels:\n{levels_text(criterion, rubric)}\n\n"
        f"Grade the candidate on {criterion.name} only, and answer with the JSON object only."
    )
    return [ChatMessage("system", system), ChatMessage("user", user)]


@dataclass(frozen=True)
class ScoreProbabilities:
    """The judge's distribution over the scale's points at the score token, renormalised over the scale."""

    probabilities: dict[int, float]
    expected: float
    mass: float
    """The share of the judge's probability that fell on the scale's points at all."""


NO_PROBABILITIES = "the backend returns no token probabilities"


def point_mass(top: tuple[tuple[str, float], ...], lo: int, hi: int) -> dict[int, float]:
    """The probability of each integer lo..hi among one position's most likely tokens (a token " 3" counts as 3)."""
    mass: dict[int, float] = {}
    for text, logprob in top:
        point = ascii_int(text.strip())
        if point is not None and lo <= point <= hi:
            mass[point] = mass.get(point, 0.0) + math.exp(logprob)
    return mass


def score_probabilities(completion: Completion | None, lo: int, hi: int) -> tuple[ScoreProbabilities | None, str]:
    """The score's probabilities from the completion's per-token alternatives, or None and why there are none."""
    if completion is None or completion.top_logprobs is None:
        return None, NO_PROBABILITIES
    match = _SCORE_KEY.search(completion.content)
    if match is None:
        return None, "no score in the answer"
    at = match.end()
    before = [p for p in completion.top_logprobs if p.offset <= at]
    if not before:
        return None, "no token probabilities at the score"
    mass = point_mass(before[-1].top, lo, hi)
    total = sum(mass.values())
    if total <= 0:
        return None, "no point of the scale among the most likely tokens at the score"
    probabilities = {point: round(mass.get(point, 0.0) / total, 4) for point in range(lo, hi + 1)}
    expected = sum(point * p / total for point, p in mass.items())
    return ScoreProbabilities(probabilities, round(expected, 4), round(total, 4)), "token probabilities"
