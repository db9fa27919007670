"""Tests for lossreg_jax.losses.weighting."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.utils.class_weight import compute_class_weight

from lossreg_jax import losses


def sum_of_squares(prediction, target, *, scale=1.0):
  """Squared error of one example, summed over its features."""
  return scale * jnp.sum((prediction - target) ** 2)


def _data(seed=0, n=6, d=3):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, d)).astype(np.float32),
          rng.normal(size=(n, d)).astype(np.float32), rng)


def test_per_example_matches_a_manual_loop_under_jit():
  p, t, _ = _data()
  batch = losses.per_example(sum_of_squares)
  loop = np.array([float(sum_of_squares(p[i], t[i])) for i in range(len(p))])
  none, mean, total = jax.jit(lambda p, t: (batch(p, t, reduction="none"), batch(p, t),
                                            batch(p, t, reduction="sum", scale=2.0)))(p, t)
  assert none.shape == (6,)
  np.testing.assert_allclose(none, loop, rtol=1e-6)
  np.testing.assert_allclose(mean, loop.mean(), rtol=1e-6)
  # Summing the per-example sums is the squared error summed over every element.
  np.testing.assert_allclose(total, 2.0 * np.sum((p - t) ** 2), rtol=1e-6)


def test_per_example_weights_where_and_gradients():
  p, t, rng = _data(seed=1)
  w = rng.uniform(0.5, 2.0, size=6).astype(np.float32)
  where = np.array([True, False, True, True, False, True])
  batch = losses.per_example(sum_of_squares)
  per = np.sum((p - t) ** 2, axis=1)
  got = batch(p, t, weights=w, where=where)
  np.testing.assert_allclose(got, np.sum((w * per)[where]) / where.sum(), rtol=1e-6)
  wmean = batch(p, t, weights=w, where=where, reduction="weighted_mean")
  np.testing.assert_allclose(wmean, np.sum((w * per)[where]) / w[where].sum(), rtol=1e-6)
  grad = jax.grad(lambda p: batch(p, t, weights=w, where=where, reduction="sum"))(p)
  expected = 2 * (w * where)[:, None] * (p - t)
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_per_example_equals_optax_per_example_cross_entropy():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(5, 4)).astype(np.float32)
  labels = rng.integers(0, 4, size=5)

  def one_example_ce(logit, label):
    return -jax.nn.log_softmax(logit)[label]

  got = losses.per_example(one_example_ce)(logits, labels, reduction="none")
  np.testing.assert_allclose(
      got, optax.softmax_cross_entropy_with_integer_labels(logits, labels), rtol=1e-6)


def test_per_example_accepts_pytrees_and_keeps_name_and_doc():
  p, t, _ = _data(seed=3)

  def paired(prediction, target):
    return jnp.sum((prediction["mu"] - target) ** 2) + jnp.sum(prediction["extra"] ** 2)

  preds = {"mu": p, "extra": np.ones((6, 2), np.float32)}
  got = losses.per_example(paired)(preds, t, reduction="none")
  np.testing.assert_allclose(got, np.sum((p - t) ** 2, axis=1) + 2.0, rtol=1e-6)
  batch = losses.per_example(sum_of_squares)
  assert batch.__name__ == "sum_of_squares"
  assert "Squared error of one example" in batch.__doc__ and "vmap" in batch.__doc__
  # Composes with vmap over an outer axis too.
  outer = jax.vmap(partial(batch, reduction="none"))(p[None], t[None])
  np.testing.assert_allclose(outer[0], np.sum((p - t) ** 2, axis=1), rtol=1e-6)


def test_per_example_excluded_rows_give_zero_gradient_even_with_nan():
  # Issue 22: rows excluded by where but holding NaN (or inf, or values the
  # loss cannot take, such as log(0)) gave NaN gradients; the loss contract
  # says excluded entries contribute exactly 0 and no NaN gradient.
  def one(prediction, target):
    return jnp.sum((prediction - target) ** 2) + jnp.log(prediction[0])

  batch = losses.per_example(one)
  p = np.float32([[np.nan, 1.0], [1.0, 2.0], [np.inf, 0.0]])
  t = np.ones((3, 2), np.float32)
  fn = jax.jit(jax.value_and_grad(lambda p, t, w: batch(p, t, where=w), argnums=(0, 1)))
  expected = np.zeros_like(p)
  expected[1] = 2 * (p[1] - t[1]) + [1.0, 0.0]  # d/dp of the squares + log p[0]
  for where, value, grad in ((np.zeros(3, bool), 0.0, np.zeros_like(p)),
                             (np.array([False, True, False]), 1.0, expected)):
    v, (gp, gt) = fn(p, t, where)
    assert float(v) == value
    np.testing.assert_allclose(gp, grad, rtol=1e-6)
    np.testing.assert_allclose(gt, np.where(where[:, None], -2 * (p - t), 0), rtol=1e-6)
  # A scalar where and pytree inputs: every leaf's excluded rows are replaced.
  tree = losses.per_example(lambda a, b: jnp.sum(a["x"] * b) + jnp.log(a["y"]))
  value, g = jax.jit(jax.value_and_grad(lambda a: tree(a, t, where=False, reduction="sum")))(
      {"x": p, "y": np.float32([0.0, np.nan, -1.0])})
  assert float(value) == 0.0 and not np.any(g["x"]) and not np.any(g["y"])


def test_per_example_errors():
  p, t, _ = _data()
  with pytest.raises(TypeError, match="loss_fn"):
    losses.per_example("not a function")
  with pytest.raises(ValueError, match="scalar per example"):
    losses.per_example(lambda a, b: a - b)(p, t)
  with pytest.raises(ValueError, match="batch size"):
    losses.per_example(sum_of_squares)(p, t[:4])
  with pytest.raises(ValueError, match="predictions"):
    losses.per_example(sum_of_squares)(jnp.float32(1.0), t)
  with pytest.raises(ValueError, match="reduction"):
    losses.per_example(sum_of_squares)(p, t, reduction="avg")


# ---------------------------------------------------------------- class weights

def test_balanced_matches_scikit_learn_under_jit():
  rng = np.random.default_rng(4)
  labels = rng.choice(4, size=50, p=[0.6, 0.25, 0.1, 0.05])
  assert len(np.unique(labels)) == 4
  expected = compute_class_weight("balanced", classes=np.arange(4), y=labels)
  got = jax.jit(partial(losses.class_weights, num_classes=4))(labels)
  assert got.shape == (4,) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # Labels of any shape count every entry.
  np.testing.assert_allclose(losses.class_weights(labels.reshape(5, 10), 4), expected, rtol=1e-6)


def test_absent_classes_get_zero_weight():
  labels = np.array([0, 0, 2, 2, 2, 0, 0])  # class 1 and 3 absent
  for scheme in ("balanced", "effective_number"):
    w = np.asarray(losses.class_weights(labels, 4, scheme=scheme))
    assert np.all(np.isfinite(w)) and w[1] == 0 and w[3] == 0 and np.all(w[[0, 2]] > 0)
  np.testing.assert_allclose(losses.class_weights(labels, 4), [7 / 16, 0, 7 / 12, 0], rtol=1e-6)
  np.testing.assert_allclose(jnp.sum(losses.class_weights(labels, 4, scheme="effective_number")),
                             4.0, rtol=1e-6)
  empty = losses.class_weights(np.zeros((0,), np.int32), 3, scheme="effective_number")
  np.testing.assert_array_equal(empty, np.zeros(3))


def _np_effective_number(labels, num_classes, beta):
  # Cui et al.'s reference code, in float64.
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  w = (1.0 - beta) / (1.0 - np.power(beta, counts))
  return w / w.sum() * num_classes


@pytest.mark.parametrize("beta", [0.9, 0.999, 0.99999])
def test_effective_number_matches_formula(beta):
  rng = np.random.default_rng(5)
  labels = rng.choice(3, size=400, p=[0.8, 0.15, 0.05])
  got = jax.jit(partial(losses.class_weights, num_classes=3, scheme="effective_number",
                        beta=beta))(labels)
  # beta close to 1: 1 - beta**n is computed with expm1 / log1p, so float32 keeps
  # the float64 answer to ~1e-6 where the naive float32 form loses digits.
  np.testing.assert_allclose(got, _np_effective_number(labels, 3, beta), rtol=2e-6)
  np.testing.assert_allclose(jnp.sum(got), 3.0, rtol=1e-6)


def test_effective_number_limits():
  labels = np.array([0, 0, 0, 0, 1, 2, 2])
  np.testing.assert_allclose(
      losses.class_weights(labels, 3, scheme="effective_number", beta=0.0), np.ones(3))
  # beta -> 1 approaches inverse frequency, normalized to sum to C.
  inv = 1 / np.array([4.0, 1.0, 2.0])
  np.testing.assert_allclose(
      losses.class_weights(labels, 3, scheme="effective_number", beta=1 - 1e-7),
      inv / inv.sum() * 3, rtol=1e-5)


def test_class_weight_errors():
  labels = np.array([0, 1, 1])
  with pytest.raises(ValueError, match="scheme"):
    losses.class_weights(labels, 2, scheme="inverse")
  with pytest.raises(ValueError, match="beta"):
    losses.class_weights(labels, 2, scheme="effective_number", beta=1.0)
  with pytest.raises(ValueError, match="beta"):
    losses.class_weights(labels, 2, scheme="effective_number", beta=-0.1)
  with pytest.raises(ValueError, match="num_classes"):
    losses.class_weights(labels, 0)
  with pytest.raises(ValueError, match="labels"):
    losses.class_weights(np.array([0, 3]), 2)
  with pytest.raises(TypeError, match="labels"):
    losses.class_weights(np.array([0.0, 1.0]), 2)


def test_class_weights_on_captured_labels_under_jit():
  # Labels captured from outside a jitted function are concrete: checking their
  # range must not create traced values (regression: ConcretizationTypeError).
  labels = jnp.array([0, 1, 1, 2])
  got = jax.jit(lambda s: losses.class_weights(labels, 3) * s)(1.0)
  np.testing.assert_allclose(got, losses.class_weights(labels, 3), rtol=1e-6)
