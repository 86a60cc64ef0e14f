"""Greedy evaluation in jit, normalised scores, transfer metrics, and statistics across seeds and tasks.

`make_evaluator` returns a jitted function that plays a fixed number of greedy episodes of every task for every
run at once; `random_returns` does the same with a uniformly random policy (the normaliser's floor).
Statistics use scipy (already a jax dependency): `scipy.stats.trim_mean` for the interquartile mean and
`scipy.stats.bootstrap` (percentile) for 95% intervals across seeds. The stratified bootstrap over
(seeds × tasks) and the probability of improvement follow rliable (Agarwal et al., 2021) but are written here:
rliable pulls in pandas/arch/seaborn for ~40 lines of numpy, and its API expects dicts of score matrices that
the transfer tables would have to be reshaped into anyway.

Axes: ``S`` runs (seeds/settings), ``T`` tasks, ``E`` evaluation episodes per task (for curves: evaluations).
"""

from __future__ import annotations

import warnings
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
    return jax.jit(jax.vmap(_episode_returns(taskset, num_episodes, lambda p, obs, _: agent.greedy_actions(p, obs))))


def random_returns(taskset: TaskSet, num_episodes: int = 1000, seed: int = 0) -> np.ndarray:
    """Mean return ``[T]`` of a uniformly random policy over each task's valid actions."""
    num_actions = jnp.asarray(taskset.action_mask.sum(-1), jnp.int32)[:, None]

    def policy(_, obs, key):
        return jax.random.randint(key, obs.shape[:2], 0, num_actions)

    returns = jax.jit(_episode_returns(taskset, num_episodes, policy))(None, jax.random.key(seed))
    return np.asarray(returns).mean(-1)


def _episode_returns(taskset: TaskSet, num_episodes: int, policy: Callable):
    """``one_run(params, key) -> returns [T, E]`` of ``policy(params, obs [T, E, ...], key) -> actions [T, E]``."""
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
            actions = policy(params, obs, jax.random.fold_in(k_step, 1))
            obs, env_states, reward, terminated, truncated, _ = taskset.step(k_step, env_states, actions)
            returns = returns + jnp.where(done, 0.0, reward)
            done = done | terminated | truncated
            return obs, env_states, returns, done, key, t + 1

        init = (obs, env_states, jnp.zeros(shape, jnp.float32), jnp.zeros(shape, bool), k_loop, jnp.int32(0))
        return jax.lax.while_loop(cond, body, init)[2]

    return one_run


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


# --- normalised scores and transfer metrics ------------------------------------------------------------------

# Reference ("good") returns per env id for normalisation; the floor is the random policy's measured return.
# CartPole-v1: the maximum episode return (500 steps). Acrobot-v1: gymnax's published PPO return (-80, 500k
# steps). MountainCar-v0: Gym's "solved" threshold (-110; gymnax PPO reached -118). See
# ../shared/reference/returns.csv for the published figures.
REFERENCE_RETURNS = {"CartPole-v1": 500.0, "Acrobot-v1": -80.0, "MountainCar-v0": -110.0}


def reference_return(spec: str) -> float:
    """The reference return of a task spec's env id; `ValueError` naming the known ids otherwise."""
    env_id = spec.split(":")[0]
    if env_id not in REFERENCE_RETURNS:
        raise ValueError(f"no reference return for {env_id!r}; known: {', '.join(sorted(REFERENCE_RETURNS))}")
    return REFERENCE_RETURNS[env_id]


