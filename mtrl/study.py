"""Transfer study: every transfer mode on the same target tasks and seeds, measured against scratch.

`transfer_study` trains one run per mode into ``run_dir/<mode>/`` (a mode whose directory already holds a
finished run is reused; an interrupted one is resumed from its checkpoint), then writes

    transfer.json         per mode: every metric per seed and task, and aggregates with 95% intervals
    transfer.md           one row per mode: each metric's IQM with its interval, P(improvement over scratch)
    transfer_curves.png   normalised greedy return vs target env steps, one line per mode with a 95% band

Curves are read back from each mode's eval.csv, so a study gives the same numbers whether its runs were just
trained or reused. Only the target tasks enter the metrics (``joint`` also trains the source tasks).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtrl import evaluate
from mtrl.config import DQNConfig
from mtrl.logger import markdown_table
from mtrl.transfer import MODES, TransferSettings, load_source, resume_run, train_transfer

# (metric key, table label, higher is better) of the per-seed metrics shown in transfer.md.
TABLE_METRICS = (
    ("jumpstart", "jumpstart", True),
    ("asymptotic", "asymptotic gain", True),
    ("auc", "AUC", True),
    ("transfer_ratio", "transfer ratio", True),
    ("time_to_threshold", "steps to threshold", False),
    ("time_to_threshold_with_source", "steps to threshold incl. source", False),
)


def mode_curves(run_dir: str, target_tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Greedy curves of a finished run's target tasks: steps ``[E]``, returns ``[S, T, E]``, seeds."""
    from mtrl.plots import read_eval_csv

    steps, returns, tasks = read_eval_csv(os.path.join(run_dir, "eval.csv"))  # returns [E, S, T_all]
    missing = [t for t in target_tasks if t not in tasks]
    if missing:
        raise ValueError(f"{run_dir}/eval.csv has no rows for target tasks {missing}")
    columns = [tasks.index(t) for t in target_tasks]
    with open(os.path.join(run_dir, "config.json")) as f:
        seeds = json.load(f)["seeds"]
    return steps, np.transpose(returns[:, :, columns], (1, 2, 0)), seeds


def _finished(run_dir: str, config: DQNConfig) -> bool:
    """Whether ``run_dir`` holds a finished run; one trained with other settings is an error, not reused."""
    if not os.path.exists(os.path.join(run_dir, "summary.json")):
        return False
    with open(os.path.join(run_dir, "config.json")) as f:
        saved = json.load(f)["config"]
    from mtrl.checkpoint import config_differences

    # joint runs set their own task weights (source tasks 1, targets lambda)
    differ = [f"{k}: {a!r} there vs {b!r} here"
              for k, a, b in config_differences(saved, dataclasses.asdict(config), ignore=("task_weights",))]
    if differ:
        raise ValueError(f"{run_dir} holds a finished run with other settings ({'; '.join(differ)}); "
                         "use another --run-dir")
    return True


def _has_checkpoint(run_dir: str) -> bool:
    from mtrl.checkpoint import Checkpointer, checkpoint_dir

    if not os.path.isdir(checkpoint_dir(run_dir)):
        return False
    ckpt = Checkpointer(run_dir, read_only=True)
    try:
        return ckpt.latest_step() is not None
    finally:
        ckpt.close()


