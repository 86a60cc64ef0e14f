"""Tasks, task sets and named suites.

A *task* is one gymnax environment with one set of `EnvParams` and a discount. A task is written as a spec
string ``ENV_ID[:field=value,...]``, e.g. ``CartPole-v1:length=1.0,gravity=15.0`` or ``Acrobot-v1:gamma=0.995``.
Fields are the env's gymnax `EnvParams` fields (values coerced to the field's type and checked against
`FIELD_RANGES`) plus the per-task learner settings in `LEARNER_FIELDS` (``gamma``, ``eps_start``, ``eps_end``,
``eps_decay_fraction``), which override the run's config for that task only, e.g.
``MountainCar-v0:gamma=0.98,eps_end=0.2``.

A `TaskSet` orders the tasks of a run and groups those of the same environment id, so that one `vmap` over
stacked `EnvParams` steps a whole group. Observations are zero-padded to a common shape and actions beyond a
task's own count are masked out.

MinAtar games (`MINATAR_GAMES`, suite ``minatar``) run under one of two **protocols**, chosen per run
(`DQNConfig.protocol`, passed to `make_taskset`):

- ``gymnax`` (default): gymnax's minimal action sets (3-6 actions per game, masked as above), no sticky actions,
  gymnax's episode caps (1000 steps; Freeway 2500);
- ``minatar-paper`` (Young & Tian 2019): the full 6-action set, sticky actions with probability 0.1 (gymnax's
  `StickyActionWrapper`: the previous executed action is repeated, also across an auto-reset, as in MinAtar's
  `Environment.act`), Freeway's 2500-step limit as the end of the game (terminal, as in MinAtar; gymnax
  truncates there) and otherwise no episode cap (`PAPER_EPISODE_CAP`, a bound only so that an evaluation loop
  must end). Only this protocol is comparable with the paper's returns.

MinAtar observations are 0/1 grids that gymnax builds as bool and casts to float32; mtrl keeps them as bool
(`BINARY_OBS_ENVS`), so the replay stores one byte per cell and the network casts.

Axes: ``T`` tasks, ``N`` envs per task, ``A`` = ``A_max`` actions.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces
from gymnax.wrappers.purerl import StickyActionWrapper

# Registered gymnax envs that mtrl does not run, with the reason a spec naming one is refused.
_UNSUPPORTED_ENVS = {
    **{env: "mtrl's DQN needs discrete actions; {env} has a continuous action space"
       for env in ("Pendulum-v1", "MountainCarContinuous-v0", "Reacher-misc", "Swimmer-misc", "PointRobot-misc")},
    "MNISTBandit-bsuite": "{env} is not supported by mtrl (it downloads data when constructed)",
}

# Spec keys that are not EnvParams fields: per-task overrides of the `DQNConfig` field of the same name. Each
# must lie in [0, 1].
LEARNER_FIELDS = ("gamma", "eps_start", "eps_end", "eps_decay_fraction")


def _cartpole_derived(params):
    return params.replace(
        total_mass=params.masspole + params.masscart,
        polemass_length=params.masspole * params.length,
    )


# EnvParams fields that gymnax stores but computes from other fields: recomputed after every override.
DERIVED_FIELDS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "CartPole-v1": (("total_mass", "polemass_length"), _cartpole_derived),
}

# Ranges of env fields outside which a task is meaningless (non-finite physics, a modulo by zero in a MinAtar game's
# timers, a probability above 1): gymnax does not check them, so a bad value would only show as a diverged run or a
# silently odd game. Each is (lowest allowed, strict?, highest allowed or None); fields not named are only typed.
_POSITIVE = (0, True, None)
_AT_LEAST_ONE = (1, False, None)
_NON_NEGATIVE = (0, False, None)
_PROBABILITY = (0, False, 1)
FIELD_RANGES: dict[str, dict[str, tuple]] = {
    "CartPole-v1": {f: _POSITIVE for f in ("masscart", "masspole", "length", "force_mag", "tau",
                                            "theta_threshold_radians", "x_threshold")},
    "Acrobot-v1": {**{f: _POSITIVE for f in ("dt", "link_length_1", "link_length_2", "link_mass_1", "link_mass_2",
                                             "link_moi", "max_vel_1", "max_vel_2")},
                   "torque_noise_max": _NON_NEGATIVE},
    "MountainCar-v0": {"max_speed": _POSITIVE, "force": _POSITIVE, "gravity": _NON_NEGATIVE},
    "Asterix-MinAtar": {f: _AT_LEAST_ONE for f in ("ramp_interval", "init_spawn_speed", "init_move_interval",
                                                   "shot_cool_down")},
    "Freeway-MinAtar": {"player_speed": _AT_LEAST_ONE},
    "Seaquest-MinAtar": {f: _AT_LEAST_ONE for f in ("ramp_interval", "init_spawn_speed", "init_move_interval",
                                                    "max_oxygen", "diver_spawn_speed", "shot_cool_down",
                                                    "enemy_shot_interval", "enemy_move_interval",
                                                    "diver_move_interval")},
    "SpaceInvaders-MinAtar": {f: _AT_LEAST_ONE for f in ("shot_cool_down", "enemy_move_interval",
                                                         "enemy_shot_interval")},
    "MemoryChain-bsuite": {"memory_length": _AT_LEAST_ONE},
    "UmbrellaChain-bsuite": {"chain_length": _AT_LEAST_ONE},
    "FourRooms-misc": {"fail_prob": _PROBABILITY},
    "BernoulliBandit-misc": {"reward_prob": _PROBABILITY},
}


def _check_range(env_id: str, field: str, value, spec: str) -> None:
    """Raise `ValueError` when ``value`` lies outside the field's `FIELD_RANGES` entry (every env: an episode cap of
    at least one step; every `LEARNER_FIELDS` setting: [0, 1])."""
    low, strict, high = _AT_LEAST_ONE if field == "max_steps_in_episode" else _PROBABILITY if field in LEARNER_FIELDS \
        else FIELD_RANGES.get(env_id, {}).get(field, (None, False, None))
    if isinstance(value, bool) or low is None:
        return
    if value < low or (strict and value == low) or (high is not None and value > high):
        allowed = (f"in [{low}, {high}]" if high is not None else f"> {low}" if strict else f">= {low}")
        raise ValueError(f"task field {field!r} of {env_id} must be {allowed}, got {value} in {spec!r}")


MINATAR_GAMES = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar",
                 "Seaquest-MinAtar")
# Envs whose observations are exactly 0/1 (gymnax builds them as bool grids, then casts to float32): kept as bool.
BINARY_OBS_ENVS = frozenset(MINATAR_GAMES)
# Envs whose dynamics are integer arithmetic on a grid and comparisons of random bits: how their steps are batched
# cannot change a result (float dynamics, CartPole's, round differently under another batching).
INTEGER_DYNAMICS_ENVS = frozenset(MINATAR_GAMES)
PROTOCOLS = ("gymnax", "minatar-paper")
PAPER_STICKY_ACTION_PROB = 0.1
PAPER_FREEWAY_STEPS = 2500
# "No cap" under the paper's protocol, made finite so that a greedy evaluation episode must end (~10x the
# longest episodes of the paper's agents); a training episode reaching it is truncated (bootstrapped).
PAPER_EPISODE_CAP = 100_000

SUITES: dict[str, tuple[str, ...]] = {
    "minatar": MINATAR_GAMES,
    "cartpole-lengths": tuple(f"CartPole-v1:length={x}" for x in (0.25, 0.5, 1.0, 1.5)),
    "classic": ("CartPole-v1", "Acrobot-v1", "MountainCar-v0"),
    "cartpole-gravity": tuple(f"CartPole-v1:gravity={g}" for g in (4.9, 9.8, 14.7, 19.6)),
}


def supported_envs() -> list[str]:
    """Env ids a task spec may name: gymnax's registered envs with discrete actions."""
    return [e for e in gymnax.registered_envs if e not in _UNSUPPORTED_ENVS]


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """One environment with fixed parameters.

    Attributes:
        spec: the spec as written (the run's name for the task; fields in the order given).
        env_id: gymnax env id.
        env: the gymnax environment (stateless; shared by tasks of the same env id).
        params: the env's `EnvParams` with overrides applied and derived fields recomputed.
        gamma: discount for this task's TD targets, or None to use the run's default.
        eps_start, eps_end, eps_decay_fraction: this task's ε schedule (first and final ε; fraction of the run's
            steps over which it decays), or None to use the run's default.
        obs_shape, obs_dtype: one observation as mtrl steps it (the env's, except bool for `BINARY_OBS_ENVS`).
        num_actions: size of the env's discrete action space.
        protocol: the protocol the env was built under (`PROTOCOLS`; only MinAtar games differ between them).
        cap_is_terminal: reaching `max_steps_in_episode` ends the game (terminated) rather than truncating it.
    """

    spec: str
    env_id: str
    env: Any
    params: Any
    gamma: float | None
    obs_shape: tuple[int, ...]
    obs_dtype: np.dtype
    num_actions: int
    eps_start: float | None = None
    eps_end: float | None = None
    eps_decay_fraction: float | None = None
    protocol: str = "gymnax"
    cap_is_terminal: bool = False

    @property
    def name(self) -> str:
        return self.spec


