import json
import os

from experiments import classic_multitask, quickstart


def test_quickstart_runs_and_writes_its_run_directory(tmp_path, capsys):
    summary = quickstart.main(["--seeds", "1", "--total-steps", "400", "--run-dir", str(tmp_path)])
    assert list(summary["tasks"]) == [f"CartPole-v1:length={x}" for x in (0.25, 0.5, 1.0, 1.5)]
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["experiment"] == "quickstart"
    # the command that continues it, as `mtrl status` shows it (the arguments parsed, not the test runner's)
    assert recorded["command"] == f"python -m experiments.quickstart --seeds 1 --total-steps 400 --run-dir {tmp_path}"
    out = capsys.readouterr().out
    assert "| CartPole-v1:length=1.5 |" in out and f"{tmp_path}/curves.png" in out


def _summary(name, values):
    lo, hi = min(values), max(values)
    return {"tasks": {name: {"final_return": {"mean": sum(values) / len(values), "iqm": 0.0, "ci_low": lo,
                                              "ci_high": hi, "per_seed": values}}}}


def test_classic_comparison_is_a_probability_of_improvement_with_an_interval():
    multi = {"tasks": {**_summary("A", [110.0, 120.0, 130.0, 140.0, 150.0])["tasks"],
                       **_summary("B", [10.0, 20.0, 30.0, 40.0, 50.0])["tasks"],
                       **_summary("C", [1.0, 3.0, 5.0, 7.0, 9.0])["tasks"]}}
    single = {"A": _summary("A", [10.0, 20.0, 30.0, 40.0, 50.0]), "B": _summary("B", [60.0, 70.0, 80.0, 90.0, 99.0]),
              "C": _summary("C", [2.0, 4.0, 6.0, 8.0, 10.0])}
    rows = {r["task"]: r for r in classic_multitask.compare(multi, single)}
    assert rows["A"]["p_multi_better"] == 1.0 and rows["A"]["verdict"] == "better"
    assert rows["B"]["p_multi_better"] == 0.0 and rows["B"]["verdict"] == "worse"
    # interleaved values: P = 10/25 = 0.4, and its interval straddles 1/2
    assert rows["C"]["p_multi_better"] == 0.4 and rows["C"]["verdict"] == "no clear difference"
    low, high = rows["C"]["p_multi_better_ci"]
    assert low < 0.5 < high


def test_mountaincar_sweep_trains_every_setting_and_seed_in_one_program(tmp_path):
    from experiments import mountaincar_exploration

    result = mountaincar_exploration.main(["--seeds", "2", "--total-steps", "400", "--run-dir", str(tmp_path)])
    assert list(result["settings"]) == ["eps_end=0.1", "eps_end=0.2"]
    assert all(len(s["per_seed"]) == 2 for s in result["settings"].values())
    assert (tmp_path / "sweep.md").exists()


def test_the_defaults_are_the_robustness_studys_chosen_row_and_failures_are_counted():
    """The library defaults are exactly the variant the robustness study chose (so that row is the defaults on
    held-out seeds), and the baseline is the earlier defaults the other studies keep; the table counts finals below
    400 as failures and below 475 as misses."""
    import dataclasses

    from experiments import robustness
    from experiments.common import EARLIER_DEFAULTS
    from mtrl.config import DQNConfig

    assert robustness.variant_config(robustness.DEFAULTS_VARIANT, DQNConfig().total_steps) == DQNConfig()
    assert robustness.BASELINE == dataclasses.replace(DQNConfig(**EARLIER_DEFAULTS), layer_norm=False, tau=1.0,
                                                      target_update_period=100)
    assert dataclasses.replace(robustness.BASELINE, n_step=3, buffer_size=50_000, lr_end_fraction=0.5,
                               eps_end=0.01) == DQNConfig()
    tasks = ["CartPole-v1:length=0.25", "CartPole-v1:length=1.5"]
    summary = {"tasks": {tasks[0]: {"final_return": {"per_seed": [500.0, 480.0, 450.0]}},
                         tasks[1]: {"final_return": {"per_seed": [399.0, 500.0, 120.0]}}}}
    row = robustness.table({"v": summary}, tasks, 3).splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["v", "2", "3"] and cells[3].endswith("/ 450") and cells[4].endswith("/ 120")


