"""Time to solve CartPole-v1, mtrl vs PureJaxRL's DQN program, under one evaluation protocol.

mtrl runs at its default settings, PureJaxRL's program (`benchmarks.purejaxrl_dqn`) at PureJaxRL's dqn.py
default config.

    python -m benchmarks.time_to_solve --seed 0                     # mtrl's solve; prints JSON
    python -m benchmarks.time_to_solve --purejaxrl-solve --seed 0   # PureJaxRL's solve; prints JSON

The protocol, the same on both sides: every `SOLVE_EVAL_EVERY` (5,000) env steps the current params play
`EVAL_EPISODES` (10) greedy episodes (argmax actions, each from a fresh reset, played to its end); the run is
solved at the first evaluation whose mean return is at least the target (475). Wall time runs from after the
imports to that evaluation: init, trace, compile, training and every evaluation included. A run that has not
solved when its budget of env steps is spent is *censored*: ``solved`` is false, ``env_steps`` is the budget
and ``wall_s`` the time the budget took, both lower bounds on a time to solve it never showed. Budgets are each
program's default run length: mtrl's `DQNConfig.total_steps` (300k), PureJaxRL's dqn.py default config (500k).

Each call prints one JSON object:

- ``program``: ``"mtrl"`` or ``"purejaxrl"``; ``seed``;
- ``solved``: whether the target was reached within the budget (false: censored);
- ``wall_s``: seconds to the solving evaluation, or to the end of the budget if censored;
- ``ready_s``: seconds to the compiled programs and the initial state (before the first chunk);
- ``env_steps``: env steps trained before the solving evaluation (the budget if censored);
- ``budget_env_steps``, ``target``, ``eval_every``, ``eval_episodes``: the protocol this run used;
- ``return``: the mean greedy return of the last evaluation;
- ``curve``: ``[[env_steps, mean greedy return], ...]``, one pair per evaluation;
- ``config``: the program's settings.

Across seeds (`summarize_solves`, used by `benchmarks.throughput`) a program gets the fraction of runs solved
and the Kaplan–Meier median time (and env steps) to solve with unsolved runs censored (`censored_median`):
"not reached" (null) when fewer than half the runs solved. `benchmarks.throughput` runs each
solve in a fresh process (mtrl twice: with an empty compilation cache, then with the cache that run left), so
in-process caches never flatter either figure.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

# mtrl's default settings, evaluated every 5k env steps instead of 20k: `eval_every` only sets the chunk length
# and when the greedy evaluation runs (its key never touches training), so the run learns exactly as with the
# defaults, and the solve is seen up to 15k steps sooner. PureJaxRL's program is evaluated on the same cadence.
SOLVE_EVAL_EVERY = 5_000
EVAL_EPISODES = 10  # mtrl's `DQNConfig.eval_episodes`
TARGET = 475.0
# PureJaxRL's dqn.py default config runs 500k env steps: its budget here.
PUREJAXRL_BUDGET = 500_000
# The PureJaxRL evaluation's key stream: the seed's key folded with this tag, then with the env step count, so
# evaluation never draws from (or advances) the training keys.
_EVAL_STREAM = 0x65766C  # "evl"


def censored_median(values, solved) -> float | None:
    """Kaplan–Meier median of ``values`` with the unsolved runs censored (`mtrl.statistics.kaplan_meier_median`,
    the same rule as mtrl's transfer tables): the time by which half the runs are estimated to have solved; None
    ("not reached") when fewer than half solved. A censored run's recorded value never counts as a solve."""
    from mtrl.statistics import kaplan_meier_median

    values, solved = np.asarray(values, np.float64), np.asarray(solved, bool)
    if values.shape != solved.shape or values.ndim != 1:
        raise ValueError(f"values and solved must be 1-d of one length; got {values.shape} and {solved.shape}")
    median = kaplan_meier_median(np.where(solved, values, np.inf), ~solved) if len(values) else float("inf")
    return None if np.isinf(median) else median


def summarize_solves(runs: list[dict]) -> dict:
    """Across runs of one program (dicts as `solve` / `purejaxrl_solve` return): ``runs``, ``solved`` (count),
    ``solved_fraction``, ``median_wall_s`` and ``median_env_steps`` (`censored_median`; None = not reached)."""
    solved = [bool(r["solved"]) for r in runs]
    return {"runs": len(runs), "solved": sum(solved), "solved_fraction": sum(solved) / len(runs) if runs else 0.0,
            "median_wall_s": censored_median([r["wall_s"] for r in runs], solved),
            "median_env_steps": censored_median([r["env_steps"] for r in runs], solved)}


def solve(seed: int, target: float = TARGET) -> dict:
    """mtrl's default `DQNConfig` on CartPole-v1 until its greedy evaluation reaches ``target`` or the budget
    (``total_steps``) is spent; the JSON described in the module docstring."""
    import dataclasses

    import jax

    from mtrl.config import DQNConfig
    from mtrl.trainer import Trainer

    config = DQNConfig(eval_every=SOLVE_EVAL_EVERY)
    assert config.eval_episodes == EVAL_EPISODES and config.chunk_iterations * config.num_envs == SOLVE_EVAL_EVERY
    t0 = time.perf_counter()
    trainer = Trainer.create(["CartPole-v1"], config)
    state, chunk, evaluate = trainer.start([seed])
    jax.block_until_ready(state)
    ready_s = time.perf_counter() - t0
    steps, ret, curve = 0, float("nan"), []
    while steps < config.total_steps:
        state, _ = chunk(state)
        steps += config.chunk_iterations * config.num_envs
        ret = float(np.asarray(evaluate(state)).mean())
        curve.append([steps, ret])
        if ret >= target:
            break
    return {"program": "mtrl", "seed": seed, "solved": bool(ret >= target), "wall_s": time.perf_counter() - t0,
            "ready_s": ready_s, "env_steps": steps, "budget_env_steps": config.total_steps, "target": target,
            "eval_every": SOLVE_EVAL_EVERY, "eval_episodes": config.eval_episodes, "return": ret, "curve": curve,
            "config": dataclasses.asdict(config)}


def purejaxrl_solve(seed: int, target: float = TARGET, budget: int = PUREJAXRL_BUDGET,
                    eval_every: int = SOLVE_EVAL_EVERY, eval_episodes: int = EVAL_EPISODES, **overrides) -> dict:
    """PureJaxRL's DQN program (`benchmarks.purejaxrl_dqn`, its default configuration unless ``overrides``)
    trained in chunks of ``eval_every`` env steps (500 iterations x 10 envs), each followed by a greedy
    evaluation of ``eval_episodes`` episodes (`purejaxrl_dqn.make_evaluator`), until the mean return reaches
    ``target`` or ``budget`` env steps are spent; the JSON described in the module docstring."""
    import jax

    from benchmarks import purejaxrl_dqn

    cfg = {**purejaxrl_dqn.DEFAULTS, **overrides}
    if eval_every % cfg["num_envs"] or budget % eval_every:
        raise ValueError(f"eval_every ({eval_every}) must be a multiple of num_envs ({cfg['num_envs']}) and "
                         f"budget ({budget}) a multiple of eval_every")
    t0 = time.perf_counter()
    init, chunk = purejaxrl_dqn.make(**overrides)
    runner = init(seed)
    # Compiled ahead of the loop (what the first calls would do anyway) so that `ready_s` means what mtrl's does.
    chunk = chunk.lower(runner, eval_every // cfg["num_envs"]).compile()
    eval_key = jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_STREAM)
    evaluate = purejaxrl_dqn.make_evaluator(eval_episodes).lower(runner.train.params, eval_key).compile()
    jax.block_until_ready(runner)
    ready_s = time.perf_counter() - t0
    steps, ret, curve = 0, float("nan"), []
    while steps < budget:
        runner, _ = chunk(runner)
        steps = int(runner.train.timesteps)
        ret = float(np.asarray(evaluate(runner.train.params, jax.random.fold_in(eval_key, steps))).mean())
        curve.append([steps, ret])
        if ret >= target:
            break
    return {"program": "purejaxrl", "seed": seed, "solved": bool(ret >= target),
            "wall_s": time.perf_counter() - t0, "ready_s": ready_s, "env_steps": steps, "budget_env_steps": budget,
            "target": target, "eval_every": eval_every, "eval_episodes": eval_episodes, "return": ret,
            "curve": curve, "config": cfg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--purejaxrl-solve", action="store_true",
                        help="solve with PureJaxRL's DQN program (benchmarks.purejaxrl_dqn) instead of mtrl")
    args = parser.parse_args()
    print(json.dumps(purejaxrl_solve(args.seed) if args.purejaxrl_solve else solve(args.seed)))


if __name__ == "__main__":
    main()
