"""One command at a time per comparison: an exclusive lock beside the comparison folder.

Two identical `compare` (or `sweep`) commands started together would both run every cell. The first takes an
advisory `fcntl.flock` on `<runs>/comparisons/.<id>.lock` for as long as it runs; the second refuses at once with
one line (it does not wait: the first may run for hours). The kernel drops the lock when its holder exits, even
on kill -9, so a stale lock file never blocks anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from interview_sim.errors import BatchError
from interview_sim.files import open_lock


@contextlib.contextmanager
def comparison_lock(folder: Path) -> Iterator[None]:
    """Hold the comparison's lock while the block runs. Raises BatchError if another process holds it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    path = folder.parent / f".{folder.name}.lock"
    fd = open_lock(path, BatchError)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise BatchError(
                f"comparison {folder.name} is already running (process {holder}): wait for it to finish, or stop it"
                " and run the command again to resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
