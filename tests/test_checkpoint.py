import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

from mtrl import checkpoint
from mtrl.checkpoint import Checkpointer, IncompatibleCheckpointError
from mtrl.config import ConfigWarning, DQNConfig
from mtrl.trainer import CheckpointOptions, Trainer, _StopOnSignals, train
from mtrl.transfer import resume_run

TASKS = ["CartPole-v1", "Acrobot-v1"]
EVERY_CHUNK = CheckpointOptions(every=1, keep=10)


def _train(cfg, run_dir, **kwargs):
    return train(TASKS, cfg, seeds=[0, 1], run_dir=str(run_dir), progress=False, **kwargs)


def _rows(path):
    with open(path) as f:
        return f.read().splitlines()


def test_round_trip_restores_every_leaf_and_key(tiny_config, tmp_path):
    trainer = Trainer.create(TASKS, tiny_config)
    state, _ = trainer.make_train_chunk()(trainer.init([0, 1]))
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(128, state, {"note": "x"})
    ckpt.wait()
    restored, meta = ckpt.restore(trainer.init([0, 1]))
    ckpt.close()
    assert meta["note"] == "x" and meta["step"] == 128 and meta["format_version"] == checkpoint.FORMAT_VERSION
    chex.assert_trees_all_equal(checkpoint.to_saveable(jax.device_get(state)),
                                checkpoint.to_saveable(jax.device_get(restored)))
    assert jax.random.key_impl(restored.runs.key) == jax.random.key_impl(state.runs.key)


@pytest.mark.parametrize("orbax_has_partial_restore", [True, False])
def test_partial_restores_read_only_the_subtrees_asked_for(orbax_has_partial_restore, tiny_config, tmp_path,
                                                           monkeypatch):
    """Also with an orbax older than partial restores (before 0.12.8: the whole state read, the parts kept)."""
    if not orbax_has_partial_restore:
        import orbax.checkpoint as ocp

        def without_partial_restore(*args, partial_restore=None, **kwargs):
            if partial_restore is not None:
                raise TypeError("PyTreeRestore.__init__() got an unexpected keyword argument 'partial_restore'")
            return original(*args, **kwargs)

        original = ocp.args.PyTreeRestore
        monkeypatch.setattr(ocp.args, "PyTreeRestore", without_partial_restore)
    trainer = Trainer.create(TASKS, tiny_config)
    state, _ = trainer.make_train_chunk()(trainer.init([0, 1]))
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(128, state, {})
    ckpt.wait()
    abstract = trainer.init_shapes([0, 1], placed=False)
    parts = ckpt.restore_parts({"runs.train.params": abstract.runs.train.params, "runs.key": abstract.runs.key,
                                "iteration": abstract.iteration})
    full = ckpt.restore_untyped()
    some = ckpt.restore_untyped(paths=["runs.train.params", "runs.train.popart", "runs.no_such_part"])
    ckpt.close()
    assert list(some) == ["runs"] and list(some["runs"]) == ["train"] and list(some["runs"]["train"]) == ["params"]
    chex.assert_trees_all_equal(some["runs"]["train"]["params"], full["runs"]["train"]["params"])
    assert list(parts) == ["runs.train.params", "runs.key", "iteration"]
    chex.assert_trees_all_equal(jax.device_get(parts["runs.train.params"]), jax.device_get(state.runs.train.params))
    assert jax.random.key_impl(parts["runs.key"]) == jax.random.key_impl(state.runs.key)  # typed keys, as saved
    np.testing.assert_array_equal(jax.random.key_data(parts["runs.key"]), jax.random.key_data(state.runs.key))
    assert int(parts["iteration"]) == int(state.iteration) > 0


