"""`make fuzz`: the long fuzz profile of every reader of outside data (issue 10).

Hypothesis generates the inputs (random bytes, valid documents mutated; see fuzz_readers.py) in this process;
each input is read in a worker process, so an input that hangs (no answer within --timeout seconds) or kills
the interpreter is counted and the worker replaced, and the run goes on. Inputs that crash or hang are saved
under --keep for reproduction (`python tests/fuzz.py --replay FILE`).

Prints one line per reader, then exactly `inputs tried N, clean errors N, crashes N, hangs N`. Exit 1 if any
input crashed or hung.

Usage: .venv/bin/python tests/fuzz.py [--inputs 10400] [--timeout 10] [--keep fuzz-failures]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("INTERVIEW_SIM_HOME", str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

import fuzz_readers  # noqa: E402


def _serve(conn: Connection, root: str) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        name, payload = job
        try:
            conn.send((fuzz_readers.run_one(fuzz_readers.READ[name], payload, Path(root)), ""))
        except BaseException:
            conn.send(("crash", traceback.format_exc()))


class Worker:
    """One process that reads inputs; replaced when an input hangs it or kills it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, str(self.root)), daemon=True)
        self.process.start()

    def restart(self) -> None:
        self.process.kill()
        self.process.join()
        self._start()

    def read(self, name: str, payload: bytes, timeout: float) -> tuple[str, str]:
        self.conn.send((name, payload))
        if not self.conn.poll(timeout):
            self.restart()
            return "hang", f"no answer within {timeout:g} s"
        try:
            return self.conn.recv()  # type: ignore[no-any-return]
        except EOFError:
            code = self.process.exitcode
            self.restart()
            return "crash", f"the worker process died (exit code {code})"

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(timeout=5)


def _campaign(
    reader: fuzz_readers.Reader, worker: Worker, counts: Counter[str], examples: int, timeout: float, keep: Path
) -> Callable[[], None]:
    """A hypothesis test that feeds `examples` inputs for one reader to the worker and counts the outcomes."""

    @settings(
        max_examples=examples, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
    )
    @given(payload=reader.inputs)
    def feed(payload: bytes) -> None:
        outcome, detail = worker.read(reader.name, payload, timeout)
        counts[outcome] += 1
        if outcome in ("crash", "hang"):
            keep.mkdir(parents=True, exist_ok=True)
            saved = keep / f"{reader.name}-{hashlib.sha256(payload).hexdigest()[:12]}.bin"
            saved.write_bytes(payload)
            last = detail.strip().splitlines()[-1] if detail.strip() else outcome
            print(f"  {outcome}: {reader.name}: {last} (input saved as {saved})", flush=True)

    return feed  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=10_400, help="inputs in all, shared equally by the readers")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds an input may take before it counts as a hang")
    parser.add_argument("--keep", type=Path, default=ROOT / "fuzz-failures", help="where crashing or hanging inputs go")
    parser.add_argument("--replay", type=Path, help="read one saved input (named <reader>-<hash>.bin) in this process")
    args = parser.parse_args()
    if args.replay:
        name = args.replay.name.rsplit("-", 1)[0]
        with tempfile.TemporaryDirectory() as tmp:
            print(fuzz_readers.run_one(fuzz_readers.READ[name], args.replay.read_bytes(), Path(tmp)))
        return 0

    readers = fuzz_readers.readers(fuzz_readers.Seeds.collect())
    per_reader = -(-args.inputs // len(readers))
    totals: Counter[str] = Counter()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        worker = Worker(Path(tmp))
        for reader in readers:
            counts: Counter[str] = Counter()
            _campaign(reader, worker, counts, per_reader, args.timeout, args.keep)()
            totals.update(counts)
            print(
                f"{reader.name:<20} {sum(counts.values()):>6} inputs: {counts['ok']:>5} read, {counts['clean']:>5} clean errors,"
                f" {counts['crash']} crashes, {counts['hang']} hangs",
                flush=True,
            )
        worker.close()
    tried = sum(totals.values())
    print(f"({time.monotonic() - start:.0f} s; per-input timeout {args.timeout:g} s)")
    print(f"inputs tried {tried}, clean errors {totals['clean']}, crashes {totals['crash']}, hangs {totals['hang']}")
    return 1 if totals["crash"] or totals["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
