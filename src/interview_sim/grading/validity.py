"""How good a judge is, in numbers: agreement with known levels, verbosity bias, test-retest and order flips.

`calibrate` grades the scenario's labelled set (`grading.labelled`) with each judge and measures, per judge:

    agreement      quadratic weighted kappa (QWK) between the judge's sampled score and the known level, per
                   criterion and pooled over criteria, and Spearman's rho between the score that counts (the
                   expected score where the backend gives token probabilities, else the sampled one) and the level;
    verbosity      the mean score change from length at the same level: for each transcript of the verbosity
                   sample, its `swapped` variant (low levels padded with on-subject prose that adds no level,
                   high levels terse) against the plain one, signed so that a positive change means longer scored higher;
    test-retest    a sample graded again by two judges with consecutive seeds (as `evaluate --judges 2` grades,
                   sampling at temperature 0.7 when the judge's own is a greedy 0): the share of identical sampled
                   scores and the Pearson correlation of the scores that count;
    order          pairs of labelled transcripts, one known better (a higher sum of levels by at least
                   PAIR_MARGIN), judged pairwise in both orders: the share of pairs whose verdict changes with the
                   order (a tie in one order and a winner in the other is a change), and the accuracy on decisive
                   pairs (same winner in both orders).

Every figure comes with a 95 % interval and the size it rests on: a percentile bootstrap (scipy.stats.bootstrap)
that resamples whole transcripts (a transcript's criteria were graded from one context, so they are not
independent), vectorised with numpy and computed as scipy.stats.bootstrap(method="percentile") does, or a Wilson
interval for a share of independent pairs. QWK is computed here with numpy from the
confusion matrix (weights (i - j)^2 / (k - 1)^2 over the scale's k points); the tests check it against the
equivalent pairwise formula.

The gate's thresholds are THRESHOLDS, here and nowhere else; docs/judge-validity.md says where each comes from.
The record keeps every transcript's truth and every score, so `figures` recomputes the same numbers from it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from interview_sim.errors import EvaluationError
from interview_sim.grading import labelled
from interview_sim.grading.agreement import (
    pearson,
    qwk,
    spearman,
    weighted_mean,
    weighted_pearson,
    weighted_qwk,
    weighted_spearman,
)

if TYPE_CHECKING:
    import numpy as np

    from interview_sim.config import Rubric
    from interview_sim.grading.grades import Evaluation
    from interview_sim.record import Transcript

__all__ = [
    "THRESHOLDS",
    "Interval",
    "JudgeValidity",
    "Sizes",
    "Thresholds",
    "Validity",
    "checks",
    "figures",
    "measure",
    "pearson",
    "qwk",
    "spearman",
]

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
PAIR_MARGIN = 4
"""Smallest difference in the sum of levels (1, 3 or 5 per criterion) that makes one transcript of a pair known better."""
DIGITS = 4
PAIRING_ATTEMPTS = 50


@dataclass(frozen=True)
class Thresholds:
    """What a judge must reach to pass calibration (besides the controls' checks)."""

    qwk_pooled: float = 0.6
    qwk_criterion: float = 0.4
    verbosity_abs_delta: float = 0.3
    order_flip_rate: float = 0.2


THRESHOLDS = Thresholds()
"""The one place the gate's figures are set; printed with the figures and cited in docs/judge-validity.md."""


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class Sizes(_Rec):
    """How much of the labelled set a calibration grades (the CLI's --labelled, --verbosity, --retest, --pairs)."""

    transcripts: int = 60
    """Plain transcripts for agreement: 20 per level per criterion (pooled QWK's interval ~ +/-0.07 at 0.5)."""
    verbosity: int = 30
    """Of those, how many are graded again as their length-swapped variant."""
    retest: int = 20
    """Of those, how many are graded again by two judges with consecutive seeds."""
    pairs: int = 30
    """Pairs judged in both orders (at most transcripts / 2: a transcript is in one pair at most)."""


class Interval(_Rec):
    """A figure with its 95 % interval and the size it rests on; value None where it is undefined (note says why)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    note: str = ""

    def text(self, fmt: str = "{:.2f}") -> str:
        if self.value is None:
            return f"n/a ({self.note})" if self.note else "n/a"
        interval = f" [{fmt.format(self.low)}, {fmt.format(self.high)}]" if self.low is not None and self.high is not None else ""
        return f"{fmt.format(self.value)}{interval}"


class JudgeValidity(_Rec):
    """One judge model's figures on the labelled set."""

    judge: str
    qwk: Interval
    """Pooled over criteria; n = transcripts."""
    qwk_by_criterion: dict[str, Interval] = Field(default_factory=dict)
    spearman: Interval
    spearman_by_criterion: dict[str, Interval] = Field(default_factory=dict)
    verbosity_delta: Interval
    """Mean (longer - shorter) score at the same level, over criteria of the verbosity sample; n = transcripts."""
    padding_delta: Interval
    """Levels 1 and 3 only: padded minus plain."""
    terse_delta: Interval
    """Level 5 only: plain minus terse."""
    retest_identical: Interval
    """Share of criterion scores sampled identically by the two seeds; n = transcripts."""
    retest_correlation: Interval
    """Pearson correlation of the scores that count under the two seeds; n = transcripts."""
    order_flip_rate: Interval
    """Share of pairs whose verdict changes with the order (Wilson interval); n = pairs."""
    decisive_accuracy: Interval
    """Share of decisive pairs won by the known better transcript (Wilson interval); n = decisive pairs."""
    scores_from: str = "sampled"
    """Which score Spearman and the retest correlation use: "expected" (token probabilities) or "sampled"."""

    def headline(self) -> str:
        """e.g. "judge QWK 0.64 [0.55, 0.72] on 60 labelled transcripts"."""
        return qwk_text(self.qwk.value, self.qwk.low, self.qwk.high, self.qwk.n)


def qwk_text(value: float | None, low: float | None, high: float | None, n: int) -> str:
    from interview_sim.text import qwk_line

    return qwk_line(value, low, high, n)


Purpose = Literal["agreement", "verbosity", "retest"]


class Graded(_Rec):
    """One labelled transcript as graded: its truth (the item) and, per judge model, each seed's scores."""

    item: labelled.Item
    purpose: Purpose
    run_dir: str
    evaluation_id: str | None = None
    error: str | None = None
    scores: dict[str, list[dict[str, int]]] = Field(default_factory=dict)
    """Per judge model reference, one {criterion: sampled score} per seed graded (two for the retest)."""
    values: dict[str, list[dict[str, float]]] = Field(default_factory=dict)
    """The same, the scores that count (expected where known)."""
    expected: bool = False
    """True when every value is an expected score from token probabilities."""


class Pair(_Rec):
    """Two labelled transcripts, one known better, judged in both orders."""

    a: str
    b: str
    better: Literal["a", "b"]
    pairwise_id: str | None = None
    error: str | None = None
    verdicts: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per judge model reference: {"ab": winner shown a first, "ba": winner shown b first}, each "a", "b" or "tie"."""


class CheckResult(_Rec):
    name: str
    passed: bool
    detail: str
    group: str


class Validity(_Rec):
    """The labelled set's part of `calibration.json`: what was graded, every score, and the figures."""

    labelled_hash: str
    """Content hash of labelled.yaml: the passages the truth refers to."""
    seed: int
    sizes: Sizes
    scale_min: int
    scale_max: int
    confidence: float = CONFIDENCE
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES
    thresholds: dict[str, float] = Field(default_factory=dict)
    graded: list[Graded] = Field(default_factory=list)
    pairs: list[Pair] = Field(default_factory=list)
    judges: dict[str, JudgeValidity] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------- statistics


def _r(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), DIGITS) + 0.0  # no "-0.00"


