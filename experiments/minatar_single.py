"""MinAtar, each game alone: the single-game baselines of the multi-task and transfer studies.

    python -m experiments.minatar_single [--budget smoke|cpu|paper] [--games G,G,...] [--seeds S] [--seed 1000]
                                         [--total-steps N] [--run-dir DIR] [--rerun] [--publish] [--collect]
                                         [--only RUN,...]

Trains every game of the `minatar` suite on its own (same network and settings as the multi-task run, the game's
own channels and actions; `experiments.minatar_common`), all seeds of a game in one compiled program, and writes
the final greedy return per game (IQM with its 95% bootstrap interval over seeds) next to the published
references. Rerunning the same command reuses finished games and resumes interrupted ones, so a long budget can
be carried across several sittings; ``--collect`` writes the results from the runs finished so far (e.g. trained on
an accelerator and copied into ``--run-dir``) without training; ``--only single/<game>,...`` trains those games and
collects the rest.
"""

from __future__ import annotations

import dataclasses
import os

from experiments.common import parse_study_args, run, train_or_collect, write_study_results
from experiments.minatar_common import (
    BUDGET_OPTION,
    COLLECT_OPTION,
    GAMES_OPTION,
    TUNED_ON,
    base_config,
    budget_from_argv,
    only_runs,
    results_table,
    selected_games,
)


def train_single_games(args, games: list[str]) -> dict[str, dict | None]:
    """Each game alone into ``<run dir>/single/<game>`` (reused or resumed when there; with ``--collect`` only the
    finished ones, None for the others); summaries by game."""
    return {game: train_or_collect(args, [game], args.config, os.path.join(args.out, "single", game))
            for game in games}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    budget_name, budget = budget_from_argv(argv)
    args = parse_study_args(__doc__, "minatar_single", base_config(budget), argv, seeds=budget.seeds,
                            tuned_on=TUNED_ON, extra={**BUDGET_OPTION, **GAMES_OPTION, **COLLECT_OPTION},
                            checkpoint_every=budget.checkpoint_every)
    games = selected_games(args.options["games"])
    args.options["only"] = only_runs(args.options["only"], [f"single/{g}" for g in games])
    single = train_single_games(args, games)
    cfg = args.config
    text = (f"Budget `{budget_name}`: {cfg.total_steps:,} env steps per game, {len(args.seeds)} seeds, protocol "
            f"`{cfg.protocol}`, {cfg.num_envs} envs, one update of {cfg.batch_size} transitions every iteration "
            f"({cfg.batch_size / cfg.num_envs:g} sampled per env step), {cfg.n_step}-step double-DQN targets, conv "
            f"{list(cfg.conv_channels)} -> dense {list(cfg.torso)}. Final greedy return (mean of "
            f"{cfg.eval_episodes} episodes per seed): IQM [95% bootstrap interval of the IQM over seeds].\n\n"
            + results_table({"alone": single}, cfg.protocol, games))
    write_study_results(args, "results", {"budget": budget_name, "config": dataclasses.asdict(cfg), "single": single},
                        text, "MinAtar: each game alone",
                        runs=[os.path.join(args.out, "single", game) for game in games])
    return single


if __name__ == "__main__":
    run(main)
