"""What an evaluation's returns are measured against: their label, reference returns, normalised scores, and the
transfer metrics of normalised curves (jumpstart, final gain, area under the curve, time to threshold, transfer
ratio). Plain numpy.

Axes: ``S`` runs (seeds), ``T`` tasks, ``E`` evaluations.
"""

from __future__ import annotations

import numpy as np

from mtrl.statistics import _stratified_indices


def return_label(epsilon: float = 0.0) -> str:
    """What an evaluation's returns are, for tables and axes: ``greedy return`` or ``return (evaluation ε 0.05)``."""
    return "greedy return" if not epsilon else f"return (evaluation ε {epsilon:g})"


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
