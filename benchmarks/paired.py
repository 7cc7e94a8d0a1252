"""Shared by the benchmarks: paired, interleaved measurement and how its figures are printed.

Every figure is a ratio of B to A measured in alternation (A B A B ...), so load drift on a shared machine
hits both sides alike; the raw numbers behind each ratio are printed with their min and median.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def interleave(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Run a, b, a, b ... `repeats` times each; returns both lists of measurements."""
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(repeats):
        xs.append(a())
        ys.append(b())
    return xs, ys


def raw(label: str, values: list[float], unit: str, scale: float = 1.0) -> str:
    shown = " ".join(f"{v * scale:.4g}" for v in values)
    return f"    {label}: {shown} {unit} (min {min(values) * scale:.4g}, median {statistics.median(values) * scale:.4g})"


def ratio_line(name: str, a: list[float], b: list[float], target: str) -> str:
    """B/A as median/median and min/min, and per pair."""
    med = statistics.median(b) / statistics.median(a)
    low = min(b) / min(a)
    pairs = " ".join(f"{y / x:.3f}" for x, y in zip(a, b, strict=True))
    return f"  {name}: {med:.3f} (median/median; min/min {low:.3f}; per pair {pairs})  target {target}"


def report(
    title: str, a_label: str, a: list[float], b_label: str, b: list[float], unit: str, target: str, scale: float = 1.0
) -> str:
    """A block: the ratio B/A, then the raw numbers of each side."""
    return "\n".join([ratio_line(title, a, b, target), raw(a_label, a, unit, scale), raw(b_label, b, unit, scale)])
