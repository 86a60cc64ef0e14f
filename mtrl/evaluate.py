"""Evaluation in jit: whole episodes of every task for every run in one compiled loop.

`make_evaluator` returns a jitted function that plays a fixed number of greedy (or ε-greedy) episodes of every task
for every run at once; `random_returns` does the same with a uniformly random policy (the normaliser's floor);
`episode_recorder` plays one episode step by step and keeps it. What the returns are measured against is in
`mtrl.scores`, statistics across seeds in `mtrl.statistics`.

Axes: ``S`` runs (seeds/settings), ``T`` tasks, ``E`` evaluation episodes per task.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtrl.agent import Agent
from mtrl.tasks import TaskSet


def make_evaluator(agent: Agent, taskset: TaskSet, num_episodes: int, discounts: np.ndarray | None = None,
                   epsilon: float = 0.0) -> Callable[[object, jax.Array], jax.Array]:
    """Build ``evaluate(params [S, ...], keys [S]) -> returns [S, T, E]`` (jitted).

    Each of the E envs per task plays one episode from a fresh reset, greedily, or with ``epsilon`` > 0 taking a
    uniformly random valid action with that probability at each step; the loop runs until every episode has ended,
    at most the longest `max_steps_in_episode` of the task set. With ``discounts [T]`` it returns
    ``(returns, discounted_returns)``, the second Σₜ γᵗ rₜ per episode.
    """
    check_epsilon(epsilon)
    if epsilon > 0:
        eps = jnp.full((taskset.num_tasks,), epsilon, jnp.float32)
        policy = lambda p, obs, key: agent.act(p, obs, key, eps)  # noqa: E731
    else:  # draws nothing from its key: the same program as before ε existed
        policy = lambda p, obs, _: agent.greedy_actions(p, obs)  # noqa: E731
    one_run = episode_loop(taskset, num_episodes, policy, discounts)
    if discounts is None:
        return jax.jit(jax.vmap(lambda p, k: one_run(p, k)[0]))
    return jax.jit(jax.vmap(one_run))


def iteration_keys(eval_keys: jax.Array, iteration: jax.Array) -> jax.Array:
    """Evaluation keys ``[S]`` of an evaluation at ``iteration``: each run's evaluation key folded with it (the
    stream never advances, so any checkpoint's evaluation can be replayed; traceable)."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(eval_keys, iteration)


def check_epsilon(epsilon: Any, name: str = "epsilon") -> None:
    """Raise `ValueError` naming ``name`` unless ``epsilon`` is a number in [0, 1] (an evaluation's ε)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (0 = greedy), got {epsilon!r}")


def random_returns(taskset: TaskSet, num_episodes: int = 1000, seed: int = 0) -> np.ndarray:
    """Mean return ``[T]`` of a uniformly random policy over each task's valid actions."""
    num_actions = jnp.asarray(taskset.action_mask.sum(-1), jnp.int32)[:, None]

    def policy(_, obs, key):
        return jax.random.randint(key, obs.shape[:2], 0, num_actions)

    returns = jax.jit(episode_loop(taskset, num_episodes, policy))(None, jax.random.key(seed))[0]
    return np.asarray(returns).mean(-1)


def step_keys(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One evaluation step's keys from the loop's key: ``(next loop key, env step key, policy key)``, three
    children of one split. jax's splits are prefix-stable (``split(k, 3)[:2] == split(k, 2)`` for its default
    threefry and for philox keys; tested), so the loop and env keys are those of a two-way split: greedy
    evaluations, whose policy draws nothing, do not depend on the third key."""
    return tuple(jax.random.split(key, 3))


def episode_loop(taskset: TaskSet, num_episodes: int, policy: Callable, discounts: np.ndarray | None = None):
    """``one_run(params, key) -> (returns [T, E], discounted returns [T, E])`` of ``policy(params, obs [T, E, ...],
    key) -> actions [T, E]``; discounts ``[T]`` (default 1: the discounted return is the return)."""
    max_steps = taskset.max_episode_steps
    gammas = jnp.ones((taskset.num_tasks, 1), jnp.float32) if discounts is None else \
        jnp.asarray(discounts, jnp.float32).reshape(-1, 1)

    def one_run(params, key):
        k_reset, k_loop = jax.random.split(key)
        obs, env_states = taskset.reset(k_reset, num_episodes)
        shape = (taskset.num_tasks, num_episodes)

        def cond(carry):
            done, t = carry[3], carry[-1]
            return jnp.logical_and(~jnp.all(done), t < max_steps)

        def body(carry):
            obs, env_states, returns, done, key, discounted, scale, t = carry
            key, k_step, k_policy = step_keys(key)
            actions = policy(params, obs, k_policy)
            obs, env_states, reward, terminated, truncated, _ = taskset.step(k_step, env_states, actions)
            returns = returns + jnp.where(done, 0.0, reward)
            discounted = discounted + jnp.where(done, 0.0, scale * reward)
            done = done | terminated | truncated
            return obs, env_states, returns, done, key, discounted, scale * gammas, t + 1

        zeros = jnp.zeros(shape, jnp.float32)
        init = (obs, env_states, zeros, jnp.zeros(shape, bool), k_loop, zeros, jnp.ones(shape, jnp.float32),
                jnp.int32(0))
        out = jax.lax.while_loop(cond, body, init)
        return out[2], out[5]

    return one_run


def episode_recorder(taskset: TaskSet, max_steps: int, policy: Callable):
    """``record(params, key) -> (obs [L, *obs_shape], actions [L], rewards [L], steps, ended, final_obs [*obs_shape])``
    of one episode of task 0 of ``taskset`` (one env), at most ``L = max_steps`` steps: the observation before each
    action (rows from ``steps`` on are zeros), how many steps were played, whether the episode ended (terminated or
    truncated) at the last of them, and the observation after it (the true final one where it ended). ``policy`` as
    for `episode_loop`, whose keys it uses: with the same key, its first episode is this one."""

    def record(params, key):
        k_reset, k_loop = jax.random.split(key)
        obs, env_states = taskset.reset(k_reset, 1)
        buffers = (jnp.zeros((max_steps,) + obs.shape[2:], obs.dtype), jnp.zeros((max_steps,), jnp.int32),
                   jnp.zeros((max_steps,), jnp.float32))

        def cond(carry):
            t, ended = carry[0], carry[1]
            return jnp.logical_and(~ended, t < max_steps)

        def body(carry):
            t, _, obs, env_states, key, (observations, actions, rewards) = carry
            key, k_step, k_policy = step_keys(key)
            action = policy(params, obs, k_policy)
            next_obs, env_states, reward, terminated, truncated, final_obs = taskset.step(k_step, env_states, action)
            ended = terminated[0, 0] | truncated[0, 0]
            buffers = (observations.at[t].set(obs[0, 0]), actions.at[t].set(action[0, 0].astype(jnp.int32)),
                       rewards.at[t].set(reward[0, 0]))
            return t + 1, ended, jnp.where(ended, final_obs, next_obs), env_states, key, buffers

        steps, ended, last_obs, _, _, (observations, actions, rewards) = jax.lax.while_loop(
            cond, body, (jnp.int32(0), jnp.bool_(False), obs, env_states, k_loop, buffers))
        return observations, actions, rewards, steps, ended, last_obs[0, 0]

    return record
