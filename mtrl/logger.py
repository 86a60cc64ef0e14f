"""Run directory, metric files, progress bar and optional TensorBoard; host-side, between compiled chunks.

A run directory holds::

    config.json     config, tasks, seeds, package versions, device
    metrics.jsonl   one line per chunk: training returns, losses, throughput
    eval.csv        step,task,seed,return (greedy, mean over the evaluation episodes)
    summary.json    per-task final return {mean, iqm, ci_low, ci_high, per_seed} and timing
    summary.md      the same as a table
    curves.png      greedy return vs env steps per task, mean and 95% bootstrap band across seeds
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
import platform
from importlib import metadata
from typing import Any

import numpy as np

from mtrl.evaluate import summarize

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


def environment_info() -> dict[str, Any]:
    """Package versions, Python, the CPU and the device the run used."""
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
    }


def short_name(spec: str) -> str:
    """A compact label for progress bars: ``CartPole-v1:length=0.25`` -> ``CartPole:length=0.25``."""
    env, _, fields = spec.partition(":")
    env = env.split("-")[0]
    return f"{env}:{fields}" if fields else env


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class RunLogger:
    """Writes a run's files (when ``run_dir`` is set) and drives its progress bar."""

    def __init__(self, run_dir: str | None, task_names: list[str], seeds: list[int], config: Any,
                 progress: bool = True, tensorboard: bool = False, extra_metadata: dict | None = None,
                 resume_step: int | None = None):
        """``resume_step``: continue an existing run directory from that step (env steps per task): rows
        logged after it (by a run that went on past its last checkpoint) are dropped, config.json gains a
        ``resumes`` entry, and nothing else is rewritten."""
        self.run_dir = run_dir
        self.task_names = task_names
        self.seeds = seeds
        self.config = config
        self._bar = None
        self._tb = None
        self._eval_file = self._metrics_file = None
        if progress:
            from tqdm.auto import tqdm

            total = config.iterations * config.num_envs
            self._bar = tqdm(total=total, initial=resume_step or 0, unit="step", desc="train", dynamic_ncols=True)
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
        with open(config_path, "w") as f:
            json.dump(meta, f, indent=2)
        self._metrics_file = open(os.path.join(run_dir, "metrics.jsonl"), "a")
        new_csv = not os.path.exists(os.path.join(run_dir, "eval.csv"))
        self._eval_file = open(os.path.join(run_dir, "eval.csv"), "a", newline="")
        self._eval_csv = csv.writer(self._eval_file)
        if new_csv:
            self._eval_csv.writerow(["step", "task", "seed", "return"])
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as e:
                raise ImportError("tensorboard=True needs tensorboardX: pip install 'mtrl-jax[tensorboard]'") from e
            self._tb = SummaryWriter(os.path.join(run_dir, "tb"))

    def log_eval(self, step: int, returns: np.ndarray) -> None:
        """Greedy returns ``[S, T]`` at ``step`` env steps per task."""
        if self._eval_file is not None:
            for t, name in enumerate(self.task_names):
                for s, seed in enumerate(self.seeds):
                    self._eval_csv.writerow([step, name, seed, f"{returns[s, t]:.6g}"])
            self._eval_file.flush()
        if self._tb is not None:
            for t, name in enumerate(self.task_names):
                self._tb.add_scalar(f"eval_return/{name}", float(returns[:, t].mean()), step)

    def log_chunk(self, step: int, metrics: dict[str, np.ndarray], eval_returns: np.ndarray,
                  env_steps_per_s: float) -> None:
        """Chunk metrics (`Trainer.make_train_chunk`) and the evaluation that followed it."""
        episodes = np.asarray(metrics["episodes"])
        with np.errstate(invalid="ignore", divide="ignore"):
            train_return = np.where(episodes > 0, metrics["return_sum"] / np.maximum(episodes, 1), np.nan)
        if self._metrics_file is not None:
            record = {
                "step": step,
                "updates": int(metrics["updates"]),
                "env_steps_per_s": env_steps_per_s,
                "grad_norm": np.asarray(metrics["grad_norm"]).tolist(),
                "tasks": {
                    name: {
                        "train_return": [None if np.isnan(v) else float(v) for v in train_return[:, t]],
                        "episodes": episodes[:, t].tolist(),
                        "loss": np.asarray(metrics["loss"])[:, t].tolist(),
                        "eval_return": eval_returns[:, t].tolist(),
                    }
                    for t, name in enumerate(self.task_names)
                },
            }
            self._metrics_file.write(json.dumps(record) + "\n")
            self._metrics_file.flush()
        if self._tb is not None:
            for t, name in enumerate(self.task_names):
                self._tb.add_scalar(f"loss/{name}", float(np.mean(metrics["loss"][:, t])), step)
            self._tb.add_scalar("env_steps_per_s", env_steps_per_s, step)
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            shown = {short_name(n): f"{np.nanmean(eval_returns[:, t]):.0f}" for t, n in enumerate(self.task_names)}
            self._bar.set_postfix({"sps": f"{env_steps_per_s:,.0f}", **shown}, refresh=True)

    def finish(self, eval_steps: np.ndarray, eval_returns: np.ndarray, timing: dict[str, float]) -> dict[str, Any]:
        """Write summary.json, summary.md and curves.png; return the summary."""
        final = eval_returns[-1]  # [S, T]
        summary = {
            "tasks": {name: {"final_return": summarize(final[:, t])} for t, name in enumerate(self.task_names)},
            "seeds": self.seeds,
            **timing,
        }
        if self.run_dir is not None:
            with open(os.path.join(self.run_dir, "summary.json"), "w") as f:
                json.dump(summary, f, indent=2)
            with open(os.path.join(self.run_dir, "summary.md"), "w") as f:
                f.write(summary_markdown(summary))
            from mtrl.plots import plot_curves

            plot_curves(eval_steps, eval_returns, self.task_names, os.path.join(self.run_dir, "curves.png"))
        return summary

    def close(self) -> None:
        for f in (self._metrics_file, self._eval_file):
            if f is not None:
                f.close()
        if self._tb is not None:
            self._tb.close()
        if self._bar is not None:
            self._bar.close()


