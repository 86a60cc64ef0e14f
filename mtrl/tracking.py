"""Weights & Biases tracking of a run (``train(wandb=WandbOptions(...))``, ``--wandb``; the ``wandb`` extra).

One W&B run per mtrl run directory (a sweep: one per setting, grouped under the sweep's name): its config.json
content as the W&B config; every scalar mtrl writes to TensorBoard (CleanRL's tag names) as the seed mean under the
tag and per seed under ``<tag>/seed_<k>``, at the same env-steps-per-task step; the summary's final returns
(mean, IQM, 95% interval per task) and the timing as the W&B summary; curves.png as an image. The W&B run's id is
kept in config.json, so a resumed mtrl run continues the same W&B run. ``WANDB_MODE=offline`` logs without an
account (``wandb sync`` uploads later). Only wandb's client is used here; this module maps mtrl's records onto it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class WandbOptions:
    """Where and how runs are tracked."""

    project: str = "mtrl"
    entity: str | None = None
    group: str | None = None  # default: none for a run, the sweep's name for a sweep's settings
    tags: tuple[str, ...] = ()
    mode: str | None = None  # "online", "offline" or "disabled"; default: wandb's (WANDB_MODE)


def require_wandb() -> None:
    """Fail early, before anything is built, when W&B tracking is asked for without wandb installed."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ImportError("--wandb needs wandb: pip install 'mtrl-jax[wandb]'") from None


class WandbRun:
    """The W&B run of one mtrl run directory."""

    def __init__(self, options: WandbOptions, run_dir: str, meta: dict[str, Any], resume_id: str | None = None):
        import wandb

        self.run = wandb.init(
            project=options.project, entity=options.entity, group=options.group, tags=list(options.tags),
            mode=options.mode, dir=run_dir, name=os.path.basename(os.path.normpath(run_dir)), config=meta,
            id=resume_id, resume="allow" if resume_id else None, reinit="create_new")
        # A resumed mtrl run restarts at its last checkpoint and recomputes (bit-identically) the steps it had
        # already logged after it; W&B would refuse those with a warning each, so they are not sent again.
        self.first_new_step = self.run.step if resume_id else 0

    @property
    def id(self) -> str:
        return self.run.id

    def scalars(self, step: int, values: dict[str, np.ndarray], seeds: list[int]) -> None:
        """Each tag's values ``[S]``: the mean of the finite ones under the tag, each seed's under
        ``<tag>/seed_<k>`` (NaN = nothing this window). Steps the W&B run already has are skipped."""
        if step < self.first_new_step:
            return
        record = {}
        for tag, per_seed in values.items():
            per_seed = np.asarray(per_seed, np.float64)
            finite = np.isfinite(per_seed)
            if finite.any():
                record[tag] = float(per_seed[finite].mean())
            record.update({f"{tag}/seed_{seed}": float(v) for seed, v in zip(seeds, per_seed, strict=True)
                           if np.isfinite(v)})
        if record:
            self.run.log(record, step=int(step))

    def finish(self, summary: dict[str, Any], curves: str | None) -> None:
        """The final returns and timing as the W&B summary, the curves as an image; ends the W&B run."""
        import wandb

        for task, values in summary.get("tasks", {}).items():
            for stat in ("mean", "iqm", "ci_low", "ci_high"):
                self.run.summary[f"final_return/{task}/{stat}"] = values["final_return"][stat]
        for key in ("env_steps_per_task", "wall_s", "compile_s", "train_s", "env_steps_per_s"):
            if key in summary:
                self.run.summary[key] = summary[key]
        if curves and os.path.exists(curves):
            self.run.log({"curves": wandb.Image(curves)})
        self.run.finish()

    def close(self) -> None:
        """End the W&B run without a summary (a stopped or failed mtrl run; it resumes into the same one)."""
        self.run.finish()
