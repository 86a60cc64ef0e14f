"""Per-task TD losses (rlax's TD formulas and losses).

The target is r + γ · (1 − terminated) · Q_value(s', argmax_{a valid} Q_select(s', a)) (n-step samples: r is the
discounted sum of their m rewards, s' the state after them, and the bootstrap is discounted by γ^m):
- double DQN: Q_select = online network, Q_value = target network (rlax's ``double_q_learning``);
- plain DQN: both are the target network, so the bootstrap is max_{a valid} Q_target(s', a) (rlax's ``q_learning``).
Invalid actions of a task (beyond its own action count) are pushed to the dtype's lowest value in the selector,
so they are never the argmax; the value read is always a valid action's, so no inf or nan enters the target.
The TD errors are rlax's formulas with the reads over the few actions written elementwise (`take_action`,
`max_valid`): the same values as rlax's (tests/test_losses.py compares them exactly), but XLA fuses them into the
loss and its gradient, where rlax's gather (whose gradient is a scatter) and plain DQN's argmax each stay a GPU
kernel of their own (`benchmarks/gpu_kernels.py` counts them).
Bootstrapping stops only on termination; truncated transitions bootstrap from the true next observation.

Functions here return one loss per task, ``[T]``; aggregation across tasks belongs to the agent.

Axes: ``T`` tasks, ``B`` transitions per task in the batch, ``A`` actions (the widest task's, masked per task).
"""

from __future__ import annotations

import functools
from typing import Literal

import chex
import jax
import jax.numpy as jnp
import rlax

LossType = Literal["huber", "l2"]


def masked_q(q: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Set Q-values of invalid actions to the lowest finite value so argmax/max ignore them.

    ``q [..., A]``, ``action_mask [A]`` or broadcastable bool.
    """
    return jnp.where(action_mask, q, jnp.finfo(q.dtype).min)


def take_action(q: jax.Array, action: jax.Array) -> jax.Array:
    """``q[..., action] [...]`` for ``q [..., A]`` and int ``action [...]`` in ``[0, A)`` (an action outside reads
    action 0), as a chain of selects over the A actions: exact, and its gradient is elementwise (a gather's is a
    scatter-add, a GPU kernel of its own)."""
    out = q[..., 0]
    for a in range(1, q.shape[-1]):
        out = jnp.where(action == a, q[..., a], out)
    return out


def max_valid(q: jax.Array, action_mask: jax.Array) -> jax.Array:
    """max over the valid actions of ``q [..., A]`` (``action_mask`` broadcastable to it) -> ``[...]``: the value at
    the masked argmax (for finite Q-values), as a chain of elementwise maxima over the A actions, which XLA fuses
    into its consumers (a reduction over so short an axis stays a GPU kernel of its own)."""
    masked = masked_q(q, action_mask)
    return functools.reduce(jnp.maximum, [masked[..., a] for a in range(q.shape[-1])])


def bootstrap_value(q_t_value: jax.Array, q_t_selector: jax.Array | None, action_mask: jax.Array) -> jax.Array:
    """``Q_value(s', argmax_{a valid} Q_select(s', a)) [...]`` for ``q_t_* [..., A]`` (``action_mask``
    broadcastable to them); ``q_t_selector`` None: plain DQN, the valid max of ``q_t_value``."""
    if q_t_selector is None:
        return max_valid(q_t_value, action_mask)
    return take_action(q_t_value, jnp.argmax(masked_q(q_t_selector, action_mask), axis=-1))


def td_errors(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array | None,
    action_mask: jax.Array,
) -> jax.Array:
    """Double-Q TD errors for one task: ``q_* [B, A]``, ``a_tm1, r_t, discount_t [B]``, mask ``[A]`` -> ``[B]``;
    ``q_t_selector`` None: plain Q-learning's (the selector is ``q_t_value`` itself, so its valid max is read).

    ``discount_t`` already includes termination: γ · (1 − terminated).
    """
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t_value, action_mask], [2, 1, 1, 1, 2, 1])
    if q_t_selector is not None:
        chex.assert_rank(q_t_selector, 2)
    target = jax.lax.stop_gradient(r_t + discount_t * bootstrap_value(q_t_value, q_t_selector, action_mask))
    return target - take_action(q_tm1, a_tm1)


def bootstrap_discount(gamma: jax.Array, terminated: jax.Array, steps: jax.Array | None = None) -> jax.Array:
    """γ^m · (1 − terminated): the discount on a target's bootstrap (m = ``steps`` of an n-step sample, else 1);
    ``gamma`` broadcasts against ``terminated``."""
    discount = gamma if steps is None else gamma ** steps.astype(jnp.float32)
    return discount * (1.0 - terminated.astype(jnp.float32))


def elementwise_loss(td: jax.Array, loss: LossType, huber_delta: float = 1.0) -> jax.Array:
    """ℓ(δ): rlax's Huber with ``huber_delta`` or ½δ²."""
    if loss == "huber":
        return rlax.huber_loss(td, huber_delta)
    if loss == "l2":
        return rlax.l2_loss(td)
    raise ValueError(f"loss must be 'huber' or 'l2', got {loss!r}")


