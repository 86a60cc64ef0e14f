"""Command line: ``python -m mtrl train|plot`` (tyro; ``--help`` on each lists every option with its default).

Commands are dataclasses whose `run` calls the library; no training logic lives here.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import tyro

from mtrl.config import DQNConfig


@dataclasses.dataclass
class Train:
    """Train one multi-task DQN per seed on a task set, all seeds in one compiled program."""

    tasks: tuple[str, ...] = ()
    """task specs ENV_ID[:field=value,...], e.g. CartPole-v1:length=1.0 Acrobot-v1"""
    suite: str | None = None
    """a named suite instead of --tasks (cartpole-lengths, classic, cartpole-gravity)"""
    seeds: int = 1
    """number of seeds (runs) trained together"""
    seed: int = 0
    """first seed; runs use seed, seed+1, ..."""
    run_dir: str | None = None
    """output directory (default runs/train/<timestamp>)"""
    tensorboard: bool = False
    """also write TensorBoard events (needs the tensorboard extra)"""
    progress: bool = True
    """show a progress bar"""
    config: Annotated[DQNConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=DQNConfig)

    def task_specs(self) -> list[str]:
        from mtrl.tasks import suite

        if bool(self.tasks) == bool(self.suite):
            raise ValueError("give exactly one of --tasks SPEC [SPEC ...] or --suite NAME")
        return list(self.tasks) if self.tasks else list(suite(self.suite))

    def run(self) -> None:
        from mtrl.tasks import make_taskset
        from mtrl.train import train

        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        taskset = make_taskset(self.task_specs())
        self.config.validate(taskset.num_tasks)
        from mtrl.logger import default_run_dir

        run_dir = self.run_dir or default_run_dir("train")
        result = train(taskset, self.config, seeds=range(self.seed, self.seed + self.seeds), run_dir=run_dir,
                       progress=self.progress, tensorboard=self.tensorboard,
                       extra_metadata={"command": sys.argv, "suite": self.suite})
        from mtrl.logger import summary_markdown

        print(summary_markdown(result.summary))
        print(f"run directory: {run_dir}")


@dataclasses.dataclass
class Plot:
    """Redraw curves.png of a run directory from its eval.csv."""

    run_dir: tyro.conf.Positional[str]
    """a directory written by `mtrl train`"""

    def run(self) -> None:
        from mtrl.plots import plot_run_dir

        print(plot_run_dir(self.run_dir))


COMMANDS = {"train": Train, "plot": Plot}


def main(args: list[str] | None = None) -> None:
    command = tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="mtrl", args=args,
                                                   description="Multi-task and transfer deep Q-learning in JAX.")
    try:
        command.run()
    except ValueError as e:
        print(f"mtrl: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
