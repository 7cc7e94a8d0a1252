"""`replay:<run>`: a model that answers with a recorded run's responses, in order, without calling anything.

`replay --rerun` builds one per session role so the real session engine re-executes a run offline. The
recording reaches the provider in one of two ways:

* through `ModelOptions.extra` as `("recording", Recording)` — what `replay.rerun` does, so concurrent
  reruns share no module state;
* otherwise the name is read as a run folder (or transcript path) and loaded from disk, so
  `--candidate-model replay:runs/<scenario>/<run>` replays one side of a run against a new partner.

Each seat's queue (the role's, outside a panel) holds the calls that produced that seat's messages, then its
panel debrief, in order; recorded tool calls are answered again as tool calls. Asking for one more than
was recorded is a `ModelCallError` (the session then stops, and the rerun reports the divergence).

Usage: every answer reports the original call's prompt and completion tokens and is marked
`cached=True` with `metadata["replayed"] = True`. A replayed answer is a hit on a cache (the recording):
no inference happened, so the ledger counts it in "including cached" (which then reproduces the
original run's figures) and leaves it out of "excluding cached" (which is 0, the compute really spent).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interview_sim.errors import ModelCallError, ReplayError
from interview_sim.models.base import ChatMessage, ChatModel, Completion, CompletionRequest
from interview_sim.models.human import MODEL_NAME as HUMAN_MODEL
from interview_sim.models.human import PersonQuit

if TYPE_CHECKING:
    from interview_sim.models import ModelOptions
    from interview_sim.record import Transcript

RECORDING_KEY = "recording"
REPLAY_CONTEXT = 1 << 30
"""Replayed answers never need trimming: the prompt is not run through any model."""
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class RecordedCall:
    """One recorded model call and the message it produced."""

    call_index: int
    role: str
    model: str
    content: str
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_evaluated: int | None
    latency_s: float
    finish_reason: str
    thinking: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Recording:
    """A run's model-written messages per session role, in the order the calls were made."""

    run_id: str
    calls: dict[str, tuple[RecordedCall, ...]] = field(default_factory=dict)
    quit_by: str | None = None
    """The human seat whose person stopped the run (`/quit`): past its last answer, the replay stops there too."""
    complete: bool = True
    """False for a run that was interrupted: its recording ends where it was killed, not where the session ended."""

    @classmethod
    def from_transcript(cls, transcript: Transcript) -> Recording:
        per_role: dict[str, list[RecordedCall]] = {}
        debriefs = {d.call_index: d.raw for d in transcript.debriefs if d.call_index is not None}
        for call in transcript.calls:
            # Grading calls (evaluation_id set) and calls whose message was never recorded are not part of the session.
            if call.evaluation_id is not None:
                continue
            if call.purpose == "debrief" and call.index in debriefs:
                content = debriefs[call.index]
            elif call.message_index is not None:
                if not 0 <= call.message_index < len(transcript.messages):
                    raise ReplayError(
                        f"run {transcript.run_id}: call {call.index} wrote message {call.message_index}, which the"
                        f" transcript does not have ({len(transcript.messages)} messages): the record is inconsistent"
                    )
                message = transcript.messages[call.message_index]
                content = message.content + (message.cut_off or "")
            else:
                continue
            per_role.setdefault(call.seat or call.role, []).append(
                RecordedCall(
                    call_index=call.index,
                    role=call.role,
                    model=call.model,
                    content=content,
                    prompt_tokens=call.prompt_tokens,
                    completion_tokens=call.completion_tokens,
                    prompt_tokens_evaluated=call.prompt_tokens_evaluated,
                    latency_s=call.latency_s,
                    finish_reason=call.finish_reason,
                    thinking=call.thinking,
                    tool_calls=tuple(call.metadata.get("tool_calls", ())),
                )
            )
        quit_by = None
        if transcript.stop_reason == "interrupted":
            # A run a person stopped ends after their last answer, where the session asked them once more.
            quit_by = next((r for r, calls in per_role.items() if calls and calls[-1].model == HUMAN_MODEL), None)
        return cls(
            run_id=transcript.run_id,
            calls={role: tuple(c) for role, c in per_role.items()},
            quit_by=quit_by,
            complete=transcript.stop_reason != "interrupted",
        )


class ReplayModel(ChatModel):
    """Answers a role's calls with the recorded responses, in order."""

    provider = "replay"
    supports_json_schema = True
    supports_tools = True
    """Only recorded tool calls are ever answered; a run without them never calls a tool."""

    def __init__(self, ref: str, recording: Recording, role: str) -> None:
        calls = recording.calls.get(role, ())
        # The recorded model's name, so the rerun's agent snapshot and cost block carry the same keys.
        super().__init__(ref=ref, name=calls[0].model if calls else f"replay-{role}", context_length=REPLAY_CONTEXT)
        self.recording = recording
        self.role = role
        self._queue: deque[RecordedCall] = deque(calls)
        self.answered = 0
        self.exhausted = False

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        # Only used to fit prompts to the context window, which a replay never needs; a rough size is enough.
        return sum(len(m.content) // _CHARS_PER_TOKEN + 1 for m in messages)

    async def complete(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        if not self._queue and self.recording.quit_by == self.role:
            raise PersonQuit(f"the person in the {self.role} seat stopped run {self.recording.run_id} here")
        if not self._queue:
            self.exhausted = True  # for an interrupted original, this is where it was killed (see replay.rerun)
            recorded = len(self.recording.calls.get(self.role, ()))
            raise ModelCallError(
                f"replay of run {self.recording.run_id}: the session asked the {self.role} for answer {self.answered + 1},"
                f" but the run recorded only {recorded}"
            )
        call = self._queue.popleft()
        self.answered += 1
        if request.on_text is not None:
            request.on_text(call.content)
        return Completion(
            content=call.content,
            model=call.model,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            prompt_tokens_evaluated=call.prompt_tokens_evaluated,
            latency_s=round(time.perf_counter() - start, 6),
            generation_s=0.0,
            finish_reason=call.finish_reason,
            thinking=call.thinking,
            tool_calls=[dict(c) for c in call.tool_calls],
            cached=True,
            metadata={
                "replayed": True,
                "replay_of": self.recording.run_id,
                "original_call": call.call_index,
                "original_latency_s": call.latency_s,
            },
        )


def create(name: str, ref: str, options: ModelOptions) -> ReplayModel:
    extra = dict(options.extra)
    recording = extra.get(RECORDING_KEY)
    if recording is None:
        from interview_sim.record import load_transcript

        recording = Recording.from_transcript(load_transcript(name))
    if not isinstance(recording, Recording):
        raise TypeError(f"ModelOptions.extra[{RECORDING_KEY!r}] must be a Recording, got {type(recording).__name__}")
    return ReplayModel(ref, recording, options.seat or options.role)
