"""Run directory, metric files, progress bar and optional TensorBoard; host-side, between compiled chunks.

A run directory holds::

    config.json     config, tasks, seeds, checkpoint options, logging cadence, package versions, device
    metrics.jsonl   training metrics every `log_every` env steps per task (see `RunLogger.log_window`)
    eval.csv        step,task,seed,return (mean over the evaluation episodes: greedy, or at the config's eval_epsilon)
    summary.json    per-task final return {mean, iqm, ci_low, ci_high, iqm_ci_low, iqm_ci_high, per_seed}, timing
                    (and eval_epsilon when evaluation was not greedy)
    summary.md      the same as a table
    curves.png      evaluation return vs env steps per task, mean and 95% bootstrap band across seeds
    tb/             TensorBoard events (``tensorboard=True``): one run per seed (``tb/seed_<k>``) and their
                    mean (``tb/mean``), with CleanRL's tag names

Every text file uses LF line endings.

Axes: ``S`` runs (seeds), ``T`` tasks (evaluation returns ``[S, T]`` per evaluation).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import functools
import json
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from mtrl.scores import return_label
from mtrl.statistics import summarize

PACKAGES = ("mtrl-jax", "jax", "jaxlib", "flax", "optax", "chex", "gymnax", "rlax", "orbax-checkpoint")


def default_run_dir(name: str, root: str = "runs") -> str:
    """``runs/<name>/<timestamp>``: where commands and experiments write when no directory is given."""
    return os.path.join(root, name, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def _cpu() -> tuple[str, bool]:
    """(CPU model name, whether it has AVX-512): hosts of one machine kind differ 2-3x in learner speed and in
    floating-point rounding, so results record which they came from."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor() or "unknown", False
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    return model, "avx512f" in text


def host_description(info: dict[str, Any]) -> str:
    """``"AMD EPYC with AVX-512, 2 CPU cores; 1 x NVIDIA H100 80GB HBM3"`` from an `environment_info()` record (or
    one read back from a config.json)."""
    device = info.get("device") or {}
    host = (f"{info.get('cpu', '?')}{' with AVX-512' if info.get('avx512') else ''}, {device.get('cpu_count', '?')} "
            "CPU cores")
    if device.get("backend", "cpu") != "cpu":
        host += f"; {device.get('count', '?')} x {device.get('kind', '?')}"
    return host


DOCS_PATHSPEC = (":(exclude)docs", ":(exclude)*.md")


def source_revision() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout mtrl was imported from (``dirty``: tracked files other
    than documentation differ from the commit), or None where mtrl is not a checkout's own (an installed wheel) or
    git is missing: which code produced a run, beside the package versions. Documentation (`DOCS_PATHSPEC`: docs/
    and Markdown files) does not count, since no run reads it and publishing one study rewrites docs/results while
    the next one trains."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or os.path.realpath(top) != os.path.realpath(root):
        return None
    commit = git("rev-parse", "HEAD")
    # no optional locks: a status refresh must not hold index.lock against the author's own commits
    status = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no", "--", ".", *DOCS_PATHSPEC)
    return None if commit is None or status is None else {"commit": commit, "dirty": bool(status)}


def source_description(info: dict[str, Any]) -> str | None:
    """``"commit 1a2b3c4d5e6f"`` (``" with uncommitted changes"`` when its code was dirty) from an
    `environment_info()` record; None when it has no source revision."""
    source = info.get("source")
    if not source:
        return None
    return f"commit {source['commit'][:12]}" + (" with uncommitted changes" if source["dirty"] else "")


@functools.cache
def process_source_revision() -> dict[str, Any] | None:
    """`source_revision()` as this process first asked for it (before its first run): the code a long study
    imported, which a commit made while it trains does not change."""
    return source_revision()


def environment_info() -> dict[str, Any]:
    """Package versions, Python, the CPU and the device the run used, and the source revision of the mtrl code this
    process runs (`process_source_revision`)."""
    import jax

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    devices = jax.devices()
    cpu, avx512 = _cpu()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "avx512": avx512,
        "device": {"backend": jax.default_backend(), "kind": devices[0].device_kind, "count": len(devices),
                   "cpu_count": os.cpu_count()},
        "source": process_source_revision(),
    }