def _coerce(env_id: str, field: str, raw: str, current: Any) -> Any:
    """Parse `raw` into the type of the current value of EnvParams `field`."""
    kind = None
    if isinstance(current, bool) or (hasattr(current, "dtype") and np.dtype(current.dtype) == np.bool_):
        kind = bool
    elif isinstance(current, (int, np.integer)) or (
        hasattr(current, "dtype") and np.issubdtype(current.dtype, np.integer) and np.ndim(current) == 0
    ):
        kind = int
    elif isinstance(current, (float, np.floating)) or (
        hasattr(current, "dtype") and np.issubdtype(current.dtype, np.floating) and np.ndim(current) == 0
    ):
        kind = float
    if kind is None:
        raise ValueError(
            f"task field {field!r} of {env_id} is not a scalar (its default is {current!r}); "
            "only int, float and bool fields can be set in a task spec"
        )
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        if kind is int:
            return int(raw)
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError
        return value
    except ValueError:
        allowed = {bool: "true or false", int: "an integer", float: "a finite number"}[kind]
        raise ValueError(
            f"task field {field!r} of {env_id} must be {allowed}, got {raw!r}"
        ) from None


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


@functools.cache
def _make_env(env_id: str, protocol: str = "gymnax"):
    """The gymnax env and default params of ``env_id`` under ``protocol`` (cached: envs are stateless)."""
    if protocol == "minatar-paper" and env_id in MINATAR_GAMES:
        env, params = gymnax.make(env_id, use_minimal_action_set=False)
        cap = PAPER_FREEWAY_STEPS if env_id == "Freeway-MinAtar" else PAPER_EPISODE_CAP
        return StickyActionWrapper(env, PAPER_STICKY_ACTION_PROB), params.replace(max_steps_in_episode=cap)
    return gymnax.make(env_id)


