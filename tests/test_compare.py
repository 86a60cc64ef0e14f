"""`mtrl.compare` (`mtrl compare`): runs' evaluation curves side by side, one table at a shared step."""

import json
import os
import re
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest

import mtrl
from mtrl.cli import main
from mtrl.compare import compare_runs, parse_run_arguments
from mtrl.statistics import iqm


def write_run(run_dir, returns: dict, epsilon: float = 0.0, first_seed: int = 1000, **config):
    """A run directory as `mtrl train` leaves it, for what `compare` reads: eval.csv rows ``returns[task][step] =
    [per seed]`` (seeds ``first_seed``, ...) and config.json's seeds and config (eval_epsilon, ``config``)."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "eval.csv"), "w") as f:
        f.write("step,task,seed,return\n")
        for task, by_step in returns.items():
            for step, values in by_step.items():
                for seed, value in enumerate(values):
                    f.write(f"{step},{task},{first_seed + seed},{value}\n")
    seeds = len(next(iter(next(iter(returns.values())).values())))
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"config": {"eval_epsilon": epsilon, **config}, "tasks": list(returns),
                   "seeds": list(range(first_seed, first_seed + seeds))}, f)
    return str(run_dir)


@pytest.fixture
def runs(tmp_path):
    """A two-game run evaluated to step 20, and one single-game run per game evaluated to 30 (more seeds)."""
    multi = write_run(tmp_path / "multi", {"A": {0: [0, 0, 0], 10: [1, 2, 3], 20: [4, 5, 9]},
                                           "B": {0: [0, 0, 0], 10: [5, 5, 5], 20: [6, 6, 7]}})
    single_a = write_run(tmp_path / "single" / "A", {"A": {0: [0] * 4, 10: [3, 3, 3, 3], 20: [10, 11, 12, 40],
                                                           30: [50] * 4}})
    single_b = write_run(tmp_path / "single" / "B", {"B": {0: [0] * 4, 10: [1, 1, 1, 1], 20: [1, 2, 2, 9],
                                                           30: [2] * 4}})
    return tmp_path, multi, single_a, single_b


def test_each_task_is_compared_at_the_last_step_every_variant_reached(runs):
    tmp_path, multi, single_a, single_b = runs
    out = tmp_path / "out"
    result = compare_runs({"multi": multi, "single": [single_a, single_b]}, str(out))
    a, b = result["tasks"]["A"], result["tasks"]["B"]
    assert a["step"] == 20 and b["step"] == 20  # single's step 30 is not shared
    assert a["variants"]["multi"]["iqm"] == pytest.approx(iqm(np.array([4, 5, 9])))
    assert a["variants"]["single"]["iqm"] == pytest.approx(11.5)  # the middle two of 10, 11, 12, 40
    assert a["variants"]["single"]["per_seed"] == [10, 11, 12, 40]
    assert a["probability_of_improvement"] == {"single": 1.0}  # every single seed beats every multi seed
    # B: single's seeds 1, 2, 2, 9 vs multi's 6, 6, 7: only 9 beats them -> 3 of 12 pairs
    assert b["probability_of_improvement"]["single"] == pytest.approx(3 / 12)
    assert result["variants"]["single"]["A"] == {"runs": [single_a], "seeds": 4, "last_step": 30}
    assert result["measure"] == "greedy return"
    assert mtrl.compare_runs is compare_runs  # the package's front door
    assert json.loads((out / "compare.json").read_text()) == json.loads(json.dumps(result))
    md = (out / "compare.md").read_text()
    assert "| task | step | multi | single | P(single > multi) |" in md
    assert "| A | 20 | 6 [" in md and "| 0.25 |" in md
    assert (out / "compare.png").stat().st_size > 10_000


def test_variants_on_other_schedules_meet_at_the_last_step_all_reached(tmp_path):
    """Evaluated every 10 to 100 and every 12 to 96: compared at 96, the first at 90 (and the table says so), not at
    the last step both share (60)."""
    every_10 = write_run(tmp_path / "a", {"A": {s: [s, s + 1] for s in range(0, 101, 10)}})
    every_12 = write_run(tmp_path / "b", {"A": {s: [s, s + 2] for s in range(0, 97, 12)}})
    result = compare_runs([every_10, every_12], str(tmp_path / "o"))
    row = result["tasks"]["A"]
    assert row["step"] == 96 and row["steps"] == {"a": 90, "b": 96}
    assert row["variants"]["a"]["per_seed"] == [90, 91] and row["variants"]["b"]["per_seed"] == [96, 98]
    assert "| A | 96 | 90.5 [90, 91] (at 90) | 97 [96, 98] | 1.00 |" in (tmp_path / "o" / "compare.md").read_text()


def test_a_run_writing_its_evaluation_now(tmp_path):
    """A last evaluation some seeds or tasks lack yet, and a last line without its newline, are left out; a gap
    before later complete steps is an error."""
    run = write_run(tmp_path / "run", {"A": {0: [1, 2], 10: [3, 4]}, "B": {0: [5, 6], 10: [7, 8]}})
    with open(os.path.join(run, "eval.csv"), "a") as f:
        f.write("20,A,1000,9\n20,A,1001,10\n20,B,1000,11\n20,B,10")  # B's second seed half-written
    result = compare_runs([run], str(tmp_path / "o"))
    assert result["tasks"]["A"]["step"] == 20 and result["tasks"]["B"]["step"] == 10
    assert result["tasks"]["A"]["variants"]["run"]["per_seed"] == [9, 10]
    gap = write_run(tmp_path / "gap", {"A": {0: [1, 2], 10: [3, "nan"], 20: [5, 6]}})
    with pytest.raises(ValueError, match=r"eval.csv lacks a return of 'A' at step 10 .*though later steps"):
        compare_runs([gap], str(tmp_path / "o"))


def test_python_inputs(runs):
    tmp_path, multi, single_a, single_b = runs
    assert list(compare_runs(multi, str(tmp_path / "o"))["variants"]) == ["multi"]  # one directory, not its letters
    result = compare_runs({"s": str(tmp_path / "single" / "*"), "m": [multi, multi + "/."]}, str(tmp_path / "o"))
    assert [info["runs"] for info in result["variants"]["s"].values()] == [[single_a], [single_b]]
    assert {tuple(info["runs"]) for info in result["variants"]["m"].values()} == {(multi,)}
    for runs_given, message in [({"x": str(tmp_path / "nowhere")}, "does not exist"),
                                ({"x": str(tmp_path / "none*")}, "matches no directory"),
                                ({"x": []}, "variant 'x' has no runs"), ({}, "no runs to compare")]:
        with pytest.raises(ValueError, match=message):
            compare_runs(runs_given, str(tmp_path / "o"))


def test_a_variant_pools_the_seeds_of_runs_of_one_setting_and_the_page_names_what_differs(tmp_path):
    """Seeds 1000-1001 and 1002-1004 of one setting (one evaluated also at 30) pool into five seeds at the steps both
    evaluated; the settings that differ between variants are listed, and few seeds get their caveat."""
    first = write_run(tmp_path / "lr1" / "s0", {"A": {0: [0, 0], 10: [1, 2], 20: [3, 4]}}, lr=0.001)
    more = write_run(tmp_path / "lr1" / "s2", {"A": {0: [0] * 3, 20: [5, 6, 7], 30: [9] * 3}}, first_seed=1002,
                     lr=0.001)
    other = write_run(tmp_path / "lr3", {"A": {0: [0, 0], 20: [8, 9]}}, lr=0.003)
    result = compare_runs({"lr1": [first, more], "lr3": other}, str(tmp_path / "o"))
    assert result["variants"]["lr1"]["A"] == {"runs": [first, more], "seeds": 5, "last_step": 20}
    assert result["tasks"]["A"]["variants"]["lr1"]["per_seed"] == [3, 4, 5, 6, 7]
    assert result["settings_that_differ"] == {"lr": {"lr1": 0.001, "lr3": 0.003}}
    md = (tmp_path / "o" / "compare.md").read_text()
    assert "| lr | 0.001 | 0.003 |" in md and "With 2 seeds the 95% interval is not meaningful" in md
    alike = compare_runs({"a": first, "b": more}, str(tmp_path / "o"))
    assert alike["settings_that_differ"] == {}
    assert "The variants' runs share every setting" in (tmp_path / "o" / "compare.md").read_text()


def test_a_chosen_step_and_tasks(runs):
    tmp_path, multi, single_a, single_b = runs
    result = compare_runs({"multi": multi, "single": [single_a, single_b]}, str(tmp_path / "o"), step=10,
                          tasks=["B"])
    assert list(result["tasks"]) == ["B"] and result["tasks"]["B"]["step"] == 10
    assert result["tasks"]["B"]["variants"]["single"]["iqm"] == 1.0
    assert list(result["variants"]["multi"]) == ["B"]
    with pytest.raises(ValueError, match=r"step 30: variant\(s\) \['multi'\] have no evaluation of 'A' there; steps "
                                         r"all variants evaluated: \[0, 10, 20\]"):
        compare_runs({"multi": multi, "single": [single_a, single_b]}, str(tmp_path / "o"), step=30)
    with pytest.raises(ValueError, match=r"tasks \['C'\] are in none of the runs; their tasks: \['A', 'B'\]"):
        compare_runs({"multi": multi}, str(tmp_path / "o"), tasks=["C"])


def test_a_task_only_some_variants_have_is_drawn_and_tabled_for_those(runs, monkeypatch):
    tmp_path, multi, single_a, _ = runs
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *args, **kwargs: figures.append(fig))
    result = compare_runs({"single": single_a, "multi": multi}, str(tmp_path / "o"))
    assert result["tasks"]["B"]["variants"].keys() == {"multi"}
    assert result["tasks"]["B"]["probability_of_improvement"] == {}  # the first variant lacks B
    assert [len(ax.lines) for ax in figures[0].axes[:2]] == [2, 1]
    assert "| B | 20 | — | 6.333 [6, 7] | — |" in (tmp_path / "o" / "compare.md").read_text()


def test_refusals_before_anything_is_written(runs):
    tmp_path, multi, single_a, _ = runs
    greedy_b = write_run(tmp_path / "other" / "A", {"A": {0: [1]}}, epsilon=0.0)
    noisy = write_run(tmp_path / "noisy", {"A": {0: [1]}}, epsilon=0.05)
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=r"the variants evaluate at different ε \(multi: 0, noisy: 0.05\)"):
        compare_runs({"multi": multi, "noisy": noisy}, str(out))
    with pytest.raises(ValueError, match=r"variant 'x': its runs evaluate at different ε"):
        compare_runs({"x": [single_a.replace("single/A", "single/B"), noisy]}, str(out))
    with pytest.raises(ValueError, match=r"variant 'x': task 'A' has seed\(s\) \['1000'\] in two of its runs"):
        compare_runs({"x": [single_a, greedy_b]}, str(out))
    with pytest.raises(ValueError, match=r"run .*multi is in two variants \('a' and 'b'\): a run compared with itself"):
        compare_runs({"a": multi, "b": [single_a, multi + "/"]}, str(out))
    with pytest.raises(ValueError, match="compare runs trained with the same --eval-epsilon"):
        compare_runs([multi, noisy], str(out))
    with pytest.raises(ValueError, match=r"run '.*single' has no eval.csv .*a study's or sweep's runs are its "):
        compare_runs({"x": str(tmp_path / "single")}, str(out))
    assert not out.exists()


def test_command_line_runs(runs, monkeypatch):
    tmp_path, multi, single_a, single_b = runs
    monkeypatch.chdir(tmp_path)
    setting = write_run(tmp_path / "lr=0.001,gamma.1=0.9", {"A": {0: [1]}})
    assert parse_run_arguments(["multi", "single=single/*", "solo=single/A", setting]) == {
        "multi": ["multi"], "single": ["single/A", "single/B"], "solo": ["single/A"], "lr=0.001,gamma.1=0.9": [setting]}
    assert parse_run_arguments(["s=single/B", "s=single/A", "s=./single/B/"]) == {"s": ["single/B", "single/A"]}
    assert parse_run_arguments([f"lr=0.001,gamma.1=0.9={setting}", "lr=0.1=multi"]) == {
        "lr=0.001,gamma.1=0.9": [setting], "lr=0.1": ["multi"]}  # a label may hold '='
    assert parse_run_arguments(["single/*"]) == {"A": ["single/A"], "B": ["single/B"]}  # each match a variant
    os.makedirs("opt=[adam]")
    assert parse_run_arguments(["x=opt=[[]adam]"]) == {"x": ["opt=[adam]"]}
    for arguments, message in [
            (["nowhere"], "run 'nowhere' is not a directory; give DIR or LABEL=DIR"),
            (["x=nowhere"], "run directory 'nowhere' (label 'x') does not exist"),
            (["x=nowhere/*"], "run pattern 'nowhere/*' (label 'x') matches no directory"),
            (["x=op*[adam]"], "matches no directory (a literal [ in a pattern is written [[])"),
            (["single/A", "single/A"], "two variants are named 'A'"),
            (["A=multi", "single/A"], "two variants are named 'A'"),
            (["single/A", "A=multi"], "label 'A' is also the name of run single/A, given without a label"),
            (["a/b=multi"], "run 'a/b=multi' is not a directory")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_run_arguments(arguments)


def test_compare_from_the_command_line(runs, capsys):
    tmp_path, multi, single_a, single_b = runs
    main(["compare", f"multi={multi}", f"single={tmp_path}/single/*", "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert "| A | 20 | 6 [" in out and f"written: {tmp_path / 'cli' / 'compare.png'}" in out
    with pytest.raises(SystemExit):
        main(["compare", "nowhere"])
    assert "mtrl: error: run 'nowhere' is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare"])
    assert "mtrl: error: no runs to compare: give at least one run directory" in capsys.readouterr().err


def test_comparing_from_the_command_line_does_not_load_jax(runs):
    """`mtrl compare` (and `mtrl --help`) reads CSV and JSON only: the CLI module imports no jax, nor does compare."""
    tmp_path, multi, single_a, single_b = runs
    script = ("import sys; from mtrl.cli import main; main(sys.argv[1:]); "
              "assert 'jax' not in sys.modules, [m for m in sys.modules if m.startswith('jax')][:3]")
    done = subprocess.run([sys.executable, "-c", script, "compare", multi, single_a, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "compare.md").exists()
