"""Trained policies out of run directories: `load_policy` and `evaluate_run` (also `python -m mtrl evaluate`)."""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from mtrl.config import DQNConfig
from mtrl.policy import evaluate_run, load_policy
from mtrl.trainer import train
from mtrl.transfer import TransferConfig, train_transfer

CFG = DQNConfig(total_steps=128, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16,
                target_update_period=4, torso=(16,), eval_every=64, eval_episodes=3, adapter_size=8)
TASKS = ["CartPole-v1", "Acrobot-v1"]  # 4 vs 6 observation entries, 2 vs 3 actions


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    plain = train(TASKS, CFG, seeds=[3, 4], run_dir=str(root / "plain"), progress=False)
    target = train_transfer(str(root / "plain"), ["CartPole-v1:length=1.5"], TransferConfig(mode="l2sp"), CFG,
                            seeds=[0, 1], run_dir=str(root / "l2sp"), progress=False)
    return root, plain, target


def test_evaluate_run_reproduces_the_runs_last_evaluation(runs):
    root, plain, target = runs
    for name, result in (("plain", plain), ("l2sp", target)):
        evaluation = evaluate_run(str(root / name))
        assert evaluation["step"] == 128 and evaluation["episodes"] == 3
        per_task = np.array([s["per_seed"] for s in evaluation["tasks"].values()]).T  # [S, T]
        np.testing.assert_allclose(per_task, result.eval_returns[-1], rtol=1e-6)
    saved = json.loads((root / "l2sp" / "evaluation.json").read_text())
    assert list(saved["tasks"]) == ["CartPole-v1:length=1.5"]
    assert "not meaningful" in (root / "l2sp" / "evaluation.md").read_text()
    only = evaluate_run(str(root / "plain"), episodes=2, tasks=["Acrobot-v1"], write=False)
    assert list(only["tasks"]) == ["Acrobot-v1"] and only["episodes"] == 2
    other_spelling = evaluate_run(str(root / "l2sp"), tasks=["CartPole-v1:length=1.50"], write=False)
    assert list(other_spelling["tasks"]) == ["CartPole-v1:length=1.5"]  # named as the run names it
    assert other_spelling["tasks"] == evaluate_run(str(root / "l2sp"), write=False)["tasks"]
    with pytest.raises(ValueError, match="not in this run; its tasks: CartPole-v1, Acrobot-v1"):
        evaluate_run(str(root / "plain"), tasks=["MountainCar-v0"], write=False)
    with pytest.raises(ValueError, match="its tasks: CartPole-v1, Acrobot-v1; 'Acrobot-v1:lenght=2' does not parse: "
                                         "unknown field 'lenght'"):
        evaluate_run(str(root / "plain"), tasks=["Acrobot-v1:lenght=2"], write=False)


def test_evaluate_run_compiles_as_training_evaluates_so_chaotic_dynamics_reproduce(tmp_path):
    """Acrobot's integrator amplifies float rounding: an evaluation compiled at another XLA optimisation level than
    the run's own (O0 for an MLP) played other episodes (here seed 1's Acrobot return -402.5 instead of the logged
    -357 on an AVX-512 host); compiled with `Trainer.evaluation_options` it reproduces the log exactly."""
    cfg = DQNConfig(total_steps=256, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16, torso=(16,),
                    eval_every=128, eval_episodes=2)
    result = train(["Acrobot-v1", "CartPole-v1"], cfg, seeds=[0, 1], run_dir=str(tmp_path), progress=False)
    evaluation = evaluate_run(str(tmp_path), write=False)
    per_task = np.array([s["per_seed"] for s in evaluation["tasks"].values()]).T  # [S, T]
    np.testing.assert_array_equal(per_task, result.eval_returns[-1])


