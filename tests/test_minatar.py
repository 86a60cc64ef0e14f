"""MinAtar games: specs, protocols, bool observations and their padding, the conv torso and its channel adapters,
valid actions, the replay's byte bound, and all five games training in one program."""

import dataclasses
import json

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import replay
from mtrl.agent import Agent, default_hparams
from mtrl.config import DQNConfig
from mtrl.tasks import MINATAR_GAMES, PAPER_EPISODE_CAP, make_taskset, parse_task, suite
from mtrl.trainer import Trainer, train

CHANNELS = {"Asterix-MinAtar": 4, "Breakout-MinAtar": 4, "Freeway-MinAtar": 7, "SpaceInvaders-MinAtar": 6,
            "Seaquest-MinAtar": 10}
MINIMAL_ACTIONS = {"Asterix-MinAtar": 5, "Breakout-MinAtar": 3, "Freeway-MinAtar": 3, "SpaceInvaders-MinAtar": 4,
                   "Seaquest-MinAtar": 6}
CONV = dict(conv_channels=(4,), torso=(16,))


def test_specs_suite_and_protocols():
    assert suite("minatar") == MINATAR_GAMES and len(MINATAR_GAMES) == 5
    gym = make_taskset(suite("minatar"))
    assert [t.obs_shape for t in gym.tasks] == [(10, 10, CHANNELS[g]) for g in MINATAR_GAMES]
    assert gym.obs_shape == (10, 10, 10) and gym.obs_dtype == np.dtype(bool)
    assert [t.num_actions for t in gym.tasks] == [MINIMAL_ACTIONS[g] for g in MINATAR_GAMES]
    assert [int(t.params.max_steps_in_episode) for t in gym.tasks] == [1000, 1000, 2500, 1000, 1000]
    paper = make_taskset(suite("minatar"), "minatar-paper")
    assert [t.num_actions for t in paper.tasks] == [6] * 5 and paper.action_mask.all()
    assert [int(t.params.max_steps_in_episode) for t in paper.tasks] == [PAPER_EPISODE_CAP] * 2 + [2500] + \
        [PAPER_EPISODE_CAP] * 2
    task = parse_task("Asterix-MinAtar:ramping=False")
    assert not bool(task.params.ramping) and task.num_actions == 5


@pytest.mark.parametrize("make, message", [
    (lambda: make_taskset(["CartPole-v1"], "minatar-paper"), "changes MinAtar games only"),
    (lambda: make_taskset(["Breakout-MinAtar"], "atari"), "protocol must be one of gymnax, minatar-paper"),
    (lambda: Trainer.create(["CartPole-v1"], DQNConfig(conv_channels=(16,))), r"needs image observations"),
    (lambda: DQNConfig(conv_channels=(0,)).validate(), "conv_channels must be a tuple of positive"),
    (lambda: DQNConfig(loss_aggregation="mean").validate(), "loss_aggregation must be 'sum' or 'popart'"),
    (lambda: DQNConfig(loss_aggregation="popart", popart_step_size=0.01).validate(), "popart_step_size must be <"),
])
def test_bad_protocol_and_network_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_observations_are_exactly_binary_so_bool_storage_is_lossless():
    """Random play in every game (64 envs, 200 steps, one compiled scan per game): gymnax's float32 grids are all 0
    or 1 at every step, and the task set's bool observations, padded to 10 channels, carry them unchanged (extra
    channels zero)."""
    taskset = make_taskset(suite("minatar"))
    for t, task in enumerate(taskset.tasks):
        env, params, channels = task.env, task.params, task.obs_shape[-1]

        def play(key, env=env, params=params, channels=channels, task=task):
            _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, 64), params)

            def step(state, key):
                k_act, k_step = jax.random.split(key)
                actions = jax.random.randint(k_act, (64,), 0, task.num_actions)
                obs, state, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_step, 64), state,
                                                                            actions, params)
                padded = taskset.pad_obs(obs, task.obs_shape)
                assert obs.dtype == jnp.float32 and padded.dtype == jnp.bool_ and padded.shape == (64, 10, 10, 10)
                checks = jnp.stack([jnp.all((obs == 0) | (obs == 1)),  # binary
                                    jnp.all(padded[..., :channels].astype(jnp.float32) == obs),  # carried unchanged
                                    ~padded[..., channels:].any()])  # padding zero
                return state, checks

            return jax.lax.scan(step, state, jax.random.split(key, 200))[1]  # [200, 3]

        checks = np.asarray(jax.jit(play)(jax.random.key(t)))
        assert checks.shape == (200, 3) and checks.all(), (task.spec, np.argwhere(~checks)[:3].tolist())


