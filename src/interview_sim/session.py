"""The scripted whiteboard session: stages, the simulated clock, the stop rule, and recording as it happens.

`run_scenario` loads the agents' models, then lets AutoGen run the turn-taking through `autogen_adapter`
(the only module that imports AutoGen). The engine here owns what AutoGen does not know about:

* `SessionState` is the simulated clock and the script position (which stage the interviewer is in, when
  the session stops: max turns, time budget or the end marker);
* `SessionRecorder` writes every call and message to the transcript and to `events.jsonl` as it happens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interview_sim.catalog import note_run
from interview_sim.config import SESSION_ROLES, AgentSpec, LoadedScenario, Stage, load_scenario
from interview_sim.errors import InterviewSimError, ModelCallError, ModelNotFoundError
from interview_sim.models import ChatMessage, ChatModel, Completion, ModelOptions, RetryRecord, canonical_ref, create_model
from interview_sim.models.human import PersonQuit
from interview_sim.models.thinking import ThinkSetting
from interview_sim.record import (
    EVENTS_FILE,
    BoardChange,
    CallRecord,
    ClockReading,
    EventLog,
    Message,
    MessageAdded,
    MessageUsage,
    ModelCalled,
    ModelFailed,
    RetryInfo,
    RunFinished,
    RunStarted,
    StopReason,
    Transcript,
    new_run_id,
    run_dir_for,
    save_transcript,
    utc_now,
)
from interview_sim.whiteboard import Board, board_note, parse_blocks

_AUTOGEN_ERROR_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?\w*(?:Error|Exception): ")
"""AutoGen's re-raised message starts with the original's qualified class name; the user needs only the text."""

EventSink = Callable[[RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished], None]
TextSink = Callable[[str, str], None]
"""Live text: called with (role, piece) as a model writes its turn, always on the session's event loop."""
ModelFactory = Callable[[str, ModelOptions], ChatModel]


@dataclass
class RunResult:
    """What `run_scenario` returns."""

    run_dir: Path
    transcript_path: Path
    transcript: Transcript


# ---------------------------------------------------------------------------------------------- session state


@dataclass
class _Reading:
    role: str
    clock: ClockReading
    stage: str | None
    seat: str = ""
    board_changes: list[BoardChange] = field(default_factory=list)


def agent_name(seat: str) -> str:
    """A seat's name in AutoGen (which wants Python identifiers)."""
    return seat.replace("-", "_")


