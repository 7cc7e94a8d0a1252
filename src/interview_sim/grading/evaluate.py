"""Grading runs against their scenario's rubric: structured grades, several judges, agreement, pairwise verdicts.

A judge is asked for JSON matching a pydantic model built from the rubric (every criterion once, scores on the
scale, verbatim evidence); answers that don't validate are re-asked with the error, a bounded number of times.
A grade that never validates is recorded as a failed evaluation with the judge's raw outputs: no score is ever
defaulted or made up. Each evaluation is a new `evaluation-<id>.json` in the run folder, and the judges' model
calls join the run's transcript (role `evaluator`), so its usage ledger and cost block include them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from interview_sim import lookup
from interview_sim.catalog import note_run
from interview_sim.config import AgentSpec, Rubric, load_agent, load_scenario
from interview_sim.errors import ConfigError, EvaluationError, InterviewSimError, ModelCallError, RecordError
from interview_sim.files import exclusive_lock, parse_json, read_text, record_folder
from interview_sim.grading import gate, judge
from interview_sim.grading.grades import (
    EVALUATION_SCHEMA_VERSION,
    CalibrationState,
    CriterionGrade,
    CriterionSummary,
    Evaluation,
    JudgeFailure,
    JudgeGrade,
    PairwiseResult,
    PairwiseVerdict,
    RawOutput,
    Screen,
    ScreenFinding,
    Side,
    agreement,
    merge_lists,
    summarise,
    total_usage,
)
from interview_sim.grading.judge_session import JudgeSession, ModelFactory
from interview_sim.grading.modes import MODES, Mode, grade_criteria, grade_routed, grade_rubric, prompt_version
from interview_sim.grading.screen import OFF_SUBJECT, SCREEN_VERSION, SELF_ASSESSMENT, screen_transcript, subject_filter
from interview_sim.models import create_model, parse_ref
from interview_sim.record import (
    TRANSCRIPT_FILE,
    CallRecord,
    Transcript,
    Usage,
    load_transcript,
    new_run_id,
    save_calls,
    transcript_path,
    utc_now,
    write_json_atomic,
)
from interview_sim.version import version

__all__ = [
    "EVALUATION_SCHEMA_VERSION",
    "CalibrationState",
    "CriterionGrade",
    "CriterionSummary",
    "Evaluation",
    "JudgeFailure",
    "JudgeGrade",
    "PairwiseResult",
    "PairwiseVerdict",
    "RawOutput",
    "agreement",
    "evaluate_pairwise",
    "evaluate_run",
    "load_evaluations",
    "summarise",
]

LOCK_FILE = ".grading.lock"
REPEAT_TEMPERATURE = 0.7
"""Sampling temperature of repeated judges (`judges > 1`) whose agent file says 0: greedy decoding gives the
same answer whatever the seed, so repeats at temperature 0 would measure nothing."""

# ---------------------------------------------------------------------------------------------- the judges


def _evaluator_agent(transcript: Transcript, scenario_agents: dict[str, AgentSpec] | None) -> AgentSpec:
    """The evaluator agent: the run's snapshot, else the scenario's evaluator, else agents/evaluator.yaml."""
    snapshot = transcript.agents.get("evaluator")
    if snapshot:
        fields = {k: v for k, v in snapshot.items() if k in AgentSpec.model_fields}
        fields["model"] = snapshot.get("model_ref") or snapshot.get("model")
        try:
            return AgentSpec.model_validate(fields)
        except ValidationError as exc:
            raise RecordError(
                f"run {transcript.run_id}: agents.evaluator snapshot is invalid: {exc.errors()[0]['msg']}"
            ) from None
    if scenario_agents and "evaluator" in scenario_agents:
        return scenario_agents["evaluator"]
    return default_evaluator()


def default_evaluator() -> AgentSpec:
    """agents/evaluator.yaml: the judge of runs that name none (and of the calibration controls), found as ids are
    (`interview_sim.lookup`: $INTERVIEW_SIM_HOME, the working directory, the packaged one)."""
    found = lookup.find("agents/evaluator.yaml")
    if found is None:
        raise ConfigError("no agents/evaluator.yaml in $INTERVIEW_SIM_HOME, the working directory or the package")
    return load_agent(found.path)


def _rubric(transcript: Transcript, scenario: str | Path | None) -> tuple[Rubric, dict[str, AgentSpec] | None]:
    if scenario is not None:
        loaded = load_scenario(scenario)
        return loaded.spec.rubric, dict(loaded.agents)
    data = transcript.scenario.get("rubric")
    if data is None:
        raise EvaluationError(
            f"run {transcript.run_id} has no rubric in its scenario snapshot: name a scenario to grade it against (--scenario)"
        )
    try:
        return Rubric.model_validate(data), None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"run {transcript.run_id}: scenario.rubric.{'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None


_JudgeFailed = judge.JudgeFailed
_fit = judge.fit_prompt


def _save_new(run_dir: Path, prefix: str, record: BaseModel, id_field: str) -> Path:
    """Write a new record file; a clashing id (same second, same random suffix) gets a fresh one: nothing is overwritten."""
    while (path := run_dir / f"{prefix}-{getattr(record, id_field)}.json").exists():
        setattr(record, id_field, new_run_id())
    write_json_atomic(path, record)
    note_run(run_dir)  # the runs folder's index lists the run's latest grade
    return path


def _append_calls(path: Path, calls: list[CallRecord], record_id: str) -> None:
    """Add the judges' calls to the run's transcript and refresh its usage ledger and cost block."""
    if not calls:
        return
    # Two gradings of one run (a comparison's pairwise judgments run in parallel processes) must not both
    # rewrite its transcript from the same old copy and lose calls.
    with exclusive_lock(path.parent / LOCK_FILE, RecordError):
        transcript = load_transcript(path)
        for call in calls:
            call.index, call.evaluation_id = len(transcript.calls), record_id
            transcript.calls.append(call)
        if path.name == TRANSCRIPT_FILE:
            save_calls(path.parent, transcript)
        else:
            transcript.refresh_usage()
            write_json_atomic(path, transcript)


def evaluation_path(run: str | Path, evaluation_id: str) -> Path:
    """Where an evaluation of a run (folder or transcript path) is stored."""
    return transcript_path(run).parent / f"evaluation-{evaluation_id}.json"


def _refs(evaluator_models: list[str] | None, agent: AgentSpec) -> list[str]:
    refs = [r.strip() for r in (evaluator_models or [agent.model]) if r.strip()]
    if not refs:
        raise InterviewSimError("no evaluator model given")
    for ref in refs:
        parse_ref(ref)
    return refs


def _judge_temperature(agent: AgentSpec, judges: int) -> tuple[float, list[str]]:
    """The judges' sampling temperature, and a note when repeats need one above a greedy 0."""
    if judges > 1 and agent.temperature == 0:
        note = (
            f"the evaluator's temperature is 0, so its {judges} repeated judges sample at temperature {REPEAT_TEMPERATURE}"
            " (greedy repeats would be identical whatever the seed)"
        )
        return REPEAT_TEMPERATURE, [note]
    return agent.temperature, []


