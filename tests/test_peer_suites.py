"""Cases ported from the peers' own test suites, with their expected values.

Each test names its source: repository, path and test. Where a peer's loss
is defined differently, the comment says how the case was translated.

* optax: ``optax/losses/_classification_test.py`` (SigmoidCrossEntropyTest,
  SigmoidFocalLossTest).
* torchvision: ``test/test_ops.py`` (TestFocalLoss.test_correct_ratio,
  test_equal_ce_loss).
* Keras: ``keras/src/losses/losses_test.py`` (MeanSquaredErrorTest,
  MeanAbsoluteErrorTest, HingeTest, BinaryCrossentropyTest,
  CategoricalCrossentropyTest). Keras averages each sample's loss over the last
  axis and then divides the weighted sum by the batch size; for our
  elementwise losses that is the ``"mean"`` over all entries with per-sample
  weights aligned to the leading axis (the loss contract's weights rule).
  Keras states many expected values to 3 or 4 decimals and compares them with
  ``assertAlmostEqual`` (3 decimals by default): those get ``atol=1e-3``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossreg_jax import losses

# ----------------------------------------------------------------- optax


@pytest.mark.parametrize("preds, labels, expected", [
    ([-1e09, -1e-09], [1.0, 0.0], 5e08),
    ([-1e09, -1e-09], [0.0, 1.0], 0.3465736),
    ([1e09, 1e-09], [1.0, 0.0], 0.3465736),
    ([1e09, 1e-09], [0.0, 1.0], 5e08),
    ([-1e09, 1e-09], [1.0, 0.0], 5e08),
    ([-1e09, 1e-09], [0.0, 1.0], 0.3465736),
    ([1e09, -1e-09], [1.0, 0.0], 0.3465736),
    ([1e09, -1e-09], [0.0, 1.0], 5e08),
    ([0.0, 0.0], [1.0, 0.0], 0.6931472),
    ([0.0, 0.0], [0.0, 1.0], 0.6931472),
])
def test_optax_sigmoid_cross_entropy_table(preds, labels, expected):
  # optax/losses/_classification_test.py, SigmoidCrossEntropyTest.
  got = jax.jit(losses.sigmoid_binary_cross_entropy)(np.float32(preds), np.float32(labels))
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


class TestOptaxSigmoidFocalLoss:
  # optax/losses/_classification_test.py, SigmoidFocalLossTest (CPU rtol 2e-5).
  ys = np.float32([[2.0, 0.1, -2.0], [0.3, -0.1, 1.2]])
  ts = np.float32([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
  large_ys = np.asarray(jnp.log(jnp.array([0.9, 0.98, 0.3, 0.99]) /
                                (1 - jnp.array([0.9, 0.98, 0.3, 0.99]))))
  small_ys = np.asarray(jnp.log(jnp.array([0.1, 0.02, 0.09, 0.15]) /
                                (1 - jnp.array([0.1, 0.02, 0.09, 0.15]))))
  ones_ts = np.ones(4, np.float32)
  rtol = 2e-5

  def focal(self, x, y, **kw):
    return jax.jit(partial(losses.sigmoid_focal_loss, reduction="none", **kw))(x, y)

  def bce(self, x, y):
    return losses.sigmoid_binary_cross_entropy(x, y, reduction="none")

  def test_focal_equals_ce(self):
    np.testing.assert_allclose(self.focal(self.ys, self.ts, gamma=0.0),
                               self.bce(self.ys, self.ts), rtol=self.rtol)

  def test_focal_gamma_zero_matches_binary_cross_entropy(self):
    x = np.float32([[-1.0, 0.0, 1.0], [2.0, -2.0, 0.5]])
    y = np.float32([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(self.focal(x, y, gamma=0.0), self.bce(x, y), rtol=self.rtol)

  def test_scale(self):
    p = jax.nn.sigmoid(self.ys)
    p_t = p * self.ts + (1 - p) * (1 - self.ts)
    ratio = self.focal(self.ys, self.ts, gamma=2) / self.bce(self.ys, self.ts)
    np.testing.assert_allclose(ratio, (1 - p_t) ** 2, rtol=self.rtol)

  def test_large_logit_fl_less_than_ce(self):
    ratio = (self.bce(self.large_ys, self.ones_ts)
             / self.focal(self.large_ys, self.ones_ts, gamma=2, alpha=0.5))
    expected = 2.0 / ((1.0 - jax.nn.sigmoid(self.large_ys)) ** 2)
    np.testing.assert_allclose(ratio, expected, rtol=self.rtol)

  def test_small_logit_fl_less_than_ce(self):
    ratio = (self.bce(self.small_ys, self.ones_ts)
             / self.focal(self.small_ys, self.ones_ts, gamma=2))
    expected = 1.0 / ((1.0 - jax.nn.sigmoid(self.small_ys)) ** 2)
    np.testing.assert_allclose(ratio, expected, rtol=self.rtol)

  def test_alpha_one(self):
    np.testing.assert_allclose(self.focal(self.ys, self.ts, gamma=0.0, alpha=1),
                               self.bce(self.ys, self.ts) * self.ts, rtol=self.rtol)

  def test_ignore_positive_and_negative(self):
    ce = np.asarray(self.bce(self.ys, self.ts))
    focal0 = np.asarray(self.focal(self.ys, self.ts, alpha=0))
    focal1 = np.asarray(self.focal(self.ys, self.ts, alpha=1))
    assert np.all(ce[self.ts == 1] > 0) and np.all(focal0[self.ts == 1] == 0)
    assert np.all(ce[self.ts == 0] > 0) and np.all(focal1[self.ts == 0] == 0)

  @pytest.mark.parametrize("gamma", [0.5, 1.5, 2.5])
  def test_extreme_logits_finite_gradients(self, gamma):
    # optax tests gamma = 0.5; issue 10 found NaN hessians for 1.5 and 2.5 too.
    x = jnp.array([100.0, -100.0, 75.0, -75.0, 50.0, -50.0])
    y = jnp.array([0.9, 0.1, 0.8, 0.2, 1.0, 0.0])
    fn = lambda a: jnp.sum(losses.sigmoid_focal_loss(a, y, gamma=gamma, reduction="none"))
    value, grad, hess = jax.jit(lambda a: (fn(a), jax.grad(fn)(a), jax.hessian(fn)(a)))(x)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    assert np.all(np.isfinite(hess))


# ----------------------------------------------------------- torchvision


def _torchvision_inputs(seed, shape=(5, 2)):
  # test/test_ops.py, TestFocalLoss._generate_diverse_input_target_pair: logits
  # of probabilities in small / big / random ranges, targets all 0, all 1 or
  # random binary (torch.testing.make_tensor ranges, drawn here with NumPy).
  rng = np.random.default_rng(seed)
  ranges = {"small": (0.0, 0.2), "big": (0.8, 1.0), "random": (0.0, 1.0)}
  xs, ys = [], []
  for p_range in ("small", "big", "random"):
    for t_kind in ("zeros", "ones", "random_binary"):
      lo, hi = ranges[p_range]
      p = np.clip(rng.uniform(lo, hi, shape), 1e-6, 1 - 1e-6)
      xs.append(np.log(p / (1 - p)))
      ys.append({"zeros": np.zeros(shape), "ones": np.ones(shape),
                 "random_binary": rng.integers(0, 2, shape)}[t_kind])
  return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)


@pytest.mark.parametrize("alpha", [None, 0.0, 0.58, 1.0])  # torchvision's -1: None
@pytest.mark.parametrize("gamma", [0, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_torchvision_correct_ratio(alpha, gamma, seed):
  # test/test_ops.py, TestFocalLoss.test_correct_ratio: focal ≤ BCE
  # elementwise, and focal / BCE = α_t·(1 − p_t)^γ (tol 1e-5 in float32).
  x, y = _torchvision_inputs(seed)
  focal = np.asarray(jax.jit(partial(losses.sigmoid_focal_loss, alpha=alpha, gamma=gamma,
                                     reduction="none"))(x, y))
  # Both compiled (an eager BCE rounds each op apart, 1 ulp from the jitted one).
  ce = np.asarray(jax.jit(partial(losses.sigmoid_binary_cross_entropy,
                                  reduction="none"))(x, y))
  assert np.all(focal <= ce), "focal loss must be less or equal to cross entropy"
  # The ratio against the exact BCE (float64): torch's own BCE, which
  # torchvision divides by, cancels for x < 0, y = 0 as our former form did
  # (up to 2e-5 relative on these inputs), ours is within a few ulps.
  x64 = x.astype(np.float64)
  ce = y * np.logaddexp(0, -x64) + (1 - y) * np.logaddexp(0, x64)
  p = 1 / (1 + np.exp(-x64))
  p_t = p * y + (1 - p) * (1 - y)
  correct = (1.0 - p_t) ** gamma
  if alpha is not None:
    correct = correct * (alpha * y + (1 - alpha) * (1 - y))
  np.testing.assert_allclose(focal / ce, correct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_torchvision_equal_ce_loss(reduction):
  # test/test_ops.py, TestFocalLoss.test_equal_ce_loss: alpha=-1 (None here)
  # and gamma=0 give BCE, value and gradient (tol 1e-5).
  x, y = _torchvision_inputs(2)
  xt = torch.tensor(x, requires_grad=True)
  ce = F.binary_cross_entropy_with_logits(xt, torch.tensor(y), reduction=reduction)
  ce.backward()
  value, grad = jax.jit(jax.value_and_grad(partial(
      losses.sigmoid_focal_loss, alpha=None, gamma=0.0, reduction=reduction)))(x, y)
  np.testing.assert_allclose(value, ce.detach().numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ Keras

_Y_TRUE = np.float32([[1, 9, 2], [-5, -2, 6]])
_Y_PRED = np.float32([[4, 8, 12], [8, 1, 3]])


@pytest.mark.parametrize("name, sample_weight, expected", [
    # MeanSquaredErrorTest
    ("squared_error", None, 49.5),
    ("squared_error", 2.3, 113.85),
    ("squared_error", [[1.2], [3.4]], 767.8 / 6),
    ("squared_error", [1.2, 3.4], 767.8 / 6),  # Keras' (N,) sample_weight
    ("squared_error", 0.0, 0.0),
    # MeanAbsoluteErrorTest
    ("absolute_error", None, 5.5),
    ("absolute_error", 2.3, 12.65),
    ("absolute_error", [[1.2], [3.4]], 81.4 / 6),
    ("absolute_error", [1.2, 3.4], 81.4 / 6),
])
def test_keras_regression_sample_weighted(name, sample_weight, expected):
  fn = jax.jit(getattr(losses, name))
  weights = None if sample_weight is None else np.float32(sample_weight)
  np.testing.assert_allclose(fn(_Y_PRED, _Y_TRUE, weights=weights), expected, rtol=1e-5)


@pytest.mark.parametrize("name, expected_mean", [
    # test_mean_with_sample_weight_reduction: Σ w_i·mean_i / Σ w_i.
    ("squared_error", (110 / 3 * 1.2 + 187 / 3 * 3.4) / (1.2 + 3.4)),
    ("absolute_error", (14 / 3 * 1.2 + 19 / 3 * 3.4) / (1.2 + 3.4)),
])
def test_keras_mean_with_sample_weight_is_weighted_mean(name, expected_mean):
  got = getattr(losses, name)(_Y_PRED, _Y_TRUE, weights=np.float32([1.2, 3.4]),
                              reduction="weighted_mean")
  np.testing.assert_allclose(got, expected_mean, rtol=1e-5)


@pytest.mark.parametrize("name, expected", [("squared_error", 97.833336),
                                            ("absolute_error", 13.833333)])
def test_keras_timestep_weighted(name, expected):
  # MeanSquaredErrorTest / MeanAbsoluteErrorTest.test_timestep_weighted: inputs
  # (2, 3, 1), sample_weight (2, 3), a prefix of the loss shape.
  y_true = _Y_TRUE.reshape(2, 3, 1)
  y_pred = _Y_PRED.reshape(2, 3, 1)
  w = np.float32([3, 6, 5, 0, 4, 2]).reshape(2, 3)
  got = jax.jit(getattr(losses, name))(y_pred, y_true, weights=w)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_keras_hinge():
  # HingeTest: Keras maps labels {0, 1} to {−1, 1} and averages the last axis.
  y_true = np.float32([[0.0, 1.0], [0.0, 0.0]]) * 2 - 1
  y_pred = np.float32([[0.6, 0.4], [0.4, 0.6]])
  fn = losses.hinge_loss
  np.testing.assert_allclose(fn(y_pred, y_true), 1.3, rtol=1e-5)
  # Keras' "sum" adds the per-sample means: our elementwise sum / 2 columns.
  np.testing.assert_allclose(fn(y_pred, y_true, reduction="sum") / 2, 2.6, rtol=1e-5)
  np.testing.assert_allclose(fn(y_pred, y_true, reduction="none").mean(-1), [1.1, 1.5],
                             rtol=1e-5)
  w = np.float32([1, 0])  # test_weighted: sample_weight [1, 0]
  np.testing.assert_allclose(fn(y_pred, y_true, weights=w), 0.55, rtol=1e-5)
  np.testing.assert_allclose(fn(y_pred, y_true, weights=w, reduction="none").mean(-1),
                             [1.1, 0.0], rtol=1e-5)
  assert fn(y_pred, y_true, weights=np.float32(0.0)) == 0.0


def test_keras_binary_crossentropy_from_logits():
  # BinaryCrossentropyTest (from_logits=True cases).
  fn = jax.jit(losses.sigmoid_binary_cross_entropy)
  y_true = np.float32([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
  logits = np.float32([[10, -10, -10], [-10, 10, -10], [-10, -10, 10]])
  np.testing.assert_allclose(fn(logits, y_true), 0.0, atol=1e-4)  # all correct
  y_true = np.float32([[1, 0, 1], [0, 1, 1]])
  logits = np.float32([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
  np.testing.assert_allclose(fn(logits, y_true), 3.3333, rtol=1e-4)  # unweighted
  np.testing.assert_allclose(fn(logits, y_true, weights=np.float32(2.3)), 7.666, atol=1e-3)
  # test_sample_weighted: sample_weight [4, 3] of shape (N,) on an (N, 3) loss.
  np.testing.assert_allclose(fn(logits, y_true, weights=np.float32([4, 3])), 10.0, rtol=1e-4)
  none = losses.sigmoid_binary_cross_entropy(logits, y_true, reduction="none").mean(-1)
  np.testing.assert_allclose(none, [0.0, 6.666], atol=1e-3)  # test_no_reduction
  # test_label_smoothing: (10 + 5·ls) / 3.
  got = losses.sigmoid_binary_cross_entropy(
      np.float32([[10.0, -10.0, -10.0]]), np.float32([[1, 0, 1]]), label_smoothing=0.1)
  # (Keras' closed form drops the log1p(e^−10) ≈ 4.5e-5 terms.)
  np.testing.assert_allclose(got, (10.0 + 5.0 * 0.1) / 3.0, atol=1e-4)


def test_keras_binary_crossentropy_on_probabilities():
  # BinaryCrossentropyTest.test_unweighted / test_scalar_weighted /
  # test_sample_weighted (probabilities, clipped at 1e-7 as Keras).
  fn = jax.jit(losses.binary_cross_entropy)
  y_true = np.float32([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
  y_pred = np.float32([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]])
  np.testing.assert_allclose(fn(y_pred, y_true), 0.20046903, rtol=1e-5)
  y_true = np.float32([1, 0, 1, 0]).reshape(2, 2)
  y_pred = np.float32([1, 1, 1, 0]).reshape(2, 2)
  np.testing.assert_allclose(fn(y_pred, y_true), 3.98559, rtol=1e-4)
  np.testing.assert_allclose(fn(y_pred, y_true, weights=np.float32(2.3)), 9.1668, rtol=1e-4)
  np.testing.assert_allclose(fn(y_pred, y_true, weights=np.float32([[1.2], [3.4]])), 4.7827,
                             rtol=1e-4)


def test_keras_categorical_crossentropy():
  # CategoricalCrossentropyTest: probabilities (renormalized, clipped) and,
  # for the from_logits cases, softmax_cross_entropy.
  y_true = np.float32([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
  y_pred = np.float32([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]])
  cce = jax.jit(losses.categorical_cross_entropy)
  np.testing.assert_allclose(cce(y_pred, y_true), 0.3239, atol=1e-3)
  np.testing.assert_allclose(cce(y_pred, y_true, weights=np.float32(2.3)), 0.7449, atol=1e-3)
  # Keras' sample_weight (3, 1) on the (3,) per-sample loss is squeezed: (3,) here.
  sw = np.float32([1.2, 3.4, 5.6])
  np.testing.assert_allclose(cce(y_pred, y_true, weights=sw), 1.0696, atol=1e-3)
  assert cce(y_true, y_true) < 1e-6  # test_all_correct_unweighted
  logits = np.float32([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
  sce = jax.jit(losses.softmax_cross_entropy)
  np.testing.assert_allclose(sce(logits, y_true), 0.0573, atol=1e-3)
  np.testing.assert_allclose(sce(logits, y_true, weights=np.float32(2.3)), 0.1317, atol=1e-3)
  np.testing.assert_allclose(sce(logits, y_true, weights=sw), 0.31829, atol=1e-5)
  np.testing.assert_allclose(losses.softmax_cross_entropy(logits, y_true, reduction="none"),
                             [0.001822, 0.000459, 0.169846], rtol=1e-3)
  # test_label_smoothing: logits [100, −100, −100], ls = 0.1: 400·ls/3.
  got = losses.softmax_cross_entropy(np.float32([[100.0, -100.0, -100.0]]),
                                     np.float32([[1, 0, 0]]), label_smoothing=0.1)
  np.testing.assert_allclose(got, 400.0 * 0.1 / 3.0, rtol=1e-5)
