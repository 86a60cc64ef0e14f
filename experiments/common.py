"""Shared pieces of the experiment modules: run directories and the CartPole-family settings."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os

from mtrl.config import DQNConfig


def run_dir(name: str, root: str = "runs") -> str:
    """``runs/<name>/<timestamp>``."""
    return os.path.join(root, name, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def parse_study_args(doc: str, name: str, config: DQNConfig, argv: list[str] | None = None):
    """``--seeds``, ``--total-steps``, ``--run-dir`` of a study -> (config, seeds, run directory)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--total-steps", type=int, default=config.total_steps, help="env steps per task")
    parser.add_argument("--run-dir", default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return dataclasses.replace(config, total_steps=args.total_steps), range(args.seeds), args.run_dir or run_dir(name)
