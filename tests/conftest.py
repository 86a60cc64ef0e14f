import os

# Tests trade a little run time for much shorter XLA compiles on this 2-core machine; subprocesses that set
# XLA_FLAGS of their own (a forced device count) add these.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=1"
os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)

import pytest  # noqa: E402

from tests import probe_envs  # noqa: E402

probe_envs.register()


@pytest.fixture
def tiny_config():
    from mtrl.config import DQNConfig

    # lr decayed to 0 and ε to 0.05: the tests of the schedules compute their values from these
    return DQNConfig(total_steps=256, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16,
                     target_update_period=4, torso=(16,), eval_every=128, eval_episodes=2, lr_end_fraction=0.0,
                     eps_end=0.05)
