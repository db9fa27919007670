"""Tests for lossreg_jax.losses.classification against optax, PyTorch, Keras and the seed."""

from __future__ import annotations

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from lossreg_jax import losses

N, C = 8, 5


def _binary(seed=0, shape=(N, 3), scale=3.0, soft=False):
  rng = np.random.default_rng(seed)
  x = (scale * rng.standard_normal(shape)).astype(np.float32)
  y = rng.uniform(size=shape) if soft else rng.integers(0, 2, shape)
  return x, y.astype(np.float32)


def _probs(seed=0, shape=(N, 3)):
  x, y = _binary(seed, shape)
  return np.array(jax.nn.sigmoid(x / 3)), y


def _categorical(seed=0, shape=(N, C), axis=-1):
  rng = np.random.default_rng(seed)
  x = (2 * rng.standard_normal(shape)).astype(np.float32)
  y = rng.dirichlet(np.ones(shape[axis]), size=x.size // shape[axis]).astype(np.float32)
  y = np.moveaxis(y.reshape(*np.delete(shape, axis % len(shape)), shape[axis]), -1, axis)
  return x, y


def _integer(seed=0, shape=(N, C)):
  rng = np.random.default_rng(seed)
  x = (2 * rng.standard_normal(shape)).astype(np.float32)
  return x, rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)


# name -> (loss, inputs(seed)); every case has a per-example loss of shape (N,) or (N, 3).
CASES = {
    "binary_cross_entropy": (partial(losses.binary_cross_entropy, positive_weight=2.0),
                             _probs),
    "sigmoid_binary_cross_entropy": (
        partial(losses.sigmoid_binary_cross_entropy, positive_weight=3.0), _binary),
    "sigmoid_focal_loss": (partial(losses.sigmoid_focal_loss, alpha=0.25), _binary),
    "softmax_cross_entropy": (
        partial(losses.softmax_cross_entropy, label_smoothing=0.1), _categorical),
    "softmax_cross_entropy_with_integer_labels": (
        partial(losses.softmax_cross_entropy_with_integer_labels, label_smoothing=0.1),
        _integer),
    "categorical_cross_entropy": (
        losses.categorical_cross_entropy,
        lambda s: (np.array(jax.nn.softmax(_categorical(s)[0])), _categorical(s)[1])),
    "hinge_loss": (losses.hinge_loss,
                   lambda s: (_binary(s)[0], 2 * _binary(s)[1] - 1)),
}
NAMES = sorted(CASES)


def _torch(a):
  return torch.tensor(np.asarray(a))


# --------------------------------------------------- binary, on probabilities


