"""Where the cells of a comparison run: in this process (`local`) or as tasks on a Ray cluster (`ray`).

Both executors take the planned `CellTask`s and call `on_start`/`on_done` on the driver, in this process,
which stays the only writer of run folders and of the comparison record.

The Ray executor (`--executor ray`) makes every cell one Ray task:

* placement by resources, never by host name: a cell with an embedded llama.cpp model asks for as many
  CPUs as its llama.cpp threads; a cell with an Ollama model asks for one unit of the custom resource
  `ollama` (and no CPU: it waits on HTTP) and talks to the Ollama server of the node it lands on, from that
  node's `OLLAMA_HOST`; any other cell asks for one CPU. Per-node concurrency follows the resource counts
  each node was started with (`ray start --num-cpus=… --resources='{"ollama": 2}'`);
* nothing assumes a shared filesystem: a task runs its cell in a temporary folder on its node and returns
  the cell's records as plain data (the outcome, and the run folder's files: transcript, events,
  evaluation); the driver writes them under its own runs directory, exactly where a local cell would have;
* a worker or node that dies mid-cell: Ray runs the task again, at most `RAY_MAX_RETRIES` times. A cell
  that fails for a model reason is a failed outcome, not an exception (tenacity already retried the call),
  so Ray never retries it (`retry_exceptions=False`) and it is recorded as failed, as locally;
* cancelled (Ctrl-C): the tasks still queued or running are cancelled with `ray.cancel`; the cells that
  finished were already written.

`ray` is the optional extra `interview-sim[ray]`, imported only when the Ray executor is chosen.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import TypeAdapter

from interview_sim.compare.cells import CellOutcome, CellTask, ModelFactory, Scheduler, cell_runner, run_cell
from interview_sim.errors import BatchError, ClusterError
from interview_sim.models import parse_ref
from interview_sim.models.cache import CACHE_ENV
from interview_sim.models.llamacpp import LLAMA_LANES_ENV, LLAMA_THREADS_ENV
from interview_sim.record import utc_now

if TYPE_CHECKING:
    from ray import ObjectRef

ExecutorKind = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorKind, ...] = ("local", "ray")
OLLAMA_RESOURCE = "ollama"
"""The custom resource an Ollama cell asks for: start each node that runs `ollama serve` with it."""
RAY_MAX_RETRIES = 3
"""Times Ray runs a cell again after its worker or node died."""
DEFAULT_LLAMA_THREADS = 4
"""llama.cpp threads (and CPUs asked) per embedded-model cell on Ray, unless INTERVIEW_SIM_LLAMA_THREADS says."""
INSTALL_HINT = "--executor ray needs Ray: pip install 'interview-sim[ray]'"
_WAIT_S = 0.25
"""How long one `ray.wait` blocks: also how soon a Ctrl-C reaches the cancelling code."""


@dataclass(frozen=True)
class ExecutorChoice:
    """`--executor` and `--ray-address`."""

    kind: ExecutorKind = "local"
    ray_address: str = "auto"
    """`auto` (the cluster this machine belongs to, or RAY_ADDRESS), `host:port`, or `ray://host:10001`."""


class CellExecutor(Protocol):
    """Runs cells, calling `on_start` when a cell is handed out and `on_done` with its outcome, in this process."""

    async def run(
        self,
        tasks: Sequence[CellTask],
        *,
        on_start: Callable[[CellTask], None],
        on_done: Callable[[CellTask, CellOutcome], None],
    ) -> None: ...

    def close(self) -> None: ...


def check_executor(choice: ExecutorChoice) -> None:
    """Fail before anything runs on an unknown executor, or on `ray` without Ray installed."""
    if choice.kind not in EXECUTORS:
        raise BatchError(f"--executor must be one of {', '.join(EXECUTORS)}, not {choice.kind!r}")
    if choice.kind == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BatchError(INSTALL_HINT) from None


def make_executor(choice: ExecutorChoice, scheduler: Scheduler, cache_dir: Path | None, factory: ModelFactory) -> CellExecutor:
    """The executor for `choice`; `scheduler` is the local one (also used for pairwise judgments)."""
    check_executor(choice)
    if choice.kind == "ray":
        return RayExecutor(choice.ray_address, cache_dir=cache_dir, factory=factory)
    return LocalExecutor(scheduler, cache_dir, factory)


# ---------------------------------------------------------------------------------------------- local


class LocalExecutor:
    """Today's behaviour: the in-process scheduler (slots, Ollama endpoints, a process pool for llama.cpp)."""

    def __init__(self, scheduler: Scheduler, cache_dir: Path | None, factory: ModelFactory) -> None:
        self.scheduler, self.cache_dir, self.factory = scheduler, cache_dir, factory

    async def run(
        self,
        tasks: Sequence[CellTask],
        *,
        on_start: Callable[[CellTask], None],
        on_done: Callable[[CellTask, CellOutcome], None],
    ) -> None:
        await self.scheduler.run(tasks, cell_runner(self.cache_dir, self.factory), on_start=on_start, on_done=on_done)

    def close(self) -> None:
        """The scheduler belongs to the caller, which closes it."""


