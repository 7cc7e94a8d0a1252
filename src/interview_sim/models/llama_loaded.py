"""Loading and closing llama.cpp models, and keeping loaded ones for the next user in the process.

`compare` runs many cells in a few long-lived processes, each cell building its models afresh (interviewer,
candidate, judge). With keeping on (`keep_loaded`, turned on by compare's scheduler and its worker processes), a
model closed by one cell stays loaded and the next cell that asks for the same file, context size and threads
takes it instead of loading it again. Only one user holds a loaded model at a time; two seats of one session on
the same file still load it twice (llama.cpp maps the file, so the weights are shared by the OS anyway; each
instance has its own context and KV cache).

A kept model is handed over reset: its KV cache is emptied (`Llama.reset`, then llama.cpp drops the cached cells
from position 0 at the next decode), so a cell's text does not depend on which cell ran before it in the same
process: the same as a fresh load, token for token (tests/test_compare.py checks it on the embedded model).
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

from interview_sim.models import greedy_grammar

STDIO_SWAP = threading.Lock()
"""llama-cpp-python silences llama.cpp's logging by swapping sys.stdout/sys.stderr while it loads and frees a model.
Two threads doing that at once restore each other's swap and leave sys.stdout pointing at /dev/null, so loading and
closing are serialized across instances."""

Key = tuple[str, int, int]
_idle: dict[Key, list[Any]] = {}
_keys: dict[int, Key] = {}
"""What each model this module loaded was loaded with, by id (while it is loaded)."""
_serials: dict[int, str] = {}
_guard = threading.Lock()
_keep = False
_registered = False
loads = 0
"""Models this process loaded from disk (a kept model handed over again does not count): compare's tests read it."""


def keep_loaded(on: bool = True) -> None:
    """Keep models closed from now on loaded for the next user (on), or stop keeping and free the kept ones (off)."""
    global _keep, _registered
    _keep = on
    if on and not _registered:
        atexit.register(release)  # free them in order at exit rather than in the interpreter's teardown
        _registered = True
    if not on:
        release()


def load(path: Path, context_length: int, threads: int, seed: int) -> Any:
    """A loaded model for this file, context size and thread count: a kept one, reset, or a fresh load."""
    import llama_cpp

    global loads
    key: Key = (str(path), context_length, threads)
    with _guard:
        kept = _idle.get(key)
        llm = kept.pop() if kept else None
    if llm is not None:
        llm.reset()
        return llm
    with STDIO_SWAP:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=context_length, n_threads=threads, seed=seed, verbose=False)
    loads += 1
    _keys[id(llm)] = key
    _serials[id(llm)] = f"{os.getpid()}#{loads}"
    greedy_grammar.patch(llm)
    return llm


def close(llm: Any) -> None:
    """Done with a loaded model: kept for the next user when keeping is on, else freed."""
    if _keep:
        with _guard:
            _idle.setdefault(_keys[id(llm)], []).append(llm)
        return
    _forget(llm)
    with STDIO_SWAP:
        llm.close()


def _forget(llm: Any) -> None:
    _keys.pop(id(llm), None)
    _serials.pop(id(llm), None)


def serial(llm: Any) -> str:
    """Which load of which process this model is ("<pid>#<n>"), recorded with each call: calls of different cells
    with the same serial ran on one loaded model."""
    return _serials.get(id(llm), "")


def kept() -> int:
    """How many loaded models wait for a user."""
    with _guard:
        return sum(len(v) for v in _idle.values())


def release() -> None:
    """Free every kept model."""
    with _guard:
        models = [llm for items in _idle.values() for llm in items]
        _idle.clear()
    for llm in models:
        _forget(llm)
        with STDIO_SWAP:
            llm.close()
