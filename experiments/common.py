"""Shared pieces of the experiment modules: run directories and the CartPole-family settings."""

from __future__ import annotations

import datetime
import os


def run_dir(name: str, root: str = "runs") -> str:
    """``runs/<name>/<timestamp>``."""
    return os.path.join(root, name, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
