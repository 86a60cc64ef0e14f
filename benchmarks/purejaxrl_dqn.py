"""PureJaxRL's DQN program at its default configuration, rebuilt from the same libraries, as a timing peer.

PureJaxRL (github.com/luchris429/purejaxrl, `purejaxrl/dqn.py`) is not a package, so it cannot be installed and
run here. This module builds the same program from the same pieces, written for mtrl's benchmarks (not
PureJaxRL's code): gymnax CartPole-v1 under gymnax's `FlattenObservationWrapper` and `LogWrapper`; flashbax's
flat buffer (stores ``(obs, action, reward, done = terminated | truncated)`` steps, samples ``first``/``second`` pairs); a flax
`TrainState` with plain Adam and `apply_gradients`; `value_and_grad` of the squared TD error against
``r + γ · (1 − done) · maxₐ Q_target(s', a)``; learning gated by ``can_sample & timesteps > learning_starts &
timesteps % training_interval == 0`` under `lax.cond`; the target network updated with
`optax.incremental_update` under a second `lax.cond` every `target_update_interval` env steps; four metrics
(timesteps, updates, loss, mean logged return) stacked per iteration by the scan; JAX's default threefry keys.
Default configuration: 10 envs, buffer 10k, batch 128, ε 1 → 0.05 over 250k steps, target every 500 steps,
lr 2.5e-4, learning after 10k steps, one update per iteration (interval 10 = 10 envs), γ 0.99; the run length
(500k env steps) is the caller's: ``chunk(runner, iterations)``.

`make_evaluator` builds the greedy evaluation that `benchmarks.time_to_solve` applies to this program's params
(PureJaxRL's dqn.py only logs training returns): a fixed number of CartPole-v1 episodes, each played to its end
with argmax actions. It is written here, not borrowed from mtrl, so the peer shares no code with mtrl's trainer.

Unlike `benchmarks.minimal_dqn` (the least work such a DQN iteration can do), this carries the bookkeeping a
PureJaxRL run really does, so ``mtrl / this`` is the same-machine answer to "is mtrl slower than PureJaxRL".
Needs flashbax (the `bench` extra).

Axes: ``N`` envs, ``B`` batch, ``E`` evaluation episodes.
"""

from __future__ import annotations

from typing import Any

import flashbax
import gymnax
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training.train_state import TrainState
from gymnax.wrappers.purerl import FlattenObservationWrapper, LogWrapper

from benchmarks.minimal_dqn import QNet  # Dense 120-84-A with ReLU, PureJaxRL's QNetwork

DEFAULTS = {"num_envs": 10, "buffer_size": 10_000, "batch_size": 128, "eps_start": 1.0, "eps_end": 0.05, "eps_anneal_steps": 250_000, "target_update_interval": 500, "lr": 2.5e-4,
            "learning_starts": 10_000, "training_interval": 10, "gamma": 0.99, "tau": 1.0}