@pytest.mark.parametrize("impl", ["philox2x32", "threefry2x32"])
def test_a_checkpoint_without_a_recorded_key_implementation_is_told_by_key_width(impl, tiny_config, tmp_path,
                                                                                monkeypatch):
    """A checkpoint saved before the key implementation was recorded is told by the width of its key data."""
    import mtrl.trainer

    monkeypatch.setattr(mtrl.trainer, "PRNG_IMPL", impl if impl != "threefry2x32" else None)
    trainer = Trainer.create(TASKS, tiny_config)
    state = trainer.init([0, 1])
    assert checkpoint.key_impl_name(state.runs.key) == impl
    ckpt = Checkpointer(str(tmp_path / "old"))
    ckpt.save(0, state, {})  # no key_impl recorded
    ckpt.wait()
    assert ckpt.key_impl() == impl
    ckpt.close()
    with pytest.raises(ValueError, match="width 3"):
        checkpoint.key_impl_of_width(3)
    # whatever this process's runs use (PRNG_IMPL), a Philox checkpoint is read as Philox and never sharded
    assert checkpoint.key_impl_of_width(1) == "philox2x32" and not mtrl.trainer.shardable("philox2x32")
    assert checkpoint.key_impl_of_width(2) == "threefry2x32" and mtrl.trainer.shardable("threefry2x32")


def test_a_run_records_its_key_implementation_in_its_checkpoints(tiny_config, tmp_path):
    run = _train(dataclasses.replace(tiny_config, total_steps=128), tmp_path / "run")
    recorded = Checkpointer(str(tmp_path / "run"), read_only=True)
    assert recorded.metadata()["key_impl"] == recorded.key_impl() == "philox2x32"
    assert checkpoint.key_impl_name(run.state.runs.key) == "philox2x32"


def test_stop_and_resume_is_bit_identical_and_metrics_continue(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, total_steps=512)
    straight = _train(cfg, tmp_path / "straight", checkpoints=EVERY_CHUNK)
    stopped = _train(cfg, tmp_path / "split", checkpoints=EVERY_CHUNK, stop_at_step=256)
    assert stopped.stopped_at == 256 and stopped.summary == {}
    assert not os.path.exists(tmp_path / "split" / "summary.json")
    resumed = resume_run(str(tmp_path / "split"), progress=False, checkpoints=EVERY_CHUNK)
    chex.assert_trees_all_equal(checkpoint.to_saveable(jax.device_get(straight.state)),
                                checkpoint.to_saveable(jax.device_get(resumed.state)))
    assert _rows(tmp_path / "split" / "eval.csv") == _rows(tmp_path / "straight" / "eval.csv")
    steps = [json.loads(line)["step"] for line in _rows(tmp_path / "split" / "metrics.jsonl")]
    assert steps == [128, 256, 384, 512]
    np.testing.assert_array_equal(resumed.eval_returns, straight.eval_returns)
    assert resumed.summary["tasks"] == straight.summary["tasks"]
    # timing counts both sittings (the first up to its checkpoint); a run in one sitting: the same as its own
    assert straight.summary["sittings"] == 1 and straight.summary["wall_s_all_sittings"] == straight.summary["wall_s"]
    timing = resumed.summary
    assert timing["sittings"] == 2 and timing["wall_s_all_sittings"] > timing["wall_s"] > 0
    assert timing["train_s_all_sittings"] > timing["train_s"] > 0
    meta = json.load(open(tmp_path / "split" / "config.json"))
    assert meta["resumes"][0]["from_step"] == 256
    saved = Checkpointer(str(tmp_path / "split")).metadata()
    assert saved["step"] == 512 and saved["tasks"] == TASKS and saved["seeds"] == [0, 1]
    assert saved["config"]["torso"] == [16] and saved["versions"]["jax"] == jax.__version__
    assert saved["format_version"] == checkpoint.FORMAT_VERSION and len(saved["eval_steps"]) == 5


def test_a_run_stopped_after_its_last_checkpoint_gets_its_summary_on_resume(tiny_config, tmp_path, monkeypatch):
    """Killed between the final checkpoint and summary.json: resuming trains and compiles nothing and writes the
    summary from the checkpoint (same final returns); a complete run is then reported complete."""
    finished = _train(tiny_config, tmp_path / "run", checkpoints=EVERY_CHUNK)
    for name in ("summary.json", "summary.md", "curves.png"):
        os.remove(tmp_path / "run" / name)
    monkeypatch.setattr(Trainer, "start", lambda *a, **k: pytest.fail("compiled a finished run"))
    resumed = resume_run(str(tmp_path / "run"), progress=False)
    assert resumed.already_complete and resumed.summary["tasks"] == finished.summary["tasks"]
    saved = json.load(open(tmp_path / "run" / "summary.json"))
    assert saved["tasks"] == finished.summary["tasks"] and saved["summary_from_checkpoint"] is True
    assert saved["sittings"] == 1 and saved["compile_s"] is None and saved["train_s"] > 0
    assert "from the last checkpoint" in (tmp_path / "run" / "summary.md").read_text()
    assert (tmp_path / "run" / "curves.png").exists()
    again = resume_run(str(tmp_path / "run"), progress=False)
    assert again.already_complete and again.summary == saved


