from mtrl.logger import short_names, summary_markdown


def _summary(seeds):
    values = [100.25 + s for s in range(len(seeds))]
    final = {"mean": sum(values) / len(values), "iqm": values[0], "ci_low": min(values), "ci_high": max(values),
             "per_seed": values}
    return {"tasks": {"CartPole-v1": {"final_return": final}}, "seeds": seeds, "env_steps_per_task": 1000,
            "wall_s": 1.0, "compile_s": 0.5, "env_steps_per_s": 1000.0}


def test_summary_says_when_an_interval_over_few_seeds_is_not_meaningful():
    assert "not meaningful" in summary_markdown(_summary([0, 1]))
    assert "not meaningful" not in summary_markdown(_summary([0, 1, 2, 3, 4]))
    assert "| CartPole-v1 | 100.2 | 102.2 | [100.2, 104.2] | 100.2 101.2 102.2 103.2 104.2 |" in summary_markdown(
        _summary([0, 1, 2, 3, 4]))  # per-seed values with the table's one decimal


def test_a_sweep_table_names_its_best_column_and_says_when_few_seeds_make_intervals_weak():
    from mtrl.sweep_results import sweep_markdown

    stats = {"iqm": 1.0, "mean": 1.0, "ci_low": 0.5, "ci_high": 1.5, "iqm_ci_low": 0.5, "iqm_ci_high": 1.5,
             "per_seed": [0.5, 1.5]}
    row = {"label": "lr=0.001", "setting": {"lr": 0.001}, "final_return": {"CartPole-v1": stats}, "score": stats,
           "auc": stats, "diverged": {}}

    def table(seeds):
        return sweep_markdown({"grid": {"lr": [0.001]}, "tasks": ["CartPole-v1"], "seeds": seeds, "eval_steps": [100],
                               "settings": [row], "best": "lr=0.001", "criterion": "final return"})

    header = next(line for line in table([0, 1]).splitlines() if line.startswith("| lr"))
    assert header.endswith("| diverged (frozen) at | best |")
    assert table([0, 1]).endswith("| **best** |\n\nWith 2 seeds the 95% interval is not meaningful (it spans about "
                                  "the range of the 2 values); use 5 or more seeds for intervals.\n")
    assert table(list(range(5))).endswith("| **best** |\n")


def test_tables_name_an_evaluation_that_was_not_greedy():
    import numpy as np

    from mtrl.study import _evaluation_note
    from mtrl.sweep_results import sweep_markdown, sweep_results

    assert summary_markdown(_summary([0, 1])).startswith("Final greedy return over 2 seeds")
    assert summary_markdown({**_summary([0, 1]), "eval_epsilon": 0.05}).startswith(
        "Final return (evaluation ε 0.05) over 2 seeds")
    returns = np.arange(12, dtype=float).reshape(3, 4, 1)  # [E, R = 2 settings x 2 seeds, T]
    args = ([{"lr": 1e-3}, {"lr": 1e-4}], ["CartPole-v1"], [0, 1], np.array([0, 10, 20]), returns)
    greedy, noisy = sweep_results(*args), sweep_results(*args, eval_epsilon=0.1)
    assert "eval_epsilon" not in greedy and noisy["eval_epsilon"] == 0.1
    assert noisy["criterion"] == ("highest IQM over seeds of the final return (evaluation ε 0.1), among settings "
                                  "where no seed diverged")
    assert "Final greedy return: IQM" in sweep_markdown(greedy)
    assert "Final return (evaluation ε 0.1): IQM" in sweep_markdown(noisy)
    assert _evaluation_note({"eval_epsilon": 0.0}) == _evaluation_note({}) == ""
    assert _evaluation_note({"eval_epsilon": 0.05}).startswith("Evaluation episodes take a random action with "
                                                               "probability 0.05")


def test_runs_record_the_commit_of_the_code_they_ran_and_whether_it_had_uncommitted_changes(tmp_path, monkeypatch):
    """mtrl imported from a git checkout (here a fresh one holding mtrl/logger.py): the HEAD commit and the dirty
    flag, from tracked files other than documentation only; outside a checkout, None."""
    import os
    import shutil
    import subprocess

    import pytest

    import mtrl.logger as logger

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "mtrl").mkdir(parents=True)
    (repo / "docs" / "results").mkdir(parents=True)
    (repo / "mtrl" / "logger.py").write_text("# mtrl\n")
    (repo / "README.md").write_text("# readme\n")
    (repo / "mtrl" / "notes.md").write_text("# notes\n")
    (repo / "docs" / "results" / "study.json").write_text("{}\n")
    monkeypatch.setattr(logger, "__file__", str(repo / "mtrl" / "logger.py"))
    assert logger.source_revision() is None  # not a git checkout (yet)

    def git(*args):
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q")
    git("add", "mtrl", "docs", "README.md")
    git("commit", "-q", "-m", "x")
    head = git("rev-parse", "HEAD")
    (repo / "notes.txt").write_text("untracked files do not count")
    assert logger.source_revision() == {"commit": head, "dirty": False}
    (repo / "README.md").write_text("# edited\n")
    (repo / "docs" / "results" / "study.json").write_text('{"published": 1}\n')
    (repo / "mtrl" / "notes.md").write_text("# edited notes\n")
    assert logger.source_revision() == {"commit": head, "dirty": False}  # documentation runs nothing
    (repo / "mtrl" / "logger.py").write_text("# changed\n")
    assert logger.source_revision() == {"commit": head, "dirty": True}
    described = logger.source_description({"source": logger.source_revision()})
    assert described == f"commit {head[:12]} with uncommitted changes"


def test_a_process_records_the_revision_of_the_code_it_imported_though_a_commit_lands_while_it_runs(monkeypatch):
    """A study trains for hours while its author commits: every run it starts ran the code it imported."""
    import mtrl.logger as logger

    revisions = iter([{"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": False}])
    monkeypatch.setattr(logger, "source_revision", lambda: next(revisions))
    logger.process_source_revision.cache_clear()
    monkeypatch.setattr(logger, "_cpu", lambda: ("cpu", False))
    try:
        first, later = logger.environment_info()["source"], logger.environment_info()["source"]
    finally:
        logger.process_source_revision.cache_clear()
    assert first == later == {"commit": "a" * 40, "dirty": False}


def test_labels_name_the_env_alone_where_the_task_set_has_it_once():
    assert short_names(["CartPole-v1", "MountainCar-v0:gamma=0.98,eps_end=0.2"]) == ["CartPole", "MountainCar"]
    assert short_names(["CartPole-v1:length=0.5", "CartPole-v1", "Acrobot-v1"]) == [
        "CartPole:length=0.5", "CartPole", "Acrobot"]
    assert short_names(["Breakout-MinAtar", "Breakout-bsuite", "CartPole-v1"]) == [
        "Breakout-MinAtar", "Breakout-bsuite", "CartPole"]  # never two tasks under one label
