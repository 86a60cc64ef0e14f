import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import replay


def _batch(num_tasks, n, start, obs_dtype=jnp.float32):
    """Transitions whose action field encodes (task, insertion index): 1000 * task + index."""
    ids = jnp.arange(num_tasks)[:, None] * 1000 + start + jnp.arange(n)[None, :]
    return replay.Transition(
        obs=jnp.broadcast_to(ids[..., None], (num_tasks, n, 3)).astype(obs_dtype),
        action=ids.astype(jnp.int32),
        reward=ids.astype(jnp.float32),
        next_obs=jnp.broadcast_to(ids[..., None] + 1, (num_tasks, n, 3)).astype(obs_dtype),
        terminated=(ids % 2 == 0),
    )


def test_add_wraps_around_and_keeps_order():
    state = replay.init(2, capacity=5, obs_shape=(3,), obs_dtype=jnp.float32)
    state = replay.add(state, _batch(2, 3, start=0))
    assert int(state.size) == 3 and int(state.position) == 3
    state = replay.add(state, _batch(2, 3, start=3))  # slots 3, 4, then 0
    assert int(state.size) == 5 and int(state.position) == 1
    np.testing.assert_array_equal(state.data.action[0], [5, 1, 2, 3, 4])
    np.testing.assert_array_equal(state.data.action[1], [1005, 1001, 1002, 1003, 1004])


def test_contiguous_writes_match_the_general_path():
    # capacity a multiple of N takes the slice-update path; it must store exactly what the scatter path stores
    state = replay.init(2, capacity=6, obs_shape=(3,), obs_dtype=jnp.float32)
    for start in range(0, 12, 3):
        state = replay.add(state, _batch(2, 3, start=start))
    np.testing.assert_array_equal(state.data.action[1], [1006, 1007, 1008, 1009, 1010, 1011])
    assert int(state.position) == 0 and int(state.size) == 6
    np.testing.assert_array_equal(state.data.terminated[0], [True, False] * 3)


def test_tasks_are_isolated_in_samples():
    state = replay.init(3, capacity=8, obs_shape=(3,), obs_dtype=jnp.float32)
    state = replay.add(state, _batch(3, 4, start=0))
    sample = replay.sample(state, jax.random.key(0), batch_size=64)
    chex.assert_shape(sample.obs, (3, 64, 3))
    task_of = np.asarray(sample.action) // 1000
    np.testing.assert_array_equal(task_of, np.arange(3)[:, None] * np.ones((1, 64)))
    # only filled slots are sampled, and each field comes from the same slot
    assert np.all(np.asarray(sample.action) % 1000 < 4)
    np.testing.assert_array_equal(np.asarray(sample.obs[..., 0]), np.asarray(sample.action))
    np.testing.assert_array_equal(np.asarray(sample.next_obs[..., 0]), np.asarray(sample.action) + 1)


def test_native_obs_dtype_is_kept():
    state = replay.init(1, capacity=4, obs_shape=(3,), obs_dtype=jnp.uint8)
    state = replay.add(state, _batch(1, 2, start=0, obs_dtype=jnp.uint8))
    assert state.data.obs.dtype == jnp.uint8
    assert replay.sample(state, jax.random.key(0), 2).obs.dtype == jnp.uint8


def test_errors():
    with pytest.raises(ValueError, match="buffer_size must be >= 1"):
        replay.init(1, 0, (3,), jnp.float32)
    state = replay.init(1, capacity=2, obs_shape=(3,), obs_dtype=jnp.float32)
    with pytest.raises(ValueError, match="cannot add 3 transitions per task to a buffer of capacity 2"):
        replay.add(state, _batch(1, 3, start=0))


def test_add_and_sample_jit_match_eager():
    state = replay.init(2, capacity=6, obs_shape=(3,), obs_dtype=jnp.float32)
    eager = replay.add(state, _batch(2, 4, start=0))
    jitted = jax.jit(replay.add)(state, _batch(2, 4, start=0))
    chex.assert_trees_all_equal(eager, jitted)
    chex.assert_trees_all_equal(
        replay.sample(eager, jax.random.key(3), 5),
        jax.jit(replay.sample, static_argnums=2)(eager, jax.random.key(3), 5),
    )
