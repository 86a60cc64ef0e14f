import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import tasks


def test_parse_defaults_and_overrides():
    t = tasks.parse_task("CartPole-v1:length=1.0,masspole=0.2")
    assert t.env_id == "CartPole-v1"
    assert t.params.length == 1.0 and t.params.masspole == 0.2
    # derived fields are recomputed from the overridden ones
    assert t.params.total_mass == pytest.approx(0.2 + 1.0)
    assert t.params.polemass_length == pytest.approx(0.2 * 1.0)
    assert t.obs_shape == (4,) and t.num_actions == 2 and t.gamma is None


def test_parse_int_field_and_gamma():
    t = tasks.parse_task("Acrobot-v1:max_steps_in_episode=200,gamma=0.995")
    assert t.params.max_steps_in_episode == 200 and isinstance(t.params.max_steps_in_episode, int)
    assert t.gamma == pytest.approx(0.995)
    assert t.num_actions == 3 and t.obs_shape == (6,)
    assert t.eps_end is None and t.eps_decay_fraction is None


def test_parse_learner_fields():
    t = tasks.parse_task("MountainCar-v0:eps_end=0.2,eps_decay_fraction=0.5")
    assert (t.gamma, t.eps_end, t.eps_decay_fraction) == (None, 0.2, 0.5)
    ts = tasks.make_taskset(["CartPole-v1", "MountainCar-v0:eps_end=0.2"])
    np.testing.assert_allclose(ts.learner_values("eps_end", 0.05), [0.05, 0.2])



