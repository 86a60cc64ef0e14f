"""Run-directory logging: per-window training metrics per seed (metrics.jsonl, TensorBoard), a missing TensorBoard
extra refused before anything is built, LF line endings across a resume, checkpoint options kept on resume, and
resuming a finished run."""

import dataclasses
import json
import os
import struct
import sys

import numpy as np
import pytest

from mtrl.cli import main
from mtrl.trainer import CheckpointOptions, Trainer, train

TASKS = ["CartPole-v1", "Acrobot-v1"]
PER_TASK = ("train_return", "episodes", "loss", "td_abs", "q_taken", "epsilon")


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _tb_scalars(directory) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from the TensorBoard event files in ``directory`` (TFRecord framing: length, crc,
    payload, crc)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for name in os.listdir(directory):
        data = (directory / name).read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def test_metrics_every_window_per_seed_in_jsonl_and_tensorboard(tmp_path, tiny_config):
    """Chunks of 128 env steps logged every 60, moved to 64 (16 iterations of 4 envs divide the chunk's 32; config.json
    records 64): records at 64, 128, 192, 256, each with per-seed lists and their means; evaluations only on the
    records that end a chunk; TensorBoard has one run per seed plus the mean, with the same values under CleanRL's
    tag names."""
    run_dir = tmp_path / "run"
    train(TASKS, tiny_config, seeds=[3, 4], run_dir=str(run_dir), progress=False, log_every=60, tensorboard=True)
    records = _records(run_dir)
    assert [r["step"] for r in records] == [64, 128, 192, 256]
    assert json.loads((run_dir / "config.json").read_text())["log_every"] == 64
    for r in records:
        assert len(r["learning_rate"]) == 2 and len(r["grad_norm"]) == 2 and r["env_steps_per_s"] > 0
        for name in TASKS:
            task = r["tasks"][name]
            for key in PER_TASK:
                assert len(task[key]) == 2, key
                values = np.array([np.nan if v is None else v for v in task[key]], float)
                mean = task["seed_mean"][key]
                assert (mean is None) == np.all(np.isnan(values))
                if mean is not None:
                    assert mean == pytest.approx(np.nanmean(values))
            assert ("eval_return" in task) == (r["step"] % 128 == 0)
    eps = [r["tasks"]["CartPole-v1"]["seed_mean"]["epsilon"] for r in records]
    assert eps[0] == pytest.approx(1 - 0.95 * 64 / 76.8) and eps[1:] == pytest.approx([0.05] * 3)  # 30% of 256
    lr = [r["learning_rate"][0] for r in records]
    assert lr[0] > lr[1] > lr[2] > lr[3] == pytest.approx(0.0, abs=1e-9)  # linear decay to 0 by the last update
    assert sum(r["updates"] for r in records) == tiny_config.num_updates

    assert sorted(os.listdir(run_dir / "tb")) == ["mean", "seed_3", "seed_4"]
    seed_4, mean = _tb_scalars(run_dir / "tb" / "seed_4"), _tb_scalars(run_dir / "tb" / "mean")
    assert "charts/episodic_return/Acrobot-v1" not in mean  # no Acrobot episode ends in 256 steps: nothing logged
    for tag in ("charts/episodic_return/CartPole-v1", "charts/epsilon/CartPole-v1", "charts/learning_rate",
                "charts/SPS", "losses/td_loss/CartPole-v1", "losses/q_values/Acrobot-v1", "losses/td_abs/Acrobot-v1",
                "losses/grad_norm", "eval/return/CartPole-v1"):
        assert tag in seed_4 and tag in mean, tag
    for r in records:
        loss = r["tasks"]["CartPole-v1"]["loss"]
        assert seed_4["losses/td_loss/CartPole-v1"][r["step"]] == pytest.approx(loss[1], rel=1e-6)
        assert mean["losses/td_loss/CartPole-v1"][r["step"]] == pytest.approx(np.mean(loss), rel=1e-6)
    assert sorted(mean["eval/return/CartPole-v1"]) == [0, 128, 256]


