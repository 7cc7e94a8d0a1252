"""`records.jsonl`: every cell and pairwise judgment appended as it finishes, next to `comparison.json`.

Rewriting the whole `comparison.json` after every cell made a big comparison quadratic. Instead each finished
cell or pair is one line, appended and flushed at once (a killed process loses nothing the OS has), with the
fsync batched: at most every `SYNC_EVERY` records or `SYNC_INTERVAL_S` seconds, and on close. The summary
(`comparison.json`, `.csv`) is written when a batch starts, ends or is interrupted; the journal is then
emptied, so it only ever holds records newer than the summary. Readers (`load_comparison`, resume) apply
the journal on top of the summary, the later line of a key winning.

Each line: `{"schema_version": 1, "type": "cell" | "pair", "record": {...}}`. A line cut short by a crash
(the last one, without its newline) is ignored.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any, Literal

from interview_sim.errors import RecordError
from interview_sim.files import exists, open_append, read_bytes

JOURNAL_FILE = "records.jsonl"
JOURNAL_VERSION = 1
SYNC_EVERY = 64
SYNC_INTERVAL_S = 1.0

RecordType = Literal["cell", "pair"]


class Journal:
    """The append-only record of one comparison folder, open for one batch."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL_FILE
        self._fh: IO[str] | None = open_append(self.path)  # creates the folder
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def append(self, kind: RecordType, record: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("journal is closed")
        line = {"schema_version": JOURNAL_VERSION, "type": kind, "record": record}
        self._fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        self._unsynced += 1
        if self._unsynced >= SYNC_EVERY or time.monotonic() - self._last_sync >= SYNC_INTERVAL_S:
            self.sync()

    def sync(self) -> None:
        if self._fh is not None and self._unsynced:
            os.fsync(self._fh.fileno())
            self._unsynced = 0
            self._last_sync = time.monotonic()

    def clear(self) -> None:
        """Empty the journal once a summary holding all of it is safely written."""
        if self._fh is not None:
            self._fh.truncate(0)
            self._fh.seek(0)
            self._unsynced = 0

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


def read_journal(folder: Path) -> list[tuple[RecordType, dict[str, Any]]]:
    """The records of `folder`'s journal in the order they were written; none when there is no journal.

    Lines that are not whole records of a known version are skipped: the only way to get one is a crash in
    the middle of a write, and the record it was writing is then simply run again.
    """
    path = folder / JOURNAL_FILE
    if not exists(path):
        return []
    text = read_bytes(path, RecordError).decode("utf-8", errors="replace")
    records: list[tuple[RecordType, dict[str, Any]]] = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # cut short by a crash
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("schema_version") != JOURNAL_VERSION:
            continue
        kind, record = data.get("type"), data.get("record")
        if kind in ("cell", "pair") and isinstance(record, dict):
            records.append((kind, record))
    return records