def transfer_study(
    source_run: str,
    tasks: Sequence[str],
    modes: Sequence[str] = MODES,
    transfer: TransferSettings = TransferSettings(),
    config: DQNConfig = DQNConfig(),
    seeds: Sequence[int] = (0,),
    run_dir: str = "runs/study",
    threshold: float = 0.95,
    last_k: int = 3,
    progress: bool = True,
    **train_kwargs,
) -> dict[str, Any]:
    """Run every mode in ``modes`` (scratch is added when missing) and write the study files.

    Args:
        source_run: a run directory with checkpoints (the pretrained source).
        tasks: target task specs.
        modes: transfer modes; their settings (unfreeze_at, l2sp_alpha, ...) come from ``transfer``.
        threshold: normalised return that counts as "reached" for time to threshold.
        last_k: evaluations averaged for asymptotic performance.
        train_kwargs: passed to `mtrl.train.train` (checkpoints, ...).

    Returns the content of transfer.json.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown modes {unknown}; allowed: {', '.join(MODES)}")
    modes = ["scratch"] + [m for m in dict.fromkeys(modes) if m != "scratch"]
    tasks = list(tasks)
    seeds = [int(s) for s in seeds]
    if not 0 < threshold <= 1.5:
        raise ValueError(f"threshold is a normalised return; must be in (0, 1.5], got {threshold}")
    reference = np.array([evaluate.reference_return(t) for t in tasks])  # raises before any training
    from mtrl.tasks import make_taskset

    taskset = make_taskset(tasks)
    config.validate(taskset.num_tasks)
    transfer.with_mode("finetune").validate()
    source = load_source(source_run, transfer.source_step)
    random = evaluate.random_returns(taskset)
    os.makedirs(run_dir, exist_ok=True)

    curves = {}
    for mode in modes:
        mode_dir = os.path.join(run_dir, mode)
        if not _finished(mode_dir, config):
            if progress:
                print(f"[study] mode {mode} -> {mode_dir}")
            if _has_checkpoint(mode_dir):
                result = resume_run(mode_dir, progress=progress, **train_kwargs)
            else:
                result = train_transfer(source_run, tasks, transfer.with_mode(mode), config,
                                        seeds=seeds, run_dir=mode_dir, progress=progress, **train_kwargs)
            if result.stopped_at is not None:
                raise KeyboardInterrupt(f"study stopped in mode {mode}; rerun the same command to continue")
        steps, raw, run_seeds = mode_curves(mode_dir, tasks)
        if run_seeds != seeds:
            raise ValueError(f"{mode_dir} was trained with seeds {run_seeds}, this study uses {seeds}")
        curves[mode] = (steps, evaluate.normalise(raw, random[None, :, None], reference[None, :, None]))

    steps, scratch = curves["scratch"]
    results: dict[str, Any] = {}
    for mode in modes:
        mode_steps, curve = curves[mode]
        if not np.array_equal(mode_steps, steps):
            raise ValueError(f"mode {mode} evaluated at other steps than scratch; use one config for the study")
        per_seed = evaluate.transfer_metrics(steps, curve, scratch, last_k=last_k, threshold=threshold,
                                             source_steps=0 if mode == "scratch" else source.env_steps)
        results[mode] = {
            "per_seed": {k: v.tolist() for k, v in per_seed.items()},
            "aggregate": {k: evaluate.aggregate(per_seed[k]) for k, _, _ in TABLE_METRICS},
            "censored": int(per_seed["censored"].sum()),
            "probability_of_improvement_auc": evaluate.probability_of_improvement(per_seed["auc"],
                                                                                 per_seed["auc_scratch"]),
            "probability_of_improvement_auc_ci": evaluate.probability_of_improvement_ci(per_seed["auc"],
                                                                                       per_seed["auc_scratch"]),
        }
    study = {
        "source_run": source.run_dir,
        "source_step": source.step,
        "source_tasks": source.tasks,
        "source_env_steps": source.env_steps,
        "target_tasks": tasks,
        "seeds": seeds,
        "modes": modes,
        "config": dataclasses.asdict(config),
        "transfer": dataclasses.asdict(transfer),
        "threshold": threshold,
        "last_k": last_k,
        "normalisation": {t: {"random": float(r), "reference": float(f)} for t, r, f in zip(tasks, random, reference)},
        "eval_steps": np.asarray(steps).tolist(),
        "results": results,
    }
    with open(os.path.join(run_dir, "transfer.json"), "w") as f:
        json.dump(study, f, indent=2)
    with open(os.path.join(run_dir, "transfer.md"), "w") as f:
        f.write(study_markdown(study))
    from mtrl.plots import plot_transfer_curves

    plot_transfer_curves(steps, {m: c for m, (_, c) in curves.items()}, tasks,
                         os.path.join(run_dir, "transfer_curves.png"))
    return study


def _fmt(agg: dict[str, float], scale: float = 1.0, digits: int = 2) -> str:
    if np.isnan(agg["iqm"]):
        return "undefined"
    low, high = (v / scale for v in agg["iqm_ci"])
    return f"{agg['iqm'] / scale:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def study_markdown(study: dict[str, Any]) -> str:
    """transfer.md: one row per mode, each metric's IQM over (seed, task) with its stratified-bootstrap 95% CI."""
    header = ["mode"] + [label + (" (k)" if key.startswith("time") else "") for key, label, _ in TABLE_METRICS]
    header += ["reached threshold", "P(AUC > scratch)"]
    rows = []
    n = len(study["seeds"]) * len(study["target_tasks"])
    for mode in study["modes"]:
        r = study["results"][mode]
        cells = [mode]
        for key, _, _ in TABLE_METRICS:
            cells.append(_fmt(r["aggregate"][key], 1e3, 0) if key.startswith("time") else _fmt(r["aggregate"][key]))
        low, high = r["probability_of_improvement_auc_ci"]
        cells += [f"{n - r['censored']}/{n}", f"{r['probability_of_improvement_auc']:.2f} [{low:.2f}, {high:.2f}]"]
        rows.append(cells)
    norm = ", ".join(f"{t}: random {v['random']:.1f}, reference {v['reference']:.0f}"
                     for t, v in study["normalisation"].items())
    return (
        f"Transfer from {study['source_tasks']} (checkpoint at {study['source_step']:,} env steps per task) to "
        f"{study['target_tasks']}; seeds {study['seeds']}; {study['config']['total_steps']:,} target env steps per "
        f"task.\n\nIQM over (seed, task) with stratified-bootstrap 95% CIs. Returns are normalised "
        f"(R - R_random) / (R_ref - R_random) ({norm}). Jumpstart and asymptotic gain are differences to scratch at "
        f"the same seed (asymptotic: mean of the last {study['last_k']} evaluations); AUC is the mean normalised "
        f"return over training; transfer ratio = (AUC - AUC_scratch) / AUC_scratch (undefined where AUC_scratch "
        f"<= 0). Steps to threshold "
        f"(normalised {study['threshold']}) count target env steps per task, runs that never reach it count as "
        f"the full budget (censored; see 'reached threshold'); 'incl. source' adds the source run's "
        f"{study['source_env_steps']:,} env steps.\n\n"
        + markdown_table(header, rows)
    )