@pytest.mark.parametrize("w", [1.0, 5.0])
def test_bce_matches_seed_weighted_formula(w):
  p, y = _probs(1)
  eps = 1e-7
  bce = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
  expected = np.where(y == 1, w * bce, bce).mean()
  got = jax.jit(partial(losses.binary_cross_entropy, positive_weight=w))(p, y)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_bce_matches_keras_formula_and_torch(ls):
  p, y = _probs(2)
  p[0, :2] = [0.0, 1.0]  # clipped as Keras does
  eps = 1e-7
  ys = y * (1 - ls) + 0.5 * ls
  # Keras clips in the input dtype (float32), where 1 - 1e-7 is 0.99999988.
  pc = np.clip(p, np.float32(eps), np.float32(1 - eps)).astype(np.float64)
  keras = -(ys * np.log(pc) + (1 - ys) * np.log(1 - pc)).mean()
  got = jax.jit(partial(losses.binary_cross_entropy, label_smoothing=ls))(p, y)
  np.testing.assert_allclose(got, keras, rtol=1e-5)
  torch_ref = F.binary_cross_entropy(_torch(p[1:]), _torch(ys[1:])).numpy()
  np.testing.assert_allclose(
      losses.binary_cross_entropy(p[1:], y[1:], label_smoothing=ls), torch_ref, rtol=1e-5)


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_bce_grads_match_torch_and_autodiff_of_the_formula(w):
  p, y = _probs(5)
  y = np.where(np.arange(y.size).reshape(y.shape) % 3 == 0, 0.3, y)  # some soft labels
  eps = 1e-7

  def formula(p, y, w):  # Keras's formula with a positive weight, by autodiff
    pc = jnp.clip(p, eps, 1 - eps)
    return -(w * y * jnp.log(pc) + (1 - y) * jnp.log(1 - pc)).sum()

  fn = lambda p, y, w: losses.binary_cross_entropy(p, y, positive_weight=w, reduction="sum")
  got = jax.jit(jax.grad(fn, argnums=(0, 1, 2)))(p, y, w)
  ref = jax.grad(formula, argnums=(0, 1, 2))(p, y, w)
  for g, r in zip(got, ref):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
  if w == 1.0:  # torch has no positive weight for probabilities
    tp = _torch(p).requires_grad_()
    F.binary_cross_entropy(tp, _torch(y), reduction="sum").backward()
    np.testing.assert_allclose(got[0], tp.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_bce_no_gradient_outside_the_clip_range():
  p = jnp.array([0.0, 1.0, 1e-9, 0.5])
  y = jnp.array([1.0, 0.0, 1.0, 1.0])
  g = jax.jit(jax.grad(partial(losses.binary_cross_entropy, reduction="sum")))(p, y)
  np.testing.assert_array_equal(g[:3], 0.0)
  np.testing.assert_allclose(g[3], -2.0, rtol=1e-6)  # −y/p


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
def test_bce_probabilities_zero_and_one(dtype):
  p = jnp.array([0.0, 1.0, 0.0, 1.0], dtype)
  y = jnp.array([0.0, 1.0, 1.0, 0.0], dtype)
  value, grad = jax.jit(jax.value_and_grad(
      partial(losses.binary_cross_entropy, reduction="sum")))(p, y)
  assert jnp.all(jnp.isfinite(grad))
  # Two confident mistakes cost -log(eps) each, epsilon=1e-7 being effective
  # even where 1 - 1e-7 rounds to 1 in the input dtype.
  np.testing.assert_allclose(float(value), -2 * np.log(1e-7), rtol=1e-2)


# ----------------------------------------------------- binary, on logits


def test_sigmoid_bce_none_matches_optax():
  x, y = _binary(3, soft=True)
  got = jax.jit(partial(losses.sigmoid_binary_cross_entropy, reduction="none"))(x, y)
  np.testing.assert_allclose(got, optax.losses.sigmoid_binary_cross_entropy(x, y),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pos_weight", [1.0, 2.0, 0.5])
def test_sigmoid_bce_matches_torch_value_and_grad(pos_weight):
  x, y = _binary(4)
  xt = _torch(x).requires_grad_()
  expected = F.binary_cross_entropy_with_logits(xt, _torch(y),
                                                pos_weight=torch.tensor(pos_weight))
  expected.backward()
  fn = partial(losses.sigmoid_binary_cross_entropy, positive_weight=pos_weight)
  value, grad = jax.jit(jax.value_and_grad(fn))(x, y)
  np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-6)
  np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_sigmoid_bce_grads_for_labels_and_positive_weight_match_torch():
  x, y = _binary(28, soft=True)
  xt, yt = _torch(x), _torch(y).requires_grad_()
  pwt = torch.tensor(2.5, requires_grad=True)
  # torch cannot differentiate pos_weight: its documented formula, in torch autograd.
  log_weight = (pwt - 1) * yt + 1
  ((1 - yt) * xt + log_weight * F.softplus(-xt)).mean().backward()
  fn = lambda y, pw: losses.sigmoid_binary_cross_entropy(x, y, positive_weight=pw)
  g_y, g_pw = jax.jit(jax.grad(fn, argnums=(0, 1)))(y, 2.5)
  np.testing.assert_allclose(g_y, yt.grad.numpy(), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(g_pw, pwt.grad.numpy(), rtol=1e-5)


def test_sigmoid_bce_label_smoothing_and_per_column_positive_weight():
  x, y = _binary(5)
  pw = np.array([1.0, 2.0, 4.0], np.float32)
  ys = y * 0.8 + 0.1
  expected = F.binary_cross_entropy_with_logits(_torch(x), _torch(ys),
                                                pos_weight=_torch(pw)).numpy()
  fn = partial(losses.sigmoid_binary_cross_entropy, positive_weight=pw,
               label_smoothing=0.2)
  np.testing.assert_allclose(jax.jit(fn)(x, y), expected, rtol=1e-6)


def test_sigmoid_bce_huge_logits():
  x = jnp.array([-1e4, -1e4, 0.0, 1e4, 1e4])
  y = jnp.array([1.0, 0.0, 0.0, 0.0, 1.0])
  value, grad = jax.jit(jax.value_and_grad(
      partial(losses.sigmoid_binary_cross_entropy, reduction="sum")))(x, y)
  np.testing.assert_allclose(value, 2e4 + np.log(2), rtol=1e-6)
  np.testing.assert_allclose(grad, [-1.0, 0.0, 0.5, 1.0, 0.0], atol=1e-7)


# ------------------------------------------------------------------- focal


FOCAL_GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.0]  # 0, 1, 2, 3 take the integer-power path


@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
@pytest.mark.parametrize("soft", [False, True])
def test_focal_none_matches_optax(gamma, soft):
  x, y = _binary(6, soft=soft)
  x[0, :] = [1e4, -1e4, 30.0]  # optax's log-space form is stable too
  x[1, :] = [0.0, -0.0, 1e-3]
  got = jax.jit(partial(losses.sigmoid_focal_loss, gamma=gamma, reduction="none"))(x, y)
  ref = jax.jit(partial(optax.losses.sigmoid_focal_loss, gamma=gamma))
  np.testing.assert_allclose(got, ref(x, y), rtol=2e-5, atol=1e-7)
  # The custom JVP's derivatives w.r.t. logits and (soft) labels vs optax's autodiff.
  grads = jax.jit(jax.grad(partial(losses.sigmoid_focal_loss, gamma=gamma,
                                   reduction="sum"), argnums=(0, 1)))(x, y)
  expected = jax.jit(jax.grad(lambda x, y: ref(x, y).sum(), argnums=(0, 1)))(x, y)
  np.testing.assert_allclose(grads[0], expected[0], rtol=1e-4, atol=1e-6)
  if soft:  # optax's d/dlabels drops a term at hard labels: see the next test
    np.testing.assert_allclose(grads[1][1:], expected[1][1:], rtol=1e-4, atol=1e-5)
    # At |x| = 1e4 d/dlabels is about ∓x·(1 − p_t)^γ: compare relatively.
    np.testing.assert_allclose(grads[1][0], expected[1][0], rtol=1e-4)


def test_focal_hard_label_grads_match_finite_differences(x64):
  # At labels of exactly 0 / 1 optax's autodiff through logsumexp(b=...) masks
  # the b = 0 term, so d/dlabels is checked against central differences of
  # optax's value in float64 instead.
  x, y = _binary(11)
  x, y = x.astype(np.float64), y.astype(np.float64)
  h = 1e-6
  for gamma in FOCAL_GAMMAS:
    ref = lambda y: np.asarray(optax.losses.sigmoid_focal_loss(x, y, gamma=gamma))
    expected = (ref(y + h) - ref(y - h)) / (2 * h)  # elementwise loss: one pass
    got = jax.jit(jax.grad(partial(losses.sigmoid_focal_loss, gamma=gamma,
                                   reduction="sum"), argnums=1))(x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8, err_msg=str(gamma))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_alpha_grads_match_optax(gamma):
  x, y = _binary(8, soft=True)
  fn = partial(losses.sigmoid_focal_loss, alpha=0.25, gamma=gamma, reduction="sum")
  ref = lambda x, y: optax.losses.sigmoid_focal_loss(x, y, alpha=0.25, gamma=gamma).sum()
  value, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))(x, y)
  ref_value, ref_grads = jax.jit(jax.value_and_grad(ref, argnums=(0, 1)))(x, y)
  np.testing.assert_allclose(value, ref_value, rtol=2e-5)
  for got, expected in zip(grads, ref_grads):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_focal_traced_gamma_and_alpha_grads_match_optax():
  x, y = _binary(9, soft=True)
  x[0, 0] = 1e4  # the log(1 − p_t) of d/dgamma is guarded where 1 − p_t = 0
  y[0, 0] = 1.0

  def ours(gamma, alpha):
    return losses.sigmoid_focal_loss(x, y, gamma=gamma, alpha=alpha, reduction="sum")

  def ref(gamma, alpha):
    return optax.losses.sigmoid_focal_loss(x, y, gamma=gamma, alpha=alpha).sum()

  for gamma in (0.5, 2.0):  # traced: the general (non-integer) path, also for 2.0
    value, grads = jax.jit(jax.value_and_grad(ours, argnums=(0, 1)))(gamma, 0.25)
    ref_value, ref_grads = jax.jit(jax.value_and_grad(ref, argnums=(0, 1)))(gamma, 0.25)
    np.testing.assert_allclose(value, ref_value, rtol=2e-5)
    np.testing.assert_allclose(grads, ref_grads, rtol=1e-4)
  static = jax.grad(partial(losses.sigmoid_focal_loss, gamma=2, reduction="sum"))(x, y)
  traced = jax.jit(jax.grad(lambda x, g: losses.sigmoid_focal_loss(
      x, y, gamma=g, reduction="sum")))(x, 2.0)
  np.testing.assert_allclose(static, traced, rtol=1e-5, atol=1e-7)


