"""A real multi-node Ray cluster on this machine, each node with its own fake Ollama, for tests and benchmarks.

Ray binds to the machine's own address, so this runs inside a private network namespace where only
127.0.0.1 exists: `in_namespace(argv)` wraps a command in `unshare -n sh -c 'ip link set lo up && exec …'`.

Run as a script it is the child of tests/test_ray_executor.py: it starts the cluster, drives the CLI
(`python -m interview_sim compare|sweep --executor ray --ray-address …`) as a user would, kills a node
mid-compare, and writes what it saw to `<out>/result.json` for the test to assert on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_ollama import DEFAULT_MODEL, FakeOllama

OLLAMA_MODEL = f"ollama:{DEFAULT_MODEL}"
OLLAMA_COMPARE = ["compare", "scalability-issues", "--models", OLLAMA_MODEL, "--repeats", "4", "--max-turns", "4"]
STEPS = ("compare", "sweep", "ollama", "interrupt", "sigterm", "kill", "head")
SCRIPTED = ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge"]


def namespace_refusal() -> str | None:
    """Why a private network namespace cannot be made here (None: it can)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2) for a private network namespace"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"unshare -n was refused ({probe.stderr.strip() or probe.returncode}): Ray needs a private network"
    return None


def in_namespace(argv: Sequence[str]) -> list[str]:
    """`argv` run in a new network namespace with only the loopback interface up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


@dataclass
class Node:
    ollama: FakeOllama
    handle: Any


@dataclass
class LocalCluster:
    """`ray.cluster_utils.Cluster` with one fake Ollama per node, reachable at that node's OLLAMA_HOST."""

    cpus_per_node: int = 1
    ollama_per_node: int = 1
    delay_s: float = 0.0
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster()

    def add_node(self) -> Node:
        ollama = FakeOllama(delay_s=self.delay_s)
        handle = self.cluster.add_node(
            num_cpus=self.cpus_per_node,
            resources={"ollama": self.ollama_per_node},
            env_vars={"OLLAMA_HOST": ollama.host},
        )
        node = Node(ollama, handle)
        self.nodes.append(node)
        return node

    def wait(self) -> None:
        self.cluster.wait_for_nodes()

    def remove(self, node: Node) -> None:
        self.cluster.remove_node(node.handle, allow_graceful=False)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def shutdown(self) -> None:
        self.cluster.shutdown()
        for node in self.nodes:
            node.ollama.close()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "interview_sim", *args]


def _parsed(rc: int | None, stdout: str, stderr: str, started: float) -> dict[str, Any]:
    try:
        data: Any = json.loads(stdout)
    except ValueError:
        data = None
    return {"rc": rc, "json": data, "stdout": stdout, "stderr": stderr, "wall_s": round(time.perf_counter() - started, 2)}