TENSORBOARD_INSTALL = "pip install 'mtrl-jax[tensorboard]'"


def require_tensorboard() -> None:
    """Raise ImportError with the install command when the TensorBoard writer is not installed: called before a
    run compiles or creates anything."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError as e:
        raise ImportError(f"--tensorboard (tensorboard=True) needs tensorboardX: {TENSORBOARD_INSTALL}") from e


def write_json(path: str, data: Any, indent: int = 2) -> None:
    """``data`` as indented JSON with a final newline (every file mtrl writes is LF-terminated text)."""
    with open(path, "w", newline="") as f:
        json.dump(data, f, indent=indent)
        f.write("\n")


def short_name(spec: str) -> str:
    """A compact label for progress bars: ``CartPole-v1:length=0.25`` -> ``CartPole:length=0.25``."""
    env, _, fields = spec.partition(":")
    env = env.split("-")[0]
    return f"{env}:{fields}" if fields else env


def short_names(specs: list[str]) -> list[str]:
    """Compact labels of a task set's specs: the env's short name where the set has that env once
    (``MountainCar-v0:gamma=0.98,eps_end=0.2`` beside ``CartPole-v1`` -> ``MountainCar``), else `short_name`
    (``CartPole:length=0.25``, ``CartPole:length=0.5``); the whole spec where two labels would be the same
    (``Breakout-MinAtar`` beside ``Breakout-bsuite``)."""
    envs = [spec.partition(":")[0] for spec in specs]
    labels = [short_name(env if envs.count(env) == 1 else spec) for spec, env in zip(specs, envs, strict=True)]
    return [spec if labels.count(label) > 1 else label for spec, label in zip(specs, labels, strict=True)]


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class RunLogger:
    """Writes a run's files (when ``run_dir`` is set) and drives its progress bar."""

    def __init__(self, run_dir: str | None, task_names: list[str], seeds: list[int], config: Any,
                 progress: bool = True, tensorboard: bool = False, extra_metadata: dict | None = None,
                 resume_step: int | None = None, wandb: Any = None):
        """``resume_step``: continue an existing run directory from that step (env steps per task): rows
        logged after it (by a run that went on past its last checkpoint) are dropped, config.json gains a
        ``resumes`` entry, and nothing else is rewritten. ``wandb``: `mtrl.tracking.WandbOptions` to also track
        the run in Weights & Biases (needs ``run_dir``; a resumed run continues its W&B run)."""
        self.run_dir = run_dir
        self.task_names = task_names
        self.seeds = seeds
        self.config = config
        self._bar = None
        self._tb = None
        self._wandb = None
        self._eval_file = self._metrics_file = None
        if progress:
            from tqdm.auto import tqdm

            total = config.iterations * config.num_envs
            # tqdm's own rate would count steps per task; the one rate shown is the labelled env steps/s (all
            # tasks and seeds) set by `log_window`.
            self._bar = tqdm(total=total, initial=resume_step or 0, desc="train", dynamic_ncols=True,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps per task "
                                        "[{elapsed}<{remaining}{postfix}]")
        if run_dir is None:
            return
        os.makedirs(run_dir, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC).isoformat()
        config_path = os.path.join(run_dir, "config.json")
        if resume_step is None:
            meta = {
                "config": dataclasses.asdict(config),
                "tasks": task_names,
                "seeds": seeds,
                "created": now,
                **environment_info(),
                **(extra_metadata or {}),
            }
        else:
            with open(config_path) as f:
                meta = json.load(f)
            meta.setdefault("resumes", []).append({"from_step": resume_step, "at": now, **environment_info()})
            _drop_rows_after(os.path.join(run_dir, "metrics.jsonl"), resume_step, lambda line: json.loads(line)["step"])
            _drop_rows_after(os.path.join(run_dir, "eval.csv"), resume_step, lambda line: int(line.split(",")[0]),
                             header=True)
        if wandb is not None:
            from mtrl.tracking import WandbRun

            self._wandb = WandbRun(wandb, run_dir, {k: v for k, v in meta.items() if k != "wandb"},
                                   resume_id=(meta.get("wandb") or {}).get("id") if resume_step is not None else None)
            meta["wandb"] = {"id": self._wandb.id, "project": wandb.project, "group": wandb.group}
        write_json(config_path, meta)
        self._metrics_file = open(os.path.join(run_dir, "metrics.jsonl"), "a")
        new_csv = not os.path.exists(os.path.join(run_dir, "eval.csv"))
        self._eval_file = open(os.path.join(run_dir, "eval.csv"), "a", newline="")
        self._eval_csv = csv.writer(self._eval_file, lineterminator="\n")
        if new_csv:
            self._eval_csv.writerow(["step", "task", "seed", "return"])
        if tensorboard:
            require_tensorboard()
            from tensorboardX import SummaryWriter

            self._tb = {name: SummaryWriter(os.path.join(run_dir, "tb", name))
                        for name in [*(f"seed_{seed}" for seed in seeds), "mean"]}

    def log_eval(self, step: int, returns: np.ndarray) -> None:
        """Evaluation returns ``[S, T]`` at ``step`` env steps per task."""
        if self._eval_file is not None:
            for t, name in enumerate(self.task_names):
                for s, seed in enumerate(self.seeds):
                    self._eval_csv.writerow([step, name, seed, f"{returns[s, t]:.6g}"])
            self._eval_file.flush()
        self._scalars(step, {f"eval/return/{name}": returns[:, t] for t, name in enumerate(self.task_names)})

    def log_window(self, step: int, metrics: dict[str, np.ndarray], env_steps_per_s: float,
                   eval_returns: np.ndarray | None = None) -> None:
        """One logging window of a chunk (`Trainer.make_train_chunk`, leaves without the window axis), ending at
        ``step`` env steps per task; ``eval_returns [S, T]`` on the window that ends a chunk.

        A metrics.jsonl record holds per-seed lists (in ``seeds`` order) and, under ``seed_mean``, their means:
        ``train_return`` (mean return of the training episodes that ended in the window; None where none did),
        ``episodes``, ``loss`` (TD loss), ``td_abs`` (mean |TD error|), ``q_taken`` (mean online Q of the
        sampled actions), ``epsilon``, with PopArt ``popart_shift`` and ``popart_scale`` (μ, σ of the task's
        targets) per task; ``learning_rate`` and ``grad_norm`` (before clipping) per seed (None: not measured,
        `DQNConfig.learner_diagnostics`); ``loss``, ``td_abs``, ``q_taken`` and ``grad_norm`` are None in a window
        without a gradient update (before ``learning_starts``, or a window shorter than ``update_every``);
        ``updates`` and ``env_steps_per_s`` (every task and seed, per second of training since the process
        started, measured at chunk ends); ``diverged`` per seed (its parameters became non-finite in the window
        and were frozen at the window's start).
        """
        episodes = np.asarray(metrics["episodes"])
        if int(metrics["updates"]) == 0:  # no gradient step in the window: the learner's zeros are not measurements
            metrics = {**metrics, **{k: np.full(np.shape(metrics[k]), np.nan)
                                     for k in ("loss", "td_abs", "q_taken", "grad_norm") if k in metrics}}
        with np.errstate(invalid="ignore", divide="ignore"):
            train_return = np.where(episodes > 0, metrics["return_sum"] / np.maximum(episodes, 1), np.nan)
        per_task = {"train_return": train_return, "episodes": episodes,
                    **{k: np.asarray(metrics[k]) for k in ("loss", "td_abs", "q_taken", "epsilon", "popart_shift",
                                                           "popart_scale") if k in metrics}}
        if eval_returns is not None:
            per_task["eval_return"] = np.asarray(eval_returns)
        if self._metrics_file is not None:
            record = {
                "step": step,
                "updates": int(metrics["updates"]),
                "env_steps_per_s": env_steps_per_s,
                "learning_rate": np.asarray(metrics["learning_rate"]).tolist(),
                "grad_norm": _json_list(metrics["grad_norm"]),
                **({"diverged": np.asarray(metrics["diverged"]).tolist()} if "diverged" in metrics else {}),
                "tasks": {name: {**{k: _json_list(v[:, t]) for k, v in per_task.items()},
                                 "seed_mean": {k: _json_mean(v[:, t]) for k, v in per_task.items()}}
                          for t, name in enumerate(self.task_names)},
            }
            self._metrics_file.write(json.dumps(record) + "\n")
            self._metrics_file.flush()
        tracking = self._tb is not None or self._wandb is not None
        if tracking and int(metrics["updates"]) > 0:
            tags = {"losses/td_loss": "loss", "losses/td_abs": "td_abs", "losses/q_values": "q_taken",
                    "popart/shift": "popart_shift", "popart/scale": "popart_scale"}
            tags = {tag: key for tag, key in tags.items() if key in per_task}
            self._scalars(step, {f"{tag}/{name}": per_task[key][:, t]
                                 for tag, key in tags.items() for t, name in enumerate(self.task_names)})
            self._scalars(step, {"losses/grad_norm": np.asarray(metrics["grad_norm"])})
        if tracking:
            self._scalars(step, {**{f"charts/episodic_return/{name}": train_return[:, t]
                                    for t, name in enumerate(self.task_names)},
                                 **{f"charts/epsilon/{name}": per_task["epsilon"][:, t]
                                    for t, name in enumerate(self.task_names)},
                                 "charts/learning_rate": np.asarray(metrics["learning_rate"]),
                                 "charts/SPS": np.full(len(self.seeds), env_steps_per_s / len(self.seeds))})
        if self._bar is not None and eval_returns is not None:
            self._bar.update(step - self._bar.n)
            labels = short_names(self.task_names)
            shown = {label: f"{np.mean(eval_returns[:, t]):.0f}" for t, label in enumerate(labels)}
            self._bar.set_postfix({"env steps/s": f"{env_steps_per_s:,.0f}", **shown}, refresh=True)

    def _scalars(self, step: int, values: dict[str, np.ndarray]) -> None:
        """TensorBoard: each tag's value ``[S]`` to the seeds' writers and its mean to ``mean`` (NaN = nothing);
        W&B: the same (`mtrl.tracking.WandbRun.scalars`)."""
        if self._wandb is not None:
            self._wandb.scalars(step, values, self.seeds)
        if self._tb is None:
            return
        for tag, per_seed in values.items():
            per_seed = np.asarray(per_seed, np.float64)
            for seed, value in zip(self.seeds, per_seed, strict=True):
                if np.isfinite(value):
                    self._tb[f"seed_{seed}"].add_scalar(tag, float(value), step)
            finite = per_seed[np.isfinite(per_seed)]
            if finite.size:
                self._tb["mean"].add_scalar(tag, float(finite.mean()), step)

    def finish(self, eval_steps: np.ndarray, eval_returns: np.ndarray, timing: dict[str, float]) -> dict[str, Any]:
        """Write summary.json, summary.md and curves.png; return the summary."""
        final = eval_returns[-1]  # [S, T]
        epsilon = getattr(self.config, "eval_epsilon", 0.0)
        summary = {
            "tasks": {name: {"final_return": summarize(final[:, t])} for t, name in enumerate(self.task_names)},
            "seeds": self.seeds,
            **({"eval_epsilon": epsilon} if epsilon else {}),  # returns of ε-greedy episodes, not greedy ones
            **timing,
        }
        if self.run_dir is not None:
            write_json(os.path.join(self.run_dir, "summary.json"), summary)
            with open(os.path.join(self.run_dir, "summary.md"), "w") as f:
                f.write(summary_markdown(summary))
            from mtrl.plots import plot_curves

            plot_curves(eval_steps, eval_returns, self.task_names, os.path.join(self.run_dir, "curves.png"),
                        ylabel=return_label(epsilon))
        if self._wandb is not None:
            self._wandb.finish(summary, os.path.join(self.run_dir, "curves.png"))
            self._wandb = None
        return summary

    def close_tracking(self) -> None:
        """End the W&B run without a summary (a stopped or failed run; `finish` ends it with one)."""
        if self._wandb is not None:
            self._wandb.close()
            self._wandb = None

    def close(self) -> None:
        """Close the run's files, TensorBoard writers and progress bar (W&B ends in `finish` or
        `close_tracking`)."""
        for f in (self._metrics_file, self._eval_file):
            if f is not None:
                f.close()
        for writer in (self._tb or {}).values():
            writer.close()
        if self._bar is not None:
            self._bar.close()