def test_focal_whole_gamma_uses_integer_power():
  x, y = _binary(10)
  for gamma in (2, 2.0, np.float32(3.0)):  # static whole numbers: multiplications
    jaxpr = str(jax.make_jaxpr(jax.value_and_grad(
        partial(losses.sigmoid_focal_loss, gamma=gamma)))(x, y))
    assert "integer_pow" in jaxpr and " pow " not in jaxpr, gamma
  jaxpr = str(jax.make_jaxpr(partial(losses.sigmoid_focal_loss, gamma=2.5))(x, y))
  assert " pow " in jaxpr and "integer_pow" not in jaxpr


@pytest.mark.parametrize("loss", [losses.sigmoid_focal_loss,
                                  losses.sigmoid_binary_cross_entropy])
def test_derivative_keeps_its_own_exp_through_xla(loss):
  # The custom JVPs form exp(−|x|) from x·(−1) so that XLA does not merge it with
  # the value's exp (a merged exp is written to memory between two GPU kernels;
  # see losses/_focal.py). That rests on XLA's simplifier leaving ·(−1) alone,
  # which the optimized HLO shows: one exp for the value, one for the gradient.
  x, y = _binary(16)
  hlo = jax.jit(jax.value_and_grad(loss)).lower(x, y).compile().as_text()
  assert hlo.count("exponential(") == 2


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_focal_alpha_matches_torchvision_formula(gamma):
  x, y = _binary(7)
  # torchvision.ops.sigmoid_focal_loss, as published (reduction="mean").
  inputs, targets = _torch(x), _torch(y)
  p = torch.sigmoid(inputs)
  ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
  p_t = p * targets + (1 - p) * (1 - targets)
  loss = ce * ((1 - p_t) ** gamma)
  alpha_t = 0.25 * targets + (1 - 0.25) * (1 - targets)
  expected = (alpha_t * loss).mean().numpy()
  got = jax.jit(partial(losses.sigmoid_focal_loss, alpha=0.25, gamma=gamma))(x, y)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
