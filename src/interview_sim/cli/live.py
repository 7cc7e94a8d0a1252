"""The live terminal of `run`: model turns as they stream, and a person's answers in a `human` seat.

Everything here is terminal I/O; the session engine stays UI-free. It gets three things from this module:

* `LiveView.on_event` and `LiveView.on_text`: render recorded events and streamed text (pieces of a turn
  as the model writes it; the message footer follows when the turn is recorded);
* `TerminalAnswers`: the `AnswerSource` of a `human` seat. One daemon thread reads stdin line by line
  (a blocking read never holds up the event loop, and works on any pseudo-terminal: the terminal's own
  line editing, no raw mode); the answer is the lines up to an empty line. `/quit` alone on a line, or
  end of input (Ctrl-D), stops the session; `/board` opens the whiteboard through a `BoardHook`.

Plain writes and ANSI colours only (through rich's Console), so it works on a bare pty as in a terminal app.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from interview_sim.cli.terminal import clean
from interview_sim.models import ChatModel, ModelOptions, parse_ref

if TYPE_CHECKING:
    from rich.console import Console

    from interview_sim.grading.evaluate import Evaluation
    from interview_sim.models.human import AnswerRequest
    from interview_sim.record import BoardChange, ClockReading, Message

QUIT = "/quit"
BOARD = "/board"
SEATS = ("interviewer", "candidate")
POLL_S = 0.25
"""How often a wait for the person checks whether the session is being cancelled (Ctrl-C)."""
NO_ANSWER = "(no answer within the time limit)"
"""Recorded as the answer when --answer-time runs out before the person typed a line."""
_COLOURS = {"interviewer": "cyan", "candidate": "green"}

ModelFactory = Callable[[str, ModelOptions], ChatModel]
ReadLine = Callable[[], Awaitable[str | None]]


class BoardHook(Protocol):
    """Edits the whiteboard from the terminal when the person types `/board`.

    It may show the board as this seat sees it (in `request`), reads the person's lines with `read_line`
    (None: end of input) and writes with `out`. It returns text to add to the person's answer (the change,
    in whatever form the session reads from a turn), or None for no change; the answer loop knows nothing else
    about whiteboards.
    """

    async def __call__(self, request: AnswerRequest, read_line: ReadLine, out: Console) -> str | None: ...


async def board_editor(request: AnswerRequest, read_line: ReadLine, out: Console) -> str | None:
    """The `/board` hook: one section, its title then its text (an empty line ends it; no text erases the
    section), added to the answer as the fenced `whiteboard` block a model would write."""
    from rich.markup import escape

    from interview_sim.session.whiteboard import render_block

    out.print("[dim]whiteboard: section title (an empty line cancels)[/]")
    title = (await read_line() or "").strip()
    if not title:
        return None
    out.print("[dim]its text: an empty line ends it (no text erases the section)[/]")
    lines: list[str] = []
    while (line := await read_line()) is not None and line.strip():
        lines.append(line.rstrip())
    what = f"section {title!r} written" if lines else f"section {title!r} erased"
    out.print(
        f"[magenta]whiteboard: {escape(what)}[/]"
        " [dim](on the board when your answer is sent; keep typing, an empty line sends it)[/]"
    )
    return render_block([(title, "\n".join(lines))])


def human_seats(interviewer_model: str | None, candidate_model: str | None) -> list[str]:
    """The seats a person takes (`human` as the seat's model reference)."""
    refs = {"interviewer": interviewer_model, "candidate": candidate_model}
    return [role for role, ref in refs.items() if ref and parse_ref(ref)[0] == "human"]


def with_answer_source(factory: ModelFactory, answers: TerminalAnswers) -> ModelFactory:
    """`factory`, giving `human` seats (interviewer, candidate) the terminal as their answer source."""
    from interview_sim.models.human import with_answers

    def build(ref: str, options: ModelOptions) -> ChatModel:
        if options.role in SEATS and parse_ref(ref)[0] == "human":
            options = with_answers(options, answers)
        return factory(ref, options)

    return build


@dataclass(frozen=True)
class LiveRun:
    """How `run` renders and feeds one session."""

    on_event: Callable[[Any], None] | None
    on_text: Callable[[str, str], None] | None
    """None when streaming is off (--no-stream, --json, or stdout is not a terminal)."""
    factory: ModelFactory
    humans: tuple[str, ...]
    """The seats a person takes."""
    answers: TerminalAnswers | None = None

    def watch(self) -> None:
        """Call first thing in the task that runs the session, so that Ctrl-C also ends a wait for the person."""
        if self.answers is not None:
            self.answers.session_task = asyncio.current_task()


def live_run(
    out: Console,
    factory: ModelFactory,
    *,
    interviewer_model: str | None,
    candidate_model: str | None,
    judges: list[str] | None,
    stream: bool,
    as_json: bool,
    answer_time: float | None,
    board: BoardHook | None = None,
) -> LiveRun:
    """Set up the live view, streaming and the human seats of a `run`.

    Raises:
        typer.Exit: (code 2, after one error line) a human seat with --json, a human judge, or --answer-time
            without a human seat.
    """
    humans = human_seats(interviewer_model, candidate_model)
    if any(parse_ref(ref)[0] == "human" for ref in judges or []):
        raise _usage_error("the evaluator is a model: `human` can take the interviewer or the candidate seat only")
    if humans and as_json:
        raise _usage_error("a human seat needs the live terminal: leave out --json")
    if answer_time is not None and not humans:
        raise _usage_error("--answer-time limits a person's answers: use it with --candidate-model human")
    if as_json:
        return LiveRun(None, None, factory, ())
    view = LiveView(out, human_roles=frozenset(humans))
    answers = TerminalAnswers(view, answer_time=answer_time, board=board) if humans else None
    if answers is not None:
        factory = with_answer_source(factory, answers)
    streaming = stream and out.is_terminal
    if not humans and not streaming:
        from interview_sim.cli.common import message_printer

        return LiveRun(message_printer(out), None, factory, ())
    return LiveRun(view.on_event, view.on_text if streaming else None, factory, tuple(humans), answers)


def _usage_error(message: str) -> Exception:
    from interview_sim.cli import fail

    return fail(message, 2)


# ---------------------------------------------------------------------------------------------- rendering


@dataclass
class LiveView:
    """Renders a session as it happens: headers, streamed text, footers, and where the clock stands."""

    out: Console
    human_roles: frozenset[str] = frozenset()
    shown: int = 0
    """Messages rendered so far."""
    clock: ClockReading | None = None
    stage: str | None = None
    models: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    _streaming: str | None = None
    _turn: str = ""
    """The streamed turn's text so far."""
    _printed: int = 0
    """How much of the turn's answer (its text without a leading reasoning block) is on screen."""
    _changed: asyncio.Event | None = None
    _wrap: WordWrap | None = None
    _early: list[tuple[str, str]] = field(default_factory=list)
    """Streamed pieces that arrived before the opening line was recorded: shown after it, in order."""

    def on_event(self, event: Any) -> None:
        from rich.markup import escape

        from interview_sim.record import MessageAdded, ModelFailed, RunStarted

        if isinstance(event, RunStarted):
            self.models = dict(event.models)
            agents = (event.header or {}).get("agents", {})
            self.agents = {role: str(a.get("name") or role) for role, a in agents.items() if isinstance(a, dict)}
            seats = ", ".join(f"{role}: {'you' if role in self.human_roles else ref}" for role, ref in event.models.items())
            self.out.print(f"[bold]{event.scenario_id}[/] · run {event.run_id} · {escape(seats)}")
        elif isinstance(event, MessageAdded):
            self._message(event.message, event.board_changes)
        elif isinstance(event, ModelFailed):
            self._end_stream()
            self.out.print(f"[red]model call failed[/] ({event.role}, {event.ref}): {escape(event.error)}")

    def on_text(self, role: str, piece: str) -> None:
        """A piece of a model's turn as it is generated (called on the event loop)."""
        if role in self.human_roles:
            return
        if self.shown == 0:  # the opening line is recorded after the first answer starts: it goes first on screen
            self._early.append((role, piece))
            return
        from interview_sim.models.thinking import split_thinking

        if self._streaming != role:
            self._end_stream()
            self.out.print(self._header(role, self._model_of(role)))
            self._streaming, self._turn, self._printed = role, "", 0
            self._wrap = WordWrap(self.out.file, self.out.width)
        self._turn += piece
        head = self._turn.lstrip()
        if "<think>".startswith(head):  # nothing yet, or perhaps the start of a reasoning block
            return
        # A reasoning block (GGUF reasoning models) is kept apart from the answer, as in the transcript.
        _, answer = split_thinking(self._turn)
        new = answer[self._printed :]
        self._printed = len(answer)
        assert self._wrap is not None
        self._wrap.write(clean(new))

    def _end_stream(self) -> None:
        if self._streaming is not None:
            if self._wrap is not None:
                self._wrap.finish()
            self.out.file.write("\n")
            self._streaming = None

    def _model_of(self, role: str) -> str:
        """The model of a role's seat; a panel's interviewers sit in seats of their own (their models, joined)."""
        if role in self.models:
            return self.models[role]
        return " / ".join(dict.fromkeys(ref for seat, ref in self.models.items() if seat != "candidate")) or "?"

    def _panel(self, role: str) -> bool:
        """Several interviewers share the role: a streamed turn's speaker is known only once it is recorded."""
        return role == "interviewer" and sum(1 for seat in self.models if seat != "candidate") > 1

    def _header(self, role: str, model: str, agent: str | None = None) -> str:
        from rich.markup import escape

        colour = _COLOURS.get(role, "white")
        name = agent or ("The panel" if self._panel(role) else self.agents.get(role, role))
        return f"\n[bold {colour}]{escape(name)}[/] ({role}, {escape(model)})"

    def _message(self, m: Message, changes: list[BoardChange] | None = None) -> None:
        from rich.markup import escape

        from interview_sim.cli.panel import board_lines

        if self._early and self._early[0][0] == m.role:  # the turn held back is this one: shown whole below
            self._early = []
        streamed = self._streaming == m.role
        self._end_stream()
        if m.source == "template":
            tokens = "template"
        else:
            model_tokens = f"{m.usage.completion_tokens} tok" if m.usage else "template"
            tokens = "your answer" if m.role in self.human_roles else model_tokens
        facts = [tokens, *([_clock_text(m.clock)] if m.clock else []), *([m.stage] if m.stage else [])]
        if streamed:
            if self._panel(m.role):
                facts.insert(0, f"said by {m.agent}")
            self.out.print(f"[dim]  · {escape(' · '.join(facts))}[/]")
            if m.cut_off:  # the screen showed the whole turn; the record keeps it up to its last full sentence
                dropped = " ".join(m.cut_off.split())
                self.out.print(
                    "[yellow]✂ at the token cap the record keeps this turn up to its last complete sentence;[/]"
                    f" [dim]dropped: {escape(dropped)}[/]"
                )
        elif m.role in self.human_roles and m.source != "template":  # the person's own answer is on screen
            self.out.print(f"[dim]  ✓ recorded · {' · '.join(facts[1:]) or 'no clock'}[/]")
        else:
            self.out.print(f"{self._header(m.role, m.model or 'opening line', m.agent)} · {' · '.join(facts)}")
            if m.cut_off:
                words = len(m.cut_off.split())
                self.out.print(f"[dim]✂ cut back to the last complete sentence at the token cap ({words} words)[/]")
            self.out.print(escape(m.content))
        for line in board_lines(changes or []):
            self.out.print(line)
        if m.thinking:
            self.out.print(f"[dim]▸ reasoning: {len(m.thinking.split())} words (replay --thinking shows it)[/]")
        self.shown += 1
        self.clock, self.stage = m.clock or self.clock, m.stage or self.stage
        early, self._early = self._early, []
        for role, piece in early:
            self.on_text(role, piece)
        if self._changed is not None:
            self._changed.set()

    async def wait_shown(self, count: int, timeout: float = 2.0) -> None:
        """Wait until `count` messages are on screen (the session may ask the person before rendering the last)."""
        loop_deadline = time.monotonic() + timeout
        while self.shown < count and time.monotonic() < loop_deadline:
            self._changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, loop_deadline - time.monotonic()))
            except TimeoutError:
                break

    def ask(self, request: AnswerRequest, *, board: bool, answer_time: float | None) -> None:
        """The prompt before a person's answer: the seat, the stage, the clock and the time left, and the keys."""
        from rich.markup import escape

        self._end_stream()
        # The interviewer's next stage is in the note; the last one said would contradict it.
        where = [f"stage: {self.stage}"] if self.stage and request.role != "interviewer" else []
        if self.clock is not None:
            where.append(f"clock {_clock_text(self.clock)}, {self.clock.remaining_minutes:g} min left")
        name = self.agents.get(request.role, request.role)
        colour = _COLOURS.get(request.role, "white")
        self.out.print(f"\n[bold {colour}]── your turn: {escape(name)} ({request.role})[/] · {' · '.join(where)}")
        note = person_note(request)
        if note:
            self.out.print(f"[dim]{escape(note)}[/]")
        keys = ["type your answer; an empty line ends it", f"{QUIT} stops"]
        if board:
            keys.insert(1, f"{BOARD} edits the whiteboard")
        if answer_time:
            keys.append(f"{answer_time:g} s per answer")
        self.out.print(f"[dim]({' · '.join(keys)})[/]")


