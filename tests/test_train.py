import csv
import itertools
import json
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl.config import ConfigError, DQNConfig
from mtrl.tasks import suite
from mtrl.trainer import CheckpointOptions, Trainer, pack_learner_metrics, train, unpack_learner_metrics, window_sizes


def _run(cfg, seeds, steps_chunks=2):
    trainer = Trainer.create(["CartPole-v1", "Acrobot-v1"], cfg)
    state = trainer.init(seeds)
    chunk = trainer.make_train_chunk()
    for _ in range(steps_chunks):
        state, _ = chunk(state)
    return jax.device_get(state)


def test_same_seed_is_bit_identical(tiny_config):
    a = _run(tiny_config, [0, 1])
    b = _run(tiny_config, [0, 1])
    chex.assert_trees_all_equal(a.runs, b.runs)
    assert int(a.num_updates) > 0


def test_lean_learner_diagnostics_change_only_the_metrics(tiny_config):
    """learner_diagnostics=False (PureJaxRL's logging: the loss only) trains bit-identically; td_abs, q_taken and
    grad_norm are NaN (not measured) and the loss is unchanged."""
    import dataclasses

    full = Trainer.create(["CartPole-v1", "Acrobot-v1"], tiny_config)
    lean = Trainer.create(["CartPole-v1", "Acrobot-v1"], dataclasses.replace(tiny_config, learner_diagnostics=False))
    states, metrics = {}, {}
    for name, trainer in (("full", full), ("lean", lean)):
        state, chunk = trainer.init([0, 1]), trainer.make_train_chunk(log_iterations=1)
        chunks = []
        for _ in range(2):
            state, m = chunk(state)
            chunks.append(m)
        states[name] = jax.device_get(state.runs)
        metrics[name] = jax.tree.map(lambda *x: np.concatenate(x), *chunks)  # [2 chunks x windows, ...]
    chex.assert_trees_all_equal(states["lean"], states["full"])
    learned = metrics["full"]["updates"] > 0
    assert learned.any() and not learned.all()  # learning starts after 16 env steps: 4 iterations of 4 envs
    np.testing.assert_array_equal(metrics["lean"]["loss"], metrics["full"]["loss"])
    for key in ("td_abs", "q_taken", "grad_norm"):  # NaN in every window, with updates or not
        assert np.isnan(metrics["lean"][key]).all() and np.isfinite(metrics["full"][key]).all()


def test_start_compiles_from_shapes_and_matches_the_plain_path(tiny_config):
    trainer = Trainer.create(["CartPole-v1", "Acrobot-v1"], tiny_config)
    state, chunk, evaluate = trainer.start([0, 1])
    chex.assert_trees_all_equal(jax.device_get(state), jax.device_get(trainer.init([0, 1])))
    for _ in range(2):
        state, _ = chunk(state)
    chex.assert_trees_all_equal(jax.device_get(state), _run(tiny_config, [0, 1]))
    assert evaluate(state).shape == (2, 2, tiny_config.eval_episodes)


def test_start_recompiles_when_the_built_state_has_other_shapes(tiny_config):
    trainer = Trainer.create(["CartPole-v1"], tiny_config)
    # shapes are taken for one seed; the state built has two, so the programs must be compiled for it
    state, chunk, evaluate = trainer.start([0], build_state=lambda: trainer.init([0, 1]))
    state, _ = chunk(state)
    assert state.runs.replay.size.shape == (2,) and evaluate(state).shape[0] == 2


def test_seeds_differ_in_init_exploration_and_replay(tiny_config):
    trainer = Trainer.create(["CartPole-v1"], tiny_config)
    init = jax.device_get(trainer.init([0, 1]).runs)
    k0 = init.train.params["torso"]["Dense_0"]["kernel"]
    assert not np.allclose(k0[0], k0[1])
    state = _run(tiny_config, [0, 1])
    assert not np.array_equal(state.runs.replay.data.action[0], state.runs.replay.data.action[1])
    assert not np.allclose(state.runs.replay.data.obs[0], state.runs.replay.data.obs[1])


def test_counters_and_updates(tiny_config):
    state = _run(tiny_config, [0])
    iterations = 2 * tiny_config.chunk_iterations
    assert int(state.iteration) == iterations
    first_learning_iteration = tiny_config.learning_starts // tiny_config.num_envs - 1
    assert int(state.num_updates) == iterations - first_learning_iteration
    assert int(state.runs.replay.size[0]) == min(iterations * tiny_config.num_envs, tiny_config.buffer_size)


