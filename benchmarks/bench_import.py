"""Tree import throughput and run-listing latency. Prints figures (raw numbers, min and median).

    .venv/bin/python benchmarks/bench_import.py [--sessions 500] [--reviews 150] [--repeats 2] [--runs 10000]

1. Import: a results tree written the way the AutoGen 0.2 pipeline wrote it (tests/pipeline_tree.py: three
   forms per session, reviews in three forms, a few non-transcript files; ~2,000 files by default), imported
   into a fresh runs folder with `--jobs 1` and `--jobs 2`, interleaved (A B A B ...), then imported again
   (nothing to create: every file is recognised). Target: >= 200 files/s. Also printed: files per second of
   the importing process's own CPU time (jobs 1), which a loaded machine does not distort.
2. Listing: a runs folder of `--runs` run folders (copies of one imported transcript with their own ids),
   indexed once (`runs reindex`, timed), then listed through the API (`list_runs`) and through the CLI
   (`interview-sim runs --json` and the table, in a subprocess, so interpreter start-up is included; `--help`
   is timed beside them as the start-up alone; wall and CPU time, since wall time depends on the load).
   Target: listing 10,000 runs well under a second.

Figures, not asserts. On a shared machine, read the minimum.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the pipeline tree generator lives with the tests
os.environ.setdefault("INTERVIEW_SIM_HOME", str(ROOT))

from interview_sim.autogen02 import import_transcripts  # noqa: E402
from interview_sim.catalog import RunFilter, list_runs, reindex  # noqa: E402
from pipeline_tree import write_tree  # noqa: E402


def _figures(label: str, values: list[float], unit: str) -> None:
    raw = ", ".join(f"{v:.1f}" for v in values)
    print(f"{label:<34} min {min(values):8.1f}  median {statistics.median(values):8.1f} {unit}   raw [{raw}]")


def bench_import(work: Path, sessions: int, reviews: int, repeats: int) -> None:
    tree = write_tree(work / "tree", sessions, reviews=reviews)
    files = len(tree.files())
    print(f"tree: {sessions} sessions, {reviews} reviews, {files} files")
    rates: dict[str, list[float]] = {"jobs 1": [], "jobs 2": [], "re-import (jobs 2)": [], "jobs 1 per CPU second": []}
    for r in range(repeats):
        for jobs in (1, 2):
            runs_dir = work / f"runs-{r}-{jobs}"
            start, cpu = time.perf_counter(), time.process_time()
            report = import_transcripts([tree.root], runs_dir=runs_dir, jobs=jobs)
            elapsed = time.perf_counter() - start
            if jobs == 1:  # this process did all the work: files per second of its own CPU time, whatever the load
                rates["jobs 1 per CPU second"].append(files / (time.process_time() - cpu))
            assert len(report.files) == files and report.counts()["failed"] == 0, report.counts()
            rates[f"jobs {jobs}"].append(files / elapsed)
            if jobs == 2:
                start = time.perf_counter()
                again = import_transcripts([tree.root], runs_dir=runs_dir, jobs=2)
                rates["re-import (jobs 2)"].append(files / (time.perf_counter() - start))
                assert again.created == []
            shutil.rmtree(runs_dir)
    print(f"counts: {report.counts()}")
    for label, values in rates.items():
        _figures(f"import {label}", values, "files/s")
    print("target: >= 200 files/s")


def _make_runs(work: Path, count: int) -> Path:
    """`count` run folders: one imported transcript copied under fresh run ids, spread over four scenarios."""
    seed_tree = write_tree(work / "seed-tree", 1, reviews=0, others=False)
    seed_runs = work / "seed-runs"
    report = import_transcripts([seed_tree.root], runs_dir=seed_runs, jobs=1)
    data = json.loads(Path(report.created[0].path).read_text(encoding="utf-8"))
    runs_dir = work / "many-runs"
    scenarios = ["scalability-issues", "corporate-taxation", "technological-challenges", "caching-strategies"]
    for n in range(count):
        run_id = f"20240101T{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}Z_{n:06x}"
        data["run_id"], data["scenario_id"] = run_id, scenarios[n % 4]
        data["imported"]["batch"] = f"interview_{n % 50}"
        folder = runs_dir / data["scenario_id"] / run_id
        folder.mkdir(parents=True)
        (folder / "transcript.json").write_text(json.dumps(data), encoding="utf-8")
    return runs_dir


def _cli_seconds(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system) of one CLI call."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "interview_sim", *args], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_listing(work: Path, count: int, repeats: int) -> None:
    runs_dir = _make_runs(work, count)
    start = time.perf_counter()
    indexed = reindex(runs_dir)
    print(f"\nrun index: {indexed} runs, reindex took {time.perf_counter() - start:.1f} s (once, from the folders)")
    api, api_filtered = [], []
    cli: dict[str, list[tuple[float, float]]] = {"runs --json": [], "runs": [], "--help": []}
    for _ in range(max(3, repeats)):
        start = time.perf_counter()
        rows = list_runs(runs_dir)
        api.append((time.perf_counter() - start) * 1000)
        assert len(rows) == count
        start = time.perf_counter()
        list_runs(runs_dir, RunFilter(scenario="corporate-taxation", model="llama3"))
        api_filtered.append((time.perf_counter() - start) * 1000)
        for name in cli:  # interleaved: the listing, the table, and bare start-up for reference
            cli[name].append(_cli_seconds([*name.split(), "--runs-dir", str(runs_dir)] if name != "--help" else ["--help"]))
    _figures(f"list_runs ({count} runs)", api, "ms")
    _figures("list_runs, filtered", api_filtered, "ms")
    for name, figures in cli.items():
        _figures(f"`{name}` CLI wall", [w * 1000 for w, _ in figures], "ms")
        _figures(f"`{name}` CLI CPU (user+sys)", [c * 1000 for _, c in figures], "ms")
    print("target: listing 10,000 runs well under a second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--reviews", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        bench_import(work, args.sessions, args.reviews, args.repeats)
        bench_listing(work, args.runs, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
