"""Replay a recorded run: the turns to play back, and an exact offline re-execution (`--rerun`).

Turns are numbered from 1 (the opening line) everywhere a user sees them; `index` is the message's
0-based position in the transcript.

Playback pacing is data, not sleeping: `pacing()` says how long to wait before each turn and the CLI
does the waiting, so tests never sleep.

`rerun()` rebuilds the scenario from the transcript's own snapshots and runs the real session engine
with every agent's model replaced by a `replay:` model that answers with the recorded responses
(see `interview_sim.models.replay`). No model is called, so it works offline. The new run's messages are
compared with the original's on role, agent, content, stage and simulated clock; the first difference is
reported.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from interview_sim.config import AgentSpec, LoadedScenario, ScenarioSpec
from interview_sim.errors import InterviewSimError, ReplayError, field_path
from interview_sim.health import Health, compute_health
from interview_sim.models import ChatModel, ModelOptions, create_model
from interview_sim.models.replay import RECORDING_KEY, Recording
from interview_sim.record import (
    BoardChange,
    BoardSection,
    Message,
    MessageAdded,
    ModelCalled,
    ModelFailed,
    PanelDebrief,
    RunFinished,
    RunStarted,
    Transcript,
    board_after,
    load_transcript,
    run_dir_for,
    save_transcript,
    transcript_path,
)

if TYPE_CHECKING:
    from interview_sim.session import EventSink

UNKNOWN_LATENCY_S = 2.0
"""Nominal pause before a model-written turn whose latency was never recorded (imported runs)."""
DEFAULT_SPEED = 10.0
"""Playback runs this many times faster than the recorded latencies unless told otherwise."""
COMPARED_FIELDS: tuple[str, ...] = ("role", "agent", "content", "stage", "clock")

DifferenceField = Literal["role", "agent", "content", "stage", "clock", "missing", "extra", "stop_reason", "board", "debriefs"]


# ---------------------------------------------------------------------------------------------- playback


class ReplayTurn(BaseModel):
    """One message as the replay shows it."""

    turn: int
    """1-based: turn 1 is the opening line."""
    index: int
    speaker: str
    role: str
    model: str | None
    source: str
    stage: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached: bool
    latency_s: float | None
    """The recorded wall time of the call that wrote it (None: template text or imported)."""
    elapsed_minutes: float | None
    remaining_minutes: float | None
    content: str
    thinking: str | None = None
    """The reasoning a thinking model wrote before this answer (not part of it)."""
    seat: str | None = None
    board_changes: list[BoardChange] = []
    """The whiteboard changes this turn made."""


class Replay(BaseModel):
    """A run ready to play back: what it was and its turns from the requested one on."""

    run_id: str
    kind: str
    scenario_id: str
    transcript: str
    """Path of the transcript played."""
    stop_reason: str | None
    started_at: str
    models: dict[str, str]
    imported: dict[str, Any] | None
    replay_of: str | None
    total_turns: int
    usage: dict[str, Any]
    """The AutoGen 0.2 cost block of the run."""
    warnings: list[str]
    health: Health
    """The run's judge-free health figures (interview_sim.health), over all its turns."""
    turns: list[ReplayTurn]
    starting_board: list[BoardSection] = []
    """The whiteboard before the first turn (the scenario's sections)."""
    board: list[BoardSection] = []
    """The whiteboard at the end."""
    debriefs: list[PanelDebrief] = []
    """Panel runs: each panelist's verdict."""


def _turn(message: Message, changes: list[BoardChange]) -> ReplayTurn:
    return ReplayTurn(
        seat=message.seat,
        board_changes=[c for c in changes if c.turn == message.index + 1],
        turn=message.index + 1,
        index=message.index,
        speaker=message.agent,
        role=message.role,
        model=message.model,
        source=message.source,
        stage=message.stage,
        prompt_tokens=message.usage.prompt_tokens if message.usage else None,
        completion_tokens=message.usage.completion_tokens if message.usage else None,
        cached=message.cached,
        latency_s=message.latency_s,
        elapsed_minutes=message.clock.elapsed_minutes if message.clock else None,
        remaining_minutes=message.clock.remaining_minutes if message.clock else None,
        content=message.content,
        thinking=message.thinking,
    )


