"""Sweeps in one program (`mtrl.sweeps`): grid parsing and its errors, settings applied as a run alone would apply
them, a setting inside a sweep bit-identical to the same setting trained alone, and the sweep's files."""

import dataclasses
import json
import os

import chex
import numpy as np
import pytest

try:  # imported here, not inside a test: its logging setup closes handlers bound to a test's capture
    import submitit
except ImportError:  # the cluster extra is not installed: the launcher tests skip
    submitit = None

from mtrl.config import DQNConfig
from mtrl.plots import read_eval_csv
from mtrl.provenance import ProvenanceMismatchError
from mtrl.sweep_grid import (
    GridError,
    check_grid,
    grid_settings,
    parse_grid,
    per_task_overrides,
    setting_config,
    setting_label,
)
from mtrl.sweep_shards import collect
from mtrl.sweeps import sweep
from mtrl.trainer import train

TASKS = ["CartPole-v1", "Acrobot-v1"]


def test_grid_is_parsed_in_order_and_expands_to_the_product():
    grid = parse_grid(["lr=1e-4,3e-4", "gamma.1=0.9,0.99,0.995"])
    assert grid == {"lr": (1e-4, 3e-4), "gamma.1": (0.9, 0.99, 0.995)}
    settings = grid_settings(grid)
    assert len(settings) == 6 and settings[0] == {"lr": 1e-4, "gamma.1": 0.9} and settings[1]["gamma.1"] == 0.99
    assert setting_label(settings[5]) == "lr=0.0003,gamma.1=0.995"


@pytest.mark.parametrize("items, message", [
    (["lr"], "is not NAME=V1,V2"),
    (["lr=1e-4", "lr=3e-4"], "given twice"),
    (["lr=1e-4,fast"], "'fast' is not a number"),
    (["lr=1e-4,1e-4"], "repeats a value"),
])
def test_malformed_grid_items_are_refused_with_the_item(items, message):
    with pytest.raises(GridError, match=message):
        parse_grid(items)


def test_static_items_are_refused_under_their_own_flag_and_none_says_how_to_compare_it():
    with pytest.raises(GridError, match=r"^--static: max_grad_norm: 'None' is not a number; .*--max-grad-norm None"):
        parse_grid(["max_grad_norm=None,10"], "--static")
    with pytest.raises(GridError, match=r"^--grid: lr: 'None' is not a number$"):  # lr has no None to sweep
        parse_grid(["lr=None"])


@pytest.mark.parametrize("grid, message", [
    ({}, "the grid is empty"),
    ({"batch_size": (32, 64)}, "batch_size: a static setting .*--static batch_size=V1,V2"),
    ({"torso": (64,)}, "torso: a static setting"),
    ({"learning_rate": (1e-3,)}, "learning_rate: unknown setting; numeric settings: lr, gamma"),
    ({"gamma.2": (0.9,)}, r"task index must be 0\.\.1"),
    ({"gamma": (0.9,), "gamma.0": (0.8,)}, "swept for every task already"),
    ({"gamma": (1.5,)}, r"1.5 is outside \[0, 1\]"),
    ({"lr": (0.0,)}, r"0 is outside \(0, inf\)"),
    ({"task_weight.0": (-1.0,)}, "outside"),
    ({"popart_step_size": (1e-3,)}, "needs --loss-aggregation popart"),
    ({"eps_decay_fraction": (0.1,)}, "sweep it as eps_decay"),
    ({"task_weights": (0.5,)}, r"sweep it as task_weight.<t>"),
    ({"eps_decay_fraction.1": (0.1,)}, r"grid eps_decay_fraction.1: sweep it as eps_decay\.1$"),
    ({"lr.0": (1e-3,)}, r"grid lr.0: lr is one value for all tasks of a run; sweep it as lr. Per task: gamma.<t>"),
])
def test_grids_that_cannot_be_swept_in_one_program_are_refused_before_building(grid, message):
    with pytest.raises(GridError, match=message):
        check_grid(grid, DQNConfig(), num_tasks=2)


@pytest.mark.parametrize("name, mode, values, message", [
    ("l2sp_alpha", "l2sp", (0.0, 0.1), r"grid l2sp_alpha: values must be > 0, got \[0.0, 0.1\]"),
    ("transfer_factor", "joint", (-1.0,), "grid transfer_factor: values must be > 0"),
    ("l2sp_alpha", "joint", (0.1,), r"a setting of transfer mode l2sp; sweep it from a source run \(--source RUN"),
])
def test_transfer_settings_are_refused_outside_their_mode_or_range(name, mode, values, message):
    with pytest.raises(GridError, match=message):
        check_grid({name: values}, DQNConfig(), num_tasks=2, transfer_mode=mode)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"launcher": "pbs", "run_dir": "x"}, GridError, "launcher must be one of local, slurm, got 'pbs'"),
    ({"launcher": "local"}, GridError, "a launcher needs a run_dir: its jobs write their shards there"),
    ({"source": "runs/src"}, GridError, r"a transfer sweep needs both source \(the source run\) and transfer"),
    ({"max_settings_per_program": 0, "run_dir": "x"}, GridError, "max_settings_per_program must be >= 1, got 0"),
    ({"grid": {"lr": (1e-4, 1.0000001e-4)}}, GridError, r"two settings print the same label .*\['lr=0.0001'\]"),
    ({"run_dir": "occupied"}, ProvenanceMismatchError, "is not empty and holds no sweep; use another run_dir, or "
                                                       r"overwrite=True \(--overwrite\)"),
])
def test_sweeps_that_cannot_run_are_refused_before_training(tmp_path, tiny_config, kwargs, error, message):
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("not a sweep")
    kwargs = {"grid": {"lr": (1e-4, 3e-4)}, **kwargs}
    if "run_dir" in kwargs:
        kwargs["run_dir"] = str(tmp_path / kwargs["run_dir"])
    with pytest.raises(error, match=message):
        sweep(TASKS, tiny_config, seeds=[0], progress=False, **kwargs)
    assert not (tmp_path / "x").exists() and os.listdir(tmp_path / "occupied") == ["notes.txt"]