def test_a_spec_learner_setting_gives_the_hyperparameters_a_sweep_setting_for_that_task_gives():
    """``Acrobot-v1:eps_start=0.5`` trains as the sweep setting ``eps_start.1=0.5`` does (so such a setting can be
    trained alone); likewise ``gamma``, ``eps_end`` and ``eps_decay_fraction`` (sweep name ``eps_decay``)."""
    from mtrl.agent import default_hparams
    from mtrl.config import DQNConfig
    from mtrl.sweep_grid import per_task_overrides

    config = DQNConfig(total_steps=1000)
    plain = default_hparams(tasks.make_taskset(["CartPole-v1", "Acrobot-v1"]), config)
    spec = default_hparams(tasks.make_taskset(
        ["CartPole-v1", "Acrobot-v1:eps_start=0.5,gamma=0.9,eps_end=0.2,eps_decay_fraction=0.3"]), config)
    setting = {"eps_start.1": 0.5, "gamma.1": 0.9, "eps_end.1": 0.2, "eps_decay.1": 0.3}
    for field, values in per_task_overrides(setting, config.total_steps).items():
        swept = np.array(getattr(plain, field), np.float32)
        swept[list(values)] = list(values.values())
        np.testing.assert_array_equal(np.asarray(getattr(spec, field)), swept, err_msg=field)
    assert np.asarray(spec.eps_start).tolist() == [1.0, 0.5]
    assert tasks.parse_task("Acrobot-v1:eps_start=0.5").eps_start == 0.5
    with pytest.raises(ValueError, match="'eps_start' of Acrobot-v1 must be in"):
        tasks.parse_task("Acrobot-v1:eps_start=1.5")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("CartPol-v1", "unknown env id 'CartPol-v1' in task spec 'CartPol-v1' \\(did you mean CartPole-v1\\?\\); "
                       "allowed: .*CartPole-v1"),
        ("breakout:ramping=False", "unknown env id 'breakout' .*\\(did you mean Breakout-MinAtar\\?\\)"),
        ("Acrobot", "unknown env id 'Acrobot' in task spec 'Acrobot' \\(did you mean Acrobot-v1\\?\\)"),
        ("Hopper-v1", "unknown env id 'Hopper-v1' in task spec 'Hopper-v1'; allowed: "),  # nothing close
        ("Pendulum-v1", "mtrl's DQN needs discrete actions; Pendulum-v1 has a continuous action space"),
        ("MNISTBandit-bsuite", "MNISTBandit-bsuite is not supported by mtrl \\(it downloads data"),
        ("CartPole-v1:lenght=1.0", "unknown field 'lenght' for CartPole-v1.*allowed fields: .*length"),
        ("CartPole-v1:length=long", "task field 'length' of CartPole-v1 must be a finite number, got 'long'"),
        ("CartPole-v1:length=nan", "must be a finite number"),
        ("CartPole-v1:max_steps_in_episode=2.5", "'max_steps_in_episode' of CartPole-v1 must be an integer"),
        ("CartPole-v1:total_mass=3.0", "'total_mass' of CartPole-v1 is derived"),
        ("CartPole-v1:length", "malformed field 'length'.*expected field=value"),
        ("CartPole-v1:length=1,length=2", "'length' given twice"),
        ("CartPole-v1:gamma=1.5", "'gamma' of CartPole-v1 must be in \\[0, 1\\], got 1.5"),
        ("CartPole-v1:eps_end=-0.1", "'eps_end' of CartPole-v1 must be in \\[0, 1\\], got -0.1"),
        ("CartPole-v1:eps_end=0.1,eps_end=0.2", "'eps_end' given twice"),
        ("CartPole-v1:epsilon=0.1",
         "unknown field 'epsilon'.*allowed fields: .*gamma, eps_start, eps_end, eps_decay_fraction"),
        ("Acrobot-v1:available_torque=1.0", "'available_torque' of Acrobot-v1 is not a scalar"),
        ("CartPole-v1:length=0", r"task field 'length' of CartPole-v1 must be > 0, got 0.0 in 'CartPole-v1:length=0'"),
        ("CartPole-v1:max_steps_in_episode=0", "'max_steps_in_episode' of CartPole-v1 must be >= 1, got 0"),
        ("Seaquest-MinAtar:enemy_move_interval=0", "'enemy_move_interval' of Seaquest-MinAtar must be >= 1, got 0"),
        ("FourRooms-misc:fail_prob=1.5", r"'fail_prob' of FourRooms-misc must be in \[0, 1\], got 1.5"),
        ("Acrobot-v1:torque_noise_max=-0.1", "'torque_noise_max' of Acrobot-v1 must be >= 0, got -0.1"),
        ("", "non-empty string"),
        # one spelling per spec (it names the task in run files, tables and plots)
        ("CartPole-v1:length=1.0,,gravity=3.0", "has an empty field.*no spaces"),
        ("CartPole-v1:", "has an empty field"),
        ("CartPole-v1:length=1.0,", "has an empty field"),
        ("CartPole-v1: length = 1.0", "contains whitespace; write ENV_ID or ENV_ID:field=value"),
        (" CartPole-v1", "contains whitespace"),
    ],
)
def test_parse_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        tasks.parse_task(spec)


def test_every_ranged_field_exists_and_its_default_and_edge_values_are_allowed():
    for env_id, ranges in tasks.FIELD_RANGES.items():
        env, params = tasks._make_env(env_id)
        for field, (low, strict, high) in ranges.items():
            default = getattr(params, field)
            spec = f"{env_id}:{field}={default}"
            assert getattr(tasks.parse_task(spec).params, field) == default, spec
            edge = high if high is not None else low + (0.5 if strict else 0)
            tasks.parse_task(f"{env_id}:{field}={edge}")  # the edge itself (or just past a strict one) is allowed


@pytest.mark.parametrize("specs, first, second", [
    (["CartPole-v1:length=0.5", "CartPole-v1"], "CartPole-v1:length=0.5", "CartPole-v1"),  # the default written out
    (["Acrobot-v1", "CartPole-v1:length=.5", "CartPole-v1:length=0.50"], "CartPole-v1:length=.5",
     "CartPole-v1:length=0.50"),
    (["Asterix-MinAtar", "Asterix-MinAtar:ramping=true"], "Asterix-MinAtar", "Asterix-MinAtar:ramping=true"),
])
def test_specs_written_differently_for_the_same_task_are_refused(specs, first, second):
    with pytest.raises(ValueError, match=f"tasks must be distinct; '{re.escape(first)}' and '{re.escape(second)}' "
                                         "are the same task"):
        tasks.make_taskset(specs)
    tasks.make_taskset(["CartPole-v1:length=1.0", "CartPole-v1", "CartPole-v1:gamma=0.99"])  # all different