def _finish(evaluation: Evaluation, session: JudgeSession, rubric: Rubric) -> None:
    """Fill in the evaluation from the judges' grades and calls: usage, and when any judge graded, the summaries."""
    evaluation.raw_outputs = session.raw
    evaluation.usage = total_usage([c.usage_value() for c in session.calls])
    for call in session.calls:
        evaluation.usage_by_model[call.model] = evaluation.usage_by_model.get(call.model, Usage()) + call.usage_value()
    total = len(evaluation.judges) + len(evaluation.failed_judges)
    if evaluation.failed_judges and evaluation.judges:
        evaluation.notes.append(
            f"{len(evaluation.judges)} of {total} judges graded; {len(evaluation.failed_judges)} failed"
            f" ({evaluation.failed_judges[0].error}): the figures are over the {len(evaluation.judges)} that graded"
        )
    if evaluation.error is None and not evaluation.judges and evaluation.failed_judges:
        evaluation.error = (
            evaluation.failed_judges[0].error
            if total == 1
            else f"all {total} judges failed; first: {evaluation.failed_judges[0].error}"
        )
    if evaluation.error is None:
        evaluation.status = "ok"
        evaluation.criteria, evaluation.overall = summarise(evaluation.judges, rubric)
        evaluation.agreement, evaluation.agreement_notes = agreement(evaluation.judges, rubric)
        evaluation.strengths = merge_lists([j.strengths for j in evaluation.judges])
        evaluation.weaknesses = merge_lists([j.weaknesses for j in evaluation.judges])
        evaluation.recommendations = merge_lists([j.recommendations for j in evaluation.judges])


