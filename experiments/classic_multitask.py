"""Multi-task vs single-task on the `classic` suite (CartPole-v1, Acrobot-v1, MountainCar-v0).

    python -m experiments.classic_multitask [--seeds 10] [--seed 1000] [--total-steps N] [--multi-task-weights W W W]
                                            [--n-step N] [--loss-aggregation sum|popart]

One DQN with per-task input adapters, a shared torso and per-task heads learns the three tasks together;
the baseline trains the same architecture on each task alone, with the same per-task budget, settings (MountainCar
with its own γ and ε schedule, see `SPECS`) and seeds. The multi-task loss weights CartPole 0.1 (see
`MULTI_TASK_WEIGHTS`). With ``--loss-aggregation popart`` the multi-task run normalises each task's TD targets
(PopArt, `mtrl.popart`) instead, with equal weights unless ``--multi-task-weights`` is given (run directory
``multi_task_popart``; the single-task baselines are the same runs).
Writes both runs' directories plus `comparison.json` and `comparison.md` under runs/classic_multitask/<time>/.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from experiments.common import EARLIER_DEFAULTS, parse_study_args, run, run_wall_s, train_or_reuse, write_study_results
from mtrl.config import DQNConfig
from mtrl.logger import markdown_table

# Target copy every 50 updates, not the default 100: with 100, CartPole in this suite ended at IQM 303
# (multi-task) and 328 (alone) instead of 500; cartpole-lengths needs 100 (see README).
# lr 2e-3 (4x the default) and 500k steps: MountainCar needs both to reach the flag (at 300k and lr 5e-4, 1 of 4
# seeds did in the multi-task run; at lr 2e-3, 2 of 4); CartPole and Acrobot learned at either lr.
CONFIG = DQNConfig(**EARLIER_DEFAULTS, total_steps=500_000, adapter_size=64, eval_every=20_000, target_update_period=50,
                   lr=2e-3)
# MountainCar's own discount and exploration (task-spec overrides; the others keep the config's): γ 0.98 and
# ε decaying to 0.2, not 0.05, over 150k steps, the settings `experiments.mountaincar_exploration` found to
# reach the flag alone. With the config's γ 0.995 and ε floor 0.05 it never did (final return -200).
SPECS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0:gamma=0.98,eps_end=0.2,eps_decay_fraction=0.3"]
# Loss weights of the multi-task run (L = Σₜ wₜ Lₜ). CartPole's squared TD loss is ~15-50x Acrobot's and ~100x
# MountainCar's here (metrics.jsonl), so with equal weights its gradient dominates the shared torso (the global
# norm, clipped at 10, reached ~1800): Acrobot then ended at IQM -73.0 multi-task vs -62.9 alone. Weighting
# CartPole 0.1 rebalances the torso. A single-task run has one weight, which Adam makes irrelevant.
MULTI_TASK_WEIGHTS = (0.1, 1.0, 1.0)
# Every setting above was chosen by looking at seeds 0-3.
TUNED_ON = range(0, 4)


def compare(multi: dict, single: dict[str, dict], seed: int = 0) -> list[dict]:
    """Per task: multi-task and single-task final-return summaries, and the probability that a multi-task run
    ends above a single-task run (ties ½) with its bootstrap 95% interval. ``verdict`` is "better" / "worse" when
    that interval lies above / below ½, else "no clear difference"."""
    from mtrl.statistics import probability_of_improvement, probability_of_improvement_ci

    rows = []
    for name, s in single.items():
        m = multi["tasks"][name]["final_return"]
        b = s["tasks"][name]["final_return"]
        x, y = np.asarray(m["per_seed"])[:, None], np.asarray(b["per_seed"])[:, None]
        p = probability_of_improvement(x, y)
        low, high = probability_of_improvement_ci(x, y, seed=seed)
        verdict = "better" if low > 0.5 else "worse" if high < 0.5 else "no clear difference"
        rows.append({"task": name, "multi_task": m, "single_task": b, "p_multi_better": p,
                     "p_multi_better_ci": [low, high], "verdict": verdict})
    return rows


def fmt(r: dict) -> str:
    return f"{r['iqm']:.1f} (mean {r['mean']:.1f}, [{r['ci_low']:.1f}, {r['ci_high']:.1f}])"


def _wall(summary: dict) -> str:
    wall = run_wall_s(summary)
    return "unknown" if wall is None else f"{wall:.0f} s"


def main(argv: list[str] | None = None) -> list[dict]:
    weights = {"type": float, "nargs": len(SPECS), "default": None,
               "help": f"loss weight per task of the multi-task run (default {MULTI_TASK_WEIGHTS}; with PopArt 1 each)"}
    aggregation = {"choices": ["sum", "popart"], "default": "sum",
                   "help": "how the multi-task run combines task losses (default: sum, as published)"}
    n_step = {"type": int, "default": CONFIG.n_step,
              "help": f"steps per TD target (default {CONFIG.n_step}, as published; the library default is "
                      f"{DQNConfig().n_step})"}
    args = parse_study_args(__doc__, "classic_multitask", CONFIG, argv, tuned_on=TUNED_ON,
                            extra={"--multi-task-weights": weights, "--n-step": n_step,
                                   "--loss-aggregation": aggregation})
    config, seeds, out = dataclasses.replace(args.config, n_step=args.options["n_step"]), args.seeds, args.out
    popart = args.options["loss_aggregation"] == "popart"
    weights = args.options["multi_task_weights"] or ((1.0,) * len(SPECS) if popart else MULTI_TASK_WEIGHTS)
    multi_config = dataclasses.replace(config, task_weights=tuple(weights),
                                       loss_aggregation=args.options["loss_aggregation"])
    multi_dir = os.path.join(out, "multi_task_popart" if popart else "multi_task")
    multi = train_or_reuse(SPECS, multi_config, seeds, multi_dir, args.rerun, args.name,
                           checkpoints=args.checkpoints)
    single_dirs = {spec: os.path.join(out, "single_" + spec.split(":")[0]) for spec in SPECS}
    single = {spec: train_or_reuse([spec], config, seeds, single_dirs[spec], args.rerun, args.name,
                                   checkpoints=args.checkpoints)
              for spec in SPECS}
    rows = compare(multi, single)
    data = {"config": dataclasses.asdict(config), "tasks": SPECS, "loss_aggregation": multi_config.loss_aggregation,
            "multi_task_weights": list(multi_config.task_weights), "rows": rows}
    table = markdown_table(
        ["task", "multi-task IQM (mean, 95% CI)", "single-task IQM (mean, 95% CI)", "P(multi > single) [95% CI]",
         "verdict"],
        [[r["task"], fmt(r["multi_task"]), fmt(r["single_task"]),
          f"{r['p_multi_better']:.2f} [{r['p_multi_better_ci'][0]:.2f}, {r['p_multi_better_ci'][1]:.2f}]",
          r["verdict"]] for r in rows],
    )
    text = (f"Final greedy return (mean of {config.eval_episodes} episodes per seed), {config.total_steps:,} env "
            f"steps per task, {len(seeds)} seeds, {config.n_step}-step returns. Settings: `CONFIG` and `SPECS` in "
            f"experiments/classic_multitask.py "
            f"(64-unit per-task adapters, target copy every 50 updates, lr 2e-3; MountainCar with its own gamma and "
            f"epsilon floor); the multi-task loss weights are {list(multi_config.task_weights)}"
            + (" with PopArt-normalised task losses (step 3e-4 per target)" if popart else "") + ". Intervals: 95% "
            f"percentile bootstrap over seeds. P(multi > single): probability that a multi-task run's final return "
            f"exceeds a single-task run's (ties count 1/2), bootstrap 95% CI; the verdict is 'better' or 'worse' "
            f"only when that interval excludes 1/2.\n\n{table}\n"
            f"multi-task wall {_wall(multi)}; single-task walls "
            + ", ".join(f"{k}: {_wall(v)}" for k, v in single.items()) + "\n")
    write_study_results(args, "comparison_popart" if popart else "comparison", data, text,
                        "Multi-task vs single-task on classic control" + (" (PopArt)" if popart else ""),
                        page="classic_multitask_popart" if popart else None,
                        runs=[multi_dir, *single_dirs.values()])  # not the other aggregation's multi-task run
    return rows


if __name__ == "__main__":
    run(main)