def task_td_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    terminated: jax.Array,
    gamma: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array | None,
    action_mask: jax.Array,
    loss: LossType = "l2",
    huber_delta: float = 1.0,
    steps: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Mean TD loss of one task over its batch, and the TD errors ``[B]``.

    ``gamma`` is this task's scalar discount; ``terminated [B]`` bool; ``steps [B]`` (n-step samples) the steps
    summed into ``r_t``, so the bootstrap is discounted by γ^steps (default: one step); ``q_t_selector`` None:
    plain DQN (see `td_errors`).
    """
    discount_t = bootstrap_discount(gamma, terminated, steps)
    td = td_errors(q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector, action_mask)
    return elementwise_loss(td, loss, huber_delta).mean(), td


def multitask_td_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    terminated: jax.Array,
    gammas: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array | None,
    action_mask: jax.Array,
    loss: LossType = "l2",
    huber_delta: float = 1.0,
    steps: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Per-task mean TD losses ``[T]`` (and TD errors ``[T, B]``) for a batch ``[T, B, ...]``.

    ``gammas [T]``, ``action_mask [T, A]``, ``steps [T, B]`` or None, ``q_t_selector`` or None (see `task_td_loss`).
    """
    fn = jax.vmap(functools.partial(task_td_loss, loss=loss, huber_delta=huber_delta))  # keyword args map on axis 0
    return fn(q_tm1, a_tm1, r_t, terminated, gammas, q_t_value, q_t_selector, action_mask, steps=steps)


def multitask_targets(
    r_t: jax.Array,
    terminated: jax.Array,
    gammas: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array | None,
    action_mask: jax.Array,
    steps: jax.Array | None = None,
) -> jax.Array:
    """TD targets ``[T, B]`` (the same targets as `task_td_loss`, without the prediction): for losses on
    transformed targets (PopArt). Shapes as in `multitask_td_loss` (``q_t_selector`` None: plain DQN); no gradient
    flows through them."""
    discount_t = bootstrap_discount(gammas[:, None], terminated, steps)
    value = bootstrap_value(q_t_value, q_t_selector, action_mask[:, None, :])
    return jax.lax.stop_gradient(r_t + discount_t * value)


def multitask_loss_to_targets(
    q_tm1: jax.Array, a_tm1: jax.Array, targets: jax.Array, loss: LossType = "l2", huber_delta: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Per-task mean losses ``[T]`` and errors ``[T, B]`` of ``q_tm1 [T, B, A]`` at ``a_tm1 [T, B]`` against
    given ``targets [T, B]``."""
    td = targets - take_action(q_tm1, a_tm1)
    return elementwise_loss(td, loss, huber_delta).mean(-1), td
