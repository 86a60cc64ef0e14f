"""A minimal single-task DQN, written from scratch as a same-machine measuring stick for mtrl's speed.

It follows the structure of PureJaxRL's DQN at its default configuration (gymnax CartPole-v1, 10 envs, a flat
10k ring buffer, batch 128, one update per iteration, a Dense 120-84-A network, plain DQN target
r + γ·(1−terminated)·maxₐ Q_target(s', a), squared TD error, Adam, hard target copy every 50 updates via
`lax.cond`, ε-greedy with a linear schedule), in one jitted `lax.scan`. It has no task axis, no action
masking, no metrics beyond what the loop needs and no gradient clipping: the least work a DQN iteration at
that configuration can do in JAX. Running it in the same process as mtrl gives a ratio that does not depend
on how fast or how busy the machine is.

Axes: ``N`` envs, ``C`` buffer capacity, ``B`` batch.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import optax
from flax import struct


class QNet(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Dense(120)(x))
        x = nn.relu(nn.Dense(84)(x))
        return nn.Dense(self.num_actions)(x)


@struct.dataclass
class State:
    params: Any
    target: Any
    opt_state: Any
    buf_obs: jax.Array  # [C, obs]
    buf_action: jax.Array  # [C]
    buf_reward: jax.Array  # [C]
    buf_next_obs: jax.Array  # [C, obs]
    buf_done: jax.Array  # [C]
    position: jax.Array  # ()
    size: jax.Array  # ()
    env_state: Any  # [N, ...]
    obs: jax.Array  # [N, obs]
    key: jax.Array
    iteration: jax.Array  # ()
    updates: jax.Array  # ()


def make(num_envs: int = 10, capacity: int = 10_000, batch: int = 128, lr: float = 2.5e-4, gamma: float = 0.99,
         target_period: int = 50, learning_starts: int = 10_000, eps_decay_steps: float = 250_000.0,
         prng_impl: str | None = None):
    """``(init(seed) -> State, chunk(state, iterations) -> state)``; ``chunk`` is jitted with the state donated.

    ``prng_impl`` None is JAX's default key (threefry), as PureJaxRL uses.
    """
    env, env_params = gymnax.make("CartPole-v1")
    num_actions = env.action_space(env_params).n
    net = QNet(num_actions)
    opt = optax.adam(lr)
    obs_dim = env.observation_space(env_params).shape[0]

    def init(seed: int) -> State:
        key = jax.random.key(seed, impl=prng_impl)
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, num_envs), env_params)
        params = net.init(k_net, jnp.zeros((1, obs_dim)))
        return State(params=params, target=jax.tree.map(jnp.copy, params), opt_state=opt.init(params),
                     buf_obs=jnp.zeros((capacity, obs_dim)), buf_action=jnp.zeros((capacity,), jnp.int32),
                     buf_reward=jnp.zeros((capacity,)), buf_next_obs=jnp.zeros((capacity, obs_dim)),
                     buf_done=jnp.zeros((capacity,)), position=jnp.int32(0), size=jnp.int32(0),
                     env_state=env_state, obs=obs, key=key, iteration=jnp.int32(0), updates=jnp.int32(0))

    def learn(s: State, key: jax.Array):
        idx = jax.random.randint(key, (batch,), 0, s.size)
        obs, action, reward = s.buf_obs[idx], s.buf_action[idx], s.buf_reward[idx]
        next_obs, done = s.buf_next_obs[idx], s.buf_done[idx]
        target = reward + gamma * (1.0 - done) * net.apply(s.target, next_obs).max(-1)

        def loss(params):
            q = jnp.take_along_axis(net.apply(params, obs), action[:, None], axis=-1)[:, 0]
            return jnp.mean((q - target) ** 2)

        grads = jax.grad(loss)(s.params)
        updates, opt_state = opt.update(grads, s.opt_state, s.params)
        return optax.apply_updates(s.params, updates), opt_state

    def iteration(s: State, _):
        key, k_act, k_eps, k_step, k_learn = jax.random.split(s.key, 5)
        eps = jnp.clip(1.0 - s.iteration * num_envs / eps_decay_steps, 0.05, 1.0)
        greedy = jnp.argmax(net.apply(s.params, s.obs), -1)
        random = jax.random.randint(k_act, (num_envs,), 0, num_actions)
        action = jnp.where(jax.random.uniform(k_eps, (num_envs,)) < eps, random, greedy)
        obs, env_state, reward, done, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_step, num_envs), s.env_state, action, env_params)
        write = lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), s.position, 0)  # noqa: E731
        s = s.replace(buf_obs=write(s.buf_obs, s.obs), buf_action=write(s.buf_action, action),
                      buf_reward=write(s.buf_reward, reward), buf_next_obs=write(s.buf_next_obs, info["final_observation"]),
                      buf_done=write(s.buf_done, done), position=(s.position + num_envs) % capacity,
                      size=jnp.minimum(s.size + num_envs, capacity), env_state=env_state, obs=obs, key=key)
        learns = (s.iteration + 1) * num_envs >= learning_starts
        params, opt_state = jax.lax.cond(learns, learn, lambda s, _: (s.params, s.opt_state), s, k_learn)
        updates = s.updates + learns.astype(jnp.int32)
        target = jax.lax.cond(learns & (updates % target_period == 0), lambda: params, lambda: s.target)
        return s.replace(params=params, opt_state=opt_state, target=target, iteration=s.iteration + 1,
                         updates=updates), None

    def chunk(s: State, iterations: int) -> State:
        return jax.lax.scan(iteration, s, None, length=iterations)[0]

    return init, jax.jit(chunk, static_argnums=1, donate_argnums=0)
