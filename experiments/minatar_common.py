"""Shared pieces of the MinAtar studies: budgets, the network and learner settings, published reference returns,
and the per-game results table.

Budgets (``--budget``; ``--total-steps`` and ``--seeds`` still override):

- ``cpu``: 1M env steps per game, 3 seeds, gymnax protocol; 16 envs per game and one update of 64 transitions per
  game every iteration (4 sampled transitions per env step), so the single-game and multi-task studies finish in
  hours on a 2-core CPU;
- ``paper``: 5M env steps per game (the MinAtar paper's budget), 5 seeds, the ``minatar-paper`` protocol (full
  action set, sticky actions 0.1, no episode cap) and 8 sampled transitions per env step: for an accelerator. Its
  multi-task network is √5 times as wide as one game's (conv 36 -> dense 288: about the parameters of the five
  single-game networks together), chosen on seeds 0–1 (`MULTI_NETWORK_TUNED_ON`) in a 400k-step pilot at the
  ``cpu`` budget, where it was ahead of one game's size on all five games at 400k steps
  (docs/results/minatar_multitask/width_pilot/);
- ``smoke``: 20k env steps, 1 seed, 2 evaluation episodes: checks that a study runs end to end.

Settings (`base_config`) follow the MinAtar paper's DQN where mtrl has the same knob (conv 16x3x3 -> Dense 128,
γ 0.99, replay 100k per game, ε decaying over the first 10% of the budget instead of its first 100k of 5M frames,
target network copied every 992 env steps per game: 62 iterations of 16 envs, the paper's 1000 frames rounded down)
and mtrl's defaults elsewhere (Adam, 3-step double-DQN targets, ½δ² loss, lr 2.5e-4 decayed linearly to 0). They
were set a priori, not tuned on any seed (the ``paper`` budget's multi-task network width aside).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from mtrl.config import DQNConfig
from mtrl.logger import markdown_table
from mtrl.statistics import iqm, iqm_interval
from mtrl.tasks import MINATAR_GAMES


@dataclasses.dataclass(frozen=True)
class Budget:
    total_steps: int
    seeds: int
    protocol: str
    num_envs: int
    batch_size: int
    eval_every: int
    eval_episodes: int = 10
    random_episodes: int = 1000  # episodes of random play measuring the normalisation's floor (transfer study)
    checkpoint_every: int = 50_000  # env steps per game (a five-game, 5-seed checkpoint holds 4.7 GB of replay)
    multi_network: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # (conv, dense); None: one game's network


BUDGETS = {
    "smoke": Budget(20_000, 1, "gymnax", 16, 32, 10_000, eval_episodes=2, random_episodes=50),
    "cpu": Budget(1_000_000, 3, "gymnax", 16, 64, 50_000),
    "paper": Budget(5_000_000, 5, "minatar-paper", 16, 128, 100_000, checkpoint_every=500_000,
                    multi_network=((36,), (288,))),
}
WIDE_MULTI_NETWORK = BUDGETS["paper"].multi_network  # √5 times one game's widths: chosen on MULTI_NETWORK_TUNED_ON

# Young & Tian (2019), "MinAtar", DQN (with experience replay and a target network) at 5M frames under their
# protocol (sticky actions 0.1, full action set), read off the paper's learning curves (Figure 2), so approximate:
# average returns of training episodes (ε-greedy, ε 0.1 after 100k frames; mtrl reports greedy evaluations); their
# Seaquest predates MinAtar 1.0.11's fix of that game. gymnax-blines' PPO (returns: gymnax README's table;
# 10M steps: `num_train_steps` of gymnax-blines' agents/<game>/ppo.yaml; minimal action sets, gymnax's episode caps).
# Both are for comparison only: say which protocol a number used.
PAPER_DQN_5M = {"Breakout-MinAtar": 10.0, "Asterix-MinAtar": 17.0, "Freeway-MinAtar": 50.0,
                "SpaceInvaders-MinAtar": 43.0, "Seaquest-MinAtar": 20.0}
GYMNAX_PPO_10M = {"Asterix-MinAtar": 15.0, "Breakout-MinAtar": 28.0, "Freeway-MinAtar": 58.0,
                  "SpaceInvaders-MinAtar": 131.0}
TUNED_ON: tuple[int, ...] = ()  # settings set a priori (see the module docstring)
MULTI_NETWORK_TUNED_ON: tuple[int, ...] = (0, 1)  # the pilot that chose the paper budget's multi-task network width


def base_config(budget: Budget) -> DQNConfig:
    updates_per_target_copy = max(1, 1000 // budget.num_envs)  # about every 1000 env steps per game
    return DQNConfig(
        total_steps=budget.total_steps, num_envs=budget.num_envs, buffer_size=100_000 - 100_000 % budget.num_envs,
        batch_size=budget.batch_size, learning_starts=5_000, update_every=1,
        target_update_period=updates_per_target_copy, lr=2.5e-4, lr_end_fraction=0.0, gamma=0.99, eps_end=0.05,
        eps_decay_fraction=0.1, conv_channels=(16,), torso=(128,), eval_every=budget.eval_every,
        eval_episodes=budget.eval_episodes, protocol=budget.protocol,
    )


def budget_from_argv(argv: list[str] | None) -> tuple[str, Budget]:
    """The ``--budget`` of a command line (default ``cpu``), read before the study's own parser."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    name = parser.parse_known_args(argv)[0].budget
    return name, BUDGETS[name]