def _drop_rows_after(path: str, step: int, step_of, header: bool = False) -> None:
    """Rewrite ``path`` without the lines whose step (``step_of(line)``) is past ``step``, and without a torn
    last line (a process killed mid-write)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    def keep(line: str) -> bool:
        try:
            return line.endswith("\n") and step_of(line) <= step
        except (ValueError, KeyError):
            return False

    kept = [line for line in body if keep(line)]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(head + kept)
    os.replace(tmp, path)


def summary_markdown(summary: dict[str, Any]) -> str:
    """Per-task final greedy return table plus timing."""
    rows = []
    for name, s in summary["tasks"].items():
        r = s["final_return"]
        rows.append([name, f"{r['iqm']:.1f}", f"{r['mean']:.1f}", f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
                     " ".join(f"{v:.0f}" for v in r["per_seed"])])
    table = markdown_table(["task", "IQM", "mean", "95% CI (mean)", "per seed"], rows)
    n = len(summary["seeds"])
    few = (f"With {n} seed{'s' if n > 1 else ''} the 95% interval is not meaningful (with 2 it is about the range); "
           "use 5 or more seeds for intervals.\n\n" if n < 5 else "")
    return (
        f"Final greedy return over {n} seeds ({summary['seeds']}), "
        f"{summary['env_steps_per_task']:,} env steps per task.\n\n{table}\n{few}"
        f"wall {summary['wall_s']:.1f} s (compile {summary['compile_s']:.1f} s), "
        f"{summary['env_steps_per_s']:,.0f} env steps/s\n"
    )
