"""PopArt (mtrl.popart): outputs preserved exactly when the statistics move, normalised targets of unit scale,
and known Q-values of very different scales learned in one network."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import popart
from mtrl.agent import Agent, default_hparams
from mtrl.config import DQNConfig
from mtrl.tasks import make_taskset
from mtrl.trainer import train


@pytest.mark.parametrize("dueling", [False, True])
def test_preserve_outputs_keeps_unnormalised_q_values(dueling):
    taskset = make_taskset(["CartPole-v1", "Acrobot-v1"])
    cfg = DQNConfig(dueling=dueling, loss_aggregation="popart")
    agent = Agent.create(taskset, cfg)
    params = agent.init(jax.random.key(0), default_hparams(taskset, cfg)).params
    obs = jax.random.normal(jax.random.key(1), (2, 64, 6))
    old = popart.PopArtState(jnp.array([3.0, -40.0]), jnp.array([2.0, 15.0]), jnp.array([13.0, 1825.0]))
    new = popart.PopArtState(jnp.array([5.0, -60.0]), jnp.array([0.5, 30.0]), jnp.array([25.25, 4500.0]))
    before = popart.unnormalize(old, agent.q_values(params, obs))
    moved = popart.preserve_outputs(params, old, new)
    after = popart.unnormalize(new, agent.q_values(moved, obs))
    np.testing.assert_allclose(np.asarray(after), np.asarray(before), rtol=1e-5, atol=1e-4)
    assert not np.allclose(np.asarray(agent.q_values(moved, obs)), np.asarray(agent.q_values(params, obs)))
    np.testing.assert_array_equal(np.asarray(moved["torso"]["Dense_0"]["kernel"]),
                                  np.asarray(params["torso"]["Dense_0"]["kernel"]))  # only the head moves


def test_a_popart_update_rescales_both_networks_so_their_unnormalised_q_values_stay():
    """`Agent.update` with PopArt at learning rate 0: rewards about 100 and -50 move each task's statistics, the
    gradient step moves nothing, and the unnormalised Q-values of the online and of the (different) target network
    are what they were, while their normalised outputs changed: both heads were rescaled with the statistics."""
    from mtrl.replay import Transition

    taskset = make_taskset(["CartPole-v1", "Acrobot-v1"])
    cfg = DQNConfig(loss_aggregation="popart", popart_step_size=0.01, n_step=1)
    agent = Agent.create(taskset, cfg)
    state = agent.init(jax.random.key(0), default_hparams(taskset, cfg), learning_rate=0.0)
    other = agent.init(jax.random.key(1), default_hparams(taskset, cfg)).params
    state = state.replace(target_params=other)
    keys = jax.random.split(jax.random.key(2), 4)
    obs = jax.random.normal(keys[0], (2, 32, 6))
    batch = Transition(obs=obs, action=jax.random.randint(keys[1], (2, 32), 0, 2),
                       reward=jnp.array([[100.0], [-50.0]]) + jnp.array([[20.0], [5.0]]) * jax.random.normal(keys[3],
                                                                                                       (2, 32)),
                       next_obs=jax.random.normal(keys[2], (2, 32, 6)), terminated=jnp.zeros((2, 32), bool))
    new_state, _ = jax.jit(agent.update)(state, batch)
    assert np.all(np.abs(np.asarray(new_state.popart.shift)) > 1.0)  # the statistics moved
    for name in ("params", "target_params"):
        before, after = getattr(state, name), getattr(new_state, name)
        q_before = popart.unnormalize(state.popart, agent.q_values(before, obs))
        q_after = popart.unnormalize(new_state.popart, agent.q_values(after, obs))
        np.testing.assert_allclose(np.asarray(q_after), np.asarray(q_before), rtol=1e-5, atol=1e-4, err_msg=name)
        assert not np.allclose(np.asarray(agent.q_values(after, obs)), np.asarray(agent.q_values(before, obs))), name


def test_statistics_track_each_tasks_targets_so_normalised_targets_have_unit_scale():
    """Two tasks' target streams, N(50, 20²) and N(-0.5, 0.1²), 3000 batches of 32: the statistics approach each
    task's mean and deviation, and a fresh batch normalises to mean ≈ 0, deviation ≈ 1 for both."""
    update = jax.jit(popart.update_statistics)
    state = popart.init(2)
    mean, sd = jnp.array([50.0, -0.5]), jnp.array([20.0, 0.1])
    for i in range(3000):
        targets = mean[:, None] + sd[:, None] * jax.random.normal(jax.random.key(i), (2, 32))
        state = update(state, targets, jnp.float32(1e-3))
    np.testing.assert_allclose(np.asarray(state.shift), [50.0, -0.5], rtol=0.05)
    np.testing.assert_allclose(np.asarray(state.scale), [20.0, 0.1], rtol=0.1)
    fresh = mean[:, None] + sd[:, None] * jax.random.normal(jax.random.key(-1), (2, 4096))
    normalised = np.asarray(popart.normalize(state, fresh))
    np.testing.assert_allclose(normalised.mean(-1), 0.0, atol=0.1)
    np.testing.assert_allclose(normalised.std(-1), 1.0, atol=0.1)


