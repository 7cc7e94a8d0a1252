"""Ctrl-C and SIGTERM at the CLI edge: cancel the command's asyncio work, keep what finished, exit 128 + signal.

`run_async` runs a command's coroutine with SIGINT and SIGTERM handlers on the event loop: the first signal
cancels the coroutine (asyncio cancellation reaches every awaited call; the core records what finished as it
goes), and the command ends with `Interrupted`, which `user_errors` renders as one line and exit code 130
(SIGINT) or 143 (SIGTERM). A second signal while the command winds down ends it at once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def install_sigterm() -> None:
    """Make SIGTERM outside the event loop end the command like Ctrl-C does (exit 143, one line)."""
    signal.signal(signal.SIGTERM, _raise_interrupted)


def run_async(coro: Coroutine[Any, Any, T], kept: Callable[[], str | None] | None = None) -> T:
    """`asyncio.run(coro)`, stopped by SIGINT or SIGTERM as described above; `kept()` words what was kept."""
    received: list[int] = []

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int) -> None:
            received.append(signum)
            if len(received) == 1:
                task.cancel()
            else:
                raise Interrupted(received[0], kept() if kept else None)

        def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # Once interrupted, background tasks torn down with the loop (AutoGen's runtime) may fail on their way
            # out; that is expected and not worth a traceback on the terminal.
            if not received:
                loop.default_exception_handler(context)

        loop.set_exception_handler(on_loop_error)

        installed: dict[int, Any] = {}
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (ValueError, RuntimeError):  # not the main thread: leave signals alone
                continue
            installed[signum] = previous if previous is not None else signal.SIG_DFL
        try:
            return await coro
        finally:
            for sig, previous in installed.items():
                loop.remove_signal_handler(sig)
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
