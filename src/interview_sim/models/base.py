"""The one interface every backend implements, and the retry policy they share.

Backends speak plain dataclasses, not AutoGen types: AutoGen is in maintenance mode, so only
`session/autogen_adapter.py` adapts these to its API.
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay, wait_exponential

from interview_sim.errors import ModelCallError
from interview_sim.record import CallRecord, RetryInfo

MessageRole = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: MessageRole
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float = 0.7
    seed: int | None = None
    repeat_penalty: float = 1.0
    json_schema: dict[str, Any] | None = None
    """Constrain the output to JSON matching this schema (backends that declare `supports_json_schema`)."""
    think: bool | str | None = None
    """Thinking on/off or a level ("low"/"medium"/"high"), sent only to thinking-capable models; None: the
    backend's default. See `models.thinking`."""
    on_text: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    """Called with each new piece of text as it is generated, for streaming to a terminal. Backends that
    cannot stream call it once with the whole text. It never changes the result: the Completion is the same
    with or without it, and the pieces add up to its `content`."""
    top_logprobs: int = 0
    """Return the this-many most likely tokens at every generated position (backends that declare
    `supports_logprobs`); 0: none. A judge reads the score's probabilities from them."""
    tools: tuple[dict[str, Any], ...] = ()
    """Function tools the model may call, in the OpenAI / Ollama shape (backends that declare `supports_tools`)."""


@dataclass(frozen=True)
class TokenAlternatives:
    """The most likely next tokens at one generated position, before any grammar constrained the choice."""

    offset: int
    """Characters of the completion generated before this position."""
    top: tuple[tuple[str, float], ...]
    """(token text, natural-log probability), most likely first."""


@dataclass(frozen=True)
class RetryRecord:
    attempt: int
    error: str
    wait_s: float


