"""Runs as Inspect AI logs (`.eval`), written by inspect_ai's own writer so that `inspect view` opens them.

One log per scenario and combination of seat models (interviewer, candidate, panelists); one sample per run, the
runs of a log being epochs of the same sample (a comparison's repeats, or runs of the same pairing). Inspect's
message roles are only system/user/assistant/tool, so each message's seat, agent and stage go in its metadata:
the candidate's turns are the assistant's, every other seat's are the user's. Each rubric criterion is a named
score (the judges' mean, the rationale as explanation, the evidence quotes, expected score and calibration state
in its metadata), beside `overall` and the judge-free health figures (`health_<name>`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interview_sim.errors import OutputError, RecordError
from interview_sim.exports.sources import ExportRun, require
from interview_sim.grading.evaluate import Evaluation, load_evaluations
from interview_sim.health import HEADLINE_LABELS, HIGHER_IS_BETTER, Health, compute_health
from interview_sim.record import Message, Transcript, Usage, load_transcript

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample
    from inspect_ai.model import ChatMessage, ModelUsage
    from inspect_ai.scorer import Score

CANDIDATE = "candidate"
"""The seat whose turns are the assistant's: the model under evaluation."""
SESSION_SEATS = ("interviewer", "candidate")


@dataclass
class InspectExport:
    """What `export_inspect` wrote."""

    logs: list[Path] = field(default_factory=list)
    samples: int = 0
    """Samples over all logs: one per run."""


@dataclass
class _Run:
    source: ExportRun
    transcript: Transcript
    evaluation: Evaluation | None
    health: Health
    seats: tuple[tuple[str, str], ...]
    """(seat, model reference) of each session seat, the log's key with the scenario."""


def _seat_models(transcript: Transcript) -> tuple[tuple[str, str], ...]:
    """Each session seat's model reference: from the agent snapshots, else from the messages it wrote."""
    seats: dict[str, str] = {}
    for seat in SESSION_SEATS:
        if seat != CANDIDATE and transcript.panel:
            continue  # a panel's seats are its panelists
        agent = transcript.agents.get(seat) or {}
        ref = agent.get("model") if not transcript.imported else None  # an import's agents name no real model
        seats[seat] = str(ref) if isinstance(ref, str) and ref else ""
    for seat_id, agent in transcript.panel.items():
        ref = agent.get("model") if isinstance(agent, dict) else None
        seats[seat_id] = str(ref) if isinstance(ref, str) and ref else ""
    for m in transcript.messages:
        seat = m.seat or m.role
        if not seats.get(seat) and m.model:
            seats[seat] = m.model
    return tuple((seat, ref or "unknown") for seat, ref in seats.items())


def _latest_ok(evaluations: list[Evaluation]) -> Evaluation | None:
    ok = [e for e in evaluations if e.status == "ok"]
    return ok[-1] if ok else None


def _load(run: ExportRun) -> _Run:
    transcript = load_transcript(run.run_dir)
    if transcript.kind != "interview":
        raise RecordError(f"{run.run_dir}: an {transcript.kind} record, not an interview: export the interview it belongs to")
    return _Run(run, transcript, _latest_ok(load_evaluations(run.run_dir)), compute_health(transcript), _seat_models(transcript))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _model_usage(by_model: dict[str, Usage]) -> dict[str, ModelUsage]:
    from inspect_ai.model import ModelUsage

    return {
        name: ModelUsage(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens, total_tokens=u.total_tokens)
        for name, u in by_model.items()
    }


def _add_usage(total: dict[str, ModelUsage], more: dict[str, ModelUsage]) -> None:
    for name, u in more.items():
        total[name] = total[name] + u if name in total else u.model_copy()


def _message_metadata(m: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seat": m.seat or m.role,
        "role": m.role,
        "agent": m.agent,
        "index": m.index,
        "model": m.model,
        "source": m.source,
        "stage": m.stage,
        "latency_s": m.latency_s,
        "cached": m.cached or None,
        "thinking": m.thinking,
        "cut_off": m.cut_off,
    }
    if m.usage is not None:
        data["prompt_tokens"] = m.usage.prompt_tokens
        data["completion_tokens"] = m.usage.completion_tokens
    if m.clock is not None:
        data["clock_elapsed_minutes"] = m.clock.elapsed_minutes
        data["clock_remaining_minutes"] = m.clock.remaining_minutes
    return {k: v for k, v in data.items() if v is not None}


