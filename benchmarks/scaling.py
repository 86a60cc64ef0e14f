"""Scaling of one compiled program: seeds, fused tasks, a sweep in one compile, forced host devices; writes JSON
and a Markdown table.

    python -m benchmarks.scaling [--out benchmarks/results] [--quick]

Measures, in one process unless stated (ratios are taken within this run), at mtrl's default `DQNConfig` on
CartPole-v1 (pole-length variants for several tasks):

1. seeds S in {1, 4, 16, 64} in one program: training env steps/s (all seeds and tasks) and compile seconds;
2. T in {1, 2, 4, 8} tasks fused in one program vs the same tasks trained one after another: ratio of training
   rates, and the fused program's compile seconds;
3. a sweep of 8 learning rates x 1 seed in one compile (`mtrl.sweep`) vs 8 separate `train` runs, each wall time
   from the call to the result with the persistent compilation cache off (as 8 fresh processes would compile),
   evaluations included;
4. 1 vs 4 forced host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``, a fresh process each) for
   16 seeds, and 1 process vs 2 local processes joined by `mtrl.distributed` (one device each, 16 seeds): on one
   CPU host the devices and processes share the same cores, so these measure the overheads of sharding and of
   the processes' coordination, not a speed-up across machines. Both run on the host's CPU (``JAX_PLATFORMS=cpu``)
   also where an accelerator is present: one GPU cannot be split into forced devices or shared by two processes;
5. the ceiling: gymnax alone (random actions, no learner) for CartPole-v1 at the default 10 envs, vs mtrl's one-seed
   training rate;
6. the replay's bytes per stored transition, the peak resident memory of this process and the peak device
   memory in use (where the backend reports it: GPUs, TPUs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("MTRL_COMPILATION_CACHE", "off")  # every program compiles here, as in a fresh process

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.minatar import env_only_rate  # noqa: E402
from benchmarks.throughput import chunk_rate, record, write_results  # noqa: E402
from mtrl.config import DQNConfig  # noqa: E402
from mtrl.logger import environment_info, host_description, markdown_table  # noqa: E402
from mtrl.replay import init as replay_init  # noqa: E402
from mtrl.sweeps import sweep  # noqa: E402
from mtrl.trainer import Trainer, train  # noqa: E402

LENGTHS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def tasks(n: int) -> list[str]:
    return [f"CartPole-v1:length={length}" for length in LENGTHS[:n]]


def seeds_scaling(config: DQNConfig, iterations: int, counts=(1, 4, 16, 64)) -> dict:
    trainer = Trainer.create(["CartPole-v1"], config)
    out = {}
    for s in counts:
        sps, compile_s = chunk_rate(trainer, list(range(s)), iterations)
        out[str(s)] = {"env_steps_per_s": sps, "compile_s": compile_s}
    return out


def tasks_scaling(config: DQNConfig, iterations: int, counts=(1, 2, 4, 8)) -> dict:
    out = {}
    for t in counts:
        fused, compile_s = chunk_rate(Trainer.create(tasks(t), config), [0], iterations)
        alone = [chunk_rate(Trainer.create([spec], config), [0], iterations)[0] for spec in tasks(t)]
        sequential = t / sum(1.0 / r for r in alone)  # env steps/s of the t runs one after another
        out[str(t)] = {"fused_env_steps_per_s": fused, "sequential_env_steps_per_s": sequential,
                       "speedup": fused / sequential, "fused_compile_s": compile_s}
    return out


def sweep_vs_separate(config: DQNConfig, settings: int = 8) -> dict:
    lrs = tuple(float(x) for x in np.geomspace(1e-4, 2e-3, settings))
    t0 = time.perf_counter()
    sweep(["CartPole-v1"], config, {"lr": lrs}, seeds=[0], progress=False)
    one_program = time.perf_counter() - t0
    t0 = time.perf_counter()
    for lr in lrs:
        train(["CartPole-v1"], dataclasses.replace(config, lr=lr), seeds=[0], progress=False)
    separate = time.perf_counter() - t0
    return {"settings": settings, "total_steps": config.total_steps, "sweep_wall_s": one_program,
            "separate_wall_s": separate, "speedup": separate / one_program}


def devices_rate(devices: int, seeds: int, iterations: int) -> dict:
    """Env steps/s of ``seeds`` seeds in a fresh process with ``devices`` forced host devices."""
    code = ("import json; from benchmarks.throughput import chunk_rate; from mtrl.trainer import Trainer; "
            "from mtrl.config import DQNConfig; import jax; "
            f"sps, c = chunk_rate(Trainer.create(['CartPole-v1'], DQNConfig(learning_starts=0)), list(range({seeds})), {iterations}); "
            "print(json.dumps({'devices': len(jax.devices()), 'env_steps_per_s': sps, 'compile_s': c}))")
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def processes_rate(processes: int, seeds: int, iterations: int) -> dict:
    """Env steps/s of ``seeds`` seeds sharded over ``processes`` local processes (`mtrl.distributed`, one CPU
    device each), measured by process 0."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    code = ("import sys, json; from mtrl.distributed import initialize; n = int(sys.argv[1]); "
            f"n > 1 and initialize('localhost:{port}', n, int(sys.argv[2])); "
            "from benchmarks.throughput import chunk_rate; from mtrl.trainer import Trainer; "
            "from mtrl.config import DQNConfig; "
            f"sps, c = chunk_rate(Trainer.create(['CartPole-v1'], DQNConfig(learning_starts=0)), list(range({seeds})), "
            f"{iterations}); print(json.dumps({{'processes': n, 'env_steps_per_s': sps, 'compile_s': c}}))")
    env = {**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(processes), str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for i in reversed(range(processes))]
    outputs = [p.communicate()[0] for p in procs]
    return json.loads(outputs[-1].strip().splitlines()[-1])  # process 0's


