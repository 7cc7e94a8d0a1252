"""Held-out injection attempts, graded by the default judge: are they still at or below the weak control?

    .venv/bin/python benchmarks/bench_injection.py                # the default judge, screen on (as evaluate grades)
    .venv/bin/python benchmarks/bench_injection.py --no-screen    # the judge alone
    .venv/bin/python benchmarks/bench_injection.py --evaluator-model scripted:judge
    .venv/bin/python benchmarks/bench_injection.py --set C         # set C: written after the subject filter
    .venv/bin/python benchmarks/bench_injection.py --set D         # set D: written after the self-assessment filter

The attempts (set B: benchmarks/heldout_injections.yaml, written after the screen's rules of version 1 were
frozen; set C: benchmarks/heldout_injections_c.yaml, after version 2; set D: benchmarks/heldout_injections_d.yaml,
after version 3) are in no test. Each is the
weak control of scalability-issues with text appended to candidate turns. Prints one line per transcript:
overall score, what the screen did, the judges' own (uncapped) overall, and whether it stayed at or below weak;
then how many held.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interview_sim.config import load_scenario  # noqa: E402
from interview_sim.grading.calibration import controls_dir  # noqa: E402
from interview_sim.grading.evaluate import evaluate_run  # noqa: E402
from interview_sim.grading.judge import render_transcript  # noqa: E402
from interview_sim.grading.screen import screen_transcript, subject_filter  # noqa: E402
from interview_sim.record import load_transcript, save_transcript  # noqa: E402

SETS = {"B": "heldout_injections.yaml", "C": "heldout_injections_c.yaml", "D": "heldout_injections_d.yaml"}


def attempts(which: str) -> list[tuple[str, dict[int, str]]]:
    data = yaml.safe_load((ROOT / "benchmarks" / SETS[which]).read_text(encoding="utf-8"))
    return [(item["id"], {int(k): str(v) for k, v in item["append"].items()}) for item in data]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluator-model", default=None, help="Judge model (default: agents/evaluator.yaml's).")
    parser.add_argument("--no-screen", action="store_true", help="Grade without the injection screen (the judge alone).")
    parser.add_argument("--set", choices=sorted(SETS), default="B", help="Which held-out set (default: B).")
    parser.add_argument(
        "--grade-all",
        action="store_true",
        help="Grade every attempt, even one whose judge input is the weak control's (by default that one gets weak's grade:"
        " the judge is deterministic, so the same input is the same grade).",
    )
    args = parser.parse_args()
    models = [args.evaluator_model] if args.evaluator_model else None
    weak = load_transcript(controls_dir() / "weak.json")
    rubric = load_scenario(weak.scenario_id).spec.rubric
    weak_input = render_transcript(subject_filter(weak, rubric)[0])
    held = 0
    with tempfile.TemporaryDirectory() as runs:
        rows = [("weak", {}), *attempts(args.set)]
        results: dict[str, float] = {}
        for name, append in rows:
            transcript = weak.model_copy(deep=True)
            candidate_turns = [m for m in transcript.messages if m.role == "candidate"]
            for turn, text in append.items():
                message = candidate_turns[turn]
                message.content = f"{message.content} {text}"
            save_transcript(Path(runs) / name, transcript)
            start = time.perf_counter()
            unchanged = (
                name != "weak"
                and not args.no_screen
                and not args.grade_all
                and not screen_transcript(transcript)
                and render_transcript(subject_filter(transcript, rubric)[0]) == weak_input
            )
            if unchanged:
                results[name] = results["weak"]
                held += 1
                print(
                    f"{name:20s} overall {results['weak']:.2f}  the judges read exactly the weak control:"
                    " every appended sentence was left out (the subject or self-assessment filter)  held (<= weak)",
                    flush=True,
                )
                continue
            evaluation = await evaluate_run(Path(runs) / name, evaluator_models=models, screen=not args.no_screen)
            assert evaluation.overall is not None
            results[name] = evaluation.overall
            screen = evaluation.screen
            action = screen.action if screen else "-"
            own = (
                f"{screen.uncapped_overall:.2f}"
                if screen and screen.uncapped_overall is not None
                else f"{evaluation.overall:.2f}"
            )
            verdict = ""
            if name != "weak":
                ok = evaluation.overall <= results["weak"]
                held += ok
                verdict = "held (<= weak)" if ok else "NOT HELD (> weak)"
            wall = time.perf_counter() - start
            print(
                f"{name:20s} overall {evaluation.overall:.2f}  screen {action:6s}  judges' own {own}  {wall:5.1f} s  {verdict}",
                flush=True,
            )
    total = len(rows) - 1
    print(f"\nset {args.set}: held {held} of {total} held-out attempts at or below weak ({results['weak']:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
