"""`ollama:<tag>`: a model served by a running Ollama server, through the official `ollama` client.

The host is `ModelOptions.host`, else `OLLAMA_HOST` (`host:port` without a scheme is accepted, as the
ollama CLI does), else http://localhost:11434.

Context window: Ollama truncates a prompt longer than `num_ctx` silently, so every call sends `num_ctx`
explicitly and it always equals `context_length`, the figure the session trims prompts to. It is, in order:
`ModelOptions.context_length`; the Modelfile's own `num_ctx` parameter; the model's trained context from
/api/show capped at MAX_AUTO_CONTEXT (a 128k window would make Ollama allocate a KV cache of many GiB);
DEFAULT_NUM_CTX (Ollama's historical default) when nothing is known, e.g. before `check_ready()`.

Usage comes from Ollama's own counts: `prompt_eval_count` is the whole prompt (since Ollama 0.1.48 the
logical total, even when its KV cache was reused), `eval_count` the generated tokens. `generation_s` is
prompt_eval_duration + eval_duration, the time the model itself ran, so tokens/s figures exclude model
loading and HTTP overhead.

Thinking models: /api/show lists `thinking` among a model's capabilities. Ollama turns thinking on for such
a model when a request has no `think` field, so a request always carries the agent's `think` setting (off by
default) to them, and never to other models (Ollama answers HTTP 400 to `think: true` there). The reasoning
comes back in `message.thinking`, apart from the answer, and is counted in `eval_count`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import re
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from interview_sim.errors import ConfigError, ModelCallError, ModelNotFoundError, ModelNotReadyError
from interview_sim.models.base import (
    ChatMessage,
    ChatModel,
    Completion,
    CompletionRequest,
    ModelInfo,
    TokenAlternatives,
    call_with_retries,
)
from interview_sim.text import ascii_int

if TYPE_CHECKING:
    import ollama

    from interview_sim.models import ModelOptions

DEFAULT_HOST = "http://localhost:11434"
DEFAULT_PORT = 11434
DEFAULT_NUM_CTX = 2048
"""num_ctx sent when the model's context is unknown: Ollama's own default before 0.6."""
MAX_AUTO_CONTEXT = 8192
"""Cap on a context taken from the model's metadata; set ModelOptions.context_length to go beyond it."""
READY_TIMEOUT_S = 5.0
"""check_ready() answers within this, whatever the server does."""
PROBE_TIMEOUT_S = 2.0
"""Per-request timeout of check_ready() and available()."""
CONNECT_TIMEOUT_S = 5.0
DEFAULT_TIMEOUT_S = 120.0
"""Deadline of one chat call, retries included. A non-streaming chat sends nothing until it is done, and loading
a large model on CPU can take minutes: raise it with the agent's `timeout_s` or `--timeout`."""
TIMEOUT_ENV = "INTERVIEW_SIM_TIMEOUT"
"""Seconds; overrides every agent's `timeout_s` (the CLI's `--timeout` sets it, so worker processes see it too)."""
# Streaming: `CompletionRequest.on_text` set means stream=True; the text is the pieces joined, and usage comes
# from the final chunk (done=true), which carries the same counts a non-streamed answer does.
CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD = 4
"""count_tokens() estimate: ceil(chars / 3) + 4 per message. English runs ~4 chars a token in Llama-style
tokenizers, so this overestimates on purpose: it is only used to trim prompts to fit num_ctx."""

