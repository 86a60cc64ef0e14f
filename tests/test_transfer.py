import chex
import jax
import numpy as np
import pytest

from mtrl.agent import Agent, default_hparams
from mtrl.config import DQNConfig
from mtrl.tasks import make_taskset
from mtrl.transfer import splice


def _params(specs, seed, **kw):
    ts = make_taskset(specs)
    cfg = DQNConfig(torso=(16, 8), **kw)
    return Agent.create(ts, cfg).init(jax.random.key(seed), default_hparams(ts, cfg)).params


SOURCE = ["CartPole-v1:length=0.25", "CartPole-v1:length=0.5", "CartPole-v1:length=1.0"]


def test_splice_copies_torso_only_and_leaves_inputs_unchanged():
    src = _params(SOURCE, 0)
    tgt = _params(["CartPole-v1:length=1.5"], 1)
    src_copy, tgt_copy = jax.tree.map(np.array, src), jax.tree.map(np.array, tgt)
    out = splice(src, tgt)
    chex.assert_trees_all_equal(out["torso"], src["torso"])
    chex.assert_trees_all_equal(out["head"], tgt["head"])
    chex.assert_trees_all_equal(src, src_copy)
    chex.assert_trees_all_equal(tgt, tgt_copy)


def test_head_map_copies_chosen_heads():
    src = _params(SOURCE, 0)
    tgt = _params(["CartPole-v1:length=1.5", "CartPole-v1:length=2.5"], 1)
    out = splice(src, tgt, head_map={1: 2})
    np.testing.assert_array_equal(out["head"]["q"]["kernel"][1], src["head"]["q"]["kernel"][2])
    np.testing.assert_array_equal(out["head"]["q"]["kernel"][0], tgt["head"]["q"]["kernel"][0])


def test_mismatches_are_all_listed():
    src = _params(SOURCE, 0)
    tgt = _params(["Acrobot-v1"], 1, adapter_size=0)
    with pytest.raises(ValueError) as err:
        splice(src, tgt, parts=("torso", "adapter"), head_map={0: 5})
    msg = str(err.value)
    assert "torso['Dense_0']['kernel']: source shape (4, 16) vs target shape (6, 16)" in msg
    assert "adapter: not in source params" in msg
    assert "head_map 0: 5 out of range" in msg
    assert "head['q']" not in msg  # CartPole's 2 actions widen to Acrobot's 3: allowed
    with pytest.raises(ValueError, match=r"head\['q'\]\['kernel'\]: source per-task shape \(8, 3\) vs target "
                                         r"per-task shape \(8, 2\)"):
        splice(tgt, src, head_map={0: 0})  # narrower: would drop actions


def test_head_map_copies_into_a_task_set_with_more_actions_and_channels():
    """A held-out game that widens the task set (Seaquest: 10 channels, 6 actions, against Asterix's 4 and 5 and
    Breakout's 4 and 3): the mapped tasks' heads fill the first 5 actions, their conv adapters the first 4 input
    channels; the rest keep their fresh values."""
    kw = dict(conv_channels=(4,), adapter_size=6)
    src = _params(["Asterix-MinAtar", "Breakout-MinAtar"], 0, **kw)
    tgt = _params(["Asterix-MinAtar", "Breakout-MinAtar", "Seaquest-MinAtar"], 1, **kw)
    out = splice(src, tgt, head_map={0: 0, 1: 1}, head_map_parts=("head", "adapter"))
    (k_src, k_tgt, k_out), (h_src, h_tgt, h_out) = (
        [p[part][layer]["kernel"] for p in (src, tgt, out)] for part, layer in (("adapter", "Conv_0"), ("head", "q")))
    assert k_src.shape[1:] == (1, 1, 4, 6) and k_out.shape[1:] == (1, 1, 10, 6)
    assert h_src.shape[1:] == (8, 5) and h_out.shape[1:] == (8, 6)
    np.testing.assert_array_equal(k_out[:2, :, :, :4], k_src)
    np.testing.assert_array_equal(k_out[:2, :, :, 4:], k_tgt[:2, :, :, 4:])
    np.testing.assert_array_equal(h_out[:2, :, :5], h_src)
    np.testing.assert_array_equal(h_out[:2, :, 5:], h_tgt[:2, :, 5:])
    np.testing.assert_array_equal(out["head"]["q"]["bias"][:2, :5], src["head"]["q"]["bias"])
    for part in ("adapter", "head"):  # Seaquest: not mapped
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[2], out[part]), jax.tree.map(lambda x: x[2], tgt[part]))