def test_sticky_actions_repeat_the_previous_action_at_the_configured_rate():
    """Paper protocol: 20,000 envs whose last executed action is 0 are asked for action 2; about 10% execute 0."""
    task = parse_task("Breakout-MinAtar", "minatar-paper")
    n = 20_000
    keys = jax.random.split(jax.random.key(0), n)
    _, state = jax.vmap(task.env.reset, in_axes=(0, None))(keys, task.params)
    assert bool(jnp.all(state.last_action == 0))
    step = jax.vmap(task.env.step, in_axes=(0, 0, 0, None))
    _, state, *_ = step(jax.random.split(jax.random.key(1), n), state, jnp.full((n,), 2), task.params)
    repeated = float(jnp.mean(state.last_action == 0))
    assert abs(repeated - 0.1) < 0.01, repeated  # binomial sd 0.002
    gym = parse_task("Breakout-MinAtar")
    assert not hasattr(gym.env, "_sticky_action_prob")  # the gymnax protocol has none


def test_sticky_actions_hold_the_rate_over_a_stream_of_steps_and_across_auto_resets():
    """Paper protocol, 1,000 Breakout envs x 300 steps of uniformly random requests (many episodes end and
    auto-reset): whenever the request differs from the last executed action, the last one is executed again in
    about 10% of steps, also on the first step of a new episode (MinAtar keeps the last action across a reset)."""
    task = parse_task("Breakout-MinAtar", "minatar-paper")
    n, steps = 1000, 300
    _, state = jax.vmap(task.env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), n), task.params)
    step = jax.vmap(task.env.step, in_axes=(0, 0, 0, None))

    def one(carry, key):
        state, after_reset = carry
        request_key, step_key = jax.random.split(key)
        request = jax.random.randint(request_key, (n,), 0, 6)
        _, new, _, terminated, truncated, _ = step(jax.random.split(step_key, n), state, request, task.params)
        differs = request != state.last_action
        stuck = differs & (new.last_action == state.last_action)
        return (new, terminated | truncated), (differs, stuck, differs & after_reset, stuck & after_reset)

    _, (differs, stuck, differs_reset, stuck_reset) = jax.lax.scan(
        one, (state, jnp.zeros(n, bool)), jax.random.split(jax.random.key(1), steps))
    rate = float(stuck.sum() / differs.sum())
    assert abs(rate - 0.1) < 0.005, rate  # ~250k draws: sd 0.0006
    assert int(differs_reset.sum()) > 10_000  # episodes did end and restart
    rate_after_reset = float(stuck_reset.sum() / differs_reset.sum())
    assert abs(rate_after_reset - 0.1) < 0.01, rate_after_reset  # ~20k draws: sd 0.002


def test_padded_channels_reach_the_torso_through_each_tasks_adapter():
    """Per-task 1x1-conv adapters: one kernel [C_max, F] per task; set to the identity, the adapter passes each
    game's padded grid through unchanged, so the torso sees exactly the game's channels (content preserved)."""
    taskset = make_taskset(suite("minatar"))
    cfg = DQNConfig(adapter_size=10, **CONV)
    agent = Agent.create(taskset, cfg)
    state = agent.init(jax.random.key(0), default_hparams(taskset, cfg))
    adapter = state.params["adapter"]["Conv_0"]
    assert adapter["kernel"].shape == (5, 1, 1, 10, 10) and adapter["bias"].shape == (5, 10)
    obs, _ = taskset.reset(jax.random.key(1), 3)  # [T, 3, 10, 10, 10] bool
    from mtrl.networks import ChannelAdapter

    identity = {"params": {"Conv_0": {"kernel": jnp.eye(10)[None, None], "bias": jnp.zeros(10)}}}
    for t in range(5):
        out = ChannelAdapter(10).apply(identity, obs[t].astype(jnp.float32))
        np.testing.assert_array_equal(np.asarray(out), np.asarray(obs[t], np.float32))


