"""Shared pieces of the experiment modules: command-line arguments of a study."""

from __future__ import annotations

import argparse
import dataclasses

from mtrl.config import DQNConfig
from mtrl.logger import default_run_dir


def parse_study_args(doc: str, name: str, config: DQNConfig, argv: list[str] | None = None):
    """``--seeds``, ``--total-steps``, ``--run-dir`` of a study -> (config, seeds, run directory)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--total-steps", type=int, default=config.total_steps, help="env steps per task")
    parser.add_argument("--run-dir", default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    out = args.run_dir or default_run_dir(name)
    return dataclasses.replace(config, total_steps=args.total_steps), range(args.seeds), out
