"""Throughput, overhead and time-to-solve of mtrl's compiled DQN; writes JSON and a Markdown table.

    python -m benchmarks.throughput [--out benchmarks/results] [--quick] [--solve-seeds 0-2]
    python -m benchmarks.throughput --solve-only --solve-seeds 0-9   # time to solve alone: time_to_solve.{json,md}

Measures, in one process (ratios are taken within this run; the machine is shared and noisy):
1. the bare learner: a 120-84 MLP forward+backward+Adam at batch 128 (samples/s), the figure that relates this
   machine to the one where the cited PureJaxRL figures (PureJaxRL's dqn.py at its default config, measured
   on this machine kind, not by mtrl) were taken;
2. single-task CartPole-v1 at PureJaxRL's DQN configuration (one-step targets, 10 envs, buffer 10k, batch 128, one update per
   iteration, MLP 120-84, plain DQN target, hard target copy every 500 env steps = 50 updates): env steps/s
   and compile seconds; and the same program timed in turns with `benchmarks.purejaxrl_dqn` (PureJaxRL's DQN
   program rebuilt from the same libraries) and `benchmarks.minimal_dqn` (a minimal loop with no bookkeeping):
   same-machine, same-load ratios;
3. the share of an iteration spent outside the gradient update (acting, env steps, replay), from the same
   program with learning switched off;
4. `cartpole-lengths` (T = 4) fused in one program vs the same four tasks trained one after another;
5. a checkpoint save: how long the loop waits (the copy off the device) vs the whole asynchronous write;
6. time to solve (`benchmarks.time_to_solve`): wall seconds from after the imports (init, compile, training and
   evaluations included) until CartPole-v1's greedy return (mean of 10 episodes, evaluated every 5k env steps)
   reaches 475, for mtrl's default `DQNConfig` and for PureJaxRL's DQN program at PureJaxRL's dqn.py default
   config, under that one protocol, for seeds 0, 1, 2 (one with --quick). Each solve runs in a fresh process:
   mtrl with an empty compilation cache and again with the cache that run wrote, PureJaxRL (which keeps no
   persistent cache) once. A run that has not solved within its budget (mtrl's default 300k env steps,
   PureJaxRL's default 500k) is censored: it counts as never solving, not as a solve.

``throughput.json["time_to_solve"]`` (`solve_runs`):

- ``protocol``: ``target``, ``eval_episodes``, ``eval_every`` and each program's ``budget_env_steps``;
- ``runs``: per seed, ``{"seed", "mtrl_cold", "mtrl_warm", "purejaxrl"}``, each the JSON of one solve
  (keys in `benchmarks.time_to_solve`'s docstring: ``solved``, ``wall_s``, ``env_steps``, ``curve``, ...);
- ``mtrl_cold``, ``mtrl_warm``, ``purejaxrl``: across seeds (`time_to_solve.summarize_solves`): ``runs``,
  ``solved``, ``solved_fraction``, ``median_wall_s``, ``median_env_steps``: Kaplan–Meier medians with unsolved
  runs censored, null ("not reached") when fewer than half the runs solved;
- ``mtrl_cold_over_purejaxrl_wall_s``, ``mtrl_warm_over_purejaxrl_wall_s``, ``mtrl_over_purejaxrl_env_steps``:
  ratios of those medians (mtrl's env steps are the cold runs'; a warm run trains the same), null unless both
  medians are defined.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import minimal_dqn, purejaxrl_dqn
from mtrl.config import DQNConfig
from mtrl.logger import environment_info, host_description, markdown_table, write_json
from mtrl.networks import MLP
from mtrl.tasks import suite
from mtrl.trainer import LOG_EVERY, Trainer, log_iterations

# Cited from a measurement of PureJaxRL's dqn.py on this machine kind (not taken by mtrl): PureJaxRL's DQN
# at the configuration below ran at 44-47k env steps/s where the bare 120-84 learner ran at 0.81M samples/s.
REFERENCE_PUREJAXRL_SPS = (44_000, 47_000)
REFERENCE_BARE_LEARNER = 0.81e6

# PureJaxRL's dqn.py program in mtrl's terms: plain one-step DQN, plain Adam at a constant learning rate, no gradient
# clipping, the TD loss as the only learner metric (mtrl's defaults decay the rate, clip and log more diagnostics: on
# a GPU those are kernels PureJaxRL's program does not run); γ and the final ε stay mtrl's (0.995, 0.01; PureJaxRL
# 0.99, 0.05), which change no work per iteration.
PUREJAXRL = DQNConfig(n_step=1, num_envs=10, buffer_size=10_000, batch_size=128, learning_starts=10_000, update_every=1,
                      target_update_period=50, tau=1.0, lr=2.5e-4, lr_end_fraction=1.0, max_grad_norm=None,
                      learner_diagnostics=False,
                      double_q=False, loss="l2", torso=(120, 84), total_steps=500_000, eps_decay_fraction=0.5,
                      eval_every=50_000)


def comparison_config() -> dict:
    """`PUREJAXRL`'s fields that differ from mtrl's defaults, for the results files."""
    defaults = DQNConfig()
    return {f.name: getattr(PUREJAXRL, f.name) for f in dataclasses.fields(DQNConfig)
            if getattr(PUREJAXRL, f.name) != getattr(defaults, f.name)}


def comparison_config_text(fields: dict) -> str:
    """``comparison_config()`` (as stored) in one Markdown line."""
    return ("PureJaxRL's configuration in mtrl's terms (fields that differ from mtrl's defaults): "
            + ", ".join(f"`{k}={v}`" for k, v in fields.items()))


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - t0


def bare_learner(batch: int = 128, steps: int = 2000) -> float:
    """Samples/s of a 120-84 MLP forward+backward+Adam step (no RL), scanned like the training loop."""
    net = MLP((120, 84))
    x = jax.random.normal(jax.random.key(0), (batch, 4))
    params = net.init(jax.random.key(1), x)
    opt = optax.adam(1e-3)

    def step(carry, _):
        p, s = carry
        g = jax.grad(lambda p: jnp.mean(net.apply(p, x) ** 2))(p)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    run = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps)[0])
    carry = (params, opt.init(params))
    _timed(run, carry)
    best = min(_timed(run, carry)[1] for _ in range(3))
    return steps * batch / best


def chunk_rate(trainer: Trainer, seeds, iterations: int, repeats: int = 3) -> tuple[float, float]:
    """(env steps/s over all tasks and seeds, compile s) of a chunk of ``iterations`` iterations, after
    the buffer holds `learning_starts` transitions so that every timed iteration learns."""
    state = trainer.init(seeds)
    chunk = trainer.make_train_chunk(iterations, log_iterations(LOG_EVERY, trainer.config))  # as `train` runs it
    t0 = time.perf_counter()
    compiled = chunk.lower(state).compile()
    compile_s = time.perf_counter() - t0
    (state, _), _ = _timed(compiled, state)  # warm-up chunk, also fills the buffer past learning_starts
    best = np.inf
    for _ in range(repeats):
        (state, _), dt = _timed(compiled, state)
        best = min(best, dt)
    steps = iterations * trainer.config.num_envs * trainer.taskset.num_tasks * len(seeds)
    return steps / best, compile_s


def learning_programs(config: DQNConfig, iterations: int):
    """mtrl's and PureJaxRL's single-task CartPole-v1 programs at ``config``, every iteration learning: ``(trainer,
    mtrl's train chunk (jitted, not compiled), PureJaxRL's (init(seed), chunk(runner, iterations)))``."""
    trainer = Trainer.create(["CartPole-v1"], dataclasses.replace(config, learning_starts=0))
    chunk = trainer.make_train_chunk(iterations, log_iterations(LOG_EVERY, config))  # as `train` runs it
    peer = purejaxrl_dqn.make(
        num_envs=config.num_envs, buffer_size=config.buffer_size, batch_size=config.batch_size, lr=config.lr,
        gamma=config.gamma, target_update_interval=config.target_update_period * config.num_envs,
        training_interval=config.num_envs, learning_starts=0)
    return trainer, chunk, peer


def versus_peers(config: DQNConfig, iterations: int, repeats: int) -> dict:
    """mtrl vs two peers at ``config`` (single-task CartPole-v1, 1 seed), timed in turns.

    Peers: `benchmarks.purejaxrl_dqn` (PureJaxRL's DQN program rebuilt from the same libraries: flashbax,
    gymnax's LogWrapper, a flax TrainState, per-iteration metrics) and `benchmarks.minimal_dqn` (the least work
    such an iteration can do), the latter with JAX's default PRNG (threefry, as PureJaxRL) and with mtrl's
    (Philox). Each of ``repeats`` rounds runs one chunk of ``iterations`` iterations of every program in turn,
    so all see the same machine load; rates are the best round's. Every timed iteration learns.
    """
    trainer, chunk, (pj_init, pj_chunk) = learning_programs(config, iterations)
    state = trainer.init([0])
    mtrl_chunk = chunk.lower(state).compile()
    programs = {"mtrl": (lambda s: mtrl_chunk(s)[0], state)}
    programs["purejaxrl"] = (lambda s: pj_chunk(s, iterations)[0], pj_init(0))
    for name, impl in (("minimal_threefry", None), ("minimal_philox", "philox2x32")):
        init, chunk = minimal_dqn.make(num_envs=config.num_envs, capacity=config.buffer_size,
                                       batch=config.batch_size, lr=config.lr, gamma=config.gamma,
                                       target_period=config.target_update_period, learning_starts=0,
                                       prng_impl=impl)
        programs[name] = (functools.partial(chunk, iterations=iterations), init(0))
    states = {name: _timed(fn, s)[0] for name, (fn, s) in programs.items()}  # compile and warm up
    best = dict.fromkeys(programs, np.inf)
    for _ in range(repeats):
        for name, (fn, _) in programs.items():
            states[name], dt = _timed(fn, states[name])
            best[name] = min(best[name], dt)
    steps = iterations * config.num_envs
    rates = {name: steps / t for name, t in best.items()}
    return {"env_steps_per_s": rates,
            "mtrl_over_purejaxrl": rates["mtrl"] / rates["purejaxrl"],
            "mtrl_over_minimal_threefry": rates["mtrl"] / rates["minimal_threefry"],
            "mtrl_over_minimal_philox": rates["mtrl"] / rates["minimal_philox"]}


def solve_runs(seeds=(0, 1, 2)) -> dict:
    """Time to solve, mtrl vs PureJaxRL's DQN program under one evaluation protocol: for each seed, in fresh
    processes, mtrl's solve with an empty compilation cache, again with the cache that run wrote, and
    PureJaxRL's solve; then the fraction solved and censored medians per program and their ratios (the
    ``time_to_solve`` keys in the module docstring)."""
    import subprocess
    import sys

    from benchmarks import time_to_solve as tts

    def run(args: list[str], cache: str) -> dict:
        env = {**os.environ, "MTRL_COMPILATION_CACHE": cache}
        out = subprocess.run([sys.executable, "-m", "benchmarks.time_to_solve", *args], env=env, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    runs = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as cache:
            cold = run(["--seed", str(seed)], cache)
            warm = run(["--seed", str(seed)], cache)
        with tempfile.TemporaryDirectory() as cache:
            peer = run(["--purejaxrl-solve", "--seed", str(seed)], cache)
        runs.append({"seed": seed, "mtrl_cold": cold, "mtrl_warm": warm, "purejaxrl": peer})
    summary = {name: tts.summarize_solves([r[name] for r in runs]) for name in ("mtrl_cold", "mtrl_warm", "purejaxrl")}

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    first = runs[0]
    return {"protocol": {"target": first["purejaxrl"]["target"], "eval_episodes": first["purejaxrl"]["eval_episodes"],
                         "eval_every": first["purejaxrl"]["eval_every"],
                         "budget_env_steps": {"mtrl": first["mtrl_cold"]["budget_env_steps"],
                                              "purejaxrl": first["purejaxrl"]["budget_env_steps"]}},
            "runs": runs, **summary,
            "mtrl_cold_over_purejaxrl_wall_s": ratio(summary["mtrl_cold"]["median_wall_s"],
                                                     summary["purejaxrl"]["median_wall_s"]),
            "mtrl_warm_over_purejaxrl_wall_s": ratio(summary["mtrl_warm"]["median_wall_s"],
                                                     summary["purejaxrl"]["median_wall_s"]),
            "mtrl_over_purejaxrl_env_steps": ratio(summary["mtrl_cold"]["median_env_steps"],
                                                   summary["purejaxrl"]["median_env_steps"])}


def checkpoint_save(seeds=(0, 1, 2, 3)) -> dict:
    """Seconds the training loop waits in `Checkpointer.save` (the copy off the device) vs the whole write, for
    a cartpole-lengths runner state with 4 seeds (params, optimiser, replay 4 x 4 x 10k transitions)."""
    import tempfile

    from mtrl import checkpoint
    from mtrl.checkpoint import Checkpointer

    trainer = Trainer.create(list(suite("cartpole-lengths")), DQNConfig())
    state = trainer.init(list(seeds))
    nbytes = sum(x.nbytes for x in jax.tree.leaves(checkpoint.to_saveable(state)))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Checkpointer(tmp)
        blocked, total = [], []
        for step in range(1, 4):
            t0 = time.perf_counter()
            ckpt.save(step, state, {})
            blocked.append(time.perf_counter() - t0)
            ckpt.wait()
            total.append(time.perf_counter() - t0)
        ckpt.close()
    return {"state_mb": nbytes / 2**20, "blocking_s": min(blocked), "write_s": min(total)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="fewer iterations and one solve seed (smoke run)")
    parser.add_argument("--render", action="store_true", help="only rewrite throughput.md from throughput.json")
    parser.add_argument("--solve-seeds", default=None,
                        help="seeds of the time-to-solve runs, FIRST-LAST (default 0-2; 0 with --quick)")
    parser.add_argument("--solve-only", action="store_true",
                        help="only the time-to-solve runs; writes time_to_solve.{json,md} in --out")
    args = parser.parse_args()
    first, _, last = (args.solve_seeds or ("0-0" if args.quick else "0-2")).partition("-")
    solve_seeds = list(range(int(first), int(last or first) + 1))
    if args.solve_only:
        results = {"machine": environment_info(), "date": time.strftime("%Y-%m-%d"),
                   "time_to_solve": solve_runs(solve_seeds)}
        return write_results(args.out, "time_to_solve", results, render_solve_markdown)
    if args.render:
        with open(os.path.join(args.out, "throughput.json")) as f:
            md = render_markdown(json.load(f))
        with open(os.path.join(args.out, "throughput.md"), "w") as f:
            f.write(md)
        print(md)
        return
    iters = 200 if args.quick else 2000
    # Every compile in this process (and its subprocesses) starts from an empty persistent cache, so compile
    # times are first-run figures; `time_to_solve` measures the warm case on purpose.
    os.environ["MTRL_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="mtrl-bench-cache-")
    results: dict = {"machine": environment_info(), "date": time.strftime("%Y-%m-%d")}

    results["bare_learner_samples_per_s"] = bare_learner()

    single = Trainer.create(["CartPole-v1"], dataclasses.replace(PUREJAXRL, learning_starts=0))
    sps, compile_s = chunk_rate(single, [0], iters)
    results["purejaxrl_config"] = {"env_steps_per_s": sps, "compile_s": compile_s, "seeds": 1}
    results["versus_peers"] = versus_peers(PUREJAXRL, iters // 2, repeats=6 if args.quick else 12)
    results["comparison_config"] = comparison_config()
    sps4, _ = chunk_rate(single, [0, 1, 2, 3], iters // 2)
    results["purejaxrl_config_4_seeds"] = {"env_steps_per_s": sps4, "seeds": 4}

    # updates would start at the run's last iteration, far past the measured chunk: it only collects
    assert iters * PUREJAXRL.num_envs < PUREJAXRL.total_steps
    no_learn = Trainer.create(["CartPole-v1"], dataclasses.replace(PUREJAXRL, learning_starts=PUREJAXRL.total_steps))
    sps_collect, _ = chunk_rate(no_learn, [0], iters)
    results["outside_update_share"] = sps / sps_collect  # time(collect) / time(full iteration)

    lengths = list(suite("cartpole-lengths"))
    cfg = dataclasses.replace(PUREJAXRL, learning_starts=0)
    t0 = time.perf_counter()
    fused_sps, fused_compile = chunk_rate(Trainer.create(lengths, cfg), [0], iters // 2)
    fused_wall = time.perf_counter() - t0
    seq_sps, seq_compile, t0 = [], [], time.perf_counter()
    for spec in lengths:
        s, c = chunk_rate(Trainer.create([spec], cfg), [0], iters // 2)
        seq_sps.append(s)
        seq_compile.append(c)
    seq_wall = time.perf_counter() - t0
    # time for the same per-task budget: fused runs 4 tasks at once; sequential sums the 4 runs
    seq_rate = len(lengths) / sum(1.0 / s for s in seq_sps)
    results["fused_vs_sequential"] = {
        "fused_env_steps_per_s": fused_sps,
        "sequential_env_steps_per_s": seq_rate,
        "speedup_train": fused_sps / seq_rate,
        "fused_compile_s": fused_compile,
        "sequential_compile_s": sum(seq_compile),
        "speedup_wall_incl_compile": seq_wall / fused_wall,
    }

    results["checkpoint_save"] = checkpoint_save()

    results["time_to_solve"] = solve_runs(solve_seeds)
    write_results(args.out, "throughput", results, render_markdown)


_STARTED = time.perf_counter()


def record(results: dict, key: str, value) -> None:
    """``results[key] = value``, also printed at once with the seconds since the benchmark started: a run stopped by
    a time limit (an accelerator's lease) has shown what it measured and how long each part took."""
    results[key] = value
    print(f"[{time.perf_counter() - _STARTED:5.0f} s] {key}: {json.dumps(value, default=str)}", flush=True)


def write_results(out: str, stem: str, results: dict, render) -> None:
    """``out/<stem>.json`` and ``out/<stem>.md`` (``render`` of the JSON as written, so the table can always be
    rendered again from the file; also printed)."""
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, f"{stem}.json"), results)
    with open(os.path.join(out, f"{stem}.json")) as f:
        md = render(json.load(f))
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(md)
    print(md)