def _obs_spec(env, params) -> jax.ShapeDtypeStruct:
    obs, _ = jax.eval_shape(env.reset, jax.random.key(0), params)
    return obs


def _closest_env(env_id: str, allowed: Sequence[str]) -> str | None:
    """The env id ``env_id`` most likely meant: the one it begins, without the version or suite (``Acrobot`` ->
    ``Acrobot-v1``, ``breakout`` -> ``Breakout-MinAtar``), else the closest spelling (``CartPol-v1``), else None."""
    lowered = env_id.lower()
    starts = [a for a in allowed if a.lower().split("-")[0] == lowered.split("-")[0]]
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(env_id, allowed, n=1, cutoff=0.75)
    return close[0] if close else None


def parse_task(spec: str, protocol: str = "gymnax") -> Task:
    """Parse a task spec string ``ENV_ID[:field=value,...]`` into a `Task` built under ``protocol``.

    Raises:
        ValueError: unknown env id, unknown field, malformed ``field=value`` or a value of the wrong kind;
            the message names the offending part and lists what is allowed.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"task spec must be a non-empty string like 'CartPole-v1:length=1.0', got {spec!r}")
    # A spec is the task's name in run files, tables and plots: one spelling without spaces or empty fields.
    form = "write ENV_ID or ENV_ID:field=value,field=value (no spaces), e.g. 'CartPole-v1:length=1.0,gravity=3.0'"
    if any(c.isspace() for c in spec):
        raise ValueError(f"task spec {spec!r} contains whitespace; {form}")
    env_id, colon, field_text = spec.partition(":")
    if colon and not all(field_text.split(",")):
        raise ValueError(f"task spec {spec!r} has an empty field (nothing after ':' or between commas); {form}")
    check_protocol(protocol)
    allowed_envs = supported_envs()
    if env_id in _UNSUPPORTED_ENVS:
        raise ValueError(_UNSUPPORTED_ENVS[env_id].format(env=env_id) + f"; allowed: {', '.join(allowed_envs)}")
    if env_id not in allowed_envs:
        guess = _closest_env(env_id, allowed_envs)
        raise ValueError(f"unknown env id {env_id!r} in task spec {spec!r}"
                         + (f" (did you mean {guess}?)" if guess else "") + f"; allowed: {', '.join(allowed_envs)}")
    env, params = _make_env(env_id, protocol)
    if not isinstance(env.action_space(params), spaces.Discrete):
        raise ValueError(f"{env_id} has a non-discrete action space; DQN needs discrete actions")

    derived, recompute = DERIVED_FIELDS.get(env_id, ((), None))
    settable = [f.name for f in dataclasses.fields(params) if f.name not in derived]
    overrides: dict[str, Any] = {}
    learner: dict[str, float] = {}
    for item in field_text.split(",") if colon else ():
        name, eq, raw = item.partition("=")
        if not eq or not name or not raw:
            raise ValueError(f"malformed field {item!r} in task spec {spec!r}; expected field=value")
        if name in overrides or name in learner:
            raise ValueError(f"task field {name!r} given twice in task spec {spec!r}")
        if name in LEARNER_FIELDS:
            learner[name] = _coerce(env_id, name, raw, 0.0)
            _check_range(env_id, name, learner[name], spec)
            continue
        if name in derived:
            raise ValueError(
                f"task field {name!r} of {env_id} is derived from other fields and cannot be set; "
                f"allowed fields: {', '.join(settable + list(LEARNER_FIELDS))}"
            )
        if name not in settable:
            raise ValueError(
                f"unknown field {name!r} for {env_id} in task spec {spec!r}; "
                f"allowed fields: {', '.join(settable + list(LEARNER_FIELDS))}"
            )
        overrides[name] = _coerce(env_id, name, raw, getattr(params, name))
        _check_range(env_id, name, overrides[name], spec)
    params = params.replace(**overrides)
    if recompute is not None:
        params = recompute(params)
    obs = _obs_spec(env, params)
    return Task(
        spec=spec,
        env_id=env_id,
        env=env,
        params=params,
        obs_shape=tuple(obs.shape),
        obs_dtype=np.dtype(bool) if env_id in BINARY_OBS_ENVS else np.dtype(obs.dtype),
        num_actions=int(env.action_space(params).n),
        **{name: learner.get(name) for name in LEARNER_FIELDS},
        protocol=protocol,
        cap_is_terminal=protocol == "minatar-paper" and env_id == "Freeway-MinAtar",
    )


def changed_env_fields(task: Task) -> list[str]:
    """The `EnvParams` fields whose value in ``task`` differs from its env's defaults (derived fields aside)."""
    _, defaults = _make_env(task.env_id, task.protocol)
    derived = DERIVED_FIELDS.get(task.env_id, ((), None))[0]
    return [f.name for f in dataclasses.fields(defaults) if f.name not in derived
            and not np.array_equal(np.asarray(getattr(task.params, f.name)), np.asarray(getattr(defaults, f.name)))]