@struct.dataclass
class Step:
    """One env step as the buffer stores it; ``second.obs`` of a sampled pair is the next observation."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array


class DQNTrainState(TrainState):
    target_params: Any = None
    timesteps: jax.Array = 0
    n_updates: jax.Array = 0


@struct.dataclass
class Runner:
    train: DQNTrainState
    buffer: Any
    env_state: Any  # [N, ...]
    obs: jax.Array  # [N, obs]
    key: jax.Array


def make(**overrides):
    """``(init(seed) -> Runner, chunk(runner, iterations) -> (runner, metrics [K]))`` with PureJaxRL's
    defaults (``overrides`` change any of `DEFAULTS`); ``chunk`` is jitted with the runner donated."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **overrides}
    num_envs = cfg["num_envs"]
    base, env_params = gymnax.make("CartPole-v1")
    env = LogWrapper(FlattenObservationWrapper(base))
    num_actions = base.action_space(env_params).n
    network = QNet(num_actions)
    buffer = flashbax.make_flat_buffer(max_length=cfg["buffer_size"], min_length=cfg["batch_size"],
                                       sample_batch_size=cfg["batch_size"], add_sequences=False,
                                       add_batch_size=num_envs)

    def init(seed: int) -> Runner:
        key = jax.random.PRNGKey(seed)
        key, k_env, k_net, k_dummy = jax.random.split(key, 4)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, num_envs), env_params)
        _, dummy_state = env.reset(k_dummy, env_params)
        dummy_action = base.action_space(env_params).sample(k_dummy)
        dummy_obs, _, dummy_reward, dummy_done, _, _ = env.step(k_dummy, dummy_state, dummy_action, env_params)
        buffer_state = buffer.init(Step(obs=dummy_obs, action=dummy_action, reward=dummy_reward, done=dummy_done))
        params = network.init(k_net, jnp.zeros(env.observation_space(env_params).shape))
        train = DQNTrainState.create(apply_fn=network.apply, params=params, tx=optax.adam(cfg["lr"]),
                                     target_params=jax.tree.map(jnp.copy, params), timesteps=0, n_updates=0)
        return Runner(train=train, buffer=buffer_state, env_state=env_state, obs=obs, key=key)

    def explore(key, q, timesteps):
        k_action, k_explore = jax.random.split(key)
        slope = (cfg["eps_end"] - cfg["eps_start"]) / cfg["eps_anneal_steps"]
        eps = jnp.clip(slope * timesteps + cfg["eps_start"], cfg["eps_end"])
        greedy = jnp.argmax(q, axis=-1)
        random = jax.random.randint(k_action, greedy.shape, 0, q.shape[-1])
        return jnp.where(jax.random.uniform(k_explore, greedy.shape) < eps, random, greedy)

    def learn(train: DQNTrainState, buffer_state, key):
        pair = buffer.sample(buffer_state, key).experience
        q_next = network.apply(train.target_params, pair.second.obs).max(-1)
        target = pair.first.reward + (1 - pair.first.done) * cfg["gamma"] * q_next

        def loss_fn(params):
            q = network.apply(params, pair.first.obs)
            chosen = jnp.take_along_axis(q, pair.first.action[:, None], axis=-1)[:, 0]
            return jnp.mean((chosen - target) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(train.params)
        train = train.apply_gradients(grads=grads)
        return train.replace(n_updates=train.n_updates + 1), loss

    def iteration(runner: Runner, _):
        train = runner.train
        key, k_act, k_step = jax.random.split(runner.key, 3)
        action = explore(k_act, network.apply(train.params, runner.obs), train.timesteps)
        obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_step, num_envs), runner.env_state, action, env_params)
        done = terminated | truncated  # gymnax < 1.0 returned this one flag, which PureJaxRL stores
        train = train.replace(timesteps=train.timesteps + num_envs)
        buffer_state = buffer.add(runner.buffer, Step(obs=runner.obs, action=action, reward=reward, done=done))
        key, k_learn = jax.random.split(key)
        learns = (buffer.can_sample(buffer_state) & (train.timesteps > cfg["learning_starts"])
                  & (train.timesteps % cfg["training_interval"] == 0))
        train, loss = jax.lax.cond(learns, learn, lambda t, b, k: (t, jnp.array(0.0)), train, buffer_state, k_learn)
        train = jax.lax.cond(
            train.timesteps % cfg["target_update_interval"] == 0,
            lambda t: t.replace(target_params=optax.incremental_update(t.params, t.target_params, cfg["tau"])),
            lambda t: t, train)
        metrics = {"timesteps": train.timesteps, "updates": train.n_updates, "loss": loss.mean(),
                   "returns": info["returned_episode_returns"].mean()}
        return Runner(train=train, buffer=buffer_state, env_state=env_state, obs=obs, key=key), metrics

    def chunk(runner: Runner, iterations: int):
        return jax.lax.scan(iteration, runner, None, length=iterations)

    return init, jax.jit(chunk, static_argnums=1, donate_argnums=0)


def make_evaluator(num_episodes: int = 10):
    """``evaluate(params, key) -> returns [E]`` (jitted): the return of each of ``num_episodes`` greedy episodes
    (argmax of `QNet`, no exploration) of CartPole-v1, each from a fresh reset and played to its end
    (termination, or truncation at ``max_steps_in_episode`` = 500). ``params`` are a `Runner`'s
    ``train.params``. Episode ``i`` starts from ``env.reset(jax.random.split(jax.random.split(key)[0], E)[i])``.
    Envs whose episode has ended keep stepping (gymnax resets them) until all have ended, but earn nothing
    more."""
    env, env_params = gymnax.make("CartPole-v1")  # FlattenObservationWrapper is the identity on CartPole's obs
    network = QNet(env.action_space(env_params).n)
    max_steps = env_params.max_steps_in_episode
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def evaluate(params, key: jax.Array) -> jax.Array:
        k_reset, k_loop = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_episodes), env_params)

        def cond(carry):
            *_, done, t = carry
            return ~jnp.all(done) & (t < max_steps)

        def body(carry):
            obs, env_state, key, returns, done, t = carry
            key, k_step = jax.random.split(key)
            action = jnp.argmax(network.apply(params, obs), axis=-1)
            obs, env_state, reward, terminated, truncated, _ = step(
                jax.random.split(k_step, num_episodes), env_state, action, env_params)
            returns = returns + jnp.where(done, 0.0, reward)
            return obs, env_state, key, returns, done | terminated | truncated, t + 1

        carry = (obs, env_state, k_loop, jnp.zeros(num_episodes), jnp.zeros(num_episodes, bool), jnp.int32(0))
        return jax.lax.while_loop(cond, body, carry)[3]

    return jax.jit(evaluate)
