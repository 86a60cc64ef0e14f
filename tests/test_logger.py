from mtrl.logger import summary_markdown


def _summary(seeds):
    values = [100.0 + s for s in range(len(seeds))]
    final = {"mean": sum(values) / len(values), "iqm": values[0], "ci_low": min(values), "ci_high": max(values),
             "per_seed": values}
    return {"tasks": {"CartPole-v1": {"final_return": final}}, "seeds": seeds, "env_steps_per_task": 1000,
            "wall_s": 1.0, "compile_s": 0.5, "env_steps_per_s": 1000.0}


def test_summary_says_when_an_interval_over_few_seeds_is_not_meaningful():
    assert "not meaningful" in summary_markdown(_summary([0, 1]))
    assert "not meaningful" not in summary_markdown(_summary([0, 1, 2, 3, 4]))
    assert "| CartPole-v1 | 100.0 | 102.0 | [100.0, 104.0] | 100 101 102 103 104 |" in summary_markdown(
        _summary([0, 1, 2, 3, 4]))


def test_runs_record_the_commit_of_the_code_they_ran_and_whether_it_had_uncommitted_changes(tmp_path, monkeypatch):
    """mtrl imported from a git checkout (here a fresh one holding mtrl/logger.py): the HEAD commit and the dirty
    flag, from tracked files only; outside a checkout, None."""
    import os
    import shutil
    import subprocess

    import pytest

    import mtrl.logger as logger

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "mtrl").mkdir(parents=True)
    (repo / "mtrl" / "logger.py").write_text("# mtrl\n")
    monkeypatch.setattr(logger, "__file__", str(repo / "mtrl" / "logger.py"))
    assert logger.source_revision() is None  # not a git checkout (yet)

    def git(*args):
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q")
    git("add", "mtrl")
    git("commit", "-q", "-m", "x")
    head = git("rev-parse", "HEAD")
    (repo / "notes.txt").write_text("untracked files do not count")
    assert logger.source_revision() == {"commit": head, "dirty": False}
    (repo / "mtrl" / "logger.py").write_text("# changed\n")
    assert logger.source_revision() == {"commit": head, "dirty": True}
    described = logger.source_description({"source": logger.source_revision()})
    assert described == f"commit {head[:12]} with uncommitted changes"