BUDGET_OPTION = {"--budget": {"choices": sorted(BUDGETS), "default": "cpu",
                              "help": "smoke (20k steps, 1 seed), cpu (1M steps, 3 seeds; default) or paper (5M "
                                      "steps, 5 seeds, minatar-paper protocol); --total-steps/--seeds override"}}


COLLECT_OPTION = {
    "--collect": {
        "action": "store_true",
        "help": "write the results from the runs already finished in --run-dir and train nothing (runs trained "
                "elsewhere, e.g. on an accelerator, then copied here); unfinished runs show as —"},
    "--only": {
        "default": None,
        "help": "comma-separated runs to train now, by their folder in --run-dir (multi_popart, multi_sum, "
                "single/<game>; 'single' for every game alone); the others are collected as with --collect. For "
                "an accelerator lent in time-limited sittings: one part per sitting, then --collect"}}


def only_runs(text: str | None, runs: Sequence[str]) -> set[str] | None:
    """The runs an ``--only`` value names, out of this study's ``runs`` (folders under --run-dir); ``single`` stands
    for every ``single/<game>``. None (train every run) without ``--only``; unknown names exit with a message."""
    if text is None:
        return None
    chosen = set()
    for name in (n.strip() for n in text.split(",") if n.strip()):
        matches = [r for r in runs if r == name or (name == "single" and r.startswith("single/"))]
        if not matches:
            raise SystemExit(f"--only: {name!r} is not a run of this study; choose from {', '.join(runs)} or single")
        chosen.update(matches)
    if not chosen:
        raise SystemExit("--only: name at least one run")
    return chosen


GAMES_OPTION = {"--games": {"default": ",".join(MINATAR_GAMES), "help": "comma-separated games (default: all five)"}}


def selected_games(text: str, at_least: int = 1) -> list[str]:
    """The games of a ``--games`` value, in suite order; unknown names or too few games exit with a message."""
    games = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in games if g not in MINATAR_GAMES]
    if unknown or len(games) < at_least:
        raise SystemExit(f"--games: needs at least {at_least} of {', '.join(MINATAR_GAMES)}; got {text!r}"
                         + (f" (unknown: {unknown})" if unknown else ""))
    return [g for g in MINATAR_GAMES if g in games]


def final_returns(summary: dict, game: str) -> np.ndarray:
    """Final greedy return per seed ``[S]`` of ``game`` in a run's summary."""
    return np.asarray(summary["tasks"][game]["final_return"]["per_seed"], np.float64)


def cell(summary: dict | None, game: str) -> str:
    """``IQM [95% interval of the IQM over seeds]`` of a game's final return in a run summary."""
    return "—" if summary is None else iqm_text(summary["tasks"][game]["final_return"])


def iqm_text(r: dict | None) -> str:
    """``IQM [95% CI of the IQM]`` of one `mtrl.statistics.summarize` result, — for None."""
    if r is None:
        return "—"
    low, high = iqm_interval(r)
    return f"{r['iqm']:.1f} [{low:.1f}, {high:.1f}]"


