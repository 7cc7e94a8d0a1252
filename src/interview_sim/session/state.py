"""The session's state: the simulated clock, the script position and the stop rule, shared by a session's parts.

`SessionState` is what AutoGen does not know about: which stage the interviewer is in, how many simulated
minutes are left, the whiteboard, and when the session stops (max turns, time budget or the end marker). The
AutoGen adapter advances it on every message; the recorder and the panel read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from interview_sim.config import ASKING_STAGES, LoadedScenario, Stage
from interview_sim.models import ChatMessage, ChatModel
from interview_sim.record import BoardChange, ClockReading, StopReason
from interview_sim.session.whiteboard import Board, board_note, parse_blocks

__all__ = ["Reading", "SessionState", "agent_name"]


@dataclass
class Reading:
    """What one message did to the session: who spoke, the clock after it, its stage, its board changes."""

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
    readings: list[Reading] = field(default_factory=list)
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
        # Plain words and no "Stage 2 of 5 (pose_problem):" header: small models copied such a header, and the
        # word "note", into their turns. The step number still tells the model how far the interview has come.
        note = f"Your next turn (step {position} of {len(stages)}): {stage.instruction} Say that {left} minutes are left."
        if stage.kind in ASKING_STAGES:
            # Read last, so a small model ends on the question instead of answering the problem it was to pose.
            note += " End your turn with a question for the candidate."
        if stage.kind == "wrap_up":
            note = f'Your next turn (the last): {stage.instruction} End it with the words "{self.scenario.spec.end_marker}".'
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
        self.readings.append(Reading(role, clock, stage, seat, changes))
        if role == "interviewer" and self.messages > 1 and spec.end_marker.lower() in content.lower():
            self.stop_reason = "end_marker"
        elif self.messages >= self.max_turns:
            self.stop_reason = "max_turns"
        elif self.elapsed >= self.budget:
            self.stop_reason = "time_budget"
        return self.stop_reason


def _fmt(minutes: float) -> str:
    return str(int(minutes)) if float(minutes).is_integer() else f"{minutes:.1f}"
