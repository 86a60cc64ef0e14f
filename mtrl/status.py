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


def find_runs(directory: str, depth: int = 8) -> list[str]:
    """Run directories at or under ``directory`` (sorted; a run's own subdirectories are not searched, nor a sweep's
    shards/, nor directories moved aside as ``<name>.replaced-<time>``); ``depth`` only guards against cycles."""
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


def sweep_plan_line(directory: str) -> str | None:
    """For a sweep's directory: how many settings its plan holds and how many have a run directory yet, and until
    it has merged its results (sweep.json), the command that continues it where its plan records one."""
    path = os.path.join(directory, "sweep_plan.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        plan = json.load(f)
    planned = sum(len(shard) for shard in plan.get("shards") or [])
    started = sum(is_run_dir(os.path.join(directory, name)) for name in os.listdir(directory)
                  if name not in SKIPPED_DIRS)
    line = (f"sweep: {planned} setting(s) x {len(plan.get('seeds') or [])} seed(s) in "
            f"{len(plan.get('shards') or [])} program(s); {started} setting(s) started")
    command = _command(plan)
    if command and not os.path.exists(os.path.join(directory, "sweep.json")):
        line += f"\nto continue it (if no process runs it now): {command}"
    return line


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


def _diverged(path: str, seeds: list[int]) -> list[int]:
    """The seeds metrics.jsonl marks as diverged on any line (a seed is marked once, in the window it diverged in;
    it is frozen, finite, after that). Only lines holding a ``true`` are parsed."""
    if not os.path.exists(path):
        return []
    marked: set[int] = set()
    with open(path, errors="replace") as f:
        for line in f:
            if "true" not in line:
                continue
            try:
                flags = json.loads(line).get("diverged") or []
            except ValueError:  # a line being written
                continue
            marked.update(i for i, flag in enumerate(flags) if flag)
    return [seed for i, seed in enumerate(seeds) if i in marked]


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
    means = {task: float(returns[list(steps).index(step)].mean())
             for task, (steps, returns) in curves.items() if step in steps}
    return means, step


def _command(record: dict[str, Any]) -> str | None:
    """The command line a config.json or sweep_plan.json records (a list of arguments in runs written before it
    was one line), or None."""
    import shlex

    command = record.get("command")
    if isinstance(command, list):
        return shlex.join(str(a) for a in command)
    return command or None


def _sweep_command(setting_dir: str) -> str | None:
    """The command that runs the sweep a setting's directory belongs to, from the sweep's plan one level up."""
    from mtrl.sweep_shards import load_plan

    try:
        return _command(load_plan(os.path.dirname(os.path.abspath(setting_dir))))
    except (OSError, ValueError):
        return None


def _program_dir(run_dir: str, meta: dict[str, Any]) -> str:
    """Where the run's checkpoints and training lock are: its own directory, or a sweep setting's shard's
    (`mtrl.transfer.sweep_setting_checkpoints`)."""
    from mtrl.transfer import sweep_setting_checkpoints

    try:
        setting = sweep_setting_checkpoints(run_dir, meta)
    except ValueError:  # its shard is gone: nothing saved or held there
        return run_dir
    return run_dir if setting is None else setting[0]


def _checkpoint_steps(where: str) -> list[int]:
    """The completed checkpoints in ``where`` (`_program_dir`)."""
    from mtrl.checkpoint import Checkpointer, checkpoint_dir

    if not os.path.isdir(checkpoint_dir(where)):
        return []
    ckpt = Checkpointer(where, read_only=True)
    try:
        return ckpt.steps()
    finally:
        ckpt.close()


def run_status(run_dir: str, now: float | None = None) -> dict[str, Any]:
    """What `mtrl status` says of one run directory, as a dict: ``state`` (``finished``; ``training``: a process on
    this host trains it now, `mtrl.run_lock`; ``not finished``: stopped, or trained on another host, with or
    without a checkpoint; ``not started``: nothing logged nor saved), ``trained_by`` (the process its training lock
    names, ``alive`` True or None: another host, unknown), ``step`` (the last logged, env steps per task) of
    ``total_steps``, ``checkpoints``, ``env_steps_per_s`` (every task and seed, in the last sitting) and
    ``seconds_left`` at that speed, ``last_written_s`` (seconds since metrics.jsonl changed), ``eval_step`` and
    ``eval_returns`` (task -> mean over seeds, from eval.csv), ``diverged_seeds`` (on any line of metrics.jsonl),
    ``sittings``, and ``continue`` (how to continue it; None while it trains or once finished)."""
    from mtrl.provenance import read_config_json
    from mtrl.run_lock import lock_holder

    if not is_run_dir(run_dir):
        raise ValueError(f"{run_dir!r} is not a run directory (no config.json naming tasks)")
    meta = read_config_json(run_dir)
    if "groups" in meta:
        raise ValueError(f"{run_dir!r} is one program (shard) of a sweep: its settings' runs are the sweep's "
                         f"directories {', '.join(sorted(meta['groups']))}; ask for the sweep's directory")
    tasks, seeds = list(meta["tasks"]), list(meta.get("seeds") or [])
    total = int((meta.get("config") or {}).get("total_steps") or 0)
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    last = _last_line(metrics_path) or {}
    summary_path = os.path.join(run_dir, "summary.json")
    summary = None
    if os.path.exists(summary_path):
        try:
            with open(summary_path) as f:
                summary = json.load(f)
        except ValueError as e:
            raise ValueError(f"{summary_path} is not valid JSON ({e}): is it being written now?") from None
    where = _program_dir(run_dir, meta)
    checkpoints = _checkpoint_steps(where)
    step = int(last.get("step") or 0)
    holder = None if summary is not None else lock_holder(where)
    if summary is not None:
        state, step = "finished", int(summary.get("env_steps_per_task") or step)
    elif holder is not None and holder["alive"]:
        state = "training"
    else:
        state = "not finished" if checkpoints or step else "not started"
    rate = last.get("env_steps_per_s")
    per_task_rate = rate / (len(tasks) * max(len(seeds), 1)) if rate else None
    evaluated, eval_step = _last_evaluation(run_dir)
    if state in ("finished", "training"):
        how = None
    elif meta.get("sweep") is not None:
        command = _sweep_command(run_dir)
        how = ("rerun the sweep's command, which continues its programs: "
               + (command or "python -m mtrl sweep ... (the same options) or mtrl.sweep(...)"))
    elif meta.get("experiment"):
        command = _command(meta)
        how = ("rerun the experiment's command: "
               + (command or f"python -m experiments.{meta['experiment']} with the same options") + (
                   f"; or this run alone: python -m mtrl train --resume {run_dir}" if checkpoints
                   else " (no checkpoint yet, so the run starts again)"))
    elif checkpoints:
        how = f"python -m mtrl train --resume {run_dir}"
    else:
        how = ("no checkpoint to resume from: train again into it with --overwrite (moves this aside), or another "
               "--run-dir")
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
        "diverged_seeds": _diverged(metrics_path, seeds),
        "sittings": 1 + len(meta.get("resumes") or []),
        "created": meta.get("created"),
        "wall_s_all_sittings": (summary or {}).get("wall_s_all_sittings"),
        "continue": how,
        "trained_by": None if holder is None or holder["alive"] is False else {
            k: holder.get(k) for k in ("pid", "host", "started", "alive")},
    }


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _progress(status: dict[str, Any]) -> str:
    total = status["total_steps"]
    share = f" ({100 * status['step'] // total}%)" if total else ""  # rounded down: 99% until it is done
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
        holder = status.get("trained_by")
        if holder and holder["alive"]:
            lines.append(f"  training now: process {holder['pid']} on this host, since {_when(holder['started'])}")
        else:
            if holder:  # a lock from another host: its process may run there, or may have died with it
                lines.append(f"  training lock of process {holder['pid']} on host {holder['host']} (since "
                             f"{_when(holder['started'])}): training there, unless that process ended without "
                             "removing it")
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
    except (TypeError, ValueError):
        return iso


