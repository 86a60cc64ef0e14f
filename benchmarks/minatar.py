"""MinAtar throughput: one game, the five-game program, fused vs one after another, the env-only ceiling, and the
replay's memory; writes JSON and a Markdown table.

    python -m benchmarks.minatar [--out benchmarks/results] [--quick] [--budget cpu|paper]

Measures, in one process (ratios are taken within this run), at the MinAtar studies' settings of ``--budget``
(`experiments.minatar_common`):

1. each game alone and all five games in one program, one seed, and the five games with the budget's seeds (the
   studies' program): training env steps/s (all games and seeds) once the buffer holds `learning_starts`
   transitions, and compile seconds (from an empty persistent cache);
2. the five games fused in one program vs the same five trained one after another (same per-game steps): the
   ratio of training rates, and of wall time including each program's compile;
3. the ceiling: gymnax alone, random actions, the same games and number of envs (a `lax.scan` of `vmap`ped
   steps, no learner), env steps/s; and the compile seconds of the five games' env-only program in a fresh process:
   what gymnax's games cost to compile on their own, beside the five-game training program's compile;
4. the replay: bytes per stored transition (observations are bool) against the bound 2·H·W·C + 32, and the whole
   buffer's size for the five games (100k transitions each at the `cpu` budget);
5. why `mtrl.networks.Conv3x3` (a 3x3 convolution as one matmul) and not flax's `nn.Conv`: the five-game program
   with each;
6. the multi-task studies' wider network (`WIDE_MULTI_NETWORK`, √5 times one game's widths: the `paper` budget's
   and the `cpu` width pilot's) on the five games with the budget's seeds, beside one game's network size.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

import mtrl.networks
from benchmarks.throughput import chunk_rate, record, write_results
from experiments.minatar_common import BUDGETS, WIDE_MULTI_NETWORK, base_config
from mtrl.logger import environment_info, host_description, markdown_table
from mtrl.replay import init as replay_init
from mtrl.tasks import MINATAR_GAMES, make_taskset
from mtrl.trainer import Trainer


def env_only(games: list[str], num_envs: int, protocol: str, steps: int) -> tuple[float, float]:
    """(env steps/s, compile s) of gymnax alone (random valid actions) for ``games`` x ``num_envs`` envs, in one
    scan of ``steps`` steps; compile s counts tracing, lowering and XLA's compile, as `chunk_rate` does."""
    taskset = make_taskset(games, protocol)
    counts = jnp.asarray(taskset.action_mask.sum(-1), jnp.int32)[:, None]

    def body(carry, key):
        states = carry
        k_act, k_step = jax.random.split(key)
        actions = jax.random.randint(k_act, (taskset.num_tasks, num_envs), 0, counts)
        _, states, reward, *_ = taskset.step(k_step, states, actions)
        return states, reward.sum()

    _, states = taskset.reset(jax.random.key(0), num_envs)
    t0 = time.perf_counter()
    run = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, steps))[1].sum()).lower(
        states, jax.random.key(1)).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(run(states, jax.random.key(1)))
    best = np.inf
    for i in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(run(states, jax.random.key(2 + i)))
        best = min(best, time.perf_counter() - t0)
    return steps * num_envs * len(games) / best, compile_s


def env_only_rate(games: list[str], num_envs: int, protocol: str, steps: int) -> float:
    """Env steps/s of gymnax alone (random valid actions) for ``games`` x ``num_envs`` envs, in one scan."""
    return env_only(games, num_envs, protocol, steps)[0]


