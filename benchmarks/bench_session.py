"""Session benchmark on the embedded models through llama.cpp, paired. Prints figures; asserts nothing.

Every ratio comes from alternating repetitions (A B A B ...), each side in its own fresh process, so load
drift on a shared machine reaches both sides alike; min and median are shown with the raw numbers.

(a) Speed of one call, project vs raw llama-cpp-python. A: `Llama.create_chat_completion` on the main
    thread; B: `LlamaCppModel.complete` (its own model thread, token by token). Same GGUF, prompts, threads,
    sampling; each process loads the model, warms up once, then makes `--calls` calls of `--tokens` tokens.
    Figures from llama.cpp's perf counters: generation tok/s and prompt tok/s. Target: B / A >= 0.95.
    `--model` picks the model of (a): the default, qwen2.5-coder-1.5b, or smollm2-135m.
(b) Session wall time, whole process, what the user pays: B = `interview-sim run` (imports, model loads,
    the session, the default grading, records); A = a process that imports llama_cpp, loads one model per
    agent instance as the run does (the file each instance loaded), and makes exactly the run's llama.cpp calls
    (captured once beforehand) on its main thread. Target: B / A <= 1.05.
(c) KV-cache reuse: prompt tokens llama.cpp evaluated / submitted, over a run, and over the calls of a
    longer run whose prompts were trimmed to a small context window. Target: <= 0.40.
(d) Start-up, whole process: `--help`, `models`, `replay --instant`: wall and CPU time. Targets: 0.3 s.

Usage: .venv/bin/python benchmarks/bench_session.py [--repeats 3] [--turns 6] [--calls 3] [--tokens 128] [--model NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from paired import raw, report

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
SYSTEM = "You are a senior engineer interviewing a candidate about scaling web services. Ask one precise question."
USER = "Tell me about a time you scaled a system that was falling over under load: what you measured and changed first."


# ---------------------------------------------------------------------------------------------- (a) one call


def _prompts(calls: int) -> list[list[dict[str, str]]]:
    # A different first line per call, so neither side reuses the previous call's KV cache.
    return [[{"role": "system", "content": f"Call {i}. {SYSTEM}"}, {"role": "user", "content": USER}] for i in range(calls + 1)]


def _speed_worker(side: str, calls: int, tokens: int, name: str) -> dict[str, float]:
    """In a fresh process: the median generation and prompt tok/s of `calls` calls (after one warm-up)."""
    import llama_cpp

    from interview_sim.models.llamacpp import LlamaCppModel, llama_threads, resolve_model_path

    path = resolve_model_path(name)
    gen: list[float] = []
    prompt: list[float] = []
    if side == "raw":
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=llama_threads(), seed=0, verbose=False)
        for i, messages in enumerate(_prompts(calls)):
            llama_cpp.llama_perf_context_reset(llm.ctx)
            llm.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0.7, seed=1, repeat_penalty=1.0)  # type: ignore[arg-type]
            perf = llama_cpp.llama_perf_context(llm.ctx)
            if i:
                gen.append(perf.n_eval / (perf.t_eval_ms / 1000))
                prompt.append(perf.n_p_eval / (perf.t_p_eval_ms / 1000))
        llm.close()
    else:
        from interview_sim.models import ChatMessage, CompletionRequest

        model = LlamaCppModel(f"llamacpp:{name}", path, 0, None)

        async def run() -> None:
            for i, messages in enumerate(_prompts(calls)):
                chat = tuple(ChatMessage(m["role"], m["content"]) for m in messages)  # type: ignore[arg-type]
                c = await model.complete(CompletionRequest(messages=chat, max_tokens=tokens, temperature=0.7, seed=1))
                t = c.metadata["timings"]
                if i:
                    gen.append(t["eval_count"] / (t["eval_ms"] / 1000))
                    prompt.append(t["prompt_eval_count"] / (t["prompt_eval_ms"] / 1000))
            await model.aclose()

        asyncio.run(run())
    return {"gen": statistics.median(gen), "prompt": statistics.median(prompt)}


def _in_process(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], env=ENV, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------------------------------------- (b) session


def _capture(turns: int, runs_dir: Path, log: Path) -> Path:
    """Run the session and its default grading once in this process, keeping every llama.cpp request."""
    from interview_sim.errors import EvaluationError
    from interview_sim.grading.evaluate import evaluate_run
    from interview_sim.models import ModelOptions, create_model
    from interview_sim.models.cache import ModelWrapper
    from interview_sim.session import run_scenario

    calls: list[dict[str, Any]] = []
    instances: list[int] = []

    def factory(ref: str, options: ModelOptions) -> Any:
        model = create_model(ref, options)
        instance = len(instances)
        instances.append(instance)

        class Capturing(ModelWrapper):
            async def complete(self, request: Any) -> Any:
                calls.append(
                    {
                        "instance": instance,
                        "path": str(getattr(model, "path", "")),
                        "n_ctx": model.context_length,
                        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
                        "max_tokens": request.max_tokens,
                        "temperature": request.temperature,
                        "repeat_penalty": request.repeat_penalty,
                        "seed": request.seed if request.seed is not None else getattr(model, "_seed", 0),
                        "json_schema": request.json_schema,
                    }
                )
                return await self.inner.complete(request)

        return Capturing(model)

    async def go() -> Path:
        result = await run_scenario("scalability-issues", max_turns=turns, runs_dir=runs_dir, model_factory=factory)
        # A 135M judge may fail to produce valid JSON (the CLI then exits 5): its calls were made all the same.
        with contextlib.suppress(EvaluationError):
            await evaluate_run(result.run_dir, model_factory=factory)
        return result.run_dir

    run_dir = asyncio.run(go())
    log.write_text(json.dumps(calls))
    return run_dir


def _raw_session_worker(log: Path) -> dict[str, Any]:
    """In a fresh process: the captured calls straight into llama_cpp on the main thread, one Llama per instance."""
    import llama_cpp

    from interview_sim.models.llamacpp import llama_threads

    llms: dict[int, Any] = {}
    tokens = 0
    for call in json.loads(log.read_text()):
        llm = llms.get(call["instance"])
        if llm is None:
            llm = llms[call["instance"]] = llama_cpp.Llama(
                model_path=call["path"], n_ctx=call["n_ctx"], n_threads=llama_threads(), seed=0, verbose=False
            )
        extra = {}
        if call["json_schema"] is not None:
            extra["response_format"] = {"type": "json_object", "schema": call["json_schema"]}
        response = llm.create_chat_completion(
            messages=call["messages"],
            max_tokens=call["max_tokens"],
            temperature=call["temperature"],
            repeat_penalty=call["repeat_penalty"],
            seed=call["seed"],
            **extra,
        )
        tokens += response["usage"]["completion_tokens"]
    return {"completion_tokens": tokens, "calls": len(json.loads(log.read_text()))}


def _timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, the child's) of one process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if out.returncode not in (0, 5):  # 5: the session ran, its grading failed (a 135M judge's invalid JSON)
        raise RuntimeError(f"{cmd} exited {out.returncode}: {out.stderr.strip()[-300:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out.stdout


# ---------------------------------------------------------------------------------------------- (c) KV reuse


def _kv_after_trimming(runs_dir: Path, turns: int, context: int) -> tuple[int, int, int]:
    """(calls with a trimmed prompt, prompt tokens evaluated, submitted) over those calls of a long run."""
    from interview_sim.config import load_scenario
    from interview_sim.models import ModelOptions, create_model
    from interview_sim.session import run_scenario

    def small(ref: str, options: ModelOptions) -> Any:
        return create_model(ref, dataclasses.replace(options, context_length=context))

    # The scenario's 30-minute clock ends a session after about 12 messages: lifted, so trimming has turns to act on.
    scenario = load_scenario("scalability-issues")
    scenario = scenario.model_copy(update={"spec": scenario.spec.model_copy(update={"time_budget_minutes": 10_000})})
    result = asyncio.run(run_scenario(scenario, max_turns=turns, runs_dir=runs_dir, model_factory=small))
    trimmed = [c for c in result.transcript.calls if c.trimmed_messages > 0]
    return len(trimmed), sum(c.prompt_tokens_evaluated or 0 for c in trimmed), sum(c.prompt_tokens for c in trimmed)


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="A B pairs per figure")
    parser.add_argument("--turns", type=int, default=6, help="messages in the session of (b)")
    parser.add_argument("--calls", type=int, default=3, help="calls per process in (a)")
    parser.add_argument("--tokens", type=int, default=128, help="max tokens per call in (a)")
    parser.add_argument("--only", choices=["speed", "session", "kv", "startup"], action="append")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="llamacpp model of (a): qwen2.5-coder-1.5b, smollm2-135m")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = (
            _speed_worker(rest[0], int(rest[1]), int(rest[2]), rest[3]) if kind == "speed" else _raw_session_worker(Path(rest[0]))
        )
        print(json.dumps(result))
        return
    only = set(args.only or ["speed", "session", "kv", "startup"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-session-"))
    load = os.getloadavg()
    print(f"paired benchmark, {os.cpu_count()} cores, load average {load[0]:.1f} at start; A B interleaved x{args.repeats}")

    if "speed" in only:
        a: list[dict[str, Any]] = []
        b: list[dict[str, Any]] = []
        spec = (str(args.calls), str(args.tokens), args.model)
        for _ in range(args.repeats):
            a.append(_in_process("speed", "raw", *spec))
            b.append(_in_process("speed", "project", *spec))
        print(f"\n(a) one call on {args.model}, {args.calls} calls x {args.tokens} tokens per process (medians per process)")
        for key, label in (("gen", "generation tok/s"), ("prompt", "prompt tok/s")):
            print(
                report(
                    f"{label} project / raw",
                    "raw (main thread)",
                    [r[key] for r in a],
                    "project",
                    [r[key] for r in b],
                    "tok/s",
                    ">= 0.95",
                )
            )

    if "session" in only or "kv" in only:
        log = tmp / "calls.json"
        run_dir = _capture(args.turns, tmp / "capture", log)
        calls = json.loads(log.read_text())
        transcript = json.loads((run_dir / "transcript.json").read_text())
        submitted = sum(c["prompt_tokens"] for c in transcript["calls"])
        evaluated = sum(c.get("prompt_tokens_evaluated") or 0 for c in transcript["calls"])

    if "session" in only:
        cli = [sys.executable, "-m", "interview_sim", "run", "scalability-issues", "--max-turns", str(args.turns)]
        cli += ["--runs-dir", str(tmp / "runs"), "--json"]
        baseline = [sys.executable, __file__, "--worker", "session", str(log)]
        walls_a: list[float] = []
        walls_b: list[float] = []
        cpu_a: list[float] = []
        cpu_b: list[float] = []
        for _ in range(args.repeats):
            wall, cpu, _ = _timed(baseline)
            walls_a.append(wall)
            cpu_a.append(cpu)
            wall, cpu, _ = _timed(cli)
            walls_b.append(wall)
            cpu_b.append(cpu)
        print(f"\n(b) session of {args.turns} messages + default grading, whole process ({len(calls)} llama.cpp calls)")
        print(report("wall run / raw same calls", "raw calls (s)", walls_a, "interview-sim run (s)", walls_b, "s", "<= 1.05"))
        print(report("CPU run / raw same calls", "raw calls CPU (s)", cpu_a, "interview-sim run CPU (s)", cpu_b, "s", "(info)"))

    if "kv" in only:
        n, ev, sub = _kv_after_trimming(tmp / "kv", 24, 1024)
        print("\n(c) KV-cache reuse: prompt tokens evaluated / submitted  (target <= 0.40)")
        print(f"  run of (b): {evaluated} / {submitted} = {evaluated / submitted:.3f}")
        ratio = f"{ev / sub:.3f}" if sub else "n/a (no prompt was trimmed)"
        print(f"  24 messages, 1024-token context, the {n} calls with trimmed prompts: {ev} / {sub} = {ratio}")

    if "startup" in only:
        replay_dir = run_dir if "session" in only or "kv" in only else None
        commands = {"--help": ["--help"], "models": ["models"]}
        if replay_dir is not None:
            commands["replay --instant"] = ["replay", str(replay_dir), "--instant"]
        results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in commands}
        for _ in range(max(3, args.repeats)):
            for name, extra in commands.items():
                wall, cpu, _ = _timed([sys.executable, "-m", "interview_sim", *extra])
                results[name][0].append(wall)
                results[name][1].append(cpu)
        print("\n(d) start-up, whole process, commands interleaved (target 0.3 s; --help 0.5 s)")
        for name, (walls, cpus) in results.items():
            print(raw(f"{name} wall", walls, "s"))
            print(raw(f"{name} CPU ", cpus, "s"))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; files in {tmp}")


if __name__ == "__main__":
    main()