def replay_run(run: str | Path, *, turn: int = 1) -> Replay:
    """Load a run (folder, transcript.json or an attached record such as `analysis-<id>.json`) for playback.

    Args:
        run: the run folder or a transcript path.
        turn: the first turn to include (1 = the opening line).

    Returns:
        The run's description and its turns from `turn` on.

    Raises:
        RecordError: the run cannot be read.
        ReplayError: `turn` is outside the run.
    """
    transcript = load_transcript(run)
    total = len(transcript.messages)
    if turn < 1 or (total and turn > total):
        raise ReplayError(f"--turn {turn} is outside the run: it has {total} turn{'s' if total != 1 else ''} (1..{total})")
    imported = transcript.imported.model_dump(mode="json") if transcript.imported else None
    return Replay(
        run_id=transcript.run_id,
        kind=transcript.kind,
        scenario_id=transcript.scenario_id,
        transcript=str(transcript_path(run)),
        stop_reason=transcript.stop_reason,
        started_at=transcript.started_at.isoformat(),
        models=transcript.models_by_role(),
        imported=imported,
        replay_of=transcript.replay_of,
        total_turns=total,
        usage=transcript.cost or transcript.usage.cost_block(),
        warnings=list(transcript.usage.warnings),
        health=compute_health(transcript),
        turns=[_turn(m, transcript.board_changes) for m in transcript.messages[turn - 1 :]],
        starting_board=board_after([c for c in transcript.board_changes if c.turn == 0]),
        board=transcript.board,
        debriefs=transcript.debriefs,
    )


def pacing(turns: list[ReplayTurn], *, speed: float = DEFAULT_SPEED, instant: bool = False) -> list[float]:
    """Seconds to wait before showing each turn: the recorded latency divided by `speed`.

    Template text (the opening line) appears at once; a model turn without a recorded latency (imported
    runs) waits a nominal `UNKNOWN_LATENCY_S`. `instant` waits for nothing.
    """
    if not 0 < speed < math.inf:  # NaN too
        raise ReplayError(f"--speed must be positive, got {speed:g}")
    if instant:
        return [0.0 for _ in turns]
    waits = []
    for t in turns:
        if t.source == "template":
            latency = 0.0
        elif t.latency_s is None:
            latency = UNKNOWN_LATENCY_S
        else:
            latency = t.latency_s
        waits.append(round(latency / speed, 6))
    return waits


# ---------------------------------------------------------------------------------------------- rerun


class Difference(BaseModel):
    """Where a rerun first departs from the original."""

    turn: int | None
    """1-based turn; None when every message matched but the session stopped differently."""
    field: DifferenceField
    """role, agent, content, stage, clock, missing (the rerun stopped early), extra (it went on), stop_reason."""
    original: Any
    rerun: Any


class RerunResult(BaseModel):
    """What `rerun` returns."""

    original_run_id: str
    original_dir: str
    run_id: str
    run_dir: str
    identical: bool
    messages_original: int
    messages_rerun: int
    stop_reason_original: str | None
    stop_reason_rerun: str | None
    error: str | None
    """The rerun's own error, when the session stopped on one (e.g. it asked for an answer never recorded)."""
    first_difference: Difference | None
    usage: dict[str, Any]
    """The rerun's cost block (replayed calls count as cached: see interview_sim.models.replay)."""


def scenario_from_snapshot(transcript: Transcript) -> LoadedScenario:
    """The scenario exactly as the run saw it, rebuilt from the transcript's scenario and agent snapshots.

    Raises:
        ReplayError: the snapshots do not validate (e.g. a hand-edited transcript).
    """
    scenario = {k: v for k, v in transcript.scenario.items() if k != "path"}
    try:
        spec = ScenarioSpec.model_validate(scenario)
        agents = {
            role: AgentSpec.model_validate({k: v for k, v in snap.items() if k not in ("model_ref", "model_name")})
            for role, snap in transcript.agents.items()
        }
        panel = {
            seat: AgentSpec.model_validate({k: v for k, v in snap.items() if k not in ("model_ref", "model_name")})
            for seat, snap in transcript.panel.items()
        }
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = field_path(first["loc"])
        raise ReplayError(f"run {transcript.run_id}: its scenario snapshot does not validate: {loc}: {first['msg']}") from None
    missing = [role for role in ("interviewer", "candidate") if role not in agents]
    if missing:
        raise ReplayError(f"run {transcript.run_id}: no agent snapshot for {', '.join(missing)}")
    return LoadedScenario(path=str(transcript.scenario.get("path", "")), spec=spec, agents=agents, panel=panel)