@dataclass
class Completion:
    content: str
    model: str
    """The model's name as the backend reports it; the key of the cost block."""
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Wall time of the call, retries included."""
    generation_s: float | None = None
    """Time the backend spent on the call, prompt and generation, when it reports it (Ollama's durations,
    llama.cpp's perf counters)."""
    prompt_eval_s: float | None = None
    """Of generation_s, the time spent evaluating the prompt."""
    eval_s: float | None = None
    """Of generation_s, the time spent generating the completion."""
    prompt_tokens_evaluated: int | None = None
    """Prompt tokens actually run through the model; fewer than prompt_tokens when a KV cache was reused."""
    finish_reason: str = "stop"
    cached: bool = False
    retries: list[RetryRecord] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    """Backend-specific facts worth keeping: Ollama's digest and timing fields, llama.cpp timings."""
    thinking: str | None = None
    """The model's reasoning, kept apart from `content` (the answer); None when it wrote none."""
    top_logprobs: list[TokenAlternatives] | None = None
    """Per generated position, when the request asked for them and the backend supports it; else None."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls the model made instead of (or with) text: `{"name": ..., "arguments": {...}}` each."""

    def call_record(self, *, index: int, role: str, agent: str, ref: str, **fields: Any) -> CallRecord:
        """The record of this call for the transcript; `fields` sets or overrides the rest."""
        data: dict[str, Any] = {
            "index": index,
            "role": role,
            "agent": agent,
            "model": self.model,
            "ref": ref,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "prompt_tokens_evaluated": self.prompt_tokens_evaluated,
            "latency_s": round(self.latency_s, 4),
            "generation_s": self.generation_s,
            "prompt_eval_s": self.prompt_eval_s,
            "eval_s": self.eval_s,
            "cached": self.cached,
            "retries": [RetryInfo(attempt=r.attempt, error=r.error, wait_s=r.wait_s) for r in self.retries],
            "finish_reason": self.finish_reason,
            "metadata": {**self.metadata, **({"tool_calls": self.tool_calls} if self.tool_calls else {})},
            "thinking": self.thinking,
        }
        return CallRecord(**{**data, **fields})


@dataclass(frozen=True)
class ModelInfo:
    """What `interview-sim models` shows for one model."""

    ref: str
    provider: str
    ready: bool
    detail: str
    size_bytes: int | None = None
    """The model file's size, where the backend has one on this machine."""
    state: str | None = None
    """For a model assembled from parts: `verified`, `not yet assembled`, `parts missing N of M`, ..."""
    path: str | None = None
    """Where the model file is (or, for one not yet assembled, will be)."""


class ChatModel(abc.ABC):
    """A chat model behind a `provider:name` reference.

    Capabilities are declared as attributes, never guessed from the model's name.
    """

    provider: str = ""
    supports_json_schema: bool = False
    interactive: bool = False
    """A person answers (the `human` seat): never cached, never run in batches."""
    supports_logprobs: bool = False
    """Can return token probabilities (`CompletionRequest.top_logprobs`)."""
    supports_tools: bool = False
    """Can call function tools (the whiteboard tools); others write the board with fenced blocks."""

    def __init__(self, ref: str, name: str, context_length: int) -> None:
        self.ref = ref
        self.name = name
        self.context_length = context_length

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Run one chat completion. Raises ModelCallError once retries are spent."""

    @abc.abstractmethod
    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        """Tokens the prompt for these messages takes (exact where the backend can tokenize)."""

    async def check_ready(self) -> None:
        """Raise ModelNotReadyError with a line saying what to do when the model can't serve now."""
        return None

    async def aclose(self) -> None:
        """Release resources (servers' connections, model memory)."""
        return None


T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Connection resets, timeouts and HTTP 5xx are worth another try; anything else is not."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 500
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, ConnectionError | TimeoutError | httpx.TransportError)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 4,
    initial_wait: float = 0.25,
    max_wait: float = 4.0,
    budget_s: float | None = None,
) -> tuple[T, list[RetryRecord], float]:
    """Run `call`, retrying transient failures with bounded exponential backoff.

    `budget_s` is the deadline of the whole call, retries and waits included: an attempt still running when
    it expires is cancelled (TimeoutError), and no retry is started whose wait would end after it.

    Returns the result, the retries that happened (each one is recorded in the run) and the wall time.
    Raises ModelCallError (with the retries) once the attempts or the budget are spent.
    """
    retries: list[RetryRecord] = []

    def _record(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        retries.append(RetryRecord(attempt=state.attempt_number, error=_describe(exc), wait_s=round(wait, 3)))

    start = time.perf_counter()

    async def attempt() -> T:
        if budget_s is None:
            return await call()
        remaining = budget_s - (time.perf_counter() - start)
        if remaining <= 0:
            raise TimeoutError(f"no answer within {budget_s:g} s")
        async with asyncio.timeout(remaining):
            return await call()

    # stop_before_delay: no retry whose wait would end past the budget (stop_after_delay would still sleep into it).
    stop = stop_after_attempt(attempts) if budget_s is None else stop_after_attempt(attempts) | stop_before_delay(budget_s)
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop,
        wait=wait_exponential(multiplier=initial_wait, max=max_wait),
        before_sleep=_record,
        reraise=True,
    )
    try:
        result: T = await retrying(attempt)
    except Exception as exc:
        tried = len(retries) + 1
        attempts_text = f"{tried} attempt{'s' if tried > 1 else ''}"
        if budget_s is not None and isinstance(exc, TimeoutError):
            message = f"{what} did not answer within {budget_s:g} s ({attempts_text})"
        else:
            message = f"{what} failed after {attempts_text}: {_describe(exc)}"
        raise ModelCallError(message, list(retries)) from exc
    return result, retries, time.perf_counter() - start


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[ChatMessage]
    max_tokens: int
    dropped: int
    """Messages left out so the prompt fits; recorded with the call."""


MIN_OUTPUT_TOKENS = 16


_MESSAGE_TOKENS: weakref.WeakKeyDictionary[ChatModel, dict[ChatMessage, int]] = weakref.WeakKeyDictionary()


def _message_tokens(model: ChatModel, message: ChatMessage) -> int:
    """The tokens one message takes on its own, counted once per model and message."""
    counts = _MESSAGE_TOKENS.setdefault(model, {})
    if message not in counts:
        counts[message] = model.count_tokens([message])
    return counts[message]


def _fewest_drops(fits: Callable[[int], bool], guess: int, most: int) -> int:
    """The smallest d in [0, most] with fits(d), given that fits is monotone and fits(most) is assumed.

    Gallops from `guess` (an estimate) towards the answer, then bisects: O(log distance) calls of `fits`,
    each on a prompt near the budget's size, so a long session's trimming does not grow with its length.
    """
    guess = min(max(guess, 0), most)
    if fits(guess):
        hi, step = guess, 1
        while hi > 0 and fits(max(hi - step, 0)):
            hi, step = max(hi - step, 0), step * 2
        lo = -1 if hi == 0 else max(hi - step, 0)  # fits(lo) is False, or nothing is below hi
    else:
        lo, step = guess, 1
        while lo + step < most and not fits(lo + step):
            lo, step = lo + step, step * 2
        hi = min(lo + step, most)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