@dataclasses.dataclass(frozen=True, eq=False)
class EnvGroup:
    """Tasks of one env id, stepped together with `vmap` over their stacked `EnvParams`.

    Attributes:
        env: the shared gymnax environment.
        task_ids: positions of this group's tasks in the `TaskSet` (static).
        params: `EnvParams` with a leading axis of size ``len(task_ids)``.
        cap_is_terminal: the group's episode cap ends the game (`Task.cap_is_terminal`).
        integer_dynamics: the env is in `INTEGER_DYNAMICS_ENVS`.
    """

    env: Any
    task_ids: tuple[int, ...]
    params: Any
    cap_is_terminal: bool = False
    integer_dynamics: bool = False

    @property
    def envs_only(self) -> bool:
        """Whether a step maps over the envs only (one task whose env is in `INTEGER_DYNAMICS_ENVS`), not over tasks
        and envs: the same bits, less to trace."""
        return len(self.task_ids) == 1 and self.integer_dynamics


@dataclasses.dataclass(frozen=True, eq=False)
class TaskSet:
    """An ordered set of tasks trained together.

    Attributes:
        tasks: the tasks, in order (index = task id).
        groups: tasks grouped by env id, in order of first appearance.
        obs_shape: common observation shape (each axis the max over tasks); smaller obs are zero-padded. When
            the tasks' observations have different numbers of axes (Catch-bsuite's ``(10, 5)`` grid with
            CartPole's ``(4,)``), every task's observation is flattened first (`flatten_obs`) and the common shape
            is the longest flat length.
        obs_dtype: common observation dtype (the tasks' dtypes promoted).
        num_actions: ``A_max``, the largest action count.
        action_mask: ``[T, A]`` bool, True where the action exists for the task.
    """

    tasks: tuple[Task, ...]
    groups: tuple[EnvGroup, ...]
    obs_shape: tuple[int, ...]
    obs_dtype: np.dtype
    num_actions: int
    action_mask: np.ndarray
    flatten_obs: bool = False

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def names(self) -> list[str]:
        return [t.spec for t in self.tasks]

    def learner_values(self, name: str, default: float, dtype=np.float32) -> np.ndarray:
        """``[T]`` values of learner setting ``name`` (one of `LEARNER_FIELDS`): each task's spec value, else
        ``default`` (the run's config)."""
        values = [getattr(t, name) for t in self.tasks]
        return np.array([default if v is None else v for v in values], dtype)

    def gammas(self, default: float) -> np.ndarray:
        """``[T]`` float32 discounts: each task's spec `gamma`, else ``default``."""
        return self.learner_values("gamma", default)

    @property
    def max_episode_steps(self) -> int:
        """Longest episode any task allows (its `max_steps_in_episode`)."""
        return max(int(t.params.max_steps_in_episode) for t in self.tasks)

    def pad_obs(self, obs: jax.Array, task_obs_shape: tuple[int, ...]) -> jax.Array:
        """One task's observations ``[..., *task_obs_shape]`` as ``[..., *self.obs_shape]``: flattened when the
        set flattens, then zero-padded."""
        task_shape = tuple(task_obs_shape)
        lead = obs.shape[: obs.ndim - len(task_shape)]
        if self.flatten_obs:
            task_shape = (int(np.prod(task_shape)),)
            obs = obs.reshape(lead + task_shape)
        pad = [(0, 0)] * len(lead) + [
            (0, m - s) for s, m in zip(task_shape, self.obs_shape)
        ]
        return jnp.pad(obs.astype(self.obs_dtype), pad)

    # --- environment stepping; called inside jit ------------------------------------------------------------

    def reset(self, key: jax.Array, num_envs: int) -> tuple[jax.Array, tuple[Any, ...]]:
        """Reset ``num_envs`` envs of every task.

        Returns:
            obs ``[T, N, *obs_shape]`` and a tuple of env states, one per group, each with leading axes
            ``[T_g, N]``.
        """
        keys = jax.random.split(key, (self.num_tasks, num_envs))
        obs_parts, states = [], []
        for group in self.groups:
            ids = np.array(group.task_ids)
            obs, state = _over_tasks_and_envs(group.env.reset, (True, False), group.envs_only, keys[ids],
                                              group.params)
            obs_parts.append(self.pad_obs(obs, self.tasks[group.task_ids[0]].obs_shape))
            states.append(state)
        return self._merge(obs_parts), tuple(states)

    def step(
        self, key: jax.Array, states: tuple[Any, ...], actions: jax.Array
    ) -> tuple[jax.Array, tuple[Any, ...], jax.Array, jax.Array, jax.Array, jax.Array]:
        """Step every env of every task once (gymnax auto-resets finished episodes).

        Args:
            key: PRNG key.
            states: per-group env states, as returned by `reset`.
            actions: ``[T, N]`` int32.

        Returns:
            ``obs [T, N, *obs]`` (after auto-reset), ``states``, ``reward [T, N]`` float32,
            ``terminated [T, N]``, ``truncated [T, N]`` bool, and ``final_obs [T, N, *obs]``, the true
            next observation (differs from ``obs`` only where an episode ended).
        """
        num_envs = actions.shape[1]
        keys = jax.random.split(key, (self.num_tasks, num_envs))
        outs = []
        new_states = []
        for group, state in zip(self.groups, states):
            ids = np.array(group.task_ids)
            obs, state, reward, terminated, truncated, info = _over_tasks_and_envs(
                group.env.step, (True, True, True, False), group.envs_only, keys[ids], state, actions[ids],
                group.params)
            if group.cap_is_terminal:
                terminated, truncated = terminated | truncated, jnp.zeros_like(truncated)
            new_states.append(state)
            task_obs_shape = self.tasks[group.task_ids[0]].obs_shape
            outs.append(
                (
                    self.pad_obs(obs, task_obs_shape),
                    reward.astype(jnp.float32),
                    terminated.astype(bool),
                    truncated.astype(bool),
                    self.pad_obs(info["final_observation"], task_obs_shape),
                )
            )
        obs, reward, terminated, truncated, final_obs = (self._merge(list(p)) for p in zip(*outs))
        return obs, tuple(new_states), reward, terminated, truncated, final_obs

    def _merge(self, parts: Sequence[jax.Array]) -> jax.Array:
        """Concatenate per-group arrays ``[T_g, ...]`` and restore task order ``[T, ...]``."""
        if len(parts) == 1:
            return parts[0]
        order = np.concatenate([np.array(g.task_ids) for g in self.groups])
        return jnp.concatenate(parts, axis=0)[np.argsort(order)]


