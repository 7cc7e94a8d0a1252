"""Grading speed on the default model (Qwen2.5-Coder-1.5B-Instruct through llama.cpp). Prints figures; asserts nothing.

(a) Constrained generation. One process holds the project's `LlamaCppModel` and a raw `llama_cpp.Llama` of the same
    file; the same judge-shaped prompt (cached after the first call, so each call is nearly all generation), greedy:
      F  project, free text (no grammar), capped at the constrained answer's length;
      C  project, under the JSON schema (models/greedy_grammar.py: the grammar asked about the likeliest token);
      R  raw llama-cpp-python under the same schema (its sampler chain filters the whole vocabulary every step).
    Interleaved F C R, F C R ...; speed = generated tokens / (wall - prompt evaluation). Targets: C/F >= 0.9,
    C/R >= 0.95.
(b) Grading before/after. The same recorded run graded in fresh processes, alternating: A = the sampler chain
    ($INTERVIEW_SIM_FULL_GRAMMAR=1, what grading did before), B = the project as it is. Wall of `interview-sim
    evaluate`, and whether the grades (scores, evidence, expected scores) are identical.
(c) The demo, as `make demo` runs it: `interview-sim run scalability-issues` (Qwen in every seat), whole process.
    Session wall (first to last turn), grading wall, total wall; grading / session (target <= 0.5) and the judge's
    prompt tokens evaluated / submitted (target <= 0.35); total target <= 80 s.
(d) With py-spy installed (`pip install py-spy`), where one grading's time goes: samples by frame, before and after.
(e) compare, embedded cells: Qwen vs SmolLM2 as candidates (the interviewer and judge are the default Qwen), one
    repeat each, pairwise on, the CLI's defaults: wall, cells/hour, and how many times each worker loaded a model.

Run it alone on an idle machine: every figure is a wall time.
Usage: .venv/bin/python benchmarks/bench_grading.py [--repeats 3] [--only generation|grading|demo|profile|compare]
       [--run DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from paired import raw, report

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
CLI = [sys.executable, "-m", "interview_sim"]
REF = "llamacpp:qwen2.5-coder-1.5b"
SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "evidence": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "string",
                "enum": [
                    "I would put a queue in front of the report writers so a burst becomes a backlog, not timeouts.",
                    "Tenants get their own rate limits, so one tenant's quarter end cannot starve the others.",
                    "We measure p99 latency per tenant and scale the workers on queue depth, not CPU.",
                ],
            },
        },
        "rationale": {"type": "string", "maxLength": 200},
    },
    "required": ["score", "evidence", "rationale"],
}
SYSTEM = (
    "You are a strict, fair interview assessor. Grade the candidate on the criterion named below, on a scale of 1 to"
    " 5, with 1 to 3 quotes copied word for word from the candidate's turns and a one-sentence rationale. Answer with"
    ' one JSON object only, in this shape: {"score": integer, "evidence": [quotes], "rationale": text}'
)
USER = (
    '<transcript>\n<turn role="interviewer">Traffic grows tenfold at quarter end. What do you change first?</turn>\n'
    '<turn role="candidate">I would put a queue in front of the report writers so a burst becomes a backlog, not'
    " timeouts. Tenants get their own rate limits, so one tenant's quarter end cannot starve the others. We measure"
    " p99 latency per tenant and scale the workers on queue depth, not CPU.</turn>\n</transcript>\n\n"
    "Criterion: Scalability and efficiency. Does the design absorb the tenfold peak without waste?\n"
    "Levels:\n1 = no plan for the peak\n3 = a plausible plan with gaps\n5 = a measured plan with clear trade-offs\n\n"
    "Grade the candidate on Scalability and efficiency only, and answer with the JSON object only."
)


# ---------------------------------------------------------------------------------------------- (a) generation


def generation(repeats: int) -> None:
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model

    model: Any = create_model(REF, ModelOptions(seed=0))
    messages = (ChatMessage("system", SYSTEM), ChatMessage("user", USER))
    constrained = CompletionRequest(messages=messages, max_tokens=200, temperature=0.0, seed=0, json_schema=SCHEMA)
    rawllm = llama_cpp.Llama(model_path=str(model.path), n_ctx=4096, n_threads=2, seed=0, verbose=False)

    async def project(request: CompletionRequest) -> tuple[float, int]:
        c = await model.complete(request)
        return c.completion_tokens / (c.latency_s - (c.prompt_eval_s or 0.0)), c.completion_tokens

    def raw_constrained(tokens: list[int]) -> tuple[float, int]:
        grammar = LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
        llama_cpp.llama_perf_context_reset(rawllm.ctx)
        start = time.perf_counter()
        out: Any = rawllm.create_completion(prompt=tokens, max_tokens=200, temperature=0.0, seed=0, grammar=grammar)
        wall = time.perf_counter() - start
        perf = llama_cpp.llama_perf_context(rawllm.ctx)
        n = int(out["usage"]["completion_tokens"])
        return n / (wall - perf.t_p_eval_ms / 1000), n

    loop = asyncio.new_event_loop()
    _, length = loop.run_until_complete(project(constrained))  # warm-up: loads, evaluates the prompt once
    free = CompletionRequest(messages=messages, max_tokens=length, temperature=0.0, seed=0)
    loop.run_until_complete(project(free))
    prompt = model._format([{"role": m.role, "content": m.content} for m in messages])
    tokens = rawllm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    raw_constrained(tokens)
    f_speed: list[float] = []
    c_speed: list[float] = []
    r_speed: list[float] = []
    lengths: list[tuple[int, int, int]] = []
    for _ in range(repeats):
        fs, fn = loop.run_until_complete(project(free))
        cs, cn = loop.run_until_complete(project(constrained))
        rs, rn = raw_constrained(tokens)
        f_speed.append(fs)
        c_speed.append(cs)
        r_speed.append(rs)
        lengths.append((fn, cn, rn))
    loop.run_until_complete(model.aclose())
    rawllm.close()
    print("(a) constrained generation on the default model (greedy; tokens per call free/constrained/raw:", lengths, ")")
    print(report("constrained / free (project)", "F free", f_speed, "C constrained", c_speed, "tok/s", ">= 0.9"))
    print(report("project / raw, both constrained", "R raw", r_speed, "C project", c_speed, "tok/s", ">= 0.95"))


# ---------------------------------------------------------------------------------------------- (b) grading before/after


def _env(chain: bool) -> dict[str, str]:
    """The environment of a grading process: with llama-cpp-python's sampler chain (before), or as it is (after)."""
    env = {k: v for k, v in ENV.items() if k != "INTERVIEW_SIM_FULL_GRAMMAR"}
    return {**env, "INTERVIEW_SIM_FULL_GRAMMAR": "1"} if chain else env