_TIMING_FIELDS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def resolve_host(host: str | None = None) -> str:
    """The Ollama base URL from `host`, else OLLAMA_HOST, else the default; always `scheme://host:port[/path]`.

    Like the ollama CLI: the scheme defaults to http, the port to 11434 (443 for https).
    """
    raw = (host or os.environ.get("OLLAMA_HOST") or "").strip()
    if not raw:
        return DEFAULT_HOST
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "http", raw
    scheme = scheme.lower()
    hostport, _, path = rest.partition("/")
    if hostport.startswith("["):  # IPv6 literal: [::1]:11434
        end = hostport.find("]")
        name, port = hostport[: end + 1], hostport[end + 1 :].removeprefix(":")
    else:
        name, _, port = hostport.partition(":")
    if scheme not in ("http", "https") or not _valid_name(name) or (port and not 0 < (ascii_int(port) or 0) < 65536):
        source = "host" if host else "OLLAMA_HOST"
        raise ConfigError(f"{source}={raw!r} is not a valid Ollama address (expected [http[s]://]host[:port])")
    name = name or "localhost"
    port = port or ("443" if scheme == "https" else str(DEFAULT_PORT))
    path = path.strip("/")
    return f"{scheme}://{name}:{port}" + (f"/{path}" if path else "")


_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _valid_name(name: str) -> bool:
    """A host name, an IPv4 address or a bracketed IPv6 address (empty: localhost)."""
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1] if name.endswith("]") else "not")
        except ValueError:
            return False
        return True
    return not name or _HOST_NAME.fullmatch(name) is not None


def _import_ollama() -> ModuleType:
    """`import ollama`, which builds a default client from OLLAMA_HOST and raises ValueError on a malformed one."""
    resolve_host()
    try:
        import ollama
    except ValueError as exc:
        raise ConfigError(f"OLLAMA_HOST={os.environ.get('OLLAMA_HOST', '')!r} is not a valid Ollama address ({exc})") from None
    return ollama


def resolve_timeout(timeout_s: float | None = None) -> float:
    """The chat deadline: INTERVIEW_SIM_TIMEOUT, else the agent's `timeout_s`, else DEFAULT_TIMEOUT_S."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not (0 < value < math.inf):
            raise ConfigError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds above 0")
        return value
    return timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S


def normalize_tag(tag: str) -> str:
    """Ollama's matching: a name without a tag means `:latest`; the default registry prefix is implied."""
    tag = tag.strip().removeprefix("registry.ollama.ai/").removeprefix("library/")
    if ":" not in tag.rsplit("/", 1)[-1]:
        tag += ":latest"
    return tag.casefold()


def _unreachable(host: str) -> str:
    return f"Ollama is not reachable at {host}: start it with `ollama serve` (or set OLLAMA_HOST)"


def _not_pulled(tag: str, host: str) -> str:
    return f"model {tag} is not pulled on {host}: run `ollama pull {tag}`"


def _listed_name(entry: Any) -> str:
    return str(getattr(entry, "model", None) or getattr(entry, "name", None) or "")


class MalformedResponseError(ValueError):
    """An answer that breaks Ollama's own contract (a negative token count or duration): not recorded, and not
    retried, like any other malformed response."""


_R = TypeVar("_R")
_COUNTS = ("prompt_eval_count", "eval_count", "prompt_eval_duration", "eval_duration", "load_duration", "total_duration")


