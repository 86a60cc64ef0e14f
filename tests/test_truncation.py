"""Episode ends: the bootstrap target of a truncated transition must use the true final observation
(`info["final_observation"]`), not the first observation of the next episode that gymnax's auto-reset returns.

``Probe-Clock`` observes its own time step, so the two differ (the limit vs 0) and the checks below can tell them
apart. Replacing ``next_obs=final_obs`` by the post-reset ``obs`` in `Trainer._collect` makes
`test_replay_stores_the_true_final_observation_of_truncated_episodes` fail.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mtrl.config import DQNConfig
from mtrl.tasks import make_taskset
from mtrl.trainer import Trainer

LIMIT = 3


def _step_from_time(spec: str, time: int):
    """Step 2 envs of one task once from env states whose clock reads ``time``."""
    taskset = make_taskset([spec])
    _, states = taskset.reset(jax.random.key(0), 2)
    states = tuple(s.replace(time=jnp.full_like(s.time, time)) for s in states)
    obs, _, reward, terminated, truncated, final_obs = taskset.step(jax.random.key(1), states,
                                                                     jnp.zeros((1, 2), jnp.int32))
    return [np.asarray(x)[0] for x in (obs, reward, terminated, truncated, final_obs)]


def test_taskset_step_one_step_before_truncation():
    obs, reward, terminated, truncated, final_obs = _step_from_time(f"Probe-Clock:max_steps_in_episode={LIMIT}",
                                                                    LIMIT - 1)
    np.testing.assert_array_equal(truncated, [True, True])
    np.testing.assert_array_equal(terminated, [False, False])  # a time limit is not a terminal state
    np.testing.assert_array_equal(final_obs[:, 0], [LIMIT, LIMIT])  # the observation the episode ended in
    np.testing.assert_array_equal(obs[:, 0], [0, 0])  # auto-reset: the next episode's first observation
    np.testing.assert_array_equal(reward, [1.0, 1.0])


def test_taskset_step_one_step_before_termination():
    obs, reward, terminated, truncated, final_obs = _step_from_time("Probe-TwoStep", 1)
    np.testing.assert_array_equal(terminated, [True, True])
    np.testing.assert_array_equal(truncated, [False, False])
    np.testing.assert_array_equal(final_obs[:, 0], [2, 2])
    np.testing.assert_array_equal(obs[:, 0], [0, 0])
    np.testing.assert_array_equal(reward, [1.0, 1.0])


def test_taskset_step_mid_episode_changes_nothing_but_the_clock():
    obs, _, terminated, truncated, final_obs = _step_from_time(f"Probe-Clock:max_steps_in_episode={LIMIT}", 0)
    assert not truncated.any() and not terminated.any()
    np.testing.assert_array_equal(obs, final_obs)
    np.testing.assert_array_equal(obs[:, 0], [1, 1])


def test_replay_stores_the_true_final_observation_of_truncated_episodes():
    """Every stored transition goes from clock t to clock t + 1, including the truncated ones (t = LIMIT - 1),
    whose post-reset observation would read 0; and none of them is marked terminated (so they bootstrap)."""
    config = DQNConfig(total_steps=64, num_envs=2, buffer_size=16, batch_size=4, learning_starts=10_000,
                       torso=(8,), eval_every=16)
    trainer = Trainer.create([f"Probe-Clock:max_steps_in_episode={LIMIT}"], config)
    state, _ = trainer.make_train_chunk(8)(trainer.init([0]))
    buffer = jax.tree.map(lambda x: np.asarray(x)[0, 0], state.runs.replay.data)  # run 0, task 0: [C, ...]
    obs, next_obs = buffer.obs[:, 0], buffer.next_obs[:, 0]
    assert int(state.runs.replay.size[0]) == 16
    assert (obs == LIMIT - 1).sum() >= 4  # truncations were stored
    np.testing.assert_array_equal(next_obs, obs + 1)
    assert not np.asarray(buffer.terminated).any()
