"""Runner state, the compiled training chunk, and the Python outer loop.

One *iteration* steps every env of every task once, stores the transitions, and (every `update_every`
iterations, after `learning_starts`) takes one gradient step on the ``[T, B]`` batch of all tasks.
`train_chunk` is a jitted `lax.scan` over K iterations with the runner state donated. Runs (seeds, sweep
settings) are a leading `vmap` axis ``S`` of `RunState`; the counters that drive `lax.cond` (iteration,
update count) live once in `RunnerState`, outside that axis, so the conditionals stay real branches.
With several devices the run axis is sharded over them (`NamedSharding`); the program is the same.

Host work (progress bar, evaluation, logging, checkpoints) happens in `train` between chunks only. `train`
saves the full runner state with `mtrl.checkpoint` on a schedule, resumes from it bit-identically, and turns
SIGINT/SIGTERM into "finish this chunk, save, return".

Axes: ``S`` runs, ``T`` tasks, ``N`` envs per task, ``B`` transitions per task in a batch, ``K`` iterations per
chunk, ``W`` logging windows per chunk.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import math
import operator
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mtrl import compilation_cache, replay
from mtrl.agent import Agent, Hyperparams, TrainState, current_learning_rate, default_hparams, epsilon
from mtrl.config import ConfigError, ConfigWarning, DQNConfig
from mtrl.distributed import barrier, is_primary, process_max, to_host
from mtrl.evaluate import iteration_keys, make_evaluator
from mtrl.run_lock import hold_run_dir
from mtrl.tasks import TaskSet, make_taskset

if TYPE_CHECKING:
    from mtrl.logger import RunGroup

# Programs that run once or rarely (init, evaluation) compile at a lower XLA backend optimisation level: on a
# 2-core CPU that halves their compile time, and their run time is negligible either way.
# Philox rather than JAX's default threefry: on CPU, XLA runs threefry's rounds as a rolled while loop (one per
# random call; ~4 per iteration), which here cost more than the env step and added seconds of compile time.
# Runs sharded over several devices keep threefry: jax 0.10 cannot partition Philox's `mulhi` under SPMD.
PHILOX = "philox2x32"
PRNG_IMPL: str | None = PHILOX


@functools.cache
def _available(impl: str) -> bool:
    try:
        jax.random.key(0, impl=impl)
        return True
    except (ValueError, TypeError, KeyError):
        return False


def prng_impl(sharded: bool) -> str | None:
    """Key implementation for a run set: `PRNG_IMPL` where usable, else None (jax's default)."""
    if sharded or PRNG_IMPL is None or not _available(PRNG_IMPL):
        return None
    return PRNG_IMPL


def shardable(impl: str | None) -> bool:
    """Whether runs whose keys use ``impl`` (None: jax's default) can be sharded over devices: all but Philox."""
    return impl != PHILOX


def _signature(tree) -> tuple:
    """Tree structure and each leaf's (shape, dtype, weak type): what a compiled program's inputs must match."""
    leaves, treedef = jax.tree.flatten(jax.eval_shape(lambda t: t, tree))
    return treedef, tuple((x.shape, x.dtype, x.weak_type) for x in leaves)


QUICK_COMPILE = {"xla_backend_optimization_level": 0}
WINDOW_SLACK = 2.5  # how far (as a ratio) a logging window may move from the requested length to divide the chunk


@struct.dataclass
class RunState:
    """Everything one run owns. Under `RunnerState.runs` every leaf has a leading axis S."""

    train: TrainState
    replay: replay.ReplayState
    env_states: tuple[Any, ...]  # per env group, leaves [T_g, N, ...]
    obs: jax.Array  # [T, N, *obs_shape]
    key: jax.Array  # training stream
    eval_key: jax.Array  # evaluation stream, folded with the iteration; never advances training randomness
    episode_return: jax.Array  # [T, N] return of the running episode


@struct.dataclass
class RunnerState:
    runs: RunState  # leaves [S, ...]
    iteration: jax.Array  # () int32, shared by all runs
    num_updates: jax.Array  # () int32, shared by all runs


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """Static program pieces for one task set and config; builds and runs the compiled functions."""

    taskset: TaskSet
    config: DQNConfig
    agent: Agent
    hparams: Hyperparams  # one run's default hyperparameters (no run axis)
    # The key implementation of the runs this trainer continues (a checkpoint's, `Checkpointer.key_impl`); None:
    # chosen by the device layout (`prng_impl`). See `placement`.
    key_impl: str | None = None

    @classmethod
    def create(cls, tasks: TaskSet | Sequence[str], config: DQNConfig, optimizer: Any = None,
               l2sp_parts: tuple[str, ...] = (), l2sp_alpha: float = 0.0) -> Trainer:
        """Trainer for ``tasks``; ``optimizer``, ``l2sp_parts`` and ``l2sp_alpha`` are set by transfer modes."""
        taskset = tasks if isinstance(tasks, TaskSet) else make_taskset(tasks, config.protocol)
        if any(t.protocol != config.protocol for t in taskset.tasks):
            raise ValueError(f"the task set was built under another protocol than config.protocol={config.protocol!r}")
        config.validate(taskset.num_tasks)
        compilation_cache.enable()
        hparams = default_hparams(taskset, config).replace(l2sp_alpha=jnp.asarray(l2sp_alpha, jnp.float32))
        agent = Agent.create(taskset, config, optimizer=optimizer, l2sp_parts=l2sp_parts)
        return cls(taskset=taskset, config=config, agent=agent, hparams=hparams)

    # --- state ----------------------------------------------------------------------------------------------

    def init_run(self, key: jax.Array, hparams: Hyperparams, learning_rate: jax.Array | float) -> RunState:
        """Fresh state for one run from its key."""
        k_net, k_env, k_train, k_eval = jax.random.split(key, 4)
        obs, env_states = self.taskset.reset(k_env, self.config.num_envs)
        return RunState(
            train=self.agent.init(k_net, hparams, learning_rate),
            replay=replay.init(
                self.taskset.num_tasks, self.config.buffer_size, self.taskset.obs_shape, self.taskset.obs_dtype,
                store_truncated=self.config.n_step > 1,
            ),
            env_states=env_states,
            obs=obs,
            key=k_train,
            eval_key=k_eval,
            episode_return=jnp.zeros((self.taskset.num_tasks, self.config.num_envs), jnp.float32),
        )

    def init(
        self, seeds: Sequence[int], hparams: Hyperparams | None = None, learning_rates: Sequence[float] | None = None
    ) -> RunnerState:
        """Runner state for one run per seed, stacked on a leading axis S and sharded over devices.

        ``hparams`` may carry a leading axis S (a sweep); by default every run uses the config's values.
        """
        keys, hparams, lrs, sharding, impl = self._init_args(seeds, hparams, learning_rates)
        counters = (jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        if sharding is None:
            runs = jax.jit(jax.vmap(self.init_run)).lower(keys, hparams, lrs).compile(QUICK_COMPILE)(keys, hparams,
                                                                                                    lrs)
            return RunnerState(runs=runs, iteration=counters[0], num_updates=counters[1])
        # Sharded: built in place from host values, each device making its runs' shard. This also holds when the
        # devices belong to several processes (`mtrl.distributed`), where no process can place another's shard.

        def init_runs(seed_values, hp, rates):
            return jax.vmap(self.init_run)(jax.vmap(lambda s: jax.random.key(s, impl=impl))(seed_values), hp, rates)

        args = (np.asarray(seeds, np.uint32), jax.tree.map(np.asarray, hparams), np.asarray(lrs))
        runs = jax.jit(init_runs, out_shardings=sharding).lower(*args).compile(QUICK_COMPILE)(*args)
        # Counters replicated on the same mesh, so a restored checkpoint places them there too.
        counters = jax.jit(lambda: counters, out_shardings=NamedSharding(sharding.mesh, PartitionSpec()))()
        return RunnerState(runs=runs, iteration=counters[0], num_updates=counters[1])

    def _init_args(self, seeds: Sequence[int], hparams: Hyperparams | None, learning_rates: Sequence[float] | None):
        """``(keys [S], hparams [S, ...], learning rates [S], run sharding or None, key implementation)`` for
        `init`."""
        seeds = check_seeds(seeds)
        num_runs = len(seeds)
        if hparams is None:
            hparams = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_runs,) + x.shape), self.hparams)
        lrs = jnp.asarray(
            [self.config.lr] * num_runs if learning_rates is None else list(learning_rates), jnp.float32
        )
        if lrs.shape != (num_runs,):
            raise ValueError(f"learning_rates must have one value per seed ({num_runs}), got {lrs.shape[0]}")
        sharding, impl = self.placement(num_runs)
        keys = jax.vmap(lambda s: jax.random.key(s, impl=impl))(jnp.asarray(seeds, jnp.uint32))
        return keys, hparams, lrs, sharding, impl

    def placement(self, num_runs: int) -> tuple[NamedSharding | None, str | None]:
        """``(run sharding or None, key implementation)`` of a program of ``num_runs`` runs: `run_sharding`, with
        `prng_impl`'s keys for that layout. A trainer that continues runs (``key_impl`` set) keeps their keys, so a
        resume is the same computation on another device layout: threefry runs (trained sharded) continue on one
        device, and Philox runs (trained on one device; jax does not shard Philox) stay on one device of several."""
        sharding = run_sharding(num_runs)
        if self.key_impl is None:
            return sharding, prng_impl(sharded=sharding is not None)
        if sharding is not None and not shardable(self.key_impl):
            if jax.process_count() > 1:
                raise ValueError(
                    f"these runs' keys use {self.key_impl}, which jax cannot shard, so they continue on one device "
                    f"(as they were trained), not across {jax.process_count()} processes: resume them in one process "
                    "(without --distributed)")
            sharding = None
        return sharding, self.key_impl

    def init_shapes(self, seeds: Sequence[int], placed: bool = True) -> RunnerState | None:
        """Shapes and dtypes of ``init(seeds)`` without running or compiling it; None for runs sharded over
        several devices (their placement is only known once the state exists), unless ``placed`` is False (shapes
        and dtypes only, e.g. to read parts of a checkpoint)."""
        keys, hparams, lrs, sharding, _ = self._init_args(seeds, None, None)
        if sharding is not None and placed:
            return None
        runs = jax.eval_shape(jax.vmap(self.init_run), keys, hparams, lrs)
        counter = jax.ShapeDtypeStruct((), jnp.int32)
        return RunnerState(runs=runs, iteration=counter, num_updates=counter)

    def start(self, seeds: Sequence[int], build_state: Callable[[], RunnerState] | None = None,
              iterations: int | None = None, log_iterations: int | None = None):
        """``(state, train_chunk, evaluate)``: the starting state (``build_state()``, default ``init(seeds)``)
        and the compiled programs, built concurrently.

        The chunk is lowered from the state's shapes and compiles on a worker thread (XLA releases the GIL)
        while this thread builds the state and compiles the evaluation: on this 2-core CPU that hides the init
        program's compile (~1 s) behind the chunk's. If the built state's shapes differ from `init_shapes`
        (never for init, resume or transfer starts; checked anyway), the programs are compiled again for it.
        """
        build_state = build_state or functools.partial(self.init, seeds)
        shapes = self.init_shapes(seeds)
        if shapes is None:
            state = build_state()
            return (state, *self.compile(state, iterations=iterations, log_iterations=log_iterations))
        built = []
        chunk, evaluate = self.compile(shapes, meanwhile=lambda: built.append(build_state()), iterations=iterations,
                                       log_iterations=log_iterations)
        state = built[0]
        if _signature(state) != _signature(shapes):
            return (state, *self.compile(state, iterations=iterations, log_iterations=log_iterations))
        return state, chunk, evaluate

    def with_params(self, state: RunnerState, params: Any, anchor: Any = None) -> RunnerState:
        """``state`` with every run restarted from ``params`` (leaves ``[S, ...]``): target = params, a fresh
        optimiser state (same learning rate), and the L2-SP ``anchor`` (``[S, ...]``; default: ``params``)."""

        def restart(train: TrainState, p, a):
            lr = train.opt_state.hyperparams["learning_rate"]
            return self.agent.state_from_params(p, train.hparams, lr, anchor=a)

        train = jax.jit(jax.vmap(restart)).lower(state.runs.train, params, anchor).compile(QUICK_COMPILE)(
            state.runs.train, params, anchor)
        sharding, _ = self.placement(jax.tree.leaves(params)[0].shape[0])
        if sharding is not None:
            train = jax.device_put(train, sharding)
        return state.replace(runs=state.runs.replace(train=train))

    # --- one iteration --------------------------------------------------------------------------------------

    def _collect(self, run: RunState, env_steps: jax.Array) -> tuple[RunState, dict[str, jax.Array]]:
        """Act, step every env, store the transitions. Returns per-task episode statistics ``[T]``."""
        key, k_act, k_step = jax.random.split(run.key, 3)
        eps = epsilon(run.train.hparams, env_steps)
        actions = self.agent.act(run.train.params, run.obs, k_act, eps)
        obs, env_states, reward, terminated, truncated, final_obs = self.taskset.step(k_step, run.env_states, actions)
        buffer = replay.add(
            run.replay,
            replay.Transition(obs=run.obs, action=actions, reward=reward, next_obs=final_obs, terminated=terminated,
                              truncated=truncated if self.config.n_step > 1 else None),
        )
        episode_return = run.episode_return + reward
        done = terminated | truncated
        stats = {
            "return_sum": jnp.where(done, episode_return, 0.0).sum(-1),
            "episodes": done.sum(-1).astype(jnp.int32),
        }
        run = run.replace(
            replay=buffer,
            env_states=env_states,
            obs=obs,
            key=key,
            episode_return=jnp.where(done, 0.0, episode_return),
        )
        return run, stats

    def _learn(self, train: TrainState, key: jax.Array, buffer: replay.ReplayState):
        """One update of one run; returns the new train state and key (the buffer is only read)."""
        key, k_sample = jax.random.split(key)
        cfg = self.config
        if cfg.n_step > 1:
            batch = replay.sample_n_step(buffer, k_sample, cfg.batch_size, cfg.n_step, cfg.num_envs,
                                         train.hparams.gammas)
        else:
            batch = replay.sample(buffer, k_sample, cfg.batch_size)
        train, metrics = self.agent.update(train, batch)
        return train, key, pack_learner_metrics(metrics)

    def iteration(self, state: RunnerState, _=None) -> tuple[RunnerState, dict[str, jax.Array]]:
        """One iteration for every run: collect, maybe learn, maybe update the target network. Metrics:
        ``return_sum``, ``episodes [S, T]``, ``learner [S, 3T + 1]`` (`pack_learner_metrics`; zeros without an
        update) and ``learned ()``."""
        cfg = self.config
        env_steps = (state.iteration * cfg.num_envs).astype(jnp.float32)
        runs, stats = jax.vmap(self._collect, in_axes=(0, None))(state.runs, env_steps)

        learn = cfg.learns(state.iteration)
        # The branches take the replay buffer as a read-only operand and return only what they change, so
        # XLA never copies the buffer through the conditional.
        learn_all = jax.vmap(self._learn)

        def skip(train, key, _):
            return train, key, jax.vmap(lambda _: pack_learner_metrics(self.agent.no_update_metrics()))(key)

        train, key, metrics = jax.lax.cond(learn, learn_all, skip, runs.train, runs.key, runs.replay)
        num_updates = state.num_updates + learn.astype(jnp.int32)
        sync = learn & (num_updates % cfg.target_update_period == 0)
        train = jax.lax.cond(sync, jax.vmap(self.agent.update_target), lambda t: t, train)
        runs = runs.replace(train=train, key=key)
        metrics = {"learner": metrics, **stats, "learned": learn}
        return RunnerState(runs=runs, iteration=state.iteration + 1, num_updates=num_updates), metrics

    # --- compiled entry points ------------------------------------------------------------------------------

    def make_train_chunk(self, num_iterations: int | None = None, log_iterations: int | None = None
                         ) -> Callable[[RunnerState], tuple[RunnerState, dict]]:
        """``train_chunk(state) -> (state, metrics)``: jitted scan over K iterations, state donated.

        The chunk is cut into logging windows of about ``log_iterations`` iterations (`window_sizes`; default: one
        window) and ``metrics`` has one entry per window ``W``, reduced over
        it: ``return_sum [W, S, T]`` and ``episodes [W, S, T]`` of the episodes that finished in it; ``loss``,
        ``td_abs``, ``q_taken [W, S, T]`` and ``grad_norm [W, S]`` averaged over its updates; ``updates [W]``;
        ``epsilon [W, S, T]`` and ``learning_rate [W, S]`` at its end; with PopArt also ``popart_shift`` and
        ``popart_scale [W, S, T]`` (each task's target statistics μ, σ) at its end; ``diverged [W, S]``: the run's
        train state became non-finite in the window and was frozen at the window's start (`freeze_diverged`).
        """
        k = num_iterations or self.config.chunk_iterations
        windows = window_sizes(k, log_iterations)
        w, full = windows[0], windows.count(windows[0])  # full windows of w iterations, then at most one shorter
        cfg = self.config

        def window(state: RunnerState, length: int):
            # Sums carried through the scan rather than per-iteration outputs stacked to [K, ...]: a stacked
            # output is one more kernel per iteration on a GPU, where an iteration is a few dozen small kernels.
            # An iteration without an update reports zeros, so the sums only count updates.
            num_runs, num_tasks = state.runs.episode_return.shape[:2]
            per_run = {"return_sum": jnp.zeros((num_tasks,), jnp.float32),
                       "episodes": jnp.zeros((num_tasks,), jnp.int32),
                       "learner": pack_learner_metrics(self.agent.no_update_metrics())}
            sums = jax.tree.map(lambda x: jnp.zeros((num_runs,) + x.shape, x.dtype), per_run)

            def body(carry, _):
                state, sums = carry
                state, metrics = self.iteration(state)
                return (state, {name: total + metrics[name] for name, total in sums.items()}), None

            start_updates, start_train = state.num_updates, state.runs.train
            (state, sums), _ = jax.lax.scan(body, (state, sums), None, length=length)
            state, diverged = freeze_diverged(state, start_train)
            updates = state.num_updates - start_updates
            per_update = lambda x: x / jnp.maximum(updates, 1).astype(jnp.float32)  # noqa: E731
            env_steps = (state.iteration * cfg.num_envs).astype(jnp.float32)
            train = state.runs.train
            return state, {
                "diverged": diverged,
                "return_sum": sums["return_sum"],
                "episodes": sums["episodes"],
                **unpack_learner_metrics(per_update(sums["learner"]), num_tasks),
                "updates": updates,
                "epsilon": jax.vmap(epsilon, in_axes=(0, None))(train.hparams, env_steps),
                "learning_rate": jax.vmap(current_learning_rate, in_axes=(0, None, None))(
                    train, cfg, state.num_updates),
                **({} if train.popart is None else
                   {"popart_shift": train.popart.shift, "popart_scale": train.popart.scale}),
            }

        def train_chunk(state: RunnerState):
            state, metrics = jax.lax.scan(lambda s, _: window(s, w), state, None, length=full)
            if len(windows) > full:
                state, last = window(state, windows[-1])
                metrics = jax.tree.map(lambda m, x: jnp.concatenate([m, x[None]]), metrics, last)
            return state, metrics

        return jax.jit(train_chunk, donate_argnums=0)

    def make_evaluate(self) -> Callable[[RunnerState], jax.Array]:
        """``evaluate(state) -> returns [S, T, E]``: evaluation episodes of every task (greedy, or at
        ``eval_epsilon``); key folded with the iteration."""
        evaluator = make_evaluator(self.agent, self.taskset, self.config.eval_episodes,
                                   epsilon=self.config.eval_epsilon)

        @jax.jit
        def evaluate(state: RunnerState):
            return evaluator(state.runs.train.params, iteration_keys(state.runs.eval_key, state.iteration))

        return evaluate

    def compile(self, state: RunnerState, meanwhile: Callable[[], Any] | None = None,
                iterations: int | None = None, log_iterations: int | None = None) -> tuple[Callable, Callable]:
        """Compiled ``(train_chunk, evaluate)`` for ``state``'s shapes (a state or its `init_shapes`; not consumed);
        the chunk runs ``iterations`` iterations (default `DQNConfig.chunk_iterations`).

        XLA releases the GIL while it compiles, so the chunk compiles on a worker thread while this one runs
        ``meanwhile()`` (if given) and then traces and compiles the evaluation.
        """
        lowered = self.make_train_chunk(iterations, log_iterations).lower(state)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            chunk = pool.submit(lowered.compile)
            if meanwhile is not None:
                meanwhile()
            evaluate = self.make_evaluate().lower(state).compile(self.evaluation_options())
            return chunk.result(), evaluate

    def evaluation_options(self) -> dict[str, Any] | None:
        """XLA compile options of this config's evaluation program; `mtrl.policy.evaluate_run` compiles with the
        same, since another optimisation level can round floats differently (Acrobot's integrator then diverges
        from the logged episodes). O0 roughly halves the compile of an MLP program's evaluation, which then runs in
        well under a second; a conv network's evaluation runs several times slower at O0 (minutes per MinAtar
        evaluation), so it keeps the default level."""
        return None if self.config.conv_channels else QUICK_COMPILE


