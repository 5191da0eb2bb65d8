"""Confidence intervals for the figures an SLO is judged on, so a verdict says pass or fail only
when the data can tell, and "inconclusive" (with the interval) when it cannot.

A quantile gets a distribution-free order-statistic interval: the true q-quantile lies between
the l-th and u-th smallest of n samples with a probability given by the binomial(n, q) law,
whatever the distribution (an end is unbounded when n is too small to bound it). A ratio of two
quantiles (an increase, an overhead) and a ratio of sums (CPU per request, over per-second
samples) use a seeded percentile bootstrap, the ratio's own 2.5th and 97.5th percentiles taken.
Latency samples carry the second they were taken in (`Timed`) and are resampled by whole
seconds (a moving-block bootstrap with one-second blocks), because answers of one second share
its conditions; two variants run side by side are resampled over the same seconds (`paired_*`).
A ratio of quantiles is left open on a side where the order-statistic interval of either
quantile is (the bootstrap cannot bound a tail the samples do not reach). Seeded, so the same
run files give the same verdicts.

One percentile definition is used everywhere (`percentile`: linear interpolation, numpy's
default); the intervals bracket it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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


def answers_to_bound(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest samples whose order-statistic interval of the q-th percentile (0-100) has
    both ends finite: the tail beyond the quantile must be reached with probability
    1 - alpha/2 (368 for a p99, 72 for a p95, 6 for a p50, at 95 %)."""
    p = min(max(q / 100.0, 1e-9), 1 - 1e-9)
    tail = max(p, 1 - p)  # the side the samples reach last
    return math.ceil(math.log((1.0 - confidence) / 2) / math.log(tail))


def ratio_interval(
    numerator: Sequence[float] | np.ndarray | Timed,
    denominator: Sequence[float] | np.ndarray | Timed,
    q: float,
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 11,
) -> Interval | None:
    """An interval for percentile(numerator) / percentile(denominator) - 1, by a seeded
    bootstrap: both samples resampled independently (by whole seconds when `Timed`), the
    ratio's own percentiles taken.

    The bootstrap cannot see past a sample's largest values: with 240 samples a p99 is the
    third largest, and every resample's p99 lies among the top few, so it claims a tight
    interval the data cannot support (a p99 overhead of +29 %, "95 % interval +7 % to +68 %",
    came from one slow second of a shared machine). Where the order-statistic interval of
    either percentile is unbounded above, so is the ratio on the side it drives: a numerator
    that cannot be bounded leaves the top open, a denominator the bottom."""
    top, bottom = _timed(numerator), _timed(denominator)

    def draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        return _draw(rng, top.blocks, size), _draw(rng, bottom.blocks, size)

    single = top.blocks.size < 2 or bottom.blocks.size < 2  # one second resamples to itself
    return _ratio_bootstrap(top, bottom, q, draw, single, confidence, resamples, seed)


def paired_ratio_interval(
    numerator: Timed,
    denominator: Timed,
    q: float,
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 11,
) -> Interval | None:
    """As `ratio_interval`, for two samples taken over the same seconds (two variants run side
    by side): each resample draws one set of seconds and takes both samples' answers from them,
    so a slow second of the host weighs on both alike and cancels in the ratio, as it did in
    the run."""
    top, bottom = _timed(numerator), _timed(denominator)
    seconds = np.union1d(top.blocks, bottom.blocks)

    def draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        weights = _draw(rng, seconds, size)
        return weights[:, np.searchsorted(seconds, top.blocks)], weights[
            :, np.searchsorted(seconds, bottom.blocks)
        ]

    return _ratio_bootstrap(top, bottom, q, draw, seconds.size < 2, confidence, resamples, seed)


