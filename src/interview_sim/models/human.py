"""`human`: a person in a seat (`--candidate-model human` or `--interviewer-model human`).

The session treats the person like any other model: it asks for the next turn with a `CompletionRequest`
and records the answer as a call (model `human`, no token usage, the real time the person took). Where the
answer comes from is not this module's business: the caller supplies an `AnswerSource`, an async function
that gets an `AnswerRequest` and returns the person's text, or None when the person stops the session.
The CLI's source reads the terminal (`interview_sim.cli.live`); a test can pass any coroutine. The
source reaches the provider through `ModelOptions.extra` as `("answers", source)`, the way `replay:`
gets its recording, so two sessions in one process share nothing.

When the source returns None, `complete()` raises `PersonQuit`; the session records the run as
`interrupted` with the answers given so far.

The person's text is never passed to `CompletionRequest.on_text`: they typed it, it is on their screen.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interview_sim.errors import ModelNotReadyError
from interview_sim.models.base import ChatMessage, ChatModel, Completion, CompletionRequest, ModelInfo

if TYPE_CHECKING:
    from interview_sim.models import ModelOptions

ANSWERS_KEY = "answers"
MODEL_NAME = "human"
HUMAN_CONTEXT = 1 << 30
"""A person reads the whole conversation: prompts are never trimmed for them."""
_CHARS_PER_TOKEN = 4


class PersonQuit(Exception):
    """The person at a human seat stopped the session (`/quit`, or the end of their input)."""


@dataclass(frozen=True)
class AnswerRequest:
    """What the person is asked for: their seat and the conversation so far, as the model would see it."""

    role: str
    messages: tuple[ChatMessage, ...]

    @property
    def turn(self) -> int:
        """Messages in the conversation so far (the opening line included); the answer will be the next one."""
        return sum(1 for m in self.messages if m.role != "system")

    @property
    def last_heard(self) -> str:
        """The other side's latest message."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def notes(self) -> list[str]:
        """The session's notes to this seat after its instructions (the stage and time left, the whiteboard)."""
        return [m.content for m in self.messages[1:] if m.role == "system"]

    @property
    def note(self) -> str:
        """The session's latest note to this seat, if any."""
        return self.notes[-1] if self.notes else ""


AnswerSource = Callable[[AnswerRequest], Awaitable[str | None]]
"""Returns the person's answer, or None when they stop the session."""


class HumanModel(ChatModel):
    """A seat answered by a person through an `AnswerSource`."""

    provider = "human"
    interactive = True

    def __init__(self, ref: str, role: str, answers: AnswerSource | None) -> None:
        super().__init__(ref=ref, name=MODEL_NAME, context_length=HUMAN_CONTEXT)
        self.role = role
        self._answers = answers

    async def check_ready(self) -> None:
        if self._answers is None:
            raise ModelNotReadyError(
                "`human` needs a person at a terminal: use it as --candidate-model or --interviewer-model of `interview-sim run`"
            )

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        # Only used to fit prompts to the context window, which a person never needs; a rough size is enough.
        return sum(len(m.content) // _CHARS_PER_TOKEN + 1 for m in messages)

    async def complete(self, request: CompletionRequest) -> Completion:
        await self.check_ready()
        assert self._answers is not None
        start = time.perf_counter()
        text = await self._answers(AnswerRequest(role=self.role, messages=request.messages))
        if text is None:
            raise PersonQuit(f"the person in the {self.role} seat stopped the session")
        return Completion(
            content=text,
            model=MODEL_NAME,
            prompt_tokens=0,
            completion_tokens=0,
            latency_s=round(time.perf_counter() - start, 4),
            generation_s=0.0,  # no model ran: the person's time is the latency, not generation seconds
            metadata={"human": True},
        )


def create(name: str, ref: str, options: ModelOptions) -> HumanModel:
    """Build the seat; without an answer source it is not ready (check_ready says how to use it)."""
    source = dict(options.extra).get(ANSWERS_KEY)
    if source is not None and not callable(source):
        raise TypeError(f"ModelOptions.extra[{ANSWERS_KEY!r}] must be an AnswerSource, got {type(source).__name__}")
    return HumanModel(ref, options.role, source)


def available() -> list[ModelInfo]:
    return [ModelInfo("human", "human", True, "you, at the terminal: --candidate-model human or --interviewer-model human")]


def with_answers(options: ModelOptions, source: AnswerSource) -> ModelOptions:
    """`options` with the answer source a `human` seat reads from."""
    from dataclasses import replace

    return replace(options, extra=(*options.extra, (ANSWERS_KEY, source)))
