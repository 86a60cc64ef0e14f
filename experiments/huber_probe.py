"""Why Huber (δ = 1) collapses on CartPole-v1 where ½δ² learns: Q-values, TD errors and the policy over training.

    python -m experiments.huber_probe [--seeds 2] [--total-steps 100000] [--out docs/results/huber]
    python -m experiments.huber_probe --sweep readme --seeds 4 --out docs/results/huber   # ~2-3 min
    python -m experiments.huber_probe --sweep defaults --seeds 4 --out docs/results/huber  # ~1-2 min

Trains the collapsing single-task setting (CartPole-v1, γ 0.99, a target copy every 50 updates, plain DQN targets,
the learner of `EARLIER_DEFAULTS`; every other field the `DQNConfig` default) once per loss variant — ½δ² (`l2`),
Huber δ = 1 and Huber δ = 10 — all seeds of a variant in one compiled program, in chunks of 1,000 env steps. Every
1,000 env steps up to 20,000 and every 5,000 after, it measures per seed, on the whole replay buffer (the last 10,000
transitions) with the current online and target networks:

- ``q_mean``, ``q_term``: mean over actions of Q(s, ·) over all stored states / over states whose transition
  terminated (the states just before the pole falls);
- ``td_nonterm``, ``td_term``: mean TD error δ = r + γ(1 − term) max_a Q_target(s', a) − Q(s, a) of the
  non-terminal / terminal transitions; ``frac_linear``: the fraction with |δ| > 1 (Huber-1's linear regime);
- ``term_frac``: the fraction of transitions that terminate; ``term_grad_share``: the terminal transitions'
  share of Σ|∂ℓ/∂Q| = Σ|ψ(δ)| (ψ(δ) = δ for ½δ², clip(δ, ±δ_huber) for Huber): how much of the update
  carries the only signal in CartPole that tells actions apart (every reward is +1; only falling differs);
- ``aliased_fixed_point``: the value V a learner converges to if it cannot tell the states before a fall
  from the others, so that termination looks like a coin flip with probability p = ``term_frac``: the root of
  (1 − p)·ψ(1 − (1 − γ)V) + p·ψ(1 − V) = 0 for the run's loss. ½δ²: V = 1 / (1 − γ(1 − p)), the true value
  of such an episode; Huber-1 (when 1 − V < −1): V = (1 − p / (1 − p)) / (1 − γ), as if episodes never ended
  (see docs/results/huber.md);
- on a fixed reference set (the buffer when learning starts: 5,000 states collected with ε from 1 to 0.84):
  mean Q(s, left), Q(s, right), mean |Q(s, left) − Q(s, right)| and the fraction of states where the greedy
  action is "left" (0 or 1: the greedy policy is one constant action);
- ``rollout_left``: the fraction of "left" actions in 10 greedy episodes from fixed start states (0 or 1: the
  policy pushes one way only, which ends an episode after about 9 steps);
- the greedy return (10 episodes, the trainer's own evaluation).

Writes ``probe.json`` (every number above), ``probe.md`` (tables) and ``q_values.png`` to ``--out``
(default runs/huber_probe/<time>). ``--sweep NAME`` instead trains each loss variant of `SWEEPS` (the collapsing
setting with Huber δ ∈ {1, 3, 10, 30, 100} and ½δ², or the earlier defaults) with `mtrl.trainer.train` and writes
``sweep_NAME.json`` / ``sweep_NAME.md`` (final and late greedy returns per seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import EARLIER_DEFAULTS, run, with_total_steps
from mtrl import losses
from mtrl.config import DQNConfig
from mtrl.logger import default_run_dir, environment_info, host_description, source_description
from mtrl.trainer import Trainer

# The collapsing run, minus the loss: γ 0.99, target copy every 50 updates, plain DQN targets.
CONFIG = DQNConfig(**EARLIER_DEFAULTS, total_steps=100_000, gamma=0.99, target_update_period=50, double_q=False)
# The CLI flags that pin `EARLIER_DEFAULTS` (the same runs from `python -m mtrl train`).
EARLIER_FLAGS = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in EARLIER_DEFAULTS.items())
VARIANTS = {"l2": ("l2", 1.0), "huber δ=1": ("huber", 1.0), "huber δ=10": ("huber", 10.0)}
CHUNK_STEPS = 1_000  # env steps per task per compiled chunk
PROBE_EVERY = 5_000  # env steps between measurements (every chunk up to EARLY_STEPS)
EARLY_STEPS = 20_000
ROLLOUT_EPISODES = 10
HIST_STEP = 10_000  # env steps at which the |δ| histograms are taken
HIST_BINS = np.logspace(-3, 3, 61)
# `--sweep NAME`: final greedy returns of plain `mtrl.trainer.train` runs (the CLI's program and evaluation
# schedule, so the finals equal `python -m mtrl train` with the same flags), 4 seeds, 100k env steps.
SWEEPS = {
    "readme": (CONFIG, [("l2", 1.0), ("huber", 1.0), ("huber", 3.0), ("huber", 10.0), ("huber", 30.0),
                        ("huber", 100.0)]),
    "defaults": (DQNConfig(**EARLIER_DEFAULTS, total_steps=100_000), [("l2", 1.0), ("huber", 1.0), ("huber", 10.0)]),
}


def aliased_fixed_point(loss: str, delta: float, p: float, gamma: float) -> float:
    """Root V of (1 − p)·ψ(1 − (1 − γ)V) + p·ψ(1 − V) = 0 (ψ = ℓ', decreasing in V), by bisection."""
    psi = (lambda d: float(np.clip(d, -delta, delta))) if loss == "huber" else float
    lo, hi = 0.0, 1.0 / (1.0 - gamma)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if (1 - p) * psi(1 - (1 - gamma) * mid) + p * psi(1 - mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _rollout(trainer: Trainer, policy):
    """``rollout(params, key) -> (return [E], fraction of "left" actions [E])`` of one greedy episode per env,
    ``policy(params, obs [1, E, ...]) -> actions [1, E]``; each episode counted until its first end."""
    taskset = trainer.taskset
    steps = taskset.max_episode_steps

    def run(params, key):
        k_reset, k_loop = jax.random.split(key)
        obs, env_states = taskset.reset(k_reset, ROLLOUT_EPISODES)
        alive = jnp.ones((1, ROLLOUT_EPISODES), bool)

        def body(carry, k):
            obs, env_states, alive = carry
            actions = policy(params, obs)
            obs, env_states, reward, terminated, truncated, _ = taskset.step(k, env_states, actions)
            out = (jnp.where(alive, reward, 0.0), alive & (actions == 0), alive)
            return (obs, env_states, alive & ~(terminated | truncated)), out

        _, (rewards, left, counted) = jax.lax.scan(body, (obs, env_states, alive), jax.random.split(k_loop, steps))
        return rewards.sum(0)[0], left.sum(0)[0] / jnp.maximum(counted.sum(0)[0], 1)

    return run


def constant_action_returns(trainer: Trainer, seed: int = 0) -> list[float]:
    """Mean return of always pushing left (action 0) and always pushing right (action 1)."""
    out = []
    for action in (0, 1):
        run = _rollout(trainer, lambda _, obs, a=action: jnp.full(obs.shape[:2], a, jnp.int32))
        out.append(float(jax.jit(run)(None, jax.random.key(seed))[0].mean()))
    return out


def _diagnostics(trainer: Trainer, reference_obs: jax.Array):
    """Jitted ``diag(runs) -> dict of [S]`` (and ``abs_td [S, C]``) for one variant; see the module docstring."""
    cfg, agent = trainer.config, trainer.agent
    mask = jnp.asarray(agent.action_mask[0])
    greedy_rollout = _rollout(trainer, agent.greedy_actions)
    key = jax.random.key(12345)  # the same start states at every measurement

    def one(train, buffer, ref):
        data = buffer.data
        q = agent.q_values(train.params, data.obs)[0]  # [C, A]
        q_next = agent.q_values(train.target_params, data.next_obs)[0]
        term = data.terminated[0]
        discount = cfg.gamma * (1.0 - term.astype(jnp.float32))
        # plain DQN targets (the probe's config): the target network's max, as in Agent.task_losses
        td = losses.td_errors(q, data.action[0], data.reward[0], discount, q_next, None, mask)
        filled = (jnp.arange(q.shape[0]) < buffer.size).astype(jnp.float32)
        w_term, w_non = filled * term, filled * (1.0 - term)

        def mean(x, w=filled):
            return (x * w).sum() / jnp.maximum(w.sum(), 1.0)

        psi = jnp.abs(jnp.clip(td, -cfg.huber_delta, cfg.huber_delta) if cfg.loss == "huber" else td)
        p = mean(term.astype(jnp.float32))
        q_ref = agent.q_values(train.params, ref)[0]  # [R, A]
        rollout_return, rollout_left = greedy_rollout(train.params, key)
        return {
            "q_mean": mean(q.mean(-1)),
            "q_term": mean(q.mean(-1), w_term),
            "td_nonterm": mean(td, w_non),
            "td_term": mean(td, w_term),
            "frac_linear": mean((jnp.abs(td) > 1.0).astype(jnp.float32)),
            "term_frac": p,
            "term_grad_share": (psi * w_term).sum() / jnp.maximum((psi * filled).sum(), 1e-12),
            "ref_q_left": q_ref[:, 0].mean(),
            "ref_q_right": q_ref[:, 1].mean(),
            "ref_gap": jnp.abs(q_ref[:, 0] - q_ref[:, 1]).mean(),
            "ref_greedy_left": (q_ref[:, 0] >= q_ref[:, 1]).astype(jnp.float32).mean(),
            "rollout_return": rollout_return.mean(),
            "rollout_left": rollout_left.mean(),
            "abs_td": jnp.where(filled > 0, jnp.abs(td), jnp.nan),
        }

    per_run = jax.vmap(one, in_axes=(0, 0, None))
    return jax.jit(lambda runs: per_run(runs.train, runs.replay, reference_obs))


def probe_variant(loss: str, delta: float, config: DQNConfig, seeds) -> dict:
    """Train one loss variant on every seed, measuring every `PROBE_EVERY` env steps."""
    cfg = dataclasses.replace(config, loss=loss, huber_delta=delta)
    trainer = Trainer.create(["CartPole-v1"], cfg)
    state = trainer.init(list(seeds))
    chunk_iterations = CHUNK_STEPS // cfg.num_envs
    chunk = trainer.make_train_chunk(chunk_iterations)
    evaluate = trainer.make_evaluate()
    diag, record, hist = None, {"step": []}, None
    t0 = time.perf_counter()
    for c in range(cfg.total_steps // CHUNK_STEPS):
        state, metrics = chunk(state)
        step = (c + 1) * CHUNK_STEPS
        if diag is None and step >= cfg.learning_starts:
            # reference states: the buffer when learning starts, collected with ε from 1 to 0.84
            reference = jax.device_get(state.runs.replay.data.obs[0, 0])[: int(state.runs.replay.size[0])]
            diag = _diagnostics(trainer, jnp.asarray(reference)[None])
        if diag is None or (step > EARLY_STEPS and step % PROBE_EVERY):
            continue
        values = jax.device_get(diag(state.runs))
        abs_td = values.pop("abs_td")
        if step == HIST_STEP:
            hist = [np.histogram(np.clip(a[~np.isnan(a)], HIST_BINS[0], HIST_BINS[-1]), HIST_BINS)[0].tolist()
                    for a in abs_td]
        values["aliased_fixed_point"] = [aliased_fixed_point(loss, delta, float(p), cfg.gamma)
                                         for p in values["term_frac"]]
        values["greedy_return"] = np.asarray(evaluate(state)).mean(-1)[:, 0]
        values["grad_norm"] = np.asarray(metrics["grad_norm"])[0]  # the chunk is one logging window
        record["step"].append(step)
        for name, v in values.items():
            record.setdefault(name, []).append(np.asarray(v, np.float64).round(4).tolist())
    return {"loss": loss, "huber_delta": delta, "seeds": list(seeds), "wall_s": round(time.perf_counter() - t0, 1),
            "series": record, "abs_td_hist_at": HIST_STEP, "abs_td_hist": hist}


def plot(results: dict, path: str, gamma: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"l2": "tab:blue", "huber δ=1": "tab:red", "huber δ=10": "tab:green"}
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))

    def per_seed(ax, key, transform=None, style="-", label_fmt="{name}"):
        for name, r in results.items():
            s = r["series"]
            x = np.asarray(s["step"]) / 1000
            y = np.asarray(s[key]) if transform is None else transform(s)
            for i in range(y.shape[1]):
                ax.plot(x, y[:, i], style, color=colors[name], lw=1.3,
                        label=label_fmt.format(name=name) if i == 0 else None)
        ax.set_xlabel("env steps (k)")

    ax = axes[0, 0]
    per_seed(ax, "ref_q_left", label_fmt="{name}: Q(s, left)")
    per_seed(ax, "ref_q_right", style="--", label_fmt="{name}: Q(s, right)")
    ax.axhline(1 / (1 - gamma), color="k", lw=0.8, ls=":", label="1/(1−γ): no return can exceed it")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, 1e5)
    ax.set(ylabel="mean Q over 5k early states (ε ≥ 0.84)", title="Q of both actions (a line per seed)")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    centers = np.sqrt(HIST_BINS[1:] * HIST_BINS[:-1])
    for name, r in results.items():
        for i, h in enumerate(r["abs_td_hist"]):
            h = np.asarray(h, float)
            ax.step(centers, h / h.sum(), where="mid", color=colors[name], lw=1.2, alpha=1 if i == 0 else 0.5,
                    label=name if i == 0 else None)
    ax.axvline(1.0, color="tab:red", lw=0.8, ls=":", label="δ_huber = 1")
    ax.axvline(10.0, color="tab:green", lw=0.8, ls=":", label="δ_huber = 10")
    ax.set_xscale("log")
    ax.set_xlim(1e-2, 1e3)
    ax.set(xlabel="|TD error| over the replay buffer", ylabel="fraction of transitions",
           title=f"|δ| at {HIST_STEP // 1000}k env steps (small bump on the right: terminal transitions)")
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    per_seed(ax, "q_term", transform=lambda s: np.asarray(s["q_term"]) - np.asarray(s["q_mean"]))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_yscale("symlog", linthresh=1)
    ax.set(ylabel="Q(states just before a fall) − Q(all stored states)",
           title="is falling valued lower? (< 0: yes)")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    per_seed(ax, "term_grad_share",
             transform=lambda s: np.asarray(s["term_grad_share"]) / np.maximum(np.asarray(s["term_frac"]), 1e-9))
    ax.axhline(1, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set(ylabel="terminal share of Σ|∂ℓ/∂Q| ÷ terminal fraction",
           title="weight of a terminal transition vs an average one (1: no more)")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    per_seed(ax, "rollout_left")
    ax.set_ylim(-0.05, 1.05)
    ax.set(ylabel="fraction of 'left' actions", title="greedy policy in 10 episodes (0 or 1: pushes one way)")
    ax.legend(fontsize=8)

    ax = axes[1, 2]
    per_seed(ax, "greedy_return")
    ax.set_yscale("log")
    ax.set(ylabel="greedy return (10 episodes)", title="greedy return (a line per seed; one way only: 9.3)")
    ax.legend(fontsize=8)
    fig.suptitle("CartPole-v1, γ 0.99, target copy every 50 updates, plain DQN targets: ½δ² vs Huber δ=1 vs "
                 "Huber δ=10 (python -m experiments.huber_probe)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(results: dict) -> str:
    keys = ["greedy_return", "rollout_left", "ref_greedy_left", "ref_gap", "q_mean", "q_term", "aliased_fixed_point",
            "td_nonterm", "td_term", "frac_linear", "term_frac", "term_grad_share", "grad_norm"]
    lines = []
    for name, r in results.items():
        s = r["series"]
        lines += [f"### {name} (seeds {r['seeds']}; values per seed)", "",
                  "| env steps | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for p, step in enumerate(s["step"]):
            cells = [" ".join(f"{v:.3g}" for v in s[k][p]) for k in keys]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def host_record() -> dict:
    """What a results file records about where and from which code it was made."""
    env = environment_info()
    return {k: env[k] for k in ("versions", "python", "cpu", "avx512", "device", "source")}


def provenance_line() -> str:
    """One markdown line: host, jax version and code revision (per-seed values move with each of them)."""
    env = environment_info()
    return (f"Host: {host_description(env)}; jax {env['versions'].get('jax')}; mtrl "
            f"{source_description(env) or 'not from a git checkout'}.")


def sweep(name: str, seeds, out: str) -> dict:
    """Train every loss variant of `SWEEPS[name]` on ``seeds``; write ``sweep_<name>.{json,md}`` to ``out``."""
    from mtrl.trainer import train

    config, variants = SWEEPS[name]
    rows, data = [], {"config": dataclasses.asdict(config), "seeds": list(seeds), "variants": {}, "host": host_record()}
    for loss, delta in variants:
        t0 = time.perf_counter()
        result = train(["CartPole-v1"], dataclasses.replace(config, loss=loss, huber_delta=delta), seeds=seeds,
                       run_dir=None, progress=False)
        returns = result.eval_returns[:, :, 0]  # [E, S]
        late = returns[result.eval_steps >= 20_000].mean(0)
        label = "l2" if loss == "l2" else f"huber δ={delta:g}"
        data["variants"][label] = {"eval_steps": result.eval_steps.tolist(), "eval_returns": returns.T.tolist(),
                                   "wall_s": round(time.perf_counter() - t0, 1)}
        rows.append(f"| {label} | {' '.join(f'{r:.0f}' for r in returns[-1])} | {returns[-1].mean():.0f} | "
                    f"{' '.join(f'{r:.0f}' for r in late)} | {late.mean():.0f} |")
    flags = {"readme": "--gamma 0.99 --target-update-period 50 --no-double-q ", "defaults": ""}[name] + EARLIER_FLAGS
    text = "\n".join([
        f"CartPole-v1 {flags}, 100k env steps, seeds {list(seeds)}: greedy return (10 episodes per evaluation).",
        "", provenance_line(),
        "", "| loss | final, per seed | final, mean | mean of the evaluations at 20k-100k, per seed | same, mean |",
        "|---|---|---|---|---|", *rows, ""])
    with open(os.path.join(out, f"sweep_{name}.json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(out, f"sweep_{name}.md"), "w") as f:
        f.write(text)
    print(text)
    return data


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--total-steps", type=int, default=CONFIG.total_steps, help="env steps")
    parser.add_argument("--out", default=None, help="output folder (default runs/huber_probe/<time>)")
    parser.add_argument("--replot", action="store_true", help="only redraw q_values.png from --out/probe.json")
    parser.add_argument("--sweep", choices=sorted(SWEEPS), default=None,
                        help="instead of the probe: final returns of every loss variant of this sweep")
    args = parser.parse_args(argv)
    config = with_total_steps(parser, CONFIG, args.total_steps)
    if args.sweep:
        out = args.out or default_run_dir("huber_probe")
        os.makedirs(out, exist_ok=True)
        return sweep(args.sweep, range(args.seeds), out)
    if args.replot:
        with open(os.path.join(args.out, "probe.json")) as f:
            data = json.load(f)
        plot(data["variants"], os.path.join(args.out, "q_values.png"), data["config"]["gamma"])
        return data
    out = args.out or default_run_dir("huber_probe")
    os.makedirs(out, exist_ok=True)
    results = {name: probe_variant(loss, delta, config, range(args.seeds)) for name, (loss, delta) in VARIANTS.items()}
    constant = constant_action_returns(Trainer.create(["CartPole-v1"], config))
    data = {"config": dataclasses.asdict(config), "variants": results,
            "constant_action_return": {"left": constant[0], "right": constant[1]}, "host": host_record()}
    with open(os.path.join(out, "probe.json"), "w") as f:
        json.dump(data, f, indent=1)
    text = (provenance_line() + "\n\n" + markdown(results)
            + f"\nReturn of a constant action ({ROLLOUT_EPISODES} episodes): always left {constant[0]:.1f}, always "
              f"right {constant[1]:.1f}.\n")
    with open(os.path.join(out, "probe.md"), "w") as f:
        f.write(text)
    plot(results, os.path.join(out, "q_values.png"), config.gamma)
    print(text)
    print(f"results: {out}")
    return data


if __name__ == "__main__":
    run(main)
