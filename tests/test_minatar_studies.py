"""The MinAtar studies end to end at a tiny budget: every run of the study is trained, the table has one row per
game with each column filled, and a rerun reuses what is there instead of training again."""

import json
import os
import shutil

import numpy as np
import pytest

from mtrl.provenance import ProvenanceMismatchError


def test_multitask_study_trains_single_sum_and_popart_runs_and_reuses_them(tmp_path, capsys):
    from experiments import minatar_multitask

    games = ["Breakout-MinAtar", "SpaceInvaders-MinAtar"]
    argv = ["--budget", "smoke", "--total-steps", "160", "--games", ",".join(games[::-1]), "--run-dir", str(tmp_path),
            "--checkpoint-every", "0"]
    runs = minatar_multitask.main(argv)
    assert set(runs) == {"single", "multi_sum", "multi_popart"} and list(runs["single"]) == games
    multi = json.loads((tmp_path / "multi_popart" / "config.json").read_text())
    assert multi["config"]["loss_aggregation"] == "popart" and multi["tasks"] == games
    assert multi["config"]["conv_channels"] == [16] and multi["config"]["protocol"] == "gymnax"
    single = json.loads((tmp_path / "single" / "Breakout-MinAtar" / "config.json").read_text())
    assert single["tasks"] == ["Breakout-MinAtar"] and single["config"]["loss_aggregation"] == "sum"
    assert multi["checkpoints"]["every"] == 0 and single["checkpoints"]["every"] == 0  # --checkpoint-every reaches runs
    table = (tmp_path / "smoke.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "MinAtar" in line]
    assert len(rows) == 2 and all(line.count("[") == 3 for line in rows)
    assert "gymnax** protocol" in table and "reaches the single-game interval" in table
    steps, curves = minatar_multitask.study_curves(str(tmp_path), games)
    assert list(curves) == ["alone", "multi-task, sum", "multi-task, PopArt"]
    assert all(c.shape == (1, 2, len(steps)) for c in curves.values()) and steps[-1] == 160
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    capsys.readouterr()
    mtime = (tmp_path / "multi_sum" / "summary.json").stat().st_mtime
    minatar_multitask.main(argv)  # everything reused: nothing retrains
    assert (tmp_path / "multi_sum" / "summary.json").stat().st_mtime == mtime
    # a run evaluated as the paper's training episodes act gets a second table, — for the runs that were not
    from mtrl.policy import evaluate_run

    assert "training episodes act" not in table
    evaluate_run(str(tmp_path / "multi_popart"), epsilon=0.1)
    minatar_multitask.main(argv)
    after = (tmp_path / "smoke.md").read_text().split("the measure closest to the paper's curves.")[1]
    rows = [line for line in after.split("\n\n")[1].splitlines() if "MinAtar" in line]
    assert len(rows) == 2 and all(line.count("—") == 2 and line.count("[") == 1 for line in rows), rows
    # --collect: runs finished elsewhere, copied in; the missing ones show as — and nothing trains
    shutil.rmtree(tmp_path / "multi_sum")
    shutil.rmtree(tmp_path / "single" / "SpaceInvaders-MinAtar")
    minatar_multitask.main([*argv, "--collect"])
    assert not (tmp_path / "multi_sum").exists() and not (tmp_path / "single" / "SpaceInvaders-MinAtar").exists()
    table = (tmp_path / "smoke.md").read_text()
    rows = {line.split(" | ")[0][2:]: line for line in table.split("The same runs' last checkpoints")[0].splitlines()
            if line.startswith("| ") and "MinAtar" in line}
    assert rows["Breakout-MinAtar"].count("[") == 2 and rows["SpaceInvaders-MinAtar"].count("[") == 1  # PopArt only
    assert "Not finished yet" in table and "multi_sum" in table and "single (SpaceInvaders-MinAtar)" in table
    assert "on 0 of 1 games" in table or "on 1 of 1 games" in table  # only Breakout has both runs
    with pytest.raises(ProvenanceMismatchError, match="total_steps"):  # a finished run of another experiment
        minatar_multitask.main([*argv[:3], "320", *argv[4:], "--collect"])
    # --only: the runs it names train, the others are collected (a study split into sittings on a lent accelerator)
    minatar_multitask.main([*argv, "--only", "multi_sum"])
    assert (tmp_path / "multi_sum" / "summary.json").exists()
    assert not (tmp_path / "single" / "SpaceInvaders-MinAtar").exists()
    with pytest.raises(SystemExit, match="--only: 'multi' is not a run of this study; choose from multi_popart"):
        minatar_multitask.main([*argv, "--only", "multi"])
    from experiments import minatar_single

    mtime = (tmp_path / "single" / "Breakout-MinAtar" / "summary.json").stat().st_mtime
    single = minatar_single.main([*argv, "--only", "single"])  # SpaceInvaders trains, Breakout's finished run is reused
    assert set(single) == set(games) and all(single.values())
    assert (tmp_path / "single" / "Breakout-MinAtar" / "summary.json").stat().st_mtime == mtime


def test_multi_task_network_sizes_widen_the_multi_task_runs_only(tmp_path, monkeypatch, capsys):
    """--multi-conv-channels/--multi-torso (default: the budget's) reach both multi-task runs' configs and the page;
    the single-game runs keep their network; a bad size is refused by the parser, naming the flag, before anything
    trains."""
    from experiments import minatar_multitask

    configs = {}

    def record(args, games, config, run_dir):
        configs[os.path.relpath(run_dir, tmp_path)] = config

    monkeypatch.setattr(minatar_multitask, "train_or_collect", record)
    monkeypatch.setattr(minatar_multitask, "train_single_games", lambda args, games: {
        game: record(args, [game], args.config, os.path.join(args.out, "single", game)) for game in games})
    argv = ["--budget", "smoke", "--games", "Breakout-MinAtar,SpaceInvaders-MinAtar", "--run-dir", str(tmp_path)]
    minatar_multitask.main([*argv, "--multi-conv-channels", "36", "--multi-torso", "288"])
    assert sorted(configs) == ["multi_popart", "multi_sum", "single/Breakout-MinAtar", "single/SpaceInvaders-MinAtar"]
    for name in ("multi_popart", "multi_sum"):
        assert configs[name].conv_channels == (36,) and configs[name].torso == (288,), name
    assert configs["multi_popart"].loss_aggregation == "popart" and configs["multi_sum"].loss_aggregation == "sum"
    assert all(configs[f"single/{g}"].torso == (128,) and configs[f"single/{g}"].conv_channels == (16,)
               for g in ("Breakout-MinAtar", "SpaceInvaders-MinAtar"))
    page = (tmp_path / "smoke.md").read_text()
    assert "conv [16] -> dense [128] alone, conv [36] -> dense [288] in the multi-task network" in page
    assert json.loads((tmp_path / "smoke.json").read_text())["multi_network"] == {"conv_channels": [36], "torso": [288]}
    configs.clear()
    minatar_multitask.main(argv)  # by default the multi-task network is the single game's
    assert configs["multi_popart"].torso == (128,) and configs["multi_popart"].conv_channels == (16,)
    assert "conv [16] -> dense [128], PopArt" in (tmp_path / "smoke.md").read_text()
    configs.clear()  # the paper budget's multi-task network is √5 times as wide, a width chosen on seeds 0-1
    minatar_multitask.main(["--budget", "paper", *argv[2:4], "--run-dir", str(tmp_path / "paper")])
    assert configs["paper/multi_sum"].conv_channels == (36,) and configs["paper/multi_sum"].torso == (288,)
    assert configs["paper/single/Breakout-MinAtar"].torso == (128,)
    page = (tmp_path / "paper" / "paper.md").read_text()
    assert "Settings chosen on seeds 0–1; reported on seeds 1000–1004 (held out)" in page
    assert "a width chosen on seeds 0, 1 in a 400k-step pilot" in page
    configs.clear()
    with pytest.raises(SystemExit):
        minatar_multitask.main([*argv, "--multi-torso", "288x0"])
    assert not configs and "argument --multi-torso: layer sizes: '288x0' is not layer sizes" in capsys.readouterr().err
    minatar_multitask.main([*argv, "--seed", "0", "--seeds", "2", "--multi-conv-channels", "36", "--multi-torso",
                            "288"])  # the wide network on the seeds that chose its width
    assert "NOT held out: seeds 0–1 also chose the settings" in (tmp_path / "smoke.md").read_text()


def test_a_sitting_that_trains_one_single_game_writes_the_page_and_draws_that_game_alone(tmp_path):
    """``--only single/<game>`` with nothing else finished (the first sitting of a study on a lent accelerator): the
    page and the figure show that game's run; the other games' panels are empty (NaN), not an error."""
    from experiments import minatar_multitask

    games = ["Breakout-MinAtar", "SpaceInvaders-MinAtar"]
    minatar_multitask.main(["--budget", "smoke", "--total-steps", "160", "--games", ",".join(games), "--run-dir",
                            str(tmp_path), "--checkpoint-every", "0", "--only", "single/SpaceInvaders-MinAtar"])
    assert not (tmp_path / "single" / "Breakout-MinAtar").exists() and not (tmp_path / "multi_sum").exists()
    steps, curves = minatar_multitask.study_curves(str(tmp_path), games, finished_only=True)
    assert list(curves) == ["alone"] and curves["alone"].shape == (1, 2, len(steps))
    assert np.isnan(curves["alone"][:, 0]).all() and np.isfinite(curves["alone"][:, 1]).all()
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "single (Breakout-MinAtar)" in (tmp_path / "smoke.md").read_text()
    assert minatar_multitask.study_curves(str(tmp_path / "empty"), games, finished_only=True) is None

def test_leave_one_out_transfer_splices_the_other_games_torso_into_the_held_out_one(tmp_path):
    """SpaceInvaders (6 channels, 4 actions) from Breakout (4 channels, 3 actions): the per-game adapters give the
    torso one shape; joint copies the source game's adapter and head into the wider ones."""
    from experiments import minatar_transfer

    studies = minatar_transfer.main(["--budget", "smoke", "--total-steps", "160", "--targets", "SpaceInvaders-MinAtar",
                                     "--games", "Breakout-MinAtar,SpaceInvaders-MinAtar",
                                     "--modes", "scratch,finetune,joint", "--run-dir", str(tmp_path)])
    study = studies["Target: SpaceInvaders-MinAtar"]
    source = json.loads((tmp_path / "SpaceInvaders-MinAtar" / "source" / "config.json").read_text())
    assert source["tasks"] == ["Breakout-MinAtar"]
    assert source["config"]["adapter_size"] == minatar_transfer.ADAPTER_CHANNELS
    assert set(study["modes"]) == {"scratch", "finetune", "joint"}
    assert (tmp_path / "results.md").exists()


def test_leave_one_out_transfer_with_popart_trains_source_and_targets_with_popart_into_files_of_its_own(tmp_path):
    """--aggregation popart: the source and the target runs use PopArt, and the results go to results_popart.*,
    beside (not over) the plain-sum study's results. (Only scratch trains here: every mode's run takes the study's
    config, and `target_config` changes only joint's task weights; the test above trains joint.)"""
    from experiments import minatar_transfer

    minatar_transfer.main(["--budget", "smoke", "--total-steps", "160", "--targets", "SpaceInvaders-MinAtar",
                           "--games", "Breakout-MinAtar,SpaceInvaders-MinAtar", "--modes", "scratch",
                           "--aggregation", "popart", "--run-dir", str(tmp_path)])
    runs = tmp_path / "SpaceInvaders-MinAtar"
    for run in (runs / "source", runs / "study" / "scratch"):
        assert json.loads((run / "config.json").read_text())["config"]["loss_aggregation"] == "popart", run
    assert (tmp_path / "results_popart.md").exists() and not (tmp_path / "results.md").exists()
    assert "popart loss aggregation" in (tmp_path / "results_popart.md").read_text()