def test_half_written_checkpoint_is_ignored_and_rows_past_it_dropped(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, total_steps=512)
    straight = _train(cfg, tmp_path / "run", checkpoints=EVERY_CHUNK)
    ckpt_dir = tmp_path / "run" / "checkpoints"
    # A save killed mid-write leaves orbax's temporary directory, never the final one.
    os.rename(ckpt_dir / "512", ckpt_dir / "512.orbax-checkpoint-tmp-1700000000")
    os.rename(ckpt_dir / "384", ckpt_dir / "384.orbax-checkpoint-tmp-1700000001")
    os.remove(tmp_path / "run" / "summary.json")
    assert Checkpointer(str(tmp_path / "run")).latest_step() == 256
    resumed = resume_run(str(tmp_path / "run"), progress=False, checkpoints=EVERY_CHUNK)
    chex.assert_trees_all_equal(jax.device_get(straight.state.runs.train.params),
                                jax.device_get(resumed.state.runs.train.params))
    steps = [json.loads(line)["step"] for line in _rows(tmp_path / "run" / "metrics.jsonl")]
    assert steps == [128, 256, 384, 512]
    eval_steps = [int(r.split(",")[0]) for r in _rows(tmp_path / "run" / "eval.csv")[1:]]
    assert eval_steps == sorted(eval_steps) and len(eval_steps) == 5 * 2 * 2  # 5 evals x 2 tasks x 2 seeds


def test_a_stop_at_step_that_cannot_stop_where_asked_warns(tiny_config, tmp_path):
    """Past the end: the run simply finishes; resuming at or past it: the run stops again one evaluation later."""
    cfg = dataclasses.replace(tiny_config, total_steps=384)
    with pytest.warns(ConfigWarning, match=r"stop_at_step \(1,000\) is past the run's end \(total_steps 384\)"):
        finished = _train(cfg, tmp_path / "past", checkpoints=EVERY_CHUNK, stop_at_step=1000)
    assert finished.stopped_at is None and finished.summary
    assert _train(cfg, tmp_path / "run", checkpoints=EVERY_CHUNK, stop_at_step=128).stopped_at == 128
    with pytest.warns(ConfigWarning, match=r"stop_at_step \(128\) is not past the checkpoint this run resumes "
                                           r"\(128 env steps per task\): it stops again at its next evaluation"):
        again = _train(cfg, tmp_path / "run", checkpoints=EVERY_CHUNK, stop_at_step=128, resume=True)
    assert again.stopped_at == 256


def test_incompatible_checkpoint_says_what_differs(tiny_config, tmp_path, monkeypatch):
    _train(tiny_config, tmp_path / "run", stop_at_step=128)
    other = dataclasses.replace(tiny_config, torso=(32,), lr=1e-3, total_steps=2 * tiny_config.total_steps)
    with pytest.raises(IncompatibleCheckpointError) as err:
        resume_run(str(tmp_path / "run"), config=other, progress=False)
    assert "config.torso: checkpoint [16] vs this run [32]" in str(err.value)
    assert (f"config.total_steps: checkpoint {tiny_config.total_steps} vs this run {2 * tiny_config.total_steps} (ε "
            "decays and the learning rate anneals over fractions of total_steps, so a run cannot be extended: train a "
            "new run, or transfer from this one with `mtrl transfer --source`)") in str(err.value)
    assert "config.lr: checkpoint 0.0005 vs this run 0.001" in str(err.value)
    monkeypatch.setattr(checkpoint, "FORMAT_VERSION", checkpoint.FORMAT_VERSION + 1)
    with pytest.raises(IncompatibleCheckpointError, match="format_version: checkpoint has 1, this mtrl reads 2"):
        resume_run(str(tmp_path / "run"), progress=False)