def test_focal_huge_logits_finite_grad(gamma):
  x = jnp.array([-1e4, -1e4, 1e4, 1e4, 0.0, 100.0, 1e4, -1e4, 30.0, -60.0])
  y = jnp.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.3, 0.3, 0.7, 1.0, 0.0])
  value, (gx, gy) = jax.jit(jax.value_and_grad(
      partial(losses.sigmoid_focal_loss, gamma=gamma, reduction="sum"),
      argnums=(0, 1)))(x, y)
  assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gx)) and jnp.all(jnp.isfinite(gy))
  gx = np.asarray(gx)
  np.testing.assert_allclose(gx[[0, 3]], [0.0, 0.0], atol=1e-30)
  np.testing.assert_allclose(gx[[1, 2]], [-1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 1.0, 3.0])
def test_focal_confident_hard_labels_grad_accurate(x64, gamma):
  # 1 − p_t → 0 here: q^(γ−1) alone overflows for γ < 1, but ce·q^(γ−1) does
  # not. float32 gradients vs optax's autodiff in float64.
  x = np.array([20.0, 40.0, 80.0, -20.0, -40.0, -80.0, 5.0, -5.0])
  y = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
  fn = partial(losses.sigmoid_focal_loss, gamma=gamma, reduction="sum")
  got = jax.jit(jax.grad(fn))(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  expected = jax.grad(lambda x: optax.losses.sigmoid_focal_loss(x, y, gamma=gamma).sum())(x)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-37)