def _messages(transcript: Transcript) -> list[ChatMessage]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser

    messages: list[ChatMessage] = []
    for m in transcript.messages:
        common: dict[str, Any] = {"id": f"{transcript.run_id}-{m.index}", "content": m.content, "metadata": _message_metadata(m)}
        if m.role == CANDIDATE:
            messages.append(ChatMessageAssistant(**common, model=m.model, source="generate"))
        else:
            messages.append(ChatMessageUser(**common, source="input"))
    return messages


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def criterion_scores(evaluation: Evaluation) -> dict[str, Score]:
    """One Score per rubric criterion (the judges' mean), and `overall`."""
    from inspect_ai.scorer import Score

    calibration = evaluation.calibration
    trust = {
        "calibration": calibration.state if calibration else "not calibrated",
        "calibration_summary": calibration.summary if calibration else "calibration not recorded",
        "evaluation_id": evaluation.evaluation_id,
        "judges": evaluation.evaluator_models,
    }
    scores: dict[str, Score] = {}
    for cid, summary in evaluation.criteria.items():
        grades = [(j, g) for j in evaluation.judges for g in j.criteria if g.criterion == cid]
        if len(grades) == 1:
            explanation = grades[0][1].rationale
        else:
            explanation = "\n\n".join(f"{j.judge} (seed {j.seed}): {g.rationale}" for j, g in grades)
        expected = [g.expected_score for _, g in grades if g.expected_score is not None]
        scores[cid] = Score(
            value=summary.mean,
            explanation=explanation,
            metadata={
                "criterion": summary.name,
                "weight": summary.weight,
                "evidence": (evidence := _unique(q for _, g in grades for q in g.evidence)),
                "quotes": "\n".join(f"“{q}”" for q in evidence) or "none",  # as text: the viewer folds lists away
                "expected_score": round(sum(expected) / len(expected), 4) if expected else None,
                "sampled_scores": summary.scores,
                "stdev": summary.stdev,
                "per_judge": [
                    {
                        "judge": j.judge,
                        "seed": j.seed,
                        "score": g.score,
                        "expected_score": g.expected_score,
                        "rationale": g.rationale,
                        "evidence": g.evidence,
                    }
                    for j, g in grades
                ],
                "scale": [evaluation.scale_min, evaluation.scale_max],
                **trust,
            },
        )
    if evaluation.overall is not None:
        scores["overall"] = Score(
            value=evaluation.overall,
            explanation=f"weighted mean over {len(evaluation.criteria)} criteria, {len(evaluation.judges)} judge(s)",
            metadata={"scale": [evaluation.scale_min, evaluation.scale_max], **trust},
        )
    return scores


def health_scores(health: Health) -> dict[str, Score]:
    """The headline health figures as scores (`health_<name>`, shares in [0, 1]); a figure nothing was counted for
    is left out rather than made up."""
    from inspect_ai.scorer import Score

    scores: dict[str, Score] = {}
    for name, value in health.headline().items():
        if value is None:
            continue
        scores[f"health_{name}"] = Score(
            value=value,
            explanation=f"{HEADLINE_LABELS[name]}: {value:.0%} ({'higher' if HIGHER_IS_BETTER.get(name) else 'lower'} is better)",
            metadata={"definitions_version": health.definitions_version, "judge_free": True},
        )
    return scores


def _sample(run: _Run, epoch: int) -> EvalSample:
    from inspect_ai._util.error import EvalError
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ModelOutput

    t = run.transcript
    scenario = t.scenario
    title = scenario.get("title") if isinstance(scenario.get("title"), str) else t.scenario_id
    topic = scenario.get("topic") if isinstance(scenario.get("topic"), str) else None
    solution = scenario.get("solution_topic") if isinstance(scenario.get("solution_topic"), str) else None
    candidate_ref = dict(run.seats).get(CANDIDATE, "unknown")
    answers = [m for m in t.messages if m.role == CANDIDATE]
    output = ModelOutput.from_content(candidate_ref, answers[-1].content if answers else "")
    scores = {**(criterion_scores(run.evaluation) if run.evaluation else {}), **health_scores(run.health)}
    session_calls = [c for c in t.calls if c.evaluation_id is None]
    total = (t.ended_at - t.started_at).total_seconds() if t.ended_at else None
    metadata: dict[str, Any] = {
        "run_id": t.run_id,
        "run_dir": str(run.source.run_dir),
        "scenario_id": t.scenario_id,
        "title": title,
        "seed": t.seed,
        "stop_reason": t.stop_reason,
        "seats": dict(run.seats),
        "source": t.usage.source,
        "simulated_minutes_used": t.simulated_minutes_used,
        "interview_sim_version": t.interview_sim_version,
        "evaluation_id": run.evaluation.evaluation_id if run.evaluation else None,
    }
    if t.board:
        metadata["whiteboard"] = {section.title: section.text for section in t.board}
    if run.source.comparison_id:
        metadata["comparison_id"] = run.source.comparison_id
        metadata["repeat"] = run.source.repeat
    if t.imported:
        metadata["imported"] = {"format": t.imported.format, "original_name": t.imported.original_name, "batch": t.imported.batch}
    return EvalSample(
        id=t.scenario_id,
        epoch=epoch,
        input=f"{title}: {topic}" if topic else str(title),
        target=solution or "",
        messages=_messages(t),
        output=output,
        scores=scores,
        metadata=metadata,
        model_usage=_model_usage(t.usage.including_cached.by_model),
        role_usage=_model_usage(t.usage.including_cached.by_role),
        started_at=_iso(t.started_at),
        completed_at=_iso(t.ended_at),
        total_time=round(total, 3) if total is not None else None,
        working_time=round(sum(c.latency_s for c in session_calls), 3),
        uuid=t.run_id,
        error=EvalError(message=t.error, traceback="", traceback_ansi="") if t.stop_reason == "error" and t.error else None,
    )


