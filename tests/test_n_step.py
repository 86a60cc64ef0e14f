"""n-step returns: windows formed from the replay's one-step transitions, checked against hand-computed targets
(an episode that terminates inside the window, one truncated inside it, the write head, a wrapped buffer), the
γ^m bootstrap in the loss. Learning the probes' known Q-values with n-step returns: tests/test_probes.py."""

import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import losses, replay
from mtrl.config import DQNConfig

N, C, GAMMA = 2, 12, 0.5  # envs per task, capacity, discount


def _buffer(iterations: int) -> replay.ReplayState:
    """One task, 2 envs, one scalar observation = 10 * iteration + env (next_obs = that + 100).
    env 0: rewards 1, 2, 4, 8, 16, 32, 64; terminated at iteration 2. env 1: rewards 1 each; truncated at 1."""
    state = replay.init(1, C, (1,), jnp.float32, store_truncated=True)
    for i in range(iterations):
        obs = jnp.array([[[10.0 * i], [10.0 * i + 1]]])
        state = replay.add(state, replay.Transition(
            obs=obs, action=jnp.zeros((1, N), jnp.int32), reward=jnp.array([[2.0 ** i, 1.0]]),
            next_obs=obs + 100, terminated=jnp.array([[i == 2, False]]), truncated=jnp.array([[False, i == 1]])))
    return state


def _window(state, slots, n=3):
    out = replay.n_step_transitions(state, jnp.array([slots]), n, N, jnp.array([GAMMA]))
    return (np.asarray(out.reward[0]), np.asarray(out.steps[0]), np.asarray(out.terminated[0]),
            np.asarray(out.next_obs[0, :, 0]), np.asarray(out.obs[0, :, 0]))


def test_windows_stop_at_episode_ends_and_at_the_write_head():
    state = _buffer(5)  # slots 0..9 written; env 0 at even slots, env 1 at odd ones
    reward, steps, terminated, next_obs, obs = _window(state, [0, 2, 4, 6, 8, 1, 5])
    np.testing.assert_allclose(reward, [1 + 0.5 * 2 + 0.25 * 4,  # terminates at its third step
                                        2 + 0.5 * 4,  # terminates at its second step
                                        4,  # the terminal step itself
                                        8 + 0.5 * 16,  # the write head after two steps
                                        16,  # the newest transition: one step
                                        1 + 0.5 * 1,  # truncated at its second step
                                        1 + 0.5 + 0.25])  # a new episode of env 1: three steps
    np.testing.assert_array_equal(steps, [3, 2, 1, 2, 1, 2, 3])
    np.testing.assert_array_equal(terminated, [True, True, True, False, False, False, False])
    np.testing.assert_array_equal(next_obs, [120, 120, 120, 140, 140, 111, 141])  # the window's last next_obs
    np.testing.assert_array_equal(obs, [0, 10, 20, 30, 40, 1, 21])


def test_windows_follow_an_env_across_the_end_of_a_wrapped_buffer():
    state = _buffer(7)  # iterations 5 and 6 went to slots 10-11 and 0-1 (overwriting iteration 0)
    reward, steps, terminated, next_obs, _ = _window(state, [8, 10, 0])
    np.testing.assert_allclose(reward, [16 + 0.5 * 32 + 0.25 * 64, 32 + 0.5 * 64, 64])
    np.testing.assert_array_equal(steps, [3, 2, 1])
    np.testing.assert_array_equal(next_obs, [160, 160, 160])
    assert not terminated.any()


def test_one_step_windows_equal_the_stored_transitions():
    state = _buffer(5)
    out = replay.n_step_transitions(state, jnp.arange(10)[None], 1, N, jnp.array([GAMMA]))
    np.testing.assert_array_equal(out.reward, state.data.reward[:, :10])
    np.testing.assert_array_equal(out.next_obs, state.data.next_obs[:, :10])
    np.testing.assert_array_equal(out.steps, np.ones((1, 10)))


def test_the_bootstrap_is_discounted_by_gamma_to_the_windows_length():
    q_tm1 = jnp.array([[1.0, 2.0], [0.0, 3.0]])
    q_t = jnp.array([[4.0, 8.0], [4.0, 8.0]])
    args = (q_tm1, jnp.array([1, 0]), jnp.array([1.75, 2.0]), jnp.array([False, True]), jnp.float32(0.5), q_t, q_t,
            jnp.array([True, True]))
    _, td = losses.task_td_loss(*args, steps=jnp.array([3, 2]))
    np.testing.assert_allclose(td, [1.75 + 0.5 ** 3 * 8 - 2.0, 2.0 - 0.0])  # terminated: no bootstrap
    _, td_one = losses.task_td_loss(*args)
    np.testing.assert_allclose(td_one, [1.75 + 0.5 * 8 - 2.0, 2.0])


def test_n_step_needs_a_buffer_that_is_a_multiple_of_the_envs():
    with pytest.raises(ValueError, match=r"buffer_size must be a multiple of num_envs \(10\) when n_step > 1"):
        DQNConfig(n_step=3, buffer_size=10_005).validate()
    with pytest.raises(ValueError, match="n_step must be a positive integer, got 0"):
        DQNConfig(n_step=0).validate()
