"""A sweep's comparison of its settings: per-setting final returns and AUC with intervals over seeds, the best
setting by a stated criterion, and sweep.json / sweep.md / sweep.png (`mtrl.sweeps`).

Axes: ``E`` evaluations, ``R`` runs (settings x seeds, setting-major), ``T`` tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mtrl.sweep_grid import SHAPE_STATIC, format_value, setting_label


def sweep_results(settings: list[dict[str, float]], task_names: list[str], seeds: list[int],
                  eval_steps: np.ndarray, eval_returns: np.ndarray, diverged: Mapping[int, int] | None = None,
                  eval_epsilon: float = 0.0) -> dict[str, Any]:
    """Per setting (runs in setting-major order on the run axis of ``eval_returns [E, R, T]``): each task's final
    evaluation return and the score, the final return averaged over tasks (IQM and 95% interval over seeds), the
    area under the curve (return averaged over the evaluations and tasks; same statistics), and ``diverged``
    (seed -> env steps per task where it was frozen; ``diverged`` maps run index -> step). With several tasks also
    ``normalised_score``: each run's final return on each task mapped to the sweep's range on that task (0 = the
    lowest run, 1 = the highest, among settings where no seed diverged; `range_normalised`), averaged over tasks,
    so that every task weighs the same and not the one with the widest returns. The best setting is the one with
    the highest IQM of the score (one task) or of the normalised score (several) among those where no seed diverged
    (among all when every one did). Returns are ε-greedy ones (recorded as ``eval_epsilon``) when the sweep's
    config evaluates at ``eval_epsilon`` > 0."""
    from mtrl.scores import return_label
    from mtrl.statistics import summarize

    n = len(seeds)
    returns = np.asarray(eval_returns, np.float64)  # [E, R, T]
    several = len(task_names) > 1
    frozen = {run // n for run in (diverged or {})}  # settings where a seed diverged: they set no task's range
    counted = [run for run in range(returns.shape[1]) if run // n not in frozen] or list(range(returns.shape[1]))
    normalised, ranges = range_normalised(returns[-1], counted) if several else (None, [])  # [R, T]
    rows = []
    for k, setting in enumerate(settings):
        runs = returns[:, k * n:(k + 1) * n]  # [E, n, T]
        rows.append({
            "label": setting_label(setting), "setting": dict(setting),
            "final_return": {name: summarize(runs[-1, :, t]) for t, name in enumerate(task_names)},
            "score": summarize(runs[-1].mean(-1)),
            **({"normalised_score": summarize(normalised[k * n:(k + 1) * n].mean(-1))} if several else {}),
            "auc": summarize(runs.mean(axis=(0, 2))),
            "diverged": {str(seed): (diverged or {})[k * n + i] for i, seed in enumerate(seeds)
                         if k * n + i in (diverged or {})},
        })
    criterion = "normalised_score" if several else "score"
    eligible = [k for k, row in enumerate(rows) if not row["diverged"]] or list(range(len(rows)))
    best = max(eligible, key=lambda k: rows[k][criterion]["iqm"])
    values = {name: [s[name] for s in settings] for name in settings[0]}  # layer sizes keep the grid's order
    label = return_label(eval_epsilon)
    return {"tasks": task_names, "seeds": seeds,
            "grid": {name: list(dict.fromkeys(v)) if name in SHAPE_STATIC else sorted(set(v))
                     for name, v in values.items()},
            "eval_steps": [int(s) for s in eval_steps], "settings": rows, "best": rows[best]["label"],
            **({"eval_epsilon": eval_epsilon} if eval_epsilon else {}),
            **({"normalisation": {name: {"low": float(low), "high": float(high)}
                                  for name, (low, high) in zip(task_names, ranges, strict=True)}} if several else {}),
            "criterion": (f"highest IQM over seeds of the final {label} normalised per task to the sweep's range "
                          "(0 = its lowest run on that task, 1 = its highest) and averaged over tasks"
                          if several else f"highest IQM over seeds of the final {label}")
                         + ", among settings where no seed diverged"}


def range_normalised(final: np.ndarray, counted: list[int]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``final [R, T]`` (each run's final return per task) mapped per task to [0, 1] by the lowest and highest of
    the ``counted`` runs on that task (the others clipped into it), and those ``(low, high)`` per task; a task
    where those runs all returned the same maps to 0 for every run (it separates no setting).

    Why not reference returns (as the transfer studies normalise): a sweep's tasks are any specs, most without a
    published reference, and choosing among settings needs only a common scale per task. Diverged settings are
    left out of the range (`sweep_results`): a frozen run's poor return would squeeze every other run's on that
    task towards 1 and let the other tasks decide."""
    low, high = final[counted].min(axis=0), final[counted].max(axis=0)  # [T]
    spread = high > low
    normalised = np.where(spread, np.clip((final - low) / np.where(spread, high - low, 1.0), 0.0, 1.0), 0.0)
    return normalised, [(float(a), float(b)) for a, b in zip(low, high, strict=True)]


