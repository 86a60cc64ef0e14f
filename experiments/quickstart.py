"""Quickstart study (what `make demo` runs): one DQN learns four CartPole pole lengths at once.

    python -m experiments.quickstart [--seeds 4] [--total-steps N]

Trains `cartpole-lengths` (CartPole-v1 with pole lengths 0.25, 0.5, 1.0, 1.5) with a shared torso and one
head per task, 4 seeds in one compiled program, then prints the per-task final greedy return table and where
the learning curves are.
"""

from __future__ import annotations

from experiments.common import parse_study_args
from mtrl.config import DQNConfig
from mtrl.logger import summary_markdown
from mtrl.tasks import suite
from mtrl.train import train

CONFIG = DQNConfig()


def main(argv: list[str] | None = None) -> dict:
    config, seeds, out = parse_study_args(__doc__, "quickstart", CONFIG, argv)
    result = train(list(suite("cartpole-lengths")), config, seeds=seeds, run_dir=out,
                   extra_metadata={"experiment": "quickstart"})
    print()
    print(summary_markdown(result.summary))
    print(f"learning curves: {out}/curves.png")
    return result.summary


if __name__ == "__main__":
    main()
