import json

from experiments import classic_multitask, quickstart


def test_quickstart_runs_and_writes_its_run_directory(tmp_path, capsys):
    summary = quickstart.main(["--seeds", "1", "--total-steps", "400", "--run-dir", str(tmp_path)])
    assert list(summary["tasks"]) == [f"CartPole-v1:length={x}" for x in (0.25, 0.5, 1.0, 1.5)]
    assert json.loads((tmp_path / "config.json").read_text())["experiment"] == "quickstart"
    out = capsys.readouterr().out
    assert "| CartPole-v1:length=1.5 |" in out and f"{tmp_path}/curves.png" in out


def _summary(name, values):
    lo, hi = min(values), max(values)
    return {"tasks": {name: {"final_return": {"mean": sum(values) / len(values), "iqm": 0.0, "ci_low": lo,
                                              "ci_high": hi, "per_seed": values}}}}


def test_classic_comparison_rule():
    multi = {"tasks": {**_summary("A", [90.0, 100.0])["tasks"], **_summary("B", [10.0, 20.0])["tasks"]}}
    single = {"A": _summary("A", [95.0, 105.0]), "B": _summary("B", [30.0, 40.0])}
    rows = {r["task"]: r["within_or_better"] for r in classic_multitask.compare(multi, single)}
    assert rows == {"A": True, "B": False}  # A's mean 95 is inside [95, 105]; B's 15 is below [30, 40]


def test_mountaincar_sweep_trains_every_setting_and_seed_in_one_program(tmp_path):
    from experiments import mountaincar_exploration

    result = mountaincar_exploration.main(["--seeds", "2", "--total-steps", "400", "--run-dir", str(tmp_path)])
    assert list(result["settings"]) == ["eps_end=0.1", "eps_end=0.2"]
    assert all(len(s["per_seed"]) == 2 for s in result["settings"].values())
    assert (tmp_path / "sweep.md").exists()