def test_find_spec_finds_the_same_task_written_another_way():
    specs = ["CartPole-v1:length=0.5,gravity=3.0", "Acrobot-v1", "CartPole-v1:gamma=0.9"]
    assert tasks.find_spec("Acrobot-v1", specs) == "Acrobot-v1"
    assert tasks.find_spec("CartPole-v1:gravity=3,length=.50", specs) == specs[0]  # order, spelling
    assert tasks.find_spec("CartPole-v1:gravity=3.0", specs) == specs[0]  # length 0.5 is the default
    assert tasks.find_spec("Acrobot-v1:link_length_1=1.0", specs) == "Acrobot-v1"
    assert tasks.find_spec("CartPole-v1:gamma=0.90", specs) == specs[2]
    assert tasks.find_spec("CartPole-v1", specs) is None  # gravity 9.8, not 3
    assert tasks.find_spec("CartPole-v1:gamma=0.99", specs) is None  # another learner setting
    assert tasks.find_spec("CartPole-v1:lenght=0.5", specs) is None  # does not parse


def test_suites():
    assert tasks.suite("cartpole-lengths") == tuple(
        f"CartPole-v1:length={x}" for x in (0.25, 0.5, 1.0, 1.5)
    )
    assert tasks.suite("classic") == ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
    with pytest.raises(ValueError, match="unknown suite 'nope'; allowed: .*classic"):
        tasks.suite("nope")