def _over_tasks_and_envs(fn: Callable, per_env: tuple[bool, ...], envs_only: bool, *args):
    """``fn`` mapped over the leading ``[T_g, N]`` axes of ``args`` (the group's tasks, then envs); an argument with
    ``per_env`` False has only the task axis (the group's `EnvParams`). With ``envs_only`` (`EnvGroup.envs_only`:
    one task, integer dynamics, e.g. every MinAtar game in a multi-game set) it maps over the envs of the one task
    and adds the task axis back: one `vmap` level fewer to trace a gymnax step through (about a quarter of the
    five-game program's tracing), the same bits. Float dynamics keep both levels even for one task: XLA rounds them
    differently when their parameters are not batched (CartPole drifts within a few steps)."""
    env_axes = tuple(0 if e else None for e in per_env)
    if envs_only:
        out = jax.vmap(fn, in_axes=env_axes)(*jax.tree.map(lambda x: x[0], args))
        return jax.tree.map(lambda x: x[None], out)
    return jax.vmap(jax.vmap(fn, in_axes=env_axes), in_axes=0)(*args)


def _task_identity(task: Task) -> tuple:
    """What makes two tasks the same task whatever their specs: env, every `EnvParams` value (compared as float64)
    and the per-task learner settings."""
    values = tuple((np.shape(x), np.asarray(x, np.float64).tobytes()) for x in jax.tree.leaves(task.params))
    return task.env_id, values, task.gamma, task.eps_start, task.eps_end, task.eps_decay_fraction