DROP_BLOCKS_PER_WINDOW = 2
"""Trimming drops the oldest turns in blocks of about half the room for the prompt (context - max_tokens)."""


_PREFIX_SUMS: weakref.WeakKeyDictionary[ChatModel, tuple[list[ChatMessage], list[int]]] = weakref.WeakKeyDictionary()


def _prefix_sums(model: ChatModel, middle: list[ChatMessage]) -> list[int]:
    """Running per-message token counts over `middle`, kept per model and extended as the session grows."""
    seen, sums = _PREFIX_SUMS.get(model, ([], []))
    if len(seen) > len(middle) or middle[: len(seen)] != seen:  # another conversation: start again
        seen, sums = [], []
    for message in middle[len(seen) :]:
        sums.append((sums[-1] if sums else 0) + _message_tokens(model, message))
        seen.append(message)
    _PREFIX_SUMS[model] = (seen, sums)
    return sums


def _block_end(model: ChatModel, middle: list[ChatMessage], fewest: int, block_tokens: int) -> int:
    """The smallest drop count >= `fewest` that ends a block of the oldest turns, or `fewest` past the last one.

    Blocks are counted from the start of the session: one ends at each turn that carries the running
    per-message count past a multiple of `block_tokens`. So they stay where they are as the session grows, and
    the drop count changes only when the fewest drops cross a block's end: about once per block of new turns.
    """
    if fewest == 0 or block_tokens <= 0:
        return fewest
    sums = _prefix_sums(model, middle)
    before = sums[fewest - 2] if fewest >= 2 else 0  # the running count before the last turn that must go
    crossing = bisect.bisect_left(sums, (before // block_tokens + 1) * block_tokens, lo=fewest - 1)
    return crossing + 1 if crossing < len(sums) else fewest


def fit_to_context(model: ChatModel, messages: list[ChatMessage], max_tokens: int) -> FittedPrompt:
    """Make the prompt plus `max_tokens` fit the model's context window.

    Keeps the leading system messages, the first turn after them (the opening line), and the last two
    messages (the latest turn, and the session's trailing note when there is one); drops the oldest turns
    in between until the prompt fits. If the kept messages alone are still too long, the longest of them
    keeps only its end. Never raises for length: a long session degrades, it does not crash.

    The number of turns to drop is the smallest that fits by the model's own exact count, found from an
    estimate (per-message counts, cached) with O(log n) exact counts of prompts about the budget's size,
    then rounded up to the end of a block (see `_block_end`): the kept prompt then begins the same way for
    several turns in a row, so a backend with a KV cache (llama.cpp) re-evaluates only the new turns instead
    of everything after the opening line at every call. It is what llama.cpp's own context shift does
    (discard half of what may be discarded), with blocks of half the room for the prompt.
    """
    budget = model.context_length - max_tokens
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    head = min(head + 1, len(messages))  # the opening line
    tail_start = max(head, len(messages) - 2)
    middle = messages[head:tail_start]

    def kept_after(drop: int) -> list[ChatMessage]:
        return messages[:head] + middle[drop:] + messages[tail_start:]

    dropped = 0
    if middle:
        # The estimate's guess: the fewest oldest turns to drop so that the per-message counts add up to the
        # budget. Summed from the newest turn back, so only about a context's worth of messages is looked at.
        room = budget - sum(_message_tokens(model, m) for m in messages[:head] + messages[tail_start:])
        fitting = 0
        while fitting < len(middle):
            room -= _message_tokens(model, middle[-1 - fitting])
            if room < 0:
                break
            fitting += 1
        guess = len(middle) - fitting
        fewest = _fewest_drops(lambda d: model.count_tokens(kept_after(d)) <= budget, guess, len(middle))
        dropped = _block_end(model, middle, fewest, budget // DROP_BLOCKS_PER_WINDOW)
    kept = kept_after(dropped)
    for _ in range(6):
        size = model.count_tokens(kept)
        if size <= budget:
            break
        longest = max(range(len(kept)), key=lambda i: len(kept[i].content))
        text = kept[longest].content
        keep_chars = max(0, int(len(text) * budget / size) - 16)
        kept[longest] = ChatMessage(kept[longest].role, "…" + text[len(text) - keep_chars :] if keep_chars else "…")
    prompt = model.count_tokens(kept)
    room = model.context_length - prompt
    return FittedPrompt(messages=kept, max_tokens=max(MIN_OUTPUT_TOKENS, min(max_tokens, room)), dropped=dropped)
