"""The timing peers in benchmarks/ do the work they claim: step counts, learning gate, target copies."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import minimal_dqn, purejaxrl_dqn


def test_purejaxrl_peer_steps_learns_and_copies_the_target_on_its_schedule():
    init, chunk = purejaxrl_dqn.make(num_envs=4, buffer_size=64, batch_size=8, learning_starts=40,
                                     training_interval=4, target_update_interval=80)
    runner = init(0)
    runner, metrics = chunk(runner, 50)
    assert int(runner.train.timesteps) == 200
    # learns once per iteration (interval 4 = 4 envs) once timesteps > 40, i.e. from the 11th iteration on
    assert int(runner.train.n_updates) == 40
    np.testing.assert_array_equal(np.asarray(metrics["timesteps"]), 4 * np.arange(1, 51))
    assert metrics["loss"].shape == (50,) and float(np.abs(metrics["loss"][:10]).max()) == 0.0
    # the last target copy was at timesteps 160, 10 updates ago: target != params
    leaves = jax.tree.leaves(jax.tree.map(lambda p, t: float(np.abs(p - t).max()), runner.train.params,
                                          runner.train.target_params))
    assert max(leaves) > 0.0
    runner, _ = chunk(runner, 10)  # timesteps 240: a copy on the last iteration
    same = jax.tree.map(lambda p, t: bool(np.array_equal(p, t)), runner.train.params, runner.train.target_params)
    assert all(jax.tree.leaves(same))


def test_purejaxrl_peer_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown settings \\['lr_decay'\\]; allowed: .*'batch_size'"):
        purejaxrl_dqn.make(lr_decay=True)


def test_minimal_peer_counts_updates_after_learning_starts():
    init, chunk = minimal_dqn.make(num_envs=4, capacity=64, batch=8, learning_starts=40, target_period=5)
    state = chunk(init(0), 50)
    assert int(state.iteration) == 50 and int(state.size) == 64
    assert int(state.updates) == 41  # iterations 10..50: (i + 1) * 4 >= 40


# --- time to solve: censored medians, the peer's greedy evaluation, censoring at the budget --------------------


def test_censored_median_counts_unsolved_runs_as_never_solving():
    from benchmarks.time_to_solve import censored_median

    assert censored_median([30, 10, 20], [True, True, True]) == 20.0  # all solved, odd: the ordinary median
    assert censored_median([10, 20, 30, 40], [True] * 4) == 20.0  # Kaplan-Meier: half have solved by 20
    # Kaplan–Meier with censoring at the budget: sorted 10, 20, 30, ∞, ∞ -> 30
    assert censored_median([10, 20, 500, 500, 30], [True, True, False, False, True]) == 30.0
    # a censored run's recorded value (here less than a solve's) never counts as a solve: 10, 20, ∞ -> 20
    assert censored_median([10, 5, 20], [True, False, True]) == 20.0
    assert censored_median([10, 20, 30, 500], [True, True, True, False]) == 20.0
    assert censored_median([10, 500, 500], [True, False, False]) is None  # fewer than half solved
    assert censored_median([10, 20, 500, 500], [True, True, False, False]) == 20.0  # exactly half: reached at 20
    assert censored_median([], []) is None
    with pytest.raises(ValueError, match="one length"):
        censored_median([1, 2], [True])


def test_summarize_solves_reports_fraction_and_censored_medians():
    from benchmarks.time_to_solve import summarize_solves

    runs = [{"solved": True, "wall_s": 4.0, "env_steps": 70_000},
            {"solved": False, "wall_s": 3.0, "env_steps": 300_000},
            {"solved": True, "wall_s": 6.0, "env_steps": 90_000}]
    assert summarize_solves(runs) == {"runs": 3, "solved": 2, "solved_fraction": 2 / 3, "median_wall_s": 6.0,
                                      "median_env_steps": 90_000.0}
    assert summarize_solves(runs[1:2])["median_wall_s"] is None


def _qnet_params(kernels: dict, biases: dict) -> dict:
    """`QNet(2)` params, zero except the given ``{layer: {(i, j): value}}`` kernel and ``{layer: {i: value}}``
    bias entries."""
    params = minimal_dqn.QNet(2).init(jax.random.PRNGKey(0), np.zeros(4, np.float32))
    params = jax.tree.map(np.zeros_like, params)
    for layer, entries in kernels.items():
        for index, value in entries.items():
            params["params"][layer]["kernel"][index] = value
    for layer, entries in biases.items():
        for index, value in entries.items():
            params["params"][layer]["bias"][index] = value
    return params


def _controller(w) -> dict:
    """A linear controller, push right iff w·obs > 0, as a QNet: Q(right) = relu(w·obs), Q(left) = relu(-w·obs)."""
    return _qnet_params(
        {"Dense_0": {**{(i, 0): v for i, v in enumerate(w)}, **{(i, 1): -v for i, v in enumerate(w)}},
         "Dense_1": {(0, 0): 1.0, (1, 1): 1.0}, "Dense_2": {(0, 1): 1.0, (1, 0): 1.0}}, {})


def _reference_returns(params, key, num_episodes: int) -> np.ndarray:
    """Greedy CartPole-v1 returns written independently of the evaluator's loop: each episode from the reset the
    evaluator documents, a fixed 500-step scan, a step's reward counted while no earlier step ended the episode."""
    env, env_params = gymnax.make("CartPole-v1")
    network = minimal_dqn.QNet(2)

    def episode(k_reset):
        obs, state = env.reset(k_reset, env_params)

        def step(carry, _):
            obs, state, alive = carry
            action = jnp.argmax(network.apply(params, obs))
            obs, state, reward, terminated, truncated, _ = env.step(jax.random.PRNGKey(0), state, action, env_params)
            return (obs, state, alive & ~(terminated | truncated)), jnp.where(alive, reward, 0.0)

        return jax.lax.scan(step, (obs, state, jnp.bool_(True)), None, length=500)[1].sum()

    k_reset = jax.random.split(key)[0]
    return np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(k_reset, num_episodes)))


