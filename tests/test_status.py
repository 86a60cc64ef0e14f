"""`mtrl.status` (`mtrl status`): where a run stands, read from its directory alone."""

import json
import os

import pytest

from mtrl.cli import main
from mtrl.config import DQNConfig
from mtrl.status import _last_line, find_runs, overview_text, run_status, status_text, statuses_under
from mtrl.trainer import CheckpointOptions, train
from mtrl.transfer import resume_run

CFG = DQNConfig(total_steps=256, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16, torso=(16,),
                eval_every=64, eval_episodes=2)
TASKS = ["CartPole-v1", "Acrobot-v1"]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A two-task, two-seed run stopped at 128 of 256 env steps per task (a checkpoint every 64)."""
    root = tmp_path_factory.mktemp("runs")
    run_dir = str(root / "study" / "stopped")
    train(TASKS, CFG, seeds=[3, 4], run_dir=run_dir, progress=False, checkpoints=CheckpointOptions(every=64),
          stop_at_step=128)
    return root, run_dir


def test_a_stopped_run_says_how_far_it_got_how_fast_and_how_to_continue(stopped):
    root, run_dir = stopped
    status = run_status(run_dir)
    last = json.loads(open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines()[-1])
    assert status["state"] == "not finished" and status["step"] == 128 and status["total_steps"] == 256
    assert status["checkpoints"] == [64, 128]
    assert status["env_steps_per_s"] == last["env_steps_per_s"]
    # 128 steps per task left, at the logged rate shared by 2 tasks x 2 seeds
    assert status["seconds_left"] == pytest.approx(128 / (last["env_steps_per_s"] / 4))
    assert status["continue"] == f"python -m mtrl train --resume {run_dir}"
    assert status["eval_step"] == 128 and list(status["eval_returns"]) == TASKS
    csv_rows = [line.split(",") for line in open(os.path.join(run_dir, "eval.csv")).read().splitlines()[1:]]
    cartpole = [float(r[3]) for r in csv_rows if r[0] == "128" and r[1] == "CartPole-v1"]
    assert status["eval_returns"]["CartPole-v1"] == pytest.approx(sum(cartpole) / 2)
    assert status["diverged_seeds"] == [] and status["sittings"] == 1
    text = status_text(status)
    assert "not finished: 128 of 256 env steps per task (50%) logged" in text
    assert f"to continue it (if no process trains it now): python -m mtrl train --resume {run_dir}" in text
    assert "checkpoints: 64, 128" in text and "greedy return at 128 (mean over seeds): CartPole " in text


def test_a_finished_run_and_a_directory_of_runs(stopped, tmp_path):
    root, run_dir = stopped
    finished = str(tmp_path / "finished")
    train(["CartPole-v1"], CFG, seeds=[0], run_dir=finished, progress=False, stop_at_step=64)
    resume_run(finished, progress=False)
    status = run_status(finished)
    assert status["state"] == "finished" and status["step"] == 256 and status["seconds_left"] is None
    assert status["sittings"] == 2 and status["continue"] is None
    assert "finished: 256 of 256 env steps per task (100%)" in status_text(status)
    not_started = tmp_path / "nothing" / "run"
    os.makedirs(not_started)
    (not_started / "config.json").write_text(json.dumps({"tasks": ["CartPole-v1"], "seeds": [0],
                                                         "config": {"total_steps": 100}}))
    assert find_runs(str(tmp_path)) == [finished, str(not_started)]
    lines = overview_text(str(tmp_path), [run_status(r) for r in find_runs(str(tmp_path))]).splitlines()
    assert lines == ["finished: finished, 256 of 256 env steps per task (100%)",
                     "nothing/run: not started, 0 of 100 env steps per task (0%)"]
    assert run_status(str(not_started))["continue"].startswith("no checkpoint to resume from")
    assert find_runs(str(root)) == [run_dir]  # checkpoints/ and the run's parts are not searched


def crafted_run(path, lines, tasks=("A",), seeds=(7, 8), total=100, **meta):
    """A run directory holding only config.json and metrics.jsonl ``lines`` (what `run_status` reads)."""
    os.makedirs(path, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"tasks": list(tasks), "seeds": list(seeds),
                                                  "config": {"total_steps": total}, **meta}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_a_line_being_written_and_seeds_that_diverged_on_any_line(tmp_path):
    run = crafted_run(tmp_path / "run", [{"step": 1, "diverged": [False, True]},
                                         {"step": 2, "diverged": [False, False]}])
    with open(os.path.join(run, "metrics.jsonl"), "a") as f:
        f.write('{"step": 3, "div')
    assert _last_line(os.path.join(run, "metrics.jsonl")) == {"step": 2, "diverged": [False, False]}
    status = run_status(run)
    assert status["diverged_seeds"] == [8] and status["step"] == 2  # marked once, frozen (finite) after that
    assert "diverged (frozen at their last finite state): seeds [8]" in status_text(status)


def test_time_left_shares_the_speed_among_every_task_and_seed(tmp_path):
    run = crafted_run(tmp_path / "run", [{"step": 40, "env_steps_per_s": 60.0}], tasks=("A", "B", "C"), seeds=(0, 1))
    status = run_status(run)
    assert status["seconds_left"] == pytest.approx(60 / (60.0 / 6))  # 60 steps per task left, 10 per task per s
    assert status["state"] == "not finished" and status["checkpoints"] == []  # logged, never saved
    assert status["continue"].startswith("no checkpoint to resume from: train again into it with --overwrite")
    experiment = crafted_run(tmp_path / "exp", [{"step": 40}], experiment="quickstart")
    assert run_status(experiment)["continue"] == (
        "rerun the experiment's command: python -m experiments.quickstart with the same options (no checkpoint yet, "
        "so the run starts again)")
    almost = crafted_run(tmp_path / "almost", [{"step": 99}])
    assert "99 of 100 env steps per task (99%)" in status_text(run_status(almost))  # rounded down until done


def test_how_to_continue_an_experiment_or_a_sweep_is_the_command_they_recorded(tmp_path):
    recorded = "python -m experiments.quickstart --seeds 3 --run-dir 'my runs'"
    experiment = crafted_run(tmp_path / "exp", [{"step": 40}], experiment="quickstart", command=recorded)
    assert run_status(experiment)["continue"] == (f"rerun the experiment's command: {recorded} (no checkpoint yet, "
                                                  "so the run starts again)")
    as_list = crafted_run(tmp_path / "old", [{"step": 40}], experiment="quickstart",
                          command=["python", "-m", "experiments.quickstart", "--run-dir", "my runs"])
    assert "command: python -m experiments.quickstart --run-dir 'my runs' (no" in run_status(as_list)["continue"]
    setting = crafted_run(tmp_path / "sweep" / "lr=0.001", [{"step": 40}], sweep={"grid": {"lr": [0.001]}})
    assert run_status(setting)["continue"] == ("rerun the sweep's command, which continues its programs: "
                                               "python -m mtrl sweep ... (the same options) or mtrl.sweep(...)")
    (tmp_path / "sweep" / "sweep_plan.json").write_text(json.dumps({"command": "mtrl sweep --grid lr=1e-3",
                                                                    "seeds": [0], "shards": [[0]]}))
    assert run_status(setting)["continue"] == ("rerun the sweep's command, which continues its programs: "
                                               "mtrl sweep --grid lr=1e-3")
    overview = overview_text(str(tmp_path / "sweep"), statuses_under(str(tmp_path / "sweep"))).splitlines()
    assert overview[:2] == ["sweep: 1 setting(s) x 1 seed(s) in 1 program(s); 1 setting(s) started",
                            "to continue it (if no process runs it now): mtrl sweep --grid lr=1e-3"]
    (tmp_path / "sweep" / "sweep.json").write_text("{}")  # merged: nothing to continue
    assert "to continue" not in overview_text(str(tmp_path / "sweep"), [])


def test_a_directory_of_runs_lists_each_and_survives_an_unreadable_one(tmp_path):
    deep = crafted_run(tmp_path / "a" / "b" / "c" / "d" / "e", [{"step": 10}])
    crafted_run(tmp_path / "sweep" / "shards" / "0", [], groups={"x=1": [0]})
    crafted_run(tmp_path / "old.replaced-20260101-000000", [])
    broken = crafted_run(tmp_path / "broken", [{"step": 5}])
    (tmp_path / "broken" / "summary.json").write_text("")
    (tmp_path / "sweep" / "sweep_plan.json").write_text(json.dumps({"seeds": [0, 1], "shards": [[0, 1], [2]]}))
    crafted_run(tmp_path / "sweep" / "x=1", [{"step": 100}])
    assert find_runs(str(tmp_path)) == [deep, broken, str(tmp_path / "sweep" / "x=1")]
    lines = overview_text(str(tmp_path), statuses_under(str(tmp_path))).splitlines()
    assert lines[0].startswith("a/b/c/d/e: not finished, 10 of 100 env steps per task (10%)")
    assert lines[1].startswith("broken: unreadable: ") and "summary.json is not valid JSON" in lines[1]
    assert overview_text(str(tmp_path / "sweep"), statuses_under(str(tmp_path / "sweep"))).splitlines()[0] == (
        "sweep: 3 setting(s) x 2 seed(s) in 2 program(s); 1 setting(s) started")
    with pytest.raises(ValueError, match=r"is one program \(shard\) of a sweep: its settings' runs are the sweep's "
                                         r"directories x=1"):
        run_status(str(tmp_path / "sweep" / "shards" / "0"))


def test_status_from_the_command_line(stopped, capsys):
    root, run_dir = stopped
    main(["status", run_dir])
    assert "not finished: 128 of 256" in capsys.readouterr().out
    main(["status", str(root)])
    assert capsys.readouterr().out.startswith("study/stopped: not finished, 128 of 256 env steps per task (50%), "
                                              "about ")
    main(["status", run_dir, "--json"])
    assert json.loads(capsys.readouterr().out)["checkpoints"] == [64, 128]
    for path, message in [("/nonexistent", "'/nonexistent' is not a directory"),
                          (os.path.join(run_dir, "checkpoints", "64"), "holds no run")]:
        with pytest.raises(SystemExit):
            main(["status", path])
        assert message in capsys.readouterr().err