def normalise(returns: np.ndarray, random: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(R − R_random) / (R_ref − R_random); ``random``/``reference`` broadcast against ``returns``."""
    return (np.asarray(returns, np.float64) - random) / (np.asarray(reference, np.float64) - random)


def area_under_curve(steps: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Trapezoid area of ``curve [..., E]`` over ``steps [E]``, divided by the step range (= mean height)."""
    steps = np.asarray(steps, np.float64)
    return np.trapezoid(curve, steps, axis=-1) / (steps[-1] - steps[0])


def time_to_threshold(steps: np.ndarray, curve: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Env steps until ``curve [..., E]`` first reaches ``threshold``: ``(steps [...], censored [...])``.

    Runs that never reach it are censored: their entry is the last evaluated step (a lower bound).
    """
    reached = np.asarray(curve) >= threshold
    censored = ~reached.any(-1)
    first = np.argmax(reached, axis=-1)
    values = np.where(censored, steps[-1], np.asarray(steps)[first]).astype(np.float64)
    return values, censored


def transfer_metrics(steps: np.ndarray, transfer: np.ndarray, scratch: np.ndarray, last_k: int = 3,
                     threshold: float = 0.95, source_steps: float = 0.0) -> dict[str, np.ndarray]:
    """Per-seed, per-task transfer metrics from normalised greedy curves ``[S, T, E]`` at ``steps [E]``.

    Seeds are paired: run s of ``transfer`` is compared with run s of ``scratch`` (same seed). Returns arrays
    ``[S, T]``: ``jumpstart`` (first evaluation, before any target update, minus scratch's), ``asymptotic``
    (mean of the last ``last_k`` evaluations minus scratch's), ``auc`` / ``auc_scratch`` (mean normalised return
    over the run), ``transfer_ratio`` ((AUC − AUC_scratch) / AUC_scratch; NaN where AUC_scratch ≤ 0),
    ``time_to_threshold`` / ``time_to_threshold_scratch`` (target env steps; censored entries hold the last
    step), ``time_to_threshold_with_source`` (plus ``source_steps``), and boolean ``censored`` /
    ``censored_scratch``.
    """
    transfer, scratch = np.asarray(transfer, np.float64), np.asarray(scratch, np.float64)
    if transfer.shape != scratch.shape or transfer.shape[-1] != len(steps):
        raise ValueError(f"curves must both be [S, T, E={len(steps)}]; got {transfer.shape} and {scratch.shape}")
    if not 1 <= last_k <= len(steps):
        raise ValueError(f"last_k must be in [1, {len(steps)}] (the number of evaluations), got {last_k}")
    auc, auc_scratch = area_under_curve(steps, transfer), area_under_curve(steps, scratch)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(auc_scratch > 0, (auc - auc_scratch) / auc_scratch, np.nan)
    ttt, censored = time_to_threshold(steps, transfer, threshold)
    ttt_scratch, censored_scratch = time_to_threshold(steps, scratch, threshold)
    return {
        "jumpstart": transfer[..., 0] - scratch[..., 0],
        "asymptotic": transfer[..., -last_k:].mean(-1) - scratch[..., -last_k:].mean(-1),
        "auc": auc,
        "auc_scratch": auc_scratch,
        "transfer_ratio": ratio,
        "time_to_threshold": ttt,
        "time_to_threshold_scratch": ttt_scratch,
        "time_to_threshold_with_source": ttt + source_steps,
        "censored": censored,
        "censored_scratch": censored_scratch,
    }


def stratified_bootstrap_ci(x: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], confidence: float = 0.95,
                            resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over the pooled values of ``x [S, T]``, resampling seeds with
    replacement within each task (stratified by task). ``statistic`` maps ``[R, S*T] -> [R]``; NaNs are dropped
    by the statistics below."""
    x = np.asarray(x, np.float64)
    num_seeds, num_tasks = x.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num_seeds, size=(resamples, num_seeds, num_tasks))
    samples = np.take_along_axis(x[None], idx, axis=1).reshape(resamples, -1)
    values = statistic(samples)
    alpha = (1 - confidence) / 2
    return float(np.nanquantile(values, alpha)), float(np.nanquantile(values, 1 - alpha))


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    return np.array([iqm(row[~np.isnan(row)]) if np.any(~np.isnan(row)) else np.nan for row in np.atleast_2d(x)])


def _mean_rows(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # rows that are all NaN (e.g. an undefined transfer ratio) give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.atleast_2d(x), axis=-1)


def aggregate(x: np.ndarray, seed: int = 0) -> dict[str, float]:
    """IQM and mean over all (seed, task) values of ``x [S, T]`` with stratified-bootstrap 95% intervals."""
    x = np.asarray(x, np.float64)
    iqm_low, iqm_high = stratified_bootstrap_ci(x, _iqm_rows, seed=seed)
    mean_low, mean_high = stratified_bootstrap_ci(x, _mean_rows, seed=seed)
    return {"iqm": float(_iqm_rows(x.reshape(1, -1))[0]), "iqm_ci": [iqm_low, iqm_high],
            "mean": float(_mean_rows(x.reshape(1, -1))[0]), "mean_ci": [mean_low, mean_high]}


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for ``x, y [S, T]`` (higher is better): per task the fraction of run pairs (i, j) with
    x_i > y_j, ties counting ½ (the Mann–Whitney U statistic / S²), averaged over tasks."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    greater = (x[:, None, :] > y[None, :, :]).mean((0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean((0, 1))
    return float(np.mean(greater + 0.5 * ties))


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, confidence: float = 0.95, resamples: int = 1000,
                                  seed: int = 0) -> tuple[float, float]:
    """Stratified bootstrap interval of `probability_of_improvement` (seeds resampled within each task)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng(seed)
    num_seeds = x.shape[0]
    values = []
    for _ in range(resamples):
        ix = rng.integers(0, num_seeds, size=x.shape)
        iy = rng.integers(0, num_seeds, size=y.shape)
        values.append(probability_of_improvement(np.take_along_axis(x, ix, 0), np.take_along_axis(y, iy, 0)))
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))
