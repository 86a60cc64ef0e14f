"""PopArt per task: normalised TD targets whose statistics move without changing what the network says.

Multi-task value learning sums losses of tasks whose returns differ by orders of magnitude (MinAtar: Breakout
~10, SpaceInvaders ~100+), so the largest task's TD errors dominate the shared torso's gradient. PopArt (van
Hasselt et al. 2016; per task as in Hessel et al. 2019) keeps for each task t a running mean μₜ and deviation σₜ of
its TD targets; the head learns normalised values q̃ and the task's Q-values are σₜ q̃ + μₜ. Each update:

1. targets yₜ are formed from the unnormalised target network (σₜ q̃ₜ(s', a*) + μₜ; a* is unchanged by the
   positive affine map, so double-DQN selection works on q̃ directly);
2. ``ART``: μₜ, νₜ (second moment) move toward the batch's targets, σₜ = √(νₜ − μₜ²) clipped to `SCALE_BOUNDS`;
3. ``POP``: the head's last layer of the online *and* target networks is rescaled so every unnormalised output is
   unchanged: W ← W σ/σ', b ← (σ b + μ − μ')/σ';
4. the loss is ℓ((y − μ')/σ' − q̃(s, a)), so every task's errors have about unit scale.

rlax supplies the statistics (`rlax.art`, one statistic per index, updated once per target: ``step_size`` is per
target, so a batch of B moves the statistics by about B·step_size) and the (un)normalisation. The output-preserving
rescale is written here: rlax's `pop` takes one linear layer ``{"w", "b"}`` with a statistic per output, while
mtrl's heads are per-task layers (leading task axis) whose A outputs share their task's statistic, and a dueling
head splits the layer in two (value and advantage; the shift goes to the value only).

Axes: ``T`` tasks, ``B`` batch per task, ``F`` head input features, ``A`` actions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import rlax

PopArtState = rlax.PopArtState  # shift, scale, second_moment: each [T]
SCALE_BOUNDS = (1e-4, 1e6)  # Hessel et al. 2019


def init(num_tasks: int) -> PopArtState:
    """Statistics of the identity map: μ = 0, σ = 1 (ν = 1), so q̃ starts equal to Q."""
    return PopArtState(shift=jnp.zeros((num_tasks,), jnp.float32), scale=jnp.ones((num_tasks,), jnp.float32),
                       second_moment=jnp.ones((num_tasks,), jnp.float32))


def _task_indices(values: jax.Array) -> jax.Array:
    """``[T, B]`` task ids for values ``[T, B]``."""
    return jnp.broadcast_to(jnp.arange(values.shape[0])[:, None], values.shape)


def update_statistics(state: PopArtState, targets: jax.Array, step_size: jax.Array) -> PopArtState:
    """ART: move each task's statistics toward its targets ``[T, B]`` (unnormalised)."""
    return rlax.art(state, targets, _task_indices(targets), step_size, *SCALE_BOUNDS)


def normalize(state: PopArtState, values: jax.Array) -> jax.Array:
    """``(values − μₜ) / σₜ`` for values ``[T, ...]``."""
    flat = values.reshape(values.shape[0], -1)
    return rlax.normalize(state, flat, _task_indices(flat)).reshape(values.shape)


def unnormalize(state: PopArtState, values: jax.Array) -> jax.Array:
    """``σₜ values + μₜ`` for values ``[T, ...]``."""
    flat = values.reshape(values.shape[0], -1)
    return rlax.unnormalize(state, flat, _task_indices(flat)).reshape(values.shape)


def preserve_outputs(params: dict, old: PopArtState, new: PopArtState) -> dict:
    """POP: ``params`` with the head's last layer rescaled so σ' q̃' + μ' = σ q̃ + μ for every input and action.

    Plain heads have ``head/q/{kernel [T, F, A], bias [T, A]}``; dueling heads ``head/value`` (1 output) and
    ``head/advantage`` (A outputs): both are scaled, the shift enters the value only (the advantage's mean is
    subtracted, so a shift there would cancel).
    """
    ratio = old.scale / new.scale  # [T]
    shift = (old.shift - new.shift) / new.scale  # [T]

    def rescale(layer: dict, with_shift: bool) -> dict:
        kernel = layer["kernel"] * ratio[:, None, None]
        bias = layer["bias"] * ratio[:, None] + (shift[:, None] if with_shift else 0.0)
        return {**layer, "kernel": kernel, "bias": bias}

    head = dict(params["head"])
    if "q" in head:
        head["q"] = rescale(head["q"], with_shift=True)
    else:
        head["value"] = rescale(head["value"], with_shift=True)
        head["advantage"] = rescale(head["advantage"], with_shift=False)
    return {**params, "head": head}