def _check_arguments(judges: int, mode: str) -> None:
    if judges < 1:
        raise InterviewSimError("--judges must be at least 1")
    if mode not in MODES:
        raise InterviewSimError(f"unknown grading mode {mode!r} (known: {', '.join(MODES)})")


def _screen(transcript: Transcript, rubric: Rubric, notes: list[str], *, on: bool) -> tuple[Screen, Transcript]:
    """The screen's record and the transcript the judges read (the candidate's off-subject and self-assessing
    sentences left out).

    When nothing the candidate wrote is about the subject, the judges read the transcript as recorded and the
    grade is capped, as for a flagged one: a candidate who said nothing on the subject cannot earn more."""
    if not on:
        return Screen(version=SCREEN_VERSION, action="off"), transcript
    findings = screen_transcript(transcript)
    shown, left_out = subject_filter(transcript, rubric)
    if not any(text.strip() for text in judge.candidate_turns(shown)):
        nothing = ScreenFinding(rule=OFF_SUBJECT, where="all of the candidate's text", excerpt="no sentence on the subject")
        findings.append(nothing)
        shown, left_out = transcript, []  # the judges read it all
    action: Literal["capped", "none"] = "capped" if findings else "none"
    screened = Screen(version=SCREEN_VERSION, findings=findings, action=action, left_out=left_out)
    notes += _left_out_note(screened)
    return screened, shown


def _read_by_judges(transcript: Transcript, rubric: Rubric) -> Transcript:
    """What a pairwise judge reads of a run: the subject filter's transcript, as `evaluate_run` grades (all of it
    when nothing is left)."""
    shown, _ = subject_filter(transcript, rubric)
    return shown if any(text.strip() for text in judge.candidate_turns(shown)) else transcript


_WHY_LEFT_OUT = {OFF_SUBJECT: "with no subject matter (the subject filter)", SELF_ASSESSMENT: "appraising their own answers"}


def _left_out_note(screen: Screen) -> list[str]:
    """One note per reason the filters left sentences out, with the first sentence of each."""
    notes = []
    for why, said in _WHY_LEFT_OUT.items():
        left_out = [f for f in screen.left_out if f.rule == why]
        if left_out:
            first, n = left_out[0], len(left_out)
            notes.append(
                f"the judges did not read {n} candidate sentence{'s' if n > 1 else ''} {said}, e.g. {first.where}:"
                f" {first.excerpt!r}"
            )
    return notes


def _apply_screen(evaluation: Evaluation, rubric: Rubric) -> None:
    """A grade whose transcript the screen flagged is capped at the scale's lowest point, every criterion and the
    overall score; the judges' own grades stay as they gave them, and the uncapped overall is kept beside."""
    screen = evaluation.screen
    if screen is None or screen.action != "capped" or evaluation.overall is None:
        return
    lo = rubric.scale.min
    screen.uncapped_overall = evaluation.overall
    evaluation.overall = float(lo)
    for summary in evaluation.criteria.values():
        summary.mean = min(summary.mean, float(lo))
    first = screen.findings[0]
    more = f" (and {len(screen.findings) - 1} more)" if len(screen.findings) > 1 else ""
    what = "candidate text aimed at the grader"
    if first.rule == OFF_SUBJECT:
        what = "nothing the candidate wrote is about the subject"
    evaluation.notes.append(
        f"capped at {lo}: the screen found {what} - {first.where} {first.rule}:"
        f" {first.excerpt!r}{more}; the judges' own overall was {screen.uncapped_overall:.2f}"
    )


