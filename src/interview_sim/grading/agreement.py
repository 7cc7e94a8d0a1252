"""Agreement statistics for the judge-validity figures (`grading.validity`): quadratic weighted kappa, Spearman and
Pearson correlations, and their weighted forms, vectorised over bootstrap resamples (a row of weights is one
resample's multiplicity of each entry)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["pearson", "qwk", "spearman", "weighted_mean", "weighted_pearson", "weighted_qwk", "weighted_spearman"]


def qwk(truth: Sequence[int], scores: Sequence[int], lo: int, hi: int) -> float | None:
    """Quadratic weighted kappa on the scale lo..hi; None when undefined (no spread to agree on)."""
    import numpy as np

    a, b = np.asarray(truth, dtype=int) - lo, np.asarray(scores, dtype=int) - lo
    k = hi - lo + 1
    if a.size == 0 or k < 2:
        return None
    observed = np.zeros((k, k))
    np.add.at(observed, (a, b), 1.0)
    points = np.arange(k)
    weights = np.subtract.outer(points, points) ** 2 / (k - 1) ** 2
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    denominator = float((weights * expected).sum())
    if denominator == 0.0:
        return None
    return 1.0 - float((weights * observed).sum()) / denominator


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's r of the ranks (average ranks for ties), as scipy.stats.spearmanr computes it."""
    import numpy as np
    from scipy.stats import rankdata

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    import numpy as np

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def weighted_qwk(truth: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """QWK for each row of weights over the entries (a bootstrap resample's multiplicities), from moments:
    1 - mean (t - s)^2 / (E[t^2] + E[s^2] - 2 E[t] E[s]), which is the confusion-matrix formula of `qwk` (the
    tests check they agree); NaN where undefined."""
    import numpy as np

    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mt, ms = weights @ truth / total, weights @ scores / total
        expected = weights @ truth**2 / total + weights @ scores**2 / total - 2 * mt * ms
        observed = weights @ (truth - scores) ** 2 / total
        result = 1.0 - observed / expected
    return np.where(np.isclose(expected, 0.0) | (total == 0), np.nan, result)


def _weighted_ranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each entry's mid-rank in the sample each row of weights makes (rankdata's "average" ranks of the
    expanded sample)."""
    import numpy as np

    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    cumulative = np.cumsum(weights[:, order], axis=1)
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)] - 1
    before = np.where(starts > 0, cumulative[:, np.maximum(starts - 1, 0)], 0.0)
    group_rank = before + (cumulative[:, ends] - before + 1) / 2
    group_of = np.repeat(np.arange(len(starts)), ends - starts + 1)
    ranks = np.empty_like(cumulative)
    ranks[:, order] = group_rank[:, group_of]
    return ranks


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    import numpy as np

    total = weights.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = x - (weights * x).sum(axis=1, keepdims=True) / total
        dy = y - (weights * y).sum(axis=1, keepdims=True) / total
        cov = (weights * dx * dy).sum(axis=1)
        vx, vy = (weights * dx * dx).sum(axis=1), (weights * dy * dy).sum(axis=1)
        r = cov / np.sqrt(vx * vy)
    return np.where(np.isclose(vx, 0.0) | np.isclose(vy, 0.0), np.nan, r)


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return weighted_pearson(_weighted_ranks(x, weights), _weighted_ranks(y, weights), weights)


def weighted_mean(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    import numpy as np

    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0, np.nan, weights @ x / total)
