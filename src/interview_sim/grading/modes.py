"""The ways one judge grades a run: criterion by criterion (the default), the whole rubric in one answer, or
criterion by criterion on the answers routed to each criterion (`routing`).

Each shows the criteria in an order shuffled by the judge's seed (reversed on request, for the position-bias
check) and record where each criterion stood. Both raise `judge.JudgeFailed` when the judge gives no valid
answer; the caller records that judge as failed and goes on with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from interview_sim.config import Criterion, Rubric
from interview_sim.errors import ModelCallError
from interview_sim.grading import criterion as crit
from interview_sim.grading import judge, routing
from interview_sim.grading.grades import CriterionGrade, JudgeGrade, RoutedUnit
from interview_sim.grading.judge_session import JudgeSession
from interview_sim.models import ChatMessage, ChatModel
from interview_sim.record import Transcript

Mode = Literal["criterion", "rubric", "routed"]
MODES: tuple[Mode, ...] = ("criterion", "rubric", "routed")


def prompt_version(mode: str) -> str:
    """The version of the prompts a mode asks with, as its calibration key holds it: the judge prompts'
    (`judge.PROMPT_VERSION`), and in routed mode the routing prompt's too ("2+routing1")."""
    return f"{judge.PROMPT_VERSION}+routing{routing.ROUTING_VERSION}" if mode == "routed" else judge.PROMPT_VERSION


def _weighted(grades: list[CriterionGrade], rubric: Rubric) -> float:
    weights = {c.id: c.weight for c in rubric.criteria}
    return round(sum(g.value * weights[g.criterion] for g in grades) / sum(weights.values()), 4)


@dataclass(frozen=True)
class _Prompt:
    """One grading ask as a mode makes it. What differs between the modes is data here; the asking is one."""

    kind: str
    """The calls' kind in the transcript: `grade`, or `grade:<criterion>` in criterion mode."""
    messages: Callable[[str, ChatModel], list[ChatMessage]]
    """The prompt around a rendered transcript, for this model."""
    output_model: type[BaseModel]
    schema: dict[str, Any]
    quotes: Callable[[BaseModel], dict[str, list[str]]]
    """An answer's quotes by field path: each must stand in the candidate's turns."""
    top_logprobs: int = 0
    """How many of the score tokens' probabilities to ask for (criterion mode reads expected scores from them)."""


async def _ask(
    session: JudgeSession,
    ref: str,
    seed: int,
    prompt: _Prompt,
    turns: list[str],
    temperature: float,
    max_tokens: int,
    *,
    sampling_seed: int | None = None,
    shown: Transcript | None = None,
) -> judge.Asked:
    """One bounded ask about `shown` (default: the session's transcript), the interviewer's turns shortened when
    the prompt does not fit otherwise; a model-call failure or no valid answer becomes JudgeFailed (raw answers kept)."""
    model = await session.model(ref)
    transcript = session.transcript if shown is None else shown
    messages = judge.fit_prompt(
        model,
        lambda short: prompt.messages(judge.render_transcript(transcript, shorten_interviewer=short), model),
        max_tokens,
        "the grading prompt",
    )
    log: list[judge.Attempt] = []
    try:
        asked = await judge.ask_structured(
            model,
            messages,
            judge.parser(prompt.output_model, lambda answer: judge.unfound_quotes(prompt.quotes(answer), turns)),
            schema=prompt.schema,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed if sampling_seed is None else sampling_seed,
            repeat_penalty=session.agent.repeat_penalty,
            think=session.agent.think,
            on_completion=session.recorder(ref, seed, prompt.kind),
            log=log,
            top_logprobs=prompt.top_logprobs,
        )
    except ModelCallError as exc:
        session.keep_raw(ref, seed, log)
        raise judge.JudgeFailed(str(exc)) from None
    session.keep_raw(ref, seed, asked.attempts)
    if asked.value is None:
        raise judge.JudgeFailed(f"{ref} (seed {seed}): {asked.error}")
    return asked


def _judge_grade(
    session: JudgeSession,
    rubric: Rubric,
    ref: str,
    seed: int,
    temperature: float,
    order: list[Criterion],
    grades: list[CriterionGrade],
    own: dict[str, Any],
) -> JudgeGrade:
    """One judge's grade: what every mode records, plus the mode's own fields (its lists, attempts, probabilities)."""
    return JudgeGrade(
        judge=ref,
        model=session.model_name(ref),
        seed=seed,
        temperature=temperature,
        repeat_penalty=session.agent.repeat_penalty,
        criteria=grades,
        overall=_weighted(grades, rubric),
        usage=session.usage_of(ref, seed, "grade"),
        order=[c.id for c in order],
        **own,
    )


async def grade_criteria(
    session: JudgeSession, rubric: Rubric, ref: str, seed: int, temperature: float, max_tokens: int, *, reverse: bool = False
) -> JudgeGrade:
    """One call per criterion, each a fresh prompt with the transcript and that criterion alone."""
    return await _grade_each(session, rubric, ref, seed, temperature, max_tokens, reverse=reverse, views={}, routed=None)


