"""Hyperparameter sweeps in one compiled program: every setting of a grid of numeric settings, times the seeds, is
one run on the run axis ``S`` of a single `Trainer` program.

A grid names settings and values, ``{"lr": (1e-4, 3e-4), "gamma": (0.99, 0.995)}`` (command line:
``--grid lr=1e-4,3e-4 gamma=0.99,0.995``); its settings are the Cartesian product, in the order given. Numeric
settings are array leaves of each run's state (`mtrl.agent.Hyperparams`, the learning rate in the optimiser state),
so they vary along the run axis without recompiling:

- global: ``lr``, ``gamma``, ``eps_start``, ``eps_end``, ``eps_decay`` (fraction of the budget), ``tau``,
  ``popart_step_size`` (with ``loss_aggregation="popart"``);
- per task, by the task's index in the task list: ``gamma.<t>``, ``eps_start.<t>``, ``eps_end.<t>``,
  ``eps_decay.<t>``, ``task_weight.<t>``.

A setting's global values are applied to its config (``lr=3e-4`` runs exactly as ``DQNConfig(lr=3e-4)`` alone, so
each setting equals its run alone; tested bit-identical on CPU), then per-task values to its hyperparameters.
Every other `DQNConfig` field changes the program's shapes or structure and is refused with the way to sweep it:
one program per value.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtrl.config import DQNConfig

# grid name -> (DQNConfig field, Hyperparams field, allowed range as (low, high, low inclusive, high inclusive))
GLOBAL = {
    "lr": ("lr", None, (0.0, math.inf, False, False)),
    "gamma": ("gamma", "gammas", (0.0, 1.0, True, False)),
    "eps_start": ("eps_start", "eps_start", (0.0, 1.0, True, True)),
    "eps_end": ("eps_end", "eps_end", (0.0, 1.0, True, True)),
    "eps_decay": ("eps_decay_fraction", "eps_decay_steps", (0.0, 1.0, False, True)),
    "tau": ("tau", "tau", (0.0, 1.0, False, True)),
    "popart_step_size": ("popart_step_size", "popart_step_size", (0.0, 1.0, False, True)),
}
PER_TASK = {"gamma": "gammas", "eps_start": "eps_start", "eps_end": "eps_end", "eps_decay": "eps_decay_steps",
            "task_weight": "task_weights"}
TASK_WEIGHT_RANGE = (0.0, math.inf, True, False)
SWEPT_CONFIG_FIELDS = {field for field, _, _ in GLOBAL.values()} | {"task_weights"}


class GridError(ValueError):
    """A grid that cannot be swept in one program; the message names the setting and what is allowed."""


def allowed_names(num_tasks: int) -> list[str]:
    return [*GLOBAL, *(f"{name}.{t}" for name in PER_TASK for t in range(num_tasks))]


def parse_grid(items: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """``["lr=1e-4,3e-4", "gamma=0.99"]`` -> ``{"lr": (1e-4, 3e-4), "gamma": (0.99,)}`` (names checked later by
    `check_grid`, which knows the tasks)."""
    grid: dict[str, tuple[float, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GridError(f"--grid: {item!r} is not NAME=V1,V2,... (e.g. lr=1e-4,3e-4)")
        if name in grid:
            raise GridError(f"--grid: {name} is given twice; list all its values once: {name}=V1,V2,...")
        parsed = []
        for text in values.split(","):
            try:
                value = float(text)
            except ValueError:
                raise GridError(f"--grid: {name}: {text.strip()!r} is not a number") from None
            parsed.append(value)
        if len(set(parsed)) != len(parsed):
            raise GridError(f"--grid: {name} repeats a value: {values}")
        grid[name] = tuple(parsed)
    return grid


def check_grid(grid: Mapping[str, Sequence[float]], config: DQNConfig, num_tasks: int) -> None:
    """Refuse (`GridError`, before anything is built) names that are not numeric per-run settings, values out of
    range, and settings this config does not use."""
    if not grid:
        raise GridError("the grid is empty: give at least one NAME=V1,V2,... (e.g. --grid lr=1e-4,3e-4)")
    config_fields = {f.name for f in dataclasses.fields(DQNConfig)}
    for name, values in grid.items():
        base, _, task = name.partition(".")
        if not values:
            raise GridError(f"grid {name}: no values")
        if name not in GLOBAL and not (base in PER_TASK and task):
            if base in config_fields or name in config_fields:
                raise GridError(
                    f"grid {name}: a static setting (it changes the compiled program's shapes or structure), so it "
                    "cannot vary inside one program; sweep it with one program per value (one `mtrl sweep` each, "
                    f"with --{name.replace('_', '-')} set). Numeric settings: {', '.join(allowed_names(num_tasks))}")
            raise GridError(f"grid {name}: unknown setting; numeric settings: {', '.join(allowed_names(num_tasks))}")
        if task:
            if not task.isdigit() or int(task) >= num_tasks:
                raise GridError(f"grid {name}: the task index must be 0..{num_tasks - 1} (the order of the tasks)")
            if base in GLOBAL and base in grid:
                raise GridError(f"grid {name}: {base} is swept for every task already; sweep one or the other")
        low, high, low_in, high_in = TASK_WEIGHT_RANGE if base == "task_weight" else GLOBAL[base][2]
        for v in values:
            if not (low <= v <= high) or (v == low and not low_in) or (v == high and not high_in):
                interval = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
                raise GridError(f"grid {name}: {v:g} is outside {interval}")
        if base == "popart_step_size" and config.loss_aggregation != "popart":
            raise GridError("grid popart_step_size: needs --loss-aggregation popart (the sum has no PopArt step)")


def grid_settings(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The grid's settings, the Cartesian product in the order given (the last name varies fastest)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def setting_config(config: DQNConfig, setting: Mapping[str, float], num_tasks: int) -> DQNConfig:
    """``config`` with a setting's global values (and its per-task task weights) in place: the config a setting's
    runs train with, as if alone."""
    changes: dict[str, Any] = {GLOBAL[name][0]: value for name, value in setting.items() if name in GLOBAL}
    weights = {int(n.split(".")[1]): v for n, v in setting.items() if n.startswith("task_weight.")}
    if weights:
        base = list(config.task_weights) if config.task_weights is not None else [1.0] * num_tasks
        changes["task_weights"] = tuple(weights.get(t, w) for t, w in enumerate(base))
    return dataclasses.replace(config, **changes)


def setting_label(setting: Mapping[str, float]) -> str:
    """A directory-safe label, ``lr=0.0003,gamma=0.99``."""
    return ",".join(f"{name}={value:g}" for name, value in setting.items())


def per_task_overrides(setting: Mapping[str, float], total_steps: int) -> dict[str, dict[int, float]]:
    """Hyperparams field -> {task index: value} for a setting's per-task values other than task weights (those are
    in its config); ``eps_decay`` as env steps per task, computed as `mtrl.agent.default_hparams` does."""
    out: dict[str, dict[int, float]] = {}
    for name, value in setting.items():
        base, _, task = name.partition(".")
        if task and base != "task_weight":
            if base == "eps_decay":
                value = float(np.float32(max(1.0, np.float64(value) * total_steps)))
            out.setdefault(PER_TASK[base], {})[int(task)] = value
    return out


def sweep(
    tasks: Sequence[str],
    config: DQNConfig,
    grid: Mapping[str, Sequence[float]],
    seeds: Sequence[int] = (0,),
    run_dir: str | None = None,
    progress: bool = True,
    **train_kwargs,
) -> dict[str, Any]:
    """Train every setting of ``grid`` x ``seeds`` in one compiled program and compare the settings.

    Each setting is logged as a plain run in ``run_dir/<label>/`` (`setting_label`; its config is the setting's
    config, so it can be read, plotted, evaluated and compared like any run); ``run_dir`` also holds the program's
    config.json and checkpoints, and ``sweep.json``, ``sweep.md`` and ``sweep.png`` (`write_sweep`). Rerunning with
    ``resume=True`` continues from the last checkpoint. ``train_kwargs`` go to `mtrl.trainer.train` (checkpoints,
    resume, overwrite, stop_at_step, log_every, tensorboard).

    Returns the content of sweep.json (`sweep_results`), or ``{"stopped_at": step, "signal": signum or None}`` for
    a stopped sweep.
    """
    import jax
    import jax.numpy as jnp

    from mtrl.agent import default_hparams
    from mtrl.logger import RunGroup
    from mtrl.trainer import Trainer, train

    seeds = [int(s) for s in seeds]
    trainer = Trainer.create(list(tasks), config)
    num_tasks = trainer.taskset.num_tasks
    check_grid(grid, config, num_tasks)
    settings = grid_settings(grid)
    run_seeds: list[int] = []
    hparams, learning_rates, groups = [], [], []
    for setting in settings:
        setting_cfg = setting_config(config, setting, num_tasks)
        hp = default_hparams(trainer.taskset, setting_cfg)
        for field, values in per_task_overrides(setting, setting_cfg.total_steps).items():
            array = np.array(getattr(hp, field), np.float32)
            array[list(values)] = list(values.values())
            hp = hp.replace(**{field: jnp.asarray(array)})
        groups.append(RunGroup(setting_label(setting), tuple(range(len(run_seeds), len(run_seeds) + len(seeds))),
                               setting_cfg, {"sweep_setting": dict(setting)}))
        for seed in seeds:
            run_seeds.append(seed)
            hparams.append(hp)
            learning_rates.append(setting_cfg.lr)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *hparams)
    result = train(None, seeds=run_seeds, run_dir=run_dir, progress=progress, trainer=trainer, groups=groups,
                   init_state=lambda tr, s: tr.init(s, stacked, learning_rates),
                   extra_metadata={"sweep": {"grid": {k: list(v) for k, v in grid.items()}, "seeds": seeds}},
                   on_divergence="freeze", **train_kwargs)
    if result.stopped_at is not None:
        return {"stopped_at": result.stopped_at, "signal": result.signal}
    results = sweep_results(settings, trainer.taskset.names, seeds, result.eval_steps, result.eval_returns,
                            result.diverged)
    if run_dir is not None:
        write_sweep(run_dir, results)
    return results


def sweep_results(settings: list[dict[str, float]], task_names: list[str], seeds: list[int],
                  eval_steps: np.ndarray, eval_returns: np.ndarray, diverged: Mapping[int, int] | None = None
                  ) -> dict[str, Any]:
    """Per setting (runs in setting-major order on the run axis of ``eval_returns [E, R, T]``): each task's final
    greedy return and the score, the final return averaged over tasks (IQM and 95% interval over seeds), the area
    under the curve (greedy return averaged over the evaluations and tasks; same statistics), and ``diverged``
    (seed -> env steps per task where it was frozen; ``diverged`` maps run index -> step). The best setting is the
    one with the highest score's IQM among those where no seed diverged (among all when every one did)."""
    from mtrl.evaluate import summarize

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
    return {"tasks": task_names, "seeds": seeds, "grid": {name: sorted({s[name] for s in settings})
                                                         for name in settings[0]},
            "eval_steps": [int(s) for s in eval_steps], "settings": rows, "best": rows[best]["label"],
            "criterion": "highest IQM over seeds of the final greedy return averaged over tasks, among settings "
                         "where no seed diverged"}


