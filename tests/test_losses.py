import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from mtrl import losses


class TDErrorTest(chex.TestCase):
    @chex.all_variants(with_pmap=False)
    def test_hand_computed_example(self):
        # one task, two transitions, three actions of which the third is invalid
        q_tm1 = jnp.array([[1.0, 2.0, 0.0], [0.5, -1.0, 0.0]])
        a_tm1 = jnp.array([1, 0])
        r_t = jnp.array([1.0, -1.0])
        terminated = jnp.array([False, True])
        q_t_value = jnp.array([[3.0, 4.0, 100.0], [7.0, 8.0, 100.0]])
        q_t_selector = jnp.array([[0.0, 1.0, 50.0], [1.0, 0.0, 50.0]])
        mask = jnp.array([True, True, False])
        fn = self.variant(lambda *a: losses.task_td_loss(*a, loss="l2"))
        loss, td = fn(q_tm1, a_tm1, r_t, terminated, jnp.float32(0.9), q_t_value, q_t_selector, mask)
        # target 0: 1 + 0.9 * q_value[argmax_valid selector = 1] = 1 + 0.9 * 4 = 4.6; td = 4.6 - 2 = 2.6
        # target 1: terminated -> -1; td = -1 - 0.5 = -1.5
        np.testing.assert_allclose(td, [2.6, -1.5], rtol=1e-6)
        np.testing.assert_allclose(loss, (0.5 * 2.6**2 + 0.5 * 1.5**2) / 2, rtol=1e-6)

    @chex.all_variants(with_pmap=False)
    def test_huber(self):
        td = jnp.array([0.5, -3.0])
        out = self.variant(lambda x: losses.elementwise_loss(x, "huber", 1.0))(td)
        np.testing.assert_allclose(out, [0.125, 2.5])


def test_matches_rlax_without_mask():
    key = jax.random.key(0)
    k = jax.random.split(key, 5)
    b, a = 32, 4
    q_tm1 = jax.random.normal(k[0], (b, a))
    q_t_value = jax.random.normal(k[1], (b, a))
    q_t_sel = jax.random.normal(k[2], (b, a))
    a_tm1 = jax.random.randint(k[3], (b,), 0, a)
    r_t = jax.random.normal(k[4], (b,))
    terminated = jnp.arange(b) % 3 == 0
    discount = 0.97 * (1.0 - terminated)
    _, td = losses.task_td_loss(q_tm1, a_tm1, r_t, terminated, jnp.float32(0.97), q_t_value, q_t_sel,
                                jnp.ones(a, bool))
    expected = jax.vmap(rlax.double_q_learning)(q_tm1, a_tm1, r_t, discount, q_t_value, q_t_sel)
    np.testing.assert_allclose(td, expected, rtol=1e-6)
    # plain Q-learning is the selector == value case
    _, td_q = losses.task_td_loss(q_tm1, a_tm1, r_t, terminated, jnp.float32(0.97), q_t_value, q_t_value,
                                  jnp.ones(a, bool))
    np.testing.assert_allclose(td_q, jax.vmap(rlax.q_learning)(q_tm1, a_tm1, r_t, discount, q_t_value), rtol=1e-6)


