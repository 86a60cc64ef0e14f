"""Evaluation in jit, normalised scores, transfer metrics, and statistics across seeds and tasks.

`make_evaluator` returns a jitted function that plays a fixed number of greedy (or ε-greedy) episodes of every task
for every run at once; `random_returns` does the same with a uniformly random policy (the normaliser's floor).
Statistics use scipy (already a jax dependency): `scipy.stats.trim_mean` for the interquartile mean and
`scipy.stats.bootstrap` (percentile) for 95% intervals across seeds. The stratified bootstrap over
(seeds × tasks) and the probability of improvement follow rliable (Agarwal et al., 2021) but are written here:
rliable pulls in pandas/arch/seaborn for ~40 lines of numpy, and its API expects dicts of score matrices that
the transfer tables would have to be reshaped into anyway.

Axes: ``S`` runs (seeds/settings), ``T`` tasks, ``E`` evaluation episodes per task (for curves: evaluations).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

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


def return_label(epsilon: float = 0.0) -> str:
    """What an evaluation's returns are, for tables and axes: ``greedy return`` or ``return (evaluation ε 0.05)``."""
    return "greedy return" if not epsilon else f"return (evaluation ε {epsilon:g})"


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


def iqm_ci(per_seed: np.ndarray) -> tuple[float, float]:
    """Bootstrap 95% interval of the IQM of one value per seed ``[S]`` (the interval to print next to an IQM;
    with fewer than 4 seeds the IQM is the mean, and so is its interval)."""
    low, high = bootstrap_ci(np.asarray(per_seed, np.float64), iqm)
    return float(low), float(high)


def iqm_interval(summary: Mapping[str, Any]) -> tuple[float, float]:
    """The IQM's 95% interval of a `summarize` result: its stored ``iqm_ci_low``/``iqm_ci_high``, or computed from
    ``per_seed`` for summaries written before they were stored."""
    if "iqm_ci_low" in summary:
        return summary["iqm_ci_low"], summary["iqm_ci_high"]
    return iqm_ci(summary["per_seed"])


def summarize(per_seed: np.ndarray) -> dict[str, object]:
    """Mean with its bootstrap 95% CI (``ci_low``, ``ci_high``) and IQM with its own (``iqm_ci_low``,
    ``iqm_ci_high``) of one value per seed ``[S]``."""
    per_seed = np.asarray(per_seed, np.float64)
    low, high = bootstrap_ci(per_seed)
    iqm_low, iqm_high = iqm_ci(per_seed)
    return {
        "mean": float(per_seed.mean()),
        "iqm": float(iqm(per_seed)),
        "ci_low": float(low),
        "ci_high": float(high),
        "iqm_ci_low": iqm_low,
        "iqm_ci_high": iqm_high,
        "per_seed": [float(v) for v in per_seed],
    }


# --- normalised scores and transfer metrics ------------------------------------------------------------------

# Reference ("good") returns of each env id with gymnax's default `EnvParams`; the normaliser's floor is the random
# policy's measured return. CartPole-v1: the maximum episode return (one reward per step, so `max_steps_in_episode`;
# computed per spec). Acrobot-v1: gymnax's published PPO return (-80, gymnax README; after 500k steps, the
# `num_train_steps` of gymnax-blines' agents/Acrobot-v1/ppo.yaml). MountainCar-v0: Gym's "solved" threshold (-110;
# gymnax's PPO reached -118). A spec that changes the environment gets CartPole's computed maximum or an error: the
# published figures hold only for the default parameters.
REFERENCE_RETURNS = {"CartPole-v1": 500.0, "Acrobot-v1": -80.0, "MountainCar-v0": -110.0}
REFERENCE_SOURCES = {
    "CartPole-v1": "maximum return (max_steps_in_episode)",
    "Acrobot-v1": "gymnax README's PPO return; 500k steps: gymnax-blines' agents/Acrobot-v1/ppo.yaml",
    "MountainCar-v0": "Gym's solved threshold",
}


def reference_return(spec: str, references: dict[str, float] | None = None) -> float:
    """The reference return of a task spec *as configured*.

    ``references`` (spec -> return) wins where one of its specs names the same task, however written
    (`mtrl.tasks.find_spec`). Otherwise CartPole-v1's is its episode limit
    (the maximum return of that variant); Acrobot-v1's and MountainCar-v0's published figures are used only when
    the spec leaves the environment's parameters at their defaults (learner fields such as ``gamma`` aside).
    Raises `ValueError` naming the spec, what it changes, and how to give a reference.
    """
    from mtrl.tasks import changed_env_fields, find_spec, parse_task

    named = next((key for key in references or {} if find_spec(key, [spec])), None)
    if named is not None:
        return float(references[named])

    task = parse_task(spec)
    if task.env_id == "CartPole-v1":
        return float(task.params.max_steps_in_episode)
    if task.env_id not in REFERENCE_RETURNS:
        raise ValueError(f"no reference return for {task.env_id!r} (known: {', '.join(sorted(REFERENCE_RETURNS))}); "
                         f"pass references={{{spec!r}: R}} (the return that counts as solving this task)")
    changed = changed_env_fields(task)
    if changed:
        raise ValueError(f"no reference return for {spec!r}: {task.env_id}'s published reference "
                         f"({REFERENCE_RETURNS[task.env_id]:g}) holds for its default parameters and this spec changes "
                         f"{', '.join(changed)}; pass references={{{spec!r}: R}} (CLI: --reference SPEC=R) for "
                         "this variant")
    return REFERENCE_RETURNS[task.env_id]


