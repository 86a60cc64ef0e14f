"""Device-resident per-task replay: one uniform ring buffer per task, task axis leading.

Every env step adds exactly N transitions to every task, so all tasks share one write position and one fill
count. Observations keep the env's native dtype (MinAtar's bool grids stay bool); the learner casts.

Written by hand rather than with flashbax: flashbax's item buffer has no task axis, and vmapping it over tasks
would keep T copies of its counters; a shared write index is simpler and lets sampling be one gather.

**n-step returns** are formed when sampling (`sample_n_step`), from the one-step transitions: an iteration writes
env e of every task at slot ``position + e``, so env e's next transitions lie ``N, 2N, ...`` slots further on
(``C`` a multiple of ``N``). A sampled transition's window runs forward until an episode ends (terminated:
no bootstrap; truncated: bootstrap from the true final observation), ``n`` steps are taken, or the write head is
reached (a shorter window: bootstrap from where it stops). A window never crosses an episode boundary, so two
episodes of one env (gymnax auto-resets) are never mixed. Nothing is stored twice and ``n`` costs only gathers of
scalars plus one of the last ``next_obs``.

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
    ``terminated`` marks a real terminal state (no bootstrap). The learner bootstraps through truncation, so
    ``truncated`` is stored only where n-step windows must stop at it.
    """

    obs: jax.Array  # [T, X, *obs_shape], native dtype
    action: jax.Array  # [T, X] int32
    reward: jax.Array  # [T, X] float32
    next_obs: jax.Array  # [T, X, *obs_shape], native dtype
    terminated: jax.Array  # [T, X] bool
    truncated: jax.Array | None = None  # [T, X] bool; stored only for n-step returns
    steps: jax.Array | None = None  # [T, B] int32: steps m summed into `reward` (n-step samples; γ^m bootstraps)


@struct.dataclass
class ReplayState:
    """Storage ``[T, C, ...]`` plus a write position and fill count shared by all tasks."""

    data: Transition
    position: jax.Array  # () int32, next slot to write
    size: jax.Array  # () int32, filled slots per task (<= C)

    @property
    def capacity(self) -> int:
        return self.data.action.shape[1]


def init(num_tasks: int, capacity: int, obs_shape: tuple[int, ...], obs_dtype,
         store_truncated: bool = False) -> ReplayState:
    """Empty buffer with ``capacity`` slots per task (and a ``truncated`` column when ``store_truncated``)."""
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
            truncated=jnp.zeros(shape, bool) if store_truncated else None,
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


def _per_task(buffer: jax.Array, idx: jax.Array) -> jax.Array:
    """``buffer[t][idx[t]]`` for every task t: ``[T, C, ...]`` x ``[T, ...]`` int -> ``[T, ..., ...]``."""
    return jax.vmap(lambda b, i: b[i])(buffer, idx)


def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Transition:
    """Sample ``[T, B]`` transitions uniformly with replacement, independently per task, from filled slots."""
    num_tasks = state.data.action.shape[0]
    idx = jax.random.randint(key, (num_tasks, batch_size), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: _per_task(buf, idx), state.data)


def sample_n_step(state: ReplayState, key: jax.Array, batch_size: int, n: int, num_envs: int,
                  gammas: jax.Array) -> Transition:
    """Sample ``[T, B]`` n-step transitions (uniform start, as `sample`).

    ``reward`` is Σ_{k<m} γₜᵏ r_k over the window's m ≤ n steps (``steps``); ``next_obs`` and ``terminated``
    are those of its last step, so the target is ``reward + γₜ^m (1 − terminated) Q(next_obs)``. ``gammas [T]``.
    Needs the ``truncated`` column (`init(store_truncated=True)`) and ``C`` a multiple of ``num_envs``.
    """
    num_tasks = state.data.action.shape[0]
    idx = jax.random.randint(key, (num_tasks, batch_size), 0, jnp.maximum(state.size, 1))
    return n_step_transitions(state, idx, n, num_envs, gammas)


def n_step_transitions(state: ReplayState, idx: jax.Array, n: int, num_envs: int, gammas: jax.Array) -> Transition:
    """The n-step transitions starting at slots ``idx [T, B]`` (see `sample_n_step`)."""
    data = state.data
    capacity = data.action.shape[1]
    # transitions of the same env written after slot idx, up to the head: how far the window may reach
    after = jnp.mod(state.position - 1 - idx, capacity) // num_envs  # [T, B]
    offsets = jnp.arange(n)  # [n]
    slots = jnp.mod(idx[..., None] + offsets * num_envs, capacity)  # [T, B, n]
    reward, terminated, truncated = (_per_task(column, slots) for column in (data.reward, data.terminated,
                                                                              data.truncated))  # [T, B, n]
    done = terminated | truncated
    # step k is inside the window if k <= after and no earlier step ended the episode
    ended_before = jnp.cumsum(done, axis=-1) - done  # episodes ended at steps < k
    inside = (offsets <= after[..., None]) & (ended_before == 0)  # [T, B, n]
    steps = inside.sum(-1).astype(jnp.int32)  # m >= 1: step 0 is always inside
    discounts = gammas[:, None, None] ** offsets.astype(jnp.float32)  # [T, 1, n]
    n_step_reward = jnp.sum(jnp.where(inside, discounts * reward, 0.0), axis=-1)
    last = jnp.take_along_axis(slots, (steps - 1)[..., None], axis=-1)[..., 0]  # [T, B]
    return Transition(
        obs=_per_task(data.obs, idx),
        action=_per_task(data.action, idx),
        reward=n_step_reward,
        next_obs=_per_task(data.next_obs, last),
        terminated=_per_task(data.terminated, last),
        steps=steps,
    )