# ---------------------------------------------------------------------------------------------- ray: the task

_OUTCOME: TypeAdapter[CellOutcome] = TypeAdapter(CellOutcome)


def _llama_threads() -> int:
    return max(1, int(os.environ.get(LLAMA_THREADS_ENV) or DEFAULT_LLAMA_THREADS))


def cell_resources(task: CellTask, llama_threads: int) -> dict[str, Any]:
    """The Ray task options that place `task`: CPUs for llama.cpp threads, the `ollama` resource for Ollama."""
    providers = {parse_ref(ref)[0] for ref in task.refs}
    options: dict[str, Any] = {"num_cpus": llama_threads if "llamacpp" in providers else 0 if "ollama" in providers else 1}
    if "ollama" in providers:
        options["resources"] = {OLLAMA_RESOURCE: 1}
    return options


def _folder_files(folder: Path) -> dict[str, bytes]:
    """A run folder's records (lock and temporary files, which start with a dot, left out)."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _node_cache_dir(driver_cache_dir: str | None) -> Path | None:
    """The node's own cache: its INTERVIEW_SIM_CACHE_DIR, else the driver's path if it can be made here."""
    if driver_cache_dir is None:
        return None
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    path = Path(driver_cache_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / "interview-sim-model-cache"
    return path


def run_cell_here(
    task: CellTask,
    reuse_files: dict[str, bytes],
    cache_dir: str | None,
    llama_threads: int,
    factory: ModelFactory,
) -> dict[str, Any]:
    """The body of a cell's Ray task: run the cell in a temporary folder, return its records as plain data.

    Returns:
        {"outcome": the CellOutcome as JSON data, with `run_dir` relative to the runs directory,
         "files": {file name: bytes} of the run folder (transcript.json, events.jsonl, evaluation-*.json)}.
    """
    os.environ[LLAMA_THREADS_ENV] = str(llama_threads)
    os.environ[LLAMA_LANES_ENV] = "1"  # a Ray worker process runs one cell at a time
    with tempfile.TemporaryDirectory(prefix="interview-sim-cell-") as tmp:
        runs = Path(tmp)
        reuse = None
        if task.reuse_run is not None:
            reuse = runs / task.reuse_run.relative_to(task.runs_dir)
            reuse.mkdir(parents=True)
            for name, data in reuse_files.items():
                (reuse / name).write_bytes(data)
        local = replace(task, runs_dir=runs, reuse_run=reuse)
        outcome = asyncio.run(run_cell(local, host=None, cache_dir=_node_cache_dir(cache_dir), base_factory=factory))
        files: dict[str, bytes] = {}
        if outcome.run_dir is not None:
            files = _folder_files(outcome.run_dir)
            outcome.run_dir = outcome.run_dir.relative_to(runs)
        return {"outcome": _OUTCOME.dump_python(outcome, mode="json"), "files": files}


def write_cell_records(runs_dir: Path, result: dict[str, Any]) -> CellOutcome:
    """On the driver: write a task's run folder files under `runs_dir` and return its outcome there."""
    from interview_sim.record import TRANSCRIPT_FILE

    outcome = _OUTCOME.validate_python(result["outcome"])
    if outcome.run_dir is None:
        return outcome
    relative = Path(outcome.run_dir)
    if relative.is_absolute() or ".." in relative.parts:
        raise BatchError(f"a Ray task returned a run folder outside the runs directory: {relative}")
    folder = runs_dir / relative
    files: dict[str, bytes] = result["files"]
    # The transcript last: a folder with a transcript is a complete one.
    for name in sorted(files, key=lambda n: n == TRANSCRIPT_FILE):
        if Path(name).name != name or name.startswith("."):
            raise BatchError(f"a Ray task returned a file name that is not a plain name: {name!r}")
        _write_bytes_atomic(folder / name, files[name])
    outcome.run_dir = folder
    return outcome


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------- ray: the driver

_CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> tuple[str, int] | None:
    """Fail in seconds, in one line, on a cluster address nothing answers at: `ray.init` retries for minutes.
    Returns the head's (host, port), where it is known."""
    if address.startswith("ray://"):
        return None  # Ray Client has its own, bounded, connection retries
    try:
        from ray._private.services import canonicalize_bootstrap_address

        resolved = canonicalize_bootstrap_address(address)
    except (ImportError, AttributeError):
        return None  # Ray moved its internals: leave the check to ray.init
    except (ConnectionError, ValueError) as exc:
        raise BatchError(f"no Ray cluster at {address}: {exc} (start one with `ray start --head`)") from None
    if resolved is None:
        raise BatchError(f"no Ray cluster at {address}: start one with `ray start --head`, or pass --ray-address")
    host, _, port = resolved.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
        return host, int(port)
    except (OSError, ValueError):
        tried = f" (tried {resolved})" if resolved != address else ""  # Ray resolves localhost to this machine's IP
        raise BatchError(f"no Ray cluster answers at {address}{tried}: start one with `ray start --head`") from None


def _signal_handlers() -> dict[int, Any]:
    """The process's SIGINT and SIGTERM handlers (main thread only: elsewhere they cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict[int, Any]) -> None:
    """Put back the handlers `ray.init` replaced: Ray's own SIGTERM handler exits 15 at once, with a C++ stack dump
    and no line, where the command cancels its cells, keeps the finished ones and says so (exit 143)."""
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


HEAD_LOST_S = 10.0
"""How long the head node of a Ray cluster may not answer before the command gives up on the cluster (Ray's own
driver waits 60 s, then ends the process with exit 1 and its own message, the finished cells unsaved)."""


class _HeadWatch:
    """Whether the cluster's head (its GCS port) still accepts connections, checked at most once a second."""

    def __init__(self, head: tuple[str, int] | None) -> None:
        self.head = head
        self.last_answer = self.last_check = time.monotonic()

    def lost(self) -> bool:
        now = time.monotonic()
        if self.head is None or now - self.last_check < 1.0:
            return False
        self.last_check = now
        try:
            socket.create_connection(self.head, timeout=1.0).close()
            self.last_answer = now
        except OSError:
            return now - self.last_answer >= HEAD_LOST_S
        return False


def _failed(task: CellTask, error: str) -> CellOutcome:
    now = utc_now()
    return CellOutcome(key=task.key, status="failed", started_at=now, ended_at=now, error=error)