def find_spec(spec: str, specs: Sequence[str], protocol: str = "gymnax") -> str | None:
    """The member of ``specs`` that names the same task as ``spec`` (``length=0.50`` finds ``length=0.5``, an
    `EnvParams` field set to its default finds the spec without it; learner fields compare as written: ``gamma``
    set to the config's default is still another task spec), or None. Matching as written comes first; otherwise
    the specs are parsed under ``protocol`` and compared by `_task_identity`. A ``spec`` that does not parse matches
    nothing."""
    if spec in specs:
        return spec
    wanted = _spec_identity(spec, protocol)
    if wanted is None:
        return None
    return next((s for s in specs if _spec_identity(s, protocol) == wanted), None)


def spec_error(spec: str, protocol: str = "gymnax") -> str:
    """``"; 'SPEC' does not parse: why"`` when ``spec`` does not parse, else ``""`` (for messages about specs not
    found)."""
    try:
        parse_task(spec, protocol)
    except ValueError as e:
        return f"; {spec!r} does not parse: {e}"
    return ""


@functools.lru_cache(maxsize=1024)
def _spec_identity(spec: str, protocol: str) -> tuple | None:
    """`_task_identity` of a spec (None when it does not parse), cached: `Policy` looks task names up per call."""
    try:
        return _task_identity(parse_task(spec, protocol))
    except ValueError:
        return None


