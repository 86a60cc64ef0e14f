import jax
import numpy as np
import pytest

from mtrl.agent import Agent, default_hparams
from mtrl.config import DQNConfig
from mtrl.evaluate import make_evaluator
from mtrl.statistics import _iqm_rows, bootstrap_ci, iqm, iqm_ci, summarize
from mtrl.tasks import make_taskset


def test_iqm_is_mean_of_middle_half():
    assert iqm([1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)
    assert iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_row_iqms_of_a_bootstrap_equal_each_rows_own_iqm_bit_for_bit():
    """The bootstrap's rows are computed together (grouped by how many values a row has); each equals `iqm` of
    that row's non-NaN values exactly, and a row of NaNs gives NaN."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 15))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[7] = np.nan
    each = [iqm(row[~np.isnan(row)]) if not np.isnan(row).all() else np.nan for row in x]
    np.testing.assert_array_equal(_iqm_rows(x), each)
    np.testing.assert_array_equal(_iqm_rows(x[:1]), each[:1])


def test_bootstrap_interval_contains_mean_and_degenerates():
    x = np.array([1.0, 2.0, 3.0, 10.0])
    low, high = bootstrap_ci(x)
    assert low <= x.mean() <= high and low >= 1.0 and high <= 10.0
    assert bootstrap_ci(np.array([5.0])) == (5.0, 5.0)
    assert bootstrap_ci(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0)


def test_summarize_keys():
    s = summarize(np.array([10.0, 20.0, 30.0, 40.0]))
    assert s["mean"] == 25.0 and s["iqm"] == 25.0 and s["per_seed"] == [10.0, 20.0, 30.0, 40.0]


def test_the_interval_printed_next_to_an_iqm_is_the_iqms_own():
    # one outlier seed drags the mean and its interval far above the IQM; the IQM's own interval is the IQM's
    # bootstrap distribution: it holds the IQM and its upper end stays well below the mean's
    per_seed = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 500.0])
    s = summarize(per_seed)
    assert s["iqm"] == 13.5 and s["mean"] == 73.875
    assert s["iqm_ci_low"] <= s["iqm"] <= s["iqm_ci_high"] < 0.75 * s["ci_high"]
    assert (s["iqm_ci_low"], s["iqm_ci_high"]) == iqm_ci(per_seed)
    np.testing.assert_allclose(iqm_ci(per_seed), [float(v) for v in bootstrap_ci(per_seed, iqm)])
    assert iqm_ci(np.array([1.0, 2.0, 3.0])) == bootstrap_ci(np.array([1.0, 2.0, 3.0]))  # 3 seeds: IQM = mean


def test_greedy_evaluation_plays_whole_episodes():
    # probe: one step, reward 1 -> every greedy episode returns exactly 1; truncated probe: max_steps rewards
    ts = make_taskset(["Probe-OneStep", "Probe-Truncated:max_steps_in_episode=7"])
    cfg = DQNConfig(torso=(8,))
    agent = Agent.create(ts, cfg)
    params = jax.vmap(lambda k: agent.init(k, default_hparams(ts, cfg)).params)(
        jax.random.split(jax.random.key(0), 2))
    returns = make_evaluator(agent, ts, num_episodes=3)(params, jax.random.split(jax.random.key(1), 2))
    assert returns.shape == (2, 2, 3)
    np.testing.assert_array_equal(returns[:, 0], 1.0)
    np.testing.assert_array_equal(returns[:, 1], 7.0)


def test_transfer_metrics_on_hand_computed_curves():
    from mtrl.scores import transfer_metrics

    steps = np.array([0, 10, 20, 30])
    transfer = np.array([[[0.5, 1.0, 1.0, 1.0]], [[0.2, 0.4, 0.6, 0.8]]])  # [S=2, T=1, E=4]
    scratch = np.array([[[0.0, 0.5, 1.0, 1.0]], [[0.0, 0.0, 0.0, 0.0]]])
    m = transfer_metrics(steps, transfer, scratch, last_k=2, threshold=0.95, source_steps=100)
    np.testing.assert_allclose(m["jumpstart"], [[0.5], [0.2]])
    np.testing.assert_allclose(m["final_gain"], [[0.0], [0.7]])
    # trapezoid / 30: seed 0 transfer (0.75 + 1 + 1) * 10 / 30, scratch (0.25 + 0.75 + 1) * 10 / 30
    np.testing.assert_allclose(m["auc"], [[2.75 / 3], [1.5 / 3]])
    np.testing.assert_allclose(m["auc_scratch"], [[2.0 / 3], [0.0]])
    assert "transfer_ratio" not in m  # a ratio of summed areas, not a per-seed quantity
    np.testing.assert_array_equal(m["time_to_threshold"], [[10], [np.inf]])  # seed 1 never reaches: censored
    np.testing.assert_array_equal(m["censored"], [[False], [True]])
    np.testing.assert_array_equal(m["time_to_threshold_scratch"], [[20], [np.inf]])
    np.testing.assert_array_equal(m["censored_scratch"], [[False], [True]])
    np.testing.assert_array_equal(m["time_to_threshold_with_source"], [[110], [np.inf]])


def test_transfer_ratio_is_a_ratio_of_summed_areas_with_a_paired_interval():
    from mtrl.scores import transfer_ratio, transfer_ratio_ci

    auc = np.array([[0.9], [0.5], [0.2]])
    scratch = np.array([[0.6], [0.0], [-0.1]])
    # (1.6 - 0.5) / 0.5; an IQM of per-seed ratios would drop seeds 1 and 2 (scratch area <= 0)
    assert transfer_ratio(auc, scratch) == pytest.approx(2.2)
    assert np.isnan(transfer_ratio(auc, -scratch - 0.1))  # scratch area <= 0: undefined
    low, high = transfer_ratio_ci(auc, scratch, resamples=500)
    assert low <= 2.2 <= high
    # Paired: when transfer = 2 x scratch seed by seed, every resample gives exactly 1.
    scratch = np.array([[0.1], [0.4], [0.3], [0.7]])
    assert transfer_ratio_ci(2 * scratch, scratch, resamples=200) == pytest.approx((1.0, 1.0))
    assert all(np.isnan(transfer_ratio_ci(auc, np.zeros_like(auc), resamples=50)))


def test_kaplan_meier_median_respects_censoring():
    from mtrl.statistics import kaplan_meier_median, threshold_summary

    inf = np.inf
    # three of five reach it: the median is the third event, whatever the censored runs' budget
    assert kaplan_meier_median([10, 20, inf, inf, 30], [False, False, True, True, False]) == 30
    assert kaplan_meier_median([10, inf, inf], [False, True, True]) == inf  # fewer than half: not reached
    assert kaplan_meier_median([10, 20], [False, True]) == 10  # half reached by 10: the median is 10
    # a run censored early (at 15) leaves the risk set: S = 3/4 after 10, then 3/4 * 1/2 after 20
    assert kaplan_meier_median([10, 15, 20, 40], [False, True, False, False]) == 20
    s = threshold_summary(np.array([[10.0, inf], [20.0, inf], [30.0, 40.0]]),
                          np.array([[False, True], [False, True], [False, False]]), resamples=200)
    assert (s["reached"], s["runs"]) == (4, 6) and s["fraction_reached"] == pytest.approx(4 / 6)
    assert s["median"] == 30.0  # censored runs are never averaged in as "reached at the budget"
    assert s["median_ci"][0] >= 10.0
    none = threshold_summary(np.full((4, 1), inf), np.ones((4, 1), bool), resamples=50)
    assert none["median"] is None and none["median_ci"] == [None, None] and none["reached"] == 0


def test_normalise_and_time_to_threshold_censoring():
    from mtrl.scores import normalise, time_to_threshold

    np.testing.assert_allclose(normalise(np.array([22.0, 500.0, 261.0]), 22.0, 500.0), [0.0, 1.0, 0.5])
    values, censored = time_to_threshold(np.array([0, 5, 9]), np.array([[0.1, 0.2, 0.3], [0.0, 1.0, 0.0]]), 0.9)
    np.testing.assert_array_equal(values, [np.inf, 5])
    np.testing.assert_array_equal(censored, [True, False])


def test_reference_return_is_for_the_task_as_configured():
    from mtrl.scores import reference_return

    assert reference_return("CartPole-v1:length=2.5") == 500.0
    assert reference_return("CartPole-v1:max_steps_in_episode=200") == 200.0  # the variant's maximum return
    assert reference_return("MountainCar-v0:gamma=0.98,eps_end=0.2") == -110.0  # learner fields change no env
    with pytest.raises(ValueError, match="Acrobot-v1:max_steps_in_episode=1000.*changes max_steps_in_episode"):
        reference_return("Acrobot-v1:max_steps_in_episode=1000")
    assert reference_return("Acrobot-v1:max_steps_in_episode=1000", {"Acrobot-v1:max_steps_in_episode=1000": -90}) \
        == -90.0
    # a reference names the task however it is written; another task's reference does not count
    written_otherwise = {"Acrobot-v1:link_length_1=1.0,max_steps_in_episode=1000": -95}
    assert reference_return("Acrobot-v1:max_steps_in_episode=1000", written_otherwise) == -95.0
    assert reference_return("CartPole-v1:length=2.5", {"CartPole-v1:length=1.5": 100}) == 500.0
    with pytest.raises(ValueError, match="no reference return for 'Catch-bsuite'"):
        reference_return("Catch-bsuite")


def test_probability_of_improvement_and_stratified_intervals():
    from mtrl.statistics import aggregate, probability_of_improvement, probability_of_improvement_ci

    x = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])  # [S=3, T=2]
    y = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    # task 0: 6 of 9 pairs x > y; task 1: all ties (1/2)
    assert probability_of_improvement(x, y) == pytest.approx((6 / 9 + 0.5) / 2)
    low, high = probability_of_improvement_ci(x, y, resamples=200)
    assert 0.0 <= low <= probability_of_improvement(x, y) <= high <= 1.0
    agg = aggregate(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]))
    assert agg["mean"] == pytest.approx(13.75)
    assert agg["iqm"] == pytest.approx(np.mean([3.0, 4.0, 10.0, 20.0]))
    assert agg["mean_ci"][0] <= agg["mean"] <= agg["mean_ci"][1]
    constant = aggregate(np.ones((4, 2)))
    assert constant["iqm_ci"] == [1.0, 1.0]


def test_random_returns_of_cartpole_match_a_uniform_policy():
    from mtrl.evaluate import random_returns
    from mtrl.tasks import make_taskset

    returns = random_returns(make_taskset(["CartPole-v1", "CartPole-v1:length=2.5"]), num_episodes=500)
    assert 18 < returns[0] < 27  # uniform random CartPole lasts ~22 steps
    assert returns[1] > returns[0]  # a longer pole falls more slowly


@pytest.mark.parametrize("impl", [None, "philox2x32"])  # random_returns' keys, and a run's evaluation keys
def test_an_evaluation_steps_policy_key_is_none_of_its_env_keys_and_the_env_keys_are_a_two_way_splits(impl):
    """The random policy's key is shared with no env's step key (`TaskSet.step` splits the step key into one per
    task and env), and the loop and env keys equal a two-way split's: greedy evaluations are those of a loop that
    drew no policy keys."""
    from mtrl.evaluate import step_keys

    key = jax.random.key(3, impl=impl)
    loop, step, policy = step_keys(key)
    data = jax.random.key_data
    np.testing.assert_array_equal(np.stack([data(loop), data(step)]), data(jax.random.split(key)))
    env_keys = data(jax.random.split(step, (3, 1000))).reshape(-1, 2)
    for other in (data(policy), data(loop), data(step)):
        assert not np.any(np.all(env_keys == other, axis=-1))
    assert not np.array_equal(data(policy), data(loop)) and not np.array_equal(data(policy), data(step))