def test_study_checkpoint_option_defaults_to_the_study_and_refuses_negative_values(capsys):
    import pytest

    from experiments.common import parse_study_args
    from mtrl.config import DQNConfig

    assert parse_study_args("doc", "s", DQNConfig(), []).checkpoints.every == 50_000  # train's default
    assert parse_study_args("doc", "s", DQNConfig(), [], checkpoint_every=500_000).checkpoints.every == 500_000
    assert parse_study_args("doc", "s", DQNConfig(), ["--checkpoint-every", "0"]).checkpoints.every == 0
    with pytest.raises(SystemExit):
        parse_study_args("doc", "s", DQNConfig(), ["--checkpoint-every", "-1"])
    assert "error: --checkpoint-every must be an integer >= 0 (env steps per task; 0 = only at the end), got -1" in \
        capsys.readouterr().err  # the same words as `mtrl train`'s (both are `CheckpointOptions.validate`'s)
    with pytest.raises(SystemExit):  # a study that keeps no checkpoints does not offer the option
        parse_study_args("doc", "s", DQNConfig(), ["--checkpoint-every", "0"], checkpointed=False)


def test_a_study_refuses_seeds_outside_uint32_naming_the_flag(capsys):
    import pytest

    from experiments.common import parse_study_args
    from mtrl.config import DQNConfig

    for argv in (["--seed", "-1"], ["--seed", str(2**32 - 2), "--seeds", "3"]):
        with pytest.raises(SystemExit):
            parse_study_args("doc", "s", DQNConfig(), argv)
        assert "error: --seed must be >= 0 and --seed + --seeds at most 2**32" in capsys.readouterr().err
    assert parse_study_args("doc", "s", DQNConfig(), ["--seed", str(2**32 - 3), "--seeds", "3"]).seeds[-1] == 2**32 - 1


def test_a_study_option_may_have_aliases():
    from experiments.common import parse_study_args
    from mtrl.config import DQNConfig

    extra = {("--loss-aggregation", "--aggregation"): {"choices": ("sum", "popart"), "default": "sum"}}
    for flag in ("--loss-aggregation", "--aggregation"):  # the old name keeps published commands working
        assert parse_study_args("doc", "s", DQNConfig(), [flag, "popart"], extra=extra).options == {
            "loss_aggregation": "popart"}


def test_a_study_refuses_a_total_steps_its_config_cannot_run_naming_the_flag(capsys):
    """Checked when the arguments are parsed, before anything trains: a usage error, not a traceback (the studies'
    common parser and the Huber probe's own)."""
    import pytest

    from experiments import huber_probe
    from experiments.common import parse_study_args
    from mtrl.config import DQNConfig

    for parse in (lambda argv: parse_study_args("doc", "s", DQNConfig(), argv), huber_probe.main):
        for value, message in (("7", "--total-steps must be a multiple of num_envs (10: "),
                               ("0", "--total-steps must be a positive integer, got 0\n")):  # the config's words
            with pytest.raises(SystemExit) as exc:
                parse(["--total-steps", value])
            assert exc.value.code == 2
            assert f"error: {message}" in capsys.readouterr().err


def test_a_transfer_setting_the_budget_cannot_act_on_is_a_usage_error_before_the_source_trains(tmp_path):
    """`--total-steps 20000` leaves the CartPole transfer's unfreeze point (30k) after the targets' last update:
    refused before the source run trains (no source directory), and the command exits 2 with the message, no
    traceback."""
    import os
    import subprocess
    import sys

    import pytest

    from experiments import cartpole_transfer
    from mtrl.config import ConfigError

    with pytest.raises(ConfigError, match="unfreeze_at"):
        cartpole_transfer.main(["--total-steps", "20000", "--seeds", "1", "--run-dir", str(tmp_path)])
    assert not (tmp_path / "source").exists()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "experiments.cartpole_transfer", "--total-steps", "20000",
                           "--run-dir", str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert ("cartpole_transfer.py: error: unfreeze_at (30,000) must come before the run's last update "
            "(--total-steps 20,000)") in proc.stderr


