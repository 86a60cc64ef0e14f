"""Train on probe MDPs whose Q-values are known in closed form (see probe_envs.py)."""

import jax.numpy as jnp
import numpy as np
import pytest

from mtrl.config import DQNConfig
from mtrl.trainer import train


@pytest.mark.parametrize("n_step", [1, 3])
def test_probe_q_values(n_step):
    """Closed-form values under a uniformly random behaviour. Their rewards do not depend on later actions, so
    n-step targets are unbiased here too (the Truncated probe truncates inside 3-step windows)."""
    specs = [
        "Probe-OneStep",
        "Probe-TwoStep:gamma=0.5",
        "Probe-Truncated:gamma=0.5,max_steps_in_episode=3",
        "Probe-ActionReward:actions=3",
    ]
    cfg = DQNConfig(total_steps=4000, num_envs=4, buffer_size=512, batch_size=32, learning_starts=64,
                    target_update_period=10, lr=3e-3, torso=(32,), eps_start=1.0, eps_end=1.0,
                    eval_every=2000, eval_episodes=2, loss="l2", n_step=n_step)
    result = train(specs, cfg, seeds=[0], progress=False)
    params = jax_tree_first(result.state.runs.train.params)
    from mtrl.agent import Agent
    from mtrl.tasks import make_taskset

    agent = Agent.create(make_taskset(specs), cfg)
    obs = jnp.array([[0.0], [1.0]])[None].repeat(4, axis=0)  # [T=4, 2 states, 1]
    q = np.asarray(agent.q_values(params, obs))  # [T, 2, A=3]
    np.testing.assert_allclose(q[0, 0, :2], 1.0, atol=0.05)  # one step, reward 1
    np.testing.assert_allclose(q[1, 0, :2], 0.5, atol=0.05)  # two steps: gamma * 1
    np.testing.assert_allclose(q[1, 1, :2], 1.0, atol=0.05)
    np.testing.assert_allclose(q[2, 0, :2], 2.0, atol=0.1)  # bootstraps through truncation: 1 / (1 - 0.5)
    np.testing.assert_allclose(q[3, 0], [0.0, 1.0, 0.0], atol=0.05)  # reward only for action 1


def jax_tree_first(tree):
    import jax

    return jax.tree.map(lambda x: x[0], tree)
