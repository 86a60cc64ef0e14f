"""MinAtar, five games in one network: the plain sum of task losses vs PopArt, against each game alone.

    python -m experiments.minatar_multitask [--budget smoke|cpu|paper] [--games G,G,...] [--seeds S] [--seed 1000]
                                            [--total-steps N] [--run-dir DIR] [--rerun] [--publish]

One Q-network (shared conv torso, one head per game over the game's own actions, observations zero-padded to the
widest game's channels) learns all five games of the `minatar` suite (or the ``--games`` given) at once, with
L = Σₜ Lₜ (`multi_sum`) or with PopArt-normalised task losses (`multi_popart`; `mtrl.popart`), every game with the
same per-game budget, settings and seeds as the single-game runs (`experiments.minatar_single`, trained here too
into ``single/`` or reused from there). Writes per game the final greedy return, IQM [95% CI], of the three, next
to the published references.
Rerunning the same command reuses finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import dataclasses
import os

from experiments.common import parse_study_args, train_or_reuse, write_study_results
from experiments.minatar_common import (
    BUDGET_OPTION,
    GAMES_OPTION,
    TUNED_ON,
    base_config,
    budget_from_argv,
    results_table,
    selected_games,
)
from experiments.minatar_single import train_single_games

AGGREGATIONS = {"multi_sum": "sum", "multi_popart": "popart"}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    budget_name, budget = budget_from_argv(argv)
    args = parse_study_args(__doc__, "minatar_multitask", base_config(budget), argv, seeds=budget.seeds,
                            tuned_on=TUNED_ON, extra={**BUDGET_OPTION, **GAMES_OPTION})
    games = selected_games(args.options["games"], at_least=2)
    multi = {}
    for name, aggregation in AGGREGATIONS.items():
        config = dataclasses.replace(args.config, loss_aggregation=aggregation)
        summary = train_or_reuse(games, config, args.seeds, os.path.join(args.out, name), args.rerun, args.name)
        multi[name] = {game: summary for game in games}
    single = train_single_games(args, games)
    cfg = args.config
    columns = {"alone": single, "five games, sum": multi["multi_sum"], "five games, PopArt": multi["multi_popart"]}
    text = (f"Budget `{budget_name}`: {cfg.total_steps:,} env steps per game, {len(args.seeds)} seeds, protocol "
            f"`{cfg.protocol}`, {cfg.num_envs} envs per game, one update of {cfg.batch_size} transitions per game "
            f"every iteration, {cfg.n_step}-step double-DQN targets, conv {list(cfg.conv_channels)} -> dense "
            f"{list(cfg.torso)}, PopArt step {cfg.popart_step_size:g} per target. Final greedy return (mean of "
            f"{cfg.eval_episodes} episodes per seed): IQM [95% bootstrap interval of the mean over seeds].\n\n"
            + results_table(columns, cfg.protocol, games))
    data = {"budget": budget_name, "config": dataclasses.asdict(cfg),
            "runs": {"single": single, **{k: v[games[0]] for k, v in multi.items()}}}
    write_study_results(args, "results", data, text, "MinAtar: five games in one network")
    return data["runs"]


if __name__ == "__main__":
    main()
