"""The two ways one judge grades a run: criterion by criterion (the default), or the whole rubric in one answer.

Both show the criteria in an order shuffled by the judge's seed (reversed on request, for the position-bias
check) and record where each criterion stood. Both raise `judge.JudgeFailed` when the judge gives no valid
answer; the caller records that judge as failed and goes on with the others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from interview_sim.config import Criterion, Rubric
from interview_sim.errors import ModelCallError
from interview_sim.grading import criterion as crit
from interview_sim.grading import judge
from interview_sim.grading.grades import CriterionGrade, JudgeGrade
from interview_sim.grading.judge_session import JudgeSession

Mode = Literal["criterion", "rubric"]
MODES: tuple[Mode, ...] = ("criterion", "rubric")


def _weighted(grades: list[CriterionGrade], rubric: Rubric) -> float:
    weights = {c.id: c.weight for c in rubric.criteria}
    return round(sum(g.value * weights[g.criterion] for g in grades) / sum(weights.values()), 4)


async def _ask(session: JudgeSession, ref: str, seed: int, kind: str, asking: dict[str, Any]) -> judge.Asked:
    """One bounded ask; a model-call failure or no valid answer becomes JudgeFailed (raw answers kept)."""
    model = await session.model(ref)
    log: list[judge.Attempt] = []
    try:
        asked = await judge.ask_structured(
            model,
            log=log,
            seed=seed,
            repeat_penalty=session.agent.repeat_penalty,
            think=session.agent.think,
            on_completion=session.recorder(ref, seed, kind),
            **asking,
        )
    except ModelCallError as exc:
        session.keep_raw(ref, seed, log)
        raise judge.JudgeFailed(str(exc)) from None
    session.keep_raw(ref, seed, asked.attempts)
    if asked.value is None:
        raise judge.JudgeFailed(f"{ref} (seed {seed}): {asked.error}")
    return asked


async def grade_criteria(
    session: JudgeSession, rubric: Rubric, ref: str, seed: int, temperature: float, max_tokens: int, *, reverse: bool = False
) -> JudgeGrade:
    """One call per criterion, each a fresh prompt with the transcript and that criterion alone."""
    model = await session.model(ref)
    turns = judge.candidate_turns(session.transcript)
    quotes = judge.quotable_sentences(turns)
    order = crit.presentation_order(rubric, seed, reverse=reverse)
    grades: dict[str, CriterionGrade] = {}
    sources: set[str] = set()
    lo, hi = rubric.scale.min, rubric.scale.max
    for position, criterion in enumerate(order):
        output_model = crit.output_model(criterion, rubric, quotes)
        schema = crit.schema_for(criterion, output_model)

        def build(short: bool, c: Criterion = criterion, s: dict[str, Any] = schema) -> list[Any]:
            block = judge.render_transcript(session.transcript, shorten_interviewer=short)
            return crit.messages(session.agent, rubric, c, block, s, model)

        prompt = judge.fit_prompt(model, build, max_tokens, "the grading prompt")

        def check(answer: BaseModel) -> list[str]:
            return judge.unfound_quotes({"evidence": answer.evidence}, turns)  # type: ignore[attr-defined]

        asked = await _ask(
            session,
            ref,
            seed,
            f"grade:{criterion.id}",
            {
                "messages": prompt,
                "parse": judge.parser(output_model, check),
                "schema": schema,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "top_logprobs": judge.TOP_LOGPROBS,
            },
        )
        probabilities, source = crit.score_probabilities(asked.completion, lo, hi)
        sources.add(source)
        answer: Any = asked.value
        grades[criterion.id] = CriterionGrade(
            criterion=criterion.id,
            score=answer.score,
            rationale=answer.rationale.strip(),
            evidence=answer.evidence,
            position=position,
            expected_score=probabilities.expected if probabilities else None,
            probabilities=probabilities.probabilities if probabilities else None,
            probability_mass=probabilities.mass if probabilities else None,
        )
    in_rubric_order = [grades[c.id] for c in rubric.criteria]
    name = {c.id: c.name for c in rubric.criteria}
    strengths = [f"{name[g.criterion]}: {g.rationale}" for g in in_rubric_order if g.score >= hi - 1]
    weaknesses = [f"{name[g.criterion]}: {g.rationale}" for g in in_rubric_order if g.score <= lo + 1]
    return JudgeGrade(
        judge=ref,
        model=session.model_name(ref),
        seed=seed,
        temperature=temperature,
        repeat_penalty=session.agent.repeat_penalty,
        criteria=in_rubric_order,
        overall=_weighted(in_rubric_order, rubric),
        strengths=strengths[:5],
        weaknesses=weaknesses[:5],
        attempts=sum(1 for r in session.raw if r.judge == ref and r.seed == seed),
        usage=session.usage_of(ref, seed, "grade"),
        mode="criterion",
        order=[c.id for c in order],
        probabilities="; ".join(sorted(sources)),
    )


async def grade_rubric(
    session: JudgeSession, rubric: Rubric, ref: str, seed: int, temperature: float, max_tokens: int, *, reverse: bool = False
) -> JudgeGrade:
    """Every criterion in one answer, the criteria in the judge's shuffled order."""
    model = await session.model(ref)
    order = crit.presentation_order(rubric, seed, reverse=reverse)
    shown = rubric.model_copy(update={"criteria": order})
    turns = judge.candidate_turns(session.transcript)
    output_model = judge.grade_output_model(shown, judge.quotable_sentences(turns))
    schema = judge.json_schema(output_model)
    prompt = judge.fit_prompt(
        model,
        lambda short: judge.grade_messages(
            session.agent, shown, judge.render_transcript(session.transcript, shorten_interviewer=short), schema, model
        ),
        max_tokens,
        "the grading prompt",
    )

    def check(answer: BaseModel) -> list[str]:
        fields = judge.criterion_fields(answer, shown)
        return judge.unfound_quotes({f"criteria.{cid}.evidence": f.evidence for cid, f in fields.items()}, turns)

    asked = await _ask(
        session,
        ref,
        seed,
        "grade",
        {
            "messages": prompt,
            "parse": judge.parser(output_model, check),
            "schema": schema,
            "max_tokens": max_tokens,
            "temperature": temperature,
        },
    )
    fields = judge.criterion_fields(asked.value, shown)
    position = {c.id: n for n, c in enumerate(order)}
    grades = [
        CriterionGrade(
            criterion=c.id,
            score=fields[c.id].score,
            rationale=fields[c.id].rationale.strip(),
            evidence=fields[c.id].evidence,
            position=position[c.id],
        )
        for c in rubric.criteria
    ]
    answer: Any = asked.value
    return JudgeGrade(
        judge=ref,
        model=session.model_name(ref),
        seed=seed,
        temperature=temperature,
        repeat_penalty=session.agent.repeat_penalty,
        criteria=grades,
        overall=_weighted(grades, rubric),
        strengths=answer.strengths,
        weaknesses=answer.weaknesses,
        recommendations=answer.recommendations,
        attempts=len(asked.attempts),
        usage=session.usage_of(ref, seed, "grade"),
        mode="rubric",
        order=[c.id for c in order],
        probabilities="sampled scores only: expected scores are read in criterion mode",
    )