def test_one_network_learns_q_values_four_orders_of_magnitude_apart():
    """Action-reward probes scaled by 100 and 0.01 in one network (uniform behaviour, so each task's targets vary
    and their deviation is defined). Their observation is 0, so only the head's biases can fit, and Adam moves a
    parameter by about lr per update: in 1000 updates at lr 0.01 the plain sum gets nowhere near 100, while with
    PopArt the normalised values (about -0.7 and 1.4) are reached, both tasks' unnormalised Q-values come out
    right and each task's statistics match its targets (mean s/3, deviation s·√2/3)."""
    specs = ["Probe-ActionReward:reward_scale=100.0,actions=3", "Probe-ActionReward:reward_scale=0.01,actions=3"]
    cfg = DQNConfig(total_steps=4000, num_envs=4, buffer_size=512, batch_size=32, learning_starts=64,
                    target_update_period=10, lr=1e-2, torso=(32,), eps_start=1.0, eps_end=1.0, eval_every=4000,
                    eval_episodes=1, n_step=1, loss_aggregation="popart", popart_step_size=1e-3)
    agent = Agent.create(make_taskset(specs), cfg)
    obs = jnp.zeros((2, 1, 1))
    plain = train(specs, dataclasses.replace(cfg, loss_aggregation="sum"), seeds=[0], progress=False)
    q_plain = np.asarray(agent.q_values(jax.tree.map(lambda x: x[0], plain.state.runs.train.params), obs))
    assert q_plain[0, 0, 1] < 30, q_plain[0, 0]

    result = train(specs, cfg, seeds=[0], progress=False)
    train_state = jax.tree.map(lambda x: x[0], result.state.runs.train)
    q = np.asarray(popart.unnormalize(train_state.popart, agent.q_values(train_state.params, obs)))
    np.testing.assert_allclose(q[0, 0], [0.0, 100.0, 0.0], atol=6.0)
    np.testing.assert_allclose(q[1, 0], [0.0, 0.01, 0.0], atol=6e-4)
    np.testing.assert_allclose(np.asarray(train_state.popart.shift), [100 / 3, 0.01 / 3], rtol=0.15)
    np.testing.assert_allclose(np.asarray(train_state.popart.scale), [100 * 2 ** 0.5 / 3, 0.01 * 2 ** 0.5 / 3],
                               rtol=0.15)


def test_popart_runs_resume_bit_identically_and_load_with_their_statistics(tmp_path, tiny_config):
    from mtrl.policy import load_policy
    from mtrl.trainer import CheckpointOptions
    from mtrl.transfer import resume_run

    cfg = dataclasses.replace(tiny_config, loss_aggregation="popart", popart_step_size=1e-2)
    specs = ["Probe-ActionReward:reward_scale=50.0", "CartPole-v1"]
    every = CheckpointOptions(every=1, keep=10)
    stopped = train(specs, cfg, seeds=[0, 1], run_dir=str(tmp_path / "r"), stop_at_step=128, checkpoints=every,
                    progress=False)
    assert stopped.stopped_at == 128
    resumed = resume_run(str(tmp_path / "r"), progress=False, checkpoints=every)
    straight = train(specs, cfg, seeds=[0, 1], progress=False)
    stats = straight.state.runs.train.popart
    assert float(stats.scale[0, 0]) != 1.0  # the statistics moved
    chex.assert_trees_all_equal(jax.device_get(resumed.state.runs.train), jax.device_get(straight.state.runs.train))
    last = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])["tasks"][specs[0]]
    np.testing.assert_allclose(last["popart_scale"], np.asarray(stats.scale[:, 0]), rtol=1e-6)  # logged per seed
    np.testing.assert_allclose(last["popart_shift"], np.asarray(stats.shift[:, 0]), rtol=1e-6)

    policy = load_policy(str(tmp_path / "r"), seed=1)
    params = jax.tree.map(lambda x: x[1], straight.state.runs.train.params)
    agent = Agent.create(make_taskset(specs), cfg)
    obs = jnp.zeros((2, 1, 4))
    expected = popart.unnormalize(jax.tree.map(lambda x: x[1], stats), agent.q_values(params, obs))[0, 0, :2]
    np.testing.assert_allclose(policy.q_values(0, np.zeros((1,))), np.asarray(expected), rtol=1e-6)