def fresh_env_only_compile_s(games: list[str], num_envs: int, protocol: str) -> float:
    """`env_only`'s compile seconds in a new process: nothing of gymnax traced or compiled before, as for the first
    program of this benchmark (the five-game training program), so the two compare."""
    code = ("from benchmarks.minatar import env_only; "
            f"print(env_only({games!r}, {num_envs}, {protocol!r}, 10)[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


class FlaxConv3x3(nn.Module):
    """flax's `nn.Conv` (3x3, stride 1, 'VALID') in place of `mtrl.networks.Conv3x3`, for the comparison."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Conv(self.features, (3, 3), padding="VALID")(x)


def flax_conv_rate(games: list[str], config, iterations: int) -> tuple[float, float]:
    """`chunk_rate` of the program with every `Conv3x3` of the torso built as `FlaxConv3x3`."""
    with mock.patch.object(mtrl.networks, "Conv3x3", FlaxConv3x3):
        return chunk_rate(Trainer.create(games, config), [0], iterations)


def replay_memory(games: list[str], capacity: int, protocol: str) -> dict:
    taskset = make_taskset(games, protocol)
    state = jax.eval_shape(lambda: replay_init(taskset.num_tasks, capacity, taskset.obs_shape, taskset.obs_dtype,
                                               store_truncated=True))
    total = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state.data))
    cells = int(np.prod(taskset.obs_shape))
    return {"obs_shape": list(taskset.obs_shape), "obs_dtype": str(taskset.obs_dtype), "capacity_per_game": capacity,
            "bytes_per_transition": total / (taskset.num_tasks * capacity), "bound": 2 * cells + 32,
            "total_bytes": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--budget", choices=["cpu", "paper"], default="cpu", help="settings to measure (default cpu)")
    args = parser.parse_args()
    os.environ["MTRL_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="mtrl-bench-cache-")
    budget = BUDGETS[args.budget]
    # learning from the first iteration, so every timed iteration learns; a small buffer keeps setup quick
    config = dataclasses.replace(base_config(budget), learning_starts=0, buffer_size=8 * budget.num_envs * 64)
    iters = 40 if args.quick else 300
    games = list(MINATAR_GAMES)
    results: dict = {"machine": environment_info(), "date": time.strftime("%Y-%m-%d"), "budget": args.budget,
                     "config": {k: v for k, v in dataclasses.asdict(config).items()
                                if k in ("num_envs", "batch_size", "conv_channels", "torso", "n_step", "protocol")},
                     "iterations_timed": iters}

    t0 = time.perf_counter()
    fused_sps, fused_compile = chunk_rate(Trainer.create(games, config), [0], iters)
    fused_wall = time.perf_counter() - t0
    record(results, "five_games", {"env_steps_per_s": fused_sps, "compile_s": fused_compile})
    per_game, t0 = {}, time.perf_counter()
    for game in games:
        sps, compile_s = chunk_rate(Trainer.create([game], config), [0], iters)
        record(per_game, game, {"env_steps_per_s": sps, "compile_s": compile_s})
    seq_wall = time.perf_counter() - t0
    sequential_sps = len(games) / sum(1.0 / g["env_steps_per_s"] for g in per_game.values())
    results["one_game"] = per_game
    record(results, "fused_vs_sequential", {
        "fused_env_steps_per_s": fused_sps, "sequential_env_steps_per_s": sequential_sps,
        "speedup_train": fused_sps / sequential_sps, "speedup_wall_incl_compile": seq_wall / fused_wall})
    env_steps = 200 if args.quick else 2000
    seeds = list(range(budget.seeds))
    sps, compile_s = chunk_rate(Trainer.create(games, config), seeds, iters)
    record(results, "five_games_study_seeds", {"seeds": len(seeds), "env_steps_per_s": sps, "compile_s": compile_s})
    env_only_rates = {game: env_only_rate([game], config.num_envs, config.protocol, env_steps) for game in games}
    env_only_rates["five_games"] = env_only_rate(games, config.num_envs, config.protocol, env_steps)
    record(results, "env_only", env_only_rates)
    record(results, "env_only_five_games_compile_s", fresh_env_only_compile_s(games, config.num_envs, config.protocol))
    record(results, "replay", replay_memory(games, base_config(budget).buffer_size, config.protocol))
    sps, compile_s = flax_conv_rate(games, config, iters)
    record(results, "five_games_flax_conv", {"env_steps_per_s": sps, "compile_s": compile_s})
    conv, dense = WIDE_MULTI_NETWORK
    sps, compile_s = chunk_rate(Trainer.create(games, dataclasses.replace(config, conv_channels=conv, torso=dense)),
                                seeds, iters)
    record(results, "five_games_study_seeds_wide", {"seeds": len(seeds), "conv_channels": list(conv),
                                                    "torso": list(dense), "env_steps_per_s": sps,
                                                    "compile_s": compile_s})
    write_results(args.out, "minatar", results, render_markdown)


def render_markdown(r: dict) -> str:
    m, cfg = r["machine"], r["config"]
    host = host_description(m)
    rows = [[game, f"{g['env_steps_per_s']:,.0f}", f"{g['compile_s']:.1f}", f"{r['env_only'][game]:,.0f}"]
            for game, g in r["one_game"].items()]
    rows.append(["five games, one program", f"{r['five_games']['env_steps_per_s']:,.0f}",
                 f"{r['five_games']['compile_s']:.1f}", f"{r['env_only']['five_games']:,.0f}"])
    if "five_games_study_seeds" in r:
        s = r["five_games_study_seeds"]
        rows.append([f"five games, {s['seeds']} seeds, one program (the studies')", f"{s['env_steps_per_s']:,.0f}",
                     f"{s['compile_s']:.1f}", "—"])
    if "five_games_flax_conv" in r:
        s = r["five_games_flax_conv"]
        rows.append(["five games, one program, flax `nn.Conv` in place of `Conv3x3`", f"{s['env_steps_per_s']:,.0f}",
                     f"{s['compile_s']:.1f}", "—"])
    if "five_games_study_seeds_wide" in r:
        s = r["five_games_study_seeds_wide"]
        rows.append([f"five games, {s['seeds']} seeds, one program, the multi-task studies' wide network (conv "
                     f"{s['conv_channels']} -> dense {s['torso']})", f"{s['env_steps_per_s']:,.0f}",
                     f"{s['compile_s']:.1f}", "—"])
    fvs, rep = r["fused_vs_sequential"], r["replay"]
    return (
        f"# MinAtar throughput\n\n- command: `python -m benchmarks.minatar --budget {r['budget']}`\n- host: {host}\n"
        f"- versions: Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
        + f"\n- date: {r['date']}\n\n"
        f"Settings of the `{r['budget']}` budget: {cfg['num_envs']} envs per game, one update of {cfg['batch_size']} "
        f"transitions per game every iteration, conv {cfg['conv_channels']} -> dense {cfg['torso']}, "
        f"{cfg['n_step']}-step targets, protocol `{cfg['protocol']}`; one seed unless stated, {r['iterations_timed']} "
        "timed iterations after a warm-up chunk; env steps/s count all games and seeds.\n\n"
        + markdown_table(["program", "training env steps/s", "compile s", "gymnax alone, random actions (ceiling)"],
                         rows)
        + f"\n- five games fused vs one after another: {fvs['speedup_train']:.2f}x training rate, "
          f"{fvs['speedup_wall_incl_compile']:.2f}x wall time including compiles\n"
        + (f"- compile of the five games alone (gymnax's steps in a scan, no learner; a fresh process): "
           f"{r['env_only_five_games_compile_s']:.1f} s, against {r['five_games']['compile_s']:.1f} s for the "
           "five-game training program\n" if "env_only_five_games_compile_s" in r else "")
        + f"- replay: {rep['bytes_per_transition']:,.0f} bytes per transition (observations {rep['obs_dtype']} "
        f"{rep['obs_shape']}; bound 2·H·W·C + 32 = {rep['bound']:,}), {rep['total_bytes'] / 2**30:.2f} GiB for five "
        f"games x {rep['capacity_per_game']:,} transitions\n"
        + (f"- the torso's convolution as one matmul (`Conv3x3`) vs flax's `nn.Conv`: "
           f"{r['five_games']['env_steps_per_s'] / r['five_games_flax_conv']['env_steps_per_s']:.2f}x the five-game "
           "program's training rate\n" if "five_games_flax_conv" in r else "")
        + (f"- the wide multi-task network vs one game's size (five games, the budget's seeds): "
           f"{r['five_games_study_seeds_wide']['env_steps_per_s'] / r['five_games_study_seeds']['env_steps_per_s']:.2f}x"
           " the training rate\n" if "five_games_study_seeds_wide" in r else ""))


if __name__ == "__main__":
    main()