# ----------------------------------------------------------------- softmax


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_ce_none_matches_optax(axis):
  x, y = _categorical(8, shape=(N, C) if axis == -1 else (C, N), axis=axis)
  got = jax.jit(partial(losses.softmax_cross_entropy, axis=axis, reduction="none"))(x, y)
  np.testing.assert_allclose(got, optax.losses.softmax_cross_entropy(x, y, axis=axis),
                             rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_softmax_ce_matches_torch_with_smoothing(ls):
  x, y = _categorical(9)
  expected = F.cross_entropy(_torch(x), _torch(y), label_smoothing=ls).numpy()
  got = jax.jit(partial(losses.softmax_cross_entropy, label_smoothing=ls))(x, y)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_softmax_ce_class_weights_multiply_per_example_weight():
  x, labels = _integer(10)
  onehot = np.eye(C, dtype=np.float32)[labels]
  cw = np.linspace(0.5, 2.5, C).astype(np.float32)
  # With one-hot probability targets torch weights each term and divides by N.
  expected = F.cross_entropy(_torch(x), _torch(onehot), weight=_torch(cw)).numpy()
  got = jax.jit(partial(losses.softmax_cross_entropy, class_weights=cw))(x, onehot)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  soft = _categorical(11)[1]
  per_example = losses.softmax_cross_entropy(x, soft, reduction="none")
  np.testing.assert_allclose(
      losses.softmax_cross_entropy(x, soft, class_weights=cw, reduction="none"),
      per_example * (soft @ cw), rtol=1e-5)


def test_integer_ce_none_matches_optax_and_axis_matches_torch():
  x, labels = _integer(12)
  got = jax.jit(partial(losses.softmax_cross_entropy_with_integer_labels,
                        reduction="none"))(x, labels)
  np.testing.assert_allclose(
      got, optax.losses.softmax_cross_entropy_with_integer_labels(x, labels), rtol=1e-5)
  rng = np.random.default_rng(13)
  x3 = rng.standard_normal((4, C, 6)).astype(np.float32)  # torch's (N, C, d) layout
  l3 = rng.integers(0, C, (4, 6)).astype(np.int64)
  expected = F.cross_entropy(_torch(x3), _torch(l3), label_smoothing=0.2).numpy()
  got = losses.softmax_cross_entropy_with_integer_labels(x3, l3, axis=1,
                                                         label_smoothing=0.2)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.25])
def test_integer_ce_matches_torch_label_smoothing(ls):
  x, labels = _integer(14)
  expected = F.cross_entropy(_torch(x), _torch(labels).long(), label_smoothing=ls)
  got = jax.jit(partial(losses.softmax_cross_entropy_with_integer_labels,
                        label_smoothing=ls))(x, labels)
  np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)


@pytest.mark.parametrize("ignore", [False, True])
def test_integer_ce_class_weights_weighted_mean_matches_torch(ignore):
  x, labels = _integer(15)
  if ignore:
    labels[[1, 4, 5]] = -100
  cw = np.linspace(0.2, 3.0, C).astype(np.float32)
  xt = _torch(x).requires_grad_()
  expected = F.cross_entropy(xt, _torch(labels).long(), weight=_torch(cw),
                             ignore_index=-100)
  expected.backward()
  fn = partial(losses.softmax_cross_entropy_with_integer_labels, class_weights=cw,
               ignore_index=-100 if ignore else None, reduction="weighted_mean")
  value, grad = jax.jit(jax.value_and_grad(fn))(x, labels)
  np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-5)
  np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_integer_ce_ignore_index_mean_matches_torch_and_bad_label_is_nan():
  x, labels = _integer(16)
  labels[[0, 3]] = -100
  expected = F.cross_entropy(_torch(x), _torch(labels).long(), ignore_index=-100)
  fn = jax.jit(partial(losses.softmax_cross_entropy_with_integer_labels,
                       ignore_index=-100))
  np.testing.assert_allclose(fn(x, labels), expected.numpy(), rtol=1e-5)
  labels[0] = C  # out of range, not ignored: loud, since jit cannot raise
  assert np.isnan(fn(x, labels))


