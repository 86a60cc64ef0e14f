"""Whether a directory already holds a run, and whether that run is the experiment being asked for.

Results are only reused, resumed or appended to when they come from the same experiment. A run's identity is
what config.json records: the whole `DQNConfig`, the tasks, the seeds and, for a transfer run, its provenance
(source run and fingerprint, mode settings). `differences` lists every field that differs, so a refusal can say
exactly why. A run directory that must make room is moved aside (`move_aside`), never deleted.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from typing import Any

from mtrl.config import DQNConfig

# Files whose presence means a directory already holds (part of) a run.
RUN_MARKERS = ("config.json", "eval.csv", "checkpoints")


class RunDirectoryInUseError(ValueError):
    """A new run was asked to write into a directory that holds another run."""


class ProvenanceMismatchError(ValueError):
    """A run that would be reused or resumed is not the experiment asked for; the message lists every difference."""


def holds_run(run_dir: str) -> bool:
    """Whether ``run_dir`` holds any of a run's files (config.json, eval.csv, a non-empty checkpoints/). An empty
    checkpoints/ alone is what a run killed before writing anything (e.g. while compiling) leaves: no run."""
    return bool(_present_markers(run_dir))


def _present_markers(run_dir: str) -> list[str]:
    present = []
    for name in RUN_MARKERS:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.listdir(path):
            continue
        if os.path.exists(path):
            present.append(name)
    return present


def has_checkpoint(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a completed checkpoint (orbax lists only finished saves)."""
    from mtrl.checkpoint import Checkpointer, checkpoint_dir

    if not os.path.isdir(checkpoint_dir(run_dir)):
        return False
    ckpt = Checkpointer(run_dir, read_only=True)
    try:
        return ckpt.latest_step() is not None
    finally:
        ckpt.close()


def run_status(run_dir: str) -> str:
    """``"empty"`` (no run), ``"finished"`` (summary.json written), ``"interrupted"`` (a checkpoint to resume
    from, not finished) or ``"started"`` (files of a run that stopped before its first checkpoint)."""
    if not holds_run(run_dir):
        return "empty"
    if os.path.exists(os.path.join(run_dir, "summary.json")):
        return "finished"
    return "interrupted" if has_checkpoint(run_dir) else "started"


def move_aside(run_dir: str) -> str:
    """Rename ``run_dir`` to ``<run_dir>.replaced-<timestamp>`` (a free name) and return the new path; refused
    (`RunDirectoryInUseError`) while a process on this host trains it or a run inside it (`mtrl.run_lock`)."""
    from mtrl.run_lock import check_not_training

    check_not_training(run_dir, nested=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{os.path.normpath(run_dir)}.replaced-{stamp}"
    target, n = base, 1
    while os.path.exists(target):
        target, n = f"{base}-{n}", n + 1
    os.rename(run_dir, target)
    return target


def claim_run_dir(run_dir: str, overwrite: bool = False) -> str | None:
    """Make sure a *new* run may write into ``run_dir``: refused if it holds a run, unless ``overwrite``, which
    moves that run aside. Returns where the old run went (None if there was none)."""
    if not holds_run(run_dir):
        return None
    if not overwrite:
        present = ", ".join(_present_markers(run_dir))
        raise RunDirectoryInUseError(
            f"{run_dir} already holds a run ({present}); continue it with `mtrl train --resume {run_dir}` "
            "(in Python: resume=True), move it aside with --overwrite (overwrite=True; nothing is deleted), or choose "
            "another --run-dir")
    return move_aside(run_dir)


def read_config_json(run_dir: str) -> dict[str, Any]:
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def run_identity(config: dict[str, Any], tasks: list[str], seeds: list[int],
                 transfer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The identity of a plain (or transfer) run, as config.json records it."""
    identity = {"config": config, "tasks": list(tasks), "seeds": [int(s) for s in seeds]}
    if transfer is not None:
        identity["transfer"] = transfer
    return identity


def saved_run_identity(run_dir: str) -> dict[str, Any]:
    """`run_identity` of the run in ``run_dir`` (read from its config.json)."""
    saved = read_config_json(run_dir)
    return run_identity(DQNConfig.with_defaults(saved.get("config")), saved.get("tasks", []), saved.get("seeds", []),
                        saved.get("transfer"))


def differences(saved: Any, expected: Any, path: str = "") -> list[str]:
    """``["path: there X vs here Y", ...]`` for every leaf where two JSON-like trees differ (tuples count as
    lists; a key missing on one side shows as None)."""
    saved, expected = plain(saved), plain(expected)
    if isinstance(saved, dict) and isinstance(expected, dict):
        out = []
        for key in sorted(set(saved) | set(expected), key=str):
            out += differences(saved.get(key), expected.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if saved == expected else [f"{path or 'value'}: there {saved!r} vs here {expected!r}"]


def identity_differences(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """`differences` on ``expected``'s keys only: what makes a saved run (or sweep) another experiment."""
    return differences({k: saved.get(k) for k in expected}, expected)


def prepare_reuse(run_dir: str, saved_identity: Callable[[str], dict[str, Any]], expected: dict[str, Any],
                  rerun: bool, what: str = "run", quiet: bool = False) -> str:
    """The status of ``run_dir`` once it holds this experiment or nothing: ``"empty"``, ``"interrupted"`` (resume
    it) or ``"finished"`` (reuse it).

    A run whose identity (``saved_identity(run_dir)``, compared on ``expected``'s keys) differs is refused with
    every difference (`ProvenanceMismatchError`), or with ``rerun`` moved aside; a run that stopped before its first
    checkpoint has nothing to resume and is moved aside. ``what`` names the run in messages (e.g. "l2sp run").
    """
    status = run_status(run_dir)
    if status == "empty":
        return status
    saved = saved_identity(run_dir)
    problems = identity_differences(saved, expected)
    if problems and not rerun:
        article = "an" if status[0] in "aeiou" else "a"
        raise ProvenanceMismatchError(
            f"{run_dir} holds {article} {status} {what} of another experiment:\n  " + "\n  ".join(problems)
            + "\nrerun with --rerun (rerun=True) to retrain it (the old run is moved aside), or use another --run-dir")
    if problems or status == "started":
        moved = move_aside(run_dir)
        if not quiet:
            why = "was trained with other settings" if problems else "stopped before its first checkpoint"
            print(f"{run_dir} {why}; moved to {moved}")
        return "empty"
    return status


def plain(value: Any) -> Any:
    """JSON-comparable form: tuples become lists, dict keys strings."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value
