"""Compare/sweep machinery: framework overhead per cell, and throughput across Ollama endpoints. Prints a table.

    .venv/bin/python benchmarks/bench_compare.py [--cells 20] [--delay 0.2]

0. Scaling: wall time per cell of a compare with the CLI's defaults (pairwise judgments included) at 10, 100
   and 1,000 scripted cells, and the marginal cost per cell between sizes. Target: < 40 ms per cell, flat.
1. Overhead: a compare on scripted models (they answer instantly), timed end to end; the time spent inside
   the models' `complete()` (the scripted judge does real work) is measured and subtracted, leaving what the
   framework costs per cell: the AutoGen session, recording, grading bookkeeping, comparison.json rewrites.
   Target: < 50 ms per cell.
2. Throughput: cells whose candidate is an Ollama model, against 1, 2 and 4 fake Ollama servers on 127.0.0.1
   that each take `--delay` seconds per chat call (default 1 s: a short answer from a real 8B model), with one
   cell in flight per endpoint (the default limit) and --concurrency equal to the number of endpoints.
   Target: >= 3.5x the cells per second at 4 endpoints. The framework's own CPU time per cell (session,
   grading, records, and the Ollama client's set-up) runs in one event loop and does not overlap with itself,
   so the speed-up shrinks as the delay approaches it (try --delay 0.2).

Figures, not asserts: the tests check behaviour; this prints what it costs on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake Ollama server lives with the tests
os.environ.setdefault("INTERVIEW_SIM_HOME", str(ROOT))

from fake_ollama import FakeOllama  # noqa: E402
from interview_sim.compare import compare_models  # noqa: E402
from interview_sim.models import ChatModel, Completion, CompletionRequest, ModelOptions, create_model  # noqa: E402
from interview_sim.models.cache import ModelWrapper  # noqa: E402

OLLAMA_MODEL = "ollama:llama3:8b-instruct-fp16"


class _Timed:
    """A model factory that adds up the wall time spent inside the models' complete()."""

    def __init__(self) -> None:
        self.model_s = 0.0

    def __call__(self, ref: str, options: ModelOptions) -> ChatModel:
        timer = self

        class Timed(ModelWrapper):
            async def complete(self, request: CompletionRequest) -> Completion:
                start = time.perf_counter()
                try:
                    return await self.inner.complete(request)
                finally:
                    timer.model_s += time.perf_counter() - start

        return Timed(create_model(ref, options))


