"""`benchmarks.minatar` end to end with its measurements stubbed: every program it times is built with the budget's
settings, and its JSON renders into the table with every row. (The timings themselves are the benchmark's job,
run on the machine being measured; a broken benchmark found only there would waste an accelerator's time.)"""

import json
import sys

import pytest

import benchmarks.minatar as bench
from experiments.minatar_common import BUDGETS, WIDE_MULTI_NETWORK
from mtrl.tasks import MINATAR_GAMES


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_the_minatar_benchmark_times_each_program_of_its_budget_and_renders_them(budget, tmp_path, monkeypatch):
    timed = []

    def chunk_rate(trainer, seeds, iterations):  # each program timed: games, seeds, network, protocol
        config = trainer.config
        timed.append((tuple(trainer.taskset.names), len(seeds), tuple(config.conv_channels), tuple(config.torso),
                      config.protocol, iterations))
        return 1000.0 * len(timed), 10.0 + len(timed)

    monkeypatch.setattr(bench, "chunk_rate", chunk_rate)
    monkeypatch.setattr(bench, "env_only_rate", lambda games, num_envs, protocol, steps: 5000.0 * len(games))
    monkeypatch.setattr(bench, "fresh_env_only_compile_s", lambda games, num_envs, protocol: 3.0)
    monkeypatch.setattr(bench, "flax_conv_rate", lambda games, config, iterations: (500.0, 20.0))
    monkeypatch.setattr(sys, "argv", ["minatar", "--quick", "--budget", budget, "--out", str(tmp_path)])
    bench.main()

    b, games = BUDGETS[budget], tuple(MINATAR_GAMES)
    one = (bench.base_config(b).conv_channels, bench.base_config(b).torso)  # one game's network
    assert [t[:2] for t in timed] == [(games, 1), *[((g,), 1) for g in games], (games, b.seeds), (games, b.seeds)]
    assert all(t[2:4] == one for t in timed[:-1]) and timed[-1][2:4] == tuple(map(tuple, WIDE_MULTI_NETWORK))
    assert {t[4] for t in timed} == {b.protocol} and {t[5] for t in timed} == {40}
    results = json.loads((tmp_path / "minatar.json").read_text())
    assert results["budget"] == budget and results["config"]["protocol"] == b.protocol
    assert results["fused_vs_sequential"]["speedup_train"] == pytest.approx(1000.0 / (5 / sum(
        1 / (1000.0 * k) for k in range(2, 7))))
    assert results["replay"]["bytes_per_transition"] <= results["replay"]["bound"]
    table = (tmp_path / "minatar.md").read_text()
    assert f"`python -m benchmarks.minatar --budget {budget}`" in table
    for row in [*MINATAR_GAMES, "five games, one program |", f"five games, {b.seeds} seeds, one program (the studies')",
                "flax `nn.Conv`", "the multi-task studies' wide network"]:
        assert row in table, row
    assert "- the wide multi-task network vs one game's size (five games, the budget's seeds): 1.14x" in table