def test_resume_without_checkpoint_is_a_clear_error(tiny_config, tmp_path):
    (tmp_path / "run").mkdir()
    meta = {"config": dataclasses.asdict(tiny_config), "tasks": TASKS, "seeds": [0, 1]}
    (tmp_path / "run" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="no completed checkpoint"):
        resume_run(str(tmp_path / "run"), progress=False)
    assert "training.lock" not in os.listdir(tmp_path / "run")  # the lock went with the attempt


SUBPROCESS_ARGS = ["--tasks", "CartPole-v1", "--seeds", "2", "--total-steps", "6400", "--num-envs", "4",
                   "--buffer-size", "64", "--batch-size", "8", "--learning-starts", "16", "--target-update-period",
                   "4", "--torso", "16", "--eval-every", "64", "--eval-episodes", "2", "--checkpoint-every", "640",
                   "--keep-checkpoints", "2", "--no-progress"]


@pytest.fixture(scope="module")
def straight_cli_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight")
    done = subprocess.run([sys.executable, "-m", "mtrl", "train", *SUBPROCESS_ARGS, "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


def test_sigint_and_sigterm_only_record_a_stop_request_inside_training():
    """Both signals take the same path (the CLI run below is stopped by SIGINT): inside the block each is recorded,
    not acted on, and the previous handlers come back on exit."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with _StopOnSignals() as stop:
            assert stop.signum is None
            os.kill(os.getpid(), sig)
            time.sleep(0.01)  # the handler runs between bytecodes of the main thread
            assert stop.signum == sig
        assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_cli_run_resumes_to_the_uninterrupted_result(sig, tmp_path, straight_cli_run):
    """SIGINT (SIGTERM alike, above): finish the chunk, save, exit 128+signum. SIGKILL: nothing saved past the
    last periodic checkpoint.
    Either way `--resume` ends bit-identical to a run that was never stopped, with no duplicated rows."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "mtrl", "train", *SUBPROCESS_ARGS]
    proc = subprocess.Popen([*cmd, "--run-dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    ckpt_dir = run_dir / "checkpoints"

    def ready():  # a few chunks past a completed periodic checkpoint
        done = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()] if ckpt_dir.exists() else []
        return done and metrics.exists() and json.loads(_rows(metrics)[-1])["step"] >= max(done) + 3 * 64

    while time.time() < deadline and not ready():
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.01)
    proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0].decode()
    if sig != signal.SIGKILL:
        assert proc.returncode == 128 + sig, out
        assert "--resume" in out
        stopped = Checkpointer(str(run_dir)).latest_step()
        assert stopped == json.loads(_rows(metrics)[-1])["step"] < 6400
    else:
        assert proc.returncode == -signal.SIGKILL
    resume = subprocess.run([sys.executable, "-m", "mtrl", "train", "--resume", str(run_dir), "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr[-2000:]
    assert _rows(run_dir / "eval.csv") == _rows(straight_cli_run / "eval.csv")
    steps = [json.loads(line)["step"] for line in _rows(metrics)]
    assert steps == list(range(64, 6401, 64))
    like = Trainer.create(["CartPole-v1"], DQNConfig.from_dict(json.load(open(run_dir / "config.json"))["config"]))
    a, _ = Checkpointer(str(run_dir)).restore(like.init([0, 1]))
    b, _ = Checkpointer(str(straight_cli_run)).restore(like.init([0, 1]))
    chex.assert_trees_all_equal(checkpoint.to_saveable(jax.device_get(a)), checkpoint.to_saveable(jax.device_get(b)))


def test_save_copies_metadata_before_the_background_write(tiny_config, tmp_path):
    trainer = Trainer.create(TASKS, tiny_config)
    state = trainer.init([0, 1])
    ckpt = Checkpointer(str(tmp_path))
    history = [0, 128]
    ckpt.save(128, state, {"eval_steps": history})
    history.append(256)  # the caller goes on training while orbax writes
    ckpt.wait()
    assert ckpt.metadata(128)["eval_steps"] == [0, 128]
    ckpt.close()