class WordWrap:
    """Streamed text written as it comes, broken only between words: a word is held back until the next space or
    line break shows it is whole, then written on the current line if it fits, else on the next one. A word
    longer than the whole line is broken where the line ends."""

    def __init__(self, file: Any, width: int) -> None:
        self.file = file
        self.width = max(width, 20)
        self.column = 0
        self.word = ""

    def write(self, text: str) -> None:
        for char in text:
            if char == "\n":
                self._flush_word()
                self.file.write("\n")
                self.column = 0
            elif char.isspace():
                self._flush_word()
                if 0 < self.column < self.width:
                    self.file.write(" ")
                    self.column += 1
            else:
                self.word += char
        self.file.flush()

    def finish(self) -> None:
        self._flush_word()
        self.file.flush()

    def _flush_word(self) -> None:
        from rich.cells import cell_len

        word, self.word = self.word, ""
        while word:
            if self.column + cell_len(word) > self.width and self.column > 0:
                self.file.write("\n")
                self.column = 0
            piece, word = word[: self.width], word[self.width :]
            self.file.write(piece)
            self.column += cell_len(piece)


def person_note(request: AnswerRequest) -> str:
    """The session's latest note to the seat that a person needs: the stage and the time left. The whiteboard's
    note tells a model how to write markup on the board; a person has /board, and sees the board's changes."""
    from interview_sim.session.whiteboard import BOARD_HOW_TO

    notes = [n for n in request.notes if not n.startswith(BOARD_HOW_TO)]
    return notes[-1] if notes else ""


