"""Where a run stands, read from its directory alone (`mtrl status`): finished or not, how far, its checkpoints,
its speed and the time left at that speed, its last evaluation, and how to continue it. A directory that holds
runs (a study, an experiment's, a sweep) gets one line per run.

Nothing here needs the process that trains the run: metrics.jsonl (its last line: step, env steps/s, diverged
seeds), eval.csv, config.json, summary.json and the checkpoints' step list are enough, so it works on a run
training now, stopped, or copied from another machine.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from typing import Any

from mtrl.logger import short_names

SKIPPED_DIRS = {"checkpoints", "shards", "tb", "wandb"}  # parts of a run or sweep, not runs


def is_run_dir(path: str) -> bool:
    """A directory `mtrl` trained (or is training) a run in: its config.json names tasks."""
    try:
        with open(os.path.join(path, "config.json")) as f:
            return "tasks" in json.load(f)
    except (OSError, ValueError):
        return False


def find_runs(directory: str, depth: int = 3) -> list[str]:
    """Run directories at or under ``directory`` (at most ``depth`` levels down), sorted; a run's own parts
    (checkpoints/, tb/) and a sweep's shards/ are not searched."""
    if is_run_dir(directory):
        return [directory]
    if depth == 0 or not os.path.isdir(directory):
        return []
    found = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name not in SKIPPED_DIRS and os.path.isdir(path) and ".replaced-" not in name:
            found += find_runs(path, depth - 1)
    return found


def _last_line(path: str) -> dict[str, Any] | None:
    """The last line of ``path`` that is a whole JSON object (None when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - (1 << 20)))
            lines = f.read().decode(errors="replace").split("\n")
    except OSError:
        return None
    for line in reversed(lines):  # a line being written is no JSON object yet: skipped
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def _last_evaluation(run_dir: str) -> tuple[dict[str, float], int | None]:
    """Each task's mean return over seeds at the last step eval.csv holds for every task, and that step ({}, None
    when there is none)."""
    from mtrl.compare import read_run_curves

    try:
        curves, _ = read_run_curves(run_dir)
    except (ValueError, OSError):
        return {}, None
    if not curves:
        return {}, None
    step = min(int(steps[-1]) for steps, _ in curves.values())
    means = {}
    for task, (steps, returns) in curves.items():
        at = [i for i, s in enumerate(steps.tolist()) if s == step]
        if at:
            means[task] = float(returns[at[0]].mean())
    return means, step


def _checkpoint_steps(run_dir: str, meta: dict[str, Any]) -> list[int]:
    """The run's completed checkpoints (a sweep setting's: its shard's)."""
    from mtrl.checkpoint import Checkpointer, checkpoint_dir
    from mtrl.transfer import sweep_setting_checkpoints

    try:
        setting = sweep_setting_checkpoints(run_dir, meta)
    except ValueError:
        return []
    where = run_dir if setting is None else setting[0]
    if not os.path.isdir(checkpoint_dir(where)):
        return []
    ckpt = Checkpointer(where, read_only=True)
    try:
        return ckpt.steps()
    finally:
        ckpt.close()


