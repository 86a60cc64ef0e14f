"""Multi-task Q-network: optional per-task input adapters, a shared torso, per-task heads.

Param tree (the ``"params"`` collection)::

    {"adapter": {...}   # optional; every leaf has a leading task axis T
     "torso":   {...}   # shared by all tasks
     "head":    {...}}  # every leaf has a leading task axis T; A_max outputs, masked per task

Per-task modules are one `nn.vmap` over the task axis, so T tasks cost one batched matmul, not T calls.
Input ``obs [T, ..., *obs_shape]`` gives ``q [T, ..., A]``; the middle axes (envs, batch) are free.

The torso is dense layers on the flattened observation (`MLP`), or, for image observations ``[H, W, C]``,
conv layers first (`ConvTorso`: the MinAtar paper's Conv 16x3x3 stride 1 -> ReLU -> flatten -> Dense 128 is
``conv_channels=(16,), torso_sizes=(128,)``). Games with fewer channels are zero-padded to the widest (`TaskSet`);
with ``adapter_size`` each task first maps its (padded) channels through its own 1x1 conv, so the shared torso sees
one learned channel layout. The param tree keeps its parts either way, so splicing and freezing are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """Dense layers with ReLU after each; with ``layer_norm``, Dense → LayerNorm → ReLU (as in PQN, Gallici et al.
    2024), which keeps the features' scale fixed as the TD targets move."""

    hidden_sizes: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for size in self.hidden_sizes:
            x = nn.Dense(size)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return x


class Conv3x3(nn.Module):
    """A 3x3, stride-1, 'VALID' convolution written as one matmul over the nine shifted views of the input
    (im2col by slicing), with `nn.Conv`'s parameters (``kernel [3, 3, C, F]``, ``bias [F]``) and initialisers.

    Why not `nn.Conv`: on these small grids XLA's CPU convolution (and its gradients) is far slower than the same
    arithmetic as a matmul: `python -m benchmarks.minatar` times the five-game MinAtar program with each
    (benchmarks/results/minatar.md); outputs equal `nn.Conv`'s to float rounding, tested.
    Input ``[..., H, W, C]`` -> ``[..., H-2, W-2, F]``.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        height, width, channels = x.shape[-3:]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        # [..., H-2, W-2, 9, C]: the view shifted by (i, j), in the kernel's (row, column) order
        views = jnp.stack([x[..., i:height - 2 + i, j:width - 2 + j, :] for i in range(3) for j in range(3)], axis=-2)
        views = views.reshape(views.shape[:-2] + (9 * channels,))
        return views @ kernel.reshape(9 * channels, self.features) + bias


class ConvTorso(nn.Module):
    """3x3, stride-1, unpadded ('VALID', as the MinAtar paper's network) conv layers, then the flattened features
    through `MLP`. LayerNorm (``layer_norm``) normalises each conv position's channels, as PQN's MinAtar network.
    Input ``[..., H, W, C]`` -> ``[..., F]``."""

    channels: Sequence[int]
    hidden_sizes: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, width in enumerate(self.channels):
            x = Conv3x3(width, name=f"Conv_{i}")(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        x = x.reshape(x.shape[:-3] + (-1,))
        return MLP(self.hidden_sizes, self.layer_norm)(x)


class ChannelAdapter(nn.Module):
    """A task's own 1x1 conv + ReLU: ``[..., H, W, C]`` -> ``[..., H, W, features]``."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.relu(nn.Conv(self.features, (1, 1))(x))


class QHead(nn.Module):
    """Linear Q-value head; with ``dueling`` it is V(s) + A(s, a) − mean over the task's valid actions of A(s, a)."""

    num_actions: int
    dueling: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """``x [..., F]``, ``valid [A]`` bool (this task's actions) -> ``q [..., A]``."""
        if not self.dueling:
            return nn.Dense(self.num_actions, name="q")(x)
        value = nn.Dense(1, name="value")(x)
        advantage = nn.Dense(self.num_actions, name="advantage")(x)
        # Invalid actions' outputs must not enter the mean: they would shift every valid Q-value by a quantity
        # that no TD target constrains.
        valid = valid.astype(advantage.dtype)
        mean = (advantage * valid).sum(-1, keepdims=True) / valid.sum()
        return value + advantage - mean


def _per_task(module_cls, num_tasks: int):
    """Stack `module_cls` on a leading task axis: inputs ``[T, ...]``, params with leading axis T."""
    return nn.vmap(
        module_cls,
        in_axes=0,
        out_axes=0,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        axis_size=num_tasks,
    )


class MultiTaskQNetwork(nn.Module):
    """Q-network with a shared torso θ₀ and one head θₜ per task.

    Attributes:
        num_tasks: T.
        num_actions: A_max, the head width.
        torso_sizes: hidden sizes of the shared MLP torso.
        layer_norm: LayerNorm after every torso layer (before its ReLU).
        adapter_size: width of a per-task Dense+ReLU input adapter before the torso; 0 = no adapter.
        dueling: dueling heads.
        action_counts: each task's number of valid actions (its first ones); default all A_max. Dueling heads
            average the advantage over these only.
    """

    num_tasks: int
    num_actions: int
    torso_sizes: Sequence[int] = (120, 84)
    conv_channels: Sequence[int] = ()
    layer_norm: bool = False
    adapter_size: int = 0
    dueling: bool = False
    action_counts: Sequence[int] | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, obs_ndim: int = 1) -> jax.Array:
        """``obs [T, ..., *obs_shape]`` (any dtype; cast to float32) -> ``q [T, ..., A]``.

        ``obs_ndim`` is the number of trailing observation axes: flattened before a dense torso; a conv torso
        needs 3 (``[H, W, C]``).
        """
        if obs.shape[0] != self.num_tasks:
            raise ValueError(f"obs leading axis must be the task axis of size {self.num_tasks}, got {obs.shape}")
        x = obs.astype(jnp.float32)
        if self.conv_channels:
            if obs_ndim != 3:
                raise ValueError(f"conv_channels needs image observations [H, W, C], got {obs_ndim} observation axes")
            if self.adapter_size:
                x = _per_task(ChannelAdapter, self.num_tasks)(self.adapter_size, name="adapter")(x)
            x = ConvTorso(tuple(self.conv_channels), tuple(self.torso_sizes), self.layer_norm, name="torso")(x)
        else:
            x = x.reshape(x.shape[: x.ndim - obs_ndim] + (-1,))
            if self.adapter_size:
                x = _per_task(MLP, self.num_tasks)((self.adapter_size,), name="adapter")(x)
            x = MLP(tuple(self.torso_sizes), self.layer_norm, name="torso")(x)
        counts = self.action_counts if self.action_counts is not None else [self.num_actions] * self.num_tasks
        counts = jnp.asarray(counts)
        valid = jnp.arange(self.num_actions)[None, :] < counts[:, None]  # [T, A]
        return _per_task(QHead, self.num_tasks)(self.num_actions, self.dueling, name="head")(x, valid)