@dataclass
class SessionState:
    """The simulated clock and the script position, shared by the adapters of one session."""

    scenario: LoadedScenario
    max_turns: int
    elapsed: float = 0.0
    messages: int = 0
    interviewer_turns: int = 0
    stop_reason: StopReason | None = None
    pending_stage: Stage | None = None
    readings: list[_Reading] = field(default_factory=list)
    board: Board = field(default_factory=Board)

    def __post_init__(self) -> None:
        self.seats = self.scenario.seats()
        self._by_name = {agent_name(seat): seat for seat in self.seats}
        board = self.scenario.spec.whiteboard
        seeds = [(s.title, s.text) for s in board.sections if s.text.strip()] if board else []
        self.board.apply(seeds, turn=0, author="scenario", seat=None, via="scenario")

    def seat_of(self, source: str) -> str:
        """The seat behind an AutoGen speaker name (or a seat or role name)."""
        return self._by_name.get(source, source)

    def next_interviewer_seat(self) -> str:
        """Who speaks for the interviewer next: the owner of the next stage, or the one interviewer."""
        owner = self.scenario.spec.stage_owner(self.stage_for_next_interviewer_turn())
        return owner or "interviewer"

    def board_note(self, model: ChatModel) -> str | None:
        """The whiteboard part of a prompt: None in a scenario without a board while nobody has written one."""
        spec = self.scenario.spec.whiteboard
        if spec is None and not self.board.sections:
            return None
        budget = min(spec.prompt_tokens if spec else 300, model.context_length // 4)
        wanted = [s.title for s in spec.sections] if spec else []
        return board_note(
            self.board,
            budget_tokens=budget,
            count=lambda text: model.count_tokens([ChatMessage("system", text)]),
            wanted=wanted,
        )

    @property
    def budget(self) -> float:
        return self.scenario.spec.time_budget_minutes

    @property
    def remaining(self) -> float:
        return max(0.0, self.budget - self.elapsed)

    def stage_for_next_interviewer_turn(self) -> Stage:
        """The stage of the interviewer's next turn: by the script, or wrap-up once time or turns run out."""
        spec = self.scenario.spec
        stages = spec.stages
        wrap_up = next((s for s in stages if s.kind == "wrap_up"), None)
        messages_left = self.max_turns - self.messages
        minutes_after = self.remaining - spec.minutes_per_turn.interviewer
        if wrap_up is not None and (
            messages_left <= 2 or minutes_after < spec.minutes_per_turn.candidate + spec.minutes_per_turn.interviewer
        ):
            return wrap_up
        turn = self.interviewer_turns
        for stage in stages:
            if turn < stage.turns:
                return stage
            turn -= stage.turns
        return stages[-1]

    def stage_note(self, stage: Stage) -> str:
        stages = self.scenario.spec.stages
        position = stages.index(stage) + 1
        left = _fmt(self.remaining)
        note = f"Stage {position} of {len(stages)} ({stage.kind}): {stage.instruction} You have {left} minutes left."
        if stage.kind == "wrap_up":
            note += f' To end the interview, write "{self.scenario.spec.end_marker}".'
        return note

    def advance(self, source: str, content: str, *, via: str = "block") -> StopReason | None:
        """Account for one message (clock, script position, whiteboard); returns why the session stops now, if it does."""
        spec = self.scenario.spec
        seat = self.seat_of(source)
        role, agent = self.seats.get(seat, (seat, None))
        changes = self.board.apply(
            parse_blocks(content), turn=self.messages + 1, author=agent.name if agent else seat, seat=seat, via=via
        )
        cost = spec.minutes_per_turn.interviewer if role == "interviewer" else spec.minutes_per_turn.candidate
        stage = None
        if role == "interviewer":
            stage = (self.pending_stage or self.stage_for_next_interviewer_turn()).kind
            self.pending_stage = None
            self.interviewer_turns += 1
        self.messages += 1
        self.elapsed = round(self.elapsed + cost, 4)
        clock = ClockReading(elapsed_minutes=self.elapsed, remaining_minutes=self.remaining)
        self.readings.append(_Reading(role, clock, stage, seat, changes))
        if role == "interviewer" and self.messages > 1 and spec.end_marker.lower() in content.lower():
            self.stop_reason = "end_marker"
        elif self.messages >= self.max_turns:
            self.stop_reason = "max_turns"
        elif self.elapsed >= self.budget:
            self.stop_reason = "time_budget"
        return self.stop_reason


_LAST_SENTENCE_END = re.compile(r".*[.!?][\"'”’)\]*]*(?=\s|$)", re.S)


def cut_back_to_sentence(completion: Completion) -> Completion:
    """An answer the token cap cut off mid-sentence, cut back to its last complete sentence.

    The cut text goes to `metadata["cut_at_cap"]` (and from there to the message's `cut_off`), so nothing is
    hidden; an answer with no complete sentence to keep is left as it is.
    """
    text = completion.content.rstrip()
    match = _LAST_SENTENCE_END.match(text)
    if match is None or match.end() == len(text):
        return completion
    return dataclasses.replace(
        completion, content=match.group(0), metadata={**completion.metadata, "cut_at_cap": completion.content[match.end() :]}
    )


def _on_loop(sink: TextSink, role: str) -> Callable[[str], None]:
    # llama.cpp generates in a worker thread: its pieces reach the sink through the event loop, in order and
    # before the call's result, so the renderer never runs on two threads at once.
    loop, loop_thread = asyncio.get_running_loop(), threading.get_ident()

    def piece(text: str) -> None:
        if threading.get_ident() == loop_thread:
            sink(role, text)
        else:
            loop.call_soon_threadsafe(sink, role, text)

    return piece


def _fmt(minutes: float) -> str:
    return str(int(minutes)) if float(minutes).is_integer() else f"{minutes:.1f}"


# ---------------------------------------------------------------------------------------------- recorder


class SessionRecorder:
    """Collects calls and messages into the transcript and the event log as they happen."""

    def __init__(self, transcript: Transcript, log: EventLog, sink: EventSink | None, on_text: TextSink | None = None) -> None:
        self.transcript = transcript
        self.log = log
        self.sink = sink
        self.on_text = on_text
        self.last_call: dict[str, CallRecord] = {}
        self.person_quit = False
        """Set when the person in a human seat stopped the session: it ends as `interrupted`, not as an error."""
        self.last_failure: ModelCallError | None = None

    def text_sink(self, role: str) -> Callable[[str], None] | None:
        """The `CompletionRequest.on_text` for one role's calls (None: nobody watches the text live)."""
        if self.on_text is None:
            return None
        return _on_loop(self.on_text, role)

    def emit(self, event: RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished) -> None:
        self.log.emit(event)
        if self.sink is not None:
            self.sink(event)

    def call(
        self,
        role: str,
        agent: AgentSpec,
        model: ChatModel,
        completion: Completion,
        trimmed: int,
        *,
        seat: str | None = None,
        purpose: str = "turn",
    ) -> CallRecord:
        record = completion.call_record(
            index=len(self.transcript.calls),
            role=role,
            agent=agent.name,
            ref=model.ref,
            trimmed_messages=trimmed,
            seat=seat or role,
            purpose=purpose,
        )
        self.transcript.calls.append(record)
        if purpose == "turn":
            self.last_call[seat or role] = record
        self.emit(ModelCalled(call=record))
        return record

    def failure(self, role: str, agent: AgentSpec, model: ChatModel, error: ModelCallError) -> None:
        self.last_failure = error
        retries = [
            RetryInfo(attempt=r.attempt, error=r.error, wait_s=r.wait_s) for r in error.retries if isinstance(r, RetryRecord)
        ]
        self.emit(ModelFailed(role=role, agent=agent.name, ref=model.ref, error=str(error), retries=retries))

    def message(self, role: str, agent: AgentSpec, content: str, reading: _Reading, *, from_model: bool) -> None:
        seat = reading.seat or role
        call = self.last_call.pop(seat, None) if from_model else None
        message = Message(
            index=len(self.transcript.messages),
            role=role,
            agent=agent.name,
            model=call.model if call else None,
            content=content,
            source="model" if call else "template",
            usage=MessageUsage(
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                prompt_tokens_evaluated=call.prompt_tokens_evaluated,
            )
            if call
            else None,
            cached=call.cached if call else False,
            latency_s=call.latency_s if call else None,
            clock=reading.clock,
            stage=reading.stage,
            thinking=call.thinking if call else None,
            cut_off=call.metadata.get("cut_at_cap") if call else None,
            seat=seat,
        )
        if call is not None:
            call.message_index = message.index
        self.transcript.messages.append(message)
        self.transcript.board_changes.extend(reading.board_changes)
        self.transcript.simulated_minutes_used = reading.clock.elapsed_minutes
        self.emit(MessageAdded(message=message, board_changes=reading.board_changes))


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
        from interview_sim.autogen_adapter import build_team, chat_messages

        team = build_team(loaded, models, state, recorder, seed)
        seen = 0
        async for _source, text in chat_messages(team, opening, state.next_interviewer_seat()):
            reading = state.readings[seen]
            recorder.message(reading.role, state.seats[reading.seat][1], text, reading, from_model=seen > 0)
            seen += 1
        transcript.stop_reason = state.stop_reason or "max_turns"
        if loaded.panel:
            from interview_sim.panel import debrief_panel

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
        run_id=new_run_id(started),
        scenario_id=loaded.spec.id,
        scenario={**loaded.spec.model_dump(mode="json"), "path": loaded.path},
        agents={role: _snapshot(agent, by_role.get(role)) for role, agent in loaded.agents.items()},
        panel={seat: _snapshot(agent, models.get(seat)) for seat, agent in loaded.panel.items()},
        seed=seed,
        max_turns=max_turns or loaded.spec.max_turns,
        started_at=started,
    )
