"""The AutoGen adapter: the only module that imports AutoGen (`autogen_agentchat`, `autogen_core`).

AutoGen AgentChat runs the agents and the turn-taking: two `AssistantAgent`s in a `RoundRobinGroupChat`, or
for a panel every panelist and the candidate in a `SelectorGroupChat` whose `selector_func` is deterministic
(the owner of the next stage speaks after the candidate; the candidate after any panelist). Small adapters
connect it to the session's state (`state`) and recorder (`recorder`):

* `ClientAdapter` turns one of our `ChatModel`s into an AutoGen `ChatCompletionClient`, fits each prompt
  to the model's context window and records every call (tool calls included);
* `SeatContext` ends each prompt with the session's note: for an interviewer the current script stage and
  the time left, and for every seat the whiteboard when the session has one;
* `SessionStop` advances the simulated clock and the whiteboard and stops on max turns, time budget or the
  end marker;
* `whiteboard_tools` are the `whiteboard_write` / `whiteboard_erase` function tools of models that declare
  tool calling: each returns the equivalent fenced block, which becomes the turn's text.

AutoGen is in maintenance mode; replacing it is a change to this file only. `run` imports this module
inside the function that runs a session, so `interview-sim --help` never pays for AutoGen.

Cancellation (Ctrl-C): AutoGen's `run_stream` waits for the agent in flight to finish its model call before it
stops; `chat_messages` cancels the model calls in flight first, so cancellation reaches every awaited call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, TaskResult, Team, TerminationCondition
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage, TextMessage, ToolCallSummaryMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core import CancellationToken, FunctionCall
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelFamily,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.models import ModelInfo as AutogenModelInfo
from autogen_core.tools import BaseTool, FunctionTool, Tool

from interview_sim.config import AgentSpec, LoadedScenario
from interview_sim.errors import ModelCallError
from interview_sim.models import ChatMessage, ChatModel, Completion, CompletionRequest
from interview_sim.models.base import fit_to_context
from interview_sim.models.human import PersonQuit
from interview_sim.models.thinking import describe_empty_answer, is_empty_answer, separate_thinking
from interview_sim.session.recorder import SessionRecorder, cut_back_to_sentence
from interview_sim.session.state import SessionState, agent_name
from interview_sim.session.whiteboard import render_block

# AutoGen logs a failed agent call with its traceback before re-raising it; we record and report the failure
# ourselves (one line, details in events.jsonl), so its loggers get a handler of their own instead of Python's
# last-resort stderr handler. They still propagate to any logging a caller configures.
for _name in ("autogen_core", "autogen_agentchat"):
    logging.getLogger(_name).addHandler(logging.NullHandler())

__all__ = [
    "ClientAdapter",
    "InFlightCalls",
    "SeatContext",
    "SessionStop",
    "SessionTeam",
    "build_team",
    "chat_messages",
    "whiteboard_tools",
]

WIND_DOWN_S = 0.5
"""After a cancellation, how long AutoGen gets to stop its agents before the session stops waiting for it."""


class InFlightCalls:
    """The model calls of one session that are running now, so a cancelled session can cancel them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Completion]] = set()

    async def run(self, call: Coroutine[Any, Any, Completion], token: CancellationToken | None) -> Completion:
        task = asyncio.ensure_future(call)
        if token is not None:
            token.link_future(task)
        self._tasks.add(task)
        try:
            return await task
        finally:
            self._tasks.discard(task)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class ClientAdapter(ChatCompletionClient):
    """One of our ChatModels as an AutoGen model client for one seat."""

    def __init__(
        self,
        seat: str,
        role: str,
        agent: AgentSpec,
        model: ChatModel,
        recorder: SessionRecorder,
        seed: int | None,
        in_flight: InFlightCalls | None = None,
    ) -> None:
        self._seat, self._role, self._agent, self._model = seat, role, agent, model
        self._recorder, self._seed = recorder, seed
        self._in_flight = in_flight or InFlightCalls()
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._converted: dict[int, tuple[LLMMessage, ChatMessage]] = {}

    def _to_chat(self, messages: Sequence[LLMMessage]) -> list[ChatMessage]:
        # AutoGen passes the same message objects on every call: each is converted once (the entry keeps the
        # object alive, so its id cannot be reused), which keeps a long session's calls from growing with it.
        chat: list[ChatMessage] = []
        for m in messages:
            seen = self._converted.get(id(m))
            if seen is not None and seen[0] is m:
                chat.append(seen[1])
                continue
            if isinstance(m, SystemMessage):
                converted = ChatMessage("system", m.content)
            elif isinstance(m, FunctionExecutionResultMessage):
                # This seat's own tool calls: what they put in its turn (the equivalent whiteboard block).
                converted = ChatMessage("assistant", "\n".join(r.content for r in m.content))
            elif isinstance(m, AssistantMessage) and not isinstance(m.content, str):
                continue  # the tool-call request itself; its result follows
            elif isinstance(m, AssistantMessage) or (isinstance(m, UserMessage) and m.source == agent_name(self._seat)):
                converted = ChatMessage("assistant", str(m.content))
            else:
                converted = ChatMessage("user", str(m.content))
            self._converted[id(m)] = (m, converted)
            chat.append(converted)
        return chat

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = (),
        tool_choice: Any = "auto",
        json_output: Any = None,
        extra_create_args: Any = None,
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        fitted = fit_to_context(self._model, self._to_chat(messages), self._agent.max_tokens)
        request = CompletionRequest(
            messages=tuple(fitted.messages),
            max_tokens=fitted.max_tokens,
            temperature=self._agent.temperature,
            repeat_penalty=self._agent.repeat_penalty,
            seed=self._seed if self._seed is not None else self._agent.seed,
            think=self._agent.think,
            on_text=self._recorder.text_sink(self._role),
            tools=tuple(_tool_schema(t) for t in tools),
        )
        completion = await self._answer(request, fitted.dropped, cancellation_token)
        self._usage = RequestUsage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens)
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + completion.prompt_tokens,
            completion_tokens=self._total.completion_tokens + completion.completion_tokens,
        )
        if completion.tool_calls:
            calls = [
                FunctionCall(id=f"call_{n}", name=str(c["name"]), arguments=json.dumps(c.get("arguments", {})))
                for n, c in enumerate(completion.tool_calls)
            ]
            return CreateResult(finish_reason="function_calls", content=calls, usage=self._usage, cached=completion.cached)
        finish = completion.finish_reason if completion.finish_reason in ("stop", "length") else "unknown"
        return CreateResult(finish_reason=finish, content=completion.content, usage=self._usage, cached=completion.cached)

    async def _answer(self, request: CompletionRequest, trimmed: int, token: CancellationToken | None) -> Completion:
        """One recorded call, reasoning kept apart, an answer cut off by the token cap cut back to its last
        complete sentence (the cut text is kept); an empty answer is retried once, then stops the session."""
        for attempt in (1, 2):
            try:
                completion = separate_thinking(await self._in_flight.run(self._model.complete(request), token))
            except ModelCallError as exc:
                self._recorder.failure(self._role, self._agent, self._model, exc)
                raise
            except PersonQuit:
                self._recorder.person_quit = True
                raise
            if attempt == 2 and is_empty_answer(completion):
                completion.metadata["empty_answer"] = "retried once; still empty"
            elif is_empty_answer(completion):
                completion.metadata["empty_answer"] = "retried"
            if completion.finish_reason == "length" and not is_empty_answer(completion):
                completion = cut_back_to_sentence(completion)
            self._recorder.call(self._role, self._agent, self._model, completion, trimmed, seat=self._seat)
            if not is_empty_answer(completion) or completion.tool_calls:  # a tool call is an answer without text
                return completion
        error = ModelCallError(describe_empty_answer(self._model.ref, completion, request.max_tokens))
        self._recorder.failure(self._role, self._agent, self._model, error)
        raise error

    def create_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the session does not stream")

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = ()) -> int:
        return self._model.count_tokens(self._to_chat(messages))

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = ()) -> int:
        return self._model.context_length - self.count_tokens(messages)

    @property
    def capabilities(self) -> Any:
        return {
            "vision": False,
            "function_calling": self._model.supports_tools,
            "json_output": self._model.supports_json_schema,
        }

    @property
    def model_info(self) -> AutogenModelInfo:
        return AutogenModelInfo(
            vision=False,
            function_calling=self._model.supports_tools,
            json_output=self._model.supports_json_schema,
            family=ModelFamily.UNKNOWN,
            structured_output=False,
            multiple_system_messages=True,
        )