def test_windows_without_an_update_record_no_learner_metrics(tmp_path, tiny_config):
    cfg = dataclasses.replace(tiny_config, learning_starts=64)
    run_dir = tmp_path / "run"
    train(TASKS, cfg, seeds=[0, 1], run_dir=str(run_dir), progress=False, log_every=32)
    records = _records(run_dir)
    idle = [r for r in records if r["updates"] == 0]
    assert [r["step"] for r in idle] == [32]  # updates start in the window that reaches learning_starts
    for r in records:
        measured = r["updates"] > 0
        assert all((v is not None) == measured for v in r["grad_norm"]), r["step"]
        for name in TASKS:
            task = r["tasks"][name]
            for key in ("loss", "td_abs", "q_taken"):
                assert all((v is not None) == measured for v in task[key]), (r["step"], key)
                assert (task["seed_mean"][key] is not None) == measured
            assert all(v is not None for v in task["epsilon"])


def test_tensorboard_missing_fails_before_anything_is_built(tmp_path, monkeypatch, tiny_config, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if the extra were not installed

    def no_build(*args, **kwargs):
        raise AssertionError("a trainer was built before the missing extra was reported")

    monkeypatch.setattr(Trainer, "create", no_build)
    with pytest.raises(ImportError, match=r"pip install 'mtrl-jax\[tensorboard\]'"):
        train(TASKS, tiny_config, run_dir=str(tmp_path / "lib"), tensorboard=True, progress=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--tasks", "CartPole-v1", "--run-dir", str(tmp_path / "cli"), "--tensorboard"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "needs tensorboardX: pip install 'mtrl-jax[tensorboard]'" in err and "Traceback" not in err
    assert not (tmp_path / "lib").exists() and not (tmp_path / "cli").exists()


def test_resume_keeps_lf_line_endings_and_the_runs_checkpoint_options(tmp_path, tiny_config):
    """A run with checkpoints every 256 steps (keep 5) stopped at 128 and resumed with the default options saves at
    256 and 512, as recorded in its config.json; every file keeps LF line endings."""
    cfg = dataclasses.replace(tiny_config, total_steps=512)
    run_dir = tmp_path / "run"
    options = CheckpointOptions(every=256, keep=5)
    train(TASKS, cfg, seeds=[0], run_dir=str(run_dir), progress=False, checkpoints=options, stop_at_step=128)
    assert json.loads((run_dir / "config.json").read_text())["checkpoints"] == {"every": 256, "keep": 5}
    train(TASKS, cfg, seeds=[0], run_dir=str(run_dir), progress=False, resume=True)
    assert sorted(int(d) for d in os.listdir(run_dir / "checkpoints") if d.isdigit()) == [128, 256, 512]
    for name in ("eval.csv", "metrics.jsonl", "config.json", "summary.md"):
        data = (run_dir / name).read_bytes()
        assert b"\r" not in data and data.endswith(b"\n"), name
    steps = [int(line.split(",")[0]) for line in (run_dir / "eval.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and len(steps) == 5 * len(TASKS)  # 0, 128, 256, 384, 512; nothing repeated


def test_resuming_a_finished_run_reports_it_complete_without_compiling(tmp_path, tiny_config, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    done = train(TASKS, tiny_config, seeds=[0, 1], run_dir=str(run_dir), progress=False)

    def no_compile(*args, **kwargs):
        raise AssertionError("a finished run was compiled again")

    monkeypatch.setattr(Trainer, "start", no_compile)
    again = train(TASKS, tiny_config, seeds=[0, 1], run_dir=str(run_dir), progress=False, resume=True)
    assert again.already_complete and again.state is None
    np.testing.assert_array_equal(again.eval_returns, done.eval_returns)
    assert again.summary == json.loads((run_dir / "summary.json").read_text())
    main(["train", "--resume", str(run_dir), "--no-progress"])  # exits normally
    assert capsys.readouterr().out.count("is complete (256 env steps per task); nothing to train.") == 2
