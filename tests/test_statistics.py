"""Cross-checks of mtrl.statistics against rliable (Agarwal et al., 2021), and the stratification of
the bootstrap. rliable is a test-only dependency (`pip install -e .[dev]`); the module is skipped without it.

Monte-Carlo tolerance of the intervals: a percentile-bootstrap endpoint from B resamples has a standard error of
sqrt(p(1 - p) / B) / density ≈ 1% of the 95% interval's width at B = 5000 (measured: 0.9–1.1% over 200 seeds on
these data; 1.4–1.6% at B = 2000). Two independent 5000-resample endpoints therefore differ by ~1.4% of the width
(one SD): ``REL_TOL = 6%`` of rliable's width is ~4 SDs. `aggregate` uses its default 2000 resamples (difference
SD ~1.9%), so it gets ``REL_TOL_AGGREGATE = 8%`` (~4 SDs). Both are far below what an unstratified (pooled)
bootstrap or a wrong interval level would shift: on these data pooling roughly doubles the width.
"""

import numpy as np
import pytest

pytest.importorskip("rliable")
from rliable import library, metrics  # noqa: E402

from mtrl.statistics import (  # noqa: E402
    aggregate,
    iqm,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)

NUM_RUNS, NUM_TASKS = 10, 3
REPS = 5000
REL_TOL = 0.06
REL_TOL_AGGREGATE = 0.08


@pytest.fixture
def global_numpy_seed():
    """rliable's bootstraps draw from numpy's global RNG (`np.random.choice`): seed it, and restore it after."""
    state = np.random.get_state()
    np.random.seed(0)
    yield
    np.random.set_state(state)


def _scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two algorithms' normalised scores ``[S=10, T=3]``: tasks at different levels (so stratification matters),
    skewed noise (so the IQM differs from the mean), and y slightly worse than x on average."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.2, 0.5, 0.9])
    x = levels + 0.15 * rng.standard_normal((NUM_RUNS, NUM_TASKS)) + rng.exponential(0.1, (NUM_RUNS, NUM_TASKS))
    y = x - 0.1 + 0.15 * rng.standard_normal((NUM_RUNS, NUM_TASKS))
    return x, y


def _assert_interval_close(ours, theirs, rel_tol: float):
    theirs = np.ravel(theirs)
    tol = rel_tol * (theirs[1] - theirs[0])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol, err_msg=f"mtrl {ours} vs rliable {theirs}")


# --- rliable cross-checks ------------------------------------------------------------------------------------


def test_iqm_and_mean_point_estimates_equal_rliable():
    """The aggregate IQM (25% trimmed mean over all S*T values) and mean equal rliable's `aggregate_iqm` /
    `aggregate_mean` to 1e-9; per-task `iqm(x, axis=0)` equals rliable's IQM of each task's column."""
    for seed in range(3):
        x, _ = _scores(seed)
        agg = aggregate(x)
        assert agg["iqm"] == pytest.approx(metrics.aggregate_iqm(x), abs=1e-9)
        assert float(iqm(x.ravel())) == pytest.approx(metrics.aggregate_iqm(x), abs=1e-9)
        assert agg["mean"] == pytest.approx(metrics.aggregate_mean(x), abs=1e-9)
        np.testing.assert_allclose(iqm(x, axis=0), [metrics.aggregate_iqm(x[:, t]) for t in range(NUM_TASKS)],
                                   rtol=0, atol=1e-9)