def _log(scenario_id: str, seats: tuple[tuple[str, str], ...], runs: list[_Run]) -> EvalLog:
    import inspect_ai
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalPlan,
        EvalPlanStep,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
    )
    from inspect_ai.model import ModelConfig

    from interview_sim.version import version

    runs = sorted(runs, key=lambda r: (r.source.repeat if r.source.repeat is not None else -1, r.transcript.started_at))
    samples = [_sample(run, epoch) for epoch, run in enumerate(runs, 1)]
    digest = hashlib.sha256(repr((scenario_id, seats, [r.transcript.run_id for r in runs])).encode()).hexdigest()
    models = dict(seats)
    roles = {seat: ModelConfig(model=ref) for seat, ref in seats if seat != CANDIDATE}
    judged = next((r.evaluation for r in runs if r.evaluation), None)
    if judged is not None:
        roles["evaluator"] = ModelConfig(model=", ".join(judged.evaluator_models))
    started = min(r.transcript.started_at for r in runs)
    ended = max((r.transcript.ended_at or r.transcript.started_at) for r in runs)
    model_usage: dict[str, ModelUsage] = {}
    role_usage: dict[str, ModelUsage] = {}
    for s in samples:
        _add_usage(model_usage, s.model_usage)
        _add_usage(role_usage, s.role_usage)
    names = _unique(name for s in samples for name in (s.scores or {}))
    results = []
    for name in names:
        values = [float(v) for s in samples if name in (s.scores or {}) for v in [(s.scores or {})[name].value]]  # type: ignore[arg-type]
        mean = round(sum(values) / len(values), 4)
        results.append(
            EvalScore(
                name=name,
                scorer=name,
                scored_samples=len(values),
                unscored_samples=len(samples) - len(values),
                metrics={"mean": EvalMetric(name="mean", value=mean)},
            )
        )
    spec = EvalSpec(
        eval_id=digest[:22],
        run_id=digest[22:44],
        created=started.isoformat(),
        task=scenario_id,
        task_id=scenario_id,
        task_display_name=scenario_id,
        task_description=str(runs[0].transcript.scenario.get("title") or scenario_id),
        dataset=EvalDataset(name=scenario_id, samples=1, sample_ids=[scenario_id]),
        model=models.get(CANDIDATE, "unknown"),
        model_roles=roles,
        config=EvalConfig(epochs=len(samples)),
        packages={"interview-sim": version(), "inspect_ai": inspect_ai.__version__},
        metadata={"exported_by": "interview-sim", "seats": models, "runs": [r.transcript.run_id for r in runs]},
    )
    plan = EvalPlan(
        name="interview-sim",
        steps=[EvalPlanStep(solver="whiteboard interview", params={"seats": models, "scenario": scenario_id})],
    )
    return EvalLog(
        status="success",
        eval=spec,
        plan=plan,
        results=EvalResults(total_samples=len(samples), completed_samples=len(samples), scores=results),
        stats=EvalStats(
            started_at=started.isoformat(), completed_at=ended.isoformat(), model_usage=model_usage, role_usage=role_usage
        ),
        samples=samples,
    )


def export_inspect(runs: list[ExportRun], out_dir: str | Path) -> InspectExport:
    """Write Inspect AI `.eval` logs of the runs into `out_dir` (made if missing), one per scenario x seat models.

    A log's file name is stable for the same runs, so exporting again replaces it rather than adding a copy.

    Raises:
        MissingExtraError: inspect_ai is not installed.
        RecordError: a run cannot be read.
        OutputError: `out_dir` is not a folder that can be written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is not a folder; -o names the folder the logs are written to")
    require("inspect_ai", "'interview-sim[inspect]'")
    from inspect_ai.log import write_eval_log

    loaded = [_load(run) for run in runs]
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[_Run]] = {}
    for run in loaded:
        groups.setdefault((run.transcript.scenario_id, run.seats), []).append(run)
    out.mkdir(parents=True, exist_ok=True)
    result = InspectExport()
    for (scenario_id, seats), members in groups.items():
        log = _log(scenario_id, seats, members)
        created = min(m.transcript.started_at for m in members).strftime("%Y-%m-%dT%H-%M-%S+00-00")
        # Inspect's own naming, `<created>_<task>_<id>.eval`, which its viewer reads the task and id from.
        path = out / f"{created}_{_slug(scenario_id).replace('_', '-')}_{log.eval.eval_id}.eval"
        write_eval_log(log, path)
        result.logs.append(path)
        result.samples += len(log.samples or [])
    return result