def test_results_files_name_run_directories_relative_to_the_working_directory(tmp_path):
    """A published results.json names no directory of the host that wrote it: absolute paths inside the working
    directory become relative; others (and non-path strings) stay as they are."""
    from experiments.common import portable_paths

    root = str(tmp_path / "mtrl")
    data = {"source_run": f"{root}/runs/study/source", "runs": [f"{root}/runs/a", "/elsewhere/b"],
            "nested": {"path": f"{root}/../mtrl/runs/c", "name": "CartPole-v1", "steps": 5}}
    assert portable_paths(data, root) == {
        "source_run": "runs/study/source", "runs": ["runs/a", "/elsewhere/b"],
        "nested": {"path": "runs/c", "name": "CartPole-v1", "steps": 5}}
    assert portable_paths({"p": f"{root}2/x"}, root) == {"p": f"{root}2/x"}  # a sibling sharing the prefix


def test_a_study_may_replace_the_checkpoint_options_of_its_transfer_runs(monkeypatch, tmp_path):
    """acrobot_transfer checkpoints its target runs at every evaluation (its curves read them) while the source
    keeps the study's options; passing its own used to fail with "multiple values for keyword 'checkpoints'"."""
    import mtrl.study
    from experiments import common
    from mtrl.config import DQNConfig
    from mtrl.trainer import CheckpointOptions

    calls = {}
    monkeypatch.setattr(common, "train_or_reuse", lambda *a, **kw: calls.setdefault("source", kw))
    monkeypatch.setattr(mtrl.study, "transfer_study", lambda *a, **kw: calls.setdefault("study", kw))
    args = common.parse_study_args("doc", "acrobot_transfer", DQNConfig(), ["--run-dir", str(tmp_path),
                                                                            "--checkpoint-every", "4000"])
    own = CheckpointOptions(every=1000, keep=60)
    common.pretrain_and_study(args, str(tmp_path), ["CartPole-v1"], ["Acrobot-v1"], DQNConfig(), DQNConfig(),
                              checkpoints=own)
    assert calls["study"]["checkpoints"] == own and calls["source"]["checkpoints"] == args.checkpoints
    calls.clear()
    common.pretrain_and_study(args, str(tmp_path), ["CartPole-v1"], ["Acrobot-v1"], DQNConfig(), DQNConfig())
    assert calls["study"]["checkpoints"] == args.checkpoints == CheckpointOptions(every=4000)


def test_a_page_sums_the_training_time_of_its_own_runs_not_of_every_run_sharing_its_directory(tmp_path):
    """classic_multitask's sum and PopArt pages share the single-task runs of one directory; each page's header
    counts its multi-task run and those, not the other page's multi-task run."""
    from experiments.common import StudyArgs, provenance_header
    from mtrl.config import DQNConfig

    def finished_run(name, wall_s, commit):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"wall_s": wall_s, "wall_s_all_sittings": wall_s}))
        (tmp_path / name / "config.json").write_text(json.dumps({"source": {"commit": commit, "dirty": False}}))

    finished_run("multi_task", 600.0, "a" * 40)
    finished_run("multi_task_popart", 6000.0, "b" * 40)
    finished_run("single_CartPole-v1", 120.0, "a" * 40)
    args = StudyArgs("classic_multitask", DQNConfig(), [0], (), str(tmp_path), False, False, {})

    def header_line(start, runs=None):
        return next(line for line in provenance_header(args, runs).splitlines() if line.startswith(start))

    own = [str(tmp_path / "multi_task"), str(tmp_path / "single_CartPole-v1")]
    assert header_line("- training wall time", own).startswith("- training wall time: 12.0 min (sum over the 2 runs")
    assert header_line("- runs trained from", own) == f"- runs trained from: commit {'a' * 12}"
    assert header_line("- training wall time").startswith("- training wall time: 112.0 min (sum over the 3 runs")
    overlapping = [own[0], own[0] + "/", str(tmp_path)]  # a run named twice and inside another root counts once
    assert header_line("- training wall time", overlapping).startswith("- training wall time: 112.0 min (sum over "
                                                                      "the 3 runs")