def test_integer_ce_masked_out_of_range_labels_are_safe():
  x, labels = _integer(29)
  labels[[2, 6]] = [-1, C + 3]  # e.g. padding, excluded by where
  where = np.ones(N, bool)
  where[[2, 6]] = False
  fn = partial(losses.softmax_cross_entropy_with_integer_labels, where=where)
  value, grad = jax.jit(jax.value_and_grad(fn))(x, labels)
  expected = optax.losses.softmax_cross_entropy_with_integer_labels(x[where], labels[where])
  np.testing.assert_allclose(value, expected.mean(), rtol=1e-5)
  assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[[2, 6]] == 0)


def test_softmax_losses_huge_logits():
  x = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]])
  labels = jnp.array([1, 0, 2])
  onehot = jax.nn.one_hot(labels, 3)
  for fn, y in ((losses.softmax_cross_entropy, onehot),
                (losses.softmax_cross_entropy_with_integer_labels, labels)):
    value, grad = jax.jit(jax.value_and_grad(partial(fn, reduction="sum")))(x, y)
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad))
    np.testing.assert_allclose(value, 2e4 + 2e4 + np.log(2) + 1e4 + np.log(2), rtol=1e-6)


def test_categorical_ce_matches_keras_formula():
  rng = np.random.default_rng(17)
  p = rng.uniform(size=(N, C)).astype(np.float32) * 3
  p[0] = [0.0, 0.0, 1.0, 0.0, 0.0]  # exact 0 and 1
  p[1, 2] = 0.0
  y = _categorical(18)[1]
  eps = 1e-7
  q = p / p.sum(-1, keepdims=True)
  expected = (-(y * np.log(np.clip(q, eps, 1 - eps))).sum(-1)).mean()
  value, grad = jax.jit(jax.value_and_grad(losses.categorical_cross_entropy))(p, y)
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  assert np.all(np.isfinite(grad))


def test_hinge_none_matches_optax():
  x, y = CASES["hinge_loss"][1](19)
  got = jax.jit(partial(losses.hinge_loss, reduction="none"))(x, y)
  np.testing.assert_allclose(got, optax.losses.hinge_loss(x, y), rtol=1e-6)


# ------------------------------------------ contract shared by every loss


def _per_example_shape(name, a):
  return a.shape[:-1] if name.startswith(("softmax", "categorical")) else a.shape


@pytest.mark.parametrize("name", NAMES)
def test_reductions_weights_and_where(name):
  fn, make = CASES[name]
  a, b = make(20)
  shape = _per_example_shape(name, a)
  rng = np.random.default_rng(21)
  w = rng.uniform(0.0, 2.0, shape[:1] + (1,) * (len(shape) - 1)).astype(np.float32)
  where = rng.uniform(size=shape) < 0.7

  @jax.jit
  def all_reductions(a, b):
    return {r: fn(a, b, weights=w, where=where, reduction=r)
            for r in ("none", "sum", "mean", "weighted_mean")}

  out = all_reductions(a, b)
  plain = np.asarray(fn(a, b, reduction="none"))
  w_full = np.broadcast_to(w, shape)
  expected_none = np.where(where, plain * w_full, 0)
  np.testing.assert_allclose(out["none"], expected_none, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jnp.sum(out["none"]), out["sum"], rtol=1e-5)
  np.testing.assert_allclose(out["mean"], expected_none.sum() / where.sum(), rtol=1e-5)
  np.testing.assert_allclose(out["weighted_mean"],
                             expected_none.sum() / (w_full * where).sum(), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_all_masked_and_nan_masked_inputs(name):
  fn, make = CASES[name]
  a, b = make(22)
  shape = _per_example_shape(name, a)
  vg = jax.jit(jax.value_and_grad(fn))
  value, grad = vg(a, b, where=np.zeros(shape, bool))
  assert value == 0.0 and np.all(np.asarray(grad) == 0)
  where = np.ones(shape, bool)
  where[1] = False
  a_bad = a.copy()
  a_bad[1] = np.nan
  value, grad = vg(a_bad, b, where=where)
  expected = np.asarray(fn(a, b, reduction="none"))[where].mean()
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_is_finite_and_close(name, dtype):
  fn, make = CASES[name]
  a, b = make(23)
  a = np.array(a)
  if name in ("sigmoid_binary_cross_entropy", "sigmoid_focal_loss"):
    a[0, :2] = [1e4, -1e4]
  if name == "binary_cross_entropy":
    a[0, :2] = [0.0, 1.0]
  b_half = b if b.dtype.kind == "i" else jnp.asarray(b, dtype)
  vg = jax.jit(jax.value_and_grad(fn))
  value, grad = vg(jnp.asarray(a, dtype), b_half)
  assert value.dtype == dtype and grad.dtype == dtype
  assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad))
  ref, _ = vg(jnp.asarray(a, dtype).astype(jnp.float32),
              b if b.dtype.kind == "i" else jnp.asarray(b_half, jnp.float32))
  np.testing.assert_allclose(float(value), float(ref), rtol=2e-2)