class RayExecutor:
    """Every cell a Ray task; results consumed as they finish (`ray.wait`) and written here."""

    def __init__(self, address: str, *, cache_dir: Path | None, factory: ModelFactory) -> None:
        import ray

        self.ray = ray
        self.cache_dir, self.factory = cache_dir, factory
        self.llama_threads = _llama_threads()
        self._owns_connection = False
        self.address, self._head, self._lost = address, None, False
        if not ray.is_initialized():
            self._head = _check_reachable(address)
            handlers = _signal_handlers()
            try:
                # Ray's own start-up chatter stays off this command's output (--json must be the only stdout).
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BatchError(
                    f"cannot connect to a Ray cluster at {address}: {first} (start one with `ray start --head`,"
                    " or pass --ray-address)"
                ) from None
            finally:
                _restore(handlers)
            self._owns_connection = True
        self._remote = ray.remote(max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(run_cell_here)

    def _check_feasible(self, tasks: Sequence[CellTask]) -> None:
        """Refuse up front what no node could ever run (Ray would otherwise wait for such a node forever)."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        for task in tasks:
            needs = cell_resources(task, self.llama_threads)
            wanted = {"CPU": needs["num_cpus"], **needs.get("resources", {})}
            if not any(all(node.get(k, 0) >= v for k, v in wanted.items() if v) for node in nodes):
                asked = ", ".join(f"{k}={v}" for k, v in wanted.items() if v)
                hint = (
                    f" start the nodes that run Ollama with --resources='{{\"{OLLAMA_RESOURCE}\": 1}}'"
                    if OLLAMA_RESOURCE in wanted
                    else f" set {LLAMA_THREADS_ENV} lower or add a larger node"
                )
                raise BatchError(f"no node of the Ray cluster has the resources for cell {task.key} ({asked}):{hint}")

    def _submit(self, task: CellTask) -> ObjectRef[dict[str, Any]]:
        reuse_files = _folder_files(task.reuse_run) if task.reuse_run is not None else {}
        cache = str(self.cache_dir) if self.cache_dir is not None else None
        ref: ObjectRef[dict[str, Any]] = self._remote.options(**cell_resources(task, self.llama_threads)).remote(
            task, reuse_files, cache, self.llama_threads, self.factory
        )
        return ref

    def _collect(self, task: CellTask, ref: ObjectRef[dict[str, Any]]) -> CellOutcome:
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            # The task died more often than Ray retries it, or raised something that is not a model failure.
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            return _failed(task, f"the Ray task running this cell failed: {type(exc).__name__}: {first.strip()}"[:500])
        return write_cell_records(task.runs_dir, result)

    async def run(
        self,
        tasks: Sequence[CellTask],
        *,
        on_start: Callable[[CellTask], None],
        on_done: Callable[[CellTask, CellOutcome], None],
    ) -> None:
        self._check_feasible(tasks)
        pending: dict[ObjectRef[dict[str, Any]], CellTask] = {}
        try:
            for task in tasks:
                pending[self._submit(task)] = task
                on_start(task)
            watch = _HeadWatch(self._head)
            while pending:
                if watch.lost():
                    self._lost = True
                    raise ClusterError(
                        f"lost the Ray cluster at {self.address}: its head node has not answered for {HEAD_LOST_S:g} s;"
                        " the finished cells are kept: run the same command again to resume"
                    )
                ready, _ = await asyncio.to_thread(self.ray.wait, list(pending), num_returns=1, timeout=_WAIT_S)
                if ready:
                    # Take every result that is ready now, not one per wait.
                    ready, _ = self.ray.wait(list(pending), num_returns=len(pending), timeout=0)
                for ref in ready:
                    task = pending.pop(ref)
                    on_done(task, self._collect(task, ref))
        finally:
            for ref in pending if not self._lost else ():  # without its head, the cluster cannot cancel anything
                self.ray.cancel(ref)

    def close(self) -> None:
        if self._owns_connection and not self._lost:  # ray.shutdown would wait a minute for the lost head
            self.ray.shutdown()
            self._owns_connection = False