Statistic = Callable[["np.ndarray"], "np.ndarray"]
"""Entry weights (resamples x entries) -> one value per resample."""


def bootstrap(stat: Statistic, units: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """The statistic and its percentile bootstrap interval, resampling whole units (transcripts or pairs): `units`
    gives each entry's unit; a resample draws n units with replacement, i.e. multinomial multiplicities, and an
    entry weighs as much as its unit was drawn. Vectorised over resamples (numpy); percentile as
    scipy.stats.bootstrap(method="percentile") computes it, resamples where the statistic is undefined left out."""
    import numpy as np

    n = int(units.max()) + 1 if units.size else 0
    if n == 0:
        return Interval(value=None, n=0)
    value = float(stat(np.ones((1, units.size)))[0])
    if math.isnan(value):
        return Interval(value=None, n=n)
    if n < 2:
        return Interval(value=_r(value), n=n, note="no interval from one unit")
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)
    values = stat(drawn[:, units])
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Interval(value=_r(value), n=n, note="no resample defined the figure")
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return Interval(value=_r(value), low=_r(float(low)), high=_r(float(high)), n=n)


def wilson(successes: int, n: int) -> Interval:
    """A share with its Wilson score interval (statsmodels' proportion_confint(method="wilson"), written out)."""
    from statistics import NormalDist

    if n == 0:
        return Interval(value=None, n=0, note="no units")
    z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(value=_r(p), low=_r(max(0.0, centre - half)), high=_r(min(1.0, centre + half)), n=n)


