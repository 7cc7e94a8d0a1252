"""Import benchmark: the hostile AutoGen 0.2 file of issue 10 (defect 4). Prints a table; asserts nothing.

The first turn is "X, whiteboard for me some a" followed by ". Propose a solution for b." repeated, so it
never completes the opening template. The opening-line pattern used to take quadratic time on it (67 KB:
1.2 s, 540 KB: 73 s). Each size is imported end to end (`import_transcripts`: read, parse, build, write)
several times, interleaved across sizes; a plain 2-turn file of the same size is the linear reference. The
old pattern is timed on the 67 KB text only (540 KB would take over a minute), paired with the new one.

Usage: .venv/bin/python benchmarks/bench_import_opening.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from interview_sim.autogen02 import import_transcripts
from interview_sim.autogen02.importer import _OPENING

OLD_OPENING = re.compile(
    r"^\s*(?P<candidate>[^\n]+?), whiteboard for me some (?P<topic>.+?)\. Propose a solution for (?P<solution>.+?)\."
    r"\s+I will evaluate",
    re.S,
)
SIZES_KB = (67, 540)


def hostile_text(kb: int) -> str:
    head, unit = "X, whiteboard for me some a", ". Propose a solution for b."
    return head + unit * ((kb * 1000 - len(head)) // len(unit))


def chat_file(folder: Path, name: str, first_turn: str) -> Path:
    history = [
        {"content": first_turn, "role": "assistant", "name": "Interviewer"},
        {"content": "an answer", "role": "user", "name": "Candidate"},
    ]
    path = folder / name
    path.write_text(json.dumps({"chat_id": None, "chat_history": history, "summary": "", "cost": {}, "human_input": []}))
    return path


def imported(path: Path, runs_dir: Path) -> None:
    """Import one file; it must become a run (a skipped or failed file would time nothing)."""
    report = import_transcripts([path], runs_dir=runs_dir)
    assert [f.status for f in report.files] == ["imported"], report.files


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {}
        for kb in SIZES_KB:
            files[(kb, "hostile")] = chat_file(folder, f"hostile_{kb}.json", hostile_text(kb))
            files[(kb, "plain")] = chat_file(folder, f"plain_{kb}.json", "x" * (kb * 1000))
        raw: dict[tuple[int, str], list[float]] = {key: [] for key in files}
        for r in range(args.repeats):  # interleaved: every file once per round
            for key, path in files.items():
                runs_dir = folder / f"runs-{r}-{key[0]}-{key[1]}"
                raw[key].append(timed(lambda p=path, d=runs_dir: imported(p, d)))
        print(f"{'file':<18}{'size':>10}{'min s':>10}{'median s':>10}  raw s")
        for (kb, kind), times in raw.items():
            size = files[(kb, kind)].stat().st_size
            rounded = " ".join(f"{t:.4f}" for t in times)
            print(f"{kind + ' ' + str(kb) + ' KB':<18}{size:>10,}{min(times):>10.4f}{statistics.median(times):>10.4f}  {rounded}")

        text = hostile_text(SIZES_KB[0])
        old, new = [], []
        for _ in range(3):  # paired A B A B
            old.append(timed(lambda: OLD_OPENING.match(text)))
            new.append(timed(lambda: _OPENING.match(text)))
        print(f"\nopening pattern alone on the {SIZES_KB[0]} KB hostile turn (paired, 3 rounds):")
        print(f"  old: min {min(old):.4f} s, median {statistics.median(old):.4f} s  raw {' '.join(f'{t:.4f}' for t in old)}")
        print(f"  new: min {min(new):.6f} s, median {statistics.median(new):.6f} s  raw {' '.join(f'{t:.6f}' for t in new)}")


if __name__ == "__main__":
    main()
