"""MountainCar-v0 alone with more exploration: two ε settings x 4 seeds as one compiled program (a sweep).

    python -m experiments.mountaincar_exploration [--seeds 4] [--seed 0] [--total-steps N] [--run-dir DIR]

With the default settings ε-greedy DQN never reaches the flag (final greedy return −200, see the classic
study). This study trains MountainCar-v0 with γ = 0.98, lr 4e-3, a target copy every 50 updates and ε decaying
from 1 over 150k steps to 0.1 or to 0.2. The ε floor is a per-run hyperparameter (`Hyperparams.eps_end`), so
both settings and all seeds train together as one `vmap` axis of a single program. Writes `sweep.json` and
`sweep.md` (final greedy return per run, IQM per setting) under runs/mountaincar_exploration/<time>/.
This is a tuning sweep: it runs on seeds 0-3 by default, and what it found (γ 0.98, ε floor 0.2) is reported by
`classic_multitask` on other seeds.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import EARLIER_DEFAULTS, parse_study_args, run, write_study_results
from mtrl.config import DQNConfig
from mtrl.logger import markdown_table
from mtrl.statistics import summarize
from mtrl.trainer import Trainer

CONFIG = DQNConfig(**EARLIER_DEFAULTS, total_steps=300_000, gamma=0.98, lr=4e-3, target_update_period=50,
                   eval_every=20_000)
EPS_DECAY_STEPS = 150_000
EPS_ENDS = (0.1, 0.2)


def main(argv: list[str] | None = None) -> dict:
    args = parse_study_args(__doc__, "mountaincar_exploration", CONFIG, argv, seeds=4, first_seed=0, checkpointed=False,
                            tuned_on=range(0, 4))
    config, seeds = args.config, args.seeds
    trainer = Trainer.create(["MountainCar-v0"], config)
    runs = [(eps_end, seed) for eps_end in EPS_ENDS for seed in seeds]
    hparams = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(runs),) + x.shape), trainer.hparams)
    hparams = hparams.replace(
        eps_end=jnp.asarray([[eps_end] for eps_end, _ in runs], jnp.float32),
        eps_decay_steps=jnp.full((len(runs), 1), float(min(EPS_DECAY_STEPS, config.total_steps)), jnp.float32),
    )
    state = trainer.init([seed for _, seed in runs], hparams=hparams)
    train_chunk, evaluate = trainer.compile(state)
    curve = []
    for size in config.chunk_sizes():  # a shorter last chunk when total_steps is not a multiple of eval_every
        step = train_chunk if size == config.chunk_iterations else trainer.make_train_chunk(size)
        state, _ = step(state)
        curve.append(np.asarray(evaluate(state)).mean(-1)[:, 0])  # [runs]
    final = curve[-1]
    settings = {
        f"eps_end={eps_end}": summarize([final[i] for i, (e, _) in enumerate(runs) if e == eps_end])
        for eps_end in EPS_ENDS
    }
    result = {"config": dataclasses.asdict(config), "eps_decay_steps": EPS_DECAY_STEPS,
              "settings": settings, "curves": np.stack(curve).tolist(), "runs": runs}
    table = markdown_table(
        ["setting", "IQM", "mean", "95% CI (mean)", "per seed"],
        [[name, f"{s['iqm']:.1f}", f"{s['mean']:.1f}", f"[{s['ci_low']:.1f}, {s['ci_high']:.1f}]",
          " ".join(f"{v:.0f}" for v in s["per_seed"])] for name, s in settings.items()],
    )
    text = (f"MountainCar-v0 final greedy return, {config.total_steps:,} env steps, seeds {seeds}; gamma 0.98, "
            f"lr 4e-3, target period 50, eps 1 -> eps_end over {EPS_DECAY_STEPS:,} steps.\n\n{table}")
    write_study_results(args, "sweep", result, text, "MountainCar-v0 exploration sweep (tuning seeds)")
    return result


if __name__ == "__main__":
    run(main)
