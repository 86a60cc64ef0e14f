"""Transfer study: every transfer mode on the same target tasks and seeds, measured against scratch.

`transfer_study` trains one run per mode into ``run_dir/<mode>/``, then writes

    transfer.json         per mode: every metric per seed and task, and aggregates with 95% intervals
    transfer.md           one row per mode: each metric with its interval, P(improvement over scratch)
    transfer_curves.png   normalised evaluation return (greedy unless eval_epsilon) vs target env steps, one line
                          per mode with a 95% band

A mode directory that already holds a run is reused (finished) or resumed (interrupted) only when that run is
the same experiment (`mode_identity`: the whole config with the task weights the mode sets, the settings the mode
uses, the source run's path and fingerprint, the exact target tasks and the seeds); otherwise the study refuses
with every difference, or with ``rerun=True`` moves that run aside and trains the mode again.

Curves are read back from each mode's eval.csv, so a study gives the same numbers whether its runs were just
trained or reused. Only the target tasks enter the metrics (``joint`` also trains the source tasks).

Metrics (`mtrl.scores`, `mtrl.statistics`): jumpstart, gain over the last k evaluations and AUC per (seed, task),
summarised by IQM and mean with stratified-bootstrap intervals; the transfer ratio of summed areas (Taylor & Stone)
with a paired bootstrap interval; time to threshold with censoring (fraction reached, Kaplan–Meier median); the
probability that a mode's AUC beats scratch's.

Axes: ``S`` seeds, ``T`` target tasks, ``E`` evaluations (curves ``[S, T, E]``, per-seed metrics ``[S, T]``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtrl import evaluate, scores, statistics
from mtrl.config import DQNConfig
from mtrl.logger import markdown_table, write_json
from mtrl.provenance import prepare_reuse, read_config_json
from mtrl.trainer import check_seeds
from mtrl.transfer import (
    MODE_SETTINGS,
    MODES,
    Source,
    TransferConfig,
    TransferSettings,
    build_trainer,
    check_splice,
    load_source,
    resume_run,
    target_config,
    target_task_list,
    train_transfer,
    warn_shared_sources,
)

# (metric key, table label) of the per-seed metrics summarised by IQM in transfer.md.
IQM_METRICS = (("jumpstart", "jumpstart"), ("final_gain", "gain over last {k} evals"), ("auc", "AUC"))


def mode_curves(run_dir: str, target_tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation curves of a finished run's target tasks: steps ``[E]``, returns ``[S, T, E]``."""
    from mtrl.plots import read_eval_csv

    steps, returns, tasks = read_eval_csv(os.path.join(run_dir, "eval.csv"))  # returns [E, S, T_all]
    missing = [t for t in target_tasks if t not in tasks]
    if missing:
        raise ValueError(f"{run_dir}/eval.csv has no rows for target tasks {missing}")
    columns = [tasks.index(t) for t in target_tasks]
    return steps, np.transpose(returns[:, :, columns], (1, 2, 0))


def mode_identity(mode: str, source: Source, tasks: Sequence[str], transfer: TransferSettings, config: DQNConfig,
                  seeds: Sequence[int]) -> dict[str, Any]:
    """What makes a mode run the experiment a study asks for (compared with `saved_mode_identity`).

    The config is the one the mode trains with (``joint`` sets its own task weights); the settings are those the
    mode uses (`MODE_SETTINGS`); the source (path and fingerprint) counts for every mode but ``scratch``, which
    does not read it.
    """
    tcfg = transfer.with_mode(mode)
    identity: dict[str, Any] = {
        "mode": mode,
        "config": dataclasses.asdict(target_config(config, tcfg, len(source.tasks), len(tasks))),
        "target_tasks": list(tasks),
        "seeds": [int(s) for s in seeds],
        "settings": {name: getattr(tcfg, name) for name in MODE_SETTINGS[mode]},
    }
    if mode != "scratch":
        identity["source_run"] = source.run_dir
        identity["source_fingerprint"] = source.fingerprint
    return identity


