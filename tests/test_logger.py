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