class ElementwiseReadsTest(chex.TestCase):
    """`take_action` and `max_valid` read over the action axis with selects and maxima (for GPU fusion): they must
    equal the gather and the masked max exactly, and plain DQN (selector None) rlax's q_learning bit for bit."""

    @chex.all_variants(with_pmap=False)
    def test_reads_equal_the_gather_and_the_masked_max_exactly(self):
        k = jax.random.split(jax.random.key(1), 3)
        q = jax.random.normal(k[0], (2, 64, 6))
        action = jax.random.randint(k[1], (2, 64), 0, 6)
        mask = jnp.array([True, True, True, True, False, False])  # a task with 4 of the 6 actions
        taken = self.variant(losses.take_action)(q, action)
        np.testing.assert_array_equal(taken, jnp.take_along_axis(q, action[..., None], axis=-1)[..., 0])
        best = self.variant(losses.max_valid)(q, mask)
        np.testing.assert_array_equal(best, jnp.max(jnp.where(mask, q, -jnp.inf), axis=-1))
        # the gradient of a read is the one-hot of the action
        grad = self.variant(jax.grad(lambda x: losses.take_action(x, action).sum()))(q)
        np.testing.assert_array_equal(grad, jax.nn.one_hot(action, 6))

    @chex.all_variants(with_pmap=False)
    def test_plain_dqn_without_a_selector_is_rlax_q_learning_exactly(self):
        k = jax.random.split(jax.random.key(2), 5)
        b, a = 32, 5
        q_tm1, q_t = jax.random.normal(k[0], (b, a)), jax.random.normal(k[1], (b, a))
        a_tm1 = jax.random.randint(k[2], (b,), 0, a)
        r_t, discount = jax.random.normal(k[3], (b,)), jnp.where(jnp.arange(b) % 4 == 0, 0.0, 0.97)
        td = self.variant(losses.td_errors)(q_tm1, a_tm1, r_t, discount, q_t, None, jnp.ones(a, bool))
        expected = self.variant(jax.vmap(rlax.q_learning))(q_tm1, a_tm1, r_t, discount, q_t)  # same compilation
        np.testing.assert_array_equal(td, expected)
        same = self.variant(losses.td_errors)(q_tm1, a_tm1, r_t, discount, q_t, q_t, jnp.ones(a, bool))
        np.testing.assert_array_equal(td, same)  # selector == value: the double-Q path reads the same value

    @chex.all_variants(with_pmap=False)
    def test_masked_double_q_is_rlax_double_q_learning_exactly(self):
        k = jax.random.split(jax.random.key(3), 6)
        b, a = 32, 6
        q_tm1, q_t, q_sel = (jax.random.normal(k[i], (b, a)) for i in range(3))
        a_tm1 = jax.random.randint(k[3], (b,), 0, 4)
        r_t, discount = jax.random.normal(k[4], (b,)), jnp.where(jnp.arange(b) % 4 == 0, 0.0, 0.97)
        mask = jnp.arange(a) < 4
        td = self.variant(losses.td_errors)(q_tm1, a_tm1, r_t, discount, q_t, q_sel, mask)
        expected = self.variant(jax.vmap(rlax.double_q_learning))(q_tm1, a_tm1, r_t, discount, q_t,
                                                                  losses.masked_q(q_sel, mask))
        np.testing.assert_array_equal(td, expected)


def test_masked_action_never_in_the_max():
    # the invalid action has by far the largest value in both networks; the target must ignore it
    q = jnp.array([[1.0, 2.0, 1e6]])
    for selector in (q, None):  # double-Q path with selector == value, and plain DQN
        _, td = losses.task_td_loss(jnp.zeros((1, 3)), jnp.array([0]), jnp.array([0.0]), jnp.array([False]),
                                    jnp.float32(1.0), q, selector, jnp.array([True, True, False]))
        np.testing.assert_allclose(td, [2.0])
        assert np.all(np.isfinite(td))


def test_multitask_loss_is_per_task_and_uses_each_gamma():
    t, b, a = 3, 4, 2
    q_t = jnp.ones((t, b, a))
    per_task, td = losses.multitask_td_loss(
        jnp.zeros((t, b, a)), jnp.zeros((t, b), jnp.int32), jnp.zeros((t, b)), jnp.zeros((t, b), bool),
        jnp.array([0.0, 0.5, 1.0]), q_t, q_t, jnp.ones((t, a), bool), loss="l2")
    chex.assert_shape(per_task, (t,))
    np.testing.assert_allclose(td[:, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(per_task, 0.5 * jnp.array([0.0, 0.25, 1.0]))


def test_bad_loss_name():
    with pytest.raises(ValueError, match="loss must be 'huber' or 'l2', got 'mse'"):
        losses.elementwise_loss(jnp.zeros(2), "mse")