LEARNER_METRICS = ("loss", "td_abs", "q_taken", "grad_norm")  # `Agent.update`'s metrics: [T] each, grad_norm ()


def pack_learner_metrics(metrics: dict[str, jax.Array]) -> jax.Array:
    """`Agent.update`'s metrics of one run as one vector ``[3T + 1]`` (loss, td_abs, q_taken, grad_norm): the
    iteration hands one array out of its conditional and the window adds one array per iteration, a kernel instead
    of four on a GPU. Concatenation and slicing move values without arithmetic: the sums are unchanged."""
    if set(metrics) != set(LEARNER_METRICS):
        raise ValueError(f"learner metrics {sorted(metrics)} are not {sorted(LEARNER_METRICS)}: pack new ones too")
    return jnp.concatenate([jnp.atleast_1d(metrics[name]) for name in LEARNER_METRICS])


def unpack_learner_metrics(packed: jax.Array, num_tasks: int) -> dict[str, jax.Array]:
    """Inverse of `pack_learner_metrics` on ``[..., 3T + 1]``: ``loss``, ``td_abs``, ``q_taken [..., T]``,
    ``grad_norm [...]``."""
    t = num_tasks
    return {"loss": packed[..., :t], "td_abs": packed[..., t:2 * t], "q_taken": packed[..., 2 * t:3 * t],
            "grad_norm": packed[..., 3 * t]}


