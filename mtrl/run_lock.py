"""Which process trains a run directory now: ``training.lock`` in it, written when `mtrl.trainer.train` starts and
removed when it ends, however it ends.

Two processes writing one run (a second `--resume` while the first still trains, `--overwrite` or a study's rerun
moving a run aside under its process) would mix their checkpoints and metrics. A lock of a process alive on this
host refuses both. A lock left by a process that died (killed, or a machine that stopped) does not: on this host its
process is gone (or its pid now names a process started later), and a lock written on another host is taken over
with a note, since whether its process still runs cannot be seen from here and a cluster job that was preempted
must be able to resume on another node. `mtrl status` reads the lock to say whether a run is training now.

Hand-written (a JSON file with the pid, host and process start time) rather than an OS file lock: `fcntl` locks are
unreliable on the network filesystems clusters share run directories on, and a file says who holds the run.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

LOCK_FILE = "training.lock"


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc on Linux), None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def lock_holder(run_dir: str) -> dict[str, Any] | None:
    """The process recorded in ``run_dir``'s lock (``pid``, ``host``, ``started``) with ``alive``: True (it runs on
    this host), False (it ended) or None (another host: unknown); None when there is no readable lock."""
    try:
        with open(os.path.join(run_dir, LOCK_FILE)) as f:
            holder = json.load(f)
        pid = int(holder["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if holder.get("host") != socket.gethostname():
        alive = None
    else:
        recorded = holder.get("start_ticks")
        alive = _alive(pid) and (recorded is None or _start_ticks(pid) in (None, recorded))
    return {**holder, "alive": alive}


def _in_use_message(run_dir: str, holder: dict[str, Any]) -> str:
    return (f"{run_dir} is being trained now by process {holder['pid']} on this host (since {holder.get('started')}); "
            "wait for it to finish, or stop it (Ctrl-C or kill: it saves a checkpoint) and then resume. If no such "
            f"process trains it, delete {os.path.join(run_dir, LOCK_FILE)}")


def check_not_training(run_dir: str, nested: bool = False) -> None:
    """Raise `mtrl.provenance.RunDirectoryInUseError` when a live process on this host (not this one) trains
    ``run_dir`` or, with ``nested``, a run inside it (a study's modes, a sweep's programs)."""
    from mtrl.provenance import RunDirectoryInUseError

    places = [run_dir]
    if nested and os.path.isdir(run_dir):
        for root, dirs, files in os.walk(run_dir):
            dirs[:] = [d for d in dirs if d not in ("checkpoints", "tb", "wandb")]
            if LOCK_FILE in files and root != run_dir:
                places.append(root)
    for place in places:
        holder = lock_holder(place)
        if holder is not None and holder["alive"] and int(holder["pid"]) != os.getpid():
            raise RunDirectoryInUseError(_in_use_message(place, holder))


@contextlib.contextmanager
def hold_run_dir(run_dir: str) -> Iterator[None]:
    """Record this process as training ``run_dir`` (created when missing) for the duration, refusing when a live
    process on this host already does (`check_not_training`); the lock is removed at the end unless another process
    has taken it over meanwhile."""
    check_not_training(run_dir)
    holder = lock_holder(run_dir)
    if holder is not None and holder["alive"] is None:
        print(f"{run_dir}: taking over the training lock of process {holder['pid']} on host {holder.get('host')} "
              f"(since {holder.get('started')}), which cannot be checked from here")
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "start_ticks": _start_ticks(os.getpid()),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    with open(f"{path}.{os.getpid()}.tmp", "w") as f:
        json.dump(mine, f)
    os.replace(f"{path}.{os.getpid()}.tmp", path)
    try:
        yield
    finally:
        try:
            with open(path) as f:
                still_mine = json.load(f) == mine
        except (OSError, ValueError):
            still_mine = False
        if still_mine:
            os.remove(path)
