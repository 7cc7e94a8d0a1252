"""The Ollama provider against a fake Ollama server speaking real HTTP (see fake_ollama.py).

One live test talks to a real Ollama at OLLAMA_HOST; it is marked `ollama_live` and skips when none answers.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from fake_ollama import DEFAULT_MODEL, FakeOllama, fake_ollama_fixture  # noqa: F401
from interview_sim.errors import ModelCallError, ModelNotReadyError
from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model
from interview_sim.models import ollama as ollama_backend
from interview_sim.models.ollama import OllamaModel, resolve_host

LIVE_HOST = os.environ.get("OLLAMA_HOST")
"""Read at import: the autouse fixture below hides OLLAMA_HOST from every test."""

SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_ambient_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


def make_model(server: FakeOllama, tag: str = DEFAULT_MODEL, **options: object) -> OllamaModel:
    model = create_model(f"ollama:{tag}", ModelOptions(host=server.url, **options))  # type: ignore[arg-type]
    assert isinstance(model, OllamaModel)
    model.retry_initial_wait = 0.01  # keep the backoff short; the policy itself is base.py's
    return model


def request(text: str = "Design a URL shortener.", **kwargs: object) -> CompletionRequest:
    messages = (ChatMessage("system", "You are a candidate."), ChatMessage("user", text))
    return CompletionRequest(messages=messages, **{"max_tokens": 64, **kwargs})  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts TCP connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- success and what is recorded ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_completion_maps_ollama_counts_durations_and_digest(fake_ollama: FakeOllama) -> None:
    pulled = fake_ollama.add_model(DEFAULT_MODEL, context_length=4096)
    fake_ollama.enqueue(
        "I would hash the URL.",
        prompt_eval_count=42,
        eval_count=7,
        done_reason="length",
        total_duration=150_000_000,
        load_duration=5_000_000,
        prompt_eval_duration=30_000_000,
        eval_duration=70_000_000,
    )
    model = make_model(fake_ollama)
    await model.check_ready()
    result = await model.complete(request())
    await model.aclose()

    assert model.provider == "ollama" and model.supports_json_schema
    assert model.name == DEFAULT_MODEL and result.model == DEFAULT_MODEL
    assert model.context_length == 4096  # from /api/show model_info "llama.context_length"
    assert result.content == "I would hash the URL."
    assert (result.prompt_tokens, result.completion_tokens, result.prompt_tokens_evaluated) == (42, 7, 42)
    assert result.generation_s == pytest.approx(0.1)  # prompt_eval_duration + eval_duration
    assert result.finish_reason == "length"
    assert result.retries == []
    assert 0 < result.latency_s < 5
    assert result.metadata["digest"] == pulled.digest
    assert result.metadata["host"] == fake_ollama.url
    assert result.metadata["timings"] == {
        "total_duration": 150_000_000,
        "load_duration": 5_000_000,
        "prompt_eval_count": 42,
        "prompt_eval_duration": 30_000_000,
        "eval_count": 7,
        "eval_duration": 70_000_000,
    }
    assert "estimated" not in result.metadata


@pytest.mark.anyio
async def test_missing_timing_fields_are_left_out(fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(
        "ok", prompt_eval_count=10, eval_count=1, load_duration=None, prompt_eval_duration=None, eval_duration=None
    )
    model = make_model(fake_ollama)
    result = await model.complete(request())
    await model.aclose()
    assert set(result.metadata["timings"]) == {"total_duration", "prompt_eval_count", "eval_count"}
    assert result.generation_s is None
    assert "digest" not in result.metadata  # only known after check_ready()


@pytest.mark.anyio
async def test_request_carries_sampling_options_num_ctx_and_schema(fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue('{"score": 3, "reason": "clear"}')
    model = make_model(fake_ollama, context_length=3000)
    await model.check_ready()
    await model.complete(request(max_tokens=77, temperature=0.2, seed=1234, repeat_penalty=1.3, json_schema=SCHEMA))
    await model.complete(request(max_tokens=5))
    await model.aclose()

    with_schema, plain = fake_ollama.chat_requests
    assert with_schema["model"] == DEFAULT_MODEL
    assert with_schema["stream"] is False
    assert with_schema["options"] == {
        "temperature": 0.2,
        "num_predict": 77,
        "repeat_penalty": 1.3,
        "num_ctx": 3000,
        "seed": 1234,
    }
    assert with_schema["format"] == SCHEMA
    assert with_schema["messages"] == [
        {"role": "system", "content": "You are a candidate."},
        {"role": "user", "content": "Design a URL shortener."},
    ]
    assert "format" not in plain
    assert "seed" not in plain["options"]  # no seed anywhere: Ollama picks one
    assert plain["options"]["num_predict"] == 5


@pytest.mark.anyio
async def test_agent_seed_is_the_default_seed(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama, seed=7)
    await model.complete(request())
    await model.complete(request(seed=8))
    await model.aclose()
    assert [body["options"]["seed"] for body in fake_ollama.chat_requests] == [7, 8]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("trained", "parameters", "override", "expected"),
    [
        (131072, "", None, ollama_backend.MAX_AUTO_CONTEXT),  # capped: a 128k KV cache is many GiB
        (4096, 'num_ctx 16384\nstop "<|eot_id|>"', None, 16384),  # the Modelfile's own num_ctx wins
        (131072, "num_ctx 16384", 12000, 12000),  # an explicit option wins over everything
    ],
)
async def test_context_length_is_what_is_sent_as_num_ctx(
    fake_ollama: FakeOllama, trained: int, parameters: str, override: int | None, expected: int
) -> None:
    fake_ollama.add_model(DEFAULT_MODEL, context_length=trained, parameters=parameters)
    model = make_model(fake_ollama, context_length=override)
    await model.check_ready()
    await model.complete(request())
    await model.aclose()
    assert model.context_length == expected
    assert model.trained_context_length == trained
    assert fake_ollama.chat_requests[0]["options"]["num_ctx"] == expected


@pytest.mark.anyio
async def test_unknown_context_sends_ollama_default(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama)  # no check_ready(): nothing learnt from /api/show
    await model.complete(request())
    await model.aclose()
    assert model.context_length == ollama_backend.DEFAULT_NUM_CTX == 2048
    assert fake_ollama.chat_requests[0]["options"]["num_ctx"] == 2048


# -- readiness ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_model_not_pulled_says_how_to_pull_it(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama, tag="mistral:7b")
    with pytest.raises(ModelNotReadyError) as info:
        await model.check_ready()
    message = str(info.value)
    assert "`ollama pull mistral:7b`" in message
    assert fake_ollama.url in message
    assert "\n" not in message


@pytest.mark.anyio
@pytest.mark.parametrize(("pulled", "asked"), [("phi3:latest", "phi3"), ("phi3", "phi3:latest"), ("Phi3:Mini", "phi3:mini")])
async def test_tags_match_the_way_ollama_does(fake_ollama: FakeOllama, pulled: str, asked: str) -> None:
    fake_ollama.add_model(pulled)
    model = make_model(fake_ollama, tag=asked)
    await model.check_ready()
    assert model.digest == fake_ollama.find(pulled).digest  # type: ignore[union-attr]
    await model.aclose()


@pytest.mark.anyio
async def test_server_down_says_ollama_serve_quickly() -> None:
    host = f"http://127.0.0.1:{free_port()}"
    model = create_model(f"ollama:{DEFAULT_MODEL}", ModelOptions(host=host))
    start = time.perf_counter()
    with pytest.raises(ModelNotReadyError) as info:
        await model.check_ready()
    assert time.perf_counter() - start < 5
    assert str(info.value) == f"Ollama is not reachable at {host}: start it with `ollama serve` (or set OLLAMA_HOST)"


@pytest.mark.anyio
async def test_server_that_never_answers_fails_within_the_ready_budget(silent_server: str) -> None:
    model = create_model(f"ollama:{DEFAULT_MODEL}", ModelOptions(host=silent_server))
    start = time.perf_counter()
    with pytest.raises(ModelNotReadyError, match="ollama serve"):
        await model.check_ready()
    assert time.perf_counter() - start < ollama_backend.READY_TIMEOUT_S + 0.5


@pytest.mark.anyio
async def test_server_error_on_tags_is_one_line(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(status=503, error="overloaded", path="/api/tags")
    model = make_model(fake_ollama)
    with pytest.raises(ModelNotReadyError, match=r"answered HTTP 503: overloaded$"):
        await model.check_ready()


# -- retries and errors --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_http_500_then_success_is_retried_and_recorded(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(1, status=500)
    fake_ollama.enqueue("second time lucky", eval_count=3)
    model = make_model(fake_ollama)
    result = await model.complete(request())
    await model.aclose()
    assert result.content == "second time lucky"
    assert len(result.retries) == 1
    assert result.retries[0].attempt == 1
    assert "500" in result.retries[0].error
    assert len(fake_ollama.chat_requests) == 2


@pytest.mark.anyio
async def test_dropped_connection_is_retried(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(1, status=0)
    model = make_model(fake_ollama)
    result = await model.complete(request())
    await model.aclose()
    assert result.content.startswith("reply")
    assert len(result.retries) == 1
    assert len(fake_ollama.chat_requests) == 2


@pytest.mark.anyio
async def test_persistent_500_fails_after_bounded_attempts(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(10, status=500, error="CUDA out of memory")
    model = make_model(fake_ollama)
    model.retry_attempts = 3
    with pytest.raises(ModelCallError) as info:
        await model.complete(request())
    await model.aclose()
    assert "failed after 3 attempts" in str(info.value)
    assert "CUDA out of memory" in str(info.value)
    assert "\n" not in str(info.value)
    assert len(fake_ollama.chat_requests) == 3


@pytest.mark.anyio
async def test_model_missing_at_chat_time_is_not_retried(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama, tag="gone:latest")
    with pytest.raises(ModelCallError) as info:
        await model.complete(request())
    await model.aclose()
    assert str(info.value) == f"model gone:latest is not pulled on {fake_ollama.url}: run `ollama pull gone:latest`"
    assert len(fake_ollama.chat_requests) == 1


@pytest.mark.anyio
async def test_server_down_at_chat_time_is_a_model_call_error() -> None:
    model = create_model(f"ollama:{DEFAULT_MODEL}", ModelOptions(host=f"127.0.0.1:{free_port()}"))
    assert isinstance(model, OllamaModel)
    model.retry_attempts, model.retry_initial_wait = 2, 0.01
    with pytest.raises(ModelCallError, match=r"failed after 2 attempts.*ollama serve"):
        await model.complete(request())


# -- host, tokens, listing, closing -------------------------------------------------------------------


@pytest.mark.anyio
async def test_ollama_host_without_scheme_is_accepted(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)  # "127.0.0.1:<port>", as the ollama CLI accepts
    model = create_model(f"ollama:{DEFAULT_MODEL}")
    assert isinstance(model, OllamaModel)
    assert model.host == fake_ollama.url
    await model.check_ready()
    result = await model.complete(request())
    await model.aclose()
    assert result.metadata["host"] == fake_ollama.url
    assert len(fake_ollama.chat_requests) == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "http://localhost:11434"),
        ("example.com", "http://example.com:11434"),
        ("example.com:1234", "http://example.com:1234"),
        ("https://example.com", "https://example.com:443"),
        ("http://10.0.0.2:8080/ollama/", "http://10.0.0.2:8080/ollama"),
        ("[::1]:9999", "http://[::1]:9999"),
        (":5000", "http://localhost:5000"),
    ],
)
def test_resolve_host(given: str | None, expected: str) -> None:
    assert resolve_host(given) == expected


def test_explicit_host_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "elsewhere:1")
    assert resolve_host("here:2") == "http://here:2"
    assert resolve_host() == "http://elsewhere:1"


def test_count_tokens_is_a_conservative_estimate(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama)
    messages = [ChatMessage("system", "abcdef"), ChatMessage("user", "abcdefg")]
    assert model.count_tokens(messages) == (2 + 4) + (3 + 4)
    text = "The quick brown fox jumps over the lazy dog. " * 20
    assert model.count_tokens([ChatMessage("user", text)]) >= len(text) / 4  # ~4 chars/token in English


def test_available_lists_pulled_models(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    second = fake_ollama.add_model("qwen2.5:0.5b", size=397_821_319)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    infos = {info.ref: info for info in ollama_backend.available()}
    assert set(infos) == {f"ollama:{DEFAULT_MODEL}", "ollama:qwen2.5:0.5b"}
    qwen = infos["ollama:qwen2.5:0.5b"]
    assert qwen.ready and qwen.provider == "ollama"
    assert qwen.detail == f"0.4 GB, {second.digest[:12]} at {fake_ollama.url}"


def test_available_when_unreachable_is_one_not_ready_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    infos = ollama_backend.available()
    assert len(infos) == 1
    assert infos[0].ref == "ollama:*" and not infos[0].ready
    assert "`ollama serve`" in infos[0].detail


@pytest.mark.anyio
async def test_aclose_closes_the_http_client(fake_ollama: FakeOllama) -> None:
    model = make_model(fake_ollama)
    await model.complete(request())
    client = model._client
    assert client is not None
    await model.aclose()
    assert client._client.is_closed
    assert model._client is None


# -- live ----------------------------------------------------------------------------------------------


@pytest.mark.ollama_live
@pytest.mark.anyio
async def test_live_ollama_round_trip() -> None:
    host = resolve_host(LIVE_HOST)
    try:
        httpx.get(f"{host}/api/version", timeout=1.0).raise_for_status()
        pulled = httpx.get(f"{host}/api/tags", timeout=2.0).json()["models"]
    except httpx.HTTPError as exc:
        pytest.skip(f"no Ollama answers at {host} ({type(exc).__name__}); start `ollama serve` or set OLLAMA_HOST")
    tag = os.environ.get("INTERVIEW_SIM_OLLAMA_MODEL") or (min(pulled, key=lambda m: m["size"])["name"] if pulled else None)
    if tag is None:
        pytest.skip(f"no model pulled on {host}: `ollama pull qwen2.5:0.5b` (or set INTERVIEW_SIM_OLLAMA_MODEL)")

    model = create_model(f"ollama:{tag}", ModelOptions(host=host))
    await model.check_ready()
    result = await model.complete(
        CompletionRequest(messages=(ChatMessage("user", "Say hello in one word."),), max_tokens=8, temperature=0.0, seed=1)
    )
    await model.aclose()
    assert result.model == tag
    assert result.prompt_tokens > 0
    assert 0 < result.completion_tokens <= 8
    assert result.metadata["digest"]
    assert result.metadata["timings"]["eval_count"] == result.completion_tokens
