"""MinAtar, five games in one network: the plain sum of task losses vs PopArt, against each game alone.

    python -m experiments.minatar_multitask [--budget smoke|cpu|paper] [--games G,G,...] [--seeds S] [--seed 1000]
                                            [--total-steps N] [--run-dir DIR] [--rerun] [--publish] [--collect]
                                            [--only RUN,...] [--multi-conv-channels C] [--multi-torso D]

One Q-network (shared conv torso, one head per game over the game's own actions, observations zero-padded to the
widest game's channels) learns all five games of the `minatar` suite (or the ``--games`` given) at once, with
L = Σₜ Lₜ (`multi_sum`) or with PopArt-normalised task losses (`multi_popart`; `mtrl.popart`), every game with the
same per-game budget, settings and seeds as the single-game runs (`experiments.minatar_single`, trained here too
into ``single/`` or reused from there). The multi-task network is the budget's (``cpu``: one game's size; ``paper``:
√5 times as wide, conv 36 -> dense 288, about as many parameters as the five single-game networks together) or
``--multi-conv-channels``/``--multi-torso``'s; the single-game runs keep theirs. Writes per game the final greedy
return, IQM [95% CI], of the three, next to the published references (and, for runs whose last checkpoint was
played at ε 0.1 by ``python -m mtrl evaluate RUN --epsilon 0.1``, those returns in a second table: the measure of
the paper's curves), and their learning curves (``curves.png``);
``--publish`` copies both to docs/results/minatar.md (``cpu`` budget) or docs/results/minatar_<budget>.md.
Rerunning the same command reuses finished runs and resumes interrupted ones (PopArt's run first, then the sum's,
then the single games); ``--collect`` writes the results from the runs finished so far (e.g. trained on an
accelerator and copied into ``--run-dir``) without training, with — for the others; ``--only`` trains the runs it
names (e.g. ``multi_sum`` or ``single/Breakout-MinAtar``) and collects the rest, so a study can be split into parts
that each fit one sitting on a lent accelerator.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np

from experiments.common import StudyArgs, parse_study_args, run, train_or_collect, write_study_results
from experiments.minatar_common import (
    BUDGET_OPTION,
    COLLECT_OPTION,
    GAMES_OPTION,
    MULTI_NETWORK_TUNED_ON,
    TUNED_ON,
    WIDE_MULTI_NETWORK,
    Budget,
    base_config,
    budget_from_argv,
    epsilon_table,
    only_runs,
    results_table,
    selected_games,
)
from experiments.minatar_single import train_single_games
from mtrl.config import DQNConfig
from mtrl.plots import plot_compared_curves, read_eval_csv
from mtrl.statistics import iqm_interval
from mtrl.sweep_grid import GridError, format_value, parse_sizes

AGGREGATIONS = {"multi_popart": "popart", "multi_sum": "sum"}  # training order: the headline run first
LABELS = {"multi_sum": "multi-task, sum", "multi_popart": "multi-task, PopArt"}


def _layer_sizes(text: str) -> tuple[int, ...]:
    try:
        return parse_sizes(text, "layer sizes")
    except GridError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def network_options(budget: Budget) -> dict[str, dict]:
    """``--multi-conv-channels``/``--multi-torso``, defaulting to the budget's multi-task network (None: one game's)."""
    conv, dense = budget.multi_network or (None, None)
    default = "one game's" if budget.multi_network is None else "the budget's"
    return {
        "--multi-conv-channels": {
            "type": _layer_sizes, "default": conv, "metavar": "C[xC...]",
            "help": f"conv channels of the multi-task network (default: {default}"
                    + (f", {format_value(conv)}" if conv else "") + "; paper: √5 times one game's widths)"},
        "--multi-torso": {
            "type": _layer_sizes, "default": dense, "metavar": "D[xD...]",
            "help": f"dense layers of the multi-task network (default: {default}"
                    + (f", {format_value(dense)}" if dense else "") + ")"},
    }


def multi_network(args: StudyArgs, config: DQNConfig) -> DQNConfig:
    """``config`` with the multi-task network's sizes (``--multi-conv-channels``/``--multi-torso``, where given)."""
    sizes = {"conv_channels": args.options["multi_conv_channels"], "torso": args.options["multi_torso"]}
    return dataclasses.replace(config, **{field: value for field, value in sizes.items() if value is not None})


