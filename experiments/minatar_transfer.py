"""MinAtar leave-one-out transfer: pretrain one network on four games, carry its torso to the fifth.

    python -m experiments.minatar_transfer [--budget smoke|cpu|paper] [--targets G,...] [--games G,...] [--modes M,...]
                                           [--seeds S] [--seed 1000] [--total-steps N] [--run-dir DIR] [--rerun]
                                           [--loss-aggregation sum|popart] [--publish]

For each target game (default: all five): pretrain on the other four games (the other ``--games``; same per-game
budget and settings as `experiments.minatar_multitask`), then train the target in every transfer mode — scratch,
finetune, frozen, unfreeze, l2sp, joint — from the same seeds, and compare each with scratch (jumpstart, gain over
the last evaluations, AUC, transfer ratio, time to threshold, censored; `mtrl.study`). The games' channel counts
differ (4-10), so every network here maps each game's channels through its own 1x1-conv adapter
(`ADAPTER_CHANNELS`) before the shared torso: the torso then has the same shape for any set of games and splices
unchanged.
``--loss-aggregation popart`` (alias ``--aggregation``) trains the source and every target run (scratch included, so
the comparison stays like for like) with PopArt-normalised losses instead of their plain sum, into its own results
page; use its own ``--run-dir``. Normalised returns use the MinAtar paper's DQN at 5M frames as the reference
(`PAPER_DQN_5M`; its protocol differs unless `--budget paper`). Rerunning the same command continues: finished runs
are reused, interrupted ones resumed.
"""

from __future__ import annotations

import dataclasses
import os

from experiments.common import parse_study_args, pretrain_and_study, publish_transfer, run
from experiments.minatar_common import (
    BUDGET_OPTION,
    GAMES_OPTION,
    PAPER_DQN_5M,
    TUNED_ON,
    base_config,
    budget_from_argv,
    selected_games,
)
from mtrl.transfer import MODES, TransferSettings

AGGREGATIONS = ("sum", "popart")
ADAPTER_CHANNELS = 10  # the widest game's channel count: each adapter can pass its game's grid through unchanged


def main(argv: list[str] | None = None) -> dict[str, dict]:
    budget_name, budget = budget_from_argv(argv)
    config = dataclasses.replace(base_config(budget), adapter_size=ADAPTER_CHANNELS)
    extra = {**BUDGET_OPTION, **GAMES_OPTION,
             "--targets": {"default": None, "help": "comma-separated target games (default: every game of --games)"},
             "--modes": {"default": ",".join(MODES), "help": f"transfer modes (default: {','.join(MODES)})"},
             ("--loss-aggregation", "--aggregation"): {"choices": AGGREGATIONS, "default": "sum",
                               "help": "loss aggregation of the source and of every target run, scratch included: "
                                       "sum (default) or popart (published as minatar_transfer_popart)"}}
    args = parse_study_args(__doc__, "minatar_transfer", config, argv, seeds=budget.seeds, tuned_on=TUNED_ON,
                            extra=extra, checkpoint_every=budget.checkpoint_every)
    aggregation = args.options["loss_aggregation"]
    args = dataclasses.replace(args, config=dataclasses.replace(args.config, loss_aggregation=aggregation))
    modes = [m.strip() for m in args.options["modes"].split(",") if m.strip()]
    # unfreeze after a fifth of the target budget, and not before the first update (else 'unfreeze' is 'finetune')
    settings = TransferSettings(unfreeze_at=max(args.config.total_steps // 5, args.config.learning_starts))
    games = selected_games(args.options["games"], at_least=2)
    targets = selected_games(args.options["targets"] or args.options["games"])
    if set(targets) - set(games):
        raise SystemExit(f"--targets must be among --games ({', '.join(games)})")
    last_k = min(3, args.config.num_evaluations)  # evaluations averaged for the final gain
    studies = {}
    for target in targets:
        sources = [g for g in games if g != target]
        studies[f"Target: {target}"] = pretrain_and_study(
            args, os.path.join(args.out, target), sources, [target], args.config, args.config, settings, modes=modes,
            references={target: PAPER_DQN_5M[target]}, last_k=last_k, random_episodes=budget.random_episodes,
            progress=False)
    variant = "" if aggregation == "sum" else aggregation
    protocol = args.config.protocol
    note = ("Normalised returns: 0 is a random policy's return and 1 the MinAtar paper's DQN at 5M frames (read off "
            "Young & Tian's curves; their Seaquest predates MinAtar 1.0.11's fix), a number of the `minatar-paper` "
            "protocol" + ("." if protocol == "minatar-paper" else f"; these runs use the `{protocol}` protocol, "
                                                                 "so it only sets the scale, not a bar to clear."))
    publish_transfer(args, studies, f"MinAtar leave-one-out transfer (budget {budget_name}"
                     + (f", {aggregation} loss aggregation)" if variant else ")"), variant=variant, note=note)
    return studies


if __name__ == "__main__":
    run(main)
