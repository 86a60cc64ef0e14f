"""Probe environments with known Q-values, registered with gymnax for the tests.

- ``Probe-OneStep``: one step, reward 1, terminated.            Q(s0, a) = 1.
- ``Probe-TwoStep``: obs 0 then 1; reward 0 then 1; terminated.  Q(s0, a) = γ, Q(s1, a) = 1.
- ``Probe-Truncated``: reward 1 each step, never terminated, truncated after `max_steps_in_episode` steps.
  Bootstrapping through truncation gives Q = 1 / (1 − γ).
- ``Probe-Clock``: observation = time step, reward 1, never terminated, truncated after `max_steps_in_episode`
  steps: a truncated episode's true final observation (the limit) differs from the next episode's first (0).
- ``Probe-ActionReward``: one step, reward = 1 if action == 1 else 0, terminated; `num_actions` configurable
  by the spec field ``actions`` (used for masking tests).
"""

from __future__ import annotations

import gymnax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class ProbeState(environment.EnvState):
    time: int


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 100
    actions: int = 2
    reward_scale: float = 1.0


class _Probe(environment.Environment):
    episode_length = 1  # terminates after this many steps (0 = never)
    probe_name = "Probe"

    @property
    def default_params(self):
        return ProbeParams()

    def reset_env(self, key, params):
        state = ProbeState(time=0)
        return self.get_obs(state), state

    def reward(self, state, action):
        return jnp.float32(1.0)

    def step_env(self, key, state, action, params):
        reward = self.reward(state, action) * params.reward_scale
        state = ProbeState(time=state.time + 1)
        terminated = (state.time >= self.episode_length) if self.episode_length else jnp.array(False)
        return self.get_obs(state), state, reward, terminated, {}

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.float32)

    @property
    def name(self):
        return self.probe_name

    @property
    def num_actions(self):
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2 if params is None else params.actions)

    def observation_space(self, params):
        return spaces.Box(0, 100, (1,), jnp.float32)


class OneStep(_Probe):
    probe_name = "Probe-OneStep"


class TwoStep(_Probe):
    episode_length = 2
    probe_name = "Probe-TwoStep"

    def reward(self, state, action):
        return jnp.where(state.time == 1, 1.0, 0.0).astype(jnp.float32)


class Truncated(_Probe):
    episode_length = 0
    probe_name = "Probe-Truncated"

    def get_obs(self, state, params=None, key=None):
        return jnp.zeros((1,), jnp.float32)


class Clock(_Probe):
    episode_length = 0
    probe_name = "Probe-Clock"


class ActionReward(_Probe):
    probe_name = "Probe-ActionReward"

    def reward(self, state, action):
        return jnp.where(action == 1, 1.0, 0.0).astype(jnp.float32)


PROBES = {"Probe-OneStep": OneStep, "Probe-TwoStep": TwoStep, "Probe-Truncated": Truncated,
          "Probe-Clock": Clock, "Probe-ActionReward": ActionReward}


def register() -> None:
    for env_id, cls in PROBES.items():
        if env_id not in gymnax.registered_envs:
            gymnax.register(env_id, lambda cls=cls, **kw: cls())
