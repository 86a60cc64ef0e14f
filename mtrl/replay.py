"""Device-resident per-task replay: one uniform ring buffer per task, task axis leading.

Every env step adds exactly N transitions to every task, so all tasks share one write position and one fill
count. Observations keep the env's native dtype (MinAtar's bool grids stay bool); the learner casts.

Written by hand rather than with flashbax: flashbax's item buffer has no task axis, and vmapping it over tasks
would keep T copies of its counters; a shared write index is simpler and lets sampling be one gather.

Axes: ``T`` tasks, ``C`` capacity per task, ``N`` transitions added per task per step, ``B`` batch per task.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transition:
    """A batch of transitions; leading axes ``[T, X]`` with X = N (add), C (storage) or B (sample).

    ``next_obs`` is the true next observation (gymnax's ``final_observation`` at episode ends).
    ``terminated`` marks a real terminal state (no bootstrap); truncation is not stored because the learner
    bootstraps through it.
    """

    obs: jax.Array  # [T, X, *obs_shape], native dtype
    action: jax.Array  # [T, X] int32
    reward: jax.Array  # [T, X] float32
    next_obs: jax.Array  # [T, X, *obs_shape], native dtype
    terminated: jax.Array  # [T, X] bool


@struct.dataclass
class ReplayState:
    """Storage ``[T, C, ...]`` plus a write position and fill count shared by all tasks."""

    data: Transition
    position: jax.Array  # () int32, next slot to write
    size: jax.Array  # () int32, filled slots per task (<= C)

    @property
    def capacity(self) -> int:
        return self.data.action.shape[1]


def init(num_tasks: int, capacity: int, obs_shape: tuple[int, ...], obs_dtype) -> ReplayState:
    """Empty buffer with ``capacity`` slots per task."""
    if capacity < 1:
        raise ValueError(f"buffer_size must be >= 1, got {capacity}")
    shape = (num_tasks, capacity)
    return ReplayState(
        data=Transition(
            obs=jnp.zeros(shape + tuple(obs_shape), obs_dtype),
            action=jnp.zeros(shape, jnp.int32),
            reward=jnp.zeros(shape, jnp.float32),
            next_obs=jnp.zeros(shape + tuple(obs_shape), obs_dtype),
            terminated=jnp.zeros(shape, bool),
        ),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def add(state: ReplayState, batch: Transition) -> ReplayState:
    """Write N transitions per task ``[T, N, ...]`` at the shared position, wrapping around."""
    n = batch.action.shape[1]
    capacity = state.capacity
    if n > capacity:
        raise ValueError(f"cannot add {n} transitions per task to a buffer of capacity {capacity}")
    if capacity % n == 0:
        # Writes never straddle the end: one contiguous in-place slice update. (XLA:CPU lowers the general
        # scatter below to a loop that costs more than the whole env step.)
        data = jax.tree.map(
            lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), state.position, axis=1),
            state.data, batch,
        )
    else:
        slots = (state.position + jnp.arange(n)) % capacity
        data = jax.tree.map(lambda buf, x: buf.at[:, slots].set(x.astype(buf.dtype)), state.data, batch)
    return ReplayState(
        data=data,
        position=(state.position + n) % capacity,
        size=jnp.minimum(state.size + n, capacity),
    )


def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Transition:
    """Sample ``[T, B]`` transitions uniformly with replacement, independently per task, from filled slots."""
    num_tasks = state.data.action.shape[0]
    idx = jax.random.randint(key, (num_tasks, batch_size), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: jax.vmap(lambda b, i: b[i])(buf, idx), state.data)
