"""`mtrl.run_lock`: a run directory that a live process trains is neither resumed nor moved aside by another."""

import json
import os
import socket
import subprocess
import sys

import pytest

from mtrl import run_lock
from mtrl.provenance import RunDirectoryInUseError, move_aside
from mtrl.status import run_status, status_text
from mtrl.trainer import CheckpointOptions, train

TASKS = ["CartPole-v1"]


def write_lock(run_dir, pid, host=None, start_ticks="own"):
    """A lock as `hold_run_dir` writes it, for process ``pid`` (its real start time unless given)."""
    os.makedirs(run_dir, exist_ok=True)
    ticks = run_lock._start_ticks(pid) if start_ticks == "own" else start_ticks
    lock = {"pid": pid, "host": host or socket.gethostname(), "start_ticks": ticks,
            "started": "2026-01-02T03:04:05+00:00"}
    (run_dir / run_lock.LOCK_FILE).write_text(json.dumps(lock))


@pytest.fixture
def other_process():
    """A live process on this host that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run stopped at 128 of 256 env steps per task, its checkpoint saved."""
    from mtrl.config import DQNConfig

    config = DQNConfig(total_steps=256, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16, torso=(16,),
                       eval_every=128, eval_episodes=2)
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    result = train(TASKS, config, seeds=[0], run_dir=str(run_dir), progress=False,
                   checkpoints=CheckpointOptions(every=128), stop_at_step=128)
    assert result.stopped_at == 128
    return run_dir, config


def test_training_holds_the_lock_and_leaves_none(stopped):
    run_dir, _ = stopped
    assert not (run_dir / run_lock.LOCK_FILE).exists()  # removed when the stopped run returned
    with run_lock.hold_run_dir(str(run_dir)):
        holder = run_lock.lock_holder(str(run_dir))
        assert holder["pid"] == os.getpid() and holder["alive"] is True
        assert run_status(str(run_dir))["state"] == "training"
    assert run_lock.lock_holder(str(run_dir)) is None


def test_a_run_a_live_process_trains_is_not_resumed_nor_moved_aside(stopped, other_process, capsys):
    run_dir, config = stopped
    write_lock(run_dir, other_process)
    message = f"{run_dir} is being trained now by process {other_process} on this host"
    with pytest.raises(RunDirectoryInUseError, match=message):
        train(TASKS, config, seeds=[0], run_dir=str(run_dir), progress=False, resume=True)
    with pytest.raises(RunDirectoryInUseError, match=message):
        train(TASKS, config, seeds=[0], run_dir=str(run_dir), progress=False, overwrite=True)
    with pytest.raises(RunDirectoryInUseError, match=message):
        move_aside(str(run_dir.parent))  # a directory holding it: a study's or sweep's
    status = run_status(str(run_dir))
    assert status["state"] == "training" and status["continue"] is None
    assert status["trained_by"] == {"pid": other_process, "host": socket.gethostname(),
                                    "started": "2026-01-02T03:04:05+00:00", "alive": True}
    text = status_text(status)
    assert f"training now: process {other_process} on this host, since 2026-01-02 03:04 UTC" in text
    assert "to continue it" not in text
    assert json.loads((run_dir / run_lock.LOCK_FILE).read_text())["pid"] == other_process  # untouched


def test_a_lock_whose_process_ended_or_was_replaced_is_taken_over(stopped, other_process):
    run_dir, _ = stopped
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_lock(run_dir, int(ended.stdout))  # its process has exited
    assert run_lock.lock_holder(str(run_dir))["alive"] is False
    assert run_status(str(run_dir))["state"] == "not finished"
    if run_lock._start_ticks(other_process) is not None:  # /proc: a pid now naming a process started later
        write_lock(run_dir, other_process, start_ticks=run_lock._start_ticks(other_process) - 1)
        assert run_lock.lock_holder(str(run_dir))["alive"] is False
    with run_lock.hold_run_dir(str(run_dir)):
        assert run_lock.lock_holder(str(run_dir))["pid"] == os.getpid()
    assert not (run_dir / run_lock.LOCK_FILE).exists()


def test_a_lock_from_another_host_is_shown_and_taken_over_with_a_note(stopped, capsys):
    """A cluster job preempted on one node resumes on another: the lock cannot be checked there, so it does not
    block; status shows it."""
    run_dir, _ = stopped
    write_lock(run_dir, 4242, host="node-17", start_ticks=None)
    status = run_status(str(run_dir))
    assert status["state"] == "not finished" and status["trained_by"]["alive"] is None
    text = status_text(status)
    assert "training lock of process 4242 on host node-17 (since 2026-01-02 03:04 UTC)" in text
    assert "to continue it (if no process trains it now): python -m mtrl train --resume" in text
    with run_lock.hold_run_dir(str(run_dir)):
        pass
    assert "taking over the training lock of process 4242 on host node-17" in capsys.readouterr().out
    assert not (run_dir / run_lock.LOCK_FILE).exists()
