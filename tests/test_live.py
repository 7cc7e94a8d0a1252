"""The live terminal's parts without a terminal: rendering streamed turns, and the answer loop's commands."""

from __future__ import annotations

import io
import os

import pytest
from rich.console import Console

from interview_sim.cli.live import LiveView, ReadLine, TerminalAnswers
from interview_sim.models import ChatMessage
from interview_sim.models.human import AnswerRequest
from interview_sim.record import ClockReading, Message, MessageAdded, MessageUsage


def view(*humans: str) -> tuple[LiveView, io.StringIO]:
    screen = io.StringIO()
    return LiveView(Console(file=screen, force_terminal=False, width=200), human_roles=frozenset(humans)), screen


def added(index: int, role: str, content: str, *, model: str | None = "m", thinking: str | None = None) -> MessageAdded:
    return MessageAdded(
        message=Message(
            index=index,
            role=role,
            agent=role.title(),
            model=model,
            content=content,
            usage=MessageUsage(prompt_tokens=10, completion_tokens=4) if model else None,
            clock=ClockReading(elapsed_minutes=index + 1.0, remaining_minutes=29.0 - index),
            stage="open",
            thinking=thinking,
        )
    )


def test_a_streamed_turn_is_shown_once_with_its_footer_after_it() -> None:
    live, screen = view()
    live.on_event(added(0, "interviewer", "Welcome.", model=None))
    for piece in ["I would", " cache", " reads."]:
        live.on_text("candidate", piece)
    live.on_event(added(1, "candidate", "I would cache reads."))
    out = screen.getvalue()
    assert out.count("I would cache reads.") == 1
    assert out.index("(candidate, ?)") < out.index("I would cache reads.") < out.index("· 4 tok · 2/30 min · open")
    assert live.shown == 2 and live.clock is not None and live.clock.remaining_minutes == 28


def test_the_opening_line_recorded_late_is_shown_first_and_the_answer_once() -> None:
    """A person in the interviewer seat: the candidate starts answering before the opening line is recorded."""
    live, screen = view("interviewer")
    for piece in ["I would", " cache", " reads."]:
        live.on_text("candidate", piece)
    assert screen.getvalue() == ""  # held back until the opening line is on screen
    opening = added(0, "interviewer", "Welcome, whiteboard for me.", model=None)
    opening.message.source = "template"
    live.on_event(opening)
    live.on_event(added(1, "candidate", "I would cache reads."))
    out = screen.getvalue()
    assert out.count("Welcome, whiteboard for me.") == 1 and out.count("I would cache reads.") == 1
    assert out.index("Welcome, whiteboard for me.") < out.index("I would cache reads.") < out.index("· 4 tok · 2/30 min")
    assert "✓ recorded" not in out  # the opening line is the script's, not the person's answer


def test_streamed_words_wrap_whole_at_the_terminal_width() -> None:
    screen = io.StringIO()
    live = LiveView(Console(file=screen, force_terminal=False, width=30))
    live.on_event(added(0, "interviewer", "Welcome.", model=None))
    text = "previously answered questions about sharding, replicas and caching layers"
    for i in range(0, len(text), 3):  # pieces that cut words, as a tokenizer does
        live.on_text("candidate", text[i : i + 3])
    live.on_event(added(1, "candidate", text))
    lines = screen.getvalue().split("(candidate, ?)")[1].split("·")[0].strip().splitlines()
    assert all(len(line) <= 30 for line in lines) and " ".join(lines).split() == text.split()


def test_a_reasoning_block_streams_out_of_sight() -> None:
    live, screen = view()
    for piece in ["<thi", "nk>Let me rea", "son.</think>", "\n\nShard", " by tenant."]:
        live.on_text("candidate", piece)
    live.on_event(added(1, "candidate", "Shard by tenant.", thinking="Let me reason."))
    out = screen.getvalue()
    assert "Shard by tenant." in out and "Let me rea" not in out and "<thi" not in out
    assert "reasoning: 3 words" in out