@pytest.mark.parametrize("layer_norm", [False, True])
def test_each_tasks_adapter_feeds_the_shared_conv_torso_and_its_own_head(layer_norm):
    """Inside the network: task t's adapter (set to (t+1) x identity, so each task's is different) maps task t's
    padded grid, the one shared conv torso (with LayerNorm after the conv and dense layers when asked) follows,
    then task t's head: Q-values equal the same modules applied by hand to task t's slice."""
    from mtrl.networks import ConvTorso, QHead

    taskset = make_taskset(suite("minatar"))
    cfg = DQNConfig(adapter_size=10, layer_norm=layer_norm, **CONV)
    agent = Agent.create(taskset, cfg)
    params = agent.init(jax.random.key(0), default_hparams(taskset, cfg)).params
    assert ("LayerNorm_0" in params["torso"]) == layer_norm
    scales = jnp.arange(1.0, 6.0)  # [T]
    params = {**params, "adapter": {"Conv_0": {"kernel": scales[:, None, None, None, None] * jnp.eye(10),
                                               "bias": jnp.zeros((5, 10))}}}
    obs, _ = taskset.reset(jax.random.key(1), 3)  # [T, 3, 10, 10, 10] bool
    q = agent.q_values(params, obs)  # [T, 3, A]
    torso = ConvTorso(CONV["conv_channels"], CONV["torso"], layer_norm)
    for t, game in enumerate(MINATAR_GAMES):
        features = torso.apply({"params": params["torso"]}, obs[t].astype(jnp.float32) * scales[t])
        head = jax.tree.map(lambda leaf, t=t: leaf[t], params["head"])
        valid = jnp.arange(q.shape[-1]) < MINIMAL_ACTIONS[game]
        expected = QHead(q.shape[-1]).apply({"params": head}, features, valid)
        np.testing.assert_allclose(np.asarray(q[t]), np.asarray(expected), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(10, 10, 4), (2, 3, 10, 10, 10), (7, 5, 3)])
def test_conv3x3_is_flax_conv_with_the_same_params_and_gradients(shape):
    import flax.linen as nn

    from mtrl.networks import Conv3x3

    x = jax.random.normal(jax.random.key(1), shape)
    reference, ours = nn.Conv(16, (3, 3), padding="VALID"), Conv3x3(16)
    params = reference.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), atol=1e-5)
    grads = [jax.grad(lambda p, m=m: jnp.sum(jnp.tanh(m.apply(p, x))))(params) for m in (reference, ours)]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), *grads)


def test_agent_never_chooses_a_games_invalid_actions():
    taskset = make_taskset(suite("minatar"))
    cfg = DQNConfig(**CONV)
    agent = Agent.create(taskset, cfg)
    state = agent.init(jax.random.key(0), default_hparams(taskset, cfg))
    obs, _ = taskset.reset(jax.random.key(1), 256)
    counts = np.array([MINIMAL_ACTIONS[g] for g in MINATAR_GAMES])[:, None]
    for eps in (0.0, 0.5, 1.0):
        actions = np.asarray(agent.act(state.params, obs, jax.random.key(2), jnp.full((5,), eps)))
        assert actions.shape == (5, 256) and (actions >= 0).all() and (actions < counts).all()
    random = np.asarray(agent.act(state.params, obs, jax.random.key(3), jnp.ones(5)))
    assert all(len(np.unique(random[t])) == counts[t, 0] for t in range(5))  # every valid action is drawn


def _replay_bytes_per_transition(data: replay.Transition, num_tasks: int, capacity: int) -> float:
    return sum(x.nbytes for x in jax.tree.leaves(data)) / (num_tasks * capacity)


@pytest.mark.parametrize("game", MINATAR_GAMES)
def test_each_game_alone_stores_its_own_channels_within_the_byte_bound(game):
    """A game trained alone stores its own C channels (no padding), as bool: at most 2·H·W·C + 32 bytes per
    transition for that C (Breakout and Asterix 832, Seaquest 2,032)."""
    cfg = DQNConfig(num_envs=4, buffer_size=64, batch_size=8, learning_starts=16, **CONV)
    data = Trainer.create([game], cfg).init([0]).runs.replay.data
    assert data.obs.dtype == jnp.bool_ and data.obs.shape[-3:] == (10, 10, CHANNELS[game])
    per_transition = _replay_bytes_per_transition(data, 1, cfg.buffer_size)
    assert per_transition <= 2 * 10 * 10 * CHANNELS[game] + 32, per_transition