def normalise(returns: np.ndarray, random: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(R − R_random) / (R_ref − R_random); ``random``/``reference`` broadcast against ``returns``."""
    return (np.asarray(returns, np.float64) - random) / (np.asarray(reference, np.float64) - random)


def area_under_curve(steps: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Trapezoid area of ``curve [..., E]`` over ``steps [E]``, divided by the step range (= mean height)."""
    steps = np.asarray(steps, np.float64)
    return np.trapezoid(curve, steps, axis=-1) / (steps[-1] - steps[0])


def time_to_threshold(steps: np.ndarray, curve: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Env steps until ``curve [..., E]`` first reaches ``threshold``: ``(steps [...], censored [...])``.

    Runs that never reach it are censored: their entry is ``inf`` (they were not seen to reach it within the
    budget, ``steps[-1]``); summarise with `threshold_summary`, never with a mean or IQM.
    """
    reached = np.asarray(curve) >= threshold
    censored = ~reached.any(-1)
    first = np.argmax(reached, axis=-1)
    values = np.where(censored, np.inf, np.asarray(steps, np.float64)[first])
    return values, censored


def check_last_k(last_k: int, evaluations: int) -> None:
    """``last_k`` (evaluations averaged for the final gain) must be in [1, ``evaluations``]."""
    if not 1 <= last_k <= evaluations:
        raise ValueError(f"last_k must be in [1, {evaluations}] (the number of evaluations), got {last_k}")


def transfer_metrics(steps: np.ndarray, transfer: np.ndarray, scratch: np.ndarray, last_k: int = 3,
                     threshold: float = 0.95, source_steps: float = 0.0) -> dict[str, np.ndarray]:
    """Per-seed, per-task transfer metrics from normalised evaluation curves ``[S, T, E]`` at ``steps [E]``.

    Seeds are paired: run s of ``transfer`` is compared with run s of ``scratch`` (same seed). Returns arrays
    ``[S, T]``: ``jumpstart`` (first evaluation, before any target update, minus scratch's), ``final_gain``
    (mean of the last ``last_k`` evaluations minus scratch's: a gain at the end of the budget, which is the
    asymptotic gain only if both runs have converged), ``auc`` / ``auc_scratch`` (mean normalised return over the
    run), ``time_to_threshold`` / ``time_to_threshold_scratch`` (target env steps; ``inf`` where censored),
    ``time_to_threshold_with_source`` (plus ``source_steps``), and boolean ``censored`` / ``censored_scratch``.
    The transfer ratio is a ratio of summed areas over runs (`transfer_ratio`), not a per-seed quantity.
    """
    transfer, scratch = np.asarray(transfer, np.float64), np.asarray(scratch, np.float64)
    if transfer.shape != scratch.shape or transfer.shape[-1] != len(steps):
        raise ValueError(f"curves must both be [S, T, E={len(steps)}]; got {transfer.shape} and {scratch.shape}")
    check_last_k(last_k, len(steps))
    ttt, censored = time_to_threshold(steps, transfer, threshold)
    ttt_scratch, censored_scratch = time_to_threshold(steps, scratch, threshold)
    return {
        "jumpstart": transfer[..., 0] - scratch[..., 0],
        "final_gain": transfer[..., -last_k:].mean(-1) - scratch[..., -last_k:].mean(-1),
        "auc": area_under_curve(steps, transfer),
        "auc_scratch": area_under_curve(steps, scratch),
        "time_to_threshold": ttt,
        "time_to_threshold_scratch": ttt_scratch,
        "time_to_threshold_with_source": ttt + source_steps,
        "censored": censored,
        "censored_scratch": censored_scratch,
    }


def transfer_ratio(auc: np.ndarray, auc_scratch: np.ndarray) -> float:
    """Taylor & Stone's transfer ratio of areas, (ΣAUC − ΣAUC_scratch) / ΣAUC_scratch over all (seed, task)
    pairs; NaN (undefined) where the scratch area ΣAUC_scratch is ≤ 0."""
    total, total_scratch = float(np.sum(auc)), float(np.sum(auc_scratch))
    return (total - total_scratch) / total_scratch if total_scratch > 0 else float("nan")


def transfer_ratio_ci(auc: np.ndarray, auc_scratch: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """Paired, stratified bootstrap interval of `transfer_ratio` for ``auc, auc_scratch [S, T]``: the same seeds
    are drawn for both (they are paired by seed), within each task. Resamples whose scratch area is ≤ 0 are
    undefined and left out; (NaN, NaN) when none is defined."""
    auc, auc_scratch = np.asarray(auc, np.float64), np.asarray(auc_scratch, np.float64)
    idx = _stratified_indices(auc.shape, resamples, seed)
    a = np.take_along_axis(auc[None], idx, axis=1).sum((1, 2))
    b = np.take_along_axis(auc_scratch[None], idx, axis=1).sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(b > 0, (a - b) / b, np.nan)
    if np.all(np.isnan(ratios)):
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    return float(np.nanquantile(ratios, alpha)), float(np.nanquantile(ratios, 1 - alpha))


def kaplan_meier_median(times: np.ndarray, censored: np.ndarray) -> float:
    """Median of right-censored times by the Kaplan–Meier estimator; ``inf`` ("not reached") when the estimated
    fraction not yet reached never drops to ½ or below.

    ``times`` are event times where ``censored`` is False, censoring times where it is True (``inf`` means
    censored at the end of the budget). Events at a time count before censorings at the same time.
    """
    times = np.asarray(times, np.float64).ravel()
    censored = np.asarray(censored, bool).ravel()
    survival = 1.0
    for t in np.unique(times[~censored]):
        events = int(np.sum((times == t) & ~censored))
        at_risk = int(np.sum(times >= t))
        survival *= 1.0 - events / at_risk
        if survival <= 0.5:
            return float(t)
    return float("inf")


def threshold_summary(times: np.ndarray, censored: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> dict[str, object]:
    """Time to threshold over ``[S, T]`` runs, censoring respected: how many reached it, the Kaplan–Meier median
    (None = not reached: fewer than half are estimated to reach it) and a stratified-bootstrap percentile
    interval of that median (an end of None = not reached in that share of resamples)."""
    times = np.where(np.asarray(censored, bool), np.inf, np.asarray(times, np.float64))
    censored = np.asarray(censored, bool)
    idx = _stratified_indices(times.shape, resamples, seed)
    t = np.take_along_axis(times[None], idx, axis=1)
    c = np.take_along_axis(censored[None], idx, axis=1)
    medians = np.array([kaplan_meier_median(t[r], c[r]) for r in range(resamples)])
    alpha = (1 - confidence) / 2
    low, high = (float(np.quantile(medians, q, method="inverted_cdf")) for q in (alpha, 1 - alpha))
    finite = lambda v: v if np.isfinite(v) else None  # noqa: E731
    return {"reached": int((~censored).sum()), "runs": int(censored.size),
            "fraction_reached": float((~censored).mean()),
            "median": finite(kaplan_meier_median(times, censored)), "median_ci": [finite(low), finite(high)]}


def _stratified_indices(shape: tuple[int, int], resamples: int, seed: int) -> np.ndarray:
    """``[R, S, T]`` seed indices drawn with replacement within each task column of an ``[S, T]`` array."""
    num_seeds, num_tasks = shape
    return np.random.default_rng(seed).integers(0, num_seeds, size=(resamples, num_seeds, num_tasks))


def stratified_bootstrap_ci(x: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], confidence: float = 0.95,
                            resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over the pooled values of ``x [S, T]``, resampling seeds with
    replacement within each task (stratified by task). ``statistic`` maps ``[R, S*T] -> [R]``; NaNs are dropped
    by the statistics below."""
    x = np.asarray(x, np.float64)
    idx = _stratified_indices(x.shape, resamples, seed)
    samples = np.take_along_axis(x[None], idx, axis=1).reshape(resamples, -1)
    values = statistic(samples)
    alpha = (1 - confidence) / 2
    return float(np.nanquantile(values, alpha)), float(np.nanquantile(values, 1 - alpha))


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    """IQM of each row of ``x [R, K]`` over its non-NaN values (NaN for a row with none). Rows with the same
    number of values share one `iqm` call (a stable sort on "is NaN" moves NaNs to the end and keeps the values'
    order, so each row's result is bit-identical to its own call): a bootstrap's 2000 rows in a few calls."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    x = np.take_along_axis(x, np.argsort(np.isnan(x), axis=-1, kind="stable"), axis=-1)
    counts = (~np.isnan(x)).sum(-1)
    out = np.full(x.shape[0], np.nan)
    for count in np.unique(counts[counts > 0]):
        rows = counts == count
        out[rows] = iqm(x[rows, :count], axis=1)
    return out


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
    values = []
    for _ in range(resamples):  # each algorithm's runs resampled within each task, independently
        ix = rng.integers(0, x.shape[0], size=x.shape)
        iy = rng.integers(0, y.shape[0], size=y.shape)
        values.append(probability_of_improvement(np.take_along_axis(x, ix, 0), np.take_along_axis(y, iy, 0)))
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))
