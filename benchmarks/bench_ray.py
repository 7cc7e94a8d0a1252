"""`--executor ray`: what a Ray task costs per cell, and throughput with 1 vs 2 Ray nodes. Prints raw figures.

    .venv/bin/python benchmarks/bench_ray.py [--rounds 3] [--cells 8] [--ollama-cells 12] [--delay 1.0] [--max-turns 4]

Runs in a private network namespace (`unshare -n`, only 127.0.0.1), where Ray binds to loopback; it
re-executes itself there. The cluster is Ray's own `ray.cluster_utils.Cluster` on this machine.

1. Overhead: the same compare of scripted cells (instant models, `--no-pairwise`), one cell at a time, with
   the local executor and with the Ray executor on a 1-node cluster with 1 CPU, paired and interleaved
   (local, ray, local, ray, …) after a warm-up of each. Printed: wall ms per cell of every round, min and
   median, and the difference (what a cell pays for being a Ray task: submission, pickling the scenario,
   a temporary run folder on the node, the records sent back and written by the driver).
2. Throughput: Ollama cells (scripted interviewer and judge) on nodes with `ollama: 1` each, every node
   with its own fake Ollama answering each chat call in `--delay` seconds; 1 node vs 2 nodes, interleaved
   (the second node is added for the 2-node round and removed after). Target: >= 1.8x cells/s on 2 nodes.

Figures, not asserts: the tests check behaviour; this prints what it costs on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake Ollama server and the cluster helper live with the tests
os.environ.setdefault("INTERVIEW_SIM_HOME", str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from interview_sim.compare import compare_models  # noqa: E402
from ray_cluster import LocalCluster, in_namespace, namespace_refusal  # noqa: E402

OLLAMA_MODEL = "ollama:llama3:8b-instruct-fp16"
_INSIDE = "INTERVIEW_SIM_BENCH_NAMESPACE"
FIGURES: list[str] = []
report = FIGURES.append


async def _compare(models: list[str], repeats: int, executor: str, **extra: Any) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        comparison = await compare_models(
            "scalability-issues",
            models,
            repeats=repeats,
            fixed_model="scripted:default",
            evaluator_model="scripted:judge",
            pairwise=False,
            runs_dir=tmp,
            executor=executor,  # type: ignore[arg-type]
            **extra,
        )
        wall = time.perf_counter() - start
    failed = [c.error for c in comparison.cells if c.status != "ok"]
    assert not failed, failed
    return wall


async def overhead(rounds: int, cells: int) -> None:
    import ray

    cluster = LocalCluster(cpus_per_node=1)
    try:
        cluster.add_node()
        cluster.wait()
        ray.init(address=cluster.address, log_to_driver=False)
        models, repeats = ["scripted:strong", "scripted:weak"], max(1, cells // 2)
        n = len(models) * repeats
        for executor in ("local", "ray"):  # warm-up: imports, Ray's worker process start
            await _compare(["scripted:average"], 1, executor)
        per_cell: dict[str, list[float]] = {"local": [], "ray": []}
        for _ in range(rounds):
            for executor in ("local", "ray"):
                per_cell[executor].append(1000 * await _compare(models, repeats, executor) / n)
        ray.shutdown()
    finally:
        cluster.shutdown()
    report(f"1. overhead per scripted cell ({n} cells a round, one at a time; {os.cpu_count()} cores, 1-CPU Ray node)")
    for executor, values in per_cell.items():
        raw = " ".join(f"{v:.1f}" for v in values)
        report(f"   {executor:<5} ms/cell  min {min(values):7.1f}  median {statistics.median(values):7.1f}   raw: {raw}")
    diffs = [r - loc for loc, r in zip(per_cell["local"], per_cell["ray"], strict=True)]
    raw = " ".join(f"{d:.1f}" for d in diffs)
    report(f"   ray - local (paired)  min {min(diffs):7.1f}  median {statistics.median(diffs):7.1f}   raw: {raw}")


async def throughput(rounds: int, cells: int, delay: float, max_turns: int) -> None:
    import ray

    cluster = LocalCluster(cpus_per_node=1, delay_s=delay)
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        cluster.add_node()
        cluster.wait()
        ray.init(address=cluster.address, log_to_driver=False)
        await _compare([OLLAMA_MODEL], 1, "ray", max_turns=max_turns)  # warm-up
        for _ in range(rounds):
            rates[1].append(cells / await _compare([OLLAMA_MODEL], cells, "ray", max_turns=max_turns))
            second = cluster.add_node()
            cluster.wait()
            # Warm-up of the new node: two cells at once, one per node, start its worker process (a one-off
            # cost of a node joining, not a per-cell one).
            await _compare([OLLAMA_MODEL], 2, "ray", max_turns=max_turns, seed=10_000)
            rates[2].append(cells / await _compare([OLLAMA_MODEL], cells, "ray", max_turns=max_turns))
            cluster.remove(second)
            cluster.nodes.remove(second)
            second.ollama.close()
        ray.shutdown()
    finally:
        cluster.shutdown()
    report(f"\n2. throughput: {cells} Ollama cells, {max_turns} messages each, fake Ollama {delay:g} s per chat call per node")
    for nodes, values in rates.items():
        raw = " ".join(f"{v:.3f}" for v in values)
        report(f"   {nodes} node(s) cells/s  min {min(values):.3f}  median {statistics.median(values):.3f}   raw: {raw}")
    speedups = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    median = statistics.median(speedups)
    raw = " ".join(f"{s:.2f}" for s in speedups)
    report(f"   speed-up 2 vs 1 node (paired)  min {min(speedups):.2f}x  median {median:.2f}x   raw: {raw}")
    report(f"   target >= 1.8x on 2 nodes: {'ok' if median >= 1.8 else 'MISSED'} (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds per measurement")
    parser.add_argument("--cells", type=int, default=8, help="scripted cells per overhead round")
    parser.add_argument("--ollama-cells", type=int, default=12, help="Ollama cells per throughput round")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each fake Ollama chat call takes")
    parser.add_argument("--max-turns", type=int, default=4, help="messages per session in the throughput runs")
    args = parser.parse_args()
    if os.environ.get(_INSIDE) != "1":
        refusal = namespace_refusal()
        if refusal is not None:
            sys.exit(f"bench_ray: {refusal}")
        ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # this benchmark's Ray folder, not /tmp/ray
        env = {**os.environ, _INSIDE: "1", "RAY_TMPDIR": ray_tmp}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        try:
            code = subprocess.run(in_namespace([sys.executable, *sys.argv]), env=env, check=False).returncode
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
        sys.exit(code)
    # Ray reports the nodes this benchmark removes on stdout: the figures are printed apart, at the end.
    with contextlib.redirect_stdout(sys.stderr):
        asyncio.run(overhead(args.rounds, args.cells))
        asyncio.run(throughput(args.rounds, args.ollama_cells, args.delay, args.max_turns))
    print("\n".join(FIGURES))


if __name__ == "__main__":
    main()