def freeze_diverged(state: RunnerState, start: TrainState) -> tuple[RunnerState, jax.Array]:
    """Runs whose train state (parameters, target, optimiser, PopArt statistics) holds a non-finite value go back to
    ``start`` (their train state at the window's start, the last one known finite) with a learning rate of 0, so
    their Q-values stay frozen there while the other runs go on. (Their target network still syncs to the frozen
    parameters, and with PopArt the statistics still track the targets, rescaling the heads so that the unnormalised
    Q-values are preserved: only the learning rate is cut.) Returns the state and ``diverged [S]`` (frozen now).

    Checked once per logging window, not per iteration: a diverged run loses at most one window of finite
    updates, and a run that stays finite is returned unchanged (bit-identical)."""
    train = state.runs.train
    leaves = [x for x in jax.tree.leaves(train) if jnp.issubdtype(x.dtype, jnp.inexact)]
    finite = jnp.stack([jnp.isfinite(x).reshape(x.shape[0], -1).all(-1) for x in leaves]).all(0)  # [S]

    def choose(new, old):
        return jnp.where(finite.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

    kept = jax.tree.map(choose, train, start)
    lr = kept.opt_state.hyperparams["learning_rate"]
    kept.opt_state.hyperparams["learning_rate"] = jnp.where(finite, lr, jnp.zeros_like(lr))
    return state.replace(runs=state.runs.replace(train=kept)), ~finite


def window_sizes(chunk_iterations: int, log_iterations: int | None) -> list[int]:
    """Iterations of each logging window of a chunk (`Trainer.make_train_chunk`).

    Windows of equal length share one compiled loop body; a shorter last window would compile the whole iteration
    a second time (seconds for a conv network). So the window is the divisor of the chunk nearest the request (in
    ratio) when one lies within a factor of `WINDOW_SLACK` of it; otherwise full windows, then a shorter last one.
    Windows only group the metrics: they change no arithmetic.
    """
    k = chunk_iterations
    w = min(log_iterations or k, k)
    divisors = [d for d in range(math.ceil(w / WINDOW_SLACK), min(k, math.floor(w * WINDOW_SLACK)) + 1) if k % d == 0]
    if divisors:
        w = min(divisors, key=lambda d: (abs(np.log(d / w)), d))
    full, rest = divmod(k, w)
    return [w] * full + ([rest] if rest else [])


def shards_runs(num_runs: int, num_devices: int) -> bool:
    """The rule `run_sharding` follows (and the sweep planner sizes programs by): S runs are sharded over the
    devices when there are several and S divides evenly between them; otherwise the program sits on one device."""
    return num_devices > 1 and num_runs % num_devices == 0


def run_sharding(num_runs: int) -> NamedSharding | None:
    """Sharding of the run axis S over all devices when `shards_runs`; else None."""
    devices = jax.devices()
    if jax.process_count() > 1 and num_runs % len(devices):
        raise ValueError(f"a program across {jax.process_count()} processes shards its runs over their {len(devices)} "
                         f"devices: the number of runs (seeds x settings, {num_runs}) must be a multiple of it")
    if not shards_runs(num_runs, len(devices)):
        return None
    return NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))