def render_markdown(r: dict) -> str:
    fvs = r["fused_vs_sequential"]
    vp = r["versus_peers"]
    rate = vp["env_steps_per_s"]
    scale = r["bare_learner_samples_per_s"] / REFERENCE_BARE_LEARNER
    rows = [
        ["bare learner: 120-84 MLP fwd+bwd+Adam, batch 128", f"{r['bare_learner_samples_per_s'] / 1e6:.2f}M samples/s"],
        ["mtrl, CartPole-v1 at PureJaxRL's DQN config, 1 seed",
         f"{r['purejaxrl_config']['env_steps_per_s']:,.0f} env steps/s (compile {r['purejaxrl_config']['compile_s']:.1f} s)"],
        ["PureJaxRL DQN, same config (cited, reference machine)",
         f"{REFERENCE_PUREJAXRL_SPS[0]:,}-{REFERENCE_PUREJAXRL_SPS[1]:,} env steps/s where the bare learner ran "
         f"{REFERENCE_BARE_LEARNER / 1e6:.2f}M samples/s; scaled to this machine's bare learner: "
         f"{REFERENCE_PUREJAXRL_SPS[0] * scale:,.0f}-{REFERENCE_PUREJAXRL_SPS[1] * scale:,.0f}"],
        ["same config, timed in turns with PureJaxRL's DQN program (`benchmarks/purejaxrl_dqn.py`)",
         f"mtrl {rate['mtrl']:,.0f}; PureJaxRL {rate['purejaxrl']:,.0f} env steps/s: "
         f"mtrl at **{vp['mtrl_over_purejaxrl']:.2f}x**"],
        ["same, against a minimal DQN loop with no bookkeeping (`benchmarks/minimal_dqn.py`)",
         f"minimal loop {rate['minimal_threefry']:,.0f} (threefry keys, as PureJaxRL) / "
         f"{rate['minimal_philox']:,.0f} (Philox, as mtrl) env steps/s: mtrl at "
         f"{vp['mtrl_over_minimal_threefry']:.2f}x / {vp['mtrl_over_minimal_philox']:.2f}x"],
        ["mtrl, PureJaxRL config, 4 seeds in one program", f"{r['purejaxrl_config_4_seeds']['env_steps_per_s']:,.0f} env steps/s"],
        ["share of an iteration outside the gradient update", f"{100 * r['outside_update_share']:.0f}%"],
        ["cartpole-lengths fused (T=4) vs 4 sequential runs, training",
         f"{fvs['speedup_train']:.2f}x ({fvs['fused_env_steps_per_s']:,.0f} vs {fvs['sequential_env_steps_per_s']:,.0f} env steps/s)"],
        ["same, wall incl. compile", f"{fvs['speedup_wall_incl_compile']:.2f}x (compile {fvs['fused_compile_s']:.1f} s vs {fvs['sequential_compile_s']:.1f} s)"],
    ]
    if "checkpoint_save" in r:
        ck = r["checkpoint_save"]
        rows.append(["checkpoint save, cartpole-lengths x 4 seeds (orbax, async)",
                     f"loop blocked {ck['blocking_s']:.2f} s of a {ck['write_s']:.2f} s write ({ck['state_mb']:.0f} MB)"])
    rows += _solve_rows(r["time_to_solve"])
    return (
        f"# mtrl throughput ({r['date']})\n\n"
        f"Host: {host_description(r['machine'])}; jax {r['machine']['versions']['jax']}, "
        f"Python {r['machine']['python']}.\n"
        "Rates are the best of 3 timed chunks after a warm-up; compile excluded unless stated.\n"
        + (comparison_config_text(r["comparison_config"]) + ".\n" if "comparison_config" in r else "") + "\n"
        + markdown_table(["what", "result"], rows)
    )