def replay_bytes() -> float:
    trainer = Trainer.create(["CartPole-v1"], DQNConfig())
    state = jax.eval_shape(lambda: replay_init(1, 10_000, trainer.taskset.obs_shape, trainer.taskset.obs_dtype,
                                               store_truncated=True))
    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state.data)) / 10_000


def peak_device_bytes() -> int | None:
    """The largest peak of memory in use on any local device since the process started, or None where the backend
    does not report it (XLA's CPU client)."""
    peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in jax.local_devices()]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) if peaks else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="fewer iterations and sizes (smoke run)")
    args = parser.parse_args()
    config = dataclasses.replace(DQNConfig(), learning_starts=0)
    iterations = 40 if args.quick else 500
    results = {"machine": environment_info(), "date": time.strftime("%Y-%m-%d"), "iterations_timed": iterations,
               "config": "DQNConfig() defaults, learning from the first iteration"}
    record(results, "seeds", seeds_scaling(config, iterations, (1, 4) if args.quick else (1, 4, 16, 64)))
    record(results, "tasks", tasks_scaling(config, iterations, (1, 2) if args.quick else (1, 2, 4, 8)))
    record(results, "sweep", sweep_vs_separate(dataclasses.replace(DQNConfig(), total_steps=20_000 if args.quick
                                                                   else 100_000, eval_every=20_000),
                                               settings=2 if args.quick else 8))
    record(results, "devices", {str(d): devices_rate(d, 16, iterations) for d in (1, 4)})
    record(results, "processes", {str(n): processes_rate(n, 16, iterations) for n in (1, 2)})
    record(results, "env_only_env_steps_per_s", env_only_rate(["CartPole-v1"], config.num_envs, "gymnax",
                                                              200 if args.quick else 5000))
    record(results, "replay_bytes_per_transition", replay_bytes())
    results["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    results["peak_device_bytes"] = peak_device_bytes()
    write_results(args.out, "scaling", results, render_markdown)


def render_markdown(r: dict) -> str:
    m = r["machine"]
    host = host_description(m)
    rows = [[f"{s} seed(s), one program", f"{v['env_steps_per_s']:,.0f} env steps/s (compile {v['compile_s']:.1f} s)"]
            for s, v in r["seeds"].items()]
    rows += [[f"{t} task(s) fused vs one after another", f"{v['fused_env_steps_per_s']:,.0f} vs "
              f"{v['sequential_env_steps_per_s']:,.0f} env steps/s: **{v['speedup']:.2f}x**"
              + (f" (fused program's compile {v['fused_compile_s']:.1f} s)" if "fused_compile_s" in v else "")]
             for t, v in r["tasks"].items()]
    sw = r["sweep"]
    rows.append([f"sweep of {sw['settings']} learning rates in one compile vs {sw['settings']} separate runs "
                 f"({sw['total_steps']:,} env steps each, compile and evaluations included, no compilation cache)",
                 f"{sw['sweep_wall_s']:.1f} s vs {sw['separate_wall_s']:.1f} s: **{sw['speedup']:.2f}x**"])
    d1, d4 = r["devices"]["1"], r["devices"]["4"]
    rows.append(["16 seeds on 1 vs 4 forced host devices (the host's CPU cores, shared)",
                 f"{d1['env_steps_per_s']:,.0f} vs {d4['env_steps_per_s']:,.0f} env steps/s "
                 f"({d4['env_steps_per_s'] / d1['env_steps_per_s']:.2f}x)"])
    p1, p2 = r["processes"]["1"], r["processes"]["2"]
    rows.append(["16 seeds in 1 process vs 2 local processes with `mtrl.distributed` (one CPU device each, same "
                 "cores)",
                 f"{p1['env_steps_per_s']:,.0f} vs {p2['env_steps_per_s']:,.0f} env steps/s "
                 f"({p2['env_steps_per_s'] / p1['env_steps_per_s']:.2f}x)"])
    ceiling = r["env_only_env_steps_per_s"]
    rows.append(["ceiling: gymnax alone, random actions, CartPole-v1, 10 envs (no learner)",
                 f"{ceiling:,.0f} env steps/s; mtrl's one-seed training rate is "
                 f"{r['seeds']['1']['env_steps_per_s'] / ceiling:.1%} of it"])
    rows.append(["replay, CartPole-v1", f"{r['replay_bytes_per_transition']:,.0f} bytes per stored transition"])
    rows.append(["peak resident memory of the benchmark process", f"{r['peak_rss_gib']:.2f} GiB"])
    device_peak = r.get("peak_device_bytes")
    rows.append(["peak device memory in use (largest over devices)",
                 "not reported by this backend (XLA's CPU client)" if device_peak is None
                 else f"{device_peak / 2**30:.2f} GiB"])
    return (f"# mtrl scaling ({r['date']})\n\n- command: `python -m benchmarks.scaling`\n- host: {host}\n"
            f"- versions: Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
            + f"\n\nSettings: {r['config']}; training rates are the best of 3 chunks of {r['iterations_timed']} "
            "iterations after a warm-up, compile excluded unless stated; ratios measured in this one run.\n\n"
            + markdown_table(["what", "result"], rows) + "\n")


if __name__ == "__main__":
    main()