def run_status(run_dir: str, now: float | None = None) -> dict[str, Any]:
    """What `mtrl status` says of one run directory, as a dict: ``state`` (``finished``, ``not finished``: it has a
    checkpoint to continue from, or ``not started``: nothing to continue from), ``step`` (the last logged, env steps
    per task) of ``total_steps``, ``checkpoints``, ``env_steps_per_s`` (every task and seed, in the last sitting) and
    ``seconds_left`` at that speed, ``last_written_s`` (seconds since metrics.jsonl changed), ``eval_step`` and
    ``eval_returns`` (task -> mean over seeds, from eval.csv), ``diverged_seeds``, ``sittings``, and ``continue``
    (how to continue it)."""
    from mtrl.provenance import read_config_json

    if not is_run_dir(run_dir):
        raise ValueError(f"{run_dir!r} is not a run directory (no config.json naming tasks)")
    meta = read_config_json(run_dir)
    tasks, seeds = list(meta["tasks"]), list(meta.get("seeds") or [])
    total = int((meta.get("config") or {}).get("total_steps") or 0)
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    last = _last_line(metrics_path) or {}
    summary_path = os.path.join(run_dir, "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else None
    checkpoints = _checkpoint_steps(run_dir, meta)
    step = int(last.get("step") or 0)
    if summary is not None:
        state, step = "finished", int(summary.get("env_steps_per_task") or step)
    else:
        state = "not finished" if checkpoints else "not started"
    rate = last.get("env_steps_per_s")
    per_task_rate = rate / (len(tasks) * max(len(seeds), 1)) if rate else None
    evaluated, eval_step = _last_evaluation(run_dir)
    sweep = meta.get("sweep")
    if state == "finished":
        how = None
    elif sweep is not None:
        how = "rerun the sweep's command (python -m mtrl sweep ... or mtrl.sweep(...)): it continues its programs"
    elif meta.get("experiment"):
        how = (f"rerun the experiment (python -m experiments.{meta['experiment']} with the same options), or "
               f"python -m mtrl train --resume {run_dir}")
    elif checkpoints:
        how = f"python -m mtrl train --resume {run_dir}"
    else:
        how = "nothing to resume from: train again into it with --overwrite (moves this aside), or another --run-dir"
    modified = os.path.getmtime(metrics_path) if os.path.exists(metrics_path) else None
    return {
        "run_dir": run_dir,
        "experiment": meta.get("experiment"),
        "tasks": tasks,
        "seeds": seeds,
        "state": state,
        "step": step,
        "total_steps": total,
        "checkpoints": checkpoints,
        "env_steps_per_s": rate,
        "seconds_left": (None if state == "finished" or not per_task_rate
                         else max(total - step, 0) / per_task_rate),
        "last_written_s": None if modified is None else (now if now is not None else time.time()) - modified,
        "eval_step": eval_step,
        "eval_returns": evaluated,
        "eval_epsilon": float((meta.get("config") or {}).get("eval_epsilon") or 0.0),
        "diverged_seeds": [seed for seed, d in zip(seeds, last.get("diverged") or [], strict=False) if d],
        "sittings": 1 + len(meta.get("resumes") or []),
        "created": meta.get("created"),
        "wall_s_all_sittings": (summary or {}).get("wall_s_all_sittings"),
        "continue": how,
    }


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _progress(status: dict[str, Any]) -> str:
    total = status["total_steps"]
    share = f" ({100 * status['step'] / total:.0f}%)" if total else ""
    return f"{status['step']:,} of {total:,} env steps per task{share}"


def status_text(status: dict[str, Any]) -> str:
    """The lines `mtrl status RUN` prints."""
    from mtrl.scores import return_label

    tasks, seeds = status["tasks"], status["seeds"]
    head = (f"{status['run_dir']}: {len(tasks)} task(s) x {len(seeds)} seed(s)"
            + (f", experiment {status['experiment']}" if status["experiment"] else ""))
    lines = [head, f"  tasks: {', '.join(tasks)}"]
    if status["state"] == "finished":
        wall = status["wall_s_all_sittings"]
        lines.append(f"  finished: {_progress(status)}"
                     + (f", {_duration(wall)} of training over {status['sittings']} sitting(s)" if wall else ""))
    else:
        written = status["last_written_s"]
        lines.append(f"  {status['state']}: {_progress(status)} logged"
                     + ("" if written is None else f", metrics.jsonl written {_duration(written)} ago"))
        if status["env_steps_per_s"]:
            left = status["seconds_left"]
            lines.append(f"  speed: {status['env_steps_per_s']:,.0f} env steps/s (every task and seed, last sitting)"
                         + ("" if left is None else f": about {_duration(left)} left at that speed"))
        lines.append(f"  to continue it (if no process trains it now): {status['continue']}")
    if status["checkpoints"]:
        lines.append(f"  checkpoints: {', '.join(f'{s:,}' for s in status['checkpoints'])}")
    if status["eval_returns"]:
        names = short_names(list(status["eval_returns"]))
        values = " · ".join(f"{name} {value:.4g}" for name, value in zip(names, status["eval_returns"].values(),
                                                                         strict=True) if value is not None)
        lines.append(f"  {return_label(status['eval_epsilon'])} at {status['eval_step']:,} (mean over seeds): {values}")
    if status["diverged_seeds"]:
        lines.append(f"  diverged (frozen at their last finite state): seeds {status['diverged_seeds']}")
    lines.append(f"  sittings: {status['sittings']}" + (f", started {_when(status['created'])}"
                                                         if status["created"] else ""))
    return "\n".join(lines)


def _when(iso: str) -> str:
    try:
        return datetime.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def overview_text(root: str, statuses: list[dict[str, Any]]) -> str:
    """One line per run under ``root``: its path relative to ``root``, state and progress."""
    lines = []
    for status in statuses:
        name = os.path.relpath(status["run_dir"], root)
        extra = ""
        if status["state"] != "finished" and status["seconds_left"] is not None:
            extra = f", about {_duration(status['seconds_left'])} left"
        if status["diverged_seeds"]:
            extra += f", diverged seeds {status['diverged_seeds']}"
        lines.append(f"{name}: {status['state']}, {_progress(status)}{extra}")
    return "\n".join(lines)
