"""The timing peers in benchmarks/ do the work they claim: step counts, learning gate, target copies."""

import jax
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
