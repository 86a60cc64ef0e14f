"""Learning curves with matplotlib (Agg backend: no display needed).

Axes: ``E`` evaluation points, ``S`` seeds, ``T`` tasks.
"""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from mtrl.scores import return_label  # noqa: E402
from mtrl.statistics import bootstrap_ci, iqm_interval  # noqa: E402


def mean_and_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values [E, S]`` -> mean ``[E]`` and 95% bootstrap band of the mean across seeds ``[E]``, ``[E]``."""
    mean = values.mean(axis=1)
    low, high = np.empty_like(mean), np.empty_like(mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in range(values.shape[0]):
            low[e], high[e] = bootstrap_ci(values[e], resamples=500)
    return mean, low, high


def task_panels(num_tasks: int, max_cols: int, panel_size: tuple[float, float]) -> tuple[Any, np.ndarray, list]:
    """A figure of one panel per task, at most ``max_cols`` per row, each ``panel_size`` inches: (figure, every
    axis ``[rows, cols]``, the tasks' axes in order); the grid's unused panels are hidden."""
    cols = min(num_tasks, max_cols)
    rows = -(-num_tasks // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows), squeeze=False)
    for t in range(num_tasks, rows * cols):
        axes[t // cols][t % cols].axis("off")
    return fig, axes, [axes[t // cols][t % cols] for t in range(num_tasks)]


def label_task_axis(ax: Any, name: str, xlabel: str, ylabel: str) -> None:
    """A task panel's title, axis labels (env steps in thousands), and grid."""
    ax.set_title(name, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e3:g}k" if x else "0"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def plot_curves(eval_steps: np.ndarray, eval_returns: np.ndarray, task_names: list[str], path: str,
                title: str | None = None, ylabel: str = "greedy return") -> None:
    """One panel per task: ``ylabel`` (the evaluation's return) vs env steps per task, mean with a 95% band across
    seeds."""
    fig, _, task_axes = task_panels(len(task_names), 4, (4, 3))
    for t, (name, ax) in enumerate(zip(task_names, task_axes, strict=True)):
        mean, low, high = mean_and_band(np.asarray(eval_returns)[:, :, t])
        ax.plot(eval_steps, mean, color="C0")
        ax.fill_between(eval_steps, low, high, color="C0", alpha=0.25, linewidth=0)
        label_task_axis(ax, name, "env steps (per task)", ylabel)
    seeds = np.asarray(eval_returns).shape[1]
    fig.suptitle(title or f"mean {ylabel}, 95% bootstrap band over {seeds} seed(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_eval_csv(path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """eval.csv -> steps ``[E]``, returns ``[E, S, T]``, task names (in file order); NaN where a row is missing. A
    last line without its newline (a run writing it now) is left out."""
    import csv

    with open(path, newline="") as f:
        text = f.read()
    rows = list(csv.DictReader(text[:text.rfind("\n") + 1].splitlines()))
    steps = sorted({int(r["step"]) for r in rows})
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    seeds = list(dict.fromkeys(int(r["seed"]) for r in rows))
    out = np.full((len(steps), len(seeds), len(tasks)), np.nan)
    for r in rows:
        out[steps.index(int(r["step"])), seeds.index(int(r["seed"])), tasks.index(r["task"])] = float(r["return"])
    return np.asarray(steps), out, tasks


def _eval_epsilon(run_dir: str) -> float:
    """The run's evaluation ε from its config.json (0, greedy, when it has none or does not record one)."""
    from mtrl.provenance import read_config_json

    return float((read_config_json(run_dir).get("config") or {}).get("eval_epsilon") or 0.0)


def plot_run_dir(run_dir: str) -> str:
    """Redraw ``run_dir/curves.png`` from ``run_dir/eval.csv``; returns the image path."""
    import os

    csv_path = os.path.join(run_dir, "eval.csv")
    if not os.path.isdir(run_dir):
        raise ValueError(f"run directory {run_dir!r} does not exist")
    if not os.path.exists(csv_path):
        raise ValueError(f"run_dir {run_dir!r} has no eval.csv; is it a directory written by `mtrl train`?")
    steps, returns, tasks = read_eval_csv(csv_path)
    path = os.path.join(run_dir, "curves.png")
    plot_curves(steps, returns, tasks, path, ylabel=return_label(_eval_epsilon(run_dir)))
    return path


def plot_transfer_curves(eval_steps: np.ndarray, curves: dict[str, np.ndarray], task_names: list[str],
                         path: str, eval_epsilon: float = 0.0) -> None:
    """One panel per target task: normalised evaluation return (greedy unless ``eval_epsilon``) ``curves[mode]
    [S, T, E]`` vs target env steps, one line per mode, mean with a 95% bootstrap band across seeds."""
    seeds = np.asarray(next(iter(curves.values()))).shape[0]
    plot_compared_curves(eval_steps, curves, task_names, path, xlabel="target env steps (per task)",
                         ylabel=f"normalised {return_label(eval_epsilon)}",
                         title=f"transfer vs scratch: mean, 95% bootstrap band over {seeds} seed(s)")


def plot_compared_curves(eval_steps: np.ndarray, curves: dict[str, np.ndarray], task_names: list[str], path: str,
                         xlabel: str = "env steps (per task)", ylabel: str = "greedy return",
                         title: str | None = None) -> None:
    """One panel per task (at most 3 per row), one line per variant: ``curves[label] [S, T, E]`` vs
    ``eval_steps [E]``, mean with a 95% bootstrap band across seeds; a variant whose values for a task are all NaN
    (a run not finished yet) is left out of that panel."""
    variants = {label: {name: (np.asarray(eval_steps), np.asarray(curve)[:, t, :].T)
                        for t, name in enumerate(task_names) if not np.isnan(np.asarray(curve)[:, t, :]).all()}
                for label, curve in curves.items()}
    seeds = np.asarray(next(iter(curves.values()))).shape[0]
    plot_variant_curves(variants, task_names, path, xlabel, ylabel,
                        title or f"mean, 95% bootstrap band over {seeds} seed(s)")


def plot_variant_curves(variants: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], task_names: list[str],
                        path: str, xlabel: str = "env steps (per task)", ylabel: str = "greedy return",
                        title: str = "mean, 95% bootstrap band over seeds") -> None:
    """One panel per task (at most 3 per row), one line per variant: ``variants[label][task] = (steps [E],
    values [E, S])``, mean with a 95% bootstrap band across seeds; each variant has its own evaluation steps and
    seeds, and a panel leaves out the variants that lack its task."""
    fig, axes, task_axes = task_panels(len(task_names), 3, (4.5, 3.4))
    for name, ax in zip(task_names, task_axes, strict=True):
        drawn = [(i, label, tasks[name]) for i, (label, tasks) in enumerate(variants.items()) if name in tasks]
        for i, label, (steps, values) in drawn:
            mean, low, high = mean_and_band(np.asarray(values))
            ax.plot(steps, mean, color=f"C{i}", label=label)
            ax.fill_between(steps, low, high, color=f"C{i}", alpha=0.18, linewidth=0)
        if not drawn:
            ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_xticks([])
            ax.set_yticks([])
        label_task_axis(ax, name, xlabel, ylabel)
    handles = {}  # every variant once, wherever it was drawn (a panel may lack a run not finished yet)
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    legend_ax = max(axes.flat, key=lambda ax: len(ax.lines))
    legend_ax.legend([handles[k] for k in variants if k in handles], [k for k in variants if k in handles],
                     fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(results: dict, path: str) -> None:
    """One panel per swept setting: every setting's score (final evaluation return averaged over tasks, range-
    normalised per task when there are several as the best is chosen, IQM with its 95% interval over seeds) against
    that setting's value (layer sizes: one tick per value, in the grid's order);
    the line joins the best score at each value."""
    from mtrl.sweep_grid import SHAPE_STATIC, format_value

    names = list(results["grid"])
    score = "normalised_score" if "normalised_score" in results["settings"][0] else "score"  # the criterion's
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rows = results["settings"]
        sizes = name in SHAPE_STATIC
        if sizes:  # layer sizes: categories
            ticks = [format_value(v) for v in results["grid"][name]]
            x = np.asarray([ticks.index(format_value(row["setting"][name])) for row in rows], float)
            values = np.arange(len(ticks), dtype=float)
            ax.set_xticks(values, ticks)
        else:
            x = np.asarray([row["setting"][name] for row in rows])
            values = np.asarray(results["grid"][name])
        y = np.asarray([row[score]["iqm"] for row in rows])
        low, high = np.asarray([iqm_interval(row[score]) for row in rows]).T
        ax.errorbar(x, y, yerr=[np.maximum(y - low, 0), np.maximum(high - y, 0)], fmt="o", alpha=0.6, capsize=3)
        ax.plot(values, [y[x == v].max() for v in values], color="C1", label="best at value")
        if not sizes and values.min() > 0 and values.max() / values.min() >= 10:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("normalised final return" if score == "normalised_score"
                      else "final return, mean over tasks")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"sweep: {len(results['settings'])} settings x {len(results['seeds'])} seeds (IQM, 95% interval)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