# ---------------------------------------------------------------------------------------------- figures


def _entries(rows: list[tuple[int, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    if not rows:
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0)
    units, x, y = zip(*rows, strict=True)
    return np.asarray(units, dtype=int), np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _judge_figures(validity: Validity, ref: str, criteria: list[str]) -> JudgeValidity:
    seed = validity.seed
    main = [g for g in validity.graded if g.purpose == "agreement" and g.scores.get(ref)]
    by_id = {g.item.id: g for g in main}
    n = len(main)
    undefined = "undefined: the judge gave one score to every transcript" if n else "no labelled transcript graded"

    def agreement(which: list[str]) -> tuple[Interval, Interval]:
        sampled = [
            (u, float(g.item.truth[c]), float(g.scores[ref][0][c]))
            for u, g in enumerate(main)
            for c in which
            if c in g.scores[ref][0]
        ]
        counted = [
            (u, float(g.item.truth[c]), g.values[ref][0][c]) for u, g in enumerate(main) for c in which if c in g.values[ref][0]
        ]
        units, truth, scores = _entries(sampled)
        kappa = bootstrap(lambda w: weighted_qwk(truth, scores, w), units, seed)
        units, truth, values = _entries(counted)
        rho = bootstrap(lambda w: weighted_spearman(truth, values, w), units, seed)
        return _noted(kappa, undefined), _noted(rho, undefined)

    pooled, sp = agreement(criteria)
    per_criterion = {cid: agreement([cid]) for cid in criteria}

    # Verbosity: each swapped transcript against its plain one, per criterion, signed "longer minus shorter".
    swaps = [
        (g, by_id[g.item.id.removesuffix("-swapped")])
        for g in validity.graded
        if g.purpose == "verbosity" and g.values.get(ref) and g.item.id.removesuffix("-swapped") in by_id
    ]

    def delta(levels: tuple[int, ...]) -> Interval:
        rows = []
        for u, (swapped, plain) in enumerate(swaps):
            for cid, level in swapped.item.truth.items():
                if level in levels and cid in swapped.values[ref][0] and cid in plain.values[ref][0]:
                    change = swapped.values[ref][0][cid] - plain.values[ref][0][cid]
                    rows.append((u, -change if level == labelled.HIGH else change, 0.0))
        units, diffs, _ = _entries(rows)
        return _noted(bootstrap(lambda w: weighted_mean(diffs, w), units, seed), "no length-swapped transcript graded")

    # Test-retest: two seeds on the same transcripts.
    retests = [g for g in validity.graded if g.purpose == "retest" and len(g.scores.get(ref, [])) >= 2]
    pairs_of = [
        (u, g.scores[ref][0][c], g.scores[ref][1][c], g.values[ref][0][c], g.values[ref][1][c])
        for u, g in enumerate(retests)
        for c in g.scores[ref][0]
        if c in g.scores[ref][1]
    ]
    no_retest = "no transcript graded under two seeds"
    units, same, _ = _entries([(u, float(a == b), 0.0) for u, a, b, _, _ in pairs_of])
    retest_same = _noted(bootstrap(lambda w: weighted_mean(same, w), units, seed), no_retest)
    units, first, second = _entries([(u, x, y) for u, _, _, x, y in pairs_of])
    retest_r = _noted(
        bootstrap(lambda w: weighted_pearson(first, second, w), units, seed),
        "undefined: the same score on every criterion under a seed" if retests else no_retest,
    )

    flip_rate, accuracy = _order_figures(validity.pairs, ref)
    expected = bool(main) and all(g.expected for g in main)
    return JudgeValidity(
        judge=ref,
        qwk=pooled,
        qwk_by_criterion={cid: k for cid, (k, _) in per_criterion.items()},
        spearman=sp,
        spearman_by_criterion={cid: r for cid, (_, r) in per_criterion.items()},
        verbosity_delta=delta(labelled.LEVELS),
        padding_delta=delta((1, 3)),
        terse_delta=delta((labelled.HIGH,)),
        retest_identical=retest_same,
        retest_correlation=retest_r,
        order_flip_rate=flip_rate,
        decisive_accuracy=accuracy,
        scores_from="expected" if expected else "sampled",
    )


def _order_figures(pairs: list[Pair], ref: str) -> tuple[Interval, Interval]:
    """Both orders of each pair: the flip rate, and the accuracy on decisive pairs."""
    judged = [p for p in pairs if ref in p.verdicts]
    flips = sum(1 for p in judged if p.verdicts[ref]["ab"] != p.verdicts[ref]["ba"])
    decisive = [p for p in judged if p.verdicts[ref]["ab"] == p.verdicts[ref]["ba"] != "tie"]
    right = sum(1 for p in decisive if p.verdicts[ref]["ab"] == p.better)
    return (
        _noted(wilson(flips, len(judged)), "no pair judged"),
        _noted(wilson(right, len(decisive)), "no decisive pair: every pair was a tie or flipped"),
    )


def _noted(interval: Interval, note: str) -> Interval:
    if interval.value is None and not interval.note:
        return interval.model_copy(update={"note": note})
    return interval


def figures(validity: Validity, criteria: list[str]) -> dict[str, JudgeValidity]:
    """Every judge model's figures, from the record's truth and scores alone (so a stored record re-scores)."""
    refs = list(dict.fromkeys(ref for g in validity.graded for ref in g.scores))
    refs += [ref for p in validity.pairs for ref in p.verdicts if ref not in refs]
    return {ref: _judge_figures(validity, ref, criteria) for ref in refs}


def checks(judge: JudgeValidity, thresholds: Thresholds = THRESHOLDS, *, prefix: str = "") -> list[CheckResult]:
    """The gate's checks on one judge's figures (point estimates against the thresholds; a figure that is
    undefined fails, with the reason)."""
    t = thresholds
    found: list[CheckResult] = []

    def add(name: str, group: str, value: float | None, ok: Callable[[float], bool], shown: str, limit: str, note: str) -> None:
        if value is None:
            found.append(
                CheckResult(name=prefix + name, passed=False, detail=f"{shown} n/a ({note}); needs {limit}", group=group)
            )
        else:
            passed = ok(value)
            found.append(
                CheckResult(
                    name=prefix + name,
                    passed=passed,
                    detail=f"{shown} {value:.2f} {'' if passed else 'not '}{limit}",
                    group=group,
                )
            )

    add(
        "pooled QWK",
        "agreement",
        judge.qwk.value,
        lambda v: v >= t.qwk_pooled,
        "pooled QWK",
        f">= {t.qwk_pooled:g}",
        judge.qwk.note,
    )
    worst = min(
        ((cid, i) for cid, i in judge.qwk_by_criterion.items()),
        key=lambda x: -math.inf if x[1].value is None else x[1].value,
        default=None,
    )
    if worst is not None:
        cid, interval = worst
        add(
            "QWK per criterion",
            "agreement",
            interval.value,
            lambda v: v >= t.qwk_criterion,
            f"lowest criterion QWK ({cid})",
            f">= {t.qwk_criterion:g}",
            interval.note,
        )
    v = judge.verbosity_delta
    add(
        "verbosity",
        "verbosity",
        v.value,
        lambda x: abs(x) <= t.verbosity_abs_delta,
        "verbosity delta",
        f"|delta| <= {t.verbosity_abs_delta:g}",
        v.note,
    )
    f = judge.order_flip_rate
    add("order flips", "order", f.value, lambda x: x <= t.order_flip_rate, "order-flip rate", f"<= {t.order_flip_rate:g}", f.note)
    return found


# ---------------------------------------------------------------------------------------------- measuring


def plan(
    bank: labelled.Bank, criteria: list[str], sizes: Sizes, seed: int
) -> tuple[list[tuple[labelled.Item, Purpose]], list[Pair]]:
    """What to grade: the plain transcripts, the swapped and retest samples, and the pairs."""
    import numpy as np

    items = labelled.make_items(bank, criteria, sizes.transcripts, seed)
    jobs: list[tuple[labelled.Item, Purpose]] = [(item, "agreement") for item in items]
    jobs += [(labelled.swapped(item, bank), "verbosity") for item in items[: sizes.verbosity]]
    jobs += [(item.model_copy(update={"id": f"{item.id}-retest"}), "retest") for item in items[: sizes.retest]]
    rng = np.random.default_rng([seed, 2])
    pairs: list[Pair] = []
    for _ in range(PAIRING_ATTEMPTS):  # greedy matching in a seeded order; the first order that finds them all wins
        found = _pairs(items, [int(i) for i in rng.permutation(len(items))], sizes.pairs, rng)
        if len(found) > len(pairs):
            pairs = found
        if len(pairs) >= sizes.pairs:
            break
    return jobs, pairs


def _pairs(items: list[labelled.Item], order: list[int], wanted: int, rng: np.random.Generator) -> list[Pair]:
    pairs: list[Pair] = []
    used: set[int] = set()
    for i in order:
        if len(pairs) >= wanted or i in used:
            continue
        for j in order:
            if j == i or j in used:
                continue
            gap = sum(items[i].truth.values()) - sum(items[j].truth.values())
            if abs(gap) >= PAIR_MARGIN:
                used.update((i, j))
                better_first = bool(rng.integers(2))
                high, low = (items[i], items[j]) if gap > 0 else (items[j], items[i])
                a, b = (high, low) if better_first else (low, high)
                pairs.append(Pair(a=a.id, b=b.id, better="a" if better_first else "b"))
                break
    return pairs


def _scores(evaluation: Evaluation) -> tuple[dict[str, list[dict[str, int]]], dict[str, list[dict[str, float]]], bool]:
    scores: dict[str, list[dict[str, int]]] = {}
    values: dict[str, list[dict[str, float]]] = {}
    expected = True
    for grade in sorted(evaluation.judges, key=lambda j: j.seed):
        scores.setdefault(grade.judge, []).append({c.criterion: c.score for c in grade.criteria})
        values.setdefault(grade.judge, []).append({c.criterion: round(c.value, DIGITS) for c in grade.criteria})
        expected = expected and all(c.expected_score is not None for c in grade.criteria)
    return scores, values, expected


async def measure(
    *,
    bank: labelled.Bank,
    rubric: Rubric,
    template: Transcript,
    folder: Path,
    sizes: Sizes,
    seed: int,
    options: dict[str, object],
    limit: asyncio.Semaphore,
    labelled_hash: str,
    on_progress: Callable[[str], None] | None = None,
) -> Validity:
    """Compose the labelled transcripts under `folder`, grade them (and the pairs) with `options` as
    `evaluate_run` takes them, and compute the figures."""
    from interview_sim.grading.evaluate import evaluate_pairwise, evaluate_run
    from interview_sim.record import save_transcript

    criteria = [c.id for c in rubric.criteria]
    jobs, pairs = plan(bank, criteria, sizes, seed)
    dirs: dict[str, Path] = {}
    for item, _ in jobs:
        dirs[item.id] = folder / item.id
        save_transcript(dirs[item.id], labelled.compose(bank, item, template))
    total = len(jobs) + len(pairs)
    done = 0

    def progress(text: str) -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(f"[labelled {done}/{total}] {text}")

    async def grade(item: labelled.Item, purpose: Purpose) -> Graded:
        record = Graded(item=item, purpose=purpose, run_dir=str(dirs[item.id]))
        judges = 2 if purpose == "retest" else 1
        async with limit:
            try:
                evaluation = await evaluate_run(dirs[item.id], **{**options, "judges": judges})  # type: ignore[arg-type]
            except EvaluationError as exc:
                record.error = str(exc)
                progress(f"{item.id}: failed: {exc}")
                return record
        record.evaluation_id = evaluation.evaluation_id
        record.scores, record.values, record.expected = _scores(evaluation)
        progress(f"{item.id}: graded")
        return record

    pairwise_options = {k: options[k] for k in ("evaluator_models", "seed", "model_factory", "max_tokens") if k in options}

    async def judge_pair(pair: Pair) -> Pair:
        async with limit:
            try:
                result = await evaluate_pairwise(dirs[pair.a], dirs[pair.b], **pairwise_options)  # type: ignore[arg-type]
            except EvaluationError as exc:
                progress(f"pair {pair.a}/{pair.b}: failed: {exc}")
                return pair.model_copy(update={"error": str(exc)})
        verdicts: dict[str, dict[str, str]] = {}
        for verdict in result.verdicts:
            verdicts.setdefault(verdict.judge, {})[verdict.order] = verdict.overall
        progress(f"pair {pair.a}/{pair.b}: judged")
        return pair.model_copy(update={"pairwise_id": result.pairwise_id, "verdicts": verdicts})

    graded = await asyncio.gather(*(grade(item, purpose) for item, purpose in jobs))
    judged = await asyncio.gather(*(judge_pair(p) for p in pairs))
    validity = Validity(
        labelled_hash=labelled_hash,
        seed=seed,
        sizes=sizes,
        scale_min=rubric.scale.min,
        scale_max=rubric.scale.max,
        thresholds={k: float(v) for k, v in vars(THRESHOLDS).items()},
        graded=list(graded),
        pairs=list(judged),
    )
    validity.judges = figures(validity, criteria)
    validity.notes = _notes(validity)
    return validity


def _notes(validity: Validity) -> list[str]:
    notes = []
    failed = sum(1 for g in validity.graded if g.error)
    if failed:
        notes.append(f"{failed} of {len(validity.graded)} labelled gradings failed: the figures are over the others")
    failed_pairs = sum(1 for p in validity.pairs if p.error)
    if failed_pairs:
        notes.append(f"{failed_pairs} of {len(validity.pairs)} pairwise judgments failed: the order figures leave them out")
    if len(validity.pairs) < validity.sizes.pairs:
        notes.append(f"{len(validity.pairs)} pairs with a known better transcript (asked for {validity.sizes.pairs})")
    return notes