def _ratio_bootstrap(
    top: _Blocked,
    bottom: _Blocked,
    q: float,
    draw: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]],
    single: bool,
    confidence: float,
    resamples: int,
    seed: int,
) -> Interval | None:
    """The interval of percentile(top) / percentile(bottom) - 1 over seeded resamples, `draw`
    giving each pass's block weights of both (None under two samples; open when `single`,
    one second that can only resample to itself)."""
    if top.values.size < 2 or bottom.values.size < 2:
        return None
    if single:
        return -math.inf, math.inf
    interval = _central(_ratios(top, bottom, q, draw, resamples, seed), confidence)
    if interval is not None and min(top.blocks.size, bottom.blocks.size) < MIN_SECONDS < top.values.size:
        # Too few seconds for their spread to be the whole noise: take the answers' own too.
        one, other = _answers(top), _answers(bottom)

        def each(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
            return _draw(rng, one.blocks, size), _draw(rng, other.blocks, size)

        answers = _central(_ratios(one, other, q, each, resamples, seed), confidence)
        if answers is not None:
            interval = min(interval[0], answers[0]), max(interval[1], answers[1])
    return _open_where_unbounded(interval, top, bottom, q, confidence)


MIN_SECONDS = 5
"""Seconds below which a bootstrap by whole seconds is not trusted alone. Over k seconds it has
few distinct resamples (3 for two seconds side by side: its "95 % interval" is just the two
seconds' own ratios), and it keeps each second's answers as they were, so with few seconds the
noise among those answers goes unseen: stream-cut's 1.5 s baseline in `make test` read a p50
overhead of +9.1 %, "interval +5.3 % to +11.2 %", a fail, where 20 s of the same streams read
+0.1 % (CI, 2026-12-02). Below it, the interval also spans the one that resamples answers one
by one; the same rule leaves CPU intervals open (`MIN_CPU_SECONDS` in sli.py)."""


def _answers(sample: _Blocked) -> _Blocked:
    """The same answers, each its own block (resampled one by one)."""
    return _Blocked(sample.values, np.arange(sample.values.size), np.arange(sample.values.size))


def _ratios(
    top: _Blocked,
    bottom: _Blocked,
    q: float,
    draw: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]],
    resamples: int,
    seed: int,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ratios = []
    for size in _chunks(resamples, max(top.values.size, bottom.values.size)):
        top_weights, bottom_weights = draw(rng, size)
        ratios.append(
            _resampled_quantiles(top, top_weights, q) / _resampled_quantiles(bottom, bottom_weights, q) - 1
        )
    return np.concatenate(ratios)


@dataclass(frozen=True)
class Timed:
    """Samples with the whole second each was taken in. Answers of one second share its
    conditions (a neighbour's slow patch, a collector pause), so they are not independent: a
    bootstrap that resamples answers one by one read a one-second slow patch in a 5-second
    fault window as a p95 increase of +185 %, "interval +114 % to +228 %", a false fail (CI,
    2026-12-01). Resampled by whole seconds, that second is in some resamples and not in
    others, and the interval says how much the verdict hangs on it."""

    values: np.ndarray
    seconds: np.ndarray

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray, times: Sequence[float] | np.ndarray) -> Timed:
        return cls(np.asarray(values, dtype=float), np.floor(np.asarray(times, dtype=float)).astype(np.int64))


@dataclass(frozen=True)
class _Blocked:
    """Clean samples sorted by value, each with the index of its block among `blocks`."""

    values: np.ndarray
    block_of: np.ndarray
    blocks: np.ndarray


def _timed(sample: Sequence[float] | np.ndarray | Timed) -> _Blocked:
    if not isinstance(sample, Timed):  # untimed: every sample is its own block
        sample = Timed(np.asarray(sample, dtype=float), np.arange(len(sample)))
    keep = ~np.isnan(sample.values)
    order = np.argsort(sample.values[keep], kind="stable")
    values, seconds = sample.values[keep][order], sample.seconds[keep][order]
    blocks = np.unique(seconds)
    return _Blocked(values, np.searchsorted(blocks, seconds), blocks)


