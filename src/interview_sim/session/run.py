"""Running a session: load the scenario and the seats' models, let AutoGen take turns, record the run.

`run_scenario` loads the agents' models, then lets AutoGen run the turn-taking through `autogen_adapter`
(the only module that imports AutoGen, imported inside `_run` so `interview-sim --help` never pays for it);
`SessionState` keeps the clock and the script, `SessionRecorder` writes the run as it happens, and a panel's
debriefs (`panel`) close it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interview_sim.catalog import note_run
from interview_sim.config import SESSION_ROLES, AgentSpec, LoadedScenario, load_scenario
from interview_sim.errors import InterviewSimError, ModelCallError, ModelNotFoundError
from interview_sim.models import ChatModel, ModelOptions, canonical_ref, create_model
from interview_sim.models.human import PersonQuit
from interview_sim.models.thinking import ThinkSetting
from interview_sim.record import (
    EVENTS_FILE,
    EventLog,
    RunFinished,
    RunStarted,
    Transcript,
    new_run_id,
    run_dir_for,
    save_transcript,
    utc_now,
)
from interview_sim.session.panel import debrief_panel
from interview_sim.session.recorder import EventSink, SessionRecorder, TextSink
from interview_sim.session.state import SessionState
from interview_sim.version import version

__all__ = ["ModelFactory", "RunResult", "prepare_scenario", "run_scenario"]

_AUTOGEN_ERROR_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?\w*(?:Error|Exception): ")
"""AutoGen's re-raised message starts with the original's qualified class name; the user needs only the text."""

ModelFactory = Callable[[str, ModelOptions], ChatModel]


@dataclass
class RunResult:
    """What `run_scenario` returns."""

    run_dir: Path
    transcript_path: Path
    transcript: Transcript


# ---------------------------------------------------------------------------------------------- public API


def _apply_overrides(
    scenario: LoadedScenario,
    interviewer_model: str | None,
    candidate_model: str | None,
    evaluator_model: str | None,
    think: ThinkSetting | None = None,
) -> LoadedScenario:
    overrides = {"interviewer": interviewer_model, "candidate": candidate_model, "evaluator": evaluator_model}
    agents = dict(scenario.agents)
    for role, ref in overrides.items():
        if ref is not None and not ref.strip():
            raise ModelNotFoundError(f"--{role}-model is empty: give a model reference 'provider:name'")
        if ref and role in agents:
            agents[role] = agents[role].model_copy(update={"model": canonical_ref(ref)})
    # The interviewer's model (and the think setting) is every panelist's.
    panel = {
        seat: a.model_copy(update={"model": canonical_ref(interviewer_model)}) if interviewer_model else a
        for seat, a in scenario.panel.items()
    }
    if think is not None:
        for role in SESSION_ROLES:
            if role in agents:
                agents[role] = agents[role].model_copy(update={"think": think})
        panel = {seat: a.model_copy(update={"think": think}) for seat, a in panel.items()}
    return scenario.model_copy(update={"agents": agents, "panel": panel})


def prepare_scenario(
    scenario: str | Path | LoadedScenario,
    *,
    interviewer_model: str | None = None,
    candidate_model: str | None = None,
    evaluator_model: str | None = None,
    think: ThinkSetting | None = None,
) -> LoadedScenario:
    """Load a scenario (path, id or loaded) and apply overrides: model per role, `think` for the interview agents."""
    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    return _apply_overrides(loaded, interviewer_model, candidate_model, evaluator_model, think)


async def run_scenario(
    scenario: str | Path | LoadedScenario,
    *,
    interviewer_model: str | None = None,
    candidate_model: str | None = None,
    seed: int | None = None,
    max_turns: int | None = None,
    think: ThinkSetting | None = None,
    runs_dir: str | Path = "runs",
    on_event: EventSink | None = None,
    model_factory: ModelFactory = create_model,
    on_text: TextSink | None = None,
) -> RunResult:
    """Run one scripted whiteboard session and record it.

    Args:
        scenario: a scenario file, an id from `scenarios/`, or a loaded scenario.
        interviewer_model: model reference replacing the interviewer agent's.
        candidate_model: model reference replacing the candidate agent's.
        seed: sampling seed for every agent (default: each agent file's seed).
        max_turns: messages in the session, the opening line included (default: the scenario's).
        think: thinking on/off or a level for the interviewer and candidate (default: each agent file's).
        runs_dir: where run folders are created.
        on_event: called with every event as it is recorded (live rendering).
        model_factory: builds a model from a reference; defaults to the registry.
        on_text: called with (role, piece) as models write their turns (streaming); the record is the same.

    Returns:
        The run folder, the transcript path and the transcript.

    Raises:
        InterviewSimError: bad files, models that are not ready, or a model call that failed (the run is
        then recorded with stop reason `error` before the exception propagates).
    """
    loaded = prepare_scenario(scenario, interviewer_model=interviewer_model, candidate_model=candidate_model, think=think)
    if max_turns is not None and max_turns < 1:
        raise InterviewSimError("--max-turns must be at least 1")
    models: dict[str, ChatModel] = {}
    try:
        for seat, (role, spec) in loaded.seats().items():
            options = ModelOptions(role=role, seed=seed if seed is not None else spec.seed, timeout_s=spec.timeout_s, seat=seat)
            models[seat] = model_factory(spec.model, options)
        # Fail fast, before anything is written, when a server is down or a model is missing.
        await asyncio.gather(*(m.check_ready() for m in models.values()))
        return await _run(
            loaded, models, seed=seed, max_turns=max_turns, runs_dir=Path(runs_dir), on_event=on_event, on_text=on_text
        )
    finally:
        for model in models.values():
            await model.aclose()


async def _run(
    loaded: LoadedScenario,
    models: dict[str, ChatModel],
    *,
    seed: int | None,
    max_turns: int | None,
    runs_dir: Path,
    on_event: EventSink | None,
    on_text: TextSink | None = None,
) -> RunResult:
    spec = loaded.spec
    transcript = _new_transcript(loaded, models, seed=seed, max_turns=max_turns)
    run_id = transcript.run_id
    run_dir = run_dir_for(runs_dir, spec.id, run_id)
    interviewer, candidate = loaded.agent("interviewer"), loaded.agent("candidate")
    state = SessionState(scenario=loaded, max_turns=max_turns or spec.max_turns)
    transcript.board_changes = list(state.board.changes)  # the scenario's starting board (turn 0)
    log = EventLog(run_dir / EVENTS_FILE)
    recorder = SessionRecorder(transcript, log, on_event, on_text)
    try:
        recorder.emit(
            RunStarted(
                run_id=run_id,
                scenario_id=spec.id,
                models={r: m.ref for r, m in models.items()},
                header=transcript.model_dump(mode="json"),
            )
        )
    except OSError:
        log.discard()  # e.g. a full disk: no run folder without its header, which later commands would trip on
        raise
    opening = spec.render_opening(candidate=candidate.name, interviewer=interviewer.name)
    error: InterviewSimError | None = None
    try:
        from interview_sim.session.autogen_adapter import build_team, chat_messages

        team = build_team(loaded, models, state, recorder, seed)
        seen = 0
        async for _source, text in chat_messages(team, opening, state.next_interviewer_seat()):
            reading = state.readings[seen]
            recorder.message(reading.role, state.seats[reading.seat][1], text, reading, from_model=seen > 0)
            seen += 1
        transcript.stop_reason = state.stop_reason or "max_turns"
        if loaded.panel:
            transcript.debriefs = await debrief_panel(loaded, models, transcript, state, recorder, seed)
    except (KeyboardInterrupt, asyncio.CancelledError):
        transcript.stop_reason = "interrupted"
        raise
    except InterviewSimError as exc:
        error = exc
    except (RuntimeError, PersonQuit) as exc:
        # AutoGen re-raises an agent's exception as RuntimeError(its traceback as text); the adapter recorded it.
        if recorder.person_quit:
            transcript.stop_reason = "interrupted"
        else:
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "model call failed"
            error = recorder.last_failure or ModelCallError(_AUTOGEN_ERROR_PREFIX.sub("", last))
    finally:
        if error is not None:
            transcript.stop_reason, transcript.error = "error", str(error)
        transcript.ended_at = utc_now()
        if transcript.stop_reason is None:
            transcript.stop_reason = "interrupted"
        transcript.board = state.board.snapshot()
        try:
            recorder.emit(RunFinished(stop_reason=transcript.stop_reason, error=transcript.error, debriefs=transcript.debriefs))
        finally:
            log.close()
        path = save_transcript(run_dir, transcript)
        note_run(run_dir)
    if error is not None:
        raise type(error)(f"{error} (run recorded in {run_dir})")
    return RunResult(run_dir=run_dir, transcript_path=path, transcript=transcript)


def _snapshot(agent: AgentSpec, model: ChatModel | None) -> dict[str, Any]:
    return {**agent.model_dump(mode="json"), "model_ref": agent.model, "model_name": model.name if model else None}


def _new_transcript(
    loaded: LoadedScenario, models: dict[str, ChatModel], *, seed: int | None, max_turns: int | None
) -> Transcript:
    """The transcript header of a new run: its id, the scenario, agent and panel snapshots (seats in a panel
    share the interviewer role), the limits in force."""
    chair = next(iter(loaded.panel), "interviewer")
    by_role = {"interviewer": models.get(chair), "candidate": models.get("candidate")}
    started = utc_now()
    return Transcript(
        interview_sim_version=version(),
        run_id=new_run_id(started),
        scenario_id=loaded.spec.id,
        scenario={**loaded.spec.model_dump(mode="json"), "path": loaded.path},
        agents={role: _snapshot(agent, by_role.get(role)) for role, agent in loaded.agents.items()},
        panel={seat: _snapshot(agent, models.get(seat)) for seat, agent in loaded.panel.items()},
        seed=seed,
        max_turns=max_turns or loaded.spec.max_turns,
        started_at=started,
    )
