"""Session benchmark on the embedded model (SmolLM2-135M through llama.cpp). Prints a table; asserts nothing.

(a) framework overhead: the session's wall time against the sum of raw llama.cpp completion times for the
    very same calls, replayed on fresh llama.cpp instances (one per agent, as in the session), so both sides
    get the same KV-cache reuse. Models are loaded before either clock starts. Target: ratio <= 1.05.
(b) KV-cache reuse over a 10-turn session: prompt tokens llama.cpp actually evaluated (its perf counters)
    against prompt tokens submitted. Target: <= 0.4.
(c) `interview-sim --help` start-up time, median of several runs. Target: <= 0.5 s.

Usage: .venv/bin/python benchmarks/bench_session.py [--turns 10] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interview_sim.models import ChatModel, Completion, CompletionRequest, ModelOptions, create_model
from interview_sim.models.llamacpp import LlamaCppModel
from interview_sim.session import run_scenario


class _Capturing(ChatModel):
    """Wraps a loaded llama.cpp model and keeps every request it serves, in order."""

    def __init__(self, inner: LlamaCppModel, role: str, log: list[tuple[str, CompletionRequest]]) -> None:
        super().__init__(inner.ref, inner.name, inner.context_length)
        self.inner, self.role, self.log = inner, role, log

    def count_tokens(self, messages):  # type: ignore[no-untyped-def]
        return self.inner.count_tokens(messages)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.log.append((self.role, request))
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _session(turns: int, runs_dir: Path) -> tuple[float, list[tuple[str, CompletionRequest]], object]:
    log: list[tuple[str, CompletionRequest]] = []
    loaded: dict[str, _Capturing] = {}
    for role in ("interviewer", "candidate"):
        model = create_model("llamacpp:smollm2-135m", ModelOptions(role=role))
        assert isinstance(model, LlamaCppModel)
        await model.check_ready()  # load before the clock starts
        loaded[role] = _Capturing(model, role, log)

    start = time.perf_counter()
    result = await run_scenario(
        "scalability-issues",
        max_turns=turns,
        runs_dir=runs_dir,
        model_factory=lambda ref, options: loaded[options.role],
    )
    wall = time.perf_counter() - start
    return wall, log, result.transcript


def _raw_llama(log: list[tuple[str, CompletionRequest]]) -> float:
    """The same calls straight into llama_cpp.Llama, one fresh instance per agent."""
    import llama_cpp

    from interview_sim.models.llamacpp import resolve_model_path

    path = str(resolve_model_path("smollm2-135m"))
    instances = {
        role: llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=max(1, __import__("os").cpu_count() or 1), verbose=False)
        for role in ("interviewer", "candidate")
    }
    total = 0.0
    for role, request in log:
        start = time.perf_counter()
        instances[role].create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in request.messages],
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.seed,
            repeat_penalty=request.repeat_penalty,
        )
        total += time.perf_counter() - start
    for llm in instances.values():
        llm.close()
    return total


def _help_startup(runs: int = 7) -> float:
    exe = shutil.which("interview-sim", path=str(Path(sys.executable).parent)) or "interview-sim"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="bench-runs-"))

    wall, log, transcript = asyncio.run(_session(args.turns, runs_dir))
    raw = _raw_llama(log)
    calls = transcript.calls  # type: ignore[attr-defined]
    submitted = sum(c.prompt_tokens for c in calls)
    evaluated = sum(c.prompt_tokens_evaluated or 0 for c in calls)
    startup = _help_startup()

    rows = [
        ("(a) session wall time", f"{wall:.2f} s", ""),
        ("    raw llama.cpp time, same calls", f"{raw:.2f} s", ""),
        ("    overhead ratio", f"{wall / raw:.3f}", "<= 1.05"),
        (f"(b) prompt tokens submitted ({len(calls)} calls)", f"{submitted}", ""),
        ("    prompt tokens evaluated", f"{evaluated}", ""),
        ("    evaluated / submitted", f"{evaluated / submitted:.3f}", "<= 0.40"),
        ("(c) interview-sim --help (median of 7)", f"{startup:.3f} s", "<= 0.50 s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>10}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")
    print(f"\nsession: {len(transcript.messages)} messages, stop reason {transcript.stop_reason}; run in {runs_dir}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