def _grade(run: Path, chain: bool) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Grade a copy of `run` in a fresh process: (wall, grades by criterion, the judge's usage)."""
    work = Path(tempfile.mkdtemp(prefix="bench-grading-")) / run.name
    work.mkdir(parents=True)
    shutil.copy(run / "transcript.json", work / "transcript.json")
    env = _env(chain)
    start = time.perf_counter()
    out = subprocess.run([*CLI, "evaluate", str(work), "--json"], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"evaluate exited {out.returncode}: {out.stderr.strip()[-300:]}")
    (judge,) = json.loads(out.stdout)["judges"]
    grades = {g["criterion"]: (g["score"], g["evidence"], g["expected_score"]) for g in judge["criteria"]}
    shutil.rmtree(work.parent, ignore_errors=True)
    return wall, grades, judge["usage"]


def grading(run: Path, repeats: int) -> None:
    before: list[float] = []
    after: list[float] = []
    outcomes: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for _ in range(repeats):
        a_wall, a_grades, _ = _grade(run, chain=True)
        b_wall, b_grades, usage = _grade(run, chain=False)
        before.append(a_wall)
        after.append(b_wall)
        outcomes.append((a_grades, b_grades))
    same = all(a == b for a, b in outcomes)
    print(f"(b) grading {run} with the default judge, whole `evaluate` process")
    print(report("after / before", "A sampler chain (before)", before, "B as it is (after)", after, "s", "< 1, same grades"))
    print(f"    grades identical in every pair (scores, evidence, expected scores): {same}")
    print(f"    judge usage (after): {json.dumps(usage)}")


# ---------------------------------------------------------------------------------------------- (c) the demo


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def demo(repeats: int) -> None:
    totals: list[float] = []
    sessions: list[float] = []
    gradings: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        runs = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        start = time.perf_counter()
        cmd = [*CLI, "run", "scalability-issues", "--runs-dir", str(runs), "--json"]
        out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False)
        totals.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise RuntimeError(f"run exited {out.returncode}: {out.stderr.strip()[-300:]}")
        (folder,) = [p.parent for p in runs.rglob("transcript.json")]
        transcript = json.loads((folder / "transcript.json").read_text())
        (evaluation,) = [json.loads(p.read_text()) for p in folder.glob("evaluation-*.json")]
        sessions.append((_stamp(transcript["ended_at"]) - _stamp(transcript["started_at"])).total_seconds())
        gradings.append((_stamp(evaluation["ended_at"]) - _stamp(evaluation["started_at"])).total_seconds())
        calls = [c for c in transcript["calls"] if c["role"] == "evaluator"]
        ratios.append(sum(c["prompt_tokens_evaluated"] or 0 for c in calls) / sum(c["prompt_tokens"] for c in calls))
        shutil.rmtree(runs, ignore_errors=True)
    print("(c) the demo: `interview-sim run scalability-issues` (Qwen in every seat), whole process")
    print(report("grading / session", "session", sessions, "grading", gradings, "s", "<= 0.5"))
    print(raw("total (make demo after install)", totals, "s") + "  target <= 80 s")
    print(raw("judge prompt tokens evaluated / submitted", ratios, "") + "  target <= 0.35")


