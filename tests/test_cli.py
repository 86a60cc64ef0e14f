import json
import shlex
import subprocess
import sys

import pytest

from mtrl import cli
from mtrl.cli import main


def test_help_lists_options_with_defaults():
    out = subprocess.run([sys.executable, "-m", "mtrl", "train", "--help"], capture_output=True, text=True,
                         check=True, env={"COLUMNS": "400", "PATH": ""}).stdout
    for flag in ("--tasks", "--suite", "--seeds", "--total-steps", "--run-dir", "--lr", "--tensorboard", "--resume",
                 "--checkpoint-every", "--keep-checkpoints", "--stop-at-step"):
        assert flag in out
    assert "(default: 300000)" in out
    # a docstring wrapped over source lines is one paragraph (a nested config's too), and an empty default says so
    assert "unpadded conv layers before the dense ones, for image observations [H, W, C] (the MinAtar paper's" in out
    assert "(default: )" not in out and "() = dense layers only (default: none)" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--tasks", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
        # other DQN code's flags: mtrl's own named, not a look-alike (tyro's guess for --learning-rate)
        (["train", "--suite", "classic", "--learning-rate", "1e-3"],
         "error: --learning-rate is not an mtrl flag; mtrl's is --lr (Adam's learning rate)\n"),
        (["sweep", "--suite", "classic", "--target_network_frequency=500"],
         "error: --target_network_frequency is not an mtrl flag; mtrl's is --target-update-period (counted in "
         "gradient updates, not env steps)\n"),
        (["train", "--tasks", "CartPole-v1:lenght=2"], "unknown field 'lenght'"),
        (["train"], "exactly one of --tasks"),
        (["train", "--suite", "classic", "--tasks", "CartPole-v1"], "exactly one of --tasks"),
        (["train", "--suite", "nope"], "unknown suite 'nope'"),
        (["train", "--suite", "classic", "--seeds", "0"], "--seeds must be >= 1"),
        (["train", "--suite", "classic", "--num-envs", "0"], "error: --num-envs must be a positive integer"),
        # settings are named by their flags, the one at fault and any other it names
        (["train", "--suite", "classic", "--eval-every", "7"],
         "error: --eval-every must be a multiple of --num-envs (10: evaluations come between iterations), got 7; "
         "use 10\n"),
        (["transfer", "--source", "/nonexistent", "--tasks", "CartPole-v1", "--mode", "unfreeze", "--unfreeze-at",
          "300000"], "error: --unfreeze-at (300,000) must come before the run's last update (--total-steps 300,000)"),
        # ... but what the user gave stays as given, though it spells a setting
        (["transfer", "--source", "/tmp", "--tasks", "CartPole-v1", "--parts", "num_envs"],
         "error: --parts must name parameter parts among adapter, torso, head; got ('num_envs',)\n"),
        (["plot", "/nonexistent"], "run directory '/nonexistent' does not exist"),
        (["plot", "/tmp"], "has no eval.csv"),
        (["train", "--suite", "classic", "--max-grad-norm", "inf"],
         "error: --max-grad-norm must be finite and > 0, or None (no clipping), got inf\n"),
        (["evaluate", "/nonexistent", "--episodes", "0"], "error: --episodes must be >= 1, got 0"),
        (["train", "--tasks", "CartPole-v1", "--conv-channels", "16"],
         "error: --conv-channels (16,) needs image observations [H, W, C]; the tasks' observations have shape (4,): "
         "leave --conv-channels empty for them"),
        (["train", "--resume", "/nonexistent"], "'/nonexistent' is not a run directory"),
        (["train", "--resume", "/tmp", "--suite", "classic"], "--resume takes tasks, seeds and config"),
        # train's own checks (checkpoints.every, stop_at_step), named by the flags that set them
        (["train", "--suite", "classic", "--checkpoint-every", "-1"],
         "error: --checkpoint-every must be an integer >= 0 (env steps per task; 0 = only at the end), got -1\n"),
        (["train", "--suite", "classic", "--keep-checkpoints", "0"],
         "error: --keep-checkpoints must be an integer >= 1, got 0\n"),
        (["train", "--suite", "classic", "--stop-at-step", "-5"],
         "error: --stop-at-step must be an integer >= 1 (env steps per task), got -5\n"),
        (["train", "--suite", "classic", "--seed", "-3"], "error: --seed must be >= 0 and --seed + --seeds at most"),
        (["train", "--suite", "classic", "--seeds", "2", "--seed", "4294967295"],
         "got --seed 4294967295 with --seeds 2"),
        (["train", "--resume", "/tmp", "--run-dir", "/tmp/elsewhere"],
         "--run-dir: a resume continues in its own directory (/tmp)"),
        (["transfer", "--source", "/nonexistent", "--tasks", "CartPole-v1"],
         "source run directory '/nonexistent' does not exist"),
        (["transfer", "--source", "/tmp", "--tasks", "CartPole-v1", "--l2sp-alpha", "-1"], "--l2sp-alpha must be >= 0"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1", "--modes", "thaw"],
         "unknown modes ['thaw']; allowed: scratch, finetune"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "Catch-bsuite"],
         "no reference return for 'Catch-bsuite'"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1", "--reference", "CartPole-v1"],
         "--reference takes SPEC=RETURN"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1:length=2.5", "--reference",
          "CartPole-v1:length=2.5"],  # RETURN forgotten: the spec read is 'CartPole-v1:length'
         "references name specs that are not target tasks: 'CartPole-v1:length'; the targets are "
         "'CartPole-v1:length=2.5'"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "Acrobot-v1:max_steps_in_episode=1000"],
         "this spec changes max_steps_in_episode"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1:length=2.5", "--reference",
          "CartPole-v1:length=2.50=400", "CartPole-v1:length=2.5=300"],
         "references give target 'CartPole-v1:length=2.5' more than one return: 'CartPole-v1:length=2.50', "
         "'CartPole-v1:length=2.5' all name it"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1:length=2.5", "--reference",
          "CartPole-v1:length=2.5=400", "CartPole-v1:length=2.5=300"],
         "--reference gives 'CartPole-v1:length=2.5' twice; give each target one return"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1:length=2.5", "--reference",
          "CartPole-v1:lenght=2.5=400"], "the targets are 'CartPole-v1:length=2.5'; 'CartPole-v1:lenght=2.5' does not "
                                         "parse: unknown field 'lenght'"),
        # a reference written another way names its target: the study goes on to the next check
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1:length=2.5", "--reference",
          "CartPole-v1:length=2.50=400", "--total-steps", "300000", "--eval-every", "10000", "--last-k", "32"],
         "last_k must be in"),
        # checked before any mode trains: 300k steps evaluated every 10k (and at 0) give 31 evaluations
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1", "--total-steps", "300000",
          "--eval-every", "10000", "--last-k", "32"], "last_k must be in [1, 31] (the number of evaluations"),
        (["train", "--tasks", "CartPole-v1:length=1.0,,gravity=3.0"], "has an empty field"),
        (["sweep", "--suite", "classic", "--grid", "batch_size=32,64"], "batch_size: a static setting"),
        (["sweep", "--suite", "classic", "--grid", "lr=fast"], "'fast' is not a number"),
        (["sweep", "--suite", "classic", "--grid", "gamma.3=0.9"], "task index must be 0..2"),
        (["sweep", "--tasks", "CartPole-v1", "--grid", "lr=1e-3", "--distributed", "--launcher", "local",
          "--run-dir", "/tmp/x"], "--launcher runs its shards as jobs of their own"),
        (["sweep", "--tasks", "CartPole-v1", "--grid", "lr=1e-3", "--distributed"], "--distributed needs --run-dir"),
        (["train", "--tasks", "CartPole-v1", "--distributed"], "--distributed needs --run-dir"),
        (["sweep", "--tasks", "CartPole-v1", "--grid", "lr=1e-3", "--mode", "l2sp"], "--mode and the other transfer"),
        (["sweep", "--tasks", "CartPole-v1", "--grid", "l2sp_alpha=0.1"], "l2sp_alpha: a setting of transfer mode"),
        (["sweep", "--tasks", "CartPole-v1", "--grid", "lr=1e-3", "--static", "batch_size=0"],
         "batch_size must be a positive integer"),
        (["sweep", "--collect", "/tmp"], "/tmp holds no sweep"),
        (["train", "--suite", "classic", "--seeds", "0", "1", "2", "--total-steps", "100"],
         "--seeds takes how many seeds, not a list: --seeds N trains seeds --seed, --seed + 1, ..., --seed + N - 1; "
         "got --seeds 0 1 2: write --seed 0 --seeds 3"),
        (["study", "transfer", "--source", "/tmp", "--tasks", "CartPole-v1", "--seeds", "0", "3", "5"],
         "got --seeds 0 3 5: seeds that are not consecutive need the Python API: mtrl.study.transfer_study(..., "
         "seeds=[0, 3, 5])"),
        (["train", "--suite", "classic", "--seeds=0", "2"], "got --seeds 0 2: seeds that are not consecutive need the "
                                                            "Python API: mtrl.train(..., seeds=[0, 2])"),
    ],
)
def test_bad_input_exits_with_a_clear_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_an_errors_flags_leave_what_the_user_gave_and_quoted_words_as_they_are():
    from mtrl.config import ConfigError

    settings = {"total_steps", "num_envs", "loss_aggregation", "parts"}
    assert ConfigError("total_steps must be a multiple of num_envs, got num_envs").with_flags(settings) == \
        "--total-steps must be a multiple of --num-envs, got num_envs"
    assert ConfigError("parts must not be 'num_envs' in the run's loss_aggregation").with_flags(settings) == \
        "--parts must not be 'num_envs' in the run's --loss-aggregation"
    assert ConfigError("total_steps").with_flags(settings) == "--total-steps"
    flags = {"checkpoints.keep": "--keep-checkpoints", "total_steps": "--total-steps"}  # flags not spelled as names
    assert ConfigError("checkpoints.keep must be below total_steps, got 0").with_flags(flags) == \
        "--keep-checkpoints must be below --total-steps, got 0"
    assert ConfigError("").field == ""