def test_load_policy_gives_q_values_over_each_tasks_own_actions(runs):
    root, plain, _ = runs
    policy = load_policy(str(root / "plain"))
    assert policy.tasks == TASKS and policy.seeds == [3, 4] and policy.seed == 3 and policy.step == 128
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    q = policy.q_values("CartPole-v1", obs)
    assert q.shape == (5, 2)  # Acrobot's third action is not CartPole's
    assert policy.q_values(1, np.zeros((7, 6), np.float32)).shape == (7, 3)
    np.testing.assert_array_equal(policy.act("CartPole-v1", obs), q.argmax(-1))
    np.testing.assert_array_equal(policy.q_values("CartPole-v1:length=0.50", obs), q)  # the same task
    # the Q-values are the trained network's: the run's own agent on its own params for seed 4
    other = policy.with_seed(4)
    assert not np.allclose(other.q_values("CartPole-v1", obs), q)
    random = policy.act("Acrobot-v1", np.zeros((200, 6), np.float32), epsilon=1.0, key=jax.random.key(0))
    assert set(np.unique(random)) == {0, 1, 2}
    with pytest.raises(ValueError, match=r"must end in its observation shape \(4,\)"):
        policy.q_values("CartPole-v1", np.zeros((3, 6)))
    with pytest.raises(ValueError, match="not in this run"):
        policy.q_values("Pong-misc", obs)
    with pytest.raises(ValueError, match="needs a key"):
        policy.act("CartPole-v1", obs, epsilon=0.5)


def test_a_train_result_gives_the_policy_its_last_checkpoint_loads(runs):
    root, plain, target = runs
    obs = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    for name, result in (("plain", plain), ("l2sp", target)):
        for seed in result.seeds:
            in_memory, loaded = result.policy(seed), load_policy(str(root / name), seed=seed)
            assert (in_memory.tasks, in_memory.seeds, in_memory.step) == (loaded.tasks, loaded.seeds, 128)
            np.testing.assert_array_equal(in_memory.q_values(0, obs), loaded.q_values(0, obs))
    assert plain.policy().seed == 3
    complete = train(TASKS, CFG, seeds=[3, 4], run_dir=str(root / "plain"), progress=False, resume=True)
    with pytest.raises(ValueError, match=r"already complete and restored nothing; load it with mtrl.load_policy"):
        complete.policy()
    with pytest.raises(ValueError, match="a sweep's program"):
        dataclasses.replace(plain, _grouped=True).policy()


def test_evaluation_epsilon_plays_epsilon_greedy_episodes_without_changing_training(runs, tmp_path):
    """The evaluation's ε does not touch training (its keys are the evaluation's own): the ε run's parameters are
    the greedy run's, so its checkpoint evaluated greedily gives the greedy run's logged returns exactly, and
    evaluated at its own ε its logged ones."""
    root, plain, _ = runs
    noisy = train(TASKS, dataclasses.replace(CFG, eval_epsilon=0.5), seeds=[3, 4], run_dir=str(tmp_path / "noisy"),
                  progress=False)
    assert not np.array_equal(noisy.eval_returns[-1], plain.eval_returns[-1])
    greedy = evaluate_run(str(tmp_path / "noisy"), epsilon=0.0, write=False)
    per_task = np.array([s["per_seed"] for s in greedy["tasks"].values()]).T
    np.testing.assert_allclose(per_task, plain.eval_returns[-1], rtol=1e-6)
    own = evaluate_run(str(tmp_path / "noisy"))
    assert own["epsilon"] == 0.5 and greedy["epsilon"] == 0.0
    np.testing.assert_allclose(np.array([s["per_seed"] for s in own["tasks"].values()]).T, noisy.eval_returns[-1],
                               rtol=1e-6)
    assert own["markdown"].startswith("Return (evaluation ε 0.5) at 128 env steps per task")
    summary = json.loads((tmp_path / "noisy" / "summary.json").read_text())
    assert summary["eval_epsilon"] == 0.5 and "eval_epsilon" not in plain.summary
    assert (tmp_path / "noisy" / "summary.md").read_text().startswith("Final return (evaluation ε 0.5) over 2 seeds")
    from mtrl.plots import _eval_epsilon

    assert _eval_epsilon(str(tmp_path / "noisy")) == 0.5 and _eval_epsilon(str(root / "plain")) == 0.0
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\] \(0 = greedy\), got 2"):
        evaluate_run(str(tmp_path / "noisy"), epsilon=2, write=False)
    with pytest.raises(ValueError, match="epsilon must be a number in .*, got '0.1'"):
        evaluate_run(str(tmp_path / "noisy"), epsilon="0.1", write=False)


