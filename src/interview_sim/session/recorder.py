"""Recording a session as it happens, and the one edit a turn's text gets before it is recorded.

`SessionRecorder` writes every model call and message to the transcript and to `events.jsonl` (and to the
caller's live sinks) as they happen; the AutoGen adapter and the panel record through it.
`cut_back_to_sentence` trims an answer the token cap cut off mid-sentence, keeping the cut text for the record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from collections.abc import Callable

from interview_sim.config import AgentSpec
from interview_sim.errors import ModelCallError
from interview_sim.models import ChatModel, Completion, RetryRecord
from interview_sim.record import (
    CallRecord,
    EventLog,
    Message,
    MessageAdded,
    MessageUsage,
    ModelCalled,
    ModelFailed,
    RetryInfo,
    RunFinished,
    RunStarted,
    Transcript,
)
from interview_sim.session.state import Reading

__all__ = ["EventSink", "SessionRecorder", "TextSink", "cut_back_to_sentence"]

EventSink = Callable[[RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished], None]
TextSink = Callable[[str, str], None]
"""Live text: called with (role, piece) as a model writes its turn, always on the session's event loop."""


_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]*]*(?=\s|$)")
_DANGLING_LINE = re.compile(r"(?:^|\n)[ \t>]*(?:\d{1,3}[.)]|[a-z][.)]|[-*•+]|#{1,6}[^\n]*|\*\*[^\n]*\*\*:?)[ \t]*$", re.I)
"""A last line that is only a list marker ("3.", "-", "b)") or a heading: not the end of a sentence."""


def cut_back_to_sentence(completion: Completion) -> Completion:
    """An answer the token cap cut off mid-sentence, cut back to its last complete sentence.

    A sentence ends at . ! or ? (and any closing quote or bracket) followed by a space or the end, unless what
    ends there is a list marker alone on its line ("3.") or a heading: Markdown answers cut at the cap often
    end on the next item's number. The cut text goes to `metadata["cut_at_cap"]` (and from there to the
    message's `cut_off`), so nothing is hidden; an answer with no complete sentence to keep is left as it is.
    """
    text = completion.content.rstrip()
    for match in reversed(list(_SENTENCE_END.finditer(text))):
        kept = text[: match.end()]
        if not _DANGLING_LINE.search(kept):
            break
    else:
        return completion
    kept = kept.rstrip()
    if len(kept) == len(text):
        return completion
    return dataclasses.replace(
        completion, content=kept, metadata={**completion.metadata, "cut_at_cap": completion.content[len(kept) :]}
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

    def message(self, role: str, agent: AgentSpec, content: str, reading: Reading, *, from_model: bool) -> None:
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
