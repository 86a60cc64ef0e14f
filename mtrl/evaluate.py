"""Greedy evaluation in jit, and statistics across seeds.

`make_evaluator` returns a jitted function that plays a fixed number of greedy episodes of every task for every
run at once. Statistics use scipy (already a jax dependency): `scipy.stats.trim_mean` for the interquartile
mean and `scipy.stats.bootstrap` (percentile) for 95% intervals across seeds. rliable would do the same with a
pandas/arch dependency tree for a handful of lines, so it is not used.

Axes: ``S`` runs (seeds/settings), ``T`` tasks, ``E`` evaluation episodes per task.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from mtrl.agent import Agent
from mtrl.tasks import TaskSet


def make_evaluator(agent: Agent, taskset: TaskSet, num_episodes: int) -> Callable[[object, jax.Array], jax.Array]:
    """Build ``evaluate(params [S, ...], keys [S]) -> returns [S, T, E]`` (jitted).

    Each of the E envs per task plays one greedy episode (no exploration) from a fresh reset; the loop runs
    until every episode has ended, at most the longest `max_steps_in_episode` of the task set.
    """
    max_steps = taskset.max_episode_steps

    def one_run(params, key):
        k_reset, k_loop = jax.random.split(key)
        obs, env_states = taskset.reset(k_reset, num_episodes)
        shape = (taskset.num_tasks, num_episodes)

        def cond(carry):
            _, _, _, done, _, t = carry
            return jnp.logical_and(~jnp.all(done), t < max_steps)

        def body(carry):
            obs, env_states, returns, done, key, t = carry
            key, k_step = jax.random.split(key)
            actions = agent.greedy_actions(params, obs)
            obs, env_states, reward, terminated, truncated, _ = taskset.step(k_step, env_states, actions)
            returns = returns + jnp.where(done, 0.0, reward)
            done = done | terminated | truncated
            return obs, env_states, returns, done, key, t + 1

        init = (obs, env_states, jnp.zeros(shape, jnp.float32), jnp.zeros(shape, bool), k_loop, jnp.int32(0))
        return jax.lax.while_loop(cond, body, init)[2]

    return jax.jit(jax.vmap(one_run))


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: mean of the middle 50% (25% trimmed from each end)."""
    return stats.trim_mean(np.asarray(x, np.float64), 0.25, axis=axis)


def bootstrap_ci(
    x: np.ndarray, statistic: Callable = np.mean, axis: int = 0, confidence: float = 0.95, seed: int = 0,
    resamples: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``statistic`` over ``axis`` (seeds). With one sample it is the point."""
    x = np.asarray(x, np.float64)
    if x.shape[axis] < 2 or np.all(x == np.take(x, [0], axis=axis)):
        point = statistic(x, axis=axis)
        return point, point
    result = stats.bootstrap(
        (x,), statistic, axis=axis, confidence_level=confidence, n_resamples=resamples,
        method="percentile", rng=np.random.default_rng(seed), vectorized=True,
    )
    return result.confidence_interval.low, result.confidence_interval.high


def summarize(per_seed: np.ndarray) -> dict[str, object]:
    """Mean, IQM and bootstrap 95% CI (of the mean) of one value per seed ``[S]``."""
    per_seed = np.asarray(per_seed, np.float64)
    low, high = bootstrap_ci(per_seed)
    return {
        "mean": float(per_seed.mean()),
        "iqm": float(iqm(per_seed)),
        "ci_low": float(low),
        "ci_high": float(high),
        "per_seed": [float(v) for v in per_seed],
    }
