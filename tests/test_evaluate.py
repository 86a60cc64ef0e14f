import jax
import numpy as np
import pytest

from mtrl.agent import Agent, default_hparams
from mtrl.config import DQNConfig
from mtrl.evaluate import bootstrap_ci, iqm, make_evaluator, summarize
from mtrl.tasks import make_taskset


def test_iqm_is_mean_of_middle_half():
    assert iqm([1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)
    assert iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_bootstrap_interval_contains_mean_and_degenerates():
    x = np.array([1.0, 2.0, 3.0, 10.0])
    low, high = bootstrap_ci(x)
    assert low <= x.mean() <= high and low >= 1.0 and high <= 10.0
    assert bootstrap_ci(np.array([5.0])) == (5.0, 5.0)
    assert bootstrap_ci(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0)


def test_summarize_keys():
    s = summarize(np.array([10.0, 20.0, 30.0, 40.0]))
    assert s["mean"] == 25.0 and s["iqm"] == 25.0 and s["per_seed"] == [10.0, 20.0, 30.0, 40.0]


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