@dataclasses.dataclass(frozen=True)
class RunGroup:
    """Runs of one program that are logged as one run of their own (a sweep's setting): their indices on the run
    axis, the sub-directory they write to, the config they train with as if alone and extra config.json entries."""

    label: str
    runs: tuple[int, ...]
    config: Any
    metadata: dict = dataclasses.field(default_factory=dict)
    directory: str | None = None  # where the group writes (default: ``<program run_dir>/<label>``)


class GroupedRunLogger:
    """`RunLogger`'s interface for a program whose run axis ``S`` holds several groups (a sweep's settings): each
    group writes a plain run directory ``run_dir/<label>/`` (its seeds, its config), the program's own
    config.json stays in ``run_dir`` and one progress bar covers the program."""

    def __init__(self, run_dir: str | None, task_names: list[str], seeds: list[int], config: Any,
                 groups: Sequence[RunGroup], progress: bool = True, tensorboard: bool = False,
                 extra_metadata: dict | None = None, resume_step: int | None = None, wandb: Any = None):
        covered = sorted(i for g in groups for i in g.runs)
        if covered != list(range(len(seeds))):
            raise ValueError(f"run groups must cover each of the {len(seeds)} runs exactly once, got {covered}")
        self.groups = list(groups)
        self.num_runs = len(seeds)
        self.program = RunLogger(None, task_names, seeds, config, progress=progress)  # the progress bar
        if run_dir is not None:
            os.makedirs(run_dir, exist_ok=True)
            config_path = os.path.join(run_dir, "config.json")
            now = datetime.datetime.now(datetime.UTC).isoformat()
            if resume_step is None:
                meta = {"config": dataclasses.asdict(config), "tasks": task_names, "seeds": seeds, "created": now,
                        "groups": {g.label: list(g.runs) for g in groups}, **environment_info(),
                        **(extra_metadata or {})}
            else:
                with open(config_path) as f:
                    meta = json.load(f)
                meta.setdefault("resumes", []).append({"from_step": resume_step, "at": now, **environment_info()})
            write_json(config_path, meta)
        self.loggers = [
            RunLogger(None if run_dir is None else (g.directory or os.path.join(run_dir, g.label)), task_names,
                      [seeds[i] for i in g.runs], g.config, progress=False, tensorboard=tensorboard,
                      extra_metadata={**(extra_metadata or {}), **g.metadata}, resume_step=resume_step, wandb=wandb)
            for g in self.groups]

    def _slice(self, values: Any, runs: tuple[int, ...]) -> Any:
        """Leaves with a leading run axis ``[S, ...]`` -> ``[len(runs), ...]``; others unchanged."""
        index = np.asarray(runs)
        return {k: (np.asarray(v)[index] if np.ndim(v) and np.shape(v)[0] == self.num_runs else v)
                for k, v in values.items()}

    def log_eval(self, step: int, returns: np.ndarray) -> None:
        for group, logger in zip(self.groups, self.loggers, strict=True):
            logger.log_eval(step, np.asarray(returns)[np.asarray(group.runs)])

    def log_window(self, step: int, metrics: dict[str, np.ndarray], env_steps_per_s: float,
                   eval_returns: np.ndarray | None = None) -> None:
        """Each group's share: its runs' metrics and the program's rate times its share of the runs."""
        for group, logger in zip(self.groups, self.loggers, strict=True):
            share = len(group.runs) / self.num_runs
            logger.log_window(step, self._slice(metrics, group.runs), env_steps_per_s * share,
                              None if eval_returns is None else np.asarray(eval_returns)[np.asarray(group.runs)])
        self.program.log_window(step, metrics, env_steps_per_s, eval_returns)

    def finish(self, eval_steps: np.ndarray, eval_returns: np.ndarray, timing: dict[str, float]) -> dict[str, Any]:
        """Each group's summary (its own summary.json, .md, curves.png); returns ``{"groups": {label: summary},
        **timing}`` (timing is the whole program's)."""
        summaries = {}
        for g, logger in zip(self.groups, self.loggers, strict=True):
            share = len(g.runs) / self.num_runs
            rate = timing["env_steps_per_s"]  # None in a summary written from a checkpoint without timing
            own = {**timing, "env_steps_per_s": None if rate is None else rate * share,
                   "program_env_steps_per_s": rate}  # wall and compile: the whole program's
            summaries[g.label] = logger.finish(eval_steps, np.asarray(eval_returns)[:, np.asarray(g.runs)], own)
        return {"groups": summaries, **timing}

    def close_tracking(self) -> None:
        for logger in self.loggers:
            logger.close_tracking()

    def close(self) -> None:
        for logger in [*self.loggers, self.program]:
            logger.close()