def test_five_games_with_100k_transitions_each_fit_in_under_2_gib_of_replay():
    """The studies' replay (100k transitions per game, five games, widest observation 10x10x10 as bool) is under
    2 GiB: its arrays' shapes from `eval_shape`, nothing allocated."""
    cfg = DQNConfig(buffer_size=100_000, n_step=3, **CONV)  # the studies' n-step returns also store truncations
    trainer = Trainer.create(list(suite("minatar")), cfg)
    shapes = jax.eval_shape(trainer.init_run, jax.random.key(0), trainer.hparams, cfg.lr).replay.data
    total = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(shapes))
    assert 5 * 100_000 * 2 * 10 * 10 * 10 <= total < 2 * 2**30, total  # both observations stored, bool


def test_five_games_train_together_in_one_program(tmp_path):
    """All five games, one network (conv torso), a few hundred env steps each: valid actions only in the replay,
    bool observations within the byte bound, finite losses; a run's protocol is recorded in config.json."""
    cfg = DQNConfig(total_steps=400, num_envs=4, buffer_size=200, batch_size=8, learning_starts=80,
                    target_update_period=10, eval_every=200, eval_episodes=1, **CONV)
    trainer = Trainer.create(list(suite("minatar")), cfg)
    state = trainer.init([0])
    chunk = trainer.make_train_chunk()
    state, metrics = chunk(state)
    data = state.runs.replay.data
    assert data.obs.dtype == jnp.bool_ and data.next_obs.dtype == jnp.bool_
    per_transition = _replay_bytes_per_transition(data, 5, cfg.buffer_size)
    assert per_transition <= 2 * 10 * 10 * 10 + 32, per_transition
    size = int(state.runs.replay.size[0])
    actions = np.asarray(data.action[0, :, :size])
    counts = np.array([MINIMAL_ACTIONS[g] for g in MINATAR_GAMES])[:, None]
    assert (actions < counts).all() and size == 200
    assert int(state.num_updates) > 0 and np.isfinite(np.asarray(metrics["loss"])).all()

    result = train(["Breakout-MinAtar"], dataclasses.replace(cfg, protocol="minatar-paper"), seeds=[0],
                   run_dir=str(tmp_path / "paper"), progress=False)
    saved = json.loads((tmp_path / "paper" / "config.json").read_text())
    assert saved["config"]["protocol"] == "minatar-paper" and saved["config"]["conv_channels"] == [4]
    assert result.eval_returns.shape == (3, 1, 1)


def test_gymnax_builds_minatar_obs_as_float32():
    """The fact `BINARY_OBS_ENVS` relies on: gymnax emits MinAtar grids as float32 (bool cast), so storing bool
    loses nothing only because the values are 0/1 (checked above); a gymnax change here would show."""
    env, params = gymnax.make("Breakout-MinAtar")
    obs, _ = env.reset(jax.random.key(0), params)
    assert obs.dtype == jnp.float32 and obs.shape == (10, 10, 4)


@pytest.mark.parametrize("protocol, terminated, truncated", [("gymnax", False, True), ("minatar-paper", True, False)])
def test_freeways_2500_step_limit_ends_the_game_only_under_the_paper_protocol(protocol, terminated, truncated):
    taskset = make_taskset(["Freeway-MinAtar"], protocol)
    _, states = taskset.reset(jax.random.key(0), 2)

    def body(states, key):
        _, states, _, term, trunc, _ = taskset.step(key, states, jnp.zeros((1, 2), jnp.int32))
        return states, (term, trunc)

    _, (term, trunc) = jax.lax.scan(body, states, jax.random.split(jax.random.key(1), 2500))
    assert not bool(term[:-1].any()) and not bool(trunc[:-1].any())
    assert bool(term[-1].all()) == terminated and bool(trunc[-1].all()) == truncated