def statuses_under(root: str) -> list[dict[str, Any]]:
    """`run_status` of every run under ``root`` (`find_runs`); a run that cannot be read is ``{"run_dir",
    "error"}`` rather than the end of the listing."""
    out = []
    for run_dir in find_runs(root):
        try:
            out.append(run_status(run_dir))
        except (OSError, ValueError) as e:
            out.append({"run_dir": run_dir, "error": str(e)})
    return out


def overview_text(root: str, statuses: list[dict[str, Any]]) -> str:
    """One line per run under ``root``: its path relative to ``root``, state and progress (a sweep's directory
    first says how many of its planned settings have started)."""
    plan = sweep_plan_line(root)
    lines = [plan] if plan else []
    for status in statuses:
        name = os.path.relpath(status["run_dir"], root)
        if "error" in status:
            lines.append(f"{name}: unreadable: {status['error']}")
            continue
        extra = ""
        if status["state"] != "finished" and status["seconds_left"] is not None:
            extra = f", about {_duration(status['seconds_left'])} left at its last speed"
        if status["state"] != "finished" and status["last_written_s"] is not None:
            extra += f", written {_duration(status['last_written_s'])} ago"
        if status["diverged_seeds"]:
            extra += f", diverged seeds {status['diverged_seeds']}"
        lines.append(f"{name}: {status['state']}, {_progress(status)}{extra}")
    return "\n".join(lines)