def sweep_markdown(results: dict[str, Any]) -> str:
    """The sweep's table: one row per setting, best first marked."""
    from mtrl.logger import few_seeds_note, markdown_table, short_names
    from mtrl.scores import return_label
    from mtrl.statistics import iqm_interval

    names, tasks = list(results["grid"]), results["tasks"]

    def cell(s: dict, digits: int = 1) -> str:
        low, high = iqm_interval(s)
        return f"{s['iqm']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    def diverged(row: dict) -> str:
        return ", ".join(f"seed {seed} at {step:,}" for seed, step in row["diverged"].items()) or "—"

    several = "normalised_score" in results["settings"][0]
    rows = [[*(format_value(row['setting'][n]) for n in names), *(cell(row["final_return"][t]) for t in tasks),
             cell(row["score"]), *([cell(row["normalised_score"], 2)] if several else []), cell(row["auc"]),
             diverged(row), "**best**" if row["label"] == results["best"] else ""]
            for row in results["settings"]]
    header = [*names, *short_names(tasks), "mean over tasks", *(["normalised mean"] if several else []), "AUC",
              "diverged (frozen) at", "best"]
    programs = results.get("programs", 1)
    few = few_seeds_note(len(results["seeds"]))
    label = return_label(results.get("eval_epsilon", 0.0))
    return (f"Sweep of {len(results['settings'])} settings x {len(results['seeds'])} seeds "
            f"({', '.join(map(str, results['seeds']))}), {'one program' if programs == 1 else f'{programs} programs'}, "
            f"{results['eval_steps'][-1]:,} env steps per "
            f"task. Final {label}: IQM [95% bootstrap interval of the IQM over seeds]; "
            + ("normalised mean: each task's final return mapped to the sweep's range on that task (0 = its lowest "
               "run, 1 = its highest), averaged over tasks, so every task weighs the same; " if several else "")
            + "AUC: raw return averaged over the evaluations and tasks (on tasks of different scales the widest "
            "decides); a seed whose "
            "parameters became non-finite was frozen at its last finite logging window "
            f"(its returns are the frozen policy's). Best: `{results['best']}` ({results['criterion']}).\n\n"
            + markdown_table(header, rows) + (f"\n{few}\n" if few else ""))


def write_sweep(run_dir: str, results: dict[str, Any]) -> None:
    """``sweep.json``, ``sweep.md`` and ``sweep.png`` (the score against each swept value) in ``run_dir``."""
    import os

    from mtrl.logger import write_json
    from mtrl.plots import plot_sweep

    write_json(os.path.join(run_dir, "sweep.json"), results)
    with open(os.path.join(run_dir, "sweep.md"), "w") as f:
        f.write(sweep_markdown(results) + "\n")
    plot_sweep(results, os.path.join(run_dir, "sweep.png"))