def test_a_launcher_without_submitit_says_which_extra_to_install(tmp_path, tiny_config, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` raises ImportError
    with pytest.raises(ImportError, match=r"submitit: pip install 'mtrl-jax\[cluster\]'"):
        sweep(TASKS, tiny_config, {"lr": (1e-4, 3e-4)}, run_dir=str(tmp_path / "s"), launcher="local")
    assert not (tmp_path / "s").exists()
    with pytest.raises(FileNotFoundError, match=r"holds no sweep \(sweep_plan.json is missing\)"):
        collect(str(tmp_path))


@pytest.mark.skipif(submitit is None, reason="needs the cluster extra (submitit)")
def test_a_slurm_sweep_off_the_cluster_says_so_before_writing_anything(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no srun
    with pytest.raises(ValueError, match="sbatch and srun are not on PATH: run the sweep from the cluster.s login"):
        sweep(TASKS, tiny_config, {"lr": (1e-4, 3e-4)}, run_dir=str(tmp_path / "s"), launcher="slurm")
    assert not (tmp_path / "s").exists()


def test_global_values_go_to_the_config_and_per_task_values_to_the_hyperparameters():
    config = DQNConfig(total_steps=1000, task_weights=(1.0, 0.5))
    setting = {"lr": 3e-4, "eps_decay": 0.2, "task_weight.1": 0.1, "gamma.0": 0.9, "eps_decay.1": 0.5}
    cfg = setting_config(config, setting, num_tasks=2)
    assert cfg.lr == 3e-4 and cfg.eps_decay_fraction == 0.2 and cfg.task_weights == (1.0, 0.1)
    assert per_task_overrides(setting, cfg.total_steps) == {"gammas": {0: 0.9}, "eps_decay_steps": {1: 500.0}}


def test_a_setting_inside_a_sweep_is_bit_identical_to_the_setting_trained_alone(tmp_path, tiny_config):
    """Two learning rates x two γ for the second task, two seeds: one program of 8 runs. The setting lr=1e-3,
    gamma.1=0.9 equals its own run (config lr=1e-3, the task spec's γ 0.9) on every evaluation of every seed
    (greedy returns, bit for bit); each setting's directory is a plain run; sweep.json names the best setting by
    the stated score."""
    grid = {"lr": (5e-4, 1e-3), "gamma.1": (0.99, 0.9)}
    results = sweep(TASKS, tiny_config, grid, seeds=[0, 1], run_dir=str(tmp_path / "sweep"), progress=False)
    alone = train(["CartPole-v1", "Acrobot-v1:gamma=0.9"], dataclasses.replace(tiny_config, lr=1e-3), seeds=[0, 1],
                  run_dir=str(tmp_path / "alone"), progress=False)
    label = "lr=0.001,gamma.1=0.9"
    row = next(r for r in results["settings"] if r["label"] == label)
    per_seed = np.array([row["final_return"][t]["per_seed"] for t in TASKS]).T  # [S, T]
    np.testing.assert_array_equal(per_seed, alone.eval_returns[-1].astype(np.float64))
    steps, sweep_curve, _ = read_eval_csv(str(tmp_path / "sweep" / label / "eval.csv"))
    np.testing.assert_array_equal(sweep_curve, read_eval_csv(str(tmp_path / "alone" / "eval.csv"))[1])
    assert _learning_record(tmp_path / "sweep" / label) == _learning_record(tmp_path / "alone")
    meta = json.loads((tmp_path / "sweep" / label / "config.json").read_text())
    assert meta["config"]["lr"] == 1e-3 and meta["seeds"] == [0, 1] and meta["sweep_setting"] == {"lr": 1e-3,
                                                                                                  "gamma.1": 0.9}
    program = json.loads((tmp_path / "sweep" / "shards" / "0" / "config.json").read_text())
    assert program["seeds"] == [0, 1] * 4 and program["groups"][label] == [6, 7]
    assert program["sweep"]["grid"] == {"lr": [5e-4, 1e-3], "gamma.1": [0.99, 0.9]}
    saved = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert len(saved["settings"]) == 4 and saved["best"] == max(
        saved["settings"], key=lambda r: r["normalised_score"]["iqm"])["label"]
    assert "**best**" in (tmp_path / "sweep" / "sweep.md").read_text()
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 5_000
    from mtrl.policy import evaluate_run, load_policy
    from mtrl.transfer import load_source

    # a setting's policy and transfer source are read from its shard's checkpoint (its runs of the program's run
    # axis): the same parameters as the setting trained alone, and its logged evaluation reproduced
    setting = str(tmp_path / "sweep" / label)
    chex.assert_trees_all_equal(load_policy(setting).params, load_policy(str(tmp_path / "alone")).params)
    assert load_policy(setting, seed=1).seeds == [0, 1]
    evaluated = evaluate_run(setting, write=False)
    np.testing.assert_array_equal([evaluated["tasks"][t]["per_seed"] for t in TASKS], per_seed.T)
    source, alone_source = load_source(setting), load_source(str(tmp_path / "alone"))  # a transfer's source too
    chex.assert_trees_all_equal(source.params, alone_source.params)
    assert source.seeds == [0, 1] and source.metadata["config"]["lr"] == 1e-3 and source.step == alone_source.step
    assert source.tasks == alone_source.tasks == ["CartPole-v1", "Acrobot-v1:gamma=0.9"]  # joint trains them so
    other = load_source(str(tmp_path / "sweep" / "lr=0.001,gamma.1=0.99"))
    assert other.fingerprint != source.fingerprint and other.metadata["sweep_setting"]["gamma.1"] == 0.99
    os.symlink(setting, tmp_path / "best")  # a link to the setting (or `.`) finds its sweep through the real path
    chex.assert_trees_all_equal(load_policy(str(tmp_path / "best")).params, load_policy(setting).params)


def test_a_settings_per_task_values_go_into_its_task_specs_as_for_a_run_alone():
    from mtrl.sweep_grid import setting_tasks
    from mtrl.tasks import make_taskset

    specs = ["CartPole-v1:length=0.5", "Acrobot-v1:gamma=0.99"]
    setting = {"lr": 1e-3, "gamma.1": 0.9, "eps_decay.0": 0.5, "eps_end.1": 0.1, "task_weight.0": 0.5}
    tasks = setting_tasks(specs, setting)
    assert tasks == ["CartPole-v1:length=0.5,eps_decay_fraction=0.5", "Acrobot-v1:gamma=0.9,eps_end=0.1"]
    taskset = make_taskset(tasks)
    assert taskset.learner_values("gamma", 0.99, float).tolist() == pytest.approx([0.99, 0.9])
    assert setting_tasks(specs, {"lr": 1e-3}) == specs


def test_a_stopped_sweep_resumes_to_the_same_results(tmp_path, tiny_config):
    cfg = dataclasses.replace(tiny_config, total_steps=256)
    grid = {"eps_end": (0.05, 0.2)}
    straight = sweep(["CartPole-v1"], cfg, grid, seeds=[3], run_dir=str(tmp_path / "a"), progress=False)
    stopped = sweep(["CartPole-v1"], cfg, grid, seeds=[3], run_dir=str(tmp_path / "b"), progress=False,
                    stop_at_step=128)
    assert stopped == {"stopped_at": 128, "signal": None}
    resumed = sweep(["CartPole-v1"], cfg, grid, seeds=[3], run_dir=str(tmp_path / "b"), progress=False)
    assert [r["final_return"] for r in resumed["settings"]] == [r["final_return"] for r in straight["settings"]]
    # killed after the shard's last checkpoint, before its settings' summaries: rerunning writes them, trains nothing
    label = resumed["settings"][0]["label"]
    os.remove(tmp_path / "b" / label / "summary.json")
    os.remove(tmp_path / "b" / "shards" / "0" / "shard.json")
    again = sweep(["CartPole-v1"], cfg, grid, seeds=[3], run_dir=str(tmp_path / "b"), progress=False)
    assert again["settings"] == resumed["settings"]
    assert json.loads((tmp_path / "b" / label / "summary.json").read_text())["summary_from_checkpoint"]
    plan_path = tmp_path / "b" / "sweep_plan.json"  # a plan saved before a config field existed continues
    plan = json.loads(plan_path.read_text())
    del plan["config"]["eval_epsilon"]
    plan_path.write_text(json.dumps(plan))
    assert sweep(["CartPole-v1"], cfg, grid, seeds=[3], run_dir=str(tmp_path / "b"), progress=False)["settings"] \
        == resumed["settings"]
    with pytest.raises(ProvenanceMismatchError, match="another sweep:\n  grid"):  # never mixed with another grid
        sweep(["CartPole-v1"], cfg, {"eps_end": (0.05, 0.3)}, seeds=[3], run_dir=str(tmp_path / "b"), progress=False)


def test_a_multi_task_sweep_chooses_by_returns_normalised_per_task_not_by_the_widest_task():
    """Three settings x two seeds on a wide-return task and a narrow one: the raw mean over tasks would pick A (best
    on the wide task by a little); mapped to each task's range over the sweep's runs, B (close on the wide task,
    far ahead of A on the narrow one) is best. One task: no normalised score, chosen by the raw return."""
    from mtrl.sweep_results import sweep_markdown, sweep_results

    final = {"A": (500.0, 0.0), "B": (490.0, 8.0), "C": (480.0, 10.0)}  # (wide task, narrow task)
    returns = np.zeros((2, 6, 2))
    returns[-1] = [final[s] for s in "AABBCC"]
    settings = [{"lr": 1e-3}, {"lr": 1e-4}, {"lr": 1e-5}]  # A, B, C
    results = sweep_results(settings, ["Wide", "Narrow"], [0, 1], np.array([0, 10]), returns)
    rows = {row["setting"]["lr"]: row for row in results["settings"]}
    assert rows[1e-3]["score"]["iqm"] > rows[1e-4]["score"]["iqm"] > rows[1e-5]["score"]["iqm"]  # raw: A
    assert [rows[lr]["normalised_score"]["iqm"] for lr in (1e-3, 1e-4, 1e-5)] == pytest.approx([0.5, 0.65, 0.5])
    assert results["best"] == "lr=0.0001"
    assert results["normalisation"] == {"Wide": {"low": 480.0, "high": 500.0}, "Narrow": {"low": 0.0, "high": 10.0}}
    assert "normalised per task to the sweep's range" in results["criterion"]
    table = sweep_markdown(results)
    assert "| mean over tasks | normalised mean | AUC |" in table and "| 0.65 [0.65, 0.65] |" in table
    one = sweep_results(settings, ["Wide"], [0, 1], np.array([0, 10]), returns[..., :1])
    assert "normalised_score" not in one["settings"][0] and "normalisation" not in one
    assert one["best"] == "lr=0.001" and "normalised mean" not in sweep_markdown(one)
    # a fourth setting diverged (a seed frozen; its runs return 0): it sets no range. Counted, it would stretch the
    # wide task's range to [0, 500], leave the narrow task to decide, and make C best
    with_frozen = np.concatenate([returns, np.zeros((2, 2, 2))], axis=1)
    frozen = sweep_results([*settings, {"lr": 1.0}], ["Wide", "Narrow"], [0, 1], np.array([0, 10]), with_frozen,
                           diverged={6: 10})
    assert frozen["normalisation"] == results["normalisation"] and frozen["best"] == "lr=0.0001"
    assert frozen["settings"][3]["normalised_score"]["per_seed"] == [0.0, 0.0]  # clipped into the range, not -24
    flat = sweep_results(settings, ["Wide", "Same"], [0, 1], np.array([0, 10]), returns * [1.0, 0.0])
    assert [row["normalised_score"]["iqm"] for row in flat["settings"]] == [0.5, 0.25, 0.0]  # "Same" adds 0 to all


def test_a_diverging_setting_is_frozen_and_marked_while_the_others_go_on(tmp_path, tiny_config):
    """lr 1e30 makes the parameters non-finite within the first window: that setting is frozen (finite state,
    learning rate 0) and marked with the step; the other setting trains on and is the best."""
    cfg = dataclasses.replace(tiny_config, max_grad_norm=1e30)
    results = sweep(["CartPole-v1"], cfg, {"lr": (5e-4, 1e30)}, seeds=[0, 1], run_dir=str(tmp_path), progress=False)
    ok, bad = results["settings"]
    assert ok["diverged"] == {} and bad["diverged"] == {"0": 128, "1": 128}
    assert results["best"] == ok["label"] and "seed 0 at 128" in (tmp_path / "sweep.md").read_text()
    assert all(np.isfinite(v) for t in bad["final_return"].values() for v in t["per_seed"])
    lines = (tmp_path / bad["label"] / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["diverged"] == [True, True] and json.loads(lines[-1])["learning_rate"] == [0.0, 0.0]


def test_a_diverging_plain_run_stops_naming_the_seed_and_keeps_its_last_checkpoint(tmp_path, tiny_config):
    from mtrl.checkpoint import Checkpointer
    from mtrl.trainer import CheckpointOptions, RunDivergedError

    cfg = dataclasses.replace(tiny_config, lr=1e30, max_grad_norm=1e30, learning_starts=160)  # learns from chunk 2
    with pytest.raises(RunDivergedError, match=r"seed 1 \(run 0\) diverged.*at 256 env steps.*checkpoint \(step 128\)"):
        train(["CartPole-v1"], cfg, seeds=[1], run_dir=str(tmp_path), progress=False,
              checkpoints=CheckpointOptions(every=128))
    assert Checkpointer(str(tmp_path)).steps() == [128]  # the non-finite chunk was never saved
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["diverged"] for line in lines] == [[False], [True]]


def test_freeze_diverged_returns_a_non_finite_run_to_its_window_start_and_leaves_the_others(tiny_config):
    import jax
    import jax.numpy as jnp

    from mtrl.trainer import Trainer, freeze_diverged

    trainer = Trainer.create(["CartPole-v1"], tiny_config)
    start = trainer.init([0, 1])
    moved = jax.tree.map(lambda x: x + 1 if jnp.issubdtype(x.dtype, jnp.floating) else x, start.runs.train)
    leaves, treedef = jax.tree.flatten(moved.params)
    leaves[0] = leaves[0].at[1].set(jnp.nan)  # run 1 becomes non-finite
    moved = moved.replace(params=jax.tree.unflatten(treedef, leaves))
    state, diverged = freeze_diverged(start.replace(runs=start.runs.replace(train=moved)), start.runs.train)
    np.testing.assert_array_equal(diverged, [False, True])
    run = lambda tree, i: jax.tree.map(lambda x: np.asarray(x[i]), tree)  # noqa: E731
    jax.tree.map(np.testing.assert_array_equal, run(state.runs.train.params, 0), run(moved.params, 0))  # unchanged
    jax.tree.map(np.testing.assert_array_equal, run(state.runs.train.params, 1), run(start.runs.train.params, 1))
    lr = np.asarray(state.runs.train.opt_state.hyperparams["learning_rate"])
    assert lr[0] == np.float32(tiny_config.lr) + 1 and lr[1] == 0.0  # frozen: no more updates


def _learning_record(run_dir):
    """Every logging window of a run's metrics.jsonl: step, updates, learning rate, gradient norm and, per task in
    order, each seed's loss, |TD error|, Q of the taken actions, ε, training returns (and PopArt's statistics), as
    written (floats compare bit for bit)."""
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        tasks = [{k: v for k, v in task.items() if k != "seed_mean"} for task in record["tasks"].values()]
        rows.append((record["step"], record["updates"], record["learning_rate"], record["grad_norm"], tasks))
    return rows


def _sweep_learns_as_alone(tmp_path, base, grid, alone_tasks, alone_changes):
    """A sweep of two values of one setting vs a run configured with the second value alone, two seeds each: every
    logged learning metric and every evaluation equal bit for bit; the first value's run differs (so the comparison
    can fail). Two seeds, not one: a one-run program drops its run axis and, on CPUs with AVX-512, XLA vectorises
    some of its reductions differently (last-bit differences; docs/architecture.md)."""
    from pathlib import Path

    tmp_path = Path(tmp_path)
    results = sweep(TASKS, base, grid, seeds=[3, 4], run_dir=str(tmp_path / "sweep"), progress=False)
    train(alone_tasks, dataclasses.replace(base, **alone_changes), seeds=[3, 4], run_dir=str(tmp_path / "alone"),
          progress=False)
    label = results["settings"][1]["label"]
    assert _learning_record(tmp_path / "sweep" / label) == _learning_record(tmp_path / "alone")
    np.testing.assert_array_equal(read_eval_csv(str(tmp_path / "sweep" / label / "eval.csv"))[1],
                                  read_eval_csv(str(tmp_path / "alone" / "eval.csv"))[1])
    other = results["settings"][0]["label"]
    assert _learning_record(tmp_path / "sweep" / other) != _learning_record(tmp_path / "alone")


@pytest.mark.parametrize("grid, alone_tasks, alone_changes", [
    ({"tau": (1.0, 0.5)}, TASKS, {"tau": 0.5}),
    ({"gamma": (0.99, 0.9)}, TASKS, {"gamma": 0.9}),
    ({"eps_start": (1.0, 0.5)}, TASKS, {"eps_start": 0.5}),
    ({"eps_end": (0.05, 0.3)}, TASKS, {"eps_end": 0.3}),
    ({"eps_decay.0": (0.5, 0.2)}, ["CartPole-v1:eps_decay_fraction=0.2", "Acrobot-v1"], {}),
    ({"task_weight.1": (1.0, 0.3)}, TASKS, {"task_weights": (1.0, 0.3)}),
], ids=["tau", "gamma", "eps_start", "eps_end", "eps_decay.0", "task_weight.1"])
def test_each_kind_of_setting_inside_a_sweep_learns_exactly_as_alone(tmp_path, tiny_config, grid, alone_tasks,
                                                                      alone_changes):
    """Each kind of swept setting (a config field, or the task spec's own value for a per-task one) reaches the
    learner exactly as a config would (`_sweep_learns_as_alone`)."""
    _sweep_learns_as_alone(tmp_path, tiny_config, grid, alone_tasks, alone_changes)


def test_a_popart_step_size_inside_a_sweep_learns_exactly_as_alone_at_xlas_default_optimisation(tmp_path,
                                                                                               tiny_config):
    """`popart_step_size` as above, in a fresh process at XLA's default optimisation level (as users run): under
    the tests' reduced level (conftest) XLA has compiled PopArt's statistics differently for programs of different
    numbers of runs (a 1-run and a 2-run program agreed only to rounding, ~1e-7)."""
    import subprocess
    import sys

    config = dataclasses.replace(tiny_config, loss_aggregation="popart")
    code = ("import sys, dataclasses; from mtrl.config import DQNConfig; from tests.test_sweeps import "
            "_sweep_learns_as_alone as check; "
            f"check(sys.argv[1], DQNConfig.from_dict({dataclasses.asdict(config)!r}), "
            "{'popart_step_size': (3e-4, 1e-2)}, ['CartPole-v1', 'Acrobot-v1'], {'popart_step_size': 1e-2})")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _finals(results):
    return {row["label"]: row["final_return"] for row in results["settings"]}


def test_a_grid_too_big_for_memory_is_split_into_programs_with_the_same_results(tmp_path, tiny_config, capsys):
    """A memory budget that holds one setting's runs but not two: two programs (shards) one after another, said so,
    with the same per-setting results as one program; an interrupted shard resumes and a finished one is reused."""
    from mtrl.sweep_shards import program_bytes
    from mtrl.trainer import Trainer

    grid, seeds = {"lr": (5e-4, 1e-3)}, [0, 1]
    one = program_bytes(Trainer.create(["CartPole-v1"], tiny_config), len(seeds))
    whole = sweep(["CartPole-v1"], tiny_config, grid, seeds=seeds, run_dir=str(tmp_path / "one"), progress=False)
    stopped = sweep(["CartPole-v1"], tiny_config, grid, seeds=seeds, run_dir=str(tmp_path / "split"),
                    progress=False, memory_budget=int(1.5 * one / 0.8), stop_at_step=128)
    assert "split into 2 programs of 1 and 1 settings" in capsys.readouterr().out and stopped["stopped_at"] == 128
    split = sweep(["CartPole-v1"], tiny_config, grid, seeds=seeds, run_dir=str(tmp_path / "split"), progress=False,
                  memory_budget=int(1.5 * one / 0.8))  # shard 0 resumes from its checkpoint, shard 1 trains
    assert _finals(split) == _finals(whole)
    assert json.loads((tmp_path / "split" / "sweep_plan.json").read_text())["shards"] == [[0], [1]]
    mtime = (tmp_path / "split" / "shards" / "0" / "shard.json").stat().st_mtime
    (tmp_path / "split" / "sweep.json").unlink()
    assert _finals(collect(str(tmp_path / "split"))) == _finals(whole)  # merged again from the shards
    assert (tmp_path / "split" / "shards" / "0" / "shard.json").stat().st_mtime == mtime
    with pytest.raises(GridError, match="one setting x 2 seeds needs about"):
        sweep(["CartPole-v1"], tiny_config, grid, seeds=seeds, memory_budget=one // 4, progress=False)


@pytest.mark.parametrize("tasks, changes", [
    (["CartPole-v1"], {}),
    (["CartPole-v1", "Acrobot-v1"], {"batch_size": 256, "torso": (256, 256)}),
    (["Breakout-MinAtar", "Seaquest-MinAtar"], {"conv_channels": (16,), "torso": (128,), "buffer_size": 4096}),
], ids=["mlp", "wide-mlp", "conv-small-buffer"])
def test_the_memory_estimate_covers_what_the_compiled_programs_need(tasks, changes):
    """`program_bytes` against XLA's own account of the compiled training chunk and evaluation (arguments, outputs
    not aliased to them, temporaries) for 3 runs: never below, and within 3x (a conv network with a small buffer
    is where twice the state alone fell short: 112 vs 123 MB needed)."""
    from mtrl.sweep_shards import program_bytes
    from mtrl.trainer import Trainer

    config = DQNConfig(total_steps=2560, num_envs=8, learning_starts=64, eval_every=1280, eval_episodes=2, **changes)
    trainer = Trainer.create(tasks, config)
    chunk, evaluate = trainer.compile(trainer.init_shapes([0, 1, 2]))
    needs = []
    for program in (chunk, evaluate):
        m = program.memory_analysis()
        needs.append(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes)
    estimate = program_bytes(trainer, 3)
    assert max(needs) <= estimate <= 3 * max(needs), (needs, estimate)


@pytest.mark.parametrize("devices, seeds, fit, expected", [
    (1, 1, 7, [7, 3]),  # one device: as many as fit
    (4, 1, 7, [4, 4, 1, 1]),  # 1 seed: 4 settings make 4 runs, one per device; the 2 left sit on one device each,
    # which holds 7.5 / 4 settings
    (4, 2, 7, [6, 4]),  # 2 seeds: every even count of settings shards
    (4, 4, 7, [7, 3]),  # 4 seeds: any count shards
    (4, 1, 15, [8, 2]),  # the last 2 fit one device (15.5 / 4): one program
    (2, 1, 15, [10]),  # 10 runs shard over 2 devices: no split
])
def test_a_split_grid_shards_what_divides_over_the_devices_and_sizes_the_rest_for_one_device(
        tiny_config, monkeypatch, capsys, devices, seeds, fit, expected):
    import jax

    from mtrl.sweep_shards import program_bytes, program_sizes
    from mtrl.trainer import Trainer

    trainer = Trainer.create(["CartPole-v1"], tiny_config)
    monkeypatch.setattr(jax, "devices", lambda: list(range(devices)))
    budget = int((fit + 0.5) * program_bytes(trainer, seeds) / 0.8)  # over all devices
    assert program_sizes(trainer, 10, seeds, None, budget) == expected
    said = capsys.readouterr().out
    if len(expected) > 1:
        listed = ", ".join(map(str, expected[:-1])) + f" and {expected[-1]}"
        assert f"split into {len(expected)} programs of {listed} settings (" in said and "GiB available" in said
        assert ("about" in said) == (fit < 10)  # the memory for all settings, named when it is short
        assert (f"when its runs (settings x seeds) are a multiple of {devices}" in said) == (devices > 1)
    else:
        assert said == ""


def test_a_setting_that_fits_no_single_device_unsharded_is_refused(tiny_config, monkeypatch):
    """4 devices with room for 3 settings' runs in all (0.875 each): one setting x 1 seed cannot shard over 4
    devices and fits none of them alone."""
    import jax

    from mtrl.sweep_shards import program_bytes, program_sizes
    from mtrl.trainer import Trainer

    trainer = Trainer.create(["CartPole-v1"], tiny_config)
    monkeypatch.setattr(jax, "devices", lambda: list(range(4)))
    with pytest.raises(GridError, match="are available on one device: use fewer seeds, a seed count that divides"):
        program_sizes(trainer, 10, 1, None, int(3.5 * program_bytes(trainer, 1) / 0.8))


@pytest.mark.skipif(submitit is None, reason="needs the cluster extra (submitit)")
def test_local_launcher_runs_shards_as_processes_and_merges_them_to_the_one_program_result(tmp_path, tiny_config,
                                                                                             monkeypatch):
    """The jobs train the shards and the last one writes the sweep's files; the submitting process only reads them
    back (it writes nothing: `write_sweep` is not called here)."""
    import mtrl.sweep_shards

    grid, seeds = {"eps_end": (0.05, 0.2)}, [4]
    whole = sweep(["CartPole-v1"], tiny_config, grid, seeds=seeds, progress=False)  # in memory: no files
    writes = []
    monkeypatch.setattr(mtrl.sweep_shards, "write_sweep", lambda *args: writes.append(args))
    launched = sweep(["CartPole-v1"], tiny_config, grid, seeds=seeds, run_dir=str(tmp_path), progress=False,
                     max_settings_per_program=1, launcher="local", launcher_options={"timeout_min": 10})
    monkeypatch.undo()
    assert _finals(launched) == _finals(whole) and (tmp_path / "jobs").is_dir()
    assert not writes and _finals(json.loads((tmp_path / "sweep.json").read_text())) == _finals(whole)
    assert all((tmp_path / "shards" / str(i) / "shard.json").exists() for i in (0, 1))
    (tmp_path / "shards" / "1" / "shard.json").unlink()
    with pytest.raises(ValueError, match=r"shards \[1\] of 2 are not finished"):
        collect(str(tmp_path))
    # The job that finishes the last shard collects the sweep itself (the submitting process may be gone); the
    # jobs run here in this process: shard 0's finds shard 1 unfinished, shard 1's then finds all finished.
    from mtrl.sweep_shards import _shard_job

    (tmp_path / "sweep.json").unlink()
    _shard_job(str(tmp_path), 0, {})
    assert not (tmp_path / "sweep.json").exists()
    _shard_job(str(tmp_path), 1, {})
    assert _finals(json.loads((tmp_path / "sweep.json").read_text())) == _finals(whole)


@pytest.mark.skipif(submitit is None, reason="needs the cluster extra (submitit)")
def test_a_sweep_killed_mid_run_resumes_its_shards_from_their_checkpoints(tmp_path, tiny_config):
    """`mtrl sweep --launcher local` killed with SIGKILL (the command and its shard jobs) once shard 0 has a
    checkpoint: the same command rerun resumes the unfinished shards from their last checkpoints (not from the
    start) and ends with the uninterrupted one-program sweep's results."""
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "mtrl", "sweep", "--tasks", "CartPole-v1", "--grid", "eps_end=0.05,0.2",
               "--seeds", "1", "--seed", "4", "--total-steps", "4096", "--num-envs", "4", "--buffer-size", "64",
               "--batch-size", "8", "--learning-starts", "16", "--target-update-period", "4", "--torso", "16",
               "--eval-every", "1024", "--eval-episodes", "2", "--lr-end-fraction", "0", "--checkpoint-every", "256",
               "--max-settings-per-program", "1", "--launcher", "local", "--timeout-min", "10",
               "--run-dir", str(run_dir), "--no-progress"]
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints, deadline = run_dir / "shards" / "0" / "checkpoints", time.monotonic() + 300
    while not (checkpoints.is_dir() and any(name.isdigit() for name in os.listdir(checkpoints))):
        assert first.poll() is None and time.monotonic() < deadline, "shard 0 wrote no checkpoint"
        time.sleep(0.1)
    subprocess.run(["pkill", "-KILL", "-f", str(run_dir)], check=True)  # the command and every shard job
    first.wait(timeout=60)
    assert not (run_dir / "shards" / "0" / "shard.json").exists() and not (run_dir / "sweep.json").exists()
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    results = json.loads((run_dir / "sweep.json").read_text())
    config = dataclasses.replace(tiny_config, total_steps=4096, eval_every=1024)
    assert _finals(results) == _finals(sweep(["CartPole-v1"], config, {"eps_end": (0.05, 0.2)}, seeds=[4],
                                             progress=False))
    resumed = json.loads((run_dir / "eps_end=0.05" / "summary.json").read_text())
    assert resumed["resumed_from_step"] >= 256 and resumed["sittings"] == 2


@pytest.mark.skipif(submitit is None, reason="needs the cluster extra (submitit)")
def test_slurm_launcher_submits_one_job_array_whose_tasks_train_the_shards(tmp_path, tiny_config, monkeypatch,
                                                                           capfd):
    """`mtrl sweep --launcher slurm` against a stand-in SLURM on PATH (tests/fake_slurm.py): the two shards go out
    as one sbatch job array whose script carries the command line's partition, GPUs, time limit and job name; each
    array task trains its shard, and the merge equals the one-program sweep. Rerun, nothing is submitted again, nor
    for an unfinished shard whose job SLURM still runs."""
    from mtrl.cli import main
    from tests import fake_slurm

    bin_dir, state = fake_slurm.install(str(tmp_path / "slurm"))
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("FAKE_SLURM_STATE", state)
    run_dir = tmp_path / "sweep"
    command = ["sweep", "--tasks", "CartPole-v1", "--grid", "eps_end=0.05,0.2", "--seeds", "1", "--seed", "4",
               "--total-steps", "256", "--num-envs", "4", "--buffer-size", "64", "--batch-size", "8",
               "--learning-starts", "16", "--target-update-period", "4", "--torso", "16", "--eval-every", "128",
               "--eval-episodes", "2", "--lr-end-fraction", "0", "--max-settings-per-program", "1",
               "--launcher", "slurm", "--slurm-partition", "debugq", "--gpus-per-job", "1", "--timeout-min", "10",
               "--device-memory-gib", "1", "--slurm", "account=lab", "qos=normal", "cpus_per_task=2",
               "--run-dir", str(run_dir), "--no-progress"]
    main(command)
    assert "2 shard job(s) submitted (slurm): 4000_0, 4000_1" in capfd.readouterr().out
    scripts = sorted(name for name in os.listdir(state) if name.endswith(".sbatch"))
    assert scripts == ["4000.sbatch"]
    script = open(os.path.join(state, scripts[0])).read()
    for line in ("#SBATCH --array=0-1%2", "#SBATCH --partition=debugq", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --time=10", "#SBATCH --job-name=mtrl-sweep", "#SBATCH --account=lab", "#SBATCH --qos=normal",
                 "#SBATCH --cpus-per-task=2"):
        assert line in script.splitlines(), line
    for task in (0, 1):  # each array task ran as SLURM job 4000_<task> (submitit read SLURM's variables)
        log = (run_dir / "jobs" / f"4000_{task}" / f"4000_{task}_0_log.out").read_text()
        assert f"JobEnvironment(job_id=4000_{task}," in log and "Job completed successfully" in log
    whole = sweep(["CartPole-v1"], tiny_config, {"eps_end": (0.05, 0.2)}, seeds=[4], progress=False)
    assert _finals(json.loads((run_dir / "sweep.json").read_text())) == _finals(whole)
    main(command)
    assert "submitted" not in capfd.readouterr().out
    assert sorted(name for name in os.listdir(state) if name.endswith(".sbatch")) == ["4000.sbatch"]
    # the submitting shell was lost while shard 1's job still ran: a rerun leaves it alone, says so, submits nothing
    (run_dir / "shards" / "1" / "shard.json").unlink()
    with open(os.path.join(state, "4000_1.state"), "w") as f:
        f.write("RUNNING")
    with pytest.raises(SystemExit):
        main(command)
    assert "shard 1 (job 4000_1, RUNNING) may still run in SLURM" in capfd.readouterr().err
    assert sorted(name for name in os.listdir(state) if name.endswith(".sbatch")) == ["4000.sbatch"]


@pytest.mark.skipif(submitit is None, reason="needs the cluster extra (submitit)")
def test_a_slurm_sweep_needs_the_jobs_memory_and_known_sbatch_settings_before_writing_anything(
        tmp_path, tiny_config, monkeypatch, capfd):
    """The login node cannot see the jobs' GPUs: without their memory the sweep is refused; an sbatch setting
    submitit does not know is named; the CLI's --slurm and --device-memory-gib are checked. Nothing is written or
    submitted."""
    from mtrl.cli import main
    from tests import fake_slurm

    bin_dir, state = fake_slurm.install(str(tmp_path / "slurm"))
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("FAKE_SLURM_STATE", state)
    run_dir = str(tmp_path / "s")
    with pytest.raises(GridError, match=r"cannot see its jobs' GPUs: give memory_budget in bytes "
                                        r"\(CLI: --device-memory-gib in GiB\)"):
        sweep(["CartPole-v1"], tiny_config, {"lr": (1e-4, 3e-4)}, run_dir=run_dir, launcher="slurm")
    with pytest.raises(GridError, match="unknown job setting 'slurm_acount'; sbatch settings submitit knows: .*acc"):
        sweep(["CartPole-v1"], tiny_config, {"lr": (1e-4, 3e-4)}, run_dir=run_dir, launcher="slurm",
              memory_budget=2**30, launcher_options={"slurm_acount": "lab"})
    base = ["sweep", "--tasks", "CartPole-v1", "--grid", "lr=1e-4,3e-4", "--run-dir", run_dir]
    slurm = ["--launcher", "slurm", "--device-memory-gib"]
    for extra, message in ((["--slurm", "account=lab"], "--slurm sets the jobs of --launcher slurm"),
                           ([*slurm, "80", "--slurm", "account="], "--slurm: 'account=' is not NAME=VALUE or NAME"),
                           ([*slurm, "80", "--slurm", "acount=lab"], "unknown job setting 'slurm_acount'"),
                           ([*slurm, "80", "--slurm", "partition=x"], "--slurm: partition is set by --slurm-partition"),
                           ([*slurm, "0"], "--device-memory-gib must be a number of GiB > 0, got 0")):
        with pytest.raises(SystemExit):
            main(base + extra)
        assert message in capfd.readouterr().err, extra
    assert not os.path.exists(run_dir) and not os.listdir(state)


def test_slurm_settings_are_switches_numbers_or_text_and_the_flags_own_names_are_refused():
    from mtrl.cli import slurm_settings

    assert slurm_settings(["account=0123", "cpus_per_task=8", "exclusive", "requeue=false", "mem=64G"]) == {
        "slurm_account": "0123", "slurm_cpus_per_task": 8, "slurm_exclusive": True, "slurm_requeue": False,
        "slurm_mem": "64G"}
    with pytest.raises(ValueError, match="--slurm: gres is set by --gpus-per-job, not --slurm"):
        slurm_settings(["gres=gpu:4"])
    with pytest.raises(ValueError, match="--slurm: 'account=' is not NAME=VALUE or NAME"):
        slurm_settings(["account="])


def test_a_slurm_sweep_sizes_its_shards_for_the_jobs_devices_not_this_machines(tiny_config, capsys):
    """Planned here (one device) for jobs of 4 GPUs: the runs that divide over 4 devices go together, as on the
    job's node."""
    from mtrl.sweep_shards import program_bytes, program_sizes
    from mtrl.trainer import Trainer

    trainer = Trainer.create(["CartPole-v1"], tiny_config)
    budget = int(7.5 * program_bytes(trainer, 1) / 0.8)
    assert program_sizes(trainer, 10, 1, None, budget, devices=4) == [4, 4, 1, 1]
    assert program_sizes(trainer, 10, 1, None, budget) == [7, 3]


@pytest.mark.skipif(submitit is None, reason="needs the cluster extra (submitit)")
def test_a_shard_job_refuses_a_program_its_devices_cannot_hold_before_compiling(tmp_path, tiny_config, monkeypatch):
    """A shard planned for more memory than its job has (a wrong --device-memory-gib) ends in a message naming the
    shard, the memory it needs and what the job has, not an out-of-memory crash."""
    import mtrl.sweep_shards as shards
    import mtrl.sweeps

    monkeypatch.setattr(mtrl.sweeps, "launch", lambda *args, **kwargs: {})  # plan the sweep, submit nothing
    sweep(["CartPole-v1"], tiny_config, {"lr": (1e-4, 3e-4)}, seeds=[0], run_dir=str(tmp_path / "s"),
          launcher="local")
    monkeypatch.setattr(shards, "available_bytes", lambda: (10_000, 10_000))
    with pytest.raises(GridError, match=r"shard 0: its 2 runs need about [0-9.]+ GiB of device memory, this job's "
                                        r"device has 0.00 GiB free: the sweep was planned for more memory"):
        shards._shard_job(str(tmp_path / "s"), 0, {})
    assert not (tmp_path / "s" / "shards" / "0").exists()


def test_the_memory_check_of_a_resumed_shard_follows_where_its_keys_let_it_run(monkeypatch, tiny_config):
    """A shard resumed in a job with several devices: threefry runs (or a fresh shard) are sharded and checked
    against all devices' memory; Philox runs continue on one device and are checked against one device's."""
    import mtrl.sweep_shards as shards
    import mtrl.trainer

    trainer = mtrl.trainer.Trainer.create(["CartPole-v1"], tiny_config)
    monkeypatch.setattr(mtrl.trainer, "run_sharding", lambda num_runs: "runs" if num_runs % 4 == 0 else None)
    monkeypatch.setattr(shards, "available_bytes", lambda: (4 * 2**30, 2**30))
    monkeypatch.setattr(shards, "program_bytes", lambda trainer, num_runs: 2 * 2**30)
    shards.check_fits(trainer, 0, 4)
    shards.check_fits(trainer, 0, 4, "threefry2x32")
    with pytest.raises(GridError, match="shard 0: its 4 runs need about 2.00 GiB of device memory, this job's device "
                                        "has 1.00 GiB free"):
        shards.check_fits(trainer, 0, 4, "philox2x32")
    with pytest.raises(GridError, match="this job's device has 1.00 GiB free"):  # 3 runs do not divide: one device
        shards.check_fits(trainer, 0, 3)


def test_a_transfer_sweep_over_l2sp_alpha_equals_each_transfer_run_alone(tmp_path, tiny_config):
    """From one source run of three seeds, l2sp with α 0.01 and 0.1 x two seeds in one program: the α = 0.1
    setting equals `train_transfer` in mode l2sp with α 0.1 (its seeds start from source runs 0 and 1, as alone;
    same penalty) on every evaluation and in its final parameters' curves."""
    from mtrl.transfer import TransferConfig, train_transfer

    train(["CartPole-v1:length=0.5"], tiny_config, seeds=[0, 1, 2], run_dir=str(tmp_path / "source"),
          progress=False)
    tcfg = TransferConfig(mode="l2sp")
    results = sweep(["CartPole-v1"], tiny_config, {"l2sp_alpha": (0.01, 0.1)}, seeds=[0, 1],
                    run_dir=str(tmp_path / "sweep"), progress=False, source=str(tmp_path / "source"), transfer=tcfg)
    alone = train_transfer(str(tmp_path / "source"), ["CartPole-v1"], dataclasses.replace(tcfg, l2sp_alpha=0.1),
                           tiny_config, seeds=[0, 1], run_dir=str(tmp_path / "alone"), progress=False)
    steps, curve, _ = read_eval_csv(str(tmp_path / "sweep" / "l2sp_alpha=0.1" / "eval.csv"))
    np.testing.assert_array_equal(curve, read_eval_csv(str(tmp_path / "alone" / "eval.csv"))[1])
    assert alone.summary["seeds"] == [0, 1]
    meta = json.loads((tmp_path / "sweep" / "l2sp_alpha=0.1" / "config.json").read_text())
    assert meta["transfer"]["settings"]["l2sp_alpha"] == 0.1 and meta["transfer"]["seed_map"] == {"0": 0, "1": 1}
    assert [r["label"] for r in results["settings"]] == ["l2sp_alpha=0.01", "l2sp_alpha=0.1"]
    with pytest.raises(ValueError, match="cannot splice parameters"):  # a static torso of other sizes than the source's
        sweep(["CartPole-v1"], tiny_config, {"l2sp_alpha": (0.1,)}, source=str(tmp_path / "source"), transfer=tcfg,
              static={"torso": ((16,), (8, 8))}, run_dir=str(tmp_path / "other_torso"), progress=False)
    assert not (tmp_path / "other_torso").exists()
    with pytest.raises(GridError, match="transfer_factor: a setting of transfer mode joint"):
        sweep(["CartPole-v1"], tiny_config, {"transfer_factor": (0.5,)}, source=str(tmp_path / "source"),
              transfer=tcfg, progress=False)
    with pytest.raises(GridError, match="l2sp_alpha: a setting of transfer mode l2sp; sweep it from a source run"):
        check_grid({"l2sp_alpha": (0.1,)}, tiny_config, num_tasks=1)


def test_a_transfer_sweep_over_transfer_factor_equals_the_joint_run_alone(tmp_path, tiny_config):
    """Mode joint (source and target tasks in one network, the target's loss weighted by λ): λ 2 inside a sweep of
    0.5 and 2 learns exactly as `train_transfer` with λ 2, every logged metric and evaluation of every task; λ 0.5
    differs."""
    from mtrl.transfer import TransferConfig, train_transfer

    source = str(tmp_path / "source")
    train(["CartPole-v1:length=0.5"], tiny_config, seeds=[0, 1], run_dir=source, progress=False)
    tcfg = TransferConfig(mode="joint")
    sweep(["CartPole-v1:length=1.0"], tiny_config, {"transfer_factor": (0.5, 2.0)}, seeds=[0, 1],
          run_dir=str(tmp_path / "s"), progress=False, source=source, transfer=tcfg)
    train_transfer(source, ["CartPole-v1:length=1.0"], dataclasses.replace(tcfg, transfer_factor=2.0), tiny_config,
                   seeds=[0, 1], run_dir=str(tmp_path / "alone"), progress=False)
    swept = tmp_path / "s" / "transfer_factor=2"
    assert _learning_record(swept) == _learning_record(tmp_path / "alone")
    _, curve, tasks = read_eval_csv(str(swept / "eval.csv"))
    assert tasks == ["CartPole-v1:length=0.5", "CartPole-v1:length=1.0"]
    np.testing.assert_array_equal(curve, read_eval_csv(str(tmp_path / "alone" / "eval.csv"))[1])
    assert _learning_record(tmp_path / "s" / "transfer_factor=0.5") != _learning_record(tmp_path / "alone")


def test_static_settings_vary_across_shards_each_equal_to_its_run_alone(tmp_path, tiny_config):
    """--static batch_size=8,16 with lr in the grid: one program per batch size, labels led by the static value;
    the batch 16 settings equal their runs alone; static names in --grid, unknown static names and invalid static
    configs are refused."""
    results = sweep(["CartPole-v1"], tiny_config, {"lr": (5e-4, 1e-3)}, seeds=[0], run_dir=str(tmp_path / "s"),
                    progress=False, static={"batch_size": (8, 16)})
    assert [r["label"] for r in results["settings"]] == ["batch_size=8,lr=0.0005", "batch_size=8,lr=0.001",
                                                         "batch_size=16,lr=0.0005", "batch_size=16,lr=0.001"]
    plan = json.loads((tmp_path / "s" / "sweep_plan.json").read_text())
    assert plan["shards"] == [[0, 1], [2, 3]] and plan["static"] == {"batch_size": [8, 16]}
    assert results["programs"] == 2 and ", 2 programs, " in (tmp_path / "s" / "sweep.md").read_text()
    alone = train(["CartPole-v1"], dataclasses.replace(tiny_config, batch_size=16, lr=1e-3), seeds=[0],
                  run_dir=str(tmp_path / "alone"), progress=False)
    curve = read_eval_csv(str(tmp_path / "s" / "batch_size=16,lr=0.001" / "eval.csv"))[1]
    np.testing.assert_array_equal(curve, read_eval_csv(str(tmp_path / "alone" / "eval.csv"))[1])
    assert alone.summary["seeds"] == [0]
    static_only = sweep(["CartPole-v1"], tiny_config, {}, seeds=[0], run_dir=str(tmp_path / "only"), progress=False,
                        static={"batch_size": (8, 16)})
    assert [r["label"] for r in static_only["settings"]] == ["batch_size=8", "batch_size=16"]
    for batch in (8, 16):  # the config's lr is 5e-4, the grid's first value
        curve = read_eval_csv(str(tmp_path / "only" / f"batch_size={batch}" / "eval.csv"))[1]
        in_grid = read_eval_csv(str(tmp_path / "s" / f"batch_size={batch},lr=0.0005" / "eval.csv"))[1]
        np.testing.assert_array_equal(curve, in_grid)
    with pytest.raises(GridError, match=r"batch_size: a static setting .*--static batch_size=V1,V2"):
        check_grid({"batch_size": (8, 16)}, tiny_config, num_tasks=1)
    with pytest.raises(GridError, match="static lr: not a static setting a sweep can vary"):
        sweep(["CartPole-v1"], tiny_config, {"eps_end": (0.1,)}, static={"lr": (1e-3,)}, progress=False)
    with pytest.raises(GridError, match="static batch_size: 8.5 is not an integer"):
        sweep(["CartPole-v1"], tiny_config, {"lr": (1e-3,)}, static={"batch_size": (8.5,)}, progress=False)


def test_network_sizes_vary_across_shards_each_equal_to_its_run_alone(tmp_path, tiny_config):
    """static torso (16) and (8, 8): one program per network, labels led by the sizes written 8x8; the 8x8 setting
    equals its run alone; the table and plot show the sizes; a rerun reads the plan back from JSON and reuses both
    shards; malformed sizes are refused naming the value, and sizes in the grid say to sweep them as static."""
    kwargs = dict(seeds=[0], run_dir=str(tmp_path / "s"), progress=False, static={"torso": ((16,), (8, 8))})
    results = sweep(["CartPole-v1"], tiny_config, {"lr": (1e-3,)}, **kwargs)
    assert [r["label"] for r in results["settings"]] == ["torso=16,lr=0.001", "torso=8x8,lr=0.001"]
    assert results["programs"] == 2 and "| 8x8 | 0.001 |" in (tmp_path / "s" / "sweep.md").read_text()
    assert (tmp_path / "s" / "sweep.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "s" / "torso=8x8,lr=0.001" / "config.json").read_text())
    assert saved["config"]["torso"] == [8, 8]
    train(["CartPole-v1"], dataclasses.replace(tiny_config, torso=(8, 8), lr=1e-3), seeds=[0],
          run_dir=str(tmp_path / "alone"), progress=False)
    np.testing.assert_array_equal(read_eval_csv(str(tmp_path / "s" / "torso=8x8,lr=0.001" / "eval.csv"))[1],
                                  read_eval_csv(str(tmp_path / "alone" / "eval.csv"))[1])
    assert _finals(sweep(["CartPole-v1"], tiny_config, {"lr": (1e-3,)}, **kwargs)) == _finals(results)
    assert parse_grid(["torso=64x64,256", "conv_channels=none,16"], "--static") == {
        "torso": ((64, 64), (256,)), "conv_channels": ((), (16,))}
    with pytest.raises(GridError, match="--static: torso: '64xa' is not layer sizes: positive widths joined by x"):
        parse_grid(["torso=64xa"], "--static")
    with pytest.raises(GridError, match=r"grid torso: a static setting .*--static torso=V1,V2"):
        check_grid({"torso": ((64,),)}, tiny_config, num_tasks=1)


def test_settings_a_run_alone_would_refuse_are_refused_before_anything_trains(tiny_config):
    """Each setting's own config is validated: PopArt's step times the batch must stay below 1; a static num_envs
    that does not divide eval_every (the runs would evaluate at other steps) is refused, naming the setting."""
    popart = dataclasses.replace(tiny_config, loss_aggregation="popart")
    with pytest.raises(GridError, match="setting popart_step_size=0.5: .*popart_step_size"):
        sweep(["CartPole-v1"], popart, {"popart_step_size": (1e-3, 0.5)}, progress=False)
    cfg = dataclasses.replace(tiny_config, total_steps=240, eval_every=120)  # 16 envs: chunks of 112, 112, 16 steps
    with pytest.raises(GridError, match=r"static \{'num_envs': 16\}: eval_every must be a multiple of num_envs"):
        sweep(["CartPole-v1"], cfg, {"lr": (1e-3,)}, static={"num_envs": (4, 16)}, progress=False)