def sweep_markdown(results: dict[str, Any]) -> str:
    """The sweep's table: one row per setting, best first marked."""
    from mtrl.logger import markdown_table, short_name

    names, tasks = list(results["grid"]), results["tasks"]

    def cell(s: dict) -> str:
        return f"{s['iqm']:.1f} [{s['ci_low']:.1f}, {s['ci_high']:.1f}]"

    def diverged(row: dict) -> str:
        return ", ".join(f"seed {seed} at {step:,}" for seed, step in row["diverged"].items()) or "—"

    rows = [[*(f"{row['setting'][n]:g}" for n in names), *(cell(row["final_return"][t]) for t in tasks),
             cell(row["score"]), cell(row["auc"]), diverged(row), "**best**" if row["label"] == results["best"] else ""]
            for row in results["settings"]]
    header = [*names, *(short_name(t) for t in tasks), "mean over tasks", "AUC", "diverged (frozen) at", ""]
    return (f"Sweep of {len(results['settings'])} settings x {len(results['seeds'])} seeds "
            f"({', '.join(map(str, results['seeds']))}), one program, {results['eval_steps'][-1]:,} env steps per "
            "task. Final greedy return: IQM [95% bootstrap interval of the mean over seeds]; AUC: return averaged over "
            "the evaluations; a seed whose parameters became non-finite was frozen at its last finite logging window "
            f"(its returns are the frozen policy's). Best: `{results['best']}` ({results['criterion']}).\n\n"
            + markdown_table(header, rows))


def write_sweep(run_dir: str, results: dict[str, Any]) -> None:
    """``sweep.json``, ``sweep.md`` and ``sweep.png`` (the score against each swept value) in ``run_dir``."""
    import os

    from mtrl.logger import write_json
    from mtrl.plots import plot_sweep

    write_json(os.path.join(run_dir, "sweep.json"), results)
    with open(os.path.join(run_dir, "sweep.md"), "w") as f:
        f.write(sweep_markdown(results) + "\n")
    plot_sweep(results, os.path.join(run_dir, "sweep.png"))