def test_taskset_groups_padding_masks():
    ts = tasks.make_taskset(["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "CartPole-v1:length=1.0"])
    assert ts.num_tasks == 4
    assert [g.task_ids for g in ts.groups] == [(0, 3), (1,), (2,)]
    assert ts.obs_shape == (6,) and ts.num_actions == 3
    np.testing.assert_array_equal(
        ts.action_mask, [[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0]]
    )
    np.testing.assert_allclose(ts.gammas(0.9), [0.9] * 4)
    # the CartPole group steps with stacked params: one leaf per field with a task axis of 2
    np.testing.assert_allclose(ts.groups[0].params.length, [0.5, 1.0])
    obs, states = ts.reset(jax.random.key(0), num_envs=3)
    assert obs.shape == (4, 3, 6)
    # CartPole obs occupy 4 of 6 slots, the rest is zero padding; MountainCar uses 2
    assert jnp.all(obs[0, :, 4:] == 0) and jnp.all(obs[2, :, 2:] == 0)
    assert jnp.any(obs[1, :, 4:] != 0)


def test_taskset_step_matches_gymnax_per_task():
    specs = ["CartPole-v1:length=0.25", "Acrobot-v1", "CartPole-v1:length=1.5"]
    ts = tasks.make_taskset(specs)
    obs, states = ts.reset(jax.random.key(1), num_envs=2)
    actions = jnp.array([[0, 1], [2, 0], [1, 1]], jnp.int32)
    key = jax.random.key(2)
    obs2, _, reward, terminated, truncated, final_obs = ts.step(key, states, actions)
    keys = jax.random.split(key, (3, 2))
    for t in range(len(specs)):
        task = ts.tasks[t]
        group = next(g for g in ts.groups if t in g.task_ids)
        g_idx = group.task_ids.index(t)
        state_t = jax.tree.map(lambda x: x[g_idx], states[ts.groups.index(group)])
        for n in range(2):
            s = jax.tree.map(lambda x: x[n], state_t)
            o, _, r, term, trunc, info = task.env.step(keys[t, n], s, actions[t, n], task.params)
            d = task.obs_shape[0]
            np.testing.assert_allclose(obs2[t, n, :d], o, rtol=1e-6)
            np.testing.assert_allclose(final_obs[t, n, :d], info["final_observation"], rtol=1e-6)
            assert reward[t, n] == r and terminated[t, n] == term and truncated[t, n] == trunc


@pytest.mark.parametrize("spec, envs_only", [("CartPole-v1", False), ("Breakout-MinAtar", True)])
def test_a_group_of_one_task_steps_bit_identically_to_two_vmaps_over_tasks_and_envs(spec, envs_only):
    """A task alone must give the bits it gives beside others of its env id (vmap over tasks and envs): 200 steps
    of random play, every observation bit for bit. Integer dynamics (MinAtar) take the one-vmap path; float ones
    (CartPole: with its parameters unbatched under one vmap it drifts within a few steps) keep both levels."""
    ts = tasks.make_taskset([spec])
    group = ts.groups[0]
    assert group.envs_only == envs_only
    _, states = ts.reset(jax.random.key(0), num_envs=8)

    def play(taskset_step):
        def one(state, key):
            k_act, k_step = jax.random.split(key)
            actions = jax.random.randint(k_act, (1, 8), 0, ts.tasks[0].num_actions)
            if taskset_step:
                obs, (state,), *_ = ts.step(k_step, (state,), actions)
            else:
                keys = jax.random.split(k_step, (1, 8))
                obs, state, *_ = jax.vmap(jax.vmap(group.env.step, in_axes=(0, 0, 0, None)))(
                    keys, state, actions, group.params)
            return state, obs.astype(np.float32)

        return jax.jit(lambda s: jax.lax.scan(one, s, jax.random.split(jax.random.key(1), 200))[1])(states[0])

    ours, reference = np.asarray(play(True)), np.asarray(play(False))
    assert np.abs(ours).max() > 0.1 and not np.all(ours == ours[0])  # the envs move
    np.testing.assert_array_equal(ours, reference)


def test_taskset_errors():
    with pytest.raises(ValueError, match="distinct; repeated: CartPole-v1"):
        tasks.make_taskset(["CartPole-v1", "CartPole-v1"])
    with pytest.raises(ValueError, match="at least one task"):
        tasks.make_taskset([])
    with pytest.raises(TypeError, match="not one string"):
        tasks.make_taskset("CartPole-v1")


def test_observations_of_different_ranks_are_flattened_per_task():
    """Catch-bsuite's (10, 5) grid with CartPole's (4,): both flattened, padded to 50; the grid keeps its row-major
    order and CartPole its 4 values, in reset and step alike; same-rank sets are not flattened."""
    ts = tasks.make_taskset(["Catch-bsuite", "CartPole-v1"])
    assert ts.flatten_obs and ts.obs_shape == (50,)
    assert not tasks.make_taskset(["CartPole-v1", "Acrobot-v1"]).flatten_obs
    obs, states = ts.reset(jax.random.key(0), num_envs=3)
    assert obs.shape == (2, 3, 50)
    catch, cartpole = ts.tasks
    keys = jax.random.split(jax.random.key(0), (2, 3))
    for n in range(3):
        grid, _ = catch.env.reset(keys[0, n], catch.params)
        np.testing.assert_array_equal(obs[0, n], np.asarray(grid).reshape(-1))
        pole, _ = cartpole.env.reset(keys[1, n], cartpole.params)
        np.testing.assert_allclose(obs[1, n, :4], pole, rtol=1e-6)
        assert np.all(np.asarray(obs[1, n, 4:]) == 0)
    obs2, *_, final_obs = ts.step(jax.random.key(1), states, jnp.zeros((2, 3), jnp.int32))
    assert obs2.shape == final_obs.shape == (2, 3, 50)


def test_image_obs_keep_their_shape():
    ts = tasks.make_taskset(["Breakout-MinAtar", "SpaceInvaders-MinAtar"])
    assert ts.obs_shape == (10, 10, 6) and ts.obs_dtype == np.bool_  # gymnax's float32 0/1 grids, kept as bool
    obs, _ = ts.reset(jax.random.key(0), num_envs=1)
    assert obs.shape == (2, 1, 10, 10, 6) and jnp.all(obs[0, ..., 4:] == 0)