def _json_list(values: np.ndarray) -> list:
    """Per-seed values for JSON: NaN (no episode ended, or not measured) as None."""
    return [None if isinstance(v, float) and np.isnan(v) else v for v in np.asarray(values).tolist()]


def _json_mean(values: np.ndarray) -> float | None:
    """Mean over the seeds that have a value (None if none has)."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _drop_rows_after(path: str, step: int, step_of, header: bool = False) -> None:
    """Rewrite ``path`` without the lines whose step (``step_of(line)``) is past ``step``, and without a torn
    last line (a process killed mid-write)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:  # lines kept byte for byte (LF, as written)
        lines = f.readlines()
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    def keep(line: str) -> bool:
        try:
            return line.endswith("\n") and step_of(line) <= step
        except (ValueError, KeyError):
            return False

    kept = [line for line in body if keep(line)]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.writelines(head + kept)
    os.replace(tmp, path)


def returns_table(tasks: dict[str, dict[str, Any]]) -> str:
    """Markdown table of per-task `summarize` records (task -> {iqm, mean, ci_low, ci_high, per_seed}): IQM, mean,
    the mean's 95% interval and every seed's value, one decimal each."""
    rows = [[name, f"{r['iqm']:.1f}", f"{r['mean']:.1f}", f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
             " ".join(f"{v:.1f}" for v in r["per_seed"])] for name, r in tasks.items()]
    return markdown_table(["task", "IQM", "mean", "95% CI (mean)", "per seed"], rows)


