"""Trained policies out of a run directory: load one to inspect or act with it, or evaluate a whole run.

`load_policy(run_dir)` restores a checkpoint (default: the latest) of a plain or transfer run and returns a
`Policy`: the task names, the online parameters of every seed, `q_values(task, obs)` over the task's own actions,
`act(task, obs, epsilon)`, `episode_returns(spec, ...)` (whole episodes in one compiled loop, also of a task the
run never trained on) and `record_episode(spec, ...)` (one episode step by step, an `Episode` for `mtrl.render`);
`TrainResult.policy()` gives the same for a run just trained, in memory.
`evaluate_run(run_dir)` plays evaluation episodes (greedy, or at the run's `eval_epsilon`) of every task with every
seed in one jitted program and writes ``evaluation.json`` and ``evaluation.md``; with the run's own episode count and
ε it uses the run's evaluation keys, so it reproduces the run's logged evaluation at that checkpoint exactly.

Axes: ``S`` seeds, ``T`` tasks, ``X`` observations (any leading shape), ``E`` episodes.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtrl import popart
from mtrl.config import ConfigWarning


@dataclasses.dataclass(frozen=True)
class _Restored:
    """The parts of a checkpoint a policy uses: online params ``[S, ...]``, PopArt statistics (or None),
    evaluation keys ``[S]`` (when asked for) and the iteration."""

    params: Any
    popart: Any
    eval_key: jax.Array | None
    iteration: jax.Array


def _restore(run_dir: str, step: int | None, eval_key: bool = False):
    """(trainer, config.json, `_Restored` at ``step``) of a run directory. Only those parts are read from disk (the
    replay buffer, most of a checkpoint, stays there); the evaluation keys only with ``eval_key``, with the key
    implementation the run used (`Checkpointer.key_impl`: Philox on one device, threefry when sharded), so a run
    trained on one device layout evaluates with its own keys on another. A sweep's setting is read from its shard's
    checkpoint (every setting of that program on one run axis), keeping the setting's runs."""
    from mtrl.checkpoint import Checkpointer
    from mtrl.transfer import run_metadata, run_trainer, sweep_setting_checkpoints

    meta = run_metadata(run_dir)
    setting = sweep_setting_checkpoints(run_dir, meta)
    checkpoint_dir, saved_seeds, runs = (run_dir, meta["seeds"], None) if setting is None else (
        setting[0], setting[1]["seeds"], np.asarray(setting[2]))
    with warnings.catch_warnings():  # the run's settings were warned about when it trained; a reader keeps quiet
        warnings.simplefilter("ignore", ConfigWarning)
        trainer = run_trainer(meta)
    abstract = trainer.init_shapes(saved_seeds, placed=False)  # a shard's settings share the network's shapes
    parts = {"runs.train.params": abstract.runs.train.params, "runs.train.popart": abstract.runs.train.popart,
             "iteration": abstract.iteration}
    ckpt = Checkpointer(checkpoint_dir, read_only=True)
    try:
        at = ckpt.metadata(step)["step"]  # one checkpoint for every part, also while the run goes on saving
        restored = ckpt.restore_parts(parts, at)
        if eval_key:  # raw, wrapped with the run's own implementation
            data = ckpt.restore_untyped(at, paths=["runs.eval_key"])["runs"]["eval_key"]
            restored["runs.eval_key"] = jax.random.wrap_key_data(jnp.asarray(data), impl=ckpt.key_impl(at))
    except FileNotFoundError as e:
        raise ValueError(f"{run_dir!r} has no checkpoint to load ({e})") from None
    finally:
        ckpt.close()
    params, stats = jax.device_get((restored["runs.train.params"], restored["runs.train.popart"]))
    keys = restored.get("runs.eval_key")
    if runs is not None:  # this setting's runs of the shard's run axis
        params, stats = jax.tree.map(lambda x: x[runs], (params, stats))
        keys = None if keys is None else keys[runs]
    return trainer, meta, _Restored(params=params, popart=stats, eval_key=keys, iteration=restored["iteration"])


