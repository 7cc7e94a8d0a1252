"""Ctrl-C and SIGTERM at the CLI edge: cancel the command's asyncio work, keep what finished, exit 128 + signal.

`run_async` runs a command's coroutine with its own SIGINT and SIGTERM handlers: the first signal
cancels the coroutine (asyncio cancellation reaches every awaited call; the core records what finished as it
goes), and the command ends with `Interrupted`, which `user_errors` renders as one line and exit code 130
(SIGINT) or 143 (SIGTERM). A second signal while the command winds down ends it at once.

Some work cannot be cancelled: a llama.cpp prompt evaluation runs in C until it is done, and on a loaded
machine that can take many seconds; Python would also wait for that thread before it exits. So the first
signal also arms a watchdog: if the process has not ended GRACE_S later, it prints the same one line (unless
the command already did) and leaves at once (`os._exit`). By then the run has recorded what finished
(events.jsonl is appended and flushed as things happen, and a run whose transcript.json was not written reads
as interrupted), as after kill -9.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from interview_sim.text import clean

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_S = 1.2
"""After a signal, how long the command gets to wind down before the watchdog ends the process."""


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal; `kept` says what was recorded."""

    def __init__(self, signum: int, kept: str | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.kept = kept

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def line(self) -> str:
        name = signal.Signals(self.signum).name
        return f"interrupted ({name}): {self.kept or 'what was recorded so far is kept'}"


_printed = threading.Lock()
_process = {"owned": False}
"""Whether this process is the `interview-sim` command itself (not a test calling the app in-process)."""


def own_process() -> None:
    """Called by the entry point: after an interruption, the process may leave without Python's finalization."""
    _process["owned"] = True
    for signum in SIGNALS:  # replaces the start-up handlers of interview_sim/__init__.py
        signal.signal(signum, _raise_interrupted)
    python_hook = sys.unraisablehook

    def quiet_when_interrupted(unraisable: Any) -> None:
        # A signal that lands in a finalizer (an event loop's __del__) cannot propagate: Python would print
        # "Exception ignored in ..." with a traceback. It is recorded (`received`) and main() says it in one line.
        if not isinstance(unraisable.exc_value, Interrupted):
            python_hook(unraisable)

    sys.unraisablehook = quiet_when_interrupted
    atexit.register(_after_the_work)  # early, so it runs late: after the handlers the command registers


def finished() -> None:
    """The command's work and output are done. A signal from now on (Python's own shutdown can take a while: it
    joins threads, runs exit handlers) is noted instead of raised, and said in one line at exit: without this it
    killed the process silently, or printed a traceback from a finalizer."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    for signum in SIGNALS:
        signal.signal(signum, _note)
    _process["finished"] = True


def _note(signum: int, _frame: object) -> None:
    _late.append(signum)


_late: list[int] = []


def _after_the_work() -> None:
    if not _process.get("finished"):
        return
    # Ignored from here on: a signal in what is left of Python's shutdown is dropped (the command had finished:
    # exit 0), instead of its default action, death by the signal without a line. Not blocked: a blocked mask is
    # the calling thread's, and native threads (numpy's BLAS pool) would still take the signal, after Python's
    # finalization has put the default action back for every signal with a Python handler (SIG_IGN it leaves).
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    late = _late[0] if _late else None  # read after ignoring: a signal noted before is here, none can come after
    if late is not None:
        print_interrupted(Interrupted(late, "the command had finished; everything is kept"))
        os._exit(128 + late)


def leave(code: int) -> None:
    """End an interrupted command now. Everything was recorded and flushed; Python's finalization (tearing down
    AutoGen, pydantic and the rest) takes a noticeable time on a loaded machine, so the command process skips it."""
    if _process["owned"]:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def print_interrupted(exc: Interrupted) -> None:
    """Print the interruption's one line, once per process (the watchdog and the command may both try)."""
    if _printed.acquire(blocking=False):
        print(clean(exc.line), file=sys.stderr, flush=True)


_received: list[int] = []
"""Signals the command process's own handler raised: typer turns a KeyboardInterrupt it sees (a signal while it
parses, or between a command's work and its return) into a silent exit 130, whatever the signal was."""


def received() -> int | None:
    """The first signal that interrupted this process outside a command's own handling, if any."""
    return _received[0] if _received else None


def _raise_interrupted(signum: int, _frame: object) -> None:
    _received.append(signum)
    if len(_received) == 1:  # a second signal while the first one's exception is handled would escape as a traceback
        raise Interrupted(signum)


def run_async(coro: Coroutine[Any, Any, T], kept: Callable[[], str | None] | None = None) -> T:
    """`asyncio.run(coro)`, stopped by SIGINT or SIGTERM as described above; `kept()` words what was kept."""
    received: list[int] = []

    def watchdog() -> None:
        time.sleep(GRACE_S)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            print_interrupted(Interrupted(received[0], kept() if kept else None))
        os._exit(128 + received[0])

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int, _frame: object) -> None:
            # A Python-level handler, not loop.add_signal_handler: it runs even while the loop's thread is stuck
            # in a blocking call, so the watchdog is armed whatever the loop is doing.
            received.append(signum)
            if len(received) == 1:
                threading.Thread(target=watchdog, name="interrupt-watchdog", daemon=True).start()
                loop.call_soon_threadsafe(task.cancel)
            else:
                raise Interrupted(received[0], kept() if kept else None)

        def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # Once interrupted, background tasks torn down with the loop (AutoGen's runtime) may fail on their way
            # out; that is expected and not worth a traceback on the terminal.
            if not received:
                loop.default_exception_handler(context)

        loop.set_exception_handler(on_loop_error)

        installed: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():  # elsewhere, signals are left alone
            for signum in SIGNALS:
                previous = signal.getsignal(signum)
                installed[signum] = previous if previous is not None else signal.SIG_DFL
                signal.signal(signum, on_signal)
        try:
            return await coro
        finally:
            for sig, previous in installed.items():
                signal.signal(sig, previous)

    try:
        result = asyncio.run(main())
    except BaseException:
        if received:
            raise Interrupted(received[0], kept() if kept else None) from None
        raise
    if received:  # the coroutine swallowed the cancellation; the command still stops here
        raise Interrupted(received[0], kept() if kept else None)
    return result