def test_the_classic_and_transfer_pages_name_exactly_the_runs_they_report(monkeypatch, tmp_path):
    from experiments import common
    from experiments.common import study_runs

    trained, written = [], {}
    monkeypatch.setattr(classic_multitask, "train_or_reuse", lambda tasks, config, seeds, run_dir, *a, **k: (
        trained.append(run_dir) or _summary(tasks[0], [1.0, 2.0]) if len(tasks) == 1 else
        {"tasks": {t: _summary(t, [1.0, 2.0])["tasks"][t] for t in tasks}, "wall_s": 1.0}))
    monkeypatch.setattr(classic_multitask, "write_study_results", lambda *a, runs=None, **k: written.update(runs=runs))
    classic_multitask.main(["--run-dir", str(tmp_path), "--loss-aggregation", "popart"])
    assert written["runs"] == [str(tmp_path / "multi_task_popart"), *trained]
    assert len(trained) == len(classic_multitask.SPECS)

    import mtrl.study

    monkeypatch.setattr(common, "write_study_results", lambda *a, runs=None, **k: written.update(runs=runs))
    monkeypatch.setattr(mtrl.study, "study_markdown", lambda study: "")
    studies = {f"Target: {game}": {"source_run": f"/r/{game}/source", "modes": ["scratch", "finetune"]}
               for game in ("Seaquest", "Breakout")}
    args = common.StudyArgs("minatar_transfer", None, [0], (), "/r", False, False, {})
    common.publish_transfer(args, studies, "title")
    assert written["runs"] == [*study_runs(studies["Target: Seaquest"]), *study_runs(studies["Target: Breakout"])]
    assert study_runs(studies["Target: Seaquest"]) == [
        "/r/Seaquest/source", "/r/Seaquest/study/scratch", "/r/Seaquest/study/finetune"]  # not modes left out


def test_a_stopped_study_ends_with_one_line_and_status_130_not_a_traceback(capsys, monkeypatch):
    import sys

    import pytest

    from experiments.common import run

    monkeypatch.setattr(sys, "argv", ["study.py"])

    def stopped():
        raise KeyboardInterrupt("study: runs/x stopped at 100 env steps per task (checkpoint saved); rerun the same "
                                "command to continue")

    with pytest.raises(SystemExit) as exc:
        run(stopped)
    assert exc.value.code == 130
    assert capsys.readouterr().err == ("study.py: stopped: study: runs/x stopped at 100 env steps per task (checkpoint "
                                       "saved); rerun the same command to continue\n")

    def ctrl_c():  # a bare Ctrl-C outside training
        raise KeyboardInterrupt

    with pytest.raises(SystemExit):
        run(ctrl_c)
    assert capsys.readouterr().err == "study.py: stopped: interrupted\n"


def test_a_studys_config_warnings_are_one_line_each_naming_its_flag(capsys, monkeypatch):
    """A smoke budget's run without updates is warned as `mtrl` warns it; --total-steps is the study's flag, the
    other settings are the config's names (the study has no flags for them)."""
    import sys

    from experiments.common import run
    from mtrl.config import DQNConfig
    from mtrl.trainer import Trainer

    monkeypatch.setattr(sys, "argv", ["/x/study.py"])
    config = DQNConfig(total_steps=1000, learning_starts=5000)
    run(lambda: [Trainer.create(["CartPole-v1"], config) for _ in range(2)])  # warned in mtrl, twice
    assert capsys.readouterr().err == (
        "study.py: warning: learning_starts (5,000) leaves no gradient update in --total-steps (1,000) with "
        "update_every 1: this run does not learn\n")


def test_the_command_that_continues_a_study_names_its_directory_from_anywhere(tmp_path, monkeypatch):
    """Results files show the command as typed; a run's config.json the one `mtrl status` offers, whose --run-dir
    is the study's directory as an absolute path, also where the study chose a default one."""
    from experiments.common import parse_study_args, study_command
    from mtrl.config import DQNConfig

    monkeypatch.chdir(tmp_path)
    args = parse_study_args("doc", "quickstart", DQNConfig(), ["--seeds", "2"])
    assert args.out.startswith(os.path.join("runs", "quickstart", ""))
    assert study_command("quickstart") == "python -m experiments.quickstart --seeds 2"
    assert study_command("quickstart", continuing=True) == (
        f"python -m experiments.quickstart --seeds 2 --run-dir {tmp_path / args.out}")
    parse_study_args("doc", "quickstart", DQNConfig(), ["--run-dir=my runs", "--seeds", "2"])
    assert study_command("quickstart", continuing=True) == (
        f"python -m experiments.quickstart --seeds 2 --run-dir '{tmp_path / 'my runs'}'")