async def grade_routed(
    session: JudgeSession, rubric: Rubric, ref: str, seed: int, temperature: float, max_tokens: int, *, reverse: bool = False
) -> JudgeGrade:
    """Route every candidate answer to the criterion it addresses (`routing`), then one call per criterion, each on
    the answers routed to it; a criterion no answer was routed to (or none with a quotable sentence) is graded on
    the whole transcript."""
    model = await session.model(ref)
    units = routing.units(session.transcript)
    likelihoods: list[dict[str, float]] = []
    for unit in units:
        likelihood = {}
        for criterion in rubric.criteria:
            request = routing.request(unit, criterion, model, seed, session.agent.think)
            try:
                completion = await model.complete(request)
            except ModelCallError as exc:
                raise judge.JudgeFailed(f"{ref} (seed {seed}): routing {unit.where}: {exc}") from None
            session.recorder(ref, seed, f"grade:route:{criterion.id}")(completion, 1)
            likelihood[criterion.id] = round(routing.p_yes(completion), 4)
        likelihoods.append(likelihood)
    routed = [
        RoutedUnit(where=unit.where, likelihood=likelihood, criteria=went)
        for unit, likelihood, went in zip(units, likelihoods, routing.assign(likelihoods), strict=True)
    ]
    views = {}
    for c in rubric.criteria:
        chosen = [unit for unit, r in zip(units, routed, strict=True) if c.id in r.criteria]
        shown = routing.view(session.transcript, chosen)
        if chosen and judge.quotable_sentences(judge.candidate_turns(shown)):  # else: the whole transcript
            views[c.id] = (shown, [u.where for u in chosen])
    return await _grade_each(session, rubric, ref, seed, temperature, max_tokens, reverse=reverse, views=views, routed=routed)


async def _grade_each(
    session: JudgeSession,
    rubric: Rubric,
    ref: str,
    seed: int,
    temperature: float,
    max_tokens: int,
    *,
    reverse: bool,
    views: dict[str, tuple[Transcript, list[str]]],
    routed: list[RoutedUnit] | None,
) -> JudgeGrade:
    """One call per criterion on its view of the transcript (`views`; the whole transcript for a criterion not in
    it): criterion mode passes no views, routed mode the routed ones."""
    order = crit.presentation_order(rubric, seed, reverse=reverse)
    grades: dict[str, CriterionGrade] = {}
    sources: set[str] = set()
    lo, hi = rubric.scale.min, rubric.scale.max
    for position, criterion in enumerate(order):
        shown, where = views.get(criterion.id, (session.transcript, None))
        turns = judge.candidate_turns(shown)
        output_model = crit.output_model(criterion, rubric, judge.quotable_sentences(turns))
        schema = crit.schema_for(criterion, output_model)

        def messages(block: str, model: ChatModel, c: Criterion = criterion, s: dict[str, Any] = schema) -> list[ChatMessage]:
            return crit.messages(session.agent, rubric, c, block, s, model)

        prompt = _Prompt(
            kind=f"grade:{criterion.id}",
            messages=messages,
            output_model=output_model,
            schema=schema,
            quotes=lambda answer: {"evidence": answer.evidence},  # type: ignore[attr-defined]
            top_logprobs=judge.TOP_LOGPROBS,
        )
        sampling = crit.sampling_seed(seed, criterion.id)
        asked = await _ask(session, ref, seed, prompt, turns, temperature, max_tokens, sampling_seed=sampling, shown=shown)
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
            turns=where,
        )
    in_rubric_order = [grades[c.id] for c in rubric.criteria]
    name = {c.id: c.name for c in rubric.criteria}
    strengths = [f"{name[g.criterion]}: {g.rationale}" for g in in_rubric_order if g.score >= hi - 1]
    weaknesses = [f"{name[g.criterion]}: {g.rationale}" for g in in_rubric_order if g.score <= lo + 1]
    own = {
        "strengths": strengths[:5],
        "weaknesses": weaknesses[:5],
        "attempts": sum(1 for r in session.raw if r.judge == ref and r.seed == seed),
        "mode": "criterion" if routed is None else "routed",
        "probabilities": "; ".join(sorted(sources)),
        "routing": routed,
    }
    return _judge_grade(session, rubric, ref, seed, temperature, order, in_rubric_order, own)


async def grade_rubric(
    session: JudgeSession, rubric: Rubric, ref: str, seed: int, temperature: float, max_tokens: int, *, reverse: bool = False
) -> JudgeGrade:
    """Every criterion in one answer, the criteria in the judge's shuffled order."""
    order = crit.presentation_order(rubric, seed, reverse=reverse)
    shown = rubric.model_copy(update={"criteria": order})
    turns = judge.candidate_turns(session.transcript)
    output_model = judge.grade_output_model(shown, judge.quotable_sentences(turns))
    schema = judge.json_schema(output_model)

    def quotes(answer: BaseModel) -> dict[str, list[str]]:
        return {f"criteria.{cid}.evidence": f.evidence for cid, f in judge.criterion_fields(answer, shown).items()}

    prompt = _Prompt(
        kind="grade",
        messages=lambda block, model: judge.grade_messages(session.agent, shown, block, schema, model),
        output_model=output_model,
        schema=schema,
        quotes=quotes,
    )
    asked = await _ask(session, ref, seed, prompt, turns, temperature, max_tokens)
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
    own = {
        "strengths": answer.strengths,
        "weaknesses": answer.weaknesses,
        "recommendations": answer.recommendations,
        "attempts": len(asked.attempts),
        "mode": "rubric",
        "probabilities": "sampled scores only: expected scores are read in criterion mode",
    }
    return _judge_grade(session, rubric, ref, seed, temperature, order, grades, own)
