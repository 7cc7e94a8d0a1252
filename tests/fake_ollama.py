"""A fake Ollama server: real HTTP on 127.0.0.1, so the real `ollama` client and httpx are exercised.

It speaks the part of Ollama's API that interview-sim uses (`GET /`, `GET /api/version`, `GET /api/tags`,
`POST /api/show`, `POST /api/chat` both ways: one JSON object with stream=false, or, like the real server,
NDJSON chunks over chunked transfer encoding with stream=true, each chunk a piece of the message and the final
one `done` with the counts and timings) and is scripted from the test:

    server.add_model("llama3:8b-instruct-fp16", context_length=8192)
    server.enqueue("Hello!", prompt_eval_count=12, eval_count=3)
    server.fail_next(2, status=500)      # the next two /api/chat calls answer HTTP 500
    server.delay_s = 0.05                # every /api/chat call takes at least 50 ms (benchmarks)
    server.chunk_delay_s = 0.2           # a streamed answer pauses this long between chunks
    server.chat_fault = "hang"           # fault mode for every /api/chat call: "hang", "reset", "500", "garbage"
    server.chat_requests[-1]["options"]  # what the client sent
    server.add_model("deepseek-r1:8b", thinking=True)   # a thinking model, as the real server runs one:
    server.enqueue("Answer.", thinking="Reasoning ...")  # thinking on unless the request says think: false

Thinking models behave as Ollama's server does (server/routes.go): /api/show lists the `thinking`
capability; a request without `think` thinks; the reasoning is returned in `message.thinking` and counted
in `eval_count`; reasoning and answer share `num_predict`, so a small budget spent on thinking returns an
empty `content` with `done_reason: length`. `think: true` to a model without the capability, or a level
("low"/"medium"/"high") to a model that takes none, is answered with HTTP 400.

Use it through the `fake_ollama` fixture (defined here as `fake_ollama_fixture`) or as a context manager.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_MODEL = "llama3:8b-instruct-fp16"
VERSION = "0.6.0-fake"


def normalize_tag(name: str) -> str:
    """Ollama's rule: a name without a tag means `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


@dataclass
class FakeModel:
    """One pulled model as /api/tags and /api/show describe it."""

    name: str
    context_length: int = 8192
    family: str = "llama"
    size: int = 4_661_224_676
    digest: str = ""
    parameters: str = ""
    """Modelfile parameters as /api/show returns them, e.g. 'num_ctx 4096\\nstop "<|eot_id|>"'."""
    thinking: bool = False
    """A thinking model (deepseek-r1, qwen3): /api/show lists the `thinking` capability."""
    think_levels: bool = False
    """Takes `think` levels ("low"/"medium"/"high"), as gpt-oss does; other models answer HTTP 400 to them."""
    default_thinking_words: int = 300
    """How long the model reasons, in tokens (one a word), when the reply sets no `thinking` text."""
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    """What /api/show says the model can do ("tools": function calling)."""

    def __post_init__(self) -> None:
        self.name = normalize_tag(self.name)
        if not self.digest:
            self.digest = hashlib.sha256(self.name.encode()).hexdigest()


@dataclass
class Reply:
    """One scripted /api/chat answer. Counts and durations default to honest-looking figures."""

    content: str
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    done_reason: str = "stop"
    total_duration: int | None = None
    load_duration: int | None = 1_000_000
    prompt_eval_duration: int | None = 20_000_000
    eval_duration: int | None = 80_000_000
    extra: dict[str, Any] = field(default_factory=dict)
    """More top-level response fields (e.g. prompt_eval_cached_count), or None values to drop a field."""
    thinking: str | None = None
    """What a thinking model reasons before this answer (when thinking is on); None: the model's default."""
    chunks: list[str] | None = None
    """How a streamed answer is cut (default: word by word, each piece with its leading whitespace)."""
    cut_stream: bool = False
    """Stream the pieces but end the response without the final `done` chunk (a dropped stream)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Function calls in the answer's message, as Ollama sends them: {"function": {"name", "arguments"}}."""