def test_vmap_per_example_equals_none():
  x, y = _categorical(24)
  per_example = jax.vmap(losses.softmax_cross_entropy)(x, y)
  np.testing.assert_allclose(
      per_example, losses.softmax_cross_entropy(x, y, reduction="none"), rtol=1e-6)
  xb, yb = _binary(25)
  np.testing.assert_allclose(
      jax.vmap(losses.sigmoid_focal_loss)(xb, yb),
      losses.sigmoid_focal_loss(xb, yb, reduction="none").mean(axis=1), rtol=1e-6)


def test_no_retrace_for_same_shapes():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, labels):
    return (losses.softmax_cross_entropy_with_integer_labels(x, labels, ignore_index=-1)
            + losses.sigmoid_focal_loss(x, jax.nn.one_hot(labels, C)))

  x, labels = _integer(26)
  step(x, labels)
  step(x + 1, labels[::-1])


# ------------------------------------------------------------------ errors


def test_errors_name_the_argument():
  x, y = _binary(27)
  xi, li = _integer(27)
  bce = losses.binary_cross_entropy
  sce = losses.softmax_cross_entropy_with_integer_labels
  with pytest.raises(ValueError, match="logits"):
    losses.sigmoid_binary_cross_entropy(x, y[:, :2])
  with pytest.raises(TypeError, match="logits"):
    losses.sigmoid_focal_loss(np.arange(4), np.ones(4))
  with pytest.raises(TypeError, match="probs"):
    bce(np.ones(4, np.int32), np.ones(4))
  with pytest.raises(TypeError, match="predictions"):
    losses.hinge_loss(np.ones(4, np.int32), np.ones(4))
  with pytest.raises(TypeError, match="labels"):
    sce(xi, li.astype(np.float32))
  with pytest.raises(ValueError, match="labels"):
    sce(xi, li[:3])
  for ls in (-0.1, 1.5):
    with pytest.raises(ValueError, match="label_smoothing"):
      losses.softmax_cross_entropy(xi, np.eye(C)[li], label_smoothing=ls)
    with pytest.raises(ValueError, match="label_smoothing"):
      bce(y * 0.5, y, label_smoothing=ls)
  for eps in (0.0, 0.5, -1e-7):
    with pytest.raises(ValueError, match="epsilon"):
      bce(y * 0.5, y, epsilon=eps)
    with pytest.raises(ValueError, match="epsilon"):
      losses.categorical_cross_entropy(np.eye(C)[li], np.eye(C)[li], epsilon=eps)
  with pytest.raises(ValueError, match="positive_weight"):
    losses.sigmoid_binary_cross_entropy(x, y, positive_weight=-1.0)
  with pytest.raises(ValueError, match="gamma"):
    losses.sigmoid_focal_loss(x, y, gamma=-0.5)
  with pytest.raises(ValueError, match="alpha"):
    losses.sigmoid_focal_loss(x, y, alpha=1.5)
  with pytest.raises(ValueError, match=rf"class_weights.*{C}"):
    sce(xi, li, class_weights=np.ones(C + 1))
  with pytest.raises(ValueError, match=rf"class_weights.*{C}"):
    losses.softmax_cross_entropy(xi, np.eye(C)[li], class_weights=np.ones((C, 1)))
  with pytest.raises(ValueError, match="axis"):
    losses.softmax_cross_entropy(xi, np.eye(C)[li], axis=2)
  with pytest.raises(ValueError, match="weights"):
    sce(xi, li, class_weights=np.ones(C), weights=np.ones(3))