def test_run_directory_outputs(tmp_path, tiny_config):
    run_dir = tmp_path / "run"
    result = train(["CartPole-v1", "MountainCar-v0"], tiny_config, seeds=[3, 4], run_dir=str(run_dir),
                   progress=False)
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["tasks"] == ["CartPole-v1", "MountainCar-v0"] and cfg["seeds"] == [3, 4]
    assert cfg["config"]["total_steps"] == tiny_config.total_steps
    assert cfg["versions"]["jax"] == jax.__version__ and cfg["device"]["backend"] == jax.default_backend()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == tiny_config.num_chunks
    assert set(json.loads(lines[-1])["tasks"]) == {"CartPole-v1", "MountainCar-v0"}
    rows = list(csv.DictReader((run_dir / "eval.csv").open()))
    assert len(rows) == (tiny_config.num_chunks + 1) * 2 * 2
    assert rows[0].keys() == {"step", "task", "seed", "return"}
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("CartPole-v1", "MountainCar-v0"):
        final = summary["tasks"][name]["final_return"]
        assert set(final) == {"mean", "iqm", "ci_low", "ci_high", "iqm_ci_low", "iqm_ci_high", "per_seed"}
        assert len(final["per_seed"]) == 2
        assert final["ci_low"] <= final["mean"] <= final["ci_high"]
    assert summary["env_steps_per_task"] == tiny_config.iterations * tiny_config.num_envs
    for key in ("wall_s", "compile_s", "env_steps_per_s"):
        assert summary[key] > 0
    assert "| CartPole-v1 |" in (run_dir / "summary.md").read_text()
    assert (run_dir / "curves.png").stat().st_size > 10_000
    last = [r for r in rows if int(r["step"]) == result.eval_steps[-1]]
    for r in last:
        s, t = [3, 4].index(int(r["seed"])), ["CartPole-v1", "MountainCar-v0"].index(r["task"])
        assert float(r["return"]) == pytest.approx(result.eval_returns[-1, s, t], rel=1e-5)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_envs", 0, "num_envs must be a positive integer, got 0"),
        ("tau", 1.5, "tau must be in \\(0, 1\\], got 1.5"),
        ("lr", -1.0, "lr must be > 0"),
        ("max_grad_norm", 0.0, r"max_grad_norm must be finite and > 0, or None \(no clipping\), got 0.0"),
        ("max_grad_norm", float("inf"), r"max_grad_norm must be finite and > 0, or None \(no clipping\), got inf"),
        ("loss", "mse", "loss must be 'huber' or 'l2'"),
        ("torso", (), "torso must be a tuple of one or more positive integer layer sizes"),
        ("torso", 64, "torso must be a tuple of one or more positive integer layer sizes, got 64"),
        ("torso", (64.5,), "torso must be a tuple of one or more positive integer layer sizes"),
        ("adapter_size", 2.5, "adapter_size must be an integer >= 0, got 2.5"),
        ("double_q", "False", "double_q must be True or False, got 'False'"),
        ("buffer_size", 2, "buffer_size must be >= num_envs"),
        ("eval_every", 20_005, r"eval_every must be a multiple of num_envs \(10: .*got 20005; use 20000 or 20010"),
        ("total_steps", 99_995, r"total_steps must be a multiple of num_envs \(10: .*got 99995; use 99990 or 100000"),
        ("eval_every", 7, r"eval_every must be a multiple of num_envs \(10: .*got 7; use 10$"),
        ("learning_starts", 5000.5, "learning_starts must be an integer >= 0, got 5000.5"),
        ("task_weights", (1.0,), "task_weights must have one weight per task \\(2\\), got 1"),
        ("task_weights", (1.0, float("nan")), r"task_weights must be finite and >= 0, got \(1.0, nan\)"),
        ("task_weights", (0.0, 0.0), "task_weights must not all be 0"),
        ("eval_epsilon", 1.5, r"eval_epsilon must be in \[0, 1\] \(0 = greedy evaluation\), got 1.5"),
        ("eval_epsilon", None, "eval_epsilon must be a number, got None"),
        ("gamma", "0.99", "gamma must be a number, got '0.99'"),
        ("max_grad_norm", True, "max_grad_norm must be a number, got True"),
    ],
)
def test_config_errors_before_compile(field, value, message):
    cfg = DQNConfig(**{field: value})
    with pytest.raises(ConfigError, match=message) as error:
        Trainer.create(["CartPole-v1", "Acrobot-v1"], cfg)
    assert error.value.field == field  # the command line names it by its flag


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seeds": [-1]}, r"seeds must be integers in \[0, 2\*\*32\) \(PRNG keys are uint32\), got \[-1\]"),
        ({"seeds": [0, 2**32]}, r"got \[4294967296\]"),
        ({"seeds": []}, "seeds must name at least one seed"),
        ({"seeds": [1.5]}, r"seeds must be integers, got \[1.5\]"),
        ({"seeds": [0, True]}, r"seeds must be integers, got \[0, True\]"),
        ({"seeds": (s for s in [0, 2.0])}, r"seeds must be integers, got \[0, 2.0\]"),
        ({"seeds": 3}, r"seeds must be a list of integers, got 3"),
        ({"seeds": [3, 4, 3]}, r"seeds must be distinct \(runs of one seed are identical, not independent\); "
                               r"repeated: \[3\]"),
        ({"stop_at_step": 0}, r"^stop_at_step must be an integer >= 1 \(env steps per task\), got 0$"),
        ({"checkpoints": CheckpointOptions(every=-1)}, r"^checkpoints.every must be an integer >= 0 .*got -1$"),
        ({"checkpoints": CheckpointOptions(every=True)}, r"^checkpoints.every must be an integer >= 0 .*got True$"),
        ({"checkpoints": CheckpointOptions(keep=0)}, r"^checkpoints.keep must be an integer >= 1, got 0$"),
    ],
)
def test_bad_seeds_and_train_options_are_refused_before_the_run_directory_is_made(tmp_path, tiny_config, kwargs,
                                                                                    message):
    with pytest.raises(ValueError, match=message) as error:
        train(["CartPole-v1"], tiny_config, run_dir=str(tmp_path / "run"), progress=False, **kwargs)
    assert not (tmp_path / "run").exists()
    if "seeds" not in kwargs:  # a setting's error names it first (the command line shows it as its flag)
        assert isinstance(error.value, ConfigError) and error.value.field == message.split()[0].lstrip("^")