def results_table(columns: dict[str, dict[str, dict | None]], protocol: str, games=MINATAR_GAMES) -> str:
    """One row per game: each column's ``IQM [95% CI]`` (columns: heading -> game -> run summary), then the
    published references, labelled with their protocol."""
    header = ["game", *columns, "paper DQN, 5M (minatar-paper protocol)", "gymnax PPO, 10M (gymnax protocol)"]
    rows = []
    for game in games:
        rows.append([game, *(cell(col.get(game), game) for col in columns.values()),
                     f"≈{PAPER_DQN_5M[game]:g}", f"{GYMNAX_PPO_10M[game]:g}" if game in GYMNAX_PPO_10M else "—"])
    note = ("\nThese runs use the paper's protocol, as its DQN column does, but not its learner: mtrl's settings are "
            "above; the paper's DQN trains one environment with one-step targets, RMSProp (lr 2.5e-4), a batch of "
            "32 every frame, a target copy every 1000 frames and ε decaying to 0.1 over the first 100k frames.\n"
            if protocol == "minatar-paper" else
            "\nThese runs use the **gymnax** protocol (minimal action sets, no sticky actions, 1000-step episode "
            "caps except Freeway's 2500), so they are not comparable with the paper's DQN column; the `paper` "
            "budget runs the paper's protocol.\n")
    references = ("\nReference columns: the paper's DQN values are read off Young & Tian's (2019) learning curves "
                  "(their Figure 2), so approximate, and their Seaquest predates MinAtar 1.0.11's fix of that game; "
                  "those curves average the returns of training episodes, which act ε-greedily (ε 0.1 after the first "
                  "100k frames), where mtrl's columns are greedy evaluation episodes, so the measures differ too "
                  "(`python -m mtrl evaluate RUN --epsilon 0.1` plays a run's checkpoint as those episodes act); "
                  "gymnax PPO is gymnax-blines' PPO, another algorithm (returns: the gymnax README's table), after 10M "
                  "env steps (the `num_train_steps` of gymnax-blines' MinAtar PPO configs).\n")
    return markdown_table(header, rows) + note + references


PAPER_EPSILON = 0.1  # the paper's DQN explores at 0.1 after its first 100k frames; its curves average those episodes


def epsilon_table(run_dirs: Mapping[str, Mapping[str, str]], games: Sequence[str], total_steps: int) -> str:
    """The runs' last checkpoints played as the paper's training episodes act (ε `PAPER_EPSILON` at every step),
    next to the paper's DQN: one row per game, one column per ``run_dirs`` heading (heading -> game -> run
    directory), each cell from that run's evaluation.json (``python -m mtrl evaluate RUN --epsilon 0.1`` at its last
    step), — where a run has none; "" when no run has one."""

    @functools.cache
    def evaluated(run_dir: str) -> dict:
        """Per game, the run's returns at ε `PAPER_EPSILON` at its last step ({} when it has no such evaluation)."""
        path = os.path.join(run_dir, "evaluation.json")
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            evaluation = json.load(f)
        ok = evaluation.get("epsilon") == PAPER_EPSILON and evaluation.get("step") == total_steps
        return evaluation["tasks"] if ok else {}

    cells = {heading: {game: evaluated(dirs[game]).get(game) for game in games} for heading, dirs in run_dirs.items()}
    if not any(r for column in cells.values() for r in column.values()):
        return ""
    rows = [[game, *(iqm_text(cells[h][game]) for h in cells), f"≈{PAPER_DQN_5M[game]:g}"] for game in games]
    return (f"\nThe same runs' last checkpoints played as the paper's training episodes act (a random action with "
            f"probability {PAPER_EPSILON:g} at every step; `python -m mtrl evaluate RUN --epsilon {PAPER_EPSILON:g}`, "
            "each run's evaluation.json; — where a run has none): IQM [95% bootstrap interval of the IQM over "
            "seeds], the measure closest to the paper's curves.\n\n"
            + markdown_table(["game", *cells, "paper DQN, 5M (training episodes)"], rows))


def iqm_of(values) -> float:
    return float(iqm(np.asarray(values, np.float64)))
