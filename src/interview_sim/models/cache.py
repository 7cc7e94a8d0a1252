"""A disk cache in front of any ChatModel: an identical request is answered from disk, marked as cached.

The key is everything that decides a model's answer: the model (reference, name, and the Ollama digest once
known), the role it was built for (scripted models answer by role), the messages, max_tokens, temperature,
seed, repeat_penalty and the JSON schema. A hit returns the original completion — same text, same token
counts and generation time — with `cached=True`, so the run's ledger counts it in "including cached" only and
the cost block stays honest.

The store is `diskcache` (SQLite under the hood): safe across the threads and worker processes of a batch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interview_sim.models.base import ChatMessage, ChatModel, Completion, CompletionRequest, RetryRecord

if TYPE_CHECKING:
    import diskcache

    from interview_sim.models import ModelOptions

CACHE_FORMAT = 1
"""Part of every key: bump it when the stored shape changes, and old entries are simply never hit."""
CACHE_ENV = "INTERVIEW_SIM_CACHE_DIR"
CACHE_DIRNAME = ".model-cache"

Factory = Callable[[str, "ModelOptions"], ChatModel]


def default_cache_dir(runs_dir: str | Path) -> Path:
    """$INTERVIEW_SIM_CACHE_DIR, else `<runs_dir>/.model-cache`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(runs_dir) / CACHE_DIRNAME


@functools.cache
def open_store(directory: Path) -> diskcache.Cache:
    """One store per directory and process; diskcache objects are thread-safe and process-safe."""
    import diskcache

    directory.mkdir(parents=True, exist_ok=True)
    return diskcache.Cache(str(directory))


class ModelWrapper(ChatModel):
    """A ChatModel that delegates to another one.

    `name` and `context_length` are not copied but looked up on the inner model each time (through
    `__getattr__`), because a backend may only learn them in `check_ready()` (Ollama's context window).
    """

    def __init__(self, inner: ChatModel) -> None:
        # Deliberately not calling ChatModel.__init__: it would freeze name and context_length.
        self.inner = inner
        self.ref = inner.ref
        self.provider = inner.provider
        self.supports_json_schema = inner.supports_json_schema
        self.interactive = inner.interactive

    def __getattr__(self, item: str) -> Any:
        if item == "inner":  # not set yet (e.g. while unpickling): avoid infinite recursion
            raise AttributeError(item)
        return getattr(self.inner, item)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self.inner.complete(request)

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        return self.inner.count_tokens(messages)

    async def check_ready(self) -> None:
        await self.inner.check_ready()

    async def aclose(self) -> None:
        await self.inner.aclose()


def request_key(model: ChatModel, request: CompletionRequest, *, role: str, default_seed: int | None) -> str:
    """The cache key of one request to one model (hex sha256 of a canonical JSON document)."""
    document = {
        "format": CACHE_FORMAT,
        "ref": model.ref,
        "name": model.name,
        "digest": getattr(model, "digest", None),
        "role": role,
        "messages": [[m.role, m.content] for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed if request.seed is not None else default_seed,
        "repeat_penalty": request.repeat_penalty,
        "json_schema": request.json_schema,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _to_json(completion: Completion) -> str:
    return json.dumps(dataclasses.asdict(completion), ensure_ascii=False)


def _from_json(text: str) -> Completion:
    data = json.loads(text)
    data["retries"] = [RetryRecord(**r) for r in data.get("retries", [])]
    return Completion(**data)


class CachedModel(ModelWrapper):
    """Answers identical requests from a disk store; only misses reach the inner model."""

    def __init__(self, inner: ChatModel, store: diskcache.Cache, *, role: str, seed: int | None) -> None:
        super().__init__(inner)
        self.store = store
        self.role = role
        self.default_seed = seed
        self.hits = 0
        self.misses = 0

    async def complete(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        key = request_key(self.inner, request, role=self.role, default_seed=self.default_seed)
        stored = self.store.get(key)
        if isinstance(stored, str):
            self.hits += 1
            completion = _from_json(stored)
            completion.cached = True
            # The answer and its token figures are the original call's; the wall time is this lookup's and
            # the original's retries did not happen again.
            completion.latency_s = round(time.perf_counter() - start, 4)
            completion.retries = []
            completion.metadata = {**completion.metadata, "cache_key": key[:16]}
            if request.on_text is not None:
                request.on_text(completion.content)
            return completion
        completion = await self.inner.complete(request)
        self.misses += 1
        self.store.set(key, _to_json(completion))
        return completion


def cached_factory(factory: Factory, directory: str | Path) -> Factory:
    """Wrap every model `factory` builds in a CachedModel over the store in `directory`."""
    store = open_store(Path(directory).resolve())

    def build(ref: str, options: ModelOptions) -> ChatModel:
        model = factory(ref, options)
        # A person's answer is never replayed from disk in place of asking them.
        return model if model.interactive else CachedModel(model, store, role=options.role, seed=options.seed)

    return build