SEED_LIMIT = 2**32  # seeds become uint32 PRNG keys


def check_seeds(seeds: Sequence[int], distinct: bool = False) -> list[int]:
    """``seeds`` as Python ints, or a ValueError when there are none, one is not an integer (``operator.index``:
    numpy integers pass; floats, strings and bools do not), one is outside [0, 2**32), or (``distinct``: a user's
    seeds, not a sweep program's runs) one is repeated."""
    try:
        given = list(seeds)
    except TypeError as e:
        raise ValueError(f"seeds must be a list of integers, got {seeds!r}") from e
    if not all(hasattr(type(s), "__index__") and not isinstance(s, (bool, np.bool_)) for s in given):
        raise ValueError(f"seeds must be integers, got {given!r}")
    seeds = [operator.index(s) for s in given]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    outside = sorted({s for s in seeds if not 0 <= s < SEED_LIMIT})
    if outside:
        raise ValueError(f"seeds must be integers in [0, 2**32) (PRNG keys are uint32), got {outside}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1}) if distinct else []
    if repeated:
        raise ValueError(f"seeds must be distinct (runs of one seed are identical, not independent); repeated: "
                         f"{repeated}")
    return seeds


def seed_flags_error(seed: int, seeds: int) -> str | None:
    """What is wrong with the command-line flags ``--seed`` (first seed) and ``--seeds`` (how many), or None: the
    message `mtrl` and the experiment scripts print, checked before anything is built (`check_seeds` is the
    library's check of the list itself)."""
    if seeds < 1:
        return f"--seeds must be >= 1, got {seeds}"
    if seed < 0 or seed + seeds > SEED_LIMIT:
        return (f"--seed must be >= 0 and --seed + --seeds at most 2**32 (seeds are uint32), got --seed {seed} with "
                f"--seeds {seeds}")
    return None


def check_stop_at_step(stop_at_step: int | None) -> None:
    """Refuse a ``stop_at_step`` (env steps per task; None: run to the end) that `train` could never stop at."""
    if stop_at_step is not None and (not isinstance(stop_at_step, int) or isinstance(stop_at_step, bool)
                                     or stop_at_step < 1):
        raise ConfigError(f"stop_at_step must be an integer >= 1 (env steps per task), got {stop_at_step!r}")


@dataclasses.dataclass(frozen=True)
class CheckpointOptions:
    """When `train` saves the full runner state (orbax, asynchronous) into ``run_dir/checkpoints``."""

    every: int = 50_000
    """env steps per task between checkpoints (at the first chunk end past each multiple; 0 = only at the end)"""
    keep: int = 3
    """checkpoints kept (older ones are deleted)"""

    def validate(self) -> CheckpointOptions:
        """These options, or a `ConfigError` naming ``checkpoints.every`` / ``checkpoints.keep`` (`train`'s argument
        and its field; the command line shows them as ``--checkpoint-every`` / ``--keep-checkpoints``)."""
        for name, value, least, unit in (("every", self.every, 0, " (env steps per task; 0 = only at the end)"),
                                         ("keep", self.keep, 1, "")):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"checkpoints.{name} must be an integer >= {least}{unit}, got {value!r}")
        return self