def _calibration_state(evaluation: Evaluation, session: JudgeSession, rubric: Rubric, store: Path | None) -> CalibrationState:
    """Each judge model's state: the runs folder's calibration store first, then the record shipped for the scenario."""
    shipped = gate.shipped_calibration(evaluation.scenario_id)
    states = []
    screened = screen_key(evaluation.screen)
    for ref in evaluation.evaluator_models:
        model = session.models.get(ref)
        identity = gate.judge_identity(model) if model is not None else ref
        evaluation.judge_ids[ref] = identity
        key = gate.key(identity, rubric.content_hash(), prompt_version(evaluation.mode), evaluation.mode, screened)
        states.append(gate.lookup(store, key, shipped=shipped))
    return gate.combine(states)


def screen_key(screen: Screen | None) -> str:
    """The screen's part of a calibration key: its rules' version, or "off"."""
    return "off" if screen is None or screen.action == "off" else f"v{screen.version}"


def _new_evaluation(
    transcript: Transcript, rubric: Rubric, refs: list[str], judges: int, seed: int, mode: Mode, notes: list[str]
) -> Evaluation:
    return Evaluation(
        interview_sim_version=version(),
        evaluation_id=new_run_id(),
        run_id=transcript.run_id,
        scenario_id=transcript.scenario_id,
        status="failed",
        evaluator_models=refs,
        judges_per_model=judges,
        seed=seed,
        rubric_hash=rubric.content_hash(),
        rubric=rubric.model_dump(mode="json"),
        scale_min=rubric.scale.min,
        scale_max=rubric.scale.max,
        mode=mode,
        prompt_version=prompt_version(mode),
        notes=notes,
        started_at=utc_now(),
    )


async def evaluate_run(
    run: str | Path,
    *,
    evaluator_models: list[str] | None = None,
    judges: int = 1,
    seed: int | None = None,
    scenario: str | Path | None = None,
    model_factory: ModelFactory = create_model,
    max_tokens: int | None = None,
    mode: Mode = "criterion",
    reverse_criteria: bool = False,
    calibration_store: Path | None = None,
    screen: bool = True,
) -> Evaluation:
    """Grade a run against its rubric and record the evaluation in the run folder.

    Args:
        run: a run folder or a transcript path.
        evaluator_models: judge model references (default: the run's evaluator agent's model, else
            agents/evaluator.yaml's).
        judges: gradings per model, with seeds seed, seed+1, ...; each counts on its own, a failed one is
            recorded as failed and the others still grade.
        seed: the first judge's seed (default: the evaluator agent's).
        scenario: grade against this scenario's rubric instead of the run's snapshot.
        model_factory: builds a model from a reference; defaults to the registry.
        max_tokens: cap on each answer (default: the evaluator agent's max_tokens).
        mode: "criterion" (a call per criterion, the default), "rubric" (all in one answer) or "routed" (`modes`).
        reverse_criteria: show the criteria in the reverse of each judge's shuffled order (position-bias check).
        calibration_store: where calibration results are kept (default: the nearest `_calibration` folder
            above the run's).
        screen: cap the grade of a run the injection screen flags (`grading.screen`); off measures a judge alone.

    Returns:
        The evaluation, also written as `evaluation-<id>.json` beside the transcript, with its judge's
        calibration state. The judges' calls are appended to the transcript (role `evaluator`) and its usage
        ledger and cost block are refreshed.

    Raises:
        EvaluationError: no judge gave a valid grade. The failed evaluation, with every raw answer, is
            recorded first.
        InterviewSimError: an unreadable run, unknown or unready models, bad arguments (nothing is recorded).
    """
    _check_arguments(judges, mode)
    path = transcript_path(run)
    record_folder(path.parent)  # the grade is written there: refuse a linked folder before any judge is called
    transcript = load_transcript(path)
    rubric, scenario_agents = _rubric(transcript, scenario)
    agent = _evaluator_agent(transcript, scenario_agents)
    refs = _refs(evaluator_models, agent)
    if not judge.candidate_turns(transcript):
        raise EvaluationError(f"run {transcript.run_id} has no candidate turns to grade")
    base_seed = seed if seed is not None else agent.seed
    temperature, notes = _judge_temperature(agent, judges)
    cap = max_tokens or agent.max_tokens
    evaluation = _new_evaluation(transcript, rubric, refs, judges, base_seed, mode, notes)
    evaluation.screen, shown = _screen(transcript, rubric, evaluation.notes, on=screen)
    grade = {"criterion": grade_criteria, "rubric": grade_rubric, "routed": grade_routed}[mode]
    session = JudgeSession(shown, agent, evaluation.evaluation_id, model_factory, base_seed)
    try:
        for ref in refs:
            await session.model(ref)  # fail fast on unknown or unready models, before any grading
        for ref, k in itertools.product(refs, range(judges)):
            try:
                graded = await grade(session, rubric, ref, base_seed + k, temperature, cap, reverse=reverse_criteria)
            except _JudgeFailed as exc:
                evaluation.failed_judges.append(JudgeFailure(judge=ref, seed=base_seed + k, error=str(exc)))
            else:
                evaluation.judges.append(graded)
        store = calibration_store if calibration_store is not None else gate.find_store(path.parent)
        evaluation.calibration = _calibration_state(evaluation, session, rubric, store)
    finally:
        await session.aclose()
    _finish(evaluation, session, rubric)
    _apply_screen(evaluation, rubric)
    evaluation.ended_at = utc_now()
    saved = _save_new(path.parent, "evaluation", evaluation, "evaluation_id")
    _append_calls(path, session.calls, evaluation.evaluation_id)
    if evaluation.status == "failed":
        raise EvaluationError(f"evaluation failed: {evaluation.error} (raw outputs recorded in {saved})", evaluation)
    return evaluation