def test_head_map_copies_adapters_across_different_observation_padding():
    # Source {CartPole (4), MountainCar (2)} pads obs to 4; target {CartPole, MountainCar, Acrobot (6)} pads to 6.
    src = _params(["CartPole-v1", "MountainCar-v0"], 0, adapter_size=8)
    tgt = _params(["CartPole-v1", "MountainCar-v0", "Acrobot-v1"], 1, adapter_size=8)
    out = splice(src, tgt, head_map={0: 0, 1: 1}, head_map_parts=("head", "adapter"))
    k_src, k_tgt, k_out = (p["adapter"]["Dense_0"]["kernel"] for p in (src, tgt, out))
    assert k_src.shape[1:] == (4, 8) and k_out.shape[1:] == (6, 8)
    np.testing.assert_array_equal(k_out[:2, :4], k_src[:2])
    np.testing.assert_array_equal(k_out[:2, 4:], k_tgt[:2, 4:])  # rows that only meet zero padding: fresh
    np.testing.assert_array_equal(k_out[2], k_tgt[2])  # Acrobot: not mapped
    with pytest.raises(ValueError, match=r"adapter\['Dense_0'\]\['kernel'\]: source per-task shape \(4, 8\)"):
        splice(src, _params(["CartPole-v1", "Acrobot-v1"], 1, adapter_size=16), head_map={0: 0},
               head_map_parts=("adapter",))


@pytest.mark.parametrize("conv_channels", [(), (4,)])
def test_joint_copies_adapters_into_more_channels_only_where_padding_adds_inputs_at_the_end(conv_channels):
    """A dense adapter reads flattened images: padding Asterix and Breakout's 4 channels to Seaquest's 10 moves every
    pixel's input, so joint refuses to copy its rows; a conv network's 1x1-conv adapters widen by channel."""
    from mtrl.transfer import Source, TransferConfig, build_trainer, check_splice, target_config, target_task_list

    games, tcfg = ["Asterix-MinAtar", "Breakout-MinAtar"], TransferConfig(mode="joint")
    cfg = DQNConfig(torso=(16, 8), adapter_size=6, conv_channels=conv_channels)
    params = jax.tree.map(lambda x: x[None], _params(games, 0, adapter_size=6, conv_channels=conv_channels))
    source = Source(params=params, metadata={"tasks": games, "seeds": [0], "step": 0}, run_dir="source")
    trainer = build_trainer(target_task_list("joint", games, ["Seaquest-MinAtar"]), target_config(cfg, tcfg, 2, 1),
                            tcfg)
    if conv_channels:
        check_splice(source, trainer, tcfg)
    else:
        with pytest.raises(ValueError, match=r"adapter\['Dense_0'\]\['kernel'\]: source per-task shape \(400, 6\) vs "
                                             r"target per-task shape \(1000, 6\)"):
            check_splice(source, trainer, tcfg)


def test_every_mode_trains_with_the_studys_config_and_joint_only_sets_the_task_weights():
    """A study's loss aggregation (PopArt), network and schedule reach every mode's run unchanged."""
    import dataclasses

    from mtrl.transfer import MODES, TransferConfig, target_config

    config = DQNConfig(loss_aggregation="popart", conv_channels=(16,), torso=(128,), learning_starts=5000)
    for mode in MODES:
        tcfg = TransferConfig(mode=mode, transfer_factor=0.5)
        out = target_config(config, tcfg, 4, 1)
        expected = (1.0, 1.0, 1.0, 1.0, 0.5) if mode == "joint" else None
        assert out.task_weights == expected, mode
        assert dataclasses.replace(out, task_weights=None) == config, mode
