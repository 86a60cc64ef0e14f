"""Robustness of the learner: which stabilisers make `cartpole-lengths` learn on every seed.

    python -m experiments.robustness [--variants NAME,NAME,...] [--seeds 10] [--seed 0] [--total-steps 300000]
                                     [--run-dir DIR] [--rerun] [--publish]

Each variant (`VARIANTS`: one stabiliser on top of the one-step baseline, or several combined) trains
`cartpole-lengths` (pole lengths 0.25, 0.5, 1.0, 1.5: four tasks, one network) on every seed in one compiled
program. A task-seed **fails** when its final greedy return (mean of `eval_episodes` episodes at the end of the
budget) is below 400 and **misses** when it is below 475 (CartPole-v1's solved threshold). The table gives, per
variant, failures and misses out of (4 x seeds) task-seeds, the IQM and the lowest seed per pole length.

Seeds (`TUNED_ON`): the defaults (`mtrl.config.DQNConfig`: the `DEFAULTS_VARIANT` row) were chosen in two rounds,
each picking the variant with the fewest failures on its tuning seeds: 3-step returns on `--seed 100 --seeds 32`
(an NVIDIA H200); then, after 3-step runs that had held 500 collapsed late in training, among 3-step variants on
`--seed 200 --seeds 16` (this CPU): 3-step returns with a 50k replay, lr decayed to half and ε to 0.01 failed on none
of 64 task-seeds (3-step alone: 14). They are reported with the default `--seed 0` (held out; also
`python -m mtrl train`'s first seed) and on `--seed 300`. Rerunning continues: finished variants are reused,
interrupted ones resumed.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from experiments.common import EARLIER_DEFAULTS, parse_study_args, run, train_or_reuse, write_study_results
from mtrl.config import DQNConfig
from mtrl.logger import markdown_table
from mtrl.statistics import iqm
from mtrl.tasks import suite

# The learner before the stabilisers: one-step targets, no LayerNorm, lr decayed to 0, ε to 0.05, hard target
# copies every 100 updates.
BASELINE = DQNConfig(**EARLIER_DEFAULTS, layer_norm=False, tau=1.0, target_update_period=100)
SCHEDULE = {"lr_end_fraction": 0.5, "eps_end": 0.01}  # lr decayed to half, ε floor 0.01
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "n-step 3": {"n_step": 3},
    "LayerNorm": {"layer_norm": True},
    "lr/ε schedule": SCHEDULE,
    "Polyak τ=0.01": {"tau": 0.01, "target_update_period": 1},
    "target period 250": {"target_update_period": 250},
    "n-step 3 + LayerNorm": {"n_step": 3, "layer_norm": True},
    "n-step 3 + schedule": {"n_step": 3, **SCHEDULE},
    "n-step 3 + ε to 0.01": {"n_step": 3, "eps_end": 0.01},
    "n-step 3 + lr to 0.5": {"n_step": 3, "lr_end_fraction": 0.5},
    "n-step 3 + buffer 50k": {"n_step": 3, "buffer_size": 50_000},
    "n-step 3 + schedule + buffer 50k": {"n_step": 3, "buffer_size": 50_000, **SCHEDULE},
    "n-step 3 + LayerNorm + schedule": {"n_step": 3, "layer_norm": True, **SCHEDULE},
    "n-step 5 + schedule": {"n_step": 5, **SCHEDULE},
    "n-step 5 + LayerNorm + schedule": {"n_step": 5, "layer_norm": True, **SCHEDULE},
}
TUNED_ON = (*range(100, 132), *range(200, 216))
DEFAULTS_VARIANT = "n-step 3 + schedule + buffer 50k"  # equal to DQNConfig() (tested)
FAIL, SOLVED = 400.0, 475.0


def variant_config(name: str, total_steps: int) -> DQNConfig:
    return dataclasses.replace(BASELINE, total_steps=total_steps, **VARIANTS[name])


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def table(results: dict[str, dict], tasks: list[str], num_seeds: int) -> str:
    header = ["variant", f"fail (< {FAIL:.0f}) / {len(tasks) * num_seeds}", f"miss (< {SOLVED:.0f})"]
    header += [f"{t.split('=')[-1]}: IQM / min" for t in tasks]
    rows = []
    for name, summary in results.items():
        finals = np.array([summary["tasks"][t]["final_return"]["per_seed"] for t in tasks])  # [T, S]
        rows.append([name, int((finals < FAIL).sum()), int((finals < SOLVED).sum())]
                    + [f"{iqm(f):.0f} / {f.min():.0f}" for f in finals])
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> dict:
    args = parse_study_args(__doc__, "robustness", BASELINE, argv, seeds=10, tuned_on=TUNED_ON, first_seed=0,
                            extra={"--variants": {"default": ",".join(VARIANTS),
                                                  "help": "comma-separated variant names (default: all)"}})
    names = [v.strip() for v in args.options["variants"].split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; allowed: {', '.join(VARIANTS)}")
    tasks = list(suite("cartpole-lengths"))
    results = {}
    for name in names:
        config = variant_config(name, args.config.total_steps)
        print(f"[robustness] {name}: {', '.join(f'{k}={v}' for k, v in VARIANTS[name].items()) or 'baseline'}")
        results[name] = train_or_reuse(tasks, config, args.seeds, os.path.join(args.out, slug(name)), args.rerun,
                                       args.name, progress=False, checkpoints=args.checkpoints)
    text = (f"`cartpole-lengths`, {args.config.total_steps:,} env steps per task, {len(args.seeds)} seeds. A task-seed "
            f"fails below a final greedy return of {FAIL:.0f} and misses below {SOLVED:.0f}. Every variant is the "
            "one-step baseline (`BASELINE` in experiments/robustness.py: the earlier defaults — 10k replay, lr decayed "
            "to 0, ε to 0.05 — with hard target copies every 100 updates, no LayerNorm) with the settings named:\n\n"
            + table(results, tasks, len(args.seeds))
            + "\n" + "\n".join(f"- {name}: {VARIANTS[name] or 'the baseline'}" for name in names) + "\n")
    write_study_results(args, "results", {"variants": {n: VARIANTS[n] for n in names}, "results": results}, text,
                        "Robustness: stabilisers on cartpole-lengths",
                        runs=[os.path.join(args.out, slug(name)) for name in names])
    return results


if __name__ == "__main__":
    run(main)
