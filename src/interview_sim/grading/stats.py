"""Leaderboard statistics, from numpy and scipy rather than hand-written formulas.

Intervals respect their domain: a mean score's interval is a percentile bootstrap of the mean (it cannot leave the
range of the scores, so never the scale), a share's is a Wilson score interval (never outside 0-100 %), and a
sample too small for either says so (`MeanCI.note`) instead of printing one. Models share a rank unless a paired
test over the seeds they share (Wilcoxon signed-rank) finds their difference significant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

CONFIDENCE = 0.95
DIGITS = 4
MIN_SCORES_FOR_INTERVAL = 5
"""Fewer graded scores than this: no interval for a mean score (a bootstrap of 2-4 values says nothing)."""
MIN_SHARES_FOR_INTERVAL = 2
"""Fewer runs than this: no interval for a share."""
BOOTSTRAP_RESAMPLES = 4000
SIGNIFICANCE = 0.05
"""A paired difference with p below this separates two models' ranks."""


@dataclass(frozen=True)
class MeanCI:
    """A sample's mean with an interval; None where the sample is too small for one (note says so)."""

    n: int
    mean: float | None
    stdev: float | None
    ci_low: float | None
    ci_high: float | None
    note: str | None = None


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), DIGITS)


def too_few(n: int, needed: int) -> str:
    return f"too few runs for an interval ({n} graded; {needed} needed)"


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> MeanCI:
    """Mean, sample standard deviation and a percentile-bootstrap interval of the mean of `values`.

    The bootstrap's means are means of the values themselves, so the interval stays within their range (and a
    score's within its scale). With fewer than MIN_SCORES_FOR_INTERVAL values there is no interval (None, and a
    note saying why); with identical values the interval is that single point. Deterministic (a fixed seed).
    """
    import numpy as np
    from scipy import stats

    sample = np.asarray(values, dtype=float)
    n = int(sample.size)
    if n == 0:
        return MeanCI(0, None, None, None, None, "no graded runs")
    mean = float(np.mean(sample))
    stdev = float(np.std(sample, ddof=1)) if n > 1 else None
    if n < MIN_SCORES_FOR_INTERVAL:
        return MeanCI(n, _round(mean), _round(stdev), None, None, too_few(n, MIN_SCORES_FOR_INTERVAL))
    if float(np.ptp(sample)) == 0.0:
        return MeanCI(n, _round(mean), _round(stdev), _round(mean), _round(mean))
    result = stats.bootstrap(
        (sample,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return MeanCI(n, _round(mean), _round(stdev), _round(low), _round(high))


def share_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> MeanCI:
    """The mean of per-run shares (each in [0, 1]) with a Wilson score interval over the n runs: the mean share
    is taken as n * mean successes in n trials. Never outside [0, 1]; no interval below MIN_SHARES_FOR_INTERVAL runs."""
    from statistics import NormalDist

    sample = [float(v) for v in values]
    n = len(sample)
    if n == 0:
        return MeanCI(0, None, None, None, None, "no runs")
    p = min(1.0, max(0.0, sum(sample) / n))
    stdev = float(_stdev(sample)) if n > 1 else None
    if n < MIN_SHARES_FOR_INTERVAL:
        return MeanCI(n, _round(p), stdev, None, None, too_few(n, MIN_SHARES_FOR_INTERVAL))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return MeanCI(n, _round(p), _round(stdev), _round(max(0.0, centre - half)), _round(min(1.0, centre + half)))


def _stdev(sample: list[float]) -> float:
    import numpy as np

    return float(np.std(np.asarray(sample), ddof=1))


def paired_p_value(a: Mapping[Any, float], b: Mapping[Any, float]) -> tuple[float, int]:
    """Two-sided p of the Wilcoxon signed-rank test on the paired differences over the keys (seeds) both have,
    and how many pairs that is; p = 1 when there is nothing to test (no pairs, or every difference zero)."""
    from scipy.stats import wilcoxon

    shared = [k for k in a if k in b]
    diffs = [a[k] - b[k] for k in shared]
    if not any(d != 0 for d in diffs):
        return 1.0, len(shared)
    return float(wilcoxon(diffs).pvalue), len(shared)


def unpaired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of the Mann-Whitney U test between two independent samples of scores (runs not paired by seed,
    e.g. a corpus); p = 1 when there is nothing to test (a sample empty, or every score the same)."""
    from scipy.stats import mannwhitneyu

    if not a or not b or len({*a, *b}) == 1:
        return 1.0
    return float(mannwhitneyu(list(a), list(b), alternative="two-sided").pvalue)


def shared_ranks(ordered: Sequence[Mapping[Any, float]], alpha: float = SIGNIFICANCE) -> list[int]:
    """Competition ranks (1, 1, 3 ...) for models already sorted best first, each given as {seed key: score}: a
    model shares the rank of the first model of the current tier unless the paired test separates them."""
    return shared_ranks_by(ordered, lambda a, b: paired_p_value(a, b)[0], alpha)


def shared_ranks_by(ordered: Sequence[T], p_value: Callable[[T, T], float], alpha: float = SIGNIFICANCE) -> list[int]:
    """`shared_ranks` with the test given: `p_value(tier leader, model)`."""
    ranks: list[int] = []
    leader = 0
    for i, scores in enumerate(ordered):
        if i == 0:
            ranks.append(1)
            continue
        if p_value(ordered[leader], scores) < alpha:
            leader = i
            ranks.append(i + 1)
        else:
            ranks.append(ranks[leader])
    return ranks


def key_means(rows: Iterable[Mapping[str, float]], keys: Sequence[str]) -> dict[str, float | None]:
    """Per key, the mean of the rows that have it (e.g. per-criterion means over cells)."""
    import numpy as np

    rows = list(rows)
    means: dict[str, float | None] = {}
    for key in keys:
        present = [row[key] for row in rows if key in row and row[key] is not None]
        means[key] = _round(float(np.mean(present))) if present else None
    return means


@dataclass(frozen=True)
class WinRecord:
    wins: int
    losses: int
    ties: int

    @property
    def games(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float | None:
        """Wins plus half the ties, over the games played."""
        if self.games == 0:
            return None
        return _round((self.wins + 0.5 * self.ties) / self.games)


def win_records(games: Iterable[tuple[str, str, str]], models: Sequence[str]) -> dict[str, WinRecord]:
    """Per model, its wins, losses and ties from `(model_a, model_b, outcome)` games; outcome "a", "b" or "tie"."""
    import numpy as np

    index = {m: i for i, m in enumerate(models)}
    # tally[i] = (wins, losses, ties) of model i
    tally = np.zeros((len(models), 3), dtype=int)
    for a, b, outcome in games:
        ia, ib = index[a], index[b]
        if outcome == "tie":
            tally[[ia, ib], 2] += 1
        else:
            winner, loser = (ia, ib) if outcome == "a" else (ib, ia)
            tally[winner, 0] += 1
            tally[loser, 1] += 1
    return {m: WinRecord(int(tally[i, 0]), int(tally[i, 1]), int(tally[i, 2])) for m, i in index.items()}