def test_sweeps_and_studies_refuse_bad_seeds_before_writing_anything(tmp_path, tiny_config):
    from mtrl.study import transfer_study
    from mtrl.sweeps import sweep

    with pytest.raises(ValueError, match=r"seeds must be integers in \[0, 2\*\*32\) .*got \[-1\]$"):
        sweep(["CartPole-v1"], tiny_config, {"lr": [1e-3, 2e-3]}, seeds=[-1], run_dir=str(tmp_path / "sweep"),
              progress=False)
    with pytest.raises(ValueError, match=r"got \[-1\]$"):
        transfer_study(str(tmp_path / "no_source"), ["CartPole-v1"], config=tiny_config, seeds=[-1],
                       run_dir=str(tmp_path / "study"), progress=False)
    with pytest.raises(ValueError, match=r"seeds must be distinct .*repeated: \[0\]"):
        sweep(["CartPole-v1"], tiny_config, {"lr": [1e-3, 2e-3]}, seeds=[0, 0], run_dir=str(tmp_path / "sweep"),
              progress=False)
    with pytest.raises(ValueError, match=r"seeds must be distinct .*repeated: \[1\]"):
        transfer_study(str(tmp_path / "no_source"), ["CartPole-v1"], config=tiny_config, seeds=[1, 1],
                       run_dir=str(tmp_path / "study"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_batch_larger_than_the_buffer_is_warned_about():
    with pytest.warns(UserWarning, match=r"batch_size \(128\) is larger than buffer_size \(50\): every batch"):
        DQNConfig(num_envs=10, buffer_size=50, batch_size=128).validate(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DQNConfig(num_envs=10, buffer_size=50, batch_size=50).validate(1)


def test_a_run_without_any_update_is_warned_about_and_the_first_update_and_counts_are_where_learns_says():
    for starts, every in itertools.product((0, 1, 9, 10, 11, 250, 251, 5000), (1, 3, 7)):
        cfg = DQNConfig(total_steps=300, num_envs=10, learning_starts=starts, update_every=every)
        learning = [i for i in range(cfg.iterations) if cfg.learns(i)]
        assert (cfg.first_update_iteration >= cfg.iterations) == (not learning), (starts, every)
        if learning:
            assert cfg.first_update_iteration == learning[0], (starts, every)
        assert cfg.num_updates == len(learning), (starts, every)
        for n in range(cfg.iterations + 2):  # the closed-form count against a visit of every iteration
            assert cfg.updates_in(n) == sum(bool(cfg.learns(i)) for i in range(n)), (starts, every, n)
    with pytest.warns(UserWarning, match=r"learning_starts \(5,000\) leaves no gradient update in total_steps \(300\)"):
        DQNConfig(total_steps=300, num_envs=10).validate()
    with pytest.warns(UserWarning, match=r"learning_starts \(5,000\) leaves 1 gradient update\(s\) in total_steps "
                                         r"\(5,000\): the first 90% or more of the run only fills the replay"):
        DQNConfig(total_steps=5000, num_envs=10).validate()
    with warnings.catch_warnings():  # 5,000 of 5,600 env steps before the first update: 89%, enough updates
        warnings.simplefilter("error")
        DQNConfig(total_steps=5600, num_envs=10).validate()


@pytest.mark.slow
def test_cartpole_lengths_learns_above_random():
    """Three seeds, 40k env steps per task: every seed's mean greedy return over the four lengths rises well above
    an untrained policy's (10 to 60; random play averages about 22). Measured on seeds 0-2: 135, 235, 262."""
    cfg = DQNConfig(total_steps=40_000, eval_every=20_000, eval_episodes=5)
    result = train(list(suite("cartpole-lengths")), cfg, seeds=[0, 1, 2], progress=False)
    before, after = result.eval_returns[0].mean(-1), result.eval_returns[-1].mean(-1)  # [S]
    assert np.all(after > 90) and np.all(after > 3 * before), (before, after)
    assert after.mean() > 150, after


def test_chunk_metrics_reduce_the_per_iteration_metrics_per_logging_window(tiny_config):
    """A chunk of 31 iterations logged every 10 (31 is prime: no window divides it): windows of 10, 10, 10 and 1
    iterations, each equal to a plain scan of `Trainer.iteration` reduced afterwards (episode sums over the window,
    losses, |TD|, Q and gradient norms averaged over its updates), with ε and the learning rate at the window's end;
    the state is the same as with one window."""
    trainer = Trainer.create(["CartPole-v1", "Acrobot-v1"], tiny_config)
    k = 31
    _, per_iter = jax.jit(lambda s: jax.lax.scan(trainer.iteration, s, None, length=k))(trainer.init([0, 1]))
    end_state, metrics = trainer.make_train_chunk(k, log_iterations=10)(trainer.init([0, 1]))
    one_window, _ = trainer.make_train_chunk(k)(trainer.init([0, 1]))
    chex.assert_trees_all_equal(jax.device_get(end_state), jax.device_get(one_window))
    per_iter = {**per_iter, **unpack_learner_metrics(per_iter["learner"], num_tasks=2)}
    learned = np.asarray(per_iter["learned"])
    assert 0 < learned.sum() < k  # the chunk spans learning_starts: some iterations learn, some do not
    bounds = [0, 10, 20, 30, 31]
    assert np.asarray(metrics["updates"]).shape == (4,) and np.asarray(metrics["loss"]).shape == (4, 2, 2)
    updates_so_far = 0
    for w, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        in_window = learned[lo:hi]
        assert int(metrics["updates"][w]) == in_window.sum()
        np.testing.assert_array_equal(metrics["episodes"][w], np.asarray(per_iter["episodes"])[lo:hi].sum(0))
        np.testing.assert_allclose(metrics["return_sum"][w], np.asarray(per_iter["return_sum"])[lo:hi].sum(0),
                                   rtol=1e-6)
        for name in ("loss", "td_abs", "q_taken", "grad_norm"):
            values = np.asarray(per_iter[name])[lo:hi][in_window]
            expected = values.mean(0) if len(values) else np.zeros_like(np.asarray(metrics[name][w]))
            np.testing.assert_allclose(metrics[name][w], expected, rtol=1e-5, err_msg=f"{name} window {w}")
        updates_so_far += in_window.sum()
        env_steps = hi * tiny_config.num_envs
        eps = 1.0 - (1.0 - 0.05) * min(1.0, env_steps / (0.3 * tiny_config.total_steps))
        np.testing.assert_allclose(metrics["epsilon"][w], np.full((2, 2), eps), rtol=1e-6)
        lr = tiny_config.lr * (1.0 - updates_so_far / tiny_config.num_updates)  # lr_end_fraction 0: linear to 0
        np.testing.assert_allclose(metrics["learning_rate"][w], [lr, lr], rtol=1e-5)
    assert np.all(np.asarray(metrics["q_taken"])[np.asarray(metrics["updates"]) > 0] != 0)


def test_logging_windows_divide_the_chunk_when_a_divisor_is_near_the_request():
    """Equal windows share one compiled body: the window moves to the divisor of the chunk nearest the request
    (within a factor of 2.5), else full windows and a shorter last one; the windows always cover the chunk."""
    assert window_sizes(32, 10) == [8] * 4
    assert window_sizes(300, 62) == [60] * 5
    assert window_sizes(3125, 62) == [125] * 25  # 125 is nearer 62 in ratio than 25
    assert window_sizes(31, 10) == [10, 10, 10, 1]  # prime: no divisor near 10
    assert window_sizes(997, 62) == [62] * 16 + [5]
    assert window_sizes(20, None) == [20] and window_sizes(20, 100) == [20]
    for k in (1, 7, 64, 1000, 3125):
        for w in (1, 3, 62, 5000):
            assert sum(window_sizes(k, w)) == k and len(set(window_sizes(k, w)[:-1])) <= 1


def test_a_run_trains_exactly_total_steps_with_a_shorter_last_chunk(tmp_path, tiny_config):
    """total_steps 200 with chunks of 128 env steps: chunks of 32 and 18 iterations, evaluations at 0, 128 and 200;
    the schedules use the 200 steps really trained, and a run stopped after the first chunk resumes to the same
    state."""
    import dataclasses

    cfg = dataclasses.replace(tiny_config, total_steps=200)
    assert cfg.chunk_sizes() == [32, 18] and cfg.iterations == 50
    result = train(["CartPole-v1"], cfg, seeds=[0], progress=False, run_dir=str(tmp_path / "a"))
    np.testing.assert_array_equal(result.eval_steps, [0, 128, 200])
    assert int(result.state.iteration) == 50 and int(result.state.num_updates) == cfg.num_updates
    assert result.summary["env_steps_per_task"] == 200
    assert json.loads((tmp_path / "a" / "config.json").read_text())["config"]["total_steps"] == 200
    stopped = train(["CartPole-v1"], cfg, seeds=[0], progress=False, run_dir=str(tmp_path / "b"), stop_at_step=128)
    assert stopped.stopped_at == 128
    resumed = train(["CartPole-v1"], cfg, seeds=[0], progress=False, run_dir=str(tmp_path / "b"), resume=True)
    chex.assert_trees_all_equal(resumed.state.runs, result.state.runs)
    np.testing.assert_array_equal(resumed.eval_returns, result.eval_returns)


def test_total_steps_must_be_a_multiple_of_num_envs(tiny_config):
    import dataclasses

    with pytest.raises(ValueError, match=r"total_steps must be a multiple of num_envs \(4.*got 202; use 200 or 204"):
        dataclasses.replace(tiny_config, total_steps=202).validate()


def test_learner_metrics_pack_into_one_vector_and_unpack_unchanged():
    """`Agent.update`'s metrics travel out of the iteration's conditional as one ``[3T + 1]`` vector (one kernel
    on a GPU instead of four); packing and unpacking move values and change none."""
    metrics = {"loss": jnp.array([1.0, 2.0]), "td_abs": jnp.array([3.0, 4.0]), "q_taken": jnp.array([5.0, 6.0]),
               "grad_norm": jnp.array(7.0)}
    packed = pack_learner_metrics(metrics)
    np.testing.assert_array_equal(packed, [1, 2, 3, 4, 5, 6, 7])
    chex.assert_trees_all_equal(unpack_learner_metrics(jnp.stack([packed, packed + 1]), num_tasks=2),
                                jax.tree.map(lambda x: jnp.stack([x, x + 1]), metrics))