def test_a_resume_refuses_other_seeds_than_the_runs(tmp_path, capsys):
    """--seeds/--seed on a resume must name the run's own seeds (they are not what the run trains otherwise)."""
    import dataclasses

    from mtrl.config import DQNConfig

    meta = {"config": dataclasses.asdict(DQNConfig()), "tasks": ["CartPole-v1"], "seeds": [0, 1]}
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(tmp_path), "--seeds", "3", "--seed", "5"])
    assert ("--seeds/--seed: the run in" in (err := capsys.readouterr().err)
            and "trains seeds [0, 1], not [5, 6, 7]" in err)
    with pytest.raises(SystemExit):  # the run's own seeds pass this check (and stop later: no checkpoint here)
        main(["train", "--resume", str(tmp_path), "--seeds", "2"])
    assert "--seeds/--seed" not in capsys.readouterr().err


def test_mtrl_warnings_are_one_line_each_once_and_others_pass_through(capsys, recwarn):
    import warnings

    from mtrl import config
    from mtrl.cli import mtrl_warnings

    with mtrl_warnings():
        for stacklevel in (1, 1, 2):  # twice from mtrl/config.py, once from this test
            warnings.warn_explicit("no update", UserWarning, config.__file__, 10 + stacklevel)
        warnings.warn_explicit("elsewhere", UserWarning, __file__, 1)
    err = capsys.readouterr().err
    assert err.count("mtrl: warning: no update") == 1 and "Traceback" not in err
    assert "mtrl: warning: elsewhere" not in err  # passed on as usual (here to pytest's record)
    assert [str(w.message) for w in recwarn] == ["elsewhere"]