def test_a_policy_plays_episodes_of_its_tasks_and_of_tasks_it_never_trained_on(runs, tmp_path):
    root, plain, _ = runs
    # one task: the played task set is the run's own, so with the run's evaluation key the greedy episodes are the
    # run's logged evaluation, episode for episode
    # (trained with PopArt: greedy play argmaxes the network's normalised outputs, as training does)
    alone = train(["CartPole-v1"], dataclasses.replace(CFG, loss_aggregation="popart"), seeds=[5, 6],
                  run_dir=str(tmp_path / "alone"), progress=False)
    for i, seed in enumerate(alone.seeds):
        key = jax.random.fold_in(alone.state.runs.eval_key[i], alone.state.iteration)
        returns = alone.policy(seed).episode_returns("CartPole-v1", episodes=CFG.eval_episodes, key=key)
        assert returns.shape == (CFG.eval_episodes,)
        np.testing.assert_allclose(returns.mean(), alone.eval_returns[-1, i, 0], rtol=1e-6)
    loaded = load_policy(str(tmp_path / "alone"), seed=6)  # PopArt statistics read back with the params
    obs = np.random.default_rng(2).normal(size=(4, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.q_values(0, obs), alone.policy(6).q_values(0, obs))
    normalised = loaded._head_q(loaded._seed_params()[0], None, 0, obs)
    assert not np.allclose(loaded.q_values(0, obs), normalised)  # statistics not identity: q_values unnormalises
    assert len(alone.policy(5)._programs) == 0
    first = alone.policy(5)
    first.episode_returns("CartPole-v1", episodes=3)
    programs = dict(first._programs)
    first.with_seed(6).episode_returns("CartPole-v1", episodes=3)
    assert len(programs) == 1 and first._programs == programs  # the same compiled loop for every seed
    policy = plain.policy()
    own = policy.episode_returns("CartPole-v1", episodes=5)
    assert own.shape == (5,) and np.all((own >= 8) & (own <= 500))
    np.testing.assert_array_equal(policy.episode_returns("CartPole-v1:length=0.50", episodes=5), own)  # same task
    random = policy.episode_returns("CartPole-v1", episodes=300, epsilon=1.0, key=jax.random.key(1))
    assert 18 < random.mean() < 27  # a uniformly random policy's ≈ 22
    assert policy.episode_returns("CartPole-v1:length=2.5", episodes=3, head="CartPole-v1").shape == (3,)
    with pytest.raises(ValueError, match=r"'CartPole-v1:length=2.5' is not one of this run's tasks .*head=\.\.\."):
        policy.episode_returns("CartPole-v1:length=2.5")
    with pytest.raises(ValueError, match=r"'Acrobot-v1' has float32 observations \(6,\) and 3 actions, but head "
                                         r"'CartPole-v1' was trained on float32 \(4,\) and 2"):
        policy.episode_returns("Acrobot-v1", head="CartPole-v1")
    with pytest.raises(ValueError, match="episodes must be a positive integer, got 0"):
        policy.episode_returns("CartPole-v1", episodes=0)
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\]"):
        policy.episode_returns("CartPole-v1", epsilon=1.5)


def test_a_minatar_paper_run_plays_its_classic_tasks_too():
    """The paper's protocol changes MinAtar games only: a run mixing one with CartPole plays CartPole as gymnax's."""
    from mtrl.policy import policy_from_state
    from mtrl.trainer import Trainer

    trainer = Trainer.create(["Breakout-MinAtar", "CartPole-v1"], dataclasses.replace(CFG, protocol="minatar-paper"))
    policy = policy_from_state(trainer, [0], trainer.init([0]))
    assert policy.episode_returns("CartPole-v1", episodes=2).shape == (2,)
    assert policy.episode_returns("Breakout-MinAtar", episodes=2).shape == (2,)