def test_purejaxrl_evaluator_plays_greedy_episodes_to_their_end():
    evaluate = purejaxrl_dqn.make_evaluator(10)
    key = jax.random.PRNGKey(3)
    # A controller whose 10 episodes end at different times (180 to 500 steps with this key): every return is
    # exactly the reference's, so no episode is cut short by another's end or paid for steps after its own.
    uneven = _controller((0.0, 0.0, 1.0, 2.0))
    returns = np.asarray(evaluate(uneven, key))
    assert returns.shape == (10,)
    expected = _reference_returns(uneven, key, 10)
    assert len(set(expected.tolist())) > 3 and expected.min() < 250 and expected.max() == 500
    np.testing.assert_array_equal(returns, expected)
    # Push right iff 0.1 x + 0.5 x' + θ + θ' > 0 balances every episode until truncation: exactly 500 each.
    np.testing.assert_array_equal(np.asarray(evaluate(_controller((0.1, 0.5, 1.0, 1.0)), key)), np.full(10, 500.0))
    # Always pushing right topples the pole within a few steps.
    right = _qnet_params({}, {"Dense_2": {1: 1.0}})
    right_returns = np.asarray(evaluate(right, key))
    assert np.all((right_returns >= 8) & (right_returns <= 12))
    np.testing.assert_array_equal(right_returns, _reference_returns(right, key, 10))
    # Freshly initialised params: 10 greedy episodes, deterministic given the key, within CartPole's range.
    fresh = purejaxrl_dqn.make(num_envs=2)[0](0).train.params
    first, again = np.asarray(evaluate(fresh, key)), np.asarray(evaluate(fresh, key))
    assert first.shape == (10,) and np.all((first >= 8) & (first <= 500))
    np.testing.assert_array_equal(first, again)
    assert np.asarray(purejaxrl_dqn.make_evaluator(3)(fresh, key)).shape == (3,)


def test_purejaxrl_solve_is_censored_when_the_budget_runs_out():
    from benchmarks.time_to_solve import purejaxrl_solve

    # Two chunks of 100 env steps (25 iterations x 4 envs), far too few to reach 475: censored at the budget.
    out = purejaxrl_solve(0, budget=200, eval_every=100, num_envs=4, buffer_size=64, batch_size=8,
                          learning_starts=40)
    assert out["solved"] is False
    assert out["env_steps"] == out["budget_env_steps"] == 200
    assert [steps for steps, _ in out["curve"]] == [100, 200] and out["return"] == out["curve"][-1][1] < 475
    assert out["eval_episodes"] == 10 and out["target"] == 475.0 and out["wall_s"] >= out["ready_s"] > 0
    with pytest.raises(ValueError, match="multiple of num_envs"):
        purejaxrl_solve(0, budget=200, eval_every=90, num_envs=4)