def test_unstreamed_turns_print_whole_and_a_person_is_not_echoed() -> None:
    live, screen = view("candidate")
    live.on_text("candidate", "typed by the person")  # never shown again: they typed it
    live.on_event(added(0, "interviewer", "Welcome.", model=None))
    live.on_event(added(1, "candidate", "typed by the person", model="human"))
    out = screen.getvalue()
    assert "Welcome." in out and "typed by the person" not in out and "✓ recorded · 2/30 min" in out


def request(role: str = "candidate") -> AnswerRequest:
    return AnswerRequest(role=role, messages=(ChatMessage("system", "You are..."), ChatMessage("user", "Hello.")))


async def answers_from(lines: str, asks: int, **kwargs: object) -> tuple[list[str | None], str]:
    live, screen = view("candidate")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, lines.encode())
    os.close(write_fd)
    with os.fdopen(read_fd) as stream:
        source = TerminalAnswers(live, lines=stream, **kwargs)  # type: ignore[arg-type]
        got = [await source(request()) for _ in range(asks)]
    return got, screen.getvalue()


@pytest.mark.anyio
async def test_answers_end_at_an_empty_line_and_quit_stops() -> None:
    got, screen = await answers_from("\nfirst line\n  second line\n\nsecond answer\n\n/quit\n", 3)
    assert got == ["first line\n  second line", "second answer", None]
    assert "an empty line ends it" in screen and "an empty answer: type something" in screen
    assert "/board" not in screen.split("an empty line ends it")[1].split(")")[0]  # no board hook: not offered


@pytest.mark.anyio
async def test_end_of_input_stops_and_a_half_answer_is_dropped() -> None:
    got, _ = await answers_from("an answer\n\nhalf an answer\n", 2)
    assert got == ["an answer", None]


@pytest.mark.anyio
async def test_board_hook_adds_its_change_to_the_answer() -> None:
    seen: list[str | None] = []

    async def board(req: AnswerRequest, read_line: ReadLine, out: Console) -> str | None:
        title = await read_line()
        seen.append(title)
        out.print("board updated")
        return f"```whiteboard\n## {(title or '').strip()}\nPOST /orders\n```"

    got, screen = await answers_from("Here is my API.\n/board\nAPI\nThat's it.\n\n", 1, board=board)
    assert got == ["Here is my API.\n```whiteboard\n## API\nPOST /orders\n```\nThat's it."]
    assert seen == ["API\n"] and "/board edits the whiteboard" in screen and "board updated" in screen


@pytest.mark.anyio
async def test_without_a_board_the_command_says_so() -> None:
    got, screen = await answers_from("/board\nfine\n\n", 1)
    assert got == ["fine"] and "no whiteboard in this session" in screen


@pytest.mark.anyio
async def test_the_board_command_writes_one_section_as_the_block_a_model_would_write() -> None:
    from io import StringIO

    from rich.console import Console

    from interview_sim.cli.live import board_editor
    from interview_sim.models.human import AnswerRequest
    from interview_sim.session.whiteboard import parse_blocks

    typed = iter(["API", "POST /orders (idempotency key)", "GET /orders/{id}", "", "never read"])

    async def read_line() -> str | None:
        return next(typed, None)

    out = Console(file=StringIO())
    block = await board_editor(AnswerRequest(role="candidate", messages=()), read_line, out)
    assert block is not None and parse_blocks(block) == [("API", "POST /orders (idempotency key)\nGET /orders/{id}")]
    assert next(typed) == "never read"  # the empty line ended the section

    cancelled = iter([""])

    async def nothing() -> str | None:
        return next(cancelled, None)

    assert await board_editor(AnswerRequest(role="candidate", messages=()), nothing, out) is None


def test_a_streamed_turn_cut_at_the_token_cap_says_what_the_record_keeps() -> None:
    live, screen = view()
    live.on_event(added(0, "interviewer", "Welcome.", model=None))
    for piece in ["I would cache reads.", " Then I would"]:
        live.on_text("candidate", piece)
    capped = added(1, "candidate", "I would cache reads.")
    capped.message.cut_off = "Then I would"
    live.on_event(capped)
    out = screen.getvalue()
    assert out.index("Then I would") < out.index("✂ at the token cap the record keeps this turn up to its last complete")
    assert out.rstrip().endswith("dropped: Then I would")