def test_a_recorded_episode_is_the_first_of_episode_returns_and_renders_from_the_command_line(runs, tmp_path,
                                                                                             capsys, monkeypatch):
    from PIL import Image

    from mtrl.cli import main

    root, _, _ = runs
    policy = load_policy(str(root / "plain"), seed=4)
    for task, epsilon in (("Acrobot-v1", 0.0), ("CartPole-v1", 0.0), ("CartPole-v1", 0.5)):
        key = jax.random.key(7)
        episode = policy.record_episode(task, epsilon=epsilon, key=key)  # default length: the task's limit, 500
        assert episode.ended and episode.observations.shape == (len(episode.actions), 4 if task == "CartPole-v1" else 6)
        assert episode.episode_return == policy.episode_returns(task, episodes=1, epsilon=epsilon, key=key)[0]
        assert episode.rewards.shape == episode.actions.shape and episode.actions.max() < (2 if task[0] == "C" else 3)
    x, _, theta, _ = episode.final_observation  # CartPole ended before 500 steps: the pole fell or the cart left
    assert len(episode.actions) < 500 and (abs(theta) > 0.2094 or abs(x) > 2.4)
    assert abs(episode.observations[-1][2]) <= 0.2095 and abs(episode.observations[-1][0]) <= 2.4
    cut = policy.record_episode("CartPole-v1", epsilon=0.5, key=jax.random.key(7), max_steps=5)
    assert not cut.ended and len(cut.actions) == 5
    np.testing.assert_array_equal(cut.actions, episode.actions[:5])  # the same steps, cut
    np.testing.assert_array_equal(cut.observations, episode.observations[:5])
    np.testing.assert_array_equal(cut.final_observation, episode.observations[5])
    with pytest.raises(ValueError, match=r"max_steps must be a positive integer \(or None: the task's limit\), got 0"):
        policy.record_episode("Acrobot-v1", max_steps=0)

    main(["render", str(root / "plain"), "--tasks", "CartPole-v1", "--seed", "4", "--episode-seed", "7",
          "--epsilon", "0.5"])
    gif_path = root / "plain" / "episode_CartPole-v1_seed4_step128_eps0.5.gif"
    assert capsys.readouterr().out == (f"CartPole-v1, seed 4 at 128 env steps per task, ε 0.5: return "
                                       f"{episode.episode_return:g} in {len(episode.actions)} steps: {gif_path}\n")
    with Image.open(gif_path) as gif:
        assert gif.n_frames == len(episode.actions) + 1  # and the final observation
    main(["render", str(root / "plain"), "--tasks", "CartPole-v1:length=2.5", "--head", "CartPole-v1",
          "--max-steps", "3", "--out", str(tmp_path / "long_pole.gif")])
    assert "in 3 steps (cut: --max-steps)" in capsys.readouterr().out
    with Image.open(tmp_path / "long_pole.gif") as gif:
        assert gif.n_frames == 4
    main(["render", str(root / "plain"), "--max-steps", "4", "--out", str(tmp_path)])  # every task, into a directory
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()] == TASKS
    assert (tmp_path / "episode_Acrobot-v1_seed3_step128.gif").exists()
    main(["render", str(root / "plain"), "--max-steps", "2", "--tasks", "Acrobot-v1", "--out", str(tmp_path / "new")])
    assert os.listdir(tmp_path / "new") == ["episode_Acrobot-v1_seed3_step128.gif"]  # no extension: a directory, made
    capsys.readouterr()
    main(["render", str(root / "plain"), "--max-steps", "6", "--tile", "--out", str(tmp_path / "both.gif")])
    assert capsys.readouterr().out.count(str(tmp_path / "both.gif")) == 2
    with Image.open(tmp_path / "both.gif") as gif:
        assert gif.n_frames == 7 and gif.width > 2 * 360
    for args, message in ((["--tasks", "MemoryChain-bsuite", "--head", "CartPole-v1"],
                           "cannot draw MemoryChain-bsuite"),
                          (["--max-steps", "0"], "--max-steps must be >= 1, got 0"),
                          (["--fps", "60"], "--fps must be in (0, 50]"),
                          (["--out", str(tmp_path / "x.gif")], "with several tasks, a directory (or --tile"),
                          (["--tasks", "Acrobot-v1", "--out", str(tmp_path / "x.png")], "x.png: a .gif file, or a dir"),
                          (["--tasks", "Acrobot-v1", "--out", str(tmp_path / "no" / "x.gif")],
                           f"the directory {tmp_path / 'no'} does not exist"),
                          (["--tasks", "Acrobot-v1", "MountainCar-v0"],
                           "'MountainCar-v0' is not one of this run's tasks (CartPole-v1, Acrobot-v1): name the task "
                           "whose head acts in it (head=...; on the command line --head)"),
                          (["--seed", "9"], "seed 9 is not in this run")):
        with pytest.raises(SystemExit):
            main(["render", str(root / "plain"), *args])
        assert message in capsys.readouterr().err
    from mtrl.policy import Policy

    played = []
    monkeypatch.setattr(Policy, "record_episode", lambda self, task, *args: played.append(task))
    with pytest.raises(SystemExit):  # every task is checked before any is played
        main(["render", str(root / "plain"), "--tasks", "Acrobot-v1", "MountainCar-v0"])
    assert played == []