@dataclasses.dataclass(frozen=True, eq=False)
class Episode:
    """One recorded episode (`Policy.record_episode`), ``L`` steps.

    Attributes:
        task: the `mtrl.tasks.Task` played (its spec, env id and env parameters).
        observations: ``[L, *obs_shape]`` the observation before each step's action (the first is the reset's).
        actions: ``[L]`` the actions the policy chose (indices into the task's own actions; under the
            ``minatar-paper`` protocol the game may repeat its previous action instead: sticky actions).
        rewards: ``[L]`` each step's reward.
        ended: whether the episode ended (terminated or truncated) at step L; False: cut at ``max_steps``.
        final_observation: ``[*obs_shape]`` the observation after the last step (where the episode ended, the true
            final one: the fallen pole, the lost life).
    """

    task: Any
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    ended: bool
    final_observation: np.ndarray

    @property
    def episode_return(self) -> float:
        """The sum of the rewards (float32, as evaluations add them)."""
        return float(np.cumsum(self.rewards, dtype=np.float32)[-1])


RECORD_STEPS_CAP = 2500  # `record_episode`'s default length: the task's episode limit, at most this (Freeway's)


@dataclasses.dataclass(frozen=True, eq=False)
class Policy:
    """A trained multi-task Q-network of one run at one checkpoint.

    Attributes:
        tasks: task specs, in the run's order (``joint`` transfer runs include the source tasks).
        seeds: the run's seeds; ``params`` leaves have a leading axis of this length.
        step: env steps per task at the checkpoint.
        params: online parameters ``[S, ...]``.
        seed: which seed `q_values` and `act` use (an entry of ``seeds``).
        popart: PopArt statistics ``[S, T]`` of a run trained with them (`q_values` unnormalises), else None.
    """

    tasks: list[str]
    seeds: list[int]
    step: int
    params: Any
    seed: int
    _agent: Any
    _taskset: Any
    popart: Any = None
    _compile_options: dict | None = None  # the run's evaluation options (`Trainer.evaluation_options`)
    _programs: dict = dataclasses.field(default_factory=dict, repr=False)  # compiled episode loops, any seed

    def _task_index(self, task: str | int) -> int:
        if isinstance(task, int) and 0 <= task < len(self.tasks):
            return task
        from mtrl.tasks import find_spec, spec_error

        protocol = self._taskset.tasks[0].protocol
        if isinstance(task, str) and (found := find_spec(task, self.tasks, protocol)):
            return self.tasks.index(found)
        raise ValueError(f"task {task!r} is not in this run; its tasks: {', '.join(self.tasks)}"
                         + (spec_error(task, protocol) if isinstance(task, str) else ""))

    def with_seed(self, seed: int) -> Policy:
        """The same policy for another of the run's seeds."""
        if seed not in self.seeds:
            raise ValueError(f"seed {seed} is not in this run; its seeds: {self.seeds}")
        return dataclasses.replace(self, seed=seed)

    def _seed_params(self) -> tuple[Any, Any]:
        """(online params, PopArt statistics or None) of the acting seed."""
        index = self.seeds.index(self.seed)
        pick = lambda tree: jax.tree.map(lambda x: x[index], tree)  # noqa: E731
        return pick(self.params), None if self.popart is None else pick(self.popart)

    def _batch(self, t: int, obs: jax.Array) -> jax.Array:
        """Observations ``[X, *obs_shape_t]`` of task ``t`` as the network's input ``[T, X, *obs_shape]``: padded
        like the run's and given to every task's head (traceable)."""
        flat = self._taskset.pad_obs(obs, self._taskset.tasks[t].obs_shape)
        return jnp.broadcast_to(flat[None], (len(self.tasks),) + flat.shape)

    def _head_q(self, params: Any, stats: Any, t: int, obs: jax.Array) -> jax.Array:
        """Q-values ``[X, A_t]`` of task ``t``'s head over its own actions for observations ``[X, *obs_shape_t]``,
        unnormalised with PopArt ``stats`` when given."""
        q = self._agent.q_values(params, self._batch(t, obs))  # [T, X, A_max]
        if stats is not None:
            q = popart.unnormalize(stats, q)
        return q[t, :, : int(self._taskset.action_mask[t].sum())]

    def _task_obs(self, t: int, obs: Any) -> tuple[jax.Array, tuple[int, ...]]:
        """``obs [X..., *obs_shape_t]`` flattened to ``[X, *obs_shape_t]``, and the leading shape ``X...``."""
        task_obs_shape = tuple(self._taskset.tasks[t].obs_shape)
        obs = jnp.asarray(obs)
        lead = obs.shape[: obs.ndim - len(task_obs_shape)]
        if tuple(obs.shape[len(lead):]) != task_obs_shape:
            raise ValueError(f"obs for {self.tasks[t]} must end in its observation shape {task_obs_shape}, "
                             f"got {obs.shape}")
        return obs.reshape((-1,) + task_obs_shape), lead

    def q_values(self, task: str | int, obs: Any) -> np.ndarray:
        """Q-values ``[X..., A_t]`` of ``task``'s own A_t actions (the padded ones of a shared head are dropped)
        for observations ``[X..., *obs_shape]`` of that task, as its env emits them."""
        t = self._task_index(task)
        flat, lead = self._task_obs(t, obs)
        q = self._head_q(*self._seed_params(), t, flat)
        return np.asarray(q).reshape(lead + (q.shape[-1],))

    def _played(self, spec: str, head: str | int | None) -> tuple[Any, int]:
        """(a one-task `TaskSet` of ``spec``, the index of the head that acts in it): ``spec`` under the run's
        protocol when it is a MinAtar game, the head's task of the same observation shape, dtype and actions."""
        from mtrl.tasks import MINATAR_GAMES, find_spec, make_taskset, parse_task

        protocol = self._taskset.tasks[0].protocol
        if head is None and not find_spec(spec, self.tasks, protocol):
            raise ValueError(f"{spec!r} is not one of this run's tasks ({', '.join(self.tasks)}): name the task "
                             "whose head acts in it (head=...; on the command line --head)")
        t = self._task_index(spec if head is None else head)
        # the run's protocol changes MinAtar games only (a task set without one must be built under gymnax's)
        played = make_taskset([spec], protocol if parse_task(spec, protocol).env_id in MINATAR_GAMES else "gymnax")
        own, other = self._taskset.tasks[t], played.tasks[0]
        num_actions, played_actions = int(self._taskset.action_mask[t].sum()), int(played.action_mask[0].sum())
        if (tuple(other.obs_shape), np.dtype(other.obs_dtype), played_actions) != (
                tuple(own.obs_shape), np.dtype(own.obs_dtype), num_actions):
            raise ValueError(f"{spec!r} has {np.dtype(other.obs_dtype)} observations {tuple(other.obs_shape)} and "
                             f"{played_actions} actions, but head {self.tasks[t]!r} was trained on "
                             f"{np.dtype(own.obs_dtype)} {tuple(own.obs_shape)} and {num_actions}: it can only act "
                             "in a task of the same shapes")
        return played, t

    def _actor(self, t: int, epsilon: float):
        """``act(params, obs [1, E, *obs_shape], key) -> actions [1, E]``: the training agent's, head ``t``'s,
        greedy or ε-greedy (traceable)."""
        eps = jnp.full((len(self.tasks),), epsilon, jnp.float32)

        def act(params, obs, key):
            batch = self._batch(t, obs[0])
            if epsilon == 0:  # draws nothing: greedy episodes do not depend on the policy key
                return self._agent.greedy_actions(params, batch)[t][None]
            return self._agent.act(params, batch, key, eps)[t][None]

        return act

    def _compiled(self, cache_key: tuple, build, key: jax.Array):
        """The program ``build()`` (a function of this seed's params and ``key``), compiled once per ``cache_key``
        and key type with the run's evaluation options; other seeds of the policy reuse it."""
        cache_key = (*cache_key, key.dtype, key.shape)
        if cache_key not in self._programs:
            args = (self._seed_params()[0], key)  # every seed's params have the same shapes
            self._programs[cache_key] = jax.jit(build()).lower(*args).compile(self._compile_options)
        return self._programs[cache_key]

    def episode_returns(self, spec: str, episodes: int = 10, epsilon: float = 0.0, head: str | int | None = None,
                        key: jax.Array | None = None) -> np.ndarray:
        """Returns ``[episodes]`` of full episodes of task ``spec`` played by this seed's network, greedily or with
        a uniformly random valid action at probability ``epsilon``, all episodes in one compiled loop (compiled
        once per task, head, episode count and ε, with the run's evaluation options; other seeds of the policy
        reuse it).

        ``spec`` may be one of the run's tasks or a task it never trained on (zero-shot: ``CartPole-v1:length=3.0``
        from a run on shorter poles), acted on by the head of ``head`` (default: the run's task ``spec`` names),
        whose task must have the same observation shape, dtype and number of actions. ``key`` (default ``key(0)``)
        seeds the resets, env steps and ε draws. `evaluate_run` instead reproduces a run's own logged evaluations."""
        from mtrl.evaluate import check_epsilon, episode_loop

        if isinstance(episodes, bool) or not isinstance(episodes, numbers.Integral) or episodes < 1:
            raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
        check_epsilon(epsilon)
        played, t = self._played(spec, head)
        key = jax.random.key(0) if key is None else jnp.asarray(key)
        program = self._compiled(("returns", played.names[0], played.tasks[0].protocol, t, int(episodes),
                                  float(epsilon)), lambda: episode_loop(played, int(episodes), self._actor(t, epsilon)),
                                 key)
        returns, _ = program(self._seed_params()[0], key)
        return np.asarray(returns[0])

    def record_episode(self, spec: str, epsilon: float = 0.0, head: str | int | None = None,
                       key: jax.Array | None = None, max_steps: int | None = None) -> Episode:
        """One episode of task ``spec`` played by this seed's network (greedy, or ε-greedy), step by step: its
        observations, actions and rewards (`Episode`), for a look at what the policy does (`mtrl.render` draws
        it). One compiled loop of at most ``max_steps`` steps (default: the task's episode limit, at most
        `RECORD_STEPS_CAP`; compiled once per task, head, ε and length); an episode still going then is cut there
        (``Episode.ended`` False).

        ``spec``, ``head`` and ``epsilon`` as in `episode_returns`; with the same ``key`` the recorded episode is
        the first of ``episode_returns(spec, episodes=1, key=key)``, its return that one's."""
        from mtrl.evaluate import check_epsilon, episode_recorder

        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral)
                                      or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer (or None: the task's limit), got {max_steps!r}")
        check_epsilon(epsilon)
        played, t = self._played(spec, head)
        max_steps = int(max_steps or min(played.max_episode_steps, RECORD_STEPS_CAP))
        key = jax.random.key(0) if key is None else jnp.asarray(key)
        program = self._compiled(("record", played.names[0], played.tasks[0].protocol, t, float(epsilon),
                                  max_steps), lambda: episode_recorder(played, max_steps, self._actor(t, epsilon)),
                                 key)
        obs, actions, rewards, steps, ended, final = jax.device_get(program(self._seed_params()[0], key))
        return Episode(task=played.tasks[0], observations=obs[:steps], actions=actions[:steps],
                       rewards=rewards[:steps], ended=bool(ended), final_observation=final)

    def check_playable(self, spec: str, head: str | int | None = None) -> None:
        """Raise `ValueError` unless this policy can play ``spec`` (with ``head``'s head): what `episode_returns`
        and `record_episode` check before compiling anything."""
        self._played(spec, head)

    def act(self, task: str | int, obs: Any, epsilon: float = 0.0, key: jax.Array | None = None) -> np.ndarray:
        """Actions ``[X...]``: greedy over the task's own actions (the argmax of the network's outputs, as in
        training), or with ``epsilon`` > 0 a uniform one of them with that probability (``key`` required then)."""
        t = self._task_index(task)
        flat, lead = self._task_obs(t, obs)
        greedy = np.asarray(self._agent.greedy_actions(self._seed_params()[0], self._batch(t, flat))[t]).reshape(lead)
        if epsilon <= 0:
            return greedy
        if key is None:
            raise ValueError("act with epsilon > 0 needs a key (jax.random.key(...))")
        k_explore, k_action = jax.random.split(key)
        explore = np.asarray(jax.random.uniform(k_explore, greedy.shape)) < epsilon
        random = np.asarray(jax.random.randint(k_action, greedy.shape, 0, int(self._taskset.action_mask[t].sum())))
        return np.where(explore, random, greedy)


def policy_from_state(trainer: Any, seeds: Sequence[int], state: Any, seed: int | None = None) -> Policy:
    """The policy of a `Trainer`'s runner ``state`` (one run per seed of ``seeds``), acting with ``seed`` (default:
    the first); parameters and PopArt statistics are copied to the host (gathered from every process of a program
    that spans several)."""
    from mtrl.distributed import to_host

    params, stats, iteration = to_host((state.runs.train.params, state.runs.train.popart, state.iteration))
    return _policy(trainer, seeds, _Restored(params=params, popart=stats, eval_key=None, iteration=iteration), seed)


def _policy(trainer: Any, seeds: Sequence[int], restored: _Restored, seed: int | None) -> Policy:
    """The `Policy` of ``restored`` host-side parts, acting with ``seed`` (default: the first)."""
    seeds = [int(s) for s in seeds]
    params, stats, iteration = restored.params, restored.popart, restored.iteration
    policy = Policy(tasks=list(trainer.taskset.names), seeds=seeds, step=int(iteration) * trainer.config.num_envs,
                    params=params, seed=seeds[0], _agent=trainer.agent, _taskset=trainer.taskset, popart=stats,
                    _compile_options=trainer.evaluation_options())
    return policy if seed is None else policy.with_seed(seed)


def load_policy(run_dir: str, step: int | None = None, seed: int | None = None) -> Policy:
    """The policy of ``run_dir`` (plain or transfer) at checkpoint ``step`` (default: the latest), acting with
    ``seed`` (default: the run's first seed)."""
    trainer, meta, restored = _restore(run_dir, step)
    return _policy(trainer, meta["seeds"], restored, seed)


def evaluate_run(run_dir: str, episodes: int | None = None, step: int | None = None,
                 tasks: Sequence[str] | None = None, write: bool = True,
                 epsilon: float | None = None, out: str | None = None) -> dict[str, Any]:
    """Returns of every task and seed of ``run_dir`` at checkpoint ``step`` (default: the latest), ``episodes`` per
    task and seed (default: the run's ``eval_episodes``), played greedily or with a random valid action at
    probability ``epsilon`` (default: the run's ``eval_epsilon``), all in one jitted program. Keys are the run's
    evaluation keys at that step, so with the run's episode count and ε the returns equal its logged evaluation.

    Returns (and with ``write`` saves as ``evaluation.{json,md}`` in ``out``, created when missing; default
    ``run_dir``, where the files of an earlier evaluation are replaced) per task: per-seed mean returns and their
    mean, IQM and 95% bootstrap interval."""
    from mtrl.evaluate import check_epsilon, iteration_keys, make_evaluator
    from mtrl.logger import few_seeds_note, returns_table, write_json
    from mtrl.scores import return_label
    from mtrl.statistics import summarize

    if epsilon is not None:
        check_epsilon(epsilon)
    trainer, meta, state = _restore(run_dir, step, eval_key=True)
    episodes = trainer.config.eval_episodes if episodes is None else int(episodes)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    epsilon = trainer.config.eval_epsilon if epsilon is None else float(epsilon)
    from mtrl.tasks import find_spec, spec_error

    names = list(meta["tasks"])
    chosen = [find_spec(t, names, trainer.config.protocol) or t for t in tasks] if tasks else names
    unknown = [t for t in chosen if t not in names]
    if unknown:
        raise ValueError(f"tasks {unknown} are not in this run; its tasks: {', '.join(names)}"
                         + "".join(spec_error(t, trainer.config.protocol) for t in unknown))
    evaluator = make_evaluator(trainer.agent, trainer.taskset, episodes, epsilon=epsilon)

    def evaluate(params, eval_key, iteration):  # as `Trainer.make_evaluate`, compiled with the same options
        return evaluator(params, iteration_keys(eval_key, iteration))

    args = (state.params, state.eval_key, state.iteration)
    returns = np.asarray(jax.jit(evaluate).lower(*args).compile(trainer.evaluation_options())(*args)).mean(-1)  # [S, T]
    at = int(state.iteration) * trainer.config.num_envs
    result = {"run_dir": os.path.abspath(run_dir), "step": at, "episodes": episodes, "epsilon": epsilon,
              "seeds": meta["seeds"], "tasks": {t: summarize(returns[:, names.index(t)]) for t in chosen}}
    if write:
        out = run_dir if out is None else out
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "evaluation.json"), result)
        of_run = "" if os.path.samefile(out, run_dir) else f" of the run in {os.path.abspath(run_dir)}"
        text = (f"{return_label(epsilon).capitalize()}{of_run} at {at:,} env steps per task, {episodes} episodes per "
                f"task and seed, seeds {meta['seeds']}.\n\n" + returns_table(result["tasks"]))
        if few := few_seeds_note(len(meta["seeds"])):
            text += f"\n{few}\n"
        with open(os.path.join(out, "evaluation.md"), "w") as f:
            f.write(text)
        result["markdown"] = text
    return result
