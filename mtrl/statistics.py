"""Statistics across seeds and tasks: interquartile means, bootstrap intervals, probability of improvement, and
medians of censored times to a threshold.

Plain numpy and scipy (a jax dependency anyway), so reading results needs no accelerator stack:
`scipy.stats.trim_mean` for the interquartile mean and `scipy.stats.bootstrap` (percentile) for 95% intervals
across seeds. The stratified bootstrap over (seeds × tasks) and the probability of improvement follow rliable
(Agarwal et al., 2021) but are written here: rliable pulls in pandas/arch/seaborn for ~40 lines of numpy, and its
API expects dicts of score matrices that the transfer tables would have to be reshaped into anyway.

Axes: ``S`` runs (seeds/settings), ``T`` tasks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import stats


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: mean of the middle 50% (25% trimmed from each end)."""
    return stats.trim_mean(np.asarray(x, np.float64), 0.25, axis=axis)


def bootstrap_ci(
    x: np.ndarray, statistic: Callable = np.mean, axis: int = 0, confidence: float = 0.95, seed: int = 0,
    resamples: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``statistic`` over ``axis`` (seeds). With one sample it is the point."""
    x = np.asarray(x, np.float64)
    if x.shape[axis] < 2 or np.all(x == np.take(x, [0], axis=axis)):
        point = statistic(x, axis=axis)
        return point, point
    result = stats.bootstrap(
        (x,), statistic, axis=axis, confidence_level=confidence, n_resamples=resamples,
        method="percentile", rng=np.random.default_rng(seed), vectorized=True,
    )
    return result.confidence_interval.low, result.confidence_interval.high


def iqm_ci(per_seed: np.ndarray) -> tuple[float, float]:
    """Bootstrap 95% interval of the IQM of one value per seed ``[S]`` (the interval to print next to an IQM;
    with fewer than 4 seeds the IQM is the mean, and so is its interval)."""
    low, high = bootstrap_ci(np.asarray(per_seed, np.float64), iqm)
    return float(low), float(high)


def iqm_interval(summary: Mapping[str, Any]) -> tuple[float, float]:
    """The IQM's 95% interval of a `summarize` result: its stored ``iqm_ci_low``/``iqm_ci_high``, or computed from
    ``per_seed`` for summaries written before they were stored."""
    if "iqm_ci_low" in summary:
        return summary["iqm_ci_low"], summary["iqm_ci_high"]
    return iqm_ci(summary["per_seed"])


def summarize(per_seed: np.ndarray) -> dict[str, object]:
    """Mean with its bootstrap 95% CI (``ci_low``, ``ci_high``) and IQM with its own (``iqm_ci_low``,
    ``iqm_ci_high``) of one value per seed ``[S]``."""
    per_seed = np.asarray(per_seed, np.float64)
    low, high = bootstrap_ci(per_seed)
    iqm_low, iqm_high = iqm_ci(per_seed)
    return {
        "mean": float(per_seed.mean()),
        "iqm": float(iqm(per_seed)),
        "ci_low": float(low),
        "ci_high": float(high),
        "iqm_ci_low": iqm_low,
        "iqm_ci_high": iqm_high,
        "per_seed": [float(v) for v in per_seed],
    }


def _stratified_indices(shape: tuple[int, int], resamples: int, seed: int) -> np.ndarray:
    """``[R, S, T]`` seed indices drawn with replacement within each task column of an ``[S, T]`` array."""
    num_seeds, num_tasks = shape
    return np.random.default_rng(seed).integers(0, num_seeds, size=(resamples, num_seeds, num_tasks))


def stratified_bootstrap_ci(x: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], confidence: float = 0.95,
                            resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over the pooled values of ``x [S, T]``, resampling seeds with
    replacement within each task (stratified by task). ``statistic`` maps ``[R, S*T] -> [R]``; NaNs are dropped
    by the statistics below."""
    x = np.asarray(x, np.float64)
    idx = _stratified_indices(x.shape, resamples, seed)
    samples = np.take_along_axis(x[None], idx, axis=1).reshape(resamples, -1)
    values = statistic(samples)
    alpha = (1 - confidence) / 2
    return float(np.nanquantile(values, alpha)), float(np.nanquantile(values, 1 - alpha))


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    """IQM of each row of ``x [R, K]`` over its non-NaN values (NaN for a row with none). Rows with the same
    number of values share one `iqm` call (a stable sort on "is NaN" moves NaNs to the end and keeps the values'
    order, so each row's result is bit-identical to its own call): a bootstrap's 2000 rows in a few calls."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    x = np.take_along_axis(x, np.argsort(np.isnan(x), axis=-1, kind="stable"), axis=-1)
    counts = (~np.isnan(x)).sum(-1)
    out = np.full(x.shape[0], np.nan)
    for count in np.unique(counts[counts > 0]):
        rows = counts == count
        out[rows] = iqm(x[rows, :count], axis=1)
    return out


def _mean_rows(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # rows that are all NaN (e.g. an undefined transfer ratio) give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.atleast_2d(x), axis=-1)


def aggregate(x: np.ndarray, seed: int = 0) -> dict[str, float]:
    """IQM and mean over all (seed, task) values of ``x [S, T]`` with stratified-bootstrap 95% intervals."""
    x = np.asarray(x, np.float64)
    iqm_low, iqm_high = stratified_bootstrap_ci(x, _iqm_rows, seed=seed)
    mean_low, mean_high = stratified_bootstrap_ci(x, _mean_rows, seed=seed)
    return {"iqm": float(_iqm_rows(x.reshape(1, -1))[0]), "iqm_ci": [iqm_low, iqm_high],
            "mean": float(_mean_rows(x.reshape(1, -1))[0]), "mean_ci": [mean_low, mean_high]}


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for ``x, y [S, T]`` (higher is better): per task the fraction of run pairs (i, j) with
    x_i > y_j, ties counting ½ (the Mann–Whitney U statistic / S²), averaged over tasks."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    greater = (x[:, None, :] > y[None, :, :]).mean((0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean((0, 1))
    return float(np.mean(greater + 0.5 * ties))


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, confidence: float = 0.95, resamples: int = 1000,
                                  seed: int = 0) -> tuple[float, float]:
    """Stratified bootstrap interval of `probability_of_improvement` (seeds resampled within each task)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):  # each algorithm's runs resampled within each task, independently
        ix = rng.integers(0, x.shape[0], size=x.shape)
        iy = rng.integers(0, y.shape[0], size=y.shape)
        values.append(probability_of_improvement(np.take_along_axis(x, ix, 0), np.take_along_axis(y, iy, 0)))
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def kaplan_meier_median(times: np.ndarray, censored: np.ndarray) -> float:
    """Median of right-censored times by the Kaplan–Meier estimator; ``inf`` ("not reached") when the estimated
    fraction not yet reached never drops to ½ or below.

    ``times`` are event times where ``censored`` is False, censoring times where it is True (``inf`` means
    censored at the end of the budget). Events at a time count before censorings at the same time.
    """
    times = np.asarray(times, np.float64).ravel()
    censored = np.asarray(censored, bool).ravel()
    survival = 1.0
    for t in np.unique(times[~censored]):
        events = int(np.sum((times == t) & ~censored))
        at_risk = int(np.sum(times >= t))
        survival *= 1.0 - events / at_risk
        if survival <= 0.5:
            return float(t)
    return float("inf")


def threshold_summary(times: np.ndarray, censored: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> dict[str, object]:
    """Time to threshold over ``[S, T]`` runs, censoring respected: how many reached it, the Kaplan–Meier median
    (None = not reached: fewer than half are estimated to reach it) and a stratified-bootstrap percentile
    interval of that median (an end of None = not reached in that share of resamples)."""
    times = np.where(np.asarray(censored, bool), np.inf, np.asarray(times, np.float64))
    censored = np.asarray(censored, bool)
    idx = _stratified_indices(times.shape, resamples, seed)
    t = np.take_along_axis(times[None], idx, axis=1)
    c = np.take_along_axis(censored[None], idx, axis=1)
    medians = np.array([kaplan_meier_median(t[r], c[r]) for r in range(resamples)])
    alpha = (1 - confidence) / 2
    low, high = (float(np.quantile(medians, q, method="inverted_cdf")) for q in (alpha, 1 - alpha))
    finite = lambda v: v if np.isfinite(v) else None  # noqa: E731
    return {"reached": int((~censored).sum()), "runs": int(censored.size),
            "fraction_reached": float((~censored).mean()),
            "median": finite(kaplan_meier_median(times, censored)), "median_ci": [finite(low), finite(high)]}