def test_evaluate_from_the_command_line(runs, capsys):
    from mtrl.cli import main

    root, _, _ = runs
    main(["evaluate", str(root / "plain"), "--episodes", "2"])
    out = capsys.readouterr().out
    assert "2 episodes per task and seed" in out and "| Acrobot-v1 |" in out
    greedy = (root / "plain" / "evaluation.json").read_text()
    out_dir = root / "evaluations" / "eps_0.25"  # created: the run's own evaluation.json stays the greedy one
    main(["evaluate", str(root / "plain"), "--episodes", "2", "--epsilon", "0.25", "--out", str(out_dir)])
    out = capsys.readouterr().out
    assert out.startswith(f"Return (evaluation ε 0.25) of the run in {root / 'plain'} at 128 env steps per task, "
                          "2 episodes")
    assert f"written: {out_dir / 'evaluation.json'}, evaluation.md" in out
    assert json.loads((out_dir / "evaluation.json").read_text())["epsilon"] == 0.25
    assert (root / "plain" / "evaluation.json").read_text() == greedy
    assert (out_dir / "evaluation.md").read_text().startswith("Return (evaluation ε 0.25) of the run in ")
    with pytest.raises(SystemExit):
        main(["evaluate", str(root / "plain"), "--epsilon", "-0.1"])
    assert "--epsilon must be in [0, 1] (0 = greedy), got -0.1" in capsys.readouterr().err


def test_reading_a_run_repeats_no_warning_about_its_settings(tmp_path):
    """A run whose settings drew a `ConfigWarning` when it trained loads, evaluates and plays without it again."""
    import warnings

    from mtrl.config import ConfigWarning

    cfg = DQNConfig(total_steps=32, num_envs=4, buffer_size=8, batch_size=16, learning_starts=8, torso=(8,),
                    eval_every=32, eval_episodes=1)
    with pytest.warns(ConfigWarning, match="larger than buffer_size"):
        train(["CartPole-v1"], cfg, seeds=[0], run_dir=str(tmp_path / "run"), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        assert load_policy(str(tmp_path / "run")).step == 32
        assert evaluate_run(str(tmp_path / "run"), episodes=1)["step"] == 32


def test_package_front_door():
    import mtrl

    assert mtrl.load_policy is load_policy and mtrl.DQNConfig is DQNConfig and mtrl.train_transfer is train_transfer
    from mtrl.render import save_gif

    assert mtrl.save_gif is save_gif
    import mtrl.trainer  # importing the module must not shadow the function `mtrl.train`

    assert mtrl.train is train and callable(mtrl.train)
    with pytest.raises(AttributeError):
        mtrl.not_a_thing  # noqa: B018


def test_a_task_set_mixing_observation_ranks_trains_and_its_policy_takes_each_tasks_own_shape(tmp_path):
    """Catch-bsuite (a 10x5 grid) with CartPole-v1 (4 values): flattened per task, trained in one program; the
    loaded policy takes each task's observations as its env emits them and reproduces the run's evaluation."""
    result = train(["Catch-bsuite", "CartPole-v1"], CFG, seeds=[0], run_dir=str(tmp_path / "run"), progress=False)
    policy = load_policy(str(tmp_path / "run"))
    assert policy.q_values("Catch-bsuite", np.zeros((7, 10, 5), np.float32)).shape == (7, 3)
    assert policy.q_values("CartPole-v1", np.zeros((7, 4), np.float32)).shape == (7, 2)
    evaluation = evaluate_run(str(tmp_path / "run"), write=False)
    per_task = np.array([s["per_seed"] for s in evaluation["tasks"].values()]).T
    np.testing.assert_allclose(per_task, result.eval_returns[-1], rtol=1e-6)