def _run(argv: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return _parsed(proc.returncode, proc.stdout, proc.stderr, started)


def _hosts(runs_dir: Path, comparison: dict[str, Any]) -> list[str]:
    """The Ollama host each cell's candidate talked to, from its transcript."""
    hosts = []
    for cell in comparison["cells"]:
        transcript = json.loads((runs_dir / cell["run_dir"] / "transcript.json").read_text())
        hosts.append(next(c["metadata"]["host"] for c in transcript["calls"] if c["role"] == "candidate"))
    return hosts


def _two_topic_sweep(out: Path) -> Path:
    path = out / "sweep-two-topics.yaml"
    path.write_text(
        "sweep: two-topics\nrole: candidate\nmodels: [scripted:strong]\nrepeats: 1\nseed: 3\n"
        "topics:\n  - scenario: corporate-taxation\n  - scenario: scalability-issues\n"
    )
    return path


def suite(out: Path, steps: Sequence[str] = STEPS) -> dict[str, Any]:
    """Everything the tests assert on, with one cluster start."""
    result: dict[str, Any] = {}
    cluster = LocalCluster(delay_s=0.2)
    try:
        first, second = cluster.add_node(), cluster.add_node()
        cluster.wait()
        address = ["--ray-address", cluster.address]
        compare = ["compare", "scalability-issues", "--models", "scripted:strong,scripted:weak", "--repeats", "4"]
        sweep = ["sweep", str(_two_topic_sweep(out)), "--models", "scripted:strong,scripted:weak", "--repeats", "1"]
        for name, command in (("compare", compare), ("sweep", sweep)):
            for executor in ("local", "ray") if name in steps else ():
                runs = out / f"{name}-{executor}"
                argv = cli(*command, *SCRIPTED, "--executor", executor, *address, "--runs-dir", str(runs), "--json")
                result[f"{name}_{executor}"] = _run(argv)
        if "ollama" in steps:
            result.update(_ollama_cells(out, address, first, second))
        if "interrupt" in steps:
            result.update(_interrupt(out, address, [first, second]))
        if "sigterm" in steps:  # Ray's own SIGTERM handler must not replace the command's
            result.update(_interrupt(out, address, [first, second], signal.SIGTERM, "sigterm"))
        if "kill" in steps:
            result.update(_kill_a_node(out, address, cluster))
        if "head" in steps:  # the last step: the cluster has no head after it
            result.update(_kill_the_head(out, address, cluster, first))
    finally:
        with contextlib.suppress(Exception):  # without its head, Ray's own shutdown may complain
            cluster.shutdown()
    return result


def _ollama_cells(out: Path, address: list[str], first: Node, second: Node) -> dict[str, Any]:
    """Ollama cells: each lands on a node with the `ollama` resource and uses that node's server."""
    runs = out / "ollama"
    run = _run(cli(*OLLAMA_COMPARE, *SCRIPTED, "--executor", "ray", *address, "--runs-dir", str(runs), "--json"))
    return {
        "ollama": run,
        "ollama_nodes": [n.ollama.url for n in (first, second)],
        "ollama_chats": [len(n.ollama.chat_requests) for n in (first, second)],
        "ollama_hosts": _hosts(runs, run["json"]) if run["json"] is not None else [],
    }


def _interrupt(
    out: Path, address: list[str], nodes: list[Node], signum: int = signal.SIGINT, name: str = "interrupt"
) -> dict[str, Any]:
    """Ctrl-C (or `signum`) once a cell has finished: exit 128 + signal, finished cells kept, no cell goes on running."""
    for node in nodes:
        node.ollama.delay_s = 0.4
    runs = out / name
    argv = cli(*OLLAMA_COMPARE, *SCRIPTED, "--repeats", "8", "--seed", "200", "--executor", "ray", *address)
    proc = subprocess.Popen([*argv, "--runs-dir", str(runs), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not _finished_cells(runs):
        time.sleep(0.05)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    chats_at_exit = sum(len(n.ollama.chat_requests) for n in nodes)
    time.sleep(2.0)
    for node in nodes:
        node.ollama.delay_s = 0.2
    (record,) = (runs / "comparisons").glob("*/comparison.json")
    return {
        name: _parsed(proc.returncode, stdout, stderr, time.perf_counter()),
        f"{name}_cells": [c["status"] for c in json.loads(record.read_text())["cells"]],
        f"{name}_chats": [chats_at_exit, sum(len(n.ollama.chat_requests) for n in nodes)],
    }


def _finished_cells(runs: Path) -> int:
    from interview_sim.compare import load_comparison
    from interview_sim.errors import RecordError

    for record in runs.glob("comparisons/*/comparison.json"):
        try:  # the summary and the cells appended to its journal since
            return sum(1 for c in load_comparison(record.parent).cells if c.status == "ok")
        except (RecordError, ValueError):
            return 0
    return 0


def _kill_a_node(out: Path, address: list[str], cluster: LocalCluster) -> dict[str, Any]:
    """A third node dies while it runs a cell: Ray runs that cell again elsewhere, every cell finishes."""
    third = cluster.add_node()
    third.ollama.delay_s = 0.5
    cluster.wait()
    runs = out / "kill"
    argv = cli(*OLLAMA_COMPARE, *SCRIPTED, "--repeats", "6", "--seed", "100", "--executor", "ray", *address)
    started = time.perf_counter()
    proc = subprocess.Popen([*argv, "--runs-dir", str(runs), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not third.ollama.chat_requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    chats_before_kill = len(third.ollama.chat_requests)
    cluster.remove(third)
    stdout, stderr = proc.communicate(timeout=120)
    run = _parsed(proc.returncode, stdout, stderr, started)
    return {
        "kill": run,
        "killed_after_chats": chats_before_kill,
        "killed_node": third.ollama.url,
        "kill_hosts": _hosts(runs, run["json"]) if run["json"] is not None else [],
    }


def _kill_the_head(out: Path, address: list[str], cluster: LocalCluster, head: Node) -> dict[str, Any]:
    """The head node dies once a cell has finished: the command says so in a bounded time, exit 4, cells kept."""
    for node in cluster.nodes:
        node.ollama.delay_s = 0.4
    runs = out / "head"
    argv = cli(*OLLAMA_COMPARE, *SCRIPTED, "--repeats", "8", "--seed", "300", "--executor", "ray", *address)
    proc = subprocess.Popen([*argv, "--runs-dir", str(runs), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not _finished_cells(runs):
        time.sleep(0.05)
    started = time.perf_counter()
    cluster.remove(head)
    stdout, stderr = proc.communicate(timeout=120)
    from interview_sim.compare import load_comparison

    (folder,) = (runs / "comparisons").glob("*/")
    return {
        "head": _parsed(proc.returncode, stdout, stderr, started),
        "head_cells": [c.status for c in load_comparison(folder).cells],
    }


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    (target / "result.json").write_text(json.dumps(suite(target, sys.argv[2:] or STEPS)))