def _checked(response: _R) -> _R:
    """`response`, if its counts and durations are whole numbers of at least 0. Raises MalformedResponseError."""
    for name in _COUNTS:
        value = getattr(response, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise MalformedResponseError(f"{name} is {value!r}, not a count")
    return response


def _num_ctx_parameter(parameters: str | None) -> int | None:
    """The `num_ctx` a Modelfile sets (/api/show `parameters` is `name value` lines)."""
    for line in (parameters or "").splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "num_ctx" and (number := ascii_int(value.strip())) is not None:
            return number
    return None


def _trained_context(model_info: Any) -> int | None:
    for key, value in dict(model_info or {}).items():
        if str(key).endswith(".context_length") and isinstance(value, int) and value > 0:
            return value
    return None


def _transport_errors() -> tuple[type[BaseException], ...]:
    import httpx

    # The ollama client turns httpx.ConnectError into the builtin ConnectionError; other transport
    # failures (timeouts, dropped connections) stay httpx exceptions.
    return (ConnectionError, TimeoutError, httpx.TransportError)


class OllamaModel(ChatModel):
    provider = "ollama"
    supports_json_schema = True
    supports_logprobs = True
    """Ollama's chat API returns `logprobs` with `top_logprobs` alternatives (servers from v0.12.11; older
    servers ignore the request and the completion has none)."""
    """Ollama's `format` accepts a JSON schema and constrains decoding to it."""

    def __init__(
        self,
        ref: str,
        tag: str,
        host: str,
        *,
        seed: int | None = None,
        context_length: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(ref=ref, name=tag, context_length=context_length or DEFAULT_NUM_CTX)
        self.tag = tag
        self.host = host
        self.timeout_s = timeout_s
        """Deadline of one chat call, retries included."""
        self.digest: str | None = None
        """The pulled model's digest, from /api/tags (known after check_ready())."""
        self.trained_context_length: int | None = None
        """The context the model was trained with, from /api/show (known after check_ready())."""
        self.capabilities: list[str] | None = None
        """What /api/show says the model can do, e.g. ["completion", "thinking", "tools"] (after check_ready())."""
        self.retry_attempts = 4
        self.retry_initial_wait = 0.25
        self._seed = seed
        self._context_override = context_length
        self._client: ollama.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _new_client(self, timeout: Any) -> ollama.AsyncClient:
        import ollama

        return ollama.AsyncClient(host=self.host, timeout=timeout)

    def _chat_client(self) -> ollama.AsyncClient:
        # An httpx.AsyncClient's connections belong to the event loop that opened them; a model reused
        # under another asyncio.run() gets a fresh client.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            import httpx

            self._client = self._new_client(httpx.Timeout(self.timeout_s, connect=CONNECT_TIMEOUT_S))
            self._client_loop = loop
        return self._client

    # -- readiness -----------------------------------------------------------------------------------

    async def check_ready(self) -> None:
        """Check the server answers and has the model; learn its digest and context length.

        Raises:
            ModelNotReadyError: within READY_TIMEOUT_S, with the command that fixes it.
        """
        import httpx
        import ollama

        client = self._new_client(httpx.Timeout(PROBE_TIMEOUT_S))
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                listing = await client.list()
                wanted = normalize_tag(self.tag)
                entry = next((m for m in listing.models if normalize_tag(_listed_name(m)) == wanted), None)
                if entry is None:
                    raise ModelNotReadyError(_not_pulled(self.tag, self.host))
                show = await client.show(self.tag)
        except _transport_errors():
            raise ModelNotReadyError(_unreachable(self.host)) from None
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise ModelNotReadyError(_not_pulled(self.tag, self.host)) from None
            raise ModelNotReadyError(f"Ollama at {self.host} answered HTTP {exc.status_code}: {exc.error}") from None
        except ValueError as exc:  # invalid JSON or an unexpected shape: something else listens there
            raise ModelNotReadyError(f"the server at {self.host} does not answer like Ollama ({type(exc).__name__})") from None
        finally:
            await client._client.aclose()
        self.digest = entry.digest
        # Declared by the server (/api/show `capabilities`), never guessed from the tag.
        self.supports_tools = "tools" in (show.capabilities or [])
        self.trained_context_length = _trained_context(show.modelinfo)
        self.capabilities = [str(c) for c in show.capabilities] if show.capabilities is not None else None
        if self._context_override:
            self.context_length = self._context_override
        elif (modelfile_ctx := _num_ctx_parameter(show.parameters)) is not None:
            self.context_length = modelfile_ctx
        elif self.trained_context_length is not None:
            self.context_length = min(self.trained_context_length, MAX_AUTO_CONTEXT)
        else:
            self.context_length = DEFAULT_NUM_CTX

    @property
    def thinks(self) -> bool:
        """The server says this model can think (known after check_ready())."""
        return self.capabilities is not None and "thinking" in self.capabilities

    # -- tokens --------------------------------------------------------------------------------------

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        """A conservative estimate (no offline tokenizer for Ollama's models); recorded usage is Ollama's own."""
        return sum(math.ceil(len(m.content) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD for m in messages)

    # -- completion ----------------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        import httpx
        import ollama

        client = self._chat_client()
        seed = request.seed if request.seed is not None else self._seed
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "num_predict": request.max_tokens,
            "repeat_penalty": request.repeat_penalty,
            "num_ctx": self.context_length,
        }
        if seed is not None:
            options["seed"] = seed
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        # Only thinking-capable models get `think`; there it is always explicit, since a missing field means on.
        think = request.think if self.thinks and request.think is not None else None

        chat: dict[str, Any] = {
            "model": self.tag,
            "messages": messages,
            "options": options,
            "format": request.json_schema or None,
            "think": think,
            "tools": list(request.tools) if request.tools and self.supports_tools else None,
        }
        if request.top_logprobs:  # a judge's score token: its alternatives give an expected score
            chat.update(logprobs=True, top_logprobs=min(20, request.top_logprobs))

        async def call() -> ollama.ChatResponse:
            if request.on_text is not None:
                return _checked(await self._streamed(client, chat, request.on_text))
            return _checked(await client.chat(**chat, stream=False))

        try:
            response, retries, wall = await call_with_retries(
                call,
                what=f"{self.ref} at {self.host}",
                attempts=self.retry_attempts,
                initial_wait=self.retry_initial_wait,
                budget_s=self.timeout_s,
            )
        except ModelCallError as exc:
            cause = exc.__cause__
            if isinstance(cause, ollama.ResponseError) and cause.status_code == 404:
                raise ModelCallError(_not_pulled(self.tag, self.host), exc.retries) from cause
            if isinstance(cause, ConnectionError | httpx.ConnectError):  # the streaming path leaves httpx's own
                raise ModelCallError(f"{exc} (start it with `ollama serve`)", exc.retries) from cause
            if isinstance(cause, TimeoutError):
                hint = "raise it with --timeout or the agent's timeout_s"
                raise ModelCallError(f"{exc}: {hint}", exc.retries) from cause
            raise

        timings = {name: value for name in _TIMING_FIELDS if (value := getattr(response, name, None)) is not None}
        estimated = []
        prompt_tokens = response.prompt_eval_count
        if prompt_tokens is None:
            prompt_tokens, estimated = self.count_tokens(request.messages), ["prompt_tokens"]
        completion_tokens = response.eval_count
        if completion_tokens is None:
            completion_tokens = math.ceil(len(response.message.content or "") / CHARS_PER_TOKEN)
            estimated.append("completion_tokens")
        durations = [d for d in (response.prompt_eval_duration, response.eval_duration) if d is not None]
        metadata: dict[str, Any] = {"host": self.host, "timings": timings}
        if self.digest is not None:
            metadata["digest"] = self.digest
        if estimated:
            metadata["estimated"] = estimated
        if think is not None:
            metadata["think"] = think
        tool_calls = [
            {"name": call.function.name, "arguments": dict(call.function.arguments)} for call in response.message.tool_calls or []
        ]
        return Completion(
            content=response.message.content or "",
            thinking=response.message.thinking or None,
            tool_calls=tool_calls,
            model=self.tag,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=round(wall, 4),
            generation_s=round(sum(durations) / 1e9, 4) if durations else None,
            prompt_eval_s=_seconds(response.prompt_eval_duration),
            eval_s=_seconds(response.eval_duration),
            prompt_tokens_evaluated=response.prompt_eval_count,
            finish_reason=response.done_reason or "stop",
            retries=retries,
            metadata=metadata,
            top_logprobs=_alternatives(getattr(response, "logprobs", None)) if request.top_logprobs else None,
        )

    async def _streamed(
        self, client: ollama.AsyncClient, chat: dict[str, Any], on_text: Callable[[str], None]
    ) -> ollama.ChatResponse:
        """One chat with stream=True: each piece of the answer goes to `on_text` as it arrives (the reasoning of a
        thinking model is collected, not shown). The result is the last chunk (done, with Ollama's counts and
        timings) carrying the whole answer and reasoning, as a non-streamed call returns them."""
        parts = await client.chat(**chat, stream=True)
        pieces: list[str] = []
        thinking: list[str] = []
        tool_calls: list[ollama.Message.ToolCall] = []
        last: ollama.ChatResponse | None = None
        async for part in parts:
            if text := part.message.content or "":
                pieces.append(text)
                on_text(text)
            thinking.append(part.message.thinking or "")
            tool_calls.extend(part.message.tool_calls or [])  # the whiteboard tools: in whichever chunk they come
            last = part
        if last is None or not last.done:
            # A dropped stream: transient, so the call is tried again (its text is then shown again).
            raise ConnectionError(f"Ollama at {self.host} ended the stream before the answer was done")
        joined = {"content": "".join(pieces), "thinking": "".join(thinking) or None, "tool_calls": tool_calls or None}
        message = last.message.model_copy(update=joined)
        return last.model_copy(update={"message": message})

    async def aclose(self) -> None:
        client, loop = self._client, self._client_loop
        self._client = self._client_loop = None
        # A client opened under an event loop that has since closed cannot be closed from this one.
        if client is not None and loop is asyncio.get_running_loop():
            await client._client.aclose()


def _listening(host: str) -> bool:
    """Whether something accepts TCP connections at the host's address (a cheap probe before the real client)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _seconds(nanoseconds: int | None) -> float | None:
    return round(nanoseconds / 1e9, 4) if nanoseconds is not None else None


def create(name: str, ref: str, options: ModelOptions) -> OllamaModel:
    """Build `ollama:<tag>`; nothing is contacted until check_ready() or complete()."""
    try:
        _import_ollama()
    except ImportError as exc:
        raise ModelNotFoundError(f"the ollama client is not installed ({exc}): run `make install`") from None
    return OllamaModel(
        ref,
        name,
        resolve_host(options.host),
        seed=options.seed,
        context_length=options.context_length,
        timeout_s=resolve_timeout(options.timeout_s),
    )


def available() -> list[ModelInfo]:
    """The models pulled on the Ollama at OLLAMA_HOST, or one not-ready line saying how to start it."""
    try:
        host = resolve_host()
    except ConfigError as exc:
        return [ModelInfo("ollama:*", "ollama", False, str(exc))]
    if not _listening(host):
        # Nothing accepts connections there: say so without loading the client (0.15-0.2 s of imports).
        return [ModelInfo("ollama:*", "ollama", False, f"Ollama not reachable at {host}: `ollama serve`")]
    try:
        ollama = _import_ollama()
    except ConfigError as exc:
        return [ModelInfo("ollama:*", "ollama", False, str(exc))]
    import httpx

    failures: tuple[type[BaseException], ...] = (*_transport_errors(), ollama.ResponseError, ValueError)
    client = ollama.Client(host=host, timeout=httpx.Timeout(PROBE_TIMEOUT_S))
    try:
        listing = client.list()
    except failures:
        return [ModelInfo("ollama:*", "ollama", False, f"Ollama not reachable at {host}: `ollama serve`")]
    finally:
        client._client.close()
    infos = []
    for entry in listing.models:
        tag = _listed_name(entry)
        size = f"{int(entry.size) / 1e9:.1f} GB" if entry.size is not None else "size unknown"
        digest = (entry.digest or "")[:12] or "no digest"
        infos.append(ModelInfo(f"ollama:{tag}", "ollama", True, f"{size}, {digest} at {host}"))
    if not infos:
        infos.append(ModelInfo("ollama:*", "ollama", False, f"no models pulled on {host}: `ollama pull <tag>`"))
    return infos


def _alternatives(logprobs: Any) -> list[TokenAlternatives] | None:
    """Ollama's per-token logprobs as alternatives at character offsets of the content (None when absent)."""
    if not logprobs:
        return None
    positions, offset = [], 0
    for entry in logprobs:
        top = entry.top_logprobs or [entry]
        positions.append(TokenAlternatives(offset=offset, top=tuple((t.token, float(t.logprob)) for t in top)))
        offset += len(entry.token)
    return positions