class _StopOnSignals:
    """Within the block, SIGINT/SIGTERM only record a stop request (the loop then finishes its chunk, saves,
    and returns). Handlers are installed only in the main thread; previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, _frame):
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        state: final runner state; None when ``resume`` found the run already complete (nothing was restored).
        eval_steps: ``[E]`` env steps per task at each evaluation (the first is 0, before training).
        eval_returns: ``[E, S, T]`` mean evaluation return (greedy unless ``eval_epsilon``) per evaluation, run and
            task.
        task_names: task specs, in order.
        seeds: one per run.
        summary: the run summary (also written to `summary.json`); empty when the run stopped early.
        stopped_at: env steps per task where a signal or ``stop_at_step`` stopped the run (resumable), else None.
        signal: the signal number that stopped it, if one did.
        already_complete: ``resume`` found a finished run and trained nothing (writing its summary from the last
            checkpoint when the run had stopped before writing it).
        diverged: run index -> env steps per task at the end of the logging window where the run's parameters
            became non-finite (it stayed frozen at that window's start; ``on_divergence="freeze"``).
    """

    state: RunnerState | None
    eval_steps: np.ndarray
    eval_returns: np.ndarray
    task_names: list[str]
    seeds: list[int]
    summary: dict[str, Any]
    stopped_at: int | None = None
    signal: int | None = None
    already_complete: bool = False
    diverged: dict[int, int] = dataclasses.field(default_factory=dict)
    _trainer: Trainer | None = dataclasses.field(default=None, repr=False, compare=False)
    _grouped: bool = dataclasses.field(default=False, repr=False, compare=False)

    def policy(self, seed: int | None = None):
        """The trained policy of this result's final state (a `mtrl.policy.Policy`: ``q_values``, ``act``, every
        seed's parameters), acting with ``seed`` (default: the first); what `mtrl.load_policy` gives from the run's
        last checkpoint, without needing a run directory."""
        if self._grouped:
            raise ValueError("this result is a sweep's program, one run per setting and seed, not one policy: train "
                             "the setting alone (its run directory's config.json records it) or load it from its "
                             "run directory when it has checkpoints of its own")
        if self.state is None or self._trainer is None:
            raise ValueError("this result holds no trained state: resume found the run already complete and "
                             "restored nothing; load it with mtrl.load_policy(run_dir)")
        from mtrl.policy import policy_from_state

        return policy_from_state(self._trainer, self.seeds, self.state, seed)


class RunDivergedError(RuntimeError):
    """A run's parameters became non-finite (`train` with ``on_divergence="stop"``); the message names the seed
    and step."""


