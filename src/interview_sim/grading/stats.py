"""Leaderboard statistics, from numpy and scipy rather than hand-written formulas."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
DIGITS = 4


@dataclass(frozen=True)
class MeanCI:
    """A sample's mean with a Student-t confidence interval; None where the sample is too small for it."""

    n: int
    mean: float | None
    stdev: float | None
    ci_low: float | None
    ci_high: float | None


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), DIGITS)


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> MeanCI:
    """Mean, sample standard deviation and t-interval of `values`.

    With one value there is no interval (None, not a zero-width one); with identical values the interval
    is the single point, which is what the t-interval gives as its width goes to zero.
    """
    import numpy as np
    from scipy import stats

    sample = np.asarray(values, dtype=float)
    n = int(sample.size)
    if n == 0:
        return MeanCI(0, None, None, None, None)
    mean = float(np.mean(sample))
    if n == 1:
        return MeanCI(1, _round(mean), None, None, None)
    stdev = float(np.std(sample, ddof=1))
    sem = float(stats.sem(sample))
    if sem == 0.0:
        low = high = mean  # scipy returns NaN for a zero scale
    else:
        low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    return MeanCI(n, _round(mean), _round(stdev), _round(float(low)), _round(float(high)))


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