def _chunks(resamples: int, samples: int) -> list[int]:
    """Resample counts per pass, so a pass holds ~2 million weights whatever the sample size."""
    step = max(1, 2_000_000 // max(samples, 1))
    return [min(step, resamples - start) for start in range(0, resamples, step)]


def _draw(rng: np.random.Generator, blocks: np.ndarray, size: int) -> np.ndarray:
    """`size` bootstrap draws over `blocks`: how often each block is picked, shape (size, blocks)."""
    count = blocks.size
    picks = rng.integers(0, count, size=(size, count)) + np.arange(size)[:, None] * count
    return np.bincount(picks.ravel(), minlength=size * count).reshape(size, count)


def _resampled_quantiles(sample: _Blocked, weights: np.ndarray, q: float) -> np.ndarray:
    """The q-th percentile (`percentile`'s definition) of each resample, a resample being the
    samples repeated as often as their block was drawn (`weights`, one column per block),
    without building it: positions in the repeated, sorted sample come from cumulative counts."""
    cumulative = np.cumsum(weights[:, sample.block_of], axis=1)
    total = cumulative[:, -1]
    position = (total - 1) * q / 100.0
    below = np.floor(position)
    last = sample.values.size - 1
    first = np.minimum((cumulative <= below[:, None]).sum(axis=1), last)
    after = np.minimum((cumulative <= below[:, None] + 1).sum(axis=1), last)
    found = sample.values[first] + (position - below) * (sample.values[after] - sample.values[first])
    return np.where(total > 0, found, np.nan)


def _central(ratios: np.ndarray, confidence: float) -> Interval | None:
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return None
    alpha = 1.0 - confidence
    return float(np.quantile(ratios, alpha / 2)), float(np.quantile(ratios, 1 - alpha / 2))


def _open_where_unbounded(
    interval: Interval | None, top: _Blocked, bottom: _Blocked, q: float, confidence: float
) -> Interval | None:
    if interval is None:
        return None
    low, high = interval
    if _unbounded_above(top.values, q, confidence):
        high = math.inf
    if _unbounded_above(bottom.values, q, confidence):
        low = -math.inf
    return low, high


def _unbounded_above(sample: np.ndarray, q: float, confidence: float) -> bool:
    interval = quantile_interval(sample, q, confidence)
    return interval is None or math.isinf(interval[1])


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
    mine_picks = rng.integers(0, len(mine), size=(resamples, len(mine)))
    other_picks = rng.integers(0, len(other), size=(resamples, len(other)))
    return _central(_rates(mine, mine_picks) / _rates(other, other_picks) - 1, confidence)


def paired_ratio_of_sums_interval(
    ours: Mapping[int, tuple[float, float]],
    theirs: Mapping[int, tuple[float, float]],
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 7,
) -> Interval | None:
    """As `ratio_of_sums_interval`, for per-second (a, b) samples of two variants run side by
    side: each resample draws one set of seconds for both. A fault window's seconds cost the
    gateway more per request than the baseline's; drawn independently, one variant's resample
    holds more of them than the other's, and that, not the gateway, widened the interval."""
    seconds = sorted(set(ours) & set(theirs))
    mine = np.asarray([ours[second] for second in seconds], dtype=float).reshape(-1, 2)
    other = np.asarray([theirs[second] for second in seconds], dtype=float).reshape(-1, 2)
    if len(seconds) < 2 or mine[:, 1].sum() <= 0 or other[:, 1].sum() <= 0:
        return None
    picks = np.random.default_rng(seed).integers(0, len(seconds), size=(resamples, len(seconds)))
    return _central(_rates(mine, picks) / _rates(other, picks) - 1, confidence)


def _rates(sample: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """sum a / sum b of each resample (`picks`: one row of sample indices per resample)."""
    a, b = sample[picks, 0].sum(axis=1), sample[picks, 1].sum(axis=1)
    return np.divide(a, b, out=np.full(len(picks), np.nan), where=b > 0)