LOG_EVERY = 1_000
"""Default logging cadence of `train` (env steps per task between metrics.jsonl / TensorBoard records)."""


def log_iterations(log_every: int, config: DQNConfig) -> int:
    """Iterations per logging window requested by ``log_every`` env steps per task (rounded to whole iterations;
    `window_sizes` then fits it to the chunk)."""
    if not isinstance(log_every, int) or isinstance(log_every, bool) or log_every < 1:
        raise ValueError(f"log_every must be a positive integer (env steps per task), got {log_every!r}")
    return max(1, round(log_every / config.num_envs))


def train(
    tasks: TaskSet | Sequence[str] | None,
    config: DQNConfig = DQNConfig(),
    seeds: Sequence[int] = (0,),
    run_dir: str | None = None,
    progress: bool = True,
    tensorboard: bool = False,
    extra_metadata: dict[str, Any] | None = None,
    *,
    checkpoints: CheckpointOptions | None = CheckpointOptions(),
    resume: bool = False,
    overwrite: bool = False,
    stop_at_step: int | None = None,
    log_every: int = LOG_EVERY,
    trainer: Trainer | None = None,
    init_state: Callable[[Trainer, list[int]], RunnerState] | None = None,
    groups: Sequence[RunGroup] | None = None,
    on_divergence: str = "stop",
    wandb: Any = None,
) -> TrainResult:
    """Train one multi-task DQN per seed on ``tasks`` and evaluate it after every chunk (greedily unless
    ``config.eval_epsilon``).

    Args:
        tasks: task specs (``"CartPole-v1:length=1.0"``) or a `TaskSet` (ignored when ``trainer`` is given).
        config: `DQNConfig`; step counts are per task (ignored when ``trainer`` is given).
        seeds: one run per seed, all in one compiled program.
        run_dir: where to write config.json, metrics.jsonl, eval.csv, summary.{json,md}, curves.png and
            checkpoints/; None = nowhere (no checkpoints either). ``training.lock`` marks it while this trains
            (`mtrl.run_lock`): another process on this host may not resume it or move it aside meanwhile.
        progress: show a progress bar.
        tensorboard: also write TensorBoard events (needs the `tensorboard` extra; checked before anything else).
        extra_metadata: merged into config.json; its ``"transfer"`` entry is also checked on resume.
        checkpoints: checkpoint schedule, recorded in config.json; None = no checkpoints. On ``resume``, the run's
            recorded schedule is used unless another one is given.
        resume: continue from the latest complete checkpoint in ``run_dir`` (bit-identical on CPU to a run that
            was never stopped); metric files are cut back to that step and continue from it. A run that already
            finished is reported complete and nothing is compiled (``already_complete``); one stopped after its
            last checkpoint but before its summary gets the summary written from that checkpoint.
        overwrite: a new run into a ``run_dir`` that already holds a run moves that run aside
            (``<run_dir>.replaced-<time>``) instead of refusing; nothing is deleted.
        stop_at_step: save and stop at the first evaluation (chunk end, every ``config.eval_every`` env steps per
            task) at or after this many env steps per task (the run stays resumable). A `ConfigWarning` when it is
            past the run's end (the run simply finishes) or, resuming, not past the checkpoint (it stops again after
            one evaluation).
        log_every: env steps per task between training-metric records (metrics.jsonl, TensorBoard), rounded to
            whole iterations and fitted to the chunk (`window_sizes`); evaluations stay at ``config.eval_every``.
        trainer: a prebuilt `Trainer` (transfer modes build one with their optimiser).
        init_state: ``init_state(trainer, seeds)`` builds the starting state (default: `Trainer.init`).
        groups: log the runs as these groups, each a run directory ``run_dir/<label>/`` of its own (a sweep's
            settings; `mtrl.logger.GroupedRunLogger`); the summary is then ``{"groups": {label: summary}, ...}``.
        on_divergence: a run whose parameters become non-finite is frozen at its last finite logging window
            (`freeze_diverged`); ``"stop"`` (default) then stops the whole run with `RunDivergedError` naming the
            seed and step, after logging the metrics so far and without saving a checkpoint (the last one stays);
            ``"freeze"`` (sweeps) goes on and reports it in ``TrainResult.diverged``.
        wandb: `mtrl.tracking.WandbOptions`: also track the run in Weights & Biases (needs ``run_dir`` and the
            ``wandb`` extra, checked before anything else).

    SIGINT/SIGTERM during training finish the current chunk, save a checkpoint, and return with ``stopped_at``.
    """
    from mtrl.checkpoint import Checkpointer, IncompatibleCheckpointError, check_compatible, key_impl_name
    from mtrl.logger import GroupedRunLogger, RunLogger, environment_info, require_tensorboard  # host-side only

    if tensorboard:
        require_tensorboard()
    if wandb is not None:
        from mtrl.tracking import require_wandb

        require_wandb()
        if run_dir is None:
            raise ValueError("W&B tracking needs a run_dir (the W&B run's files and id live there)")
    if on_divergence not in ("stop", "freeze"):
        raise ValueError(f"on_divergence must be 'stop' or 'freeze', got {on_divergence!r}")
    trainer = trainer or Trainer.create(tasks, config)
    cfg = trainer.config
    seeds = check_seeds(seeds, distinct=not groups)  # a sweep program's runs repeat its seeds per setting
    check_stop_at_step(stop_at_step)
    window_iterations = log_iterations(log_every, cfg)
    if resume and run_dir is None:
        raise ValueError("resume needs the run_dir to continue")
    if checkpoints is not None:
        checkpoints.validate()
    identity = {"config": dataclasses.asdict(cfg), "tasks": trainer.taskset.names, "seeds": seeds,
                "transfer": (extra_metadata or {}).get("transfer")}
    if (extra_metadata or {}).get("sweep") is not None:  # a sweep's checkpoint resumes only the same grid
        identity["sweep"] = extra_metadata["sweep"]
    if stop_at_step is not None and not (run_dir and checkpoints):
        raise ValueError("stop_at_step needs a run_dir and checkpoints, or the stopped run could not be resumed")
    primary = is_primary()  # in a program across processes, only process 0 writes the run's files
    if run_dir is not None and not resume and primary:
        from mtrl.provenance import claim_run_dir

        moved = claim_run_dir(run_dir, overwrite)
        if moved is not None:
            print(f"moved the run that was in {run_dir} to {moved}")
    barrier("mtrl-run-dir-claimed")
    with contextlib.ExitStack() as held:  # the run directory's lock, released however training ends
        if run_dir is not None and primary:
            held.enter_context(hold_run_dir(run_dir))
        if resume:
            checkpoints = _resume_checkpoint_options(run_dir, checkpoints)
        checkpointer = Checkpointer(run_dir, checkpoints.keep) if run_dir and checkpoints else None
        versions = environment_info()["versions"] if checkpointer is not None else None

        def new_logger(resume_step: int | None):
            metadata = {**(extra_metadata or {}), "checkpoints": plain_options(checkpoints),  # the window used:
                        "log_every": window_sizes(cfg.chunk_iterations, window_iterations)[0] * cfg.num_envs}
            kind = functools.partial(GroupedRunLogger, groups=groups) if groups else RunLogger
            return kind(run_dir if primary else None, trainer.taskset.names, seeds, cfg, progress=progress and primary,
                        tensorboard=tensorboard, extra_metadata=metadata, resume_step=resume_step, wandb=wandb)

        wall_start = time.perf_counter()
        start_step, saved = 0, {}
        total_steps = cfg.iterations * cfg.num_envs
        if stop_at_step is not None and stop_at_step > total_steps:
            warnings.warn(ConfigWarning(f"stop_at_step ({stop_at_step:,}) is past the run's end (total_steps "
                                        f"{total_steps:,}): the run trains to its end, as without it"), stacklevel=2)
        if resume:
            if checkpointer is None or checkpointer.latest_step() is None:
                raise FileNotFoundError(f"no completed checkpoint to resume in {run_dir}")
            start_step = checkpointer.latest_step()
            check_compatible(checkpointer.metadata(start_step), identity, run_dir)
            if start_step == total_steps:
                missing = primary and _summary_missing(run_dir, groups)
                return _already_complete(run_dir, checkpointer, trainer, seeds, new_logger if missing else None)
            if stop_at_step is not None and stop_at_step <= start_step:
                warnings.warn(ConfigWarning(
                    f"stop_at_step ({stop_at_step:,}) is not past the checkpoint this run resumes ({start_step:,} env "
                    "steps per task): it stops again at its next evaluation; leave stop_at_step out to train on to the "
                    "end"), stacklevel=2)
            trainer = _continuing(trainer, checkpointer.key_impl(start_step), len(seeds))

            def build_state() -> RunnerState:
                state, metadata = checkpointer.restore(trainer.init(seeds), start_step)
                saved.update(metadata)
                return state
        else:
            build_state = functools.partial(init_state, trainer, seeds) if init_state else None
        # Chunk c ends after `ends[c]` iterations; the last chunk is shorter when total_steps is not a multiple of the
        # chunk, so a run trains exactly total_steps env steps per task.
        sizes = cfg.chunk_sizes()
        ends = np.cumsum(sizes) * cfg.num_envs  # env steps per task after each chunk
        if resume and start_step not in set(ends.tolist()):
            raise IncompatibleCheckpointError(
                f"checkpoint in {run_dir} is at {start_step:,} env steps per task, not at the end of a chunk of this "
                f"run ({', '.join(f'{e:,}' for e in ends)})")
        first_chunk = int(np.searchsorted(ends, start_step, side="right")) if resume else 0
        # init (or restore) and compile overlap; compile_s covers both
        state, train_chunk, evaluate = trainer.start(seeds, build_state, sizes[first_chunk], window_iterations)
        chunks = {sizes[first_chunk]: train_chunk}
        compile_s = time.perf_counter() - wall_start
        # wall and training seconds of the earlier sittings of a resumed run, up to the checkpoint it resumes
        # (checkpoints written before this was recorded: unknown, None)
        earlier = saved.get("timing_so_far", None if resume else {"wall_s": 0.0, "train_s": 0.0, "sittings": 0})
        diverged = {int(k): int(v) for k, v in saved.get("diverged", {}).items()}  # run index -> env steps per task
        if resume:
            eval_steps = list(saved["eval_steps"])
            eval_returns = [np.asarray(r, np.float32) for r in saved["eval_returns"]]
        logger = new_logger(start_step if resume else None)

        if not resume:
            eval_steps, eval_returns = [0], [to_host(evaluate(state)).mean(-1)]
            logger.log_eval(0, eval_returns[-1])
        every = checkpoints.every if checkpoints else 0
        train_s, stopped_at = 0.0, None
        try:
            with _StopOnSignals() as stop:
                for chunk in range(first_chunk, len(sizes)):
                    if sizes[chunk] not in chunks:  # the shorter last chunk: its own program, compiled once
                        chunks[sizes[chunk]] = trainer.make_train_chunk(sizes[chunk], window_iterations).lower(
                            state).compile()
                    t0 = time.perf_counter()
                    state, metrics = chunks[sizes[chunk]](state)
                    metrics = to_host(metrics)
                    train_s += time.perf_counter() - t0
                    step, previous = int(ends[chunk]), int(ends[chunk]) - sizes[chunk] * cfg.num_envs
                    returns = to_host(evaluate(state)).mean(-1)  # [S, T]
                    eval_steps.append(step)
                    eval_returns.append(returns)
                    sps = trainer.taskset.num_tasks * len(seeds) * (step - start_step) / max(train_s, 1e-9)
                    window_ends = previous + np.cumsum(window_sizes(sizes[chunk], window_iterations)) * cfg.num_envs
                    for w, window_end in enumerate(window_ends):
                        logger.log_window(int(window_end), jax.tree.map(lambda m, w=w: m[w], metrics), sps,
                                          eval_returns=returns if window_end == step else None)
                    logger.log_eval(step, returns)
                    for w, run in zip(*np.nonzero(np.asarray(metrics["diverged"])), strict=True):
                        diverged.setdefault(int(run), int(window_ends[w]))
                    new = {run: at for run, at in diverged.items() if at > previous}
                    if new and on_divergence == "stop":
                        run, at = min(new.items(), key=lambda item: item[1])
                        last_saved = checkpointer.latest_step() if checkpointer is not None else None
                        raise RunDivergedError(
                            f"seed {seeds[run]} (run {run}) diverged: its parameters became non-finite in the logging "
                            f"window ending at {at:,} env steps per task. The run stops here; metrics so far are kept"
                            + (f" and its last checkpoint (step {last_saved:,}) is untouched" if last_saved else "")
                            + ". Lower the learning rate or clip gradients harder (max_grad_norm), or compare settings "
                            "with `mtrl sweep`, which freezes a diverged setting and goes on.")
                    last = chunk + 1 == len(sizes)
                    # every process stops together, with the signal any of them got
                    signum, reached = process_max([stop.signum or 0, stop_at_step is not None and step >= stop_at_step])
                    stop.signum = signum or None
                    stopping = not last and (stop.signum is not None or bool(reached))
                    due = every > 0 and step // every > previous // every
                    if checkpointer is not None and (last or stopping or due):
                        so_far = None if earlier is None else {
                            "wall_s": earlier["wall_s"] + time.perf_counter() - wall_start,
                            "train_s": earlier["train_s"] + train_s, "sittings": earlier["sittings"] + 1}
                        checkpointer.save(step, state, {**identity, "versions": versions,
                                                        "key_impl": key_impl_name(state.runs.key),
                                                        "eval_steps": list(eval_steps),
                                                        "eval_returns": [r.tolist() for r in eval_returns],
                                                        "timing_so_far": so_far, "diverged": diverged})
                    if stopping:
                        stopped_at = step
                        break
        except BaseException:
            logger.close_tracking()  # the W&B run ends as it is; a resume continues it
            raise
        finally:
            if checkpointer is not None:
                checkpointer.close()  # waits for the pending write: a crash keeps its last checkpoint
            logger.close()
        wall_s = time.perf_counter() - wall_start

        result = TrainResult(
            state=state,
            eval_steps=np.asarray(eval_steps),
            eval_returns=np.stack(eval_returns),
            task_names=trainer.taskset.names,
            seeds=seeds,
            summary={},
            stopped_at=stopped_at,
            signal=stop.signum,
            diverged=diverged,
            _trainer=trainer,
            _grouped=bool(groups),
        )
        if stopped_at is not None:
            logger.close_tracking()
            return result
        trained_steps = total_steps - start_step
        result.summary = logger.finish(
            result.eval_steps, result.eval_returns,
            timing={
                "env_steps_per_task": total_steps,
                "wall_s": wall_s,
                "compile_s": compile_s,
                "train_s": train_s,
                "env_steps_per_s": trained_steps * trainer.taskset.num_tasks * len(seeds) / max(train_s, 1e-9),
                **({"resumed_from_step": start_step} if resume else {}),
                # every sitting up to the checkpoint each next one resumed (None: an earlier sitting's is unknown)
                "sittings": None if earlier is None else earlier["sittings"] + 1,
                "wall_s_all_sittings": None if earlier is None else earlier["wall_s"] + wall_s,
                "train_s_all_sittings": None if earlier is None else earlier["train_s"] + train_s,
            },
        )
        return result


