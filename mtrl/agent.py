"""The multi-task DQN agent: train state, acting, and the update that aggregates task losses.

`TrainState` holds everything that differs between runs (seeds or sweep settings), including the numeric
hyperparameters a sweep may vary (`Hyperparams`, learning rate inside the optimiser state), so one compiled
program serves every run on a leading `vmap` axis. `Agent` holds what is static: network, optimiser, masks.

Axes: ``T`` tasks, ``N`` envs per task, ``B`` batch per task, ``A`` = ``A_max`` actions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from mtrl import losses, popart, replay
from mtrl.config import ConfigError, DQNConfig
from mtrl.networks import MultiTaskQNetwork
from mtrl.tasks import TaskSet


@struct.dataclass
class Hyperparams:
    """Per-run numeric settings (array leaves, so a sweep vmaps over them)."""

    gammas: jax.Array  # [T]
    task_weights: jax.Array  # [T]
    eps_start: jax.Array  # [T]
    eps_end: jax.Array  # [T]
    eps_decay_steps: jax.Array  # [T] env steps per task
    tau: jax.Array  # ()
    l2sp_alpha: jax.Array  # () weight of the L2-SP penalty (used when the agent has `l2sp_parts`)
    popart_step_size: jax.Array | None = None  # () PopArt statistics' step per target; None without PopArt


@struct.dataclass
class TrainState:
    params: Any
    target_params: Any
    opt_state: Any
    hparams: Hyperparams
    anchor: Any = None  # L2-SP reference values of `Agent.l2sp_parts` (e.g. the source torso); None without
    popart: Any = None  # `popart.PopArtState` ([T] statistics) with PopArt loss aggregation; None without


def epsilon(hparams: Hyperparams, env_steps: jax.Array) -> jax.Array:
    """Per-task linear ε schedule ``[T]`` at ``env_steps`` (per task)."""
    frac = jnp.clip(1.0 - env_steps / hparams.eps_decay_steps, 0.0, 1.0)
    return hparams.eps_end + (hparams.eps_start - hparams.eps_end) * frac


def make_optimizer(
    max_grad_norm: float | None,
    learning_rate: float,
    decay_updates: int = 0,
    lr_end_fraction: float = 1.0,
    partition: Callable[[Callable[..., optax.GradientTransformation]], optax.GradientTransformation] | None = None,
) -> optax.GradientTransformation:
    """One global-norm clip of the whole gradient (none when ``max_grad_norm`` is None), then Adam, its step scaled
    linearly from 1 to ``lr_end_fraction`` over ``decay_updates`` updates. The base learning rate is injected, so it
    lives in the optimiser state (a sweep can vary it without recompiling).

    ``partition(adam)`` may replace Adam by a transform over parameter groups (transfer modes: `mtrl.transfer`);
    ``adam(lr_scale=1.0)`` builds one group's Adam. The clip runs before the partition, on the norm of every
    gradient (frozen parts included), so transfer modes differ only in what each group does with its share.
    """

    def factory(learning_rate):
        def adam(lr_scale: float = 1.0) -> optax.GradientTransformation:
            return optax.adam(learning_rate * lr_scale)

        clip = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
        parts = [optax.chain(*clip, adam() if partition is None else partition(adam))]
        schedule = lr_decay(decay_updates, lr_end_fraction)
        if schedule is not None:
            parts.append(optax.scale_by_schedule(schedule))
        return optax.chain(*parts)

    return optax.inject_hyperparams(factory)(learning_rate=learning_rate)


def _flat_norm(tree) -> jax.Array:
    """Global L2 norm of ``tree`` as one reduction over its leaves laid end to end. `optax.tree.norm` reduces each
    leaf separately, a kernel per leaf on a GPU; with clipping the metric shares the clip's norm, without it this
    one is cheaper (equal up to rounding: the sums are grouped differently)."""
    return jnp.sqrt(jnp.sum(jnp.concatenate([jnp.ravel(jnp.square(x)) for x in jax.tree.leaves(tree)])))


def lr_decay(decay_updates: int, lr_end_fraction: float) -> optax.Schedule | None:
    """The factor on the learning rate after k updates (linear from 1 to ``lr_end_fraction``); None = constant."""
    if decay_updates > 0 and lr_end_fraction != 1.0:
        return optax.linear_schedule(1.0, lr_end_fraction, decay_updates)
    return None


def current_learning_rate(state: TrainState, config: DQNConfig, num_updates: jax.Array) -> jax.Array:
    """Adam's step size after ``num_updates`` updates: the run's base rate times the decay (transfer modes may
    scale it per parameter group on top: `mtrl.transfer`)."""
    schedule = lr_decay(config.num_updates, config.lr_end_fraction)
    base = state.opt_state.hyperparams["learning_rate"]
    return base if schedule is None else base * schedule(num_updates)


@dataclasses.dataclass(frozen=True, eq=False)
class Agent:
    """Static parts of the agent; methods are pure and traceable."""

    network: MultiTaskQNetwork
    optimizer: optax.GradientTransformation
    action_mask: np.ndarray  # [T, A] bool
    obs_shape: tuple[int, ...]
    double_q: bool = True
    loss: str = "l2"
    huber_delta: float = 1.0
    l2sp_parts: tuple[str, ...] = ()  # top-level param parts pulled toward `TrainState.anchor`
    popart: bool = False  # PopArt-normalised task losses (`mtrl.popart`)
    clips_gradients: bool = True  # the optimiser clips by global norm (the grad_norm metric then shares its norm)
    diagnostics: bool = True  # td_abs, q_taken and grad_norm metrics (False: NaN, their reductions skipped)

    @classmethod
    def create(cls, taskset: TaskSet, config: DQNConfig, optimizer: optax.GradientTransformation | None = None,
               l2sp_parts: tuple[str, ...] = ()) -> Agent:
        """Agent for ``taskset``; ``optimizer`` overrides the config's (transfer modes build their own).

        Raises:
            ConfigError: ``conv_channels`` set while the tasks' observations are not images ``[H, W, C]``.
        """
        if config.conv_channels and len(taskset.obs_shape) != 3:
            raise ConfigError(f"conv_channels {tuple(config.conv_channels)} needs image observations [H, W, C]; the "
                              f"tasks' observations have shape {taskset.obs_shape}: leave conv_channels empty for them")
        network = MultiTaskQNetwork(
            num_tasks=taskset.num_tasks,
            num_actions=taskset.num_actions,
            torso_sizes=tuple(config.torso),
            conv_channels=tuple(config.conv_channels),
            layer_norm=config.layer_norm,
            adapter_size=config.adapter_size,
            dueling=config.dueling,
            action_counts=tuple(int(n) for n in taskset.action_mask.sum(-1)),
        )
        return cls(
            network=network,
            optimizer=optimizer or make_optimizer(config.max_grad_norm, config.lr, config.num_updates,
                                                  config.lr_end_fraction),
            action_mask=taskset.action_mask,
            obs_shape=taskset.obs_shape,
            double_q=config.double_q,
            loss=config.loss,
            huber_delta=config.huber_delta,
            l2sp_parts=tuple(l2sp_parts),
            popart=config.loss_aggregation == "popart",
            clips_gradients=config.max_grad_norm is not None,
            diagnostics=config.learner_diagnostics,
        )

    @property
    def num_tasks(self) -> int:
        return self.action_mask.shape[0]

    def q_values(self, params, obs: jax.Array) -> jax.Array:
        """``obs [T, X, *obs_shape]`` -> ``q [T, X, A]``."""
        return self.network.apply({"params": params}, obs, obs_ndim=len(self.obs_shape))

    def init(self, key: jax.Array, hparams: Hyperparams, learning_rate: jax.Array | float | None = None) -> TrainState:
        """Fresh params (target = online), optimiser state, and the run's hyperparameters."""
        dummy = jnp.zeros((self.num_tasks, 1) + tuple(self.obs_shape), jnp.float32)
        params = self.network.init(key, dummy, obs_ndim=len(self.obs_shape))["params"]
        return self.state_from_params(params, hparams, learning_rate)

    def state_from_params(self, params, hparams: Hyperparams, learning_rate: jax.Array | float | None = None,
                          anchor: Any = None) -> TrainState:
        """Train state starting at ``params``: target = params, fresh optimiser state; the L2-SP anchor defaults
        to the starting values of `l2sp_parts`."""
        opt_state = self.optimizer.init(params)
        if learning_rate is not None:
            opt_state.hyperparams["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
        if self.l2sp_parts and anchor is None:
            anchor = {part: params[part] for part in self.l2sp_parts}
        return TrainState(params=params, target_params=params, opt_state=opt_state, hparams=hparams,
                          anchor=anchor if self.l2sp_parts else None,
                          popart=popart.init(self.num_tasks) if self.popart else None)

    def greedy_actions(self, params, obs: jax.Array) -> jax.Array:
        """argmax over each task's valid actions: ``obs [T, N, ...]`` -> ``[T, N]`` int32."""
        q = self.q_values(params, obs)
        return jnp.argmax(losses.masked_q(q, self.action_mask[:, None, :]), axis=-1).astype(jnp.int32)

    def act(self, params, obs: jax.Array, key: jax.Array, eps: jax.Array) -> jax.Array:
        """ε-greedy over valid actions; ``eps [T]`` -> actions ``[T, N]`` int32."""
        greedy = self.greedy_actions(params, obs)
        k_explore, k_random = jax.random.split(key)
        num_actions = jnp.asarray(self.action_mask.sum(-1), jnp.int32)[:, None]
        random = jax.random.randint(k_random, greedy.shape, 0, num_actions)
        explore = jax.random.uniform(k_explore, greedy.shape) < eps[:, None]
        return jnp.where(explore, random, greedy)

    def task_losses(self, params, target_params, batch: replay.Transition, hparams: Hyperparams):
        """Per-task mean TD losses ``[T]``, TD errors ``[T, B]`` and the mean online Q of the batch's actions
        ``[T]`` (CleanRL's ``q_values``) for a batch ``[T, B, ...]``."""
        q_tm1 = self.q_values(params, batch.obs)
        q_t_value = self.q_values(target_params, batch.next_obs)
        q_t_selector = jax.lax.stop_gradient(self.q_values(params, batch.next_obs)) if self.double_q else None
        per_task, td = losses.multitask_td_loss(
            q_tm1,
            batch.action,
            batch.reward,
            batch.terminated,
            hparams.gammas,
            q_t_value,
            q_t_selector,
            jnp.asarray(self.action_mask),
            loss=self.loss,
            huber_delta=self.huber_delta,
            steps=batch.steps,
        )
        q_taken = losses.take_action(q_tm1, batch.action).mean(-1)
        return per_task, td, jax.lax.stop_gradient(q_taken)

    def update(self, state: TrainState, batch: replay.Transition) -> tuple[TrainState, dict[str, jax.Array]]:
        """One gradient step on L = Σₜ wₜ · meanᵢ ℓ over the ``[T, B]`` batch of all tasks (with PopArt, ℓ of the
        normalised TD errors, after the statistics' update: `mtrl.popart`).

        Returns the new state and metrics: ``loss [T]``, ``td_abs [T]`` (mean |TD error|; both in normalised units
        with PopArt), ``q_taken [T]`` (mean online Q of the batch's actions, unnormalised), ``grad_norm ()`` (before
        clipping); the last three NaN without ``diagnostics``.
        """
        if self.popart:
            return self._popart_update(state, batch)

        def total_loss(params):
            per_task, td, q_taken = self.task_losses(params, state.target_params, batch, state.hparams)
            return self._regularised(params, state, per_task), (per_task, td, q_taken)

        return self._apply_gradient(state, total_loss)

    def _regularised(self, params, state: TrainState, per_task: jax.Array) -> jax.Array:
        total = jnp.sum(state.hparams.task_weights * per_task)
        if self.l2sp_parts:
            total = total + state.hparams.l2sp_alpha * self.l2sp_penalty(params, state.anchor)
        return total

    def _apply_gradient(self, state: TrainState, total_loss) -> tuple[TrainState, dict[str, jax.Array]]:
        grads, (per_task, td, q_taken) = jax.grad(total_loss, has_aux=True)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if self.diagnostics:
            metrics = {"loss": per_task, "td_abs": jnp.abs(td).mean(-1), "q_taken": q_taken,
                       "grad_norm": optax.tree.norm(grads) if self.clips_gradients else _flat_norm(grads)}
        else:
            not_measured = jnp.full_like(per_task, jnp.nan)
            metrics = {"loss": per_task, "td_abs": not_measured, "q_taken": not_measured,
                       "grad_norm": jnp.full((), jnp.nan, jnp.float32)}
        return state.replace(params=params, opt_state=opt_state), metrics

    def _popart_update(self, state: TrainState, batch: replay.Transition) -> tuple[TrainState, dict[str, jax.Array]]:
        """PopArt's update (`mtrl.popart`): targets from the unnormalised target network, ART, POP on the online
        and target heads, then the gradient step on normalised errors."""
        old = state.popart
        q_t_value = popart.unnormalize(old, self.q_values(state.target_params, batch.next_obs))
        q_t_selector = self.q_values(state.params, batch.next_obs) if self.double_q else None
        targets = losses.multitask_targets(batch.reward, batch.terminated, state.hparams.gammas, q_t_value,
                                           q_t_selector, jnp.asarray(self.action_mask), steps=batch.steps)
        new = popart.update_statistics(old, targets, state.hparams.popart_step_size)
        state = state.replace(params=popart.preserve_outputs(state.params, old, new),
                              target_params=popart.preserve_outputs(state.target_params, old, new), popart=new)
        normalised_targets = popart.normalize(new, targets)

        def total_loss(params):
            q_tm1 = self.q_values(params, batch.obs)
            per_task, td = losses.multitask_loss_to_targets(q_tm1, batch.action, normalised_targets, self.loss,
                                                            self.huber_delta)
            q_taken = popart.unnormalize(new, jax.lax.stop_gradient(losses.take_action(q_tm1, batch.action))).mean(-1)
            return self._regularised(params, state, per_task), (per_task, td, q_taken)

        return self._apply_gradient(state, total_loss)

    def no_update_metrics(self) -> dict[str, jax.Array]:
        """Zeros with the structure of `update`'s metrics (one run): what an iteration without an update reports
        (NaN, not measured, for the diagnostics without ``diagnostics``). Declared rather than derived with
        `jax.eval_shape(update)`, which would trace the learner a second time in every training program (~0.4 s of
        tracing here); a test checks the two agree."""
        per_task = jnp.zeros((self.num_tasks,), jnp.float32)
        diagnostic = 0.0 if self.diagnostics else jnp.nan
        return {"loss": per_task, "td_abs": per_task + diagnostic, "q_taken": per_task + diagnostic,
                "grad_norm": jnp.full((), diagnostic, jnp.float32)}

    def l2sp_penalty(self, params, anchor) -> jax.Array:
        """‖θ − θ_anchor‖² summed over the leaves of `l2sp_parts` (L2-SP, Li et al. 2018)."""
        diffs = jax.tree.map(lambda p, a: jnp.sum(jnp.square(p - a)), {k: params[k] for k in self.l2sp_parts}, anchor)
        return sum(jax.tree.leaves(diffs))

    def update_target(self, state: TrainState) -> TrainState:
        """target ← τ·online + (1−τ)·target (τ = 1: hard copy)."""
        target = optax.incremental_update(state.params, state.target_params, state.hparams.tau)
        return state.replace(target_params=target)


def default_hparams(taskset: TaskSet, config: DQNConfig) -> Hyperparams:
    """Hyperparameters of one run from the config; a task's spec `gamma`, `eps_start`, `eps_end` and
    `eps_decay_fraction` override the config's for that task."""
    num_tasks = taskset.num_tasks
    gammas = taskset.gammas(config.gamma)
    # decay steps in float64, then float32 (as every committed result was computed)
    decay_fractions = taskset.learner_values("eps_decay_fraction", config.eps_decay_fraction, np.float64)
    weights = np.ones(num_tasks, np.float32) if config.task_weights is None else np.asarray(config.task_weights)
    return Hyperparams(
        gammas=jnp.asarray(gammas),
        task_weights=jnp.asarray(weights, jnp.float32),
        eps_start=jnp.asarray(taskset.learner_values("eps_start", config.eps_start)),
        eps_end=jnp.asarray(taskset.learner_values("eps_end", config.eps_end)),
        eps_decay_steps=jnp.asarray(np.maximum(1.0, decay_fractions * config.total_steps), jnp.float32),
        tau=jnp.asarray(config.tau, jnp.float32),
        l2sp_alpha=jnp.asarray(0.0, jnp.float32),
        popart_step_size=(jnp.asarray(config.popart_step_size, jnp.float32)
                          if config.loss_aggregation == "popart" else None),
    )