def test_stratified_intervals_of_iqm_and_mean_match_rliable(global_numpy_seed):
    """The stratified-bootstrap 95% percentile intervals of the IQM and the mean agree with rliable's
    `get_interval_estimates` (runs resampled within each task, 5000 reps on both sides) within `REL_TOL` of the
    interval width, and `aggregate` (its default 2000 resamples) within `REL_TOL_AGGREGATE`."""
    x, _ = _scores()
    points, intervals = library.get_interval_estimates(
        {"x": x}, lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_mean(s)]),
        method="percentile", reps=REPS)
    theirs_iqm, theirs_mean = intervals["x"][:, 0], intervals["x"][:, 1]

    ours_iqm = stratified_bootstrap_ci(x, lambda s: iqm(s, axis=1), resamples=REPS, seed=1)
    ours_mean = stratified_bootstrap_ci(x, lambda s: s.mean(axis=1), resamples=REPS, seed=1)
    _assert_interval_close(ours_iqm, theirs_iqm, REL_TOL)
    _assert_interval_close(ours_mean, theirs_mean, REL_TOL)

    agg = aggregate(x)
    assert agg["iqm"] == pytest.approx(points["x"][0], abs=1e-9)
    assert agg["mean"] == pytest.approx(points["x"][1], abs=1e-9)
    _assert_interval_close(agg["iqm_ci"], theirs_iqm, REL_TOL_AGGREGATE)
    _assert_interval_close(agg["mean_ci"], theirs_mean, REL_TOL_AGGREGATE)


def test_probability_of_improvement_equals_rliable():
    """P(X > Y) (Mann–Whitney U / (S_x S_y) per task, ties ½, averaged over tasks) equals rliable's
    `probability_of_improvement` to 1e-9: on continuous scores, on bootstrap-like resamples full of ties, on
    coarse scores with ties across algorithms, on identical algorithms (½), and with unequal run counts."""
    x, y = _scores()
    rng = np.random.default_rng(1)
    cases = [(x, y), (y, x), (x, x), (np.round(x, 1), np.round(y, 1)), (x[:4], y), (x, y[:7])]
    for _ in range(20):  # resamples as the bootstrap draws them: repeated runs, so ties within each algorithm
        ix, iy = rng.integers(0, NUM_RUNS, (2, NUM_RUNS, NUM_TASKS))
        cases.append((np.take_along_axis(x, ix, 0), np.take_along_axis(np.round(y, 1), iy, 0)))
    for a, b in cases:
        assert probability_of_improvement(a, b) == pytest.approx(metrics.probability_of_improvement(a, b), abs=1e-9)
    assert probability_of_improvement(x, x) == pytest.approx(0.5, abs=1e-12)


def test_probability_of_improvement_interval_matches_rliable(global_numpy_seed):
    """The interval of P(X > Y), runs of X and of Y resampled independently within each task, agrees with
    rliable's `StratifiedIndependentBootstrap` (a list of score matrices in `get_interval_estimates`) within
    `REL_TOL` of the width at 5000 reps. rliable's bootstrap evaluates mtrl's `probability_of_improvement`
    (shown equal to rliable's on resamples with ties above): scipy's `mannwhitneyu` costs ~7 s for 5000 reps."""
    x, y = _scores()
    points, intervals = library.get_interval_estimates(
        {"x>y": [x, y]}, probability_of_improvement, method="percentile", reps=REPS)
    assert points["x>y"] == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-9)
    ours = probability_of_improvement_ci(x, y, resamples=REPS, seed=1)
    _assert_interval_close(ours, intervals["x>y"], REL_TOL)


@pytest.mark.parametrize("runs_x, runs_y", [(10, 5), (5, 10)])
def test_probability_of_improvement_interval_with_unequal_runs_matches_rliable(global_numpy_seed, runs_x, runs_y):
    """With different run counts for X and Y (allowed by the point estimate and by rliable), each algorithm's
    runs are resampled from its own runs, so the interval agrees with rliable's within `REL_TOL`. Y's runs 5..9
    score 1 more than its runs 0..4, so an interval that draws only Y's first S_x = 5 runs is far off."""
    x, y = _scores()
    y = np.concatenate([y[:5], y[:5] + 1.0])
    x, y = x[:runs_x], y[:runs_y]
    _, intervals = library.get_interval_estimates(
        {"x>y": [x, y]}, probability_of_improvement, method="percentile", reps=REPS)
    ours = probability_of_improvement_ci(x, y, resamples=REPS, seed=1)
    _assert_interval_close(ours, intervals["x>y"], REL_TOL)


