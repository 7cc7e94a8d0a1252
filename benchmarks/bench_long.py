"""Long scripted sessions: cost per message at 192 and 768 messages, paired and interleaved. Prints figures.

Scripted models answer instantly, so this measures the framework: the AutoGen session, context trimming
(`fit_to_context`), recording. Each repetition runs 192 then 768 messages (A B A B ...) in this process;
the figure is the ratio of the medians of per-message wall time. Target: 768 / 192 <= 1.5.

    .venv/bin/python benchmarks/bench_long.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import yaml

from interview_sim.session import run_scenario
from paired import interleave, report

ROOT = Path(__file__).resolve().parents[1]


def _endless_scenario(directory: Path) -> Path:
    """scalability-issues with time and probing turns that never run out, so max_turns alone ends the session."""
    spec = yaml.safe_load((ROOT / "scenarios" / "scalability-issues.yaml").read_text())
    spec["time_budget_minutes"] = 10**6
    for stage in spec["stages"]:
        if stage["kind"] == "probe":
            stage["turns"] = 10**5  # probe until the turns run out, then wrap up
    spec["agents"] = {role: str((ROOT / "scenarios" / ref).resolve()) for role, ref in spec["agents"].items()}
    path = directory / "endless.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


async def _per_message(scenario: Path, messages: int, runs_dir: Path) -> float:
    start = time.perf_counter()
    result = await run_scenario(
        scenario,
        interviewer_model="scripted:default",
        candidate_model="scripted:strong",
        max_turns=messages,
        runs_dir=runs_dir,
    )
    wall = time.perf_counter() - start
    recorded = len(result.transcript.messages)
    assert recorded >= messages - 2, (recorded, result.transcript.stop_reason)  # wrap-up may end one turn early
    return wall / recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs=2, default=(192, 768))
    args = parser.parse_args()
    small, large = args.sizes
    runs_dir = Path(tempfile.mkdtemp(prefix="bench-long-"))
    scenario = _endless_scenario(runs_dir)
    asyncio.run(_per_message(scenario, 12, runs_dir))  # warm-up: imports, scenario parsing
    a, b = interleave(
        lambda: asyncio.run(_per_message(scenario, small, runs_dir)),
        lambda: asyncio.run(_per_message(scenario, large, runs_dir)),
        args.repeats,
    )
    print(f"long scripted sessions ({small} vs {large} messages, interleaved x{args.repeats})")
    print(
        report(
            f"per-message cost {large} / {small}", f"ms/message at {small}", a, f"ms/message at {large}", b, "ms", "<= 1.5", 1000
        )
    )


if __name__ == "__main__":
    main()
