"""Leave-one-out transfer on the `classic` suite: pretrain on two of CartPole, Acrobot, MountainCar; transfer
to the third.

    python -m experiments.classic_transfer [--seeds 4] [--total-steps N] [--run-dir DIR]

The tasks differ in observation size and action count, so the network has per-task input adapters (width 64)
and only the shared torso transfers (with `joint`, the source heads and adapters too). For each held-out task:
pretrain on the other two (`SOURCE_CONFIG`), then run every transfer mode against scratch on the held-out one
(`--total-steps` = target env steps). Writes runs/classic_transfer/<time>/<held-out>/{source,study}/ and a
combined `summary.md` of the three transfer tables.
"""

from __future__ import annotations

import os

from experiments.common import parse_study_args, pretrain_and_study, scale_budget
from mtrl.config import DQNConfig
from mtrl.tasks import suite
from mtrl.transfer import TransferSettings

# As in classic_multitask: adapters for the different observation sizes, target copy every 50 updates.
SOURCE_CONFIG = DQNConfig(total_steps=200_000, adapter_size=64, target_update_period=50)
TARGET_CONFIG = DQNConfig(total_steps=100_000, adapter_size=64, target_update_period=50, eval_every=10_000)
SETTINGS = TransferSettings(unfreeze_at=30_000)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    target, seeds, out = parse_study_args(__doc__, "classic_transfer", TARGET_CONFIG, argv, seeds=4)
    source = scale_budget(SOURCE_CONFIG, target.total_steps, TARGET_CONFIG.total_steps)
    tasks = list(suite("classic"))
    studies = {}
    for held_out in tasks:
        name = held_out.split("-")[0].lower()
        sources = [t for t in tasks if t != held_out]
        studies[held_out] = pretrain_and_study("classic_transfer", os.path.join(out, name), sources, [held_out],
                                               seeds, source, target, SETTINGS)
    from mtrl.study import study_markdown

    with open(os.path.join(out, "summary.md"), "w") as f:
        for held_out, study in studies.items():
            f.write(f"## held out: {held_out}\n\n{study_markdown(study)}\n")
    print(f"combined tables: {out}/summary.md")
    return studies


if __name__ == "__main__":
    main()