def load_evaluations(run: str | Path) -> list[Evaluation]:
    """Every evaluation of a run (folder or transcript path), oldest first. Raises RecordError on a bad file."""
    folder = transcript_path(run).parent
    found = []
    for file in folder.glob("evaluation-*.json"):
        try:
            found.append(Evaluation.model_validate(parse_json(read_text(file, RecordError), RecordError, str(file))))
        except ValidationError as exc:
            raise RecordError(f"{file}: {exc.errors()[0]['msg']}") from None
    return sorted(found, key=lambda e: (e.started_at, e.evaluation_id))


# ---------------------------------------------------------------------------------------------- pairwise


_FLIP: dict[str, Side] = {"first": "b", "second": "a", "tie": "tie"}
_KEEP: dict[str, Side] = {"first": "a", "second": "b", "tie": "tie"}


def combine_orders(ab: Side, ba: Side) -> Side:
    """FastChat's rule: a verdict counts only if it survives swapping the order; otherwise it is a tie."""
    return ab if ab == ba else "tie"


def _majority(votes: list[Side]) -> Side:
    a, b = votes.count("a"), votes.count("b")
    return "a" if a > b else "b" if b > a else "tie"


async def _verdict(
    session: JudgeSession,
    rubric: Rubric,
    ref: str,
    seed: int,
    order: Literal["ab", "ba"],
    first: Transcript,
    second: Transcript,
    max_tokens: int,
) -> PairwiseVerdict:
    model = await session.model(ref)
    output_model = judge.pairwise_output_model(rubric)
    schema = judge.json_schema(output_model)
    messages = _fit(
        model,
        lambda short: judge.pairwise_messages(
            session.agent,
            rubric,
            judge.render_transcript(first, label="first", shorten_interviewer=short),
            judge.render_transcript(second, label="second", shorten_interviewer=short),
            schema,
            model,
        ),
        max_tokens,
        "the two transcripts",
    )
    log: list[judge.Attempt] = []
    try:
        asked = await judge.ask_structured(
            model,
            messages,
            judge.parser(output_model),
            schema=schema,
            max_tokens=max_tokens,
            temperature=session.agent.temperature,
            seed=seed,
            repeat_penalty=session.agent.repeat_penalty,
            think=session.agent.think,
            on_completion=session.recorder(ref, seed, "pairwise", order),
            log=log,
        )
    except ModelCallError as exc:
        session.keep_raw(ref, seed, log, order)
        raise _JudgeFailed(str(exc)) from None
    session.keep_raw(ref, seed, asked.attempts, order)
    if asked.value is None:
        raise _JudgeFailed(f"{ref} (order {order}): {asked.error}")
    mapping = _KEEP if order == "ab" else _FLIP
    fields = judge.criterion_fields(asked.value, rubric)
    answer: Any = asked.value
    return PairwiseVerdict(
        judge=ref,
        model=session.model_name(ref),
        seed=seed,
        order=order,
        criteria={cid: mapping[f.winner] for cid, f in fields.items()},
        overall=mapping[answer.overall.winner],
        rationales={**{cid: f.rationale for cid, f in fields.items()}, "overall": answer.overall.rationale},
        attempts=len(asked.attempts),
    )