def _continuing(trainer: Trainer, key_impl: str, num_runs: int) -> Trainer:
    """``trainer`` set to continue runs whose keys use ``key_impl`` (`Trainer.placement`), saying so when that
    keeps them on one device of several."""
    trainer = dataclasses.replace(trainer, key_impl=key_impl)
    if run_sharding(num_runs) is not None and trainer.placement(num_runs)[0] is None:
        print(f"this run was trained on one device, with {key_impl} keys, which jax cannot shard: its {num_runs} "
              f"runs continue on one of the {len(jax.devices())} devices, the same computation as before")
    return trainer


def plain_options(checkpoints: CheckpointOptions | None) -> dict[str, int] | None:
    """Checkpoint options as recorded in config.json (None = no checkpoints)."""
    return None if checkpoints is None else dataclasses.asdict(checkpoints)


def _resume_checkpoint_options(run_dir: str, given: CheckpointOptions | None) -> CheckpointOptions | None:
    """The checkpoint options a resumed run uses: ``given`` when it differs from the defaults, else the ones the
    run recorded in its config.json (runs written before they were recorded: the defaults)."""
    if given is not None and given != CheckpointOptions():
        return given
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            recorded = json.load(f).get("checkpoints", "missing")
    except (OSError, ValueError):
        recorded = "missing"
    if recorded == "missing" or recorded is None:
        return given or CheckpointOptions()  # resuming needs checkpoints
    return CheckpointOptions(**recorded).validate()