def test_a_config_warning_names_the_settings_as_flags(capsys, tmp_path):
    with pytest.raises(SystemExit):  # warned while checking the config, then stopped by --keep-checkpoints 0
        main(["train", "--suite", "classic", "--total-steps", "1000", "--batch-size", "512", "--buffer-size", "250",
              "--keep-checkpoints", "0", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert ("mtrl: warning: --learning-starts (5,000) leaves no gradient update in --total-steps (1,000) with "
            "--update-every 1: this run does not learn\n") in err
    assert "mtrl: warning: --batch-size (512) is larger than --buffer-size (250): every batch repeats" in err


def test_the_recorded_command_line_leaves_out_what_must_not_be_rerun(monkeypatch):
    argv = ["sweep", "--grid", "lr=1e-4,3e-4", "--stop-at-step", "128", "--overwrite", "--stop_at_step=64",
            "--no-overwrite", "--run-dir", "my runs", "--seeds", "3"]
    assert cli.command_line(argv) == shlex.join(["mtrl", *argv])
    assert cli.command_line(argv, cli.NOT_RERUN) == "mtrl sweep --grid lr=1e-4,3e-4 --seeds 3"
    assert cli.command_line(argv, cli.NOT_RERUN, run_dir="/runs/sweep 1") == (
        "mtrl sweep --grid lr=1e-4,3e-4 --seeds 3 --run-dir '/runs/sweep 1'")
    assert cli.command_line() is None  # outside `main`: nothing is being run from the command line
    monkeypatch.setattr(sys, "argv", ["/site-packages/mtrl/__main__.py", *argv])  # python -m mtrl ...
    assert cli.command_line(argv[:3]) == "python -m mtrl sweep --grid lr=1e-4,3e-4"


def test_none_or_null_in_any_case_clears_an_optional_number_and_nothing_else(monkeypatch, capsys):
    commands = []
    monkeypatch.setattr(cli.Train, "run", lambda self: commands.append(self))
    main(["train", "--suite", "classic", "--max-grad-norm", "none", "--stop-at-step=NULL", "--run-dir", "none"])
    main(["train", "--suite", "classic", "--max_grad_norm=None", "--task-weights", "none", "--run-dir=none"])
    main(["train", "--suite", "classic", "--task-weights", "1", "2", "3"])
    assert [c.config.max_grad_norm for c in commands] == [None, None, 10.0]
    assert [c.config.task_weights for c in commands] == [None, None, (1.0, 2.0, 3.0)]
    options = commands[0].run_options
    assert options.stop_at_step is None and options.run_dir == "none"  # a path stays a path
    assert commands[1].run_options.run_dir == "none"
    assert {"--max-grad-norm", "--max_grad_norm", "--stop-at-step", "--task-weights"} <= cli.optional_number_flags(
        cli.Train)
    assert not {"--run-dir", "--tasks", "--lr", "--seed", "--epsilon"} & cli.optional_number_flags(cli.Train)
    assert {"--seed", "--step", "--max-steps"} <= cli.optional_number_flags(cli.Render)
    with pytest.raises(SystemExit):  # train's --seed is a number, never None: what was typed stays in the message
        main(["train", "--suite", "classic", "--seed", "none"])
    assert "'none'" in capsys.readouterr().err


def test_version(capsys):
    import mtrl

    main(["--version"])
    assert capsys.readouterr().out == f"mtrl {mtrl.__version__}\n" and mtrl.__version__[0].isdigit()


def test_train_and_plot_from_the_command_line(tmp_path):
    run_dir = tmp_path / "cli_run"
    main(["train", "--tasks", "CartPole-v1", "--seeds", "2", "--total-steps", "256", "--num-envs", "4",
          "--buffer-size", "64", "--batch-size", "8", "--learning-starts", "16", "--torso", "16",
          "--eval-every", "128", "--eval-episodes", "2", "--run-dir", str(run_dir), "--no-progress"])
    for name in ("config.json", "metrics.jsonl", "eval.csv", "summary.json", "summary.md", "curves.png"):
        assert (run_dir / name).exists(), name
    (run_dir / "curves.png").unlink()
    main(["plot", str(run_dir)])
    assert (run_dir / "curves.png").stat().st_size > 10_000


def test_a_run_that_diverges_exits_with_a_message_naming_the_seed_not_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--tasks", "CartPole-v1", "--seed", "1", "--total-steps", "256", "--num-envs", "4",
              "--buffer-size", "64", "--batch-size", "8", "--learning-starts", "160", "--torso", "16",
              "--lr", "1e30", "--max-grad-norm", "1e30", "--eval-every", "128", "--eval-episodes", "2",
              "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("mtrl: error: ") and "seed 1 (run 0) diverged" in err and "Traceback" not in err


def test_sweep_from_the_command_line_writes_one_run_per_setting_and_the_comparison(tmp_path, capsys):
    run_dir = tmp_path / "sweep"
    args = ["sweep", "--tasks", "CartPole-v1", "--grid", "lr=5e-4,1e-3", "--seeds", "2", "--total-steps", "128",
            "--num-envs", "4", "--buffer-size", "64", "--batch-size", "8", "--learning-starts", "16", "--torso", "16",
            "--eval-every", "128", "--eval-episodes", "2", "--run-dir", str(run_dir), "--no-progress"]
    main([*args, "--overwrite"])
    out = capsys.readouterr().out
    # the plan keeps the command that continues the sweep: without --overwrite, which would move it aside, and
    # with the sweep's directory last, as an absolute path
    at = args.index("--run-dir")
    assert json.loads((run_dir / "sweep_plan.json").read_text())["command"] == shlex.join(
        ["mtrl", *args[:at], *args[at + 2:], "--run-dir", str(run_dir)])
    assert "Sweep of 2 settings x 2 seeds" in out and "**best**" in out
    for label in ("lr=0.0005", "lr=0.001"):
        assert json.loads((run_dir / label / "summary.json").read_text())["seeds"] == [0, 1]
    with pytest.raises(SystemExit):  # a sweep directory is not resumed as a plain run
        main(["train", "--resume", str(run_dir)])
    assert "is a sweep" in capsys.readouterr().err
    written = (run_dir / "sweep.md").read_text()
    (run_dir / "sweep.md").unlink()
    main(["sweep", "--collect", str(run_dir)])  # merges the finished shards again, the same table
    assert (run_dir / "sweep.md").read_text() == written and "**best**" in capsys.readouterr().out


def test_study_transfer_from_the_command_line(tmp_path, capsys):
    tiny = ["--num-envs", "4", "--buffer-size", "64", "--batch-size", "8", "--learning-starts", "16", "--torso", "16",
            "--eval-every", "128", "--eval-episodes", "2", "--no-progress", "--seeds", "2"]
    main(["train", "--tasks", "CartPole-v1:length=0.5", "--total-steps", "256", "--run-dir", str(tmp_path / "src"),
          *tiny])
    main(["study", "transfer", "--source", str(tmp_path / "src"), "--tasks", "CartPole-v1:length=1.5",
          "--modes", "frozen", "--total-steps", "256", "--run-dir", str(tmp_path / "study"), *tiny])
    for name in ("transfer.json", "transfer.md", "transfer_curves.png"):
        assert (tmp_path / "study" / name).exists(), name
    assert json.loads((tmp_path / "src" / "config.json").read_text())["command"] == shlex.join(
        ["mtrl", "train", "--tasks", "CartPole-v1:length=0.5", "--total-steps", "256", "--run-dir",
         str(tmp_path / "src"), *tiny])
    table = (tmp_path / "study" / "transfer.md").read_text()
    assert "| scratch | 0.00 [0.00, 0.00] | 0.00 [0.00, 0.00] |" in table and "| frozen |" in table
    scratch_row = next(line for line in table.splitlines() if line.startswith("| scratch |"))
    assert scratch_row.endswith("| — |")  # scratch is not compared with itself: no P(AUC > scratch)
    study = json.loads((tmp_path / "study" / "transfer.json").read_text())
    assert study["modes"] == ["scratch", "frozen"] and len(study["results"]["frozen"]["per_seed"]["auc"]) == 2
    # A finished study is reused, not retrained: the same numbers come back.
    main(["study", "transfer", "--source", str(tmp_path / "src"), "--tasks", "CartPole-v1:length=1.5",
          "--modes", "frozen", "--total-steps", "256", "--run-dir", str(tmp_path / "study"), *tiny])
    assert json.loads((tmp_path / "study" / "transfer.json").read_text())["results"] == study["results"]
    # --stop-at-step stops the study in its first mode (checkpoint saved, no traceback, exit status 0); the same
    # command without it continues and ends with the numbers of the study never stopped.
    capsys.readouterr()
    args = ["study", "transfer", "--source", str(tmp_path / "src"), "--tasks", "CartPole-v1:length=1.5",
            "--modes", "frozen", "--total-steps", "256", "--run-dir", str(tmp_path / "stopped"), *tiny]
    try:
        main([*args, "--stop-at-step", "128"])
    except KeyboardInterrupt as stop:  # would end the whole pytest session, not fail this test
        pytest.fail(f"the study's stop escaped `mtrl study` as an interrupt: {stop}")
    said = capsys.readouterr().out
    assert "study stopped by --stop-at-step in mode scratch at 128 env steps per task; checkpoint saved." in said
    assert "continue with the same command without --stop-at-step" in said
    assert not (tmp_path / "stopped" / "frozen").exists()
    main(args)
    assert json.loads((tmp_path / "stopped" / "transfer.json").read_text())["results"] == study["results"]
    # The same directory with other settings is refused, not silently reused.
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["study", "transfer", "--source", str(tmp_path / "src"), "--tasks", "CartPole-v1:length=1.5",
              "--modes", "frozen", "--total-steps", "512", "--run-dir", str(tmp_path / "study"), *tiny])
    assert "config.total_steps: there 256 vs here 512" in capsys.readouterr().err
