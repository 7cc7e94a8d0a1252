"""Conversation health of the embedded default over seeded runs (judge-free; see interview_sim.health).

    .venv/bin/python benchmarks/bench_health.py                      # 10 seeds of scalability-issues, SmolLM2
    .venv/bin/python benchmarks/bench_health.py --seeds 3 --model scripted:default

Every run is a real session (`run_scenario`, no grading) with seed s for every agent, s = 1..N. Prints one
line per run, then the pooled figures: counts summed over all runs (e.g. 27/30 interviewer turns asked a
question), against the issue's targets. `--out FILE` keeps the per-run figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interview_sim.health import Health, Rate, compute_health, health_line  # noqa: E402
from interview_sim.session import run_scenario  # noqa: E402

TARGETS = {
    "stage compliance": (">=", 0.90),
    "truncated": ("<=", 0.10),
    "shown cut off": ("==", 0.0),
    "role adherence": (">=", 0.90),
    "role adherence (interviewer)": (">=", 0.90),
    "topic adherence": (">=", 0.90),
    "note leakage": ("==", 0.0),
}


def pooled(rates: list[Rate]) -> Rate:
    return Rate(count=sum(r.count for r in rates), total=sum(r.total for r in rates))


def summary(healths: list[Health]) -> dict[str, Rate]:
    return {
        "stage compliance": pooled([h.stage_compliance for h in healths]),
        "truncated": pooled([h.truncated for h in healths]),
        "shown cut off": pooled([h.shown_cut_off for h in healths]),
        "role adherence": pooled([h.role_adherence["candidate"] for h in healths]),
        "role adherence (interviewer)": pooled([h.role_adherence["interviewer"] for h in healths]),
        "topic adherence": pooled([h.topic_adherence for h in healths]),
        "echo": pooled([h.echo for h in healths]),
        "note leakage": pooled([h.note_leakage for h in healths]),
    }


def verdict(name: str, rate: Rate) -> str:
    if name not in TARGETS or rate.share is None:
        return ""
    op, target = TARGETS[name]
    met = rate.share >= target if op == ">=" else rate.share <= target if op == "<=" else rate.share == target
    return f"target {op} {target:.0%}: {'met' if met else 'MISSED'}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="scalability-issues")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--model", default=None, help="Model for both seats (default: the agent files', SmolLM2).")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the runs in this folder (default: a temporary one).")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Sessions at once (each is deterministic per seed, so the figures do not change; with"
        " INTERVIEW_SIM_LLAMA_THREADS=1, 2 on a 2-core machine uses both cores).",
    )
    args = parser.parse_args()

    jobs = asyncio.Semaphore(args.jobs)
    done: dict[int, tuple[Health, dict[str, object]]] = {}

    async def one(seed: int, runs_dir: str) -> None:
        async with jobs:
            start = time.perf_counter()
            result = await run_scenario(
                args.scenario, interviewer_model=args.model, candidate_model=args.model, seed=seed, runs_dir=runs_dir
            )
            health = compute_health(result.transcript)
            wall = time.perf_counter() - start
            print(f"seed {seed:2d} · {len(result.transcript.messages)} msgs · {wall:5.1f} s · {health_line(health)}", flush=True)
            done[seed] = health, {"seed": seed, "wall_s": round(wall, 2), "health": health.model_dump(mode="json")}

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        await asyncio.gather(*(one(seed, str(args.keep)) for seed in range(1, args.seeds + 1)))
    else:
        with tempfile.TemporaryDirectory() as runs_dir:
            await asyncio.gather(*(one(seed, runs_dir) for seed in range(1, args.seeds + 1)))
    healths = [done[seed][0] for seed in sorted(done)]
    rows = [done[seed][1] for seed in sorted(done)]
    print(f"\npooled over {len(healths)} runs of {args.scenario}:")
    for name, rate in summary(healths).items():
        share = f"{rate.share:.0%}" if rate.share is not None else "-"
        print(f"  {name:30s} {rate.count:3d}/{rate.total:<3d} {share:>5s}  {verdict(name, rate)}")
    longest = max((h.longest_off_topic_run for h in healths), default=0)
    reps = [h.repetition["candidate"] for h in healths if h.repetition["candidate"] is not None]
    print(f"  {'longest off-topic run':30s} {longest}")
    print(f"  {'candidate repetition (mean)':30s} {sum(reps) / len(reps):.0%}" if reps else "")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
