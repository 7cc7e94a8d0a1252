"""The judge-validity figures of one or more calibrations as a markdown table (docs/judge-validity.md's "Figures").

    .venv/bin/python benchmarks/validity_table.py runs/_calibration/<id>/calibration.json [more ...]

One row per judge: pooled QWK, the lowest criterion QWK, Spearman, verbosity delta, test-retest, order flips and
decisive-pair accuracy, each with its 95 % interval and size, then the gate's verdict on them. The figures are
re-computed from each record's truth and scores (`validity.figures`), so a record re-scores the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

from interview_sim.grading.calibration import Calibration
from interview_sim.grading.validity import checks, figures

COLUMNS = (
    "judge", "transcripts", "QWK pooled", "lowest criterion QWK", "Spearman", "verbosity Δ",
    "retest identical", "retest r", "order flips", "decisive accuracy", "gate",
)  # fmt: skip


def rows(path: Path) -> list[str]:
    calibration = Calibration.model_validate_json(path.read_text(encoding="utf-8"))
    measured = calibration.validity
    if measured is None:
        return [f"| {', '.join(calibration.evaluator_models)} | no labelled set in {path} |"]
    criteria = list(next(iter(measured.judges.values())).qwk_by_criterion) if measured.judges else []
    out = []
    for ref, judge in figures(measured, criteria).items():
        cid, worst = min(judge.qwk_by_criterion.items(), key=lambda kv: kv[1].value if kv[1].value is not None else -9)
        failed = [c.group for c in checks(judge) if not c.passed]
        sizes = measured.sizes
        cells = [
            f"`{ref}`",
            f"{sizes.transcripts} / {sizes.verbosity} swapped / {sizes.retest} retested / {len(measured.pairs)} pairs",
            f"{judge.qwk.text()}",
            f"{worst.text()} ({cid})",
            judge.spearman.text(),
            judge.verbosity_delta.text("{:+.2f}"),
            judge.retest_identical.text("{:.0%}"),
            judge.retest_correlation.text(),
            f"{judge.order_flip_rate.text('{:.0%}')} of {judge.order_flip_rate.n}",
            f"{judge.decisive_accuracy.text('{:.0%}')} of {judge.decisive_accuracy.n}",
            "passes" if not failed else "fails: " + ", ".join(dict.fromkeys(failed)),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(paths: list[str]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS))
    for path in paths:
        for row in rows(Path(path)):
            print(row)


if __name__ == "__main__":
    main(sys.argv[1:])
