"""The statistics the report and the claims share: one cell's values over seeds, one tie threshold,
one spread test. The report's winner sentences and the claims' verdicts both ask :func:`compare`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TIE = 5e-4
"""Differences below this are no difference (0.05 points of a metric in [0, 1], invisible at the
report's one decimal)."""


@dataclass
class Stat:
    """The per-seed values of one schedule's cell: mean, sample standard deviation (0 for one value), count."""

    values: list[float]

    @classmethod
    def of(cls, values) -> Stat | None:
        """The finite values of ``values`` (``None`` and NaN left out); ``None`` when none is left."""
        kept = [float(v) for v in values if v is not None and math.isfinite(v)]
        return cls(kept) if kept else None

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def n(self) -> int:
        return len(self.values)

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        """``mean ± std`` (the mean alone for one seed), times ``scale``."""
        m = f"{scale * self.mean:.{digits}f}"
        return f"{m} ± {scale * self.std:.{digits}f}" if self.n > 1 else m


@dataclass
class Comparison:
    """``a`` against ``b``: the signed difference (positive: ``a`` is better), the seed spread (the larger
    std; ``None`` when a side has one seed), and whether the difference is a tie or beyond the spread."""

    diff: float
    spread: float | None

    @property
    def tie(self) -> bool:
        return abs(self.diff) < TIE

    def beyond_spread(self, min_gap: float = TIE) -> bool:
        """Larger than the seed spread and than ``min_gap`` (one seed on a side: than ``min_gap``)."""
        return abs(self.diff) > max(self.spread or 0.0, min_gap)


def compare(a: Stat, b: Stat, higher: bool) -> Comparison:
    """The one spread test: is ``a`` better than ``b`` (``higher`` is better, or lower) beyond the seed spread?"""
    single = a.n < 2 or b.n < 2
    return Comparison((a.mean - b.mean) * (1 if higher else -1), None if single else max(a.std, b.std))
