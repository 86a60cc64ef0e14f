"""Quickstart study (what `make demo` runs): one DQN learns four CartPole pole lengths at once.

    python -m experiments.quickstart [--seeds 4] [--seed 1000] [--total-steps N] [--run-dir DIR] [--publish]

Trains `cartpole-lengths` (CartPole-v1 with pole lengths 0.25, 0.5, 1.0, 1.5) with a shared torso and one
head per task, all seeds in one compiled program (settings: `CONFIG`), then prints the per-task final greedy
return table and where the learning curves are. `make demo` runs 4 seeds; the published table
(docs/results/quickstart.md) is `--seeds 10 --publish`.
"""

from __future__ import annotations

import dataclasses

from experiments.common import parse_study_args, run, train_or_reuse, write_study_results
from experiments.robustness import TUNED_ON
from mtrl.config import DQNConfig
from mtrl.logger import summary_markdown
from mtrl.tasks import suite

# The library defaults, unchanged. They were chosen on the robustness study's tuning seeds (`TUNED_ON`:
# experiments/robustness.py, which reports them on held-out seeds).
CONFIG = DQNConfig()


def main(argv: list[str] | None = None) -> dict:
    args = parse_study_args(__doc__, "quickstart", CONFIG, argv, seeds=4, tuned_on=TUNED_ON)
    summary = train_or_reuse(list(suite("cartpole-lengths")), args.config, args.seeds, args.out, args.rerun,
                             args.name, checkpoints=args.checkpoints)
    text = (summary_markdown(summary) + f"\nLearning curves: `{args.out}/curves.png`. Settings: the library "
            "defaults (`DQNConfig()`: 3-step returns, 50k replay, lr decayed to half, ε to 0.01).\n")
    write_study_results(args, "results", {"summary": summary, "config": dataclasses.asdict(args.config)},
                        text, "Quickstart: cartpole-lengths, one network for four pole lengths",
                        figures={"curves.png": f"{args.out}/curves.png"})
    print(f"learning curves: {args.out}/curves.png\n"
          f"watch the network balance all four poles: python -m mtrl render {args.out} --tile")
    return summary


if __name__ == "__main__":
    run(main)