def make_taskset(tasks: Sequence[str | Task], protocol: str = "gymnax") -> TaskSet:
    """Build a `TaskSet` from spec strings (or tasks parsed under the same ``protocol``), keeping their order.
    Observations with different numbers of axes are flattened per task (`TaskSet.flatten_obs`); the same task
    list and protocol always build the same set, so resuming and loading a run need nothing else recorded.

    Raises:
        ValueError: no tasks, repeated tasks, an unknown protocol, ``minatar-paper`` without a MinAtar game, or
            a parsed task built under another protocol.
    """
    if isinstance(tasks, str):
        raise TypeError("tasks must be a sequence of spec strings, not one string; wrap it in a list")
    check_protocol(protocol)
    parsed = tuple(t if isinstance(t, Task) else parse_task(t, protocol) for t in tasks)
    if not parsed:
        raise ValueError("tasks must name at least one task")
    other = [t.spec for t in parsed if t.protocol != protocol]
    if other:
        raise ValueError(f"tasks {other} were parsed under another protocol than {protocol!r}")
    if protocol == "minatar-paper" and not any(t.env_id in MINATAR_GAMES for t in parsed):
        raise ValueError("protocol 'minatar-paper' changes MinAtar games only, and none of the tasks is one "
                         f"({', '.join(MINATAR_GAMES)}); use protocol 'gymnax'")
    names = [t.spec for t in parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"tasks must be distinct; repeated: {', '.join(dupes)}")
    seen: dict[tuple, str] = {}
    for task in parsed:  # specs that differ only in how they are written (a default value, 0.5 vs .5)
        same = seen.setdefault(_task_identity(task), task.spec)
        if same != task.spec:
            raise ValueError(f"tasks must be distinct; {same!r} and {task.spec!r} are the same task (same env, "
                             "field values and learner settings)")
    flatten = len({len(t.obs_shape) for t in parsed}) > 1
    shapes = [(int(np.prod(t.obs_shape)),) if flatten else t.obs_shape for t in parsed]
    obs_shape = tuple(int(max(s)) for s in zip(*shapes))
    obs_dtype = np.dtype(jnp.result_type(*(t.obs_dtype for t in parsed)))
    num_actions = max(t.num_actions for t in parsed)
    mask = np.arange(num_actions)[None, :] < np.array([t.num_actions for t in parsed])[:, None]

    by_env: dict[str, list[int]] = {}
    for i, t in enumerate(parsed):
        by_env.setdefault(t.env_id, []).append(i)
    groups = tuple(
        EnvGroup(
            env=parsed[ids[0]].env,
            task_ids=tuple(ids),
            params=jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *(parsed[i].params for i in ids)),
            cap_is_terminal=parsed[ids[0]].cap_is_terminal,
            integer_dynamics=parsed[ids[0]].env_id in INTEGER_DYNAMICS_ENVS,
        )
        for ids in by_env.values()
    )
    return TaskSet(
        tasks=parsed,
        groups=groups,
        obs_shape=obs_shape,
        obs_dtype=obs_dtype,
        num_actions=num_actions,
        action_mask=mask,
        flatten_obs=flatten,
    )


def suite(name: str) -> tuple[str, ...]:
    """Task specs of a named suite."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; allowed: {', '.join(SUITES)}")
    return SUITES[name]