def saved_mode_identity(run_dir: str, mode: str) -> dict[str, Any]:
    """`mode_identity` of the run in ``run_dir``, read from its config.json."""
    saved = read_config_json(run_dir)
    info = saved.get("transfer") or {}
    settings = info.get("settings") or {}
    identity: dict[str, Any] = {
        "mode": settings.get("mode"),
        "config": DQNConfig.with_defaults(saved.get("config")),
        "target_tasks": info.get("target_tasks"),
        "seeds": saved.get("seeds"),
        "settings": {name: settings.get(name) for name in MODE_SETTINGS[mode]},
    }
    if mode != "scratch":
        identity["source_run"] = info.get("source_run")
        identity["source_fingerprint"] = info.get("source_fingerprint")
    return identity


class StudyStopped(KeyboardInterrupt):
    """A study's run stopped by a signal or ``stop_at_step`` with its checkpoint saved: the study stops before its
    next run (an interrupt), and rerunning the same command continues it."""

    def __init__(self, mode: str, stopped_at: int, signal: int | None):
        super().__init__(f"study stopped in mode {mode} at {stopped_at:,} env steps per task (checkpoint saved); "
                         "rerun the same command to continue")
        self.mode, self.stopped_at, self.signal = mode, stopped_at, signal


def check_modes(modes: Sequence[str], transfer: TransferSettings, config: DQNConfig) -> list[str]:
    """The study's modes (scratch first, each once), each mode's settings checked to act within the targets'
    ``config`` (`TransferConfig.check_acts`): a study calls it before anything trains, its source run included."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown modes {unknown}; allowed: {', '.join(MODES)}")
    modes = ["scratch"] + [m for m in dict.fromkeys(modes) if m != "scratch"]
    for mode in modes:
        transfer.with_mode(mode).validate().check_acts(config)
    return modes


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
    rerun: bool = False,
    references: Mapping[str, float] | None = None,
    random_episodes: int = 1000,
    **train_kwargs,
) -> dict[str, Any]:
    """Run every mode in ``modes`` (scratch is added when missing) and write the study files.

    Args:
        source_run: a run directory with checkpoints (the pretrained source).
        tasks: target task specs.
        modes: transfer modes; their settings (unfreeze_at, l2sp_alpha, ...) come from ``transfer``.
        threshold: normalised return that counts as "reached" for time to threshold.
        last_k: evaluations averaged for the final gain over scratch.
        rerun: retrain modes whose existing run is another experiment (moved aside) instead of refusing.
        references: reference returns by target spec, for specs without a known one (`scores.reference_return`).
        random_episodes: episodes of uniformly random play that measure each target's floor of the normalisation.
        train_kwargs: passed to `mtrl.trainer.train` (checkpoints, ...).

    Returns the content of transfer.json.
    """
    tasks = list(tasks)
    seeds = check_seeds(seeds, distinct=True)
    if isinstance(transfer, TransferConfig):  # its mode would be ignored, and recorded in transfer.json
        raise ValueError(f"transfer takes the modes' shared settings, a TransferSettings, not a TransferConfig "
                         f"(mode {transfer.mode!r}); name the modes in modes=[...]")
    if not 0 < threshold <= 1.5:
        raise ValueError(f"threshold is a normalised return; must be in (0, 1.5], got {threshold}")
    from mtrl.tasks import find_spec, make_taskset, spec_error

    # keyed by the targets' spelling: a reference may write a target another way (length=0.50 for length=0.5)
    by_target = {spec: (find_spec(spec, tasks, config.protocol), value) for spec, value in (references or {}).items()}
    strays = [spec for spec, (target, _) in by_target.items() if target is None]
    if strays:
        raise ValueError(f"references name specs that are not target tasks: {', '.join(map(repr, strays))}; the "
                         f"targets are {', '.join(map(repr, tasks))}"
                         + "".join(spec_error(s, config.protocol) for s in strays))
    for target in tasks:
        named = [spec for spec, (t, _) in by_target.items() if t == target]
        if len(named) > 1:
            raise ValueError(f"references give target {target!r} more than one return: "
                             f"{', '.join(map(repr, named))} all name it")
    references = {target: value for target, value in by_target.values()}
    reference = np.array([scores.reference_return(t, references) for t in tasks])  # before training

    taskset = make_taskset(tasks, config.protocol)
    config.validate(taskset.num_tasks)
    scores.check_last_k(last_k, config.num_evaluations)  # before anything trains; `transfer_metrics` uses it too
    modes = check_modes(modes, transfer, config)  # before anything trains
    source = load_source(source_run, transfer.source_step)
    for mode in modes:  # and splice into the target network, before anything trains
        tcfg = transfer.with_mode(mode)
        check_splice(source, build_trainer(target_task_list(mode, source.tasks, tasks),
                                           target_config(config, tcfg, len(source.tasks), len(tasks)), tcfg), tcfg)
    if set(modes) - {"scratch"}:
        warn_shared_sources(source, seeds)  # before anything trains (each mode's train_transfer says it again)
    random = evaluate.random_returns(taskset, random_episodes)
    os.makedirs(run_dir, exist_ok=True)

    curves = {}
    for mode in modes:
        mode_dir = os.path.join(run_dir, mode)
        status = prepare_reuse(mode_dir, lambda d, mode=mode: saved_mode_identity(d, mode),
                               mode_identity(mode, source, tasks, transfer, config, seeds), rerun, f"{mode} run",
                               quiet=not progress)
        if status != "finished":
            if progress:
                print(f"[study] mode {mode} -> {mode_dir}" + (" (resuming)" if status == "interrupted" else ""))
            if status == "interrupted":
                result = resume_run(mode_dir, progress=progress, **train_kwargs)
            else:
                result = train_transfer(source_run, tasks, transfer.with_mode(mode), config,
                                        seeds=seeds, run_dir=mode_dir, progress=progress, **train_kwargs)
            if result.stopped_at is not None:
                raise StudyStopped(mode, result.stopped_at, result.signal)
        steps, raw = mode_curves(mode_dir, tasks)
        curves[mode] = (steps, scores.normalise(raw, random[None, :, None], reference[None, :, None]))

    steps, scratch = curves["scratch"]
    for mode, (mode_steps, _) in curves.items():
        if not np.array_equal(mode_steps, steps):
            raise ValueError(f"mode {mode} evaluated at other steps than scratch; use one config for the study")
    results = {mode: mode_results(steps, curves[mode][1], scratch, last_k, threshold,
                                  0 if mode == "scratch" else source.env_steps)
               for mode in modes}
    study = {
        "source_run": source.run_dir,
        "source_step": source.step,
        "source_tasks": source.tasks,
        "source_env_steps": source.env_steps,
        "source_fingerprint": source.fingerprint,
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
    write_json(os.path.join(run_dir, "transfer.json"), study)
    with open(os.path.join(run_dir, "transfer.md"), "w") as f:
        f.write(study_markdown(study))
    from mtrl.plots import plot_transfer_curves

    plot_transfer_curves(steps, {m: c for m, (_, c) in curves.items()}, tasks,
                         os.path.join(run_dir, "transfer_curves.png"), eval_epsilon=config.eval_epsilon)
    return study


def mode_results(steps: np.ndarray, curve: np.ndarray, scratch: np.ndarray, last_k: int, threshold: float,
                 source_steps: int) -> dict[str, Any]:
    """One mode's entry of transfer.json from normalised curves ``[S, T, E]`` at ``steps [E]`` (``scratch`` the
    same shape, same seeds)."""
    per_seed = scores.transfer_metrics(steps, curve, scratch, last_k=last_k, threshold=threshold,
                                         source_steps=source_steps)
    ratio = scores.transfer_ratio(per_seed["auc"], per_seed["auc_scratch"])
    return {
        "per_seed": {k: np.where(np.isinf(v), None, v).tolist() if v.dtype.kind == "f" else v.tolist()
                     for k, v in per_seed.items()},
        "aggregate": {k: statistics.aggregate(per_seed[k]) for k, _ in IQM_METRICS},
        "transfer_ratio": {"value": None if np.isnan(ratio) else ratio,
                           "ci": [None if np.isnan(v) else v for v in
                                  scores.transfer_ratio_ci(per_seed["auc"], per_seed["auc_scratch"])],
                           "scratch_area": float(np.sum(per_seed["auc_scratch"]))},
        "time_to_threshold": statistics.threshold_summary(per_seed["time_to_threshold"], per_seed["censored"]),
        "time_to_threshold_with_source": statistics.threshold_summary(per_seed["time_to_threshold_with_source"],
                                                                    per_seed["censored"]),
        "probability_of_improvement_auc": statistics.probability_of_improvement(per_seed["auc"],
                                                                             per_seed["auc_scratch"]),
        "probability_of_improvement_auc_ci": statistics.probability_of_improvement_ci(per_seed["auc"],
                                                                                   per_seed["auc_scratch"]),
    }


def _fmt(agg: dict[str, float], digits: int = 2) -> str:
    if np.isnan(agg["iqm"]):
        return "undefined"
    low, high = agg["iqm_ci"]
    return f"{agg['iqm']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _fmt_ratio(r: dict[str, Any]) -> str:
    if r["value"] is None:
        return "undefined (scratch area <= 0)"
    low, high = r["ci"]
    return f"{r['value']:.2f} [{low:.2f}, {high:.2f}]"


def _fmt_steps(v: float | None) -> str:
    return "not reached" if v is None else f"{v / 1e3:.0f}"


def _fmt_threshold(t: dict[str, Any]) -> str:
    if t["median"] is None:
        return "not reached"
    low, high = t["median_ci"]
    return f"{_fmt_steps(t['median'])} [{_fmt_steps(low)}, {_fmt_steps(high)}]"


def _evaluation_note(config: dict[str, Any]) -> str:
    """A sentence for a study whose evaluation episodes were not greedy (its config's ``eval_epsilon``)."""
    epsilon = config.get("eval_epsilon") or 0.0
    return (f"Evaluation episodes take a random action with probability {epsilon:g} at each step; the normalisation's "
            "reference and the threshold are not adjusted for it. ") if epsilon else ""


def study_markdown(study: dict[str, Any]) -> str:
    """transfer.md: one row per mode. IQM over (seed, task) with stratified-bootstrap 95% CIs for the per-run
    metrics; the transfer ratio of summed areas with a paired bootstrap CI; time to threshold censored (runs
    that reached it, Kaplan–Meier median with a bootstrap CI)."""
    k = study["last_k"]
    header = ["mode"] + [label.format(k=k) for _, label in IQM_METRICS]
    header += ["transfer ratio", "reached threshold", "steps to threshold (k)", "incl. source (k)",
               "P(AUC > scratch)"]
    rows = []
    for mode in study["modes"]:
        r = study["results"][mode]
        t = r["time_to_threshold"]
        low, high = r["probability_of_improvement_auc_ci"]
        rows.append([mode] + [_fmt(r["aggregate"][key]) for key, _ in IQM_METRICS] + [
            "—" if mode == "scratch" else _fmt_ratio(r["transfer_ratio"]),
            f"{t['reached']}/{t['runs']}", _fmt_threshold(t), _fmt_threshold(r["time_to_threshold_with_source"]),
            "—" if mode == "scratch" else f"{r['probability_of_improvement_auc']:.2f} [{low:.2f}, {high:.2f}]"])
    norm = ", ".join(f"{t}: random {v['random']:.1f}, reference {v['reference']:.0f}"
                     for t, v in study["normalisation"].items())
    few = len(study["seeds"]) < 5
    return (
        f"Transfer from {study['source_tasks']} (checkpoint at {study['source_step']:,} env steps per task) to "
        f"{study['target_tasks']}; seeds {study['seeds']}; {study['config']['total_steps']:,} target env steps per "
        f"task.\n\n{_evaluation_note(study['config'])}Returns are normalised (R - R_random) / (R_ref - R_random) "
        f"({norm}). Jumpstart, the gain over "
        f"the last {k} evaluations (a gain at the end of the budget, not an asymptote unless both runs have "
        f"converged) and AUC (mean normalised return over training) are per (seed, task): IQM with "
        f"stratified-bootstrap 95% CIs; jumpstart and gain are differences to scratch at the same seed. Transfer "
        f"ratio = (sum AUC - sum AUC_scratch) / sum AUC_scratch over all (seed, task) runs, with a paired "
        f"bootstrap 95% CI; undefined where the scratch area is <= 0. Time to threshold (normalised "
        f"{study['threshold']}) counts target env steps per task; runs that never reach it are censored, not "
        f"counted as reaching it: 'reached threshold' counts those that did, the steps are the Kaplan-Meier median "
        f"with a bootstrap 95% CI ('not reached': fewer than half are estimated to reach it); 'incl. source' adds "
        f"the source run's {study['source_env_steps']:,} env steps. P(AUC > scratch): probability of improvement "
        f"with a stratified-bootstrap 95% CI."
        + (f" With {len(study['seeds'])} seeds these intervals are rough; they are not meaningful below 5."
           if few else "")
        + "\n\n" + markdown_table(header, rows)
    )