def few_seeds_note(n: int) -> str:
    """What an interval over ``n`` seeds is worth, one sentence ("" from 5 seeds on)."""
    if n == 1:
        return "With 1 seed there is no interval (its bounds are the seed's value); use 5 or more seeds for intervals."
    if n < 5:
        return (f"With {n} seeds the 95% interval is not meaningful (it spans about the range of the {n} values); "
                "use 5 or more seeds for intervals.")
    return ""


def summary_markdown(summary: dict[str, Any]) -> str:
    """Per-task final return table (greedy, or at the run's ``eval_epsilon``) plus timing."""
    table = returns_table({name: s["final_return"] for name, s in summary["tasks"].items()})
    n = len(summary["seeds"])
    few = few_seeds_note(n)
    label = return_label(summary.get("eval_epsilon", 0.0))
    return (
        f"Final {label} over {n} seed{'s' if n != 1 else ''} ({summary['seeds']}), "
        f"{summary['env_steps_per_task']:,} env steps per task.\n\n{table}\n" + (f"{few}\n\n" if few else "")
        + f"{_timing_line(summary)}\n"
    )


def _timing_line(summary: dict[str, Any]) -> str:
    """``wall ... s (compile ... s), ... env steps/s``; parts a summary lacks (one written from a checkpoint has
    no compile time, and no rate when its training time is unknown) are left out."""
    wall, compile_s, rate = (summary.get(k) for k in ("wall_s", "compile_s", "env_steps_per_s"))
    parts = []
    if wall is not None:
        parts.append(f"wall {wall:.1f} s" + (f" (compile {compile_s:.1f} s)" if compile_s is not None else ""))
    if rate is not None:
        parts.append(f"{rate:,.0f} env steps/s")
    if summary.get("summary_from_checkpoint"):
        parts.append("summary written from the last checkpoint (all sittings)")
    return ", ".join(parts)
