"""Nothing is reused, resumed or appended to unless it is the same experiment.

`train` refuses a directory that holds a run (unless resuming, or `overwrite`, which moves it aside); a transfer
study reuses or resumes a mode's run only when its whole identity matches (`mtrl.study.mode_identity`), and
otherwise lists every difference or, with ``rerun``, moves that run aside and trains the mode again; experiments
reuse their source run under the same rule.
"""

import json
import os

import pytest

from mtrl.config import DQNConfig
from mtrl.provenance import ProvenanceMismatchError, RunDirectoryInUseError, differences, run_status
from mtrl.study import transfer_study
from mtrl.trainer import train
from mtrl.transfer import TransferSettings, train_transfer

CFG = DQNConfig(total_steps=128, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16,
                target_update_period=4, torso=(16,), eval_every=64, eval_episodes=2)
SOURCE = ["CartPole-v1:length=0.5"]
TARGETS = ["CartPole-v1:length=1.5"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two finished source runs that differ only in their seeds."""
    root = tmp_path_factory.mktemp("sources")
    train(SOURCE, CFG, seeds=[0, 1], run_dir=str(root / "a"), progress=False)
    train(SOURCE, CFG, seeds=[5, 6], run_dir=str(root / "b"), progress=False)
    return str(root / "a"), str(root / "b")


def _study(source, run_dir, **kw):
    kw = {"modes": ("l2sp",), "config": CFG, "seeds": [0, 1], "progress": False, **kw}
    return transfer_study(source, kw.pop("tasks", TARGETS), run_dir=str(run_dir), **kw)


def test_train_refuses_a_directory_that_holds_a_run_and_overwrite_moves_it_aside(tmp_path):
    run_dir = tmp_path / "run"
    train(SOURCE, CFG, seeds=[0], run_dir=str(run_dir), progress=False)
    before = (run_dir / "eval.csv").read_text()
    with pytest.raises(RunDirectoryInUseError, match=r"already holds a run \(config.json, eval.csv, checkpoints\)"
                                                     r".*`mtrl train --resume .*run`.*--overwrite"):
        train(SOURCE, CFG, seeds=[1], run_dir=str(run_dir), progress=False)
    assert (run_dir / "eval.csv").read_text() == before  # untouched
    train(SOURCE, CFG, seeds=[1], run_dir=str(run_dir), progress=False, overwrite=True)
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(moved) == 1 and (moved[0] / "eval.csv").read_text() == before  # nothing deleted
    assert json.loads((run_dir / "config.json").read_text())["seeds"] == [1]


def test_an_empty_existing_directory_is_not_a_run(tmp_path):
    assert run_status(str(tmp_path)) == "empty"
    (tmp_path / "checkpoints").mkdir()  # what a run killed while compiling leaves: still no run
    assert run_status(str(tmp_path)) == "empty"
    (tmp_path / "checkpoints" / "64.orbax-checkpoint-tmp").mkdir()  # a save under way: part of a run
    assert run_status(str(tmp_path)) == "started"
    (tmp_path / "checkpoints" / "64.orbax-checkpoint-tmp").rmdir()
    train(SOURCE, CFG, seeds=[0], run_dir=str(tmp_path), progress=False)
    assert run_status(str(tmp_path)) == "finished"


def test_study_reuses_the_same_experiment_and_refuses_a_changed_transfer_setting(sources, tmp_path):
    first = _study(sources[0], tmp_path)
    l2sp_csv = tmp_path / "l2sp" / "eval.csv"
    stamp = os.stat(l2sp_csv).st_mtime_ns
    assert _study(sources[0], tmp_path)["results"] == first["results"]  # reused, not retrained
    assert os.stat(l2sp_csv).st_mtime_ns == stamp
    with pytest.raises(ProvenanceMismatchError) as err:
        _study(sources[0], tmp_path, transfer=TransferSettings(l2sp_alpha=0.5))
    message = str(err.value)
    assert "l2sp" in message and "settings.l2sp_alpha: there 0.01 vs here 0.5" in message
    assert "--rerun" in message and "scratch" not in message.split("\n")[0]  # scratch does not use alpha
    assert os.stat(l2sp_csv).st_mtime_ns == stamp
    # rerun: the old l2sp run is moved aside (kept), the mode trains again; scratch is still reused
    scratch_stamp = os.stat(tmp_path / "scratch" / "eval.csv").st_mtime_ns
    study = _study(sources[0], tmp_path, transfer=TransferSettings(l2sp_alpha=0.5), rerun=True)
    assert study["transfer"]["l2sp_alpha"] == 0.5
    assert any(p.name.startswith("l2sp.replaced-") for p in tmp_path.iterdir())
    assert json.loads((tmp_path / "l2sp" / "config.json").read_text())["transfer"]["settings"]["l2sp_alpha"] == 0.5
    assert os.stat(tmp_path / "scratch" / "eval.csv").st_mtime_ns == scratch_stamp


def test_study_refuses_another_source(sources, tmp_path):
    _study(sources[0], tmp_path)
    with pytest.raises(ProvenanceMismatchError) as err:
        _study(sources[1], tmp_path)
    message = str(err.value)
    assert "source_run: there" in message and "source_fingerprint: there" in message


def test_study_refuses_other_target_tasks_and_seeds(sources, tmp_path):
    _study(sources[0], tmp_path, modes=(), tasks=TARGETS + ["CartPole-v1:length=2.5"])
    with pytest.raises(ProvenanceMismatchError, match="target_tasks: there"):
        _study(sources[0], tmp_path, modes=())  # a subset of what was trained is not the same experiment
    with pytest.raises(ProvenanceMismatchError, match=r"seeds: there \[0, 1\] vs here \[0, 2\]"):
        _study(sources[0], tmp_path, modes=(), seeds=[0, 2], tasks=TARGETS + ["CartPole-v1:length=2.5"])


def test_study_does_not_resume_an_interrupted_mode_of_another_experiment(sources, tmp_path):
    result = train_transfer(sources[0], TARGETS, TransferSettings().with_mode("l2sp"), CFG, seeds=[0, 1],
                            run_dir=str(tmp_path / "l2sp"), progress=False, stop_at_step=64)
    assert result.stopped_at == 64 and run_status(str(tmp_path / "l2sp")) == "interrupted"
    with pytest.raises(ProvenanceMismatchError, match="holds an interrupted l2sp run"):
        _study(sources[0], tmp_path, transfer=TransferSettings(l2sp_alpha=0.5))


def test_experiment_source_is_reused_only_when_it_is_the_same_run(sources, tmp_path):
    from experiments.common import train_or_reuse

    summary = train_or_reuse(SOURCE, CFG, [0, 1], sources[0], rerun=False, experiment="test", progress=False)
    assert summary["seeds"] == [0, 1]
    with pytest.raises(ProvenanceMismatchError, match="config.lr: there 0.0005 vs here 0.001"):
        train_or_reuse(SOURCE, DQNConfig(**{**CFG.__dict__, "lr": 1e-3}), [0, 1], sources[0], rerun=False,
                       experiment="test", progress=False)


def test_a_stopped_run_stops_the_study_and_the_same_call_then_finishes_it(tmp_path):
    from experiments.common import train_or_reuse

    run_dir = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt, match="stopped at 64 env steps per task"):
        train_or_reuse(SOURCE, CFG, [0, 1], run_dir, rerun=False, experiment="test", progress=False, stop_at_step=64)
    assert run_status(run_dir) == "interrupted"
    summary = train_or_reuse(SOURCE, CFG, [0, 1], run_dir, rerun=False, experiment="test", progress=False)
    assert summary["seeds"] == [0, 1] and run_status(run_dir) == "finished"


def test_differences_lists_every_leaf():
    assert differences({"a": 1, "b": [1, 2], "c": {"d": 3}}, {"a": 1, "b": (1, 3), "c": {"d": 4}, "e": 5}) == [
        "b: there [1, 2] vs here [1, 3]", "c.d: there 3 vs here 4", "e: there None vs here 5"]


def test_a_run_saved_before_a_config_field_existed_counts_as_that_fields_default(sources, tmp_path):
    """config.json of a run written before `n_step`/`layer_norm` existed (it ran one-step targets, no LayerNorm):
    reused as the same experiment when this run asks for n_step=1, refused when it asks for the current default."""
    from experiments.common import train_or_reuse

    one_step = DQNConfig(**{**CFG.__dict__, "n_step": 1})
    old = tmp_path / "old"
    train(SOURCE, one_step, seeds=[0, 1], run_dir=str(old), progress=False)
    meta = json.loads((old / "config.json").read_text())
    for field in ("n_step", "layer_norm"):
        del meta["config"][field]
    (old / "config.json").write_text(json.dumps(meta))
    summary = train_or_reuse(SOURCE, one_step, [0, 1], str(old), rerun=False, experiment="test", progress=False)
    assert summary["seeds"] == [0, 1]
    assert DQNConfig.from_dict(meta["config"]) == one_step
    with pytest.raises(ProvenanceMismatchError, match="config.n_step: there 1 vs here 3"):
        train_or_reuse(SOURCE, CFG, [0, 1], str(old), rerun=False, experiment="test", progress=False)