# ---------------------------------------------------------------------------------------------- (d) profile


def _frames(raw_file: Path) -> tuple[int, collections.Counter[str]]:
    """py-spy's raw (collapsed) stacks: samples per frame name (a frame counted once per stack)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw_file.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for name in {f.split(" (")[0] for f in stack.split(";")}:
            counts[name] += int(n)
    return total, counts


WATCH = [
    ("Llama.eval", "llama.cpp decode (prompt evaluation and generation)"),
    ("ggml_gemm_q4_K_8x8_q8_K", "  of which batched matrix products (prompt evaluation)"),
    ("Llama.sample", "sampling"),
    ("llama_grammar_apply_impl", "  of which the grammar over the whole vocabulary"),
    ("GreedyGrammarSampler.sample", "  the project's greedy-under-grammar sampler"),
    ("LlamaGrammar.from_json_schema", "grammar from the JSON schema"),
    ("Llama.__init__", "model load"),
]


def profile(run: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("(d) profile: py-spy not installed (pip install py-spy): skipped")
        return
    print(f"(d) where one grading of {run.name}'s run goes (py-spy, 50 samples/s, native frames; share of samples)")
    for label, chain in (("before (sampler chain)", True), ("after", False)):
        work = Path(tempfile.mkdtemp(prefix="bench-profile-")) / run.name
        work.mkdir(parents=True)
        shutil.copy(run / "transcript.json", work / "transcript.json")
        out = work.parent / "profile.raw"
        env = _env(chain)
        cmd = [spy, "record", "--native", "-r", "50", "-f", "raw", "-o", str(out), "--", *CLI, "evaluate", str(work)]
        subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        total, counts = _frames(out)
        print(f"  {label}: {total} samples")
        for frame, what in WATCH:
            print(f"    {100 * counts[frame] / total:5.1f} %  {what} [{frame}]")
        shutil.rmtree(work.parent, ignore_errors=True)


def compare(repeats: int) -> None:
    runs = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    models = "llamacpp:qwen2.5-coder-1.5b,llamacpp:smollm2-135m"
    cmd = [*CLI, "compare", "scalability-issues", "--models", models, "--repeats", str(repeats), "--runs-dir", str(runs)]
    start = time.perf_counter()
    out = subprocess.run([*cmd, "--json"], env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"compare exited {out.returncode}: {out.stderr.strip()[-300:]}")
    cells = json.loads(out.stdout)["cells"]
    loads: collections.Counter[str] = collections.Counter()
    for transcript in runs.rglob("transcript.json"):
        for call in json.loads(transcript.read_text())["calls"]:
            loaded = (call.get("metadata") or {}).get("loaded")
            if loaded:
                loads[loaded] += 1
    print(f"(e) compare {models}, {repeats} repeat(s), pairwise on: {len(cells)} cells in {wall:.0f} s")
    print(f"    {3600 * len(cells) / wall:.1f} cells/hour (pairwise judgments included in the wall time)")
    print(f"    loaded models (process#load: calls): {dict(loads)}")
    shutil.rmtree(runs, ignore_errors=True)


def _default_run() -> Path:
    """A 12-message run of the default scenario: the newest under runs/, else one made now."""
    found = sorted((ROOT / "runs" / "scalability-issues").glob("*/transcript.json"))
    if found:
        return found[-1].parent
    runs = Path(tempfile.mkdtemp(prefix="bench-run-"))
    cmd = [*CLI, "run", "scalability-issues", "--no-evaluate", "--runs-dir", str(runs)]
    subprocess.run(cmd, env=ENV, check=True, capture_output=True)
    return next(runs.rglob("transcript.json")).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="pairs (or rounds) per figure")
    parser.add_argument("--only", choices=["generation", "grading", "demo", "profile", "compare"], action="append")
    parser.add_argument("--run", type=Path, help="the run (b) and (d) grade (default: the newest under runs/)")
    args = parser.parse_args()
    only = set(args.only or ["generation", "grading", "demo", "profile", "compare"])
    print(f"bench_grading: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    if "generation" in only:
        generation(max(args.repeats, 5))
    run = args.run or (_default_run() if only & {"grading", "profile"} else None)
    if "grading" in only and run is not None:
        grading(run, args.repeats)
    if "demo" in only:
        demo(args.repeats)
    if "profile" in only and run is not None:
        profile(run)
    if "compare" in only:
        compare(1)


if __name__ == "__main__":
    main()
