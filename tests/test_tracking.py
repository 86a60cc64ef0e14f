"""Weights & Biases tracking (`mtrl.tracking`) in offline mode: the W&B run holds the config, the per-seed and
mean metrics under mtrl's tag names, the final returns; a sweep gives one W&B run per setting, grouped."""

import glob
import json
import os

import pytest

pytest.importorskip("wandb")

from mtrl.sweeps import sweep  # noqa: E402
from mtrl.tracking import WandbOptions  # noqa: E402
from mtrl.trainer import train  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def _records(run_dir):
    """The bytes of every offline W&B run under ``run_dir`` (keys and JSON-encoded values appear verbatim)."""
    return [open(path, "rb").read() for path in sorted(glob.glob(os.path.join(run_dir, "wandb", "offline-run-*",
                                                                               "*.wandb")))]


def test_an_offline_wandb_run_holds_the_metrics_config_and_final_returns(tmp_path, tiny_config):
    result = train(["CartPole-v1"], tiny_config, seeds=[0, 1], run_dir=str(tmp_path), progress=False,
                   wandb=WandbOptions(project="mtrl-test", mode="offline"))
    (record,) = _records(str(tmp_path))
    for key in (b"charts/episodic_return/CartPole-v1", b"charts/episodic_return/CartPole-v1/seed_1",
                b"losses/td_loss/CartPole-v1", b"eval/return/CartPole-v1/seed_0", b"charts/learning_rate",
                b"final_return/CartPole-v1/iqm", b"batch_size", b"curves"):
        assert key in record, key
    final = result.summary["tasks"]["CartPole-v1"]["final_return"]["mean"]
    assert json.dumps(final).encode() in record  # the value as wandb encodes it
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["wandb"]["project"] == "mtrl-test" and meta["wandb"]["id"].encode() in record


def test_a_sweep_logs_one_wandb_run_per_setting_grouped_by_the_sweep(tmp_path, tiny_config):
    sweep(["CartPole-v1"], tiny_config, {"lr": (5e-4, 1e-3)}, seeds=[0], run_dir=str(tmp_path / "lr_sweep"),
          progress=False, wandb=WandbOptions(mode="offline"))
    records = [r for label in ("lr=0.0005", "lr=0.001") for r in _records(str(tmp_path / "lr_sweep" / label))]
    assert len(records) == 2 and all(b"lr_sweep" in r for r in records)  # the group
    assert all(b"eval/return/CartPole-v1" in r for r in records)


def test_wandb_from_the_command_line(tmp_path):
    from mtrl.cli import main

    main(["train", "--tasks", "CartPole-v1", "--total-steps", "128", "--num-envs", "4", "--buffer-size", "64",
          "--batch-size", "8", "--learning-starts", "16", "--torso", "16", "--eval-every", "128", "--eval-episodes",
          "2", "--run-dir", str(tmp_path), "--no-progress", "--wandb", "--wandb-project", "cli-test"])
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["wandb"]["project"] == "cli-test" and len(_records(str(tmp_path))) == 1


def test_a_resumed_wandb_run_does_not_resend_the_steps_it_already_has(monkeypatch, tmp_path):
    """A resumed mtrl run recomputes the steps between its checkpoint and the stop; the W&B run it continues has
    them already (its next step is 256), a new W&B run has none."""
    import wandb

    from mtrl.tracking import WandbRun

    class FakeRun:
        step = 256

        def __init__(self):
            self.logged = []

        def log(self, record, step):
            self.logged.append(step)

    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun())
    for resume_id, expected in (("abc123", [256, 320]), (None, [192, 256, 320])):
        tracked = WandbRun(WandbOptions(), str(tmp_path), {}, resume_id=resume_id)
        for step in (192, 256, 320):
            tracked.scalars(step, {"charts/SPS": [1.0]}, seeds=[0])
        assert tracked.run.logged == expected