# --- stratification --------------------------------------------------------------------------------------------

# Task t's values lie in [LOW[t], LOW[t] + 1): any value's range names its task.
LOW = np.array([0.0, 100.0, 1000.0])


def _disjoint_tasks() -> np.ndarray:
    return LOW + np.random.default_rng(0).random((NUM_RUNS, NUM_TASKS))


def _check_stratified(bootstrap_ci) -> None:
    """Assert that ``bootstrap_ci(x [S, T], statistic, resamples=..., seed=...)`` resamples runs within tasks."""
    x = _disjoint_tasks()
    seen = []

    def record(samples):  # [R, S*T], flattened from [R, S, T] in C order: column j is run j // T of task j % T
        seen.append(samples.copy())
        return samples.mean(axis=1)

    mean_low, mean_high = bootstrap_ci(x, record, resamples=500, seed=0)
    samples = np.concatenate(seen)
    assert samples.shape == (500, NUM_RUNS * NUM_TASKS)
    # Every resample holds exactly S values of each task (independent of the column layout) ...
    task_of_value = np.searchsorted(LOW, samples, side="right") - 1
    counts = np.stack([(task_of_value == t).sum(axis=1) for t in range(NUM_TASKS)], axis=1)
    assert np.all(counts == NUM_RUNS), f"values per task in a resample: {np.unique(counts)}, want {NUM_RUNS}"
    # ... each column stays in its task ...
    by_task = samples.reshape(-1, NUM_RUNS, NUM_TASKS)
    assert np.all((by_task >= LOW) & (by_task < LOW + 1))
    # ... and draws only that task's values.
    for t in range(NUM_TASKS):
        assert set(np.unique(by_task[:, :, t])) <= set(x[:, t])
    # The mean of a stratified resample is mean(LOW) + (a mean of [0, 1) offsets): its interval is that narrow,
    # whereas pooling all S*T values (task means 0.5 .. 1000.5) spreads it over about ±160.
    assert LOW.mean() <= mean_low <= mean_high < LOW.mean() + 1
    # A per-task statistic: the share of task 2's values is exactly 1/T in every stratified resample.
    share_low, share_high = bootstrap_ci(x, lambda s: (s >= LOW[2]).mean(axis=1), resamples=500, seed=0)
    assert share_low == share_high == pytest.approx(1 / NUM_TASKS)


def _pooled_bootstrap_ci(x, statistic, confidence=0.95, resamples=2000, seed=0):
    """The wrong bootstrap: all S*T values resampled jointly, ignoring tasks."""
    flat = np.asarray(x, np.float64).ravel()
    idx = np.random.default_rng(seed).integers(0, flat.size, size=(resamples, flat.size))
    values = statistic(flat[idx])
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def test_stratified_bootstrap_resamples_runs_within_each_task():
    """`stratified_bootstrap_ci` resamples runs within each task only: on tasks with disjoint value ranges every
    resample holds exactly S values of each task, each column only its own task's values, the mean's interval
    stays within 1 of mean(LOW), and the share of one task's values is exactly 1/T."""
    _check_stratified(stratified_bootstrap_ci)


def test_stratification_check_rejects_a_pooled_bootstrap():
    """The check above has teeth: a bootstrap that pools all S*T values fails it (the per-task counts vary)."""
    with pytest.raises(AssertionError, match="values per task in a resample"):
        _check_stratified(_pooled_bootstrap_ci)
    x = _disjoint_tasks()
    low, high = _pooled_bootstrap_ci(x, lambda s: (s >= LOW[2]).mean(axis=1))
    assert high - low > 0.2  # pooled: Binomial(S*T, 1/T) / (S*T), not the constant 1/T
