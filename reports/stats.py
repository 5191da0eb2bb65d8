"""Confidence intervals for the figures an SLO is judged on, so a verdict says pass or fail only
when the data can tell, and "inconclusive" (with the interval) when it cannot.

A quantile gets a distribution-free order-statistic interval: the true q-quantile lies between
the l-th and u-th smallest of n samples with a probability given by the binomial(n, q) law,
whatever the distribution (an end is unbounded when n is too small to bound it). A ratio of two
quantiles (an increase, an overhead) and a ratio of sums (CPU per request, over per-second
samples) use a seeded percentile bootstrap: each sample resampled with replacement, the ratio's
own 2.5th and 97.5th percentiles taken; a ratio of quantiles is left open on a side where the
order-statistic interval of either quantile is (the bootstrap cannot bound a tail the samples
do not reach). Seeded, so the same run files give the same verdicts.

One percentile definition is used everywhere (`percentile`: linear interpolation, numpy's
default); the intervals bracket it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
Interval = tuple[float, float]


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), None for no values; NaN ignored."""
    array = _clean(values)
    return float(np.percentile(array, q)) if array.size else None


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return np.sort(array[~np.isnan(array)])


def _binomial_cdf(n: int, p: float) -> np.ndarray:
    """P(X <= k) for k = 0..n, X ~ Binomial(n, p), summed in log space (no overflow at large n)."""
    k = np.arange(n + 1)
    log_pmf = (
        np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    pmf = np.exp(log_pmf - log_pmf.max())
    return np.minimum(np.cumsum(pmf / pmf.sum()), 1.0)


def quantile_interval(
    values: Sequence[float] | np.ndarray, q: float, confidence: float = CONFIDENCE
) -> Interval | None:
    """An interval that holds the true q-th percentile (0-100) with at least `confidence`; an
    end is infinite when the samples are too few to bound that side. None for no samples."""
    array = _clean(values)
    n = array.size
    if n == 0:
        return None
    p = min(max(q / 100.0, 1e-9), 1 - 1e-9)
    alpha = 1.0 - confidence
    cdf = _binomial_cdf(n, p)
    # Lower: the largest order statistic l with P(X < l) <= alpha/2, X the count of samples
    # below the true quantile; upper: the smallest u with P(X >= u) <= alpha/2 (1-based).
    below = np.concatenate(([0.0], cdf[:-1]))  # P(X <= l - 1) for l = 1..n+1
    lows = np.nonzero(below[1:] <= alpha / 2)[0]
    low = float(array[lows[-1]]) if lows.size else -math.inf
    ups = np.nonzero(1.0 - cdf[:-1] <= alpha / 2)[0]
    high = float(array[ups[0]]) if ups.size else math.inf
    return low, high


def ratio_interval(
    numerator: Sequence[float] | np.ndarray,
    denominator: Sequence[float] | np.ndarray,
    q: float,
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 11,
) -> Interval | None:
    """An interval for percentile(numerator) / percentile(denominator) - 1, by a seeded
    bootstrap: both samples resampled independently, the ratio's own percentiles taken.

    The bootstrap cannot see past a sample's largest values: with 240 samples a p99 is the
    third largest, and every resample's p99 lies among the top few, so it claims a tight
    interval the data cannot support (a p99 overhead of +29 %, "95 % interval +7 % to +68 %",
    came from one slow second of a shared machine). Where the order-statistic interval of
    either percentile is unbounded above, so is the ratio on the side it drives: a numerator
    that cannot be bounded leaves the top open, a denominator the bottom."""
    top, bottom = _clean(numerator), _clean(denominator)
    if top.size < 2 or bottom.size < 2:
        return None
    rng = np.random.default_rng(seed)
    ratios = _boot_quantiles(top, q, resamples, rng) / _boot_quantiles(bottom, q, resamples, rng) - 1
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return None
    alpha = 1.0 - confidence
    low, high = float(np.quantile(ratios, alpha / 2)), float(np.quantile(ratios, 1 - alpha / 2))
    if _unbounded_above(top, q, confidence):
        high = math.inf
    if _unbounded_above(bottom, q, confidence):
        low = -math.inf
    return low, high


def _unbounded_above(sample: np.ndarray, q: float, confidence: float) -> bool:
    interval = quantile_interval(sample, q, confidence)
    return interval is None or math.isinf(interval[1])


def _boot_quantiles(sample: np.ndarray, q: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The q-th percentile of `resamples` bootstrap resamples, in blocks so memory stays small."""
    found = []
    block = max(1, 2_000_000 // sample.size)
    for start in range(0, resamples, block):
        picks = rng.integers(0, sample.size, size=(min(block, resamples - start), sample.size))
        found.append(np.percentile(sample[picks], q, axis=1))
    return np.concatenate(found)


DRIFT_FREE_SECONDS = 20.0
"""Seconds of baseline per variant from which an overhead's interval is taken as it is, when
the variants ran one after the other (a run normally runs them together; not on an attached
stack, the docker backend or remote workers): a neighbour on a shared host then slows every
sample of one window and none of the other, and no interval over one window's samples can see it. Measured
here: six 5-second smoke windows in one run put the resilient gateway at -15 % to +41 % of its
control's CPU per request (the paired, interleaved gateway bench says +4 %), the +41 % with a
"95 % interval" of +29 % to +74 %; with another job beside it, a 4-second baseline read a p50
overhead of +27 %, "interval" +16 % to +37 %."""
DRIFT = 0.5
"""How far (x1.5 either way) one short window may drift from the next, by those readings:
shorter baselines get their interval widened by it, so an obvious overhead (+100 %) still fails
and a drift-sized one is inconclusive."""


def allow_for_drift(interval: Interval, seconds: float) -> Interval:
    """`interval` of a ratio - 1 between two windows `seconds` long, widened by `DRIFT` when
    they are too short to average a neighbour's drift out."""
    if seconds >= DRIFT_FREE_SECONDS:
        return interval
    low, high = interval
    return (1 + low) / (1 + DRIFT) - 1, (1 + high) * (1 + DRIFT) - 1


def ratio_of_sums_interval(
    ours: Sequence[tuple[float, float]],
    theirs: Sequence[tuple[float, float]],
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 7,
) -> Interval | None:
    """An interval for (sum a / sum b of ours) / (sum a / sum b of theirs) - 1, by a seeded
    bootstrap over the (a, b) samples of each (e.g. CPU seconds and requests per second)."""
    mine, other = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    if len(mine) < 2 or len(other) < 2 or mine[:, 1].sum() <= 0 or other[:, 1].sum() <= 0:
        return None
    rng = np.random.default_rng(seed)

    def rates(sample: np.ndarray) -> np.ndarray:
        picks = rng.integers(0, len(sample), size=(resamples, len(sample)))
        a, b = sample[picks, 0].sum(axis=1), sample[picks, 1].sum(axis=1)
        return np.divide(a, b, out=np.full(resamples, np.nan), where=b > 0)

    ratio = rates(mine) / rates(other) - 1
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size == 0:
        return None
    alpha = 1.0 - confidence
    return float(np.quantile(ratio, alpha / 2)), float(np.quantile(ratio, 1 - alpha / 2))
