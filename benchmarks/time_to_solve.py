"""Time to solve CartPole-v1 with mtrl's default settings, and the same-machine PureJaxRL-like default run.

    python -m benchmarks.time_to_solve --seed 0          # one solve; prints JSON
    python -m benchmarks.time_to_solve --minimal-run     # the minimal DQN's 500k-step default run; prints JSON

A solve is timed from after the imports to the first greedy evaluation (mean of 10 episodes) at or above 475:
init, trace, compile, training and every evaluation included. `benchmarks.throughput` runs each measurement in
a fresh process, once with an empty compilation cache (`MTRL_COMPILATION_CACHE` pointed at a new directory: a
first run) and once more with the cache that run left (a rerun of the same program: a second seed, a resumed run,
a sweep point), so in-process caches never flatter either figure.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

# mtrl's default settings, evaluated every 5k env steps instead of 20k: `eval_every` only sets the chunk length
# and when the greedy evaluation runs (its key never touches training), so the run learns exactly as with the
# defaults, and the solve is seen up to 15k steps sooner.
SOLVE_EVAL_EVERY = 5_000
# PureJaxRL's DQN default run length (reference: ../shared/reference/throughput.md).
MINIMAL_RUN_STEPS = 500_000


def solve(seed: int, target: float = 475.0) -> dict:
    """Wall seconds (init + compile + training + evaluations) until greedy CartPole-v1 return >= target."""
    import dataclasses

    import jax

    from mtrl.config import DQNConfig
    from mtrl.train import Trainer

    config = DQNConfig(eval_every=SOLVE_EVAL_EVERY)
    t0 = time.perf_counter()
    trainer = Trainer.create(["CartPole-v1"], config)
    state, chunk, evaluate = trainer.start([seed])
    jax.block_until_ready(state)
    ready_s = time.perf_counter() - t0
    steps, ret = 0, float("nan")
    while steps < config.total_steps:
        state, _ = chunk(state)
        steps += config.chunk_iterations * config.num_envs
        ret = float(np.asarray(evaluate(state)).mean())
        if ret >= target:
            break
    return {"seed": seed, "solved": bool(ret >= target), "wall_s": time.perf_counter() - t0, "ready_s": ready_s,
            "env_steps": steps, "return": ret, "config": dataclasses.asdict(config)}


def minimal_run(steps: int = MINIMAL_RUN_STEPS, seed: int = 0) -> dict:
    """Wall seconds, compile included, of `benchmarks.minimal_dqn` at PureJaxRL's default configuration for
    ``steps`` env steps (threefry keys, as PureJaxRL): what a PureJaxRL-style default run costs on this machine.
    (Its returns are not measured; PureJaxRL's run reaches 500 per ../shared/reference/returns.csv.)"""
    import jax

    from benchmarks import minimal_dqn

    t0 = time.perf_counter()
    init, chunk = minimal_dqn.make()
    state = jax.block_until_ready(chunk(init(seed), iterations=steps // 10))
    return {"env_steps": steps, "wall_s": time.perf_counter() - t0, "iteration": int(state.iteration)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minimal-run", action="store_true", help="time the minimal DQN's default run instead")
    args = parser.parse_args()
    print(json.dumps(minimal_run() if args.minimal_run else solve(args.seed)))


if __name__ == "__main__":
    main()