def _compared(message: Message, name: str) -> Any:
    value = getattr(message, name)
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def compare_runs(original: Transcript, rerun: Transcript) -> Difference | None:
    """The first difference between two runs' messages (then their stop reasons), or None."""
    for a, b in zip(original.messages, rerun.messages, strict=False):
        for name in COMPARED_FIELDS:
            va, vb = _compared(a, name), _compared(b, name)
            if va != vb:
                return Difference(turn=a.index + 1, field=name, original=va, rerun=vb)
    n_a, n_b = len(original.messages), len(rerun.messages)
    if n_a > n_b:
        return Difference(turn=n_b + 1, field="missing", original=original.messages[n_b].content, rerun=None)
    if n_b > n_a:
        return Difference(turn=n_a + 1, field="extra", original=None, rerun=rerun.messages[n_a].content)
    if original.stop_reason != rerun.stop_reason:
        return Difference(turn=None, field="stop_reason", original=original.stop_reason, rerun=rerun.stop_reason)
    # The whiteboard (every change: turn, author, section, before/after) and the panel's verdicts must match too.
    board_a, board_b = ([_board_key(c) for c in t.board_changes] for t in (original, rerun))
    for change_a, change_b in zip(board_a, board_b, strict=False):
        if change_a != change_b:
            return Difference(turn=change_a["turn"] or None, field="board", original=change_a, rerun=change_b)
    if len(board_a) != len(board_b):
        return Difference(turn=None, field="board", original=len(board_a), rerun=len(board_b))
    debriefs_a, debriefs_b = ([(d.seat, d.verdict, d.reason) for d in t.debriefs] for t in (original, rerun))
    if debriefs_a != debriefs_b:
        return Difference(turn=None, field="debriefs", original=debriefs_a, rerun=debriefs_b)
    return None


def _board_key(change: Any) -> dict[str, Any]:
    return {k: getattr(change, k) for k in ("version", "turn", "author", "section", "before", "after")}


async def rerun(run: str | Path, *, runs_dir: str | Path | None = None, on_event: EventSink | None = None) -> RerunResult:
    """Re-execute a run offline: the real session engine, every model replaced by its recorded answers.

    Args:
        run: the original run folder or transcript path.
        runs_dir: where the new run folder goes (default: the runs folder the original lives in, else `runs`).
        on_event: called with every event of the rerun as it is recorded (live rendering).

    Returns:
        The comparison; `identical` is False when any message (or the stop reason) differs.

    Raises:
        RecordError: the run cannot be read.
        ReplayError: the run was imported (there is no session of ours to re-execute) or its snapshots are broken.
    """
    from interview_sim.session import run_scenario

    original = load_transcript(run)
    if original.imported is not None or original.kind != "interview":
        source = original.imported.format if original.imported else original.kind
        raise ReplayError(
            f"run {original.run_id} was imported ({source}): it was not produced by this session engine, so there is"
            " nothing to re-execute; `interview-sim replay` plays it back"
        )
    scenario = scenario_from_snapshot(original)
    if original.stop_reason == "interrupted" and not original.messages:
        raise ReplayError(f"run {original.run_id} was interrupted before its first message: nothing to re-execute")
    original_dir = transcript_path(run).parent
    if runs_dir is not None:
        target = Path(runs_dir)
    elif original_dir.parent.name == original.scenario_id:  # the usual <runs>/<scenario>/<run> layout
        target = original_dir.parent.parent
    else:
        target = Path("runs")
    recording = Recording.from_transcript(original)
    replay_ref = f"replay:{original_dir}"

    made: list[ChatModel] = []

    def replay_factory(ref: str, options: ModelOptions) -> ChatModel:
        extra = ((RECORDING_KEY, recording),)
        made.append(create_model(replay_ref, ModelOptions(role=options.role, seed=options.seed, seat=options.seat, extra=extra)))
        return made[-1]

    started: list[str] = []

    def sink(event: RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished) -> None:
        if isinstance(event, RunStarted):
            started.append(event.run_id)
        if on_event is not None:
            on_event(event)

    error: str | None = None
    try:
        await run_scenario(
            scenario,
            seed=original.seed,
            max_turns=original.max_turns,
            runs_dir=target,
            on_event=sink,
            model_factory=replay_factory,
        )
    except InterviewSimError as exc:
        if not started:
            raise
        error = str(exc)
    run_dir = run_dir_for(target, scenario.spec.id, started[0])
    rerun_transcript = load_transcript(run_dir)
    rerun_transcript.replay_of = original.run_id
    if not recording.complete and any(getattr(m, "exhausted", False) for m in made):
        # The original was killed while this call was in flight: the rerun got exactly as far, and stops as it did.
        error = None
        rerun_transcript.stop_reason = "interrupted"
        rerun_transcript.error = f"re-executed up to where run {original.run_id} was interrupted"
    save_transcript(run_dir, rerun_transcript)
    difference = compare_runs(original, rerun_transcript)
    return RerunResult(
        original_run_id=original.run_id,
        original_dir=str(original_dir),
        run_id=rerun_transcript.run_id,
        run_dir=str(run_dir),
        identical=difference is None,
        messages_original=len(original.messages),
        messages_rerun=len(rerun_transcript.messages),
        stop_reason_original=original.stop_reason,
        stop_reason_rerun=rerun_transcript.stop_reason,
        error=error,
        first_difference=difference,
        usage=rerun_transcript.cost,
    )
