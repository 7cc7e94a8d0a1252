"""Ollama streaming: the real `ollama` client with stream=True against the fake server's NDJSON chunks."""

from __future__ import annotations

import time

import pytest

from fake_ollama import DEFAULT_MODEL, FakeOllama, fake_ollama_fixture  # noqa: F401
from interview_sim.errors import ModelCallError
from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model
from interview_sim.models.ollama import OllamaModel


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_model(server: FakeOllama) -> OllamaModel:
    model = create_model(f"ollama:{DEFAULT_MODEL}", ModelOptions(host=server.url))
    assert isinstance(model, OllamaModel)
    model.retry_initial_wait = 0.01
    return model


def request(**kwargs: object) -> CompletionRequest:
    messages = (ChatMessage("system", "You are a candidate."), ChatMessage("user", "Design a URL shortener."))
    return CompletionRequest(messages=messages, max_tokens=64, seed=3, **kwargs)  # type: ignore[arg-type]


ANSWER = "I would hash the long URL, keep the mapping in a key-value store, and cache hot codes."


@pytest.mark.anyio
async def test_streamed_answer_equals_the_non_streamed_one(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama)
    counts = {"prompt_eval_count": 31, "eval_count": 19, "done_reason": "stop"}
    fake_ollama.enqueue(ANSWER, **counts)  # type: ignore[arg-type]
    fake_ollama.enqueue(ANSWER, **counts)  # type: ignore[arg-type]
    pieces: list[str] = []
    try:
        plain = await model.complete(request())
        streamed = await model.complete(request(on_text=pieces.append))
    finally:
        await model.aclose()
    bodies = fake_ollama.chat_requests
    assert [b["stream"] for b in bodies] == [False, True]
    assert bodies[0]["options"] == bodies[1]["options"]
    assert len(pieces) == len(ANSWER.split()) and "".join(pieces) == ANSWER
    assert streamed.content == plain.content == ANSWER
    same = ("model", "prompt_tokens", "completion_tokens", "prompt_tokens_evaluated", "generation_s", "finish_reason")
    assert {f: getattr(streamed, f) for f in same} == {f: getattr(plain, f) for f in same}
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (31, 19)
    assert streamed.metadata["timings"] == plain.metadata["timings"]


@pytest.mark.anyio
async def test_pieces_arrive_while_the_answer_is_still_being_written(fake_ollama: FakeOllama) -> None:
    fake_ollama.chunk_delay_s = 0.15
    fake_ollama.enqueue("one two three four", eval_count=4)
    model = make_model(fake_ollama)
    arrivals: list[float] = []
    try:
        start = time.monotonic()
        completion = await model.complete(request(on_text=lambda _piece: arrivals.append(time.monotonic())))
        done = time.monotonic()
    finally:
        await model.aclose()
    assert completion.content == "one two three four" and len(arrivals) == 4
    # The server pauses 0.15 s between chunks: the first piece was handed over before the last was sent.
    assert arrivals[0] - start < done - start - 0.3
    assert arrivals == sorted(arrivals) and arrivals[-1] - arrivals[0] >= 0.3


@pytest.mark.anyio
async def test_a_stream_cut_before_done_is_retried_then_reported(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama)
    model.retry_attempts = 2
    fake_ollama.enqueue("half an", cut_stream=True)
    fake_ollama.enqueue("whole answer", eval_count=2)
    pieces: list[str] = []
    try:
        completion = await model.complete(request(on_text=pieces.append))
        assert completion.content == "whole answer" and completion.completion_tokens == 2
        assert len(completion.retries) == 1 and "ended the stream" in completion.retries[0].error
        # The cut attempt's pieces were shown before the retry (the terminal shows them again).
        assert "".join(pieces) == "half an" + "whole answer"
        fake_ollama.enqueue("cut", cut_stream=True)
        fake_ollama.enqueue("cut again", cut_stream=True)
        with pytest.raises(ModelCallError, match="ended the stream"):
            await model.complete(request(on_text=pieces.append))
    finally:
        await model.aclose()


@pytest.mark.anyio
async def test_streaming_errors_are_the_same_one_line_errors(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama)
    model.retry_attempts = 1
    fake_ollama.fail_next(1, status=404, error="model 'x' not found")
    try:
        with pytest.raises(ModelCallError, match="is not pulled"):
            await model.complete(request(on_text=lambda _p: None))
    finally:
        await model.aclose()


@pytest.mark.anyio
async def test_a_thinking_model_streams_its_answer_and_keeps_the_reasoning_apart(fake_ollama: FakeOllama) -> None:
    fake_ollama.add_model("deepseek-r1:8b", thinking=True)
    model = create_model("ollama:deepseek-r1:8b", ModelOptions(host=fake_ollama.url))
    assert isinstance(model, OllamaModel)
    pieces: list[str] = []
    try:
        await model.check_ready()
        for _ in range(2):
            fake_ollama.enqueue("Use a queue.", thinking="The writes pile up, so buffer them.")
        plain = await model.complete(request(think=True))
        streamed = await model.complete(request(think=True, on_text=pieces.append))
    finally:
        await model.aclose()
    assert "".join(pieces) == "Use a queue."  # the reasoning is not shown as the answer
    assert (
        (streamed.content, streamed.thinking)
        == (plain.content, plain.thinking)
        == ("Use a queue.", "The writes pile up, so buffer them.")
    )
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (plain.prompt_tokens, plain.completion_tokens)


@pytest.mark.anyio
async def test_a_streamed_answer_keeps_its_tool_calls(fake_ollama: FakeOllama) -> None:
    fake_ollama.add_model("tooler:1b", capabilities=["completion", "tools"])
    model = create_model("ollama:tooler:1b", ModelOptions(host=fake_ollama.url))
    assert isinstance(model, OllamaModel)
    call = {"function": {"name": "whiteboard_write", "arguments": {"title": "API", "text": "POST /v1/links"}}}
    fake_ollama.enqueue("", tool_calls=[call])
    fake_ollama.enqueue("", tool_calls=[call])
    tool = {"type": "function", "function": {"name": "whiteboard_write", "parameters": {"type": "object"}}}
    try:
        await model.check_ready()
        plain = await model.complete(request(tools=(tool,)))
        streamed = await model.complete(request(tools=(tool,), on_text=lambda _piece: None))
    finally:
        await model.aclose()
    assert [b["stream"] for b in fake_ollama.chat_requests] == [False, True]
    assert all(b["tools"] == [tool] for b in fake_ollama.chat_requests)
    assert plain.tool_calls == streamed.tool_calls == [{"name": "whiteboard_write", "arguments": call["function"]["arguments"]}]
