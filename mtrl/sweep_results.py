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
    (seed -> env steps per task where it was frozen; ``diverged`` maps run index -> step). The best setting is the
    one with the highest score's IQM among those where no seed diverged (among all when every one did). Returns
    are ε-greedy ones (recorded as ``eval_epsilon``) when the sweep's config evaluates at ``eval_epsilon`` > 0."""
    from mtrl.evaluate import return_label, summarize

    n = len(seeds)
    returns = np.asarray(eval_returns, np.float64)  # [E, R, T]
    rows = []
    for k, setting in enumerate(settings):
        runs = returns[:, k * n:(k + 1) * n]  # [E, n, T]
        rows.append({
            "label": setting_label(setting), "setting": dict(setting),
            "final_return": {name: summarize(runs[-1, :, t]) for t, name in enumerate(task_names)},
            "score": summarize(runs[-1].mean(-1)),
            "auc": summarize(runs.mean(axis=(0, 2))),
            "diverged": {str(seed): (diverged or {})[k * n + i] for i, seed in enumerate(seeds)
                         if k * n + i in (diverged or {})},
        })
    eligible = [k for k, row in enumerate(rows) if not row["diverged"]] or list(range(len(rows)))
    best = max(eligible, key=lambda k: rows[k]["score"]["iqm"])
    values = {name: [s[name] for s in settings] for name in settings[0]}  # layer sizes keep the grid's order
    return {"tasks": task_names, "seeds": seeds,
            "grid": {name: list(dict.fromkeys(v)) if name in SHAPE_STATIC else sorted(set(v))
                     for name, v in values.items()},
            "eval_steps": [int(s) for s in eval_steps], "settings": rows, "best": rows[best]["label"],
            **({"eval_epsilon": eval_epsilon} if eval_epsilon else {}),
            "criterion": f"highest IQM over seeds of the final {return_label(eval_epsilon)} averaged over tasks, "
                         "among settings where no seed diverged"}


def sweep_markdown(results: dict[str, Any]) -> str:
    """The sweep's table: one row per setting, best first marked."""
    from mtrl.evaluate import iqm_interval, return_label
    from mtrl.logger import few_seeds_note, markdown_table, short_names

    names, tasks = list(results["grid"]), results["tasks"]

    def cell(s: dict) -> str:
        low, high = iqm_interval(s)
        return f"{s['iqm']:.1f} [{low:.1f}, {high:.1f}]"

    def diverged(row: dict) -> str:
        return ", ".join(f"seed {seed} at {step:,}" for seed, step in row["diverged"].items()) or "—"

    rows = [[*(format_value(row['setting'][n]) for n in names), *(cell(row["final_return"][t]) for t in tasks),
             cell(row["score"]), cell(row["auc"]), diverged(row), "**best**" if row["label"] == results["best"] else ""]
            for row in results["settings"]]
    header = [*names, *short_names(tasks), "mean over tasks", "AUC", "diverged (frozen) at", "best"]
    programs = results.get("programs", 1)
    few = few_seeds_note(len(results["seeds"]))
    label = return_label(results.get("eval_epsilon", 0.0))
    return (f"Sweep of {len(results['settings'])} settings x {len(results['seeds'])} seeds "
            f"({', '.join(map(str, results['seeds']))}), {'one program' if programs == 1 else f'{programs} programs'}, "
            f"{results['eval_steps'][-1]:,} env steps per "
            f"task. Final {label}: IQM [95% bootstrap interval of the IQM over seeds]; AUC: raw return averaged "
            "over the evaluations and tasks (on tasks of different scales the widest decides); a seed whose "
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