async def overhead(cells: int, concurrency: int) -> dict[str, Any]:
    repeats = max(1, cells // 2)
    with tempfile.TemporaryDirectory() as tmp:
        common: dict[str, Any] = {
            "fixed_model": "scripted:default",
            "evaluator_model": "scripted:judge",
            "runs_dir": tmp,
            "pairwise": False,
        }
        # Warm-up: imports (AutoGen, scipy) and first-use costs are not per-cell costs.
        await compare_models("scalability-issues", ["scripted:average"], **common)
        timer = _Timed()
        start = time.perf_counter()
        comparison = await compare_models(
            "scalability-issues",
            ["scripted:strong", "scripted:weak"],
            repeats=repeats,
            concurrency=concurrency,
            model_factory=timer,
            **common,
        )
        wall = time.perf_counter() - start
    n = len(comparison.cells)
    assert all(c.status == "ok" for c in comparison.cells), [c.error for c in comparison.cells]
    calls = sum(c.model_calls for c in comparison.cells)
    return {
        "cells": n,
        "calls": calls,
        "wall_ms": 1000 * wall / n,
        "model_ms": 1000 * timer.model_s / n,
        "overhead_ms": 1000 * (wall - timer.model_s) / n,
    }


async def scaling_wall(cells: int) -> tuple[float, float]:
    """Wall and CPU seconds of a compare of `cells` scripted cells with the CLI's defaults (pairwise on)."""
    with tempfile.TemporaryDirectory() as tmp:
        common: dict[str, Any] = {"fixed_model": "scripted:default", "evaluator_model": "scripted:judge", "runs_dir": tmp}
        await compare_models("scalability-issues", ["scripted:average"], **common)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        comparison = await compare_models(
            "scalability-issues", ["scripted:strong", "scripted:weak"], repeats=max(1, cells // 2), **common
        )
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(c.status == "ok" for c in comparison.cells) and all(p.status == "ok" for p in comparison.pairs)
    return wall, cpu


def print_scaling(sizes: list[int], repeats: int) -> None:
    """ms per cell at each size (pairs included), sizes interleaved; the marginal cost between sizes.

    Wall time is what the user waits; CPU time (this process) leaves out waiting for other processes on a
    loaded machine and for fsync, so it shows the flatness best when the machine is shared.
    """
    walls: dict[int, list[float]] = {n: [] for n in sizes}
    cpus: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(repeats):
        for n in sizes:
            wall, cpu = asyncio.run(scaling_wall(n))
            walls[n].append(wall)
            cpus[n].append(cpu)
    print(f"compare with the CLI defaults (pairwise on), scripted cells, sizes interleaved x{repeats}")
    print(f"{'cells':>6} {'wall s (each run)':>22} {'wall ms/cell min, median':>25} {'CPU ms/cell median':>19}  target < 40 ms")
    for n in sizes:
        per = [1000 * w / n for w in walls[n]]
        runs = " ".join(f"{w:.2f}" for w in walls[n])
        cpu = statistics.median(1000 * c / n for c in cpus[n])
        print(f"{n:>6} {runs:>22} {min(per):>12.1f} {statistics.median(per):>12.1f} {cpu:>19.1f}")
    for small, large in itertools.pairwise(sizes):
        marginal = [1000 * (b - a) / (large - small) for a, b in zip(walls[small], walls[large], strict=True)]
        cpu_marginal = [1000 * (b - a) / (large - small) for a, b in zip(cpus[small], cpus[large], strict=True)]
        print(
            f"  marginal ms/cell {small} -> {large}: wall {' '.join(f'{m:.1f}' for m in marginal)}"
            f" (median {statistics.median(marginal):.1f}), CPU median {statistics.median(cpu_marginal):.1f}"
        )


async def bare(cells: int) -> dict[str, Any]:
    """The same cells without the compare machinery: run_scenario then evaluate_run, one after another."""
    from interview_sim.grading.evaluate import evaluate_run
    from interview_sim.session import run_scenario

    timer = _Timed()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for k in range(cells):
            model = ("scripted:strong", "scripted:weak")[k % 2]
            result = await run_scenario(
                "scalability-issues",
                interviewer_model="scripted:default",
                candidate_model=model,
                seed=k // 2,
                runs_dir=tmp,
                model_factory=timer,
            )
            await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"], seed=k // 2, model_factory=timer)
        wall = time.perf_counter() - start
    return {
        "wall_ms": 1000 * wall / cells,
        "model_ms": 1000 * timer.model_s / cells,
        "overhead_ms": 1000 * (wall - timer.model_s) / cells,
    }


async def throughput(endpoints: int, cells: int, delay: float, max_turns: int) -> dict[str, Any]:
    servers = [FakeOllama(delay_s=delay) for _ in range(endpoints)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            comparison = await compare_models(
                "scalability-issues",
                [OLLAMA_MODEL],
                repeats=cells,
                max_turns=max_turns,
                fixed_model="scripted:default",
                evaluator_model="scripted:judge",
                concurrency=endpoints,
                ollama_hosts=[s.url for s in servers],
                per_endpoint=1,
                runs_dir=tmp,
            )
            wall = time.perf_counter() - start
    finally:
        for s in servers:
            s.close()
    assert all(c.status == "ok" for c in comparison.cells), [c.error for c in comparison.cells]
    chat_calls = sum(len(s.chat_requests) for s in servers)
    return {"endpoints": endpoints, "cells": cells, "chat_calls": chat_calls, "wall_s": wall, "cells_per_s": cells / wall}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="cells per scaling run")
    parser.add_argument("--scaling-repeats", type=int, default=1, help="interleaved repetitions of the sizes")
    parser.add_argument("--cells", type=int, default=20, help="cells per overhead measurement")
    parser.add_argument("--ollama-cells", type=int, default=8, help="cells per throughput measurement")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each fake Ollama chat call takes")
    parser.add_argument("--max-turns", type=int, default=6, help="messages per session in the throughput runs")
    args = parser.parse_args()
    await asyncio.to_thread(print_scaling, args.sizes, args.scaling_repeats)
    print()

    print(f"framework overhead per cell (scripted models, {os.cpu_count()} cores)")
    print(f"{'concurrency':>11} {'cells':>5} {'calls':>5} {'wall ms/cell':>12} {'in models':>9} {'overhead':>8}  target < 50 ms")
    for concurrency in (1, 4):
        r = await overhead(args.cells, concurrency)
        print(
            f"{concurrency:>11} {r['cells']:>5} {r['calls']:>5} {r['wall_ms']:>12.1f} {r['model_ms']:>9.1f}"
            f" {r['overhead_ms']:>8.1f}  {'ok' if r['overhead_ms'] < 50 else 'MISSED'}"
        )

    r = await bare(args.cells)
    print(
        f"{'bare':>11} {args.cells:>5} {'':>5} {r['wall_ms']:>12.1f} {r['model_ms']:>9.1f} {r['overhead_ms']:>8.1f}"
        "  (run_scenario + evaluate_run alone: the session and grading engines' share)"
    )

    print(f"\nthroughput across fake Ollama endpoints ({args.delay:g} s per chat call, 1 cell per endpoint at a time)")
    print(f"{'endpoints':>9} {'cells':>5} {'chat calls':>10} {'wall s':>7} {'cells/s':>8} {'speed-up':>8}")
    base = None
    for endpoints in (1, 2, 4):
        r = await throughput(endpoints, args.ollama_cells, args.delay, args.max_turns)
        base = base or r["cells_per_s"]
        speedup = r["cells_per_s"] / base
        print(
            f"{endpoints:>9} {r['cells']:>5} {r['chat_calls']:>10} {r['wall_s']:>7.2f} {r['cells_per_s']:>8.2f} {speedup:>7.2f}x"
        )
    print(f"target: >= 3.5x at 4 endpoints: {'ok' if speedup >= 3.5 else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
