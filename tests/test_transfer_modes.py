"""Transfer modes on a tiny pretrained source: what moves, what stays bit-identical, what starts where."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl.config import DQNConfig
from mtrl.trainer import Trainer, train
from mtrl.transfer import (
    TransferConfig,
    TransferSettings,
    build_trainer,
    initial_state_fn,
    load_source,
    resume_run,
    target_config,
    target_task_list,
    train_transfer,
    updates_before,
)

CFG = DQNConfig(total_steps=256, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16,
                target_update_period=4, torso=(16,), eval_every=128, eval_episodes=2)
SOURCE_TASKS = ["CartPole-v1:length=0.5", "CartPole-v1:length=1.0"]
TARGET = ["CartPole-v1:length=1.5"]
SEEDS = [0, 1, 2]  # three target runs from two source runs: source seeds 0, 1, 0
CHUNK = 16  # iterations per chunk = 64 env steps per task


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("source")
    train(SOURCE_TASKS, CFG, seeds=[0, 1], run_dir=str(run_dir), progress=False)
    return str(run_dir)


def _run(source_dir, mode, chunks, config=CFG, target=tuple(TARGET), **settings):
    """Train ``chunks`` chunks of a target run; returns (source, trainer, [train states after each chunk])."""
    source = load_source(source_dir)
    tcfg = TransferConfig(mode=mode, **settings)
    tasks = target_task_list(mode, source.tasks, list(target))
    trainer = build_trainer(tasks, target_config(config, tcfg, len(source.tasks), len(target)), tcfg)
    state = initial_state_fn(source, tcfg)(trainer, SEEDS)
    chunk = trainer.make_train_chunk(CHUNK)
    history = [jax.device_get(state.runs.train)]
    for _ in range(chunks):
        state, _ = chunk(state)
        history.append(jax.device_get(state.runs.train))
    return source, trainer, history


def _source_torso(source):
    return jax.tree.map(lambda x: np.asarray(x)[[0, 1, 0]], source.params["torso"])


def _moved(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_finetune_starts_from_the_source_torso_with_fresh_heads_and_optimiser(source_dir):
    source, trainer, history = _run(source_dir, "finetune", 1)
    start = history[0]
    chex.assert_trees_all_equal(start.params["torso"], _source_torso(source))
    scratch = jax.device_get(Trainer.create(TARGET, CFG).init(SEEDS).runs.train)
    chex.assert_trees_all_equal(start.params["head"], scratch.params["head"])  # same seeds, fresh heads
    chex.assert_trees_all_equal(start.target_params, start.params)
    mu = start.opt_state.inner_state[0][1][0].mu  # chain(clip_and_adam)[adam][scale_by_adam].mu
    assert all(np.all(x == 0) for x in jax.tree.leaves(mu))
    assert _moved(history[1].params["torso"], start.params["torso"])


def test_frozen_torso_is_bit_identical_has_no_optimiser_state_and_heads_move(source_dir):
    source, trainer, history = _run(source_dir, "frozen", 3)
    chex.assert_trees_all_equal(history[-1].params["torso"], _source_torso(source))
    chex.assert_trees_all_equal(history[-1].target_params["torso"], _source_torso(source))
    assert _moved(history[-1].params["head"], history[0].params["head"])
    torso_shapes = {np.shape(x) for x in jax.tree.leaves(history[0].params["torso"])}
    opt_shapes = [np.shape(x) for x in jax.tree.leaves(history[-1].opt_state)]
    assert not torso_shapes & set(opt_shapes), "frozen leaves must carry no optimiser state"


def test_unfreeze_keeps_the_torso_until_step_k_then_trains_it(source_dir):
    source, trainer, history = _run(source_dir, "unfreeze", 4, unfreeze_at=128)
    assert updates_before(CFG, 128) == 29  # learning starts at iteration 3 (16 env steps)
    for h in history[:3]:  # after 0, 64 and 128 env steps per task
        chex.assert_trees_all_equal(h.params["torso"], _source_torso(source))
    assert _moved(history[3].params["torso"], history[2].params["torso"])
    assert _moved(history[2].params["head"], history[0].params["head"])


def _torso_drift(history):
    return sum(float(np.sum((a - b) ** 2)) for a, b in
               zip(jax.tree.leaves(history[-1].params["torso"]), jax.tree.leaves(history[0].params["torso"])))


def test_l2sp_with_large_alpha_keeps_the_torso_near_the_source(source_dir):
    drift = _torso_drift

    _, _, finetune = _run(source_dir, "finetune", 4)
    _, _, l2sp = _run(source_dir, "l2sp", 4, l2sp_alpha=100.0)
    chex.assert_trees_all_equal(l2sp[-1].anchor["torso"], l2sp[0].params["torso"])
    assert drift(l2sp) < 0.2 * drift(finetune)
    assert _moved(l2sp[-1].params["head"], l2sp[0].params["head"])


CONV_CFG = dataclasses.replace(CFG, conv_channels=(4,), adapter_size=6)


@pytest.fixture(scope="module")
def conv_source_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("conv_source")
    train(["Breakout-MinAtar"], CONV_CFG, seeds=[0, 1], run_dir=str(run_dir), progress=False)
    return str(run_dir)


def test_frozen_and_l2sp_work_unchanged_on_a_conv_torso(conv_source_dir):
    """Breakout's conv torso (4 channels; 3x3 conv kernel, dense layer; 1x1-conv adapters) carried to SpaceInvaders
    (6 channels): frozen keeps every torso leaf, the conv kernel included, bit-identical with no optimiser state
    while the adapter and head train; L2-SP anchors the source torso and drifts far less than fine-tuning."""
    target = ("SpaceInvaders-MinAtar",)
    source, _, frozen = _run(conv_source_dir, "frozen", 2, CONV_CFG, target)
    assert frozen[0].params["torso"]["Conv_0"]["kernel"].shape == (3, 3, 3, 6, 4)  # [S, 3, 3, adapter, F]
    chex.assert_trees_all_equal(frozen[-1].params["torso"], _source_torso(source))
    assert _moved(frozen[-1].params["head"], frozen[0].params["head"])
    assert _moved(frozen[-1].params["adapter"], frozen[0].params["adapter"])
    torso_shapes = {np.shape(x) for x in jax.tree.leaves(frozen[0].params["torso"])}
    assert not torso_shapes & {np.shape(x) for x in jax.tree.leaves(frozen[-1].opt_state)}
    _, _, finetune = _run(conv_source_dir, "finetune", 2, CONV_CFG, target)
    _, _, l2sp = _run(conv_source_dir, "l2sp", 2, CONV_CFG, target, l2sp_alpha=100.0)
    chex.assert_trees_all_equal(l2sp[-1].anchor["torso"], _source_torso(source))
    assert 0 < _torso_drift(l2sp) < 0.2 * _torso_drift(finetune)


def test_joint_keeps_source_tasks_with_their_heads_and_trains_every_head(source_dir):
    source, trainer, history = _run(source_dir, "joint", 2, transfer_factor=0.5)
    assert trainer.taskset.names == SOURCE_TASKS + TARGET
    np.testing.assert_allclose(np.asarray(trainer.hparams.task_weights), [1.0, 1.0, 0.5])
    start, end = history[0].params["head"]["q"]["kernel"], history[-1].params["head"]["q"]["kernel"]
    np.testing.assert_array_equal(start[:, :2], np.asarray(source.params["head"]["q"]["kernel"])[[0, 1, 0]])
    for task in range(3):
        assert not np.array_equal(start[:, task], end[:, task]), f"head {task} did not train"


@pytest.fixture(scope="module")
def popart_source_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("popart_source")
    config = dataclasses.replace(CFG, adapter_size=8, loss_aggregation="popart")
    train(SOURCE_TASKS, config, seeds=[0], run_dir=str(run_dir), progress=False)
    return str(run_dir)


@pytest.mark.parametrize("target_aggregation", ["sum", "popart"])
def test_joint_source_tasks_keep_their_q_values_in_a_wider_task_set(popart_source_dir, target_aggregation):
    """Acrobot (6 features, 3 actions) joins two CartPole tasks (4, 2) trained with PopArt: in mode joint each
    source task's adapter and head fill the leading slice of the wider ones, the PopArt statistics are folded into
    the heads, and every source task's Q-values (σ q̃ + μ in the source) come out of the target network unchanged,
    with or without PopArt in the target (whose statistics start at identity)."""
    from mtrl.agent import Agent
    from mtrl.checkpoint import Checkpointer
    from mtrl.tasks import make_taskset

    config = dataclasses.replace(CFG, adapter_size=8, loss_aggregation="popart")
    ckpt = Checkpointer(popart_source_dir, read_only=True)
    raw = ckpt.restore_untyped(ckpt.metadata()["step"])["runs"]["train"]
    ckpt.close()
    obs = jax.random.normal(jax.random.key(0), (2, 5, 4))  # [T_source, N, CartPole features]
    first = lambda tree: jax.tree.map(lambda x: jnp.asarray(x)[0], tree)  # noqa: E731
    source_q = Agent.create(make_taskset(SOURCE_TASKS), config).q_values(first(raw["params"]), obs)
    stats = first(raw["popart"])
    source_q = source_q * stats["scale"][:, None, None] + stats["shift"][:, None, None]
    assert not np.allclose(stats["scale"], 1.0)

    source = load_source(popart_source_dir)
    tcfg = TransferConfig(mode="joint")
    tasks = target_task_list("joint", source.tasks, ["Acrobot-v1"])
    target_cfg = dataclasses.replace(target_config(config, tcfg, 2, 1), loss_aggregation=target_aggregation)
    trainer = build_trainer(tasks, target_cfg, tcfg)
    state = initial_state_fn(source, tcfg)(trainer, [0])
    padded = jnp.concatenate([jnp.pad(obs, ((0, 0), (0, 0), (0, 2))), jnp.zeros((1, 5, 6))])  # Acrobot: 6 features
    target_q = trainer.agent.q_values(first(state.runs.train.params), padded)
    assert target_q.shape == (3, 5, 3)
    np.testing.assert_allclose(target_q[:2, :, :2], source_q, rtol=1e-5, atol=1e-5)


def test_scratch_is_a_fresh_run_with_the_same_seeds(source_dir):
    _, _, history = _run(source_dir, "scratch", 0)
    scratch = jax.device_get(Trainer.create(TARGET, CFG).init(SEEDS).runs.train)
    chex.assert_trees_all_equal(history[0].params, scratch.params)


def test_train_transfer_records_provenance(source_dir, tmp_path):
    result = train_transfer(source_dir, TARGET, TransferConfig(mode="frozen"), CFG, seeds=SEEDS,
                            run_dir=str(tmp_path), progress=False)
    meta = json.load(open(tmp_path / "config.json"))["transfer"]
    assert meta["source_run"] == source_dir and meta["source_step"] == 256
    assert meta["spliced"] == ["torso"] and meta["seed_map"] == {"0": 0, "1": 1, "2": 0}
    assert meta["settings"]["mode"] == "frozen" and meta["source_env_steps"] == 512
    assert meta["source_fingerprint"] == load_source(source_dir).fingerprint and len(meta["source_fingerprint"]) == 16
    final = result.summary["tasks"][TARGET[0]]["final_return"]["per_seed"]
    np.testing.assert_allclose(final, result.eval_returns[-1][:, 0], rtol=1e-6)


def test_bad_transfer_settings_are_clear_errors(source_dir):
    with pytest.raises(ValueError, match="mode must be one of scratch, finetune"):
        TransferConfig(mode="thaw").validate()
    with pytest.raises(ValueError, match="unfreeze_lr_scale must be > 0"):
        TransferConfig(unfreeze_lr_scale=0.0).validate()
    with pytest.raises(ValueError, match="does not exist"):
        load_source("/nonexistent/run")
    wider = DQNConfig(**{**CFG.__dict__, "torso": (32,)})
    with pytest.raises(ValueError, match=r"torso\['Dense_0'\]\['kernel'\]: source shape \(4, 16\) vs target shape"
                                         r"(.|\n)*Source vs target: torso \[16\] vs \[32\]\.$"):
        train_transfer(source_dir, TARGET, TransferConfig(), wider, seeds=[0], progress=False)


def test_more_target_seeds_than_source_networks_warn_that_runs_share_one(source_dir, tmp_path, monkeypatch, recwarn):
    """In a transfer run, a study (before any mode trains) and a transfer sweep (before its shards train)."""
    import mtrl.trainer
    from mtrl.study import transfer_study
    from mtrl.sweeps import sweep

    class Trained(Exception):
        pass

    def no_training(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(mtrl.trainer, "train", no_training)  # every warning comes before training
    for seeds in ([0, 1], [5, 6]):
        with pytest.raises(Trained):
            train_transfer(source_dir, TARGET, TransferConfig(), CFG, seeds=seeds)
    with pytest.raises(Trained):
        train_transfer(source_dir, TARGET, TransferConfig(mode="scratch"), CFG, seeds=[0, 1, 2])
    assert not [w for w in recwarn if "source network" in str(w.message)]
    message = (r"3 target seeds start from 2 source networks \(target run r starts from source run r mod 2; target "
               r"seeds \[5, 7\] share source seed 0\): runs that share a source network are not independent")
    with pytest.warns(UserWarning, match=message):
        with pytest.raises(Trained):
            train_transfer(source_dir, TARGET, TransferConfig(), CFG, seeds=[5, 6, 7])
    with pytest.warns(UserWarning, match=message):
        with pytest.raises(Trained):  # the study's scratch mode would train first: warned before it
            transfer_study(source_dir, TARGET, modes=["finetune"], config=CFG, seeds=[5, 6, 7],
                           run_dir=str(tmp_path / "study"), progress=False)
    with pytest.warns(UserWarning, match=message):
        with pytest.raises(Trained):
            sweep(TARGET, CFG, {"lr": (1e-3, 2e-3)}, seeds=[5, 6, 7], source=source_dir,
                  transfer=TransferConfig(mode="finetune"), progress=False)

def test_a_torso_that_cannot_be_spliced_is_refused_before_anything_is_built(source_dir, tmp_path, monkeypatch):
    """Acrobot's 6 observation features against the source's 4: refused from shapes alone, naming the layer, before
    a run directory exists or a program compiles; a study refuses before its scratch run trains."""
    from mtrl.study import transfer_study

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before the splice was checked")

    monkeypatch.setattr(Trainer, "start", no_compile)
    message = r"mode finetune; cannot splice parameters:\n  torso\['Dense_0'\]\['kernel'\]: source shape \(4, 16\) vs "
    with pytest.raises(ValueError, match=message) as error:
        train_transfer(source_dir, ["Acrobot-v1"], TransferConfig(), CFG, seeds=[0], run_dir=str(tmp_path / "run"),
                       progress=False)
    assert error.value.args[0].endswith("Source vs target: observations (padded) [4] vs [6].")
    with pytest.raises(ValueError, match=message):
        transfer_study(source_dir, ["Acrobot-v1"], modes=["finetune"], config=CFG, run_dir=str(tmp_path / "study"),
                       progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "study").exists()


@pytest.mark.parametrize("settings, message", [
    ({"mode": "unfreeze", "unfreeze_at": 256}, r"unfreeze_at \(256\) must come before the run's last update"),
    ({"mode": "unfreeze", "unfreeze_at": 0}, r"unfreeze_at \(0\) must come after the first update"),
    ({"mode": "l2sp", "l2sp_alpha": 0.0}, "l2sp_alpha must be > 0 in mode l2sp"),
    ({"mode": "joint", "transfer_factor": 0.0}, "transfer_factor must be > 0 in mode joint"),
])
def test_settings_that_cannot_act_are_refused_before_training(source_dir, tmp_path, settings, message):
    """A mode that would silently equal another (unfreeze never unfreezing = frozen, ...) is an error, in a single
    transfer run and in a study (before any mode trains)."""
    from mtrl.study import transfer_study

    with pytest.raises(ValueError, match=message):
        train_transfer(source_dir, TARGET, TransferConfig(**settings), CFG, seeds=[0], progress=False)
    mode = settings.pop("mode")
    with pytest.raises(ValueError, match=message):
        transfer_study(source_dir, TARGET, modes=[mode], transfer=TransferSettings(**settings), config=CFG,
                       run_dir=str(tmp_path), progress=False)
    assert not (tmp_path / "scratch").exists()
    with pytest.raises(ValueError, match="not a TransferConfig \\(mode 'l2sp'\\); name the modes in modes="):
        transfer_study(source_dir, TARGET, modes=["joint"], transfer=TransferConfig(mode="l2sp"), config=CFG,
                       run_dir=str(tmp_path), progress=False)


def test_joint_with_weights_of_its_own_frozen_popart_heads_or_heads_across_protocols_are_refused(source_dir):
    """joint sets the task weights itself; PopArt rescales heads, so it cannot hold one frozen; a head (or joint's
    source tasks) trained under one protocol would score other actions under another."""
    weighted = dataclasses.replace(CFG, task_weights=(1.0, 0.5))
    with pytest.raises(ValueError, match="task_weights must be unset in mode joint"):
        train_transfer(source_dir, TARGET, TransferConfig(mode="joint"), weighted, seeds=[0], progress=False)
    popart = dataclasses.replace(CFG, loss_aggregation="popart")
    with pytest.raises(ValueError, match="parts must not include 'head' in mode frozen with loss_aggregation 'popart'"):
        train_transfer(source_dir, TARGET, TransferConfig(mode="frozen", parts=("torso", "head")), popart, seeds=[0],
                       progress=False)
    paper = dataclasses.replace(CFG, protocol="minatar-paper")
    for tcfg in (TransferConfig(parts=("torso", "head")), TransferConfig(mode="joint")):
        with pytest.raises(ValueError, match="the source ran protocol 'gymnax' and the target runs 'minatar-paper'"):
            train_transfer(source_dir, ["Breakout-MinAtar"], tcfg, paper, seeds=[0], progress=False)
    with pytest.raises(ValueError, match="cannot splice parameters"):  # the torso alone may cross: shapes decide
        train_transfer(source_dir, ["Breakout-MinAtar"], TransferConfig(), paper, seeds=[0], progress=False)


def test_a_stopped_transfer_run_resumes_bit_identically(source_dir, tmp_path):
    tcfg = TransferConfig(mode="unfreeze", unfreeze_at=64)
    straight = train_transfer(source_dir, TARGET, tcfg, CFG, seeds=SEEDS, run_dir=str(tmp_path / "a"),
                              progress=False)
    stopped = train_transfer(source_dir, TARGET, tcfg, CFG, seeds=SEEDS, run_dir=str(tmp_path / "b"),
                             progress=False, stop_at_step=128)
    assert stopped.stopped_at == 128
    resumed = resume_run(str(tmp_path / "b"), progress=False)
    chex.assert_trees_all_equal(jax.device_get(straight.state.runs.train), jax.device_get(resumed.state.runs.train))
    assert (tmp_path / "a" / "eval.csv").read_text() == (tmp_path / "b" / "eval.csv").read_text()