@dataclass
class Failure:
    """A forced failure: an HTTP status with an Ollama-style error body, or (status 0) a dropped connection."""

    status: int = 500
    error: str = "fake ollama: internal server error"
    path: str = "/api/chat"


def _words(text: str) -> list[str]:
    """Word by word, each piece with the whitespace before it (pieces join back to the text)."""
    return re.findall(r"\s*\S+|\s+$", text)


@dataclass
class Streamed:
    """A streamed /api/chat answer: the NDJSON chunks, and the pause between them."""

    parts: list[dict[str, Any]]
    delay_s: float = 0.0


def _estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) + 4 for m in messages)


class FakeOllama:
    """A scripted Ollama server running in a background thread until `close()`."""

    def __init__(self, models: list[FakeModel] | None = None, *, delay_s: float = 0.0, chunk_delay_s: float = 0.0) -> None:
        self.models: list[FakeModel] = list(models) if models is not None else [FakeModel(DEFAULT_MODEL)]
        self.delay_s = delay_s
        """Minimum time each /api/chat call takes (the handler sleeps; calls still overlap across threads)."""
        self.chunk_delay_s = chunk_delay_s
        """Pause between the chunks of a streamed answer."""
        self.replies: deque[Reply] = deque()
        self.failures: deque[Failure] = deque()
        self.requests: list[dict[str, Any]] = []
        """Every request received, in order: {"method", "path", "body"} (body is parsed JSON or None)."""
        self.chat_fault: str | None = None
        """Fault mode of every /api/chat call (the listing and /api/show keep answering): "hang" never answers
        (until close()), "reset" drops the connection, "500" answers HTTP 500, "garbage" answers 200 with a
        body that is not JSON."""
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._chat_count = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-ollama", daemon=True)
        self._thread.start()

    # -- addresses -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, the scheme-less form OLLAMA_HOST accepts."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- scripting -------------------------------------------------------------------------------------

    def add_model(self, name: str, **kwargs: Any) -> FakeModel:
        model = FakeModel(name, **kwargs)
        with self._lock:
            self.models = [m for m in self.models if m.name != model.name] + [model]
        return model

    def enqueue(self, content: str, **kwargs: Any) -> Reply:
        """Queue the next /api/chat answer; without a queued reply the server answers `reply <n>`."""
        reply = Reply(content, **kwargs)
        with self._lock:
            self.replies.append(reply)
        return reply

    def fail_next(self, n: int = 1, *, status: int = 500, error: str | None = None, path: str = "/api/chat") -> None:
        """Make the next `n` requests to `path` fail with `status` (0: close the connection without answering)."""
        with self._lock:
            for _ in range(n):
                self.failures.append(Failure(status, error or f"fake ollama: forced HTTP {status}", path))

    def find(self, name: str) -> FakeModel | None:
        wanted = normalize_tag(name).casefold()
        with self._lock:
            return next((m for m in self.models if m.name.casefold() == wanted), None)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every /api/chat request, in order."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"] == "/api/chat"]

    # -- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        self._closing.set()  # releases hung handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOllama:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request handling (runs on the server's threads) -----------------------------------------------

    def _record(self, method: str, path: str, body: Any) -> Failure | None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body})
            if self.failures and self.failures[0].path == path:
                return self.failures.popleft()
        return None

    def _tags(self) -> dict[str, Any]:
        with self._lock:
            models = list(self.models)
        return {
            "models": [
                {
                    "name": m.name,
                    "model": m.name,
                    "modified_at": "2024-06-01T12:00:00.000000000Z",
                    "size": m.size,
                    "digest": m.digest,
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": m.family,
                        "families": [m.family],
                        "parameter_size": "8.0B",
                        "quantization_level": "F16",
                    },
                }
                for m in models
            ]
        }

    def _show(self, model: FakeModel) -> dict[str, Any]:
        return {
            "modelfile": f"FROM {model.name}\n",
            "parameters": model.parameters,
            "template": "{{ .Prompt }}",
            "details": {"format": "gguf", "family": model.family, "parameter_size": "8.0B", "quantization_level": "F16"},
            "model_info": {
                "general.architecture": model.family,
                "general.parameter_count": 8_030_261_248,
                f"{model.family}.context_length": model.context_length,
                f"{model.family}.embedding_length": 4096,
            },
            "capabilities": [*model.capabilities, *(["thinking"] if model.thinking else [])],
            "modified_at": "2024-06-01T12:00:00.000000000Z",
        }

    def _chat(self, body: dict[str, Any], model: FakeModel) -> dict[str, Any]:
        return self._answer(body, model)[0]

    def _chat_stream(self, body: dict[str, Any], model: FakeModel) -> Streamed:
        """The same answer as `_chat` would give, as the real server streams it."""
        final, reply = self._answer(body, model)
        content, thinking = final["message"]["content"], final["message"].get("thinking") or ""
        pieces = reply.chunks if reply.chunks is not None else _words(content)
        head = {"model": final["model"], "created_at": final["created_at"]}
        # Like the server: the reasoning streams first (in message.thinking), then the answer.
        parts = [
            {**head, "message": {"role": "assistant", "content": "", "thinking": p}, "done": False} for p in _words(thinking)
        ]
        parts += [{**head, "message": {"role": "assistant", "content": p}, "done": False} for p in pieces]
        if reply.tool_calls:  # like the server: the calls come in a chunk of their own, before the final one
            parts.append({**head, "message": {"role": "assistant", "content": "", "tool_calls": reply.tool_calls}, "done": False})
        if not reply.cut_stream:
            parts.append({**final, "message": {"role": "assistant", "content": ""}})
        return Streamed(parts, self.chunk_delay_s)

    def _answer(self, body: dict[str, Any], model: FakeModel) -> tuple[dict[str, Any], Reply]:
        with self._lock:
            self._chat_count += 1
            reply = self.replies.popleft() if self.replies else None
            n = self._chat_count
        if reply is None:
            reply = Reply("{}" if body.get("format") else f"reply {n}")
        messages = body.get("messages") or []
        prompt_eval_count = reply.prompt_eval_count
        if prompt_eval_count is None:
            prompt_eval_count = _estimate_prompt_tokens(messages)
        content, thinking, done_reason = reply.content, None, reply.done_reason
        if model.thinking and body.get("think") is not False:  # no `think` field: a thinking model thinks
            content, thinking, done_reason = _think(reply, model, body)
        eval_count = reply.eval_count
        if eval_count is None:
            eval_count = len(content.split()) + len((thinking or "").split())
        durations = [reply.load_duration, reply.prompt_eval_duration, reply.eval_duration]
        total = reply.total_duration if reply.total_duration is not None else sum(d or 0 for d in durations) + 1_000_000
        response: dict[str, Any] = {
            "model": body.get("model", model.name),
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": content, **({"thinking": thinking} if thinking else {})}
            | ({"tool_calls": reply.tool_calls} if reply.tool_calls else {}),
            "done_reason": done_reason,
            "done": True,
            "total_duration": total,
            "load_duration": reply.load_duration,
            "prompt_eval_count": prompt_eval_count,
            "prompt_eval_duration": reply.prompt_eval_duration,
            "eval_count": eval_count,
            "eval_duration": reply.eval_duration,
        }
        response.update(reply.extra)
        return {k: v for k, v in response.items() if v is not None}, reply

    def _fault(self, mode: str) -> tuple[int, Any]:
        if mode == "hang":
            self._closing.wait()
            return 0, None
        if mode == "reset":
            return 0, None
        if mode == "500":
            return 500, {"error": "fake ollama: internal server error (chat_fault)"}
        if mode == "garbage":
            return -200, GARBAGE
        raise ValueError(f"unknown chat_fault {mode!r}")

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Answer one request: (HTTP status, JSON body or plain text). Status 0 means drop the connection."""
        failure = self._record(method, path, body)
        if path == "/api/chat" and self.delay_s:
            time.sleep(self.delay_s)
        if path == "/api/chat" and self.chat_fault is not None:
            return self._fault(self.chat_fault)
        if failure is not None:
            return failure.status, {"error": failure.error}
        if method == "GET" and path == "/":
            return 200, "Ollama is running"
        if method == "GET" and path == "/api/version":
            return 200, {"version": VERSION}
        if method == "GET" and path == "/api/tags":
            return 200, self._tags()
        if method == "POST" and path in ("/api/show", "/api/chat"):
            if not isinstance(body, dict):
                return 400, {"error": "invalid request body"}
            name = str(body.get("model") or body.get("name") or "")
            model = self.find(name) if name else None
            if model is None:
                return 404, {"error": f"model '{name}' not found"}
            if path == "/api/show":
                return 200, self._show(model)
            refusal = _think_refusal(body, model)
            if refusal is not None:
                return 400, {"error": refusal}
            if body.get("stream", True):
                return 200, self._chat_stream(body, model)
            return 200, self._chat(body, model)
        return 404, {"error": f"{method} {path}: not found"}


def _think_refusal(body: dict[str, Any], model: FakeModel) -> str | None:
    """Ollama's checks of `think` (server/routes.go): levels only where the model takes them, and
    `think: true` only for a thinking-capable model."""
    think = body.get("think")
    if isinstance(think, str) and not model.think_levels:
        return f"think value {think!r} is not supported for this model".replace("'", '"')
    if think and not model.thinking:
        return f'"{body.get("model")}" does not support thinking'
    return None


def _think(reply: Reply, model: FakeModel, body: dict[str, Any]) -> tuple[str, str, str]:
    """(content, thinking, done_reason) of a thinking model: the reasoning first, then the answer, both
    out of one `num_predict` budget (one token a word)."""
    thinking = reply.thinking
    if thinking is None:
        thinking = " ".join(f"Let me think about step {i} of the question." for i in range(model.default_thinking_words // 9 + 1))
    budget = int((body.get("options") or {}).get("num_predict") or -1)
    words, answer = thinking.split(), reply.content.split()
    if budget < 0 or len(words) + len(answer) <= budget:
        return reply.content, thinking, reply.done_reason
    if len(words) >= budget:
        return "", " ".join(words[:budget]), "length"
    return " ".join(answer[: budget - len(words)]), thinking, "length"


GARBAGE = "<html>not json {"
"""What chat_fault="garbage" answers with status 200."""


def _make_handler(server: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            status, payload = server.handle(method, self.path.split("?", 1)[0], body)
            if status == 0:
                self.close_connection = True
                return
            if isinstance(payload, Streamed):
                self._stream(payload)
                return
            if status < 0:  # a body that claims to be JSON and is not
                status, data, content_type = -status, str(payload).encode(), "application/json; charset=utf-8"
            elif isinstance(payload, str):
                data, content_type = payload.encode(), "text/plain; charset=utf-8"
            else:
                data, content_type = json.dumps(payload).encode(), "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

        def _stream(self, streamed: Streamed) -> None:
            # As Ollama does: NDJSON, one chunk per line, chunked transfer encoding, flushed as generated.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n, part in enumerate(streamed.parts):
                if n and streamed.delay_s:
                    time.sleep(streamed.delay_s)
                line = json.dumps(part).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


@pytest.fixture(name="fake_ollama")
def fake_ollama_fixture() -> Iterator[FakeOllama]:
    """A fresh fake Ollama server with DEFAULT_MODEL pulled; closed after the test."""
    with FakeOllama() as server:
        yield server