def _summary_missing(run_dir: str, groups: Sequence[Any] | None) -> bool:
    """Whether a run (or any of its groups) lacks summary.json: it was stopped after its last checkpoint."""
    dirs = [g.directory or os.path.join(run_dir, g.label) for g in groups] if groups else [run_dir]
    return any(not os.path.exists(os.path.join(d, "summary.json")) for d in dirs)


def _already_complete(run_dir: str, checkpointer, trainer: Trainer, seeds: list[int],
                      new_logger: Callable[[int], Any] | None = None) -> TrainResult:
    """The result of resuming a run that already trained its whole budget: read back from its last checkpoint,
    nothing compiled. ``new_logger`` (the run was stopped after that checkpoint, before its summary was written):
    the summary, table and curves are written from the checkpoint's evaluations and timing so far."""
    metadata = checkpointer.metadata()
    checkpointer.close()
    steps = int(metadata["step"])
    eval_steps = np.asarray(metadata["eval_steps"])
    eval_returns = np.asarray(metadata["eval_returns"], np.float32)
    if new_logger is None:
        summary = {}
        summary_path = os.path.join(run_dir, "summary.json")
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        print(f"{run_dir} is complete ({steps:,} env steps per task); nothing to train.")
    else:
        so_far = metadata.get("timing_so_far") or {}
        train_s = so_far.get("train_s")
        timing = {"env_steps_per_task": steps, "wall_s": so_far.get("wall_s"), "compile_s": None, "train_s": train_s,
                  "env_steps_per_s": steps * trainer.taskset.num_tasks * len(seeds) / train_s if train_s else None,
                  "sittings": so_far.get("sittings"), "wall_s_all_sittings": so_far.get("wall_s"),
                  "train_s_all_sittings": train_s, "summary_from_checkpoint": True}
        logger = new_logger(steps)
        try:
            summary = logger.finish(eval_steps, eval_returns, timing)
        finally:
            logger.close()
        print(f"the run had finished training ({steps:,} env steps per task) but not its summary; written from its "
              "last checkpoint.")
    return TrainResult(state=None, eval_steps=eval_steps, eval_returns=eval_returns,
                       task_names=trainer.taskset.names, seeds=seeds, summary=summary, already_complete=True,
                       diverged={int(k): int(v) for k, v in metadata.get("diverged", {}).items()})