def _tool_schema(tool: Tool | Any) -> dict[str, Any]:
    schema = tool.schema if isinstance(tool, Tool) else tool
    return {"type": "function", "function": dict(schema)}


def whiteboard_tools() -> list[BaseTool[Any, Any] | Callable[..., Any] | Callable[..., Awaitable[Any]]]:
    """The whiteboard as function tools. Each returns the fenced block that makes the same change, so a tool
    call ends as the same turn text - and the same board records - as a block written by hand."""

    def whiteboard_write(title: str, text: str) -> str:
        return render_block([(title, text)])

    def whiteboard_erase(title: str) -> str:
        return render_block([(title, "")])

    return [
        FunctionTool(whiteboard_write, "Write a section of the shared whiteboard (replaces a section of that title)."),
        FunctionTool(whiteboard_erase, "Erase a section of the shared whiteboard."),
    ]


class SeatContext(UnboundedChatCompletionContext):
    """A seat's memory, plus the session's note at the end of each prompt: for an interviewer the current
    stage and the time left, and for every seat the whiteboard when the session has one."""

    def __init__(self, state: SessionState, role: str, model: ChatModel, turn_note: str | None = None) -> None:
        super().__init__()
        self._state, self._role, self._model, self._turn_note = state, role, model, turn_note

    async def get_messages(self) -> list[LLMMessage]:
        # The turn note is a reminder for a model; a person in the seat is shown only the session's own notes.
        notes = [self._turn_note.strip()] if self._turn_note and self._model.provider != "human" else []
        if self._role == "interviewer":
            stage = self._state.stage_for_next_interviewer_turn()
            self._state.pending_stage = stage
            notes.append(self._state.stage_note(stage))
        board = self._state.board_note(self._model)
        if board is not None:
            notes.append(board)
        if not notes:
            return list(self._messages)
        return [*self._messages, SystemMessage(content="\n\n".join(notes))]