def main(argv: list[str] | None = None) -> dict[str, dict]:
    budget_name, budget = budget_from_argv(argv)
    args = parse_study_args(__doc__, "minatar_multitask", base_config(budget), argv, seeds=budget.seeds,
                            tuned_on=TUNED_ON,
                            extra={**BUDGET_OPTION, **GAMES_OPTION, **COLLECT_OPTION, **network_options(budget)},
                            checkpoint_every=budget.checkpoint_every)
    games = selected_games(args.options["games"], at_least=2)
    args.options["only"] = only_runs(args.options["only"], [*AGGREGATIONS, *(f"single/{g}" for g in games)])
    cfg, multi_cfg = args.config, multi_network(args, args.config)
    wide = (multi_cfg.conv_channels, multi_cfg.torso) == WIDE_MULTI_NETWORK
    if wide:  # its width was chosen on these seeds
        args = dataclasses.replace(args, tuned_on=(*args.tuned_on, *MULTI_NETWORK_TUNED_ON))
    multi = {}
    for name, aggregation in AGGREGATIONS.items():
        config = dataclasses.replace(multi_cfg, loss_aggregation=aggregation)
        summary = train_or_collect(args, games, config, os.path.join(args.out, name))
        multi[name] = {game: summary for game in games}
    single = train_single_games(args, games)
    network = f"conv {list(cfg.conv_channels)} -> dense {list(cfg.torso)}"
    if (multi_cfg.conv_channels, multi_cfg.torso) != (cfg.conv_channels, cfg.torso):
        network += (f" alone, conv {list(multi_cfg.conv_channels)} -> dense {list(multi_cfg.torso)} in the multi-task "
                    "network")
    width_note = "" if not wide else (
        " The multi-task network is √5 times as wide as one game's (about the parameters of five single-game "
        f"networks together), a width chosen on seeds {', '.join(map(str, MULTI_NETWORK_TUNED_ON))} in a 400k-step "
        "pilot at the `cpu` budget (docs/results/minatar_multitask/width_pilot/).")
    columns = {"alone": single, **{LABELS[name]: multi[name] for name in ("multi_sum", "multi_popart")}}
    popart, compared = multi["multi_popart"], [g for g in games if single[g] and multi["multi_popart"][g]]
    popart_holds = [g for g in compared if popart[g]["tasks"][g]["final_return"]["iqm"]
                    >= iqm_interval(single[g]["tasks"][g]["final_return"])[0]]
    missing = [f"{name} ({game})" if name == "single" else name
               for name, runs in (("single", single), *multi.items()) for game in games
               if runs[game] is None and (name == "single" or game == games[0])]
    holds = "" if not compared else (
        f"\nMulti-task with PopArt reaches the single-game interval (IQM ≥ its lower end) on {len(popart_holds)} of "
        f"{len(compared)} games" + (f" ({', '.join(popart_holds)})" if popart_holds else "")
        + (" with both runs finished" if len(compared) < len(games) else "") + ".\n")
    text = (f"Budget `{budget_name}`: {cfg.total_steps:,} env steps per game, {len(args.seeds)} seeds, protocol "
            f"`{cfg.protocol}`, {cfg.num_envs} envs per game, one update of {cfg.batch_size} transitions per game "
            f"every iteration ({cfg.batch_size / cfg.num_envs:g} sampled per env step), {cfg.n_step}-step double-DQN "
            f"targets, {network}, PopArt step "
            f"{cfg.popart_step_size:g} per target. Final greedy return (mean of {cfg.eval_episodes} episodes per "
            f"seed): IQM [95% bootstrap interval of the IQM over seeds].{width_note}\n\n"
            + results_table(columns, cfg.protocol, games)
            + epsilon_table({"alone": {g: os.path.join(args.out, "single", g) for g in games},
                             **{LABELS[name]: {g: os.path.join(args.out, name) for g in games}
                                for name in ("multi_sum", "multi_popart")}}, games, cfg.total_steps)
            + holds
            + (f"\n**Not finished yet** (—): {', '.join(missing)}. This page was written by `--collect` from the runs "
               "finished so far; rerunning the study command trains the rest.\n" if missing else ""))
    figure, curves = os.path.join(args.out, "curves.png"), study_curves(args.out, games, finished_only=bool(missing))
    if curves is not None:
        plot_compared_curves(*curves, games, figure,
                             title=f"greedy return: mean, 95% bootstrap band over {len(args.seeds)} seeds")
    data = {"budget": budget_name, "config": dataclasses.asdict(cfg),
            "multi_network": {"conv_channels": list(multi_cfg.conv_channels), "torso": list(multi_cfg.torso)},
            "popart_within_single_interval": popart_holds,
            "not_finished": missing, "runs": {"single": single, **{k: v[games[0]] for k, v in multi.items()}}}
    write_study_results(args, budget_name, data, text, "MinAtar: five games in one network",
                        figures={f"{budget_name}_curves.png": figure} if curves is not None else None,
                        page="minatar" if budget_name == "cpu" else f"minatar_{budget_name}",
                        runs=[*(os.path.join(args.out, name) for name in AGGREGATIONS),
                              *(os.path.join(args.out, "single", game) for game in games)])
    return data["runs"]


def study_curves(out: str, games: list[str], finished_only: bool = False
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """Evaluation steps ``[E]`` and greedy returns ``[S, T, E]`` of the three variants, from their eval.csv, or None
    when no run has one (``finished_only``: only finished runs; "alone" then has NaN, drawn as nothing, for the games
    whose single run is not finished)."""
    def returns(run_dir: str) -> tuple[np.ndarray, np.ndarray]:
        steps, values, tasks = read_eval_csv(os.path.join(run_dir, "eval.csv"))  # [E, S, T]
        return steps, values[:, :, [tasks.index(g) for g in games if g in tasks]].transpose(1, 2, 0)

    def usable(run_dir: str) -> bool:
        done = os.path.exists(os.path.join(run_dir, "summary.json"))
        return done or (not finished_only and os.path.exists(os.path.join(run_dir, "eval.csv")))

    runs = {}
    singles = {g: returns(os.path.join(out, "single", g)) for g in games if usable(os.path.join(out, "single", g))}
    if singles:
        steps, shaped = next(iter(singles.values()))
        if any(not np.array_equal(s, steps) or r.shape != shaped.shape for s, r in singles.values()):
            raise ValueError("the single-game runs were evaluated at different steps or seeds; train them with one "
                             "config")
        blank = np.full_like(shaped, np.nan)
        runs["alone"] = (steps, np.concatenate([singles[g][1] if g in singles else blank for g in games], axis=1))
    for name in ("multi_sum", "multi_popart"):
        if usable(os.path.join(out, name)):
            runs[LABELS[name]] = returns(os.path.join(out, name))
    if not runs:
        return None
    steps = next(iter(runs.values()))[0]
    if any(not np.array_equal(s, steps) for s, _ in runs.values()):
        raise ValueError("the study's runs were evaluated at different steps; train them with one config")
    return steps, {label: r for label, (_, r) in runs.items()}

if __name__ == "__main__":
    run(main)