def _clock_text(clock: ClockReading) -> str:
    return f"{clock.elapsed_minutes:g}/{clock.elapsed_minutes + clock.remaining_minutes:g} min"


# ---------------------------------------------------------------------------------------------- answers


class _LineReader:
    """One daemon thread reading stdin into an asyncio queue; None marks the end of input."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.ended = False
        threading.Thread(target=self._read, name="human-answers", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                line = self.stream.readline()
            except (OSError, ValueError):
                line = ""
            self.loop.call_soon_threadsafe(self.queue.put_nowait, line or None)
            if not line:
                return

    def drop_typed_ahead(self) -> None:
        """Forget lines already read but not used (the rest of an answer whose time limit ran out)."""
        while not self.queue.empty():
            if self.queue.get_nowait() is None:
                self.ended = True

    async def line(self, timeout: float | None, stopped: Callable[[], bool] = lambda: False) -> str | None:
        """The next line; None at the end of input or once `stopped()`. Raises TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ended:
            step = POLL_S if deadline is None else min(POLL_S, max(0.0, deadline - time.monotonic()))
            try:
                line = await asyncio.wait_for(self.queue.get(), step)
            except TimeoutError:
                if stopped():
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            if line is None:
                self.ended = True
            return line
        return None


class TerminalAnswers:
    """The `AnswerSource` of a human seat: the person types their answer in the terminal."""

    def __init__(
        self, view: LiveView, *, answer_time: float | None = None, board: BoardHook | None = None, lines: Any = None
    ) -> None:
        self.view = view
        self.answer_time = answer_time
        self.board = board
        self._input = lines
        """Where the answers are read from (default: stdin)."""
        self._reader: _LineReader | None = None
        self.session_task: asyncio.Task[Any] | None = None
        """The task running the session (`LiveRun.watch`). Ctrl-C cancels it, but AutoGen stops a team only once
        every agent's turn is over, and a person's turn is over when they answer: so a wait for the person
        checks every POLL_S whether the session is being cancelled, and ends as a /quit would."""

    async def __call__(self, request: AnswerRequest) -> str | None:
        if self._reader is None:
            self._reader = _LineReader(self._input or sys.stdin)
        reader = self._reader
        # Lines typed while the other side still speaks are kept: they start this answer.
        await self.view.wait_shown(request.turn)
        self.view.ask(request, board=self.board is not None, answer_time=self.answer_time)
        deadline = time.monotonic() + self.answer_time if self.answer_time else None
        lines: list[str] = []
        while True:
            self._write("> ")
            try:
                line = await reader.line(None if deadline is None else max(0.0, deadline - time.monotonic()), self._cancelled)
            except TimeoutError:
                _discard_half_typed_line()
                reader.drop_typed_ahead()
                self.view.out.print("\n[yellow]time is up[/]: your answer so far is sent")
                return "\n".join(lines) or NO_ANSWER
            if line is None:  # Ctrl-D
                self._write("\n")
                return None
            text = line.rstrip("\r\n")
            command = text.strip()
            if command == QUIT:
                return None
            if command == BOARD:
                if (change := await self._edit_board(request, reader)) is not None:
                    lines.append(change)
            elif command:
                lines.append(text)
            elif lines:
                return "\n".join(lines)
            else:
                self.view.out.print(f"[dim](an empty answer: type something, or {QUIT} to stop)[/]")

    def _cancelled(self) -> bool:
        return self.session_task is not None and self.session_task.cancelling() > 0

    async def _edit_board(self, request: AnswerRequest, reader: _LineReader) -> str | None:
        if self.board is None:
            self.view.out.print("[dim](no whiteboard in this session)[/]")
            return None
        return await self.board(request, lambda: reader.line(None, self._cancelled), self.view.out)

    def _write(self, text: str) -> None:
        self.view.out.file.write(text)
        self.view.out.file.flush()


def _discard_half_typed_line() -> None:
    # A line typed halfway when the time ran out would otherwise start the next answer.
    try:
        import termios

        if sys.stdin.isatty():
            termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    except (ImportError, OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------------- feedback


def render_feedback(out: Console, evaluation: Evaluation) -> None:
    """What the person should work on: criteria from the weakest up, each with the judge's reasons and quotes."""
    from rich.markup import escape

    if not evaluation.judges:
        return
    grades = {g.criterion: g for g in evaluation.judges[0].criteria}
    out.print(f"\n[bold]Your answers, graded[/] (scale {evaluation.scale_min}-{evaluation.scale_max}; weakest first)")
    for cid, summary in sorted(evaluation.criteria.items(), key=lambda item: item[1].mean):
        grade = grades.get(cid)
        out.print(f"[bold]{escape(summary.name)}[/]: {summary.mean:g}")
        if grade is None:
            continue
        out.print(f"  {escape(grade.rationale)}")
        for quote in grade.evidence:
            out.print(f'  [dim]you said:[/] "{escape(quote)}"')
        if not grade.evidence:
            out.print("  [dim](no quote of yours was cited for this criterion)[/]")