InterviewerContext = SeatContext


class SessionStop(TerminationCondition):
    """Advances the simulated clock and the whiteboard on every message and applies the session's stop rule."""

    def __init__(self, state: SessionState) -> None:
        self._state = state
        self._terminated = False

    @property
    def terminated(self) -> bool:
        return self._terminated

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        for message in messages:
            if not isinstance(message, BaseChatMessage):
                continue
            via = "tool" if isinstance(message, ToolCallSummaryMessage) else "block"
            reason = self._state.advance(message.source, message.to_text(), via=via)
            if reason is not None:
                self._terminated = True
                return StopMessage(content=f"session stopped: {reason}", source="session")
        return None

    async def reset(self) -> None:
        self._terminated = False


@dataclass(frozen=True)
class SessionTeam:
    """The session's AutoGen team (a RoundRobinGroupChat, or a SelectorGroupChat for a panel), with its model
    calls in flight."""

    chat: RoundRobinGroupChat | SelectorGroupChat
    in_flight: InFlightCalls


def _agent(seat: str, role: str, spec: AgentSpec, model: ChatModel, state: SessionState, client: ClientAdapter) -> AssistantAgent:
    tools = whiteboard_tools() if model.supports_tools else None
    return AssistantAgent(
        name=agent_name(seat),
        model_client=client,
        system_message=spec.system_prompt,
        model_context=SeatContext(state, role, model, spec.turn_note),
        description=f"The {role} ({spec.name}).",
        tools=tools,
        reflect_on_tool_use=False,
        tool_call_summary_format="{result}",
    )


def build_team(
    scenario: LoadedScenario, models: dict[str, ChatModel], state: SessionState, recorder: SessionRecorder, seed: int | None
) -> SessionTeam:
    """The seats as AssistantAgents, stopped by the session's own rule: two taking turns in a RoundRobinGroupChat,
    or a panel in a SelectorGroupChat whose speaker selection follows the script (never a model)."""
    in_flight = InFlightCalls()
    seats = scenario.seats()
    clients = {
        seat: ClientAdapter(seat, role, spec, models[seat], recorder, seed, in_flight) for seat, (role, spec) in seats.items()
    }
    # After the opening line the candidate speaks first.
    order = ["candidate", *(seat for seat in seats if seat != "candidate")]
    agents: list[ChatAgent | Team] = [
        _agent(seat, seats[seat][0], seats[seat][1], models[seat], state, clients[seat]) for seat in order
    ]
    if not scenario.panel:
        return SessionTeam(RoundRobinGroupChat(agents, termination_condition=SessionStop(state)), in_flight)

    def select(thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
        last = next((m for m in reversed(thread) if isinstance(m, BaseChatMessage)), None)
        if last is None or last.source != "candidate":
            return "candidate"
        return agent_name(state.next_interviewer_seat())

    chat = SelectorGroupChat(
        agents,
        model_client=clients["candidate"],  # required by AutoGen, never asked: `select` always names the speaker
        selector_func=select,
        allow_repeated_speaker=True,
        termination_condition=SessionStop(state),
    )
    return SessionTeam(chat, in_flight)


async def chat_messages(team: SessionTeam, opening: str, opener: str = "interviewer") -> AsyncIterator[tuple[str, str]]:
    """Run the team from the opening line; yield (speaker, text) of every chat message, the opening first.

    Each step of AutoGen's stream runs shielded, so that a cancellation lands here first: the model calls in
    flight are cancelled, AutoGen gets WIND_DOWN_S to stop, and the cancellation goes on.
    """
    stream = team.chat.run_stream(task=TextMessage(content=opening, source=agent_name(opener)))
    step: asyncio.Future[Any] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(stream))
            try:
                item = await asyncio.shield(step)
            except StopAsyncIteration:
                step = None
                return
            step = None
            if isinstance(item, TaskResult) or not isinstance(item, BaseChatMessage):
                continue
            yield item.source, item.to_text()
    finally:
        team.in_flight.cancel_all()
        if step is not None:
            await _wind_down(step)
        if step is None or step.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.aclose(), WIND_DOWN_S)


async def _wind_down(step: asyncio.Future[Any]) -> None:
    """Cancel AutoGen's step and let it stop its runtime (quick once the calls in flight are cancelled), within
    WIND_DOWN_S; never raise."""
    step.add_done_callback(_retrieve)
    step.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait({step}, timeout=WIND_DOWN_S)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an abandoned step's failure is not reported as "never retrieved"