def render_solve_markdown(r: dict) -> str:
    """time_to_solve.md: the time-to-solve rows alone (``--solve-only``)."""
    machine = r["machine"]
    return (f"# Time to solve CartPole-v1, mtrl vs PureJaxRL's DQN program ({r['date']})\n\n"
            f"Host: {host_description(machine)}; jax {machine['versions']['jax']}, "
            f"Python {machine['python']}. Command: `python -m benchmarks.throughput --solve-only --solve-seeds "
            f"{r['time_to_solve']['runs'][0]['seed']}-{r['time_to_solve']['runs'][-1]['seed']}`. mtrl at its "
            "defaults (`DQNConfig()`), PureJaxRL's program at its dqn.py defaults.\n\n"
            + markdown_table(["what", "result"], _solve_rows(r["time_to_solve"])))


def _solve_rows(tts: dict) -> list[list[str]]:
    """The time-to-solve rows of `render_markdown`."""
    if "purejaxrl" not in tts:  # results written before both programs were solved under one protocol
        return [["time to solve CartPole-v1", "not in these results in the same-protocol form (mtrl's solve was "
                 "compared with PureJaxRL's whole run); rerun `python -m benchmarks.throughput`"]]
    p = tts["protocol"]
    protocol = (f"greedy mean of {p['eval_episodes']} episodes >= {p['target']:.0f}, evaluated every "
                f"{p['eval_every']:,} env steps, both programs")

    def solve_text(s: dict) -> str:
        if not s["solved"]:
            return f"not solved: censored at {s['env_steps']:,} env steps, {s['wall_s']:.1f} s (lower bounds)"
        return f"{s['wall_s']:.1f} s ({s['ready_s']:.1f} s to the first chunk), {s['env_steps']:,} env steps"

    def seconds(x: float | None) -> str:
        return "not reached" if x is None else f"{x:.1f} s"

    def steps(x: float | None) -> str:
        return "not reached" if x is None else f"{x:,.0f} env steps"

    def times(x: float | None) -> str:
        return "undefined" if x is None else f"**{x:.2f}x**"

    rows = [[f"time to solve CartPole-v1 ({protocol}), seed {run['seed']}: mtrl empty compilation cache / "
             "mtrl cache warm / PureJaxRL's DQN program (`benchmarks/purejaxrl_dqn.py`)",
             f"{solve_text(run['mtrl_cold'])} / {solve_text(run['mtrl_warm'])} / {solve_text(run['purejaxrl'])}"]
            for run in tts["runs"]]
    mc, mw, pj = tts["mtrl_cold"], tts["mtrl_warm"], tts["purejaxrl"]
    budget = p["budget_env_steps"]
    rows.append([f"solved within the budget (mtrl's default {budget['mtrl']:,} env steps; PureJaxRL's dqn.py "
                 f"default {budget['purejaxrl']:,})",
                 f"mtrl {mc['solved']}/{mc['runs']} (empty cache), {mw['solved']}/{mw['runs']} (warm); "
                 f"PureJaxRL {pj['solved']}/{pj['runs']}"])
    rows.append(["median time to solve (Kaplan–Meier: unsolved runs censored, never counted as solves; not "
                 "reached when fewer than half the runs solved)",
                 f"mtrl {seconds(mc['median_wall_s'])} (empty cache), {seconds(mw['median_wall_s'])} (warm), "
                 f"{steps(mc['median_env_steps'])}; PureJaxRL {seconds(pj['median_wall_s'])}, "
                 f"{steps(pj['median_env_steps'])}"])
    rows.append(["median time to solve, mtrl / PureJaxRL (same evaluation protocol, same machine; PureJaxRL keeps no "
                 "compilation cache, so it compiles every run; undefined where a median is not reached)",
                 f"wall: {times(tts['mtrl_cold_over_purejaxrl_wall_s'])} (mtrl empty cache), "
                 f"{times(tts['mtrl_warm_over_purejaxrl_wall_s'])} (mtrl warm); env steps: "
                 f"{times(tts['mtrl_over_purejaxrl_env_steps'])}"])
    return rows


if __name__ == "__main__":
    main()