async def evaluate_pairwise(
    run_a: str | Path,
    run_b: str | Path,
    *,
    evaluator_models: list[str] | None = None,
    seed: int | None = None,
    model_factory: ModelFactory = create_model,
    max_tokens: int | None = None,
) -> PairwiseResult:
    """Ask which run's candidate did better on each criterion, in both presentation orders.

    A judge's verdict on a criterion stands only if it is the same with either run shown first; otherwise it
    is a tie. With several judge models, each criterion goes to the run most of them chose. The result is saved
    as `pairwise-<id>.json` in run_a's folder, and the judges' calls join run_a's transcript (role `evaluator`).

    Raises:
        EvaluationError: a judge never gave a valid answer (the failed result is recorded first).
        InterviewSimError: unreadable runs, runs graded against different rubrics, unknown or unready models.
    """
    path_a, path_b = transcript_path(run_a), transcript_path(run_b)
    a, b = load_transcript(path_a), load_transcript(path_b)
    (rubric, _), (rubric_b, _) = _rubric(a, None), _rubric(b, None)
    if rubric.content_hash() != rubric_b.content_hash():
        raise EvaluationError(f"runs {a.run_id} and {b.run_id} have different rubrics: a pairwise verdict needs one rubric")
    if empty := [t.run_id for t in (a, b) if not judge.candidate_turns(t)]:
        raise EvaluationError(f"run {empty[0]} has no candidate turns to compare")
    agent = _evaluator_agent(a, None)
    refs = _refs(evaluator_models, agent)
    base_seed = seed if seed is not None else agent.seed
    result = PairwiseResult(
        interview_sim_version=version(),
        pairwise_id=new_run_id(),
        run_a=a.run_id,
        run_b=b.run_id,
        run_a_dir=str(path_a.parent),
        run_b_dir=str(path_b.parent),
        status="failed",
        evaluator_models=refs,
        seed=base_seed,
        rubric_hash=rubric.content_hash(),
        rubric=rubric.model_dump(mode="json"),
        started_at=utc_now(),
    )
    session = JudgeSession(a, agent, result.pairwise_id, model_factory, base_seed)
    cap = max_tokens or agent.max_tokens
    try:
        for ref in refs:
            await session.model(ref)
        for ref in refs:
            shown_a, shown_b = _read_by_judges(a, rubric), _read_by_judges(b, rubric)
            result.verdicts.append(await _verdict(session, rubric, ref, base_seed, "ab", shown_a, shown_b, cap))
            result.verdicts.append(await _verdict(session, rubric, ref, base_seed, "ba", shown_b, shown_a, cap))
    except _JudgeFailed as exc:
        result.error = str(exc)
    finally:
        await session.aclose()
    result.raw_outputs = session.raw
    result.usage = total_usage([c.usage_value() for c in session.calls])
    if result.error is None:
        result.status = "ok"
        pairs = [result.verdicts[i : i + 2] for i in range(0, len(result.verdicts), 2)]
        for key in [*(c.id for c in rubric.criteria), "overall"]:
            votes = []
            for ab, ba in pairs:
                x, y = (ab.overall, ba.overall) if key == "overall" else (ab.criteria[key], ba.criteria[key])
                votes.append(combine_orders(x, y))
                if x != y and key not in result.inconsistent:
                    result.inconsistent.append(key)
            if key == "overall":
                result.overall = _majority(votes)
            else:
                result.criteria[key] = _majority(votes)
    result.ended_at = utc_now()
    saved = _save_new(path_a.parent, "pairwise", result, "pairwise_id")
    for call in session.calls:
        call.metadata["pairwise_with"] = b.run_id
    _append_calls(path_a, session.calls, result.pairwise_id)
    if result.status == "failed":
        raise EvaluationError(f"pairwise comparison failed: {result.error} (raw outputs recorded in {saved})", result)
    return result
