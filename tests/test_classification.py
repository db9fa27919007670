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
from classification_inputs import (C, N, binary_inputs, categorical_inputs,
                                   integer_label_inputs, probability_inputs, to_torch)

# name -> (loss, inputs(seed)); every case has a per-example loss of shape (N,) or (N, 3).
CASES = {
    "binary_cross_entropy": (partial(losses.binary_cross_entropy, positive_weight=2.0),
                             probability_inputs),
    "sigmoid_binary_cross_entropy": (
        partial(losses.sigmoid_binary_cross_entropy, positive_weight=3.0), binary_inputs),
    "sigmoid_focal_loss": (partial(losses.sigmoid_focal_loss, alpha=0.25), binary_inputs),
    "softmax_cross_entropy": (
        partial(losses.softmax_cross_entropy, label_smoothing=0.1), categorical_inputs),
    "softmax_cross_entropy_with_integer_labels": (
        partial(losses.softmax_cross_entropy_with_integer_labels, label_smoothing=0.1),
        integer_label_inputs),
    "categorical_cross_entropy": (
        losses.categorical_cross_entropy,
        lambda s: (np.array(jax.nn.softmax(categorical_inputs(s)[0])), categorical_inputs(s)[1])),
    "hinge_loss": (losses.hinge_loss,
                   lambda s: (binary_inputs(s)[0], 2 * binary_inputs(s)[1] - 1)),
}
NAMES = sorted(CASES)


# --------------------------------------------------- binary, on probabilities


@pytest.mark.parametrize("w", [1.0, 5.0])
def test_bce_matches_seed_weighted_formula(w):
  p, y = probability_inputs(1)
  eps = 1e-7
  bce = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
  expected = np.where(y == 1, w * bce, bce).mean()
  got = jax.jit(partial(losses.binary_cross_entropy, positive_weight=w))(p, y)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_bce_matches_keras_formula_and_torch(ls):
  p, y = probability_inputs(2)
  p[0, :2] = [0.0, 1.0]  # clipped as Keras does
  eps = 1e-7
  ys = y * (1 - ls) + 0.5 * ls
  # Keras clips in the input dtype (float32), where 1 - 1e-7 is 0.99999988.
  pc = np.clip(p, np.float32(eps), np.float32(1 - eps)).astype(np.float64)
  keras = -(ys * np.log(pc) + (1 - ys) * np.log(1 - pc)).mean()
  got = jax.jit(partial(losses.binary_cross_entropy, label_smoothing=ls))(p, y)
  np.testing.assert_allclose(got, keras, rtol=1e-5)
  torch_ref = F.binary_cross_entropy(to_torch(p[1:]), to_torch(ys[1:])).numpy()
  np.testing.assert_allclose(
      losses.binary_cross_entropy(p[1:], y[1:], label_smoothing=ls), torch_ref, rtol=1e-5)


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_bce_grads_match_torch_and_autodiff_of_the_formula(w):
  p, y = probability_inputs(5)
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
    tp = to_torch(p).requires_grad_()
    F.binary_cross_entropy(tp, to_torch(y), reduction="sum").backward()
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
  x, y = binary_inputs(3, soft=True)
  got = jax.jit(partial(losses.sigmoid_binary_cross_entropy, reduction="none"))(x, y)
  np.testing.assert_allclose(got, optax.losses.sigmoid_binary_cross_entropy(x, y),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pos_weight", [1.0, 2.0, 0.5])
def test_sigmoid_bce_matches_torch_value_and_grad(pos_weight):
  x, y = binary_inputs(4)
  xt = to_torch(x).requires_grad_()
  expected = F.binary_cross_entropy_with_logits(xt, to_torch(y),
                                                pos_weight=torch.tensor(pos_weight))
  expected.backward()
  fn = partial(losses.sigmoid_binary_cross_entropy, positive_weight=pos_weight)
  value, grad = jax.jit(jax.value_and_grad(fn))(x, y)
  np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-6)
  np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_sigmoid_bce_grads_for_labels_and_positive_weight_match_torch():
  x, y = binary_inputs(28, soft=True)
  xt, yt = to_torch(x), to_torch(y).requires_grad_()
  pwt = torch.tensor(2.5, requires_grad=True)
  # torch cannot differentiate pos_weight: its documented formula, in torch autograd.
  log_weight = (pwt - 1) * yt + 1
  ((1 - yt) * xt + log_weight * F.softplus(-xt)).mean().backward()
  fn = lambda y, pw: losses.sigmoid_binary_cross_entropy(x, y, positive_weight=pw)
  g_y, g_pw = jax.jit(jax.grad(fn, argnums=(0, 1)))(y, 2.5)
  np.testing.assert_allclose(g_y, yt.grad.numpy(), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(g_pw, pwt.grad.numpy(), rtol=1e-5)


def test_sigmoid_bce_label_smoothing_and_per_column_positive_weight():
  x, y = binary_inputs(5)
  pw = np.array([1.0, 2.0, 4.0], np.float32)
  ys = y * 0.8 + 0.1
  expected = F.binary_cross_entropy_with_logits(to_torch(x), to_torch(ys),
                                                pos_weight=to_torch(pw)).numpy()
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


# ----------------------------------------------------------------- softmax


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_ce_none_matches_optax(axis):
  x, y = categorical_inputs(8, shape=(N, C) if axis == -1 else (C, N), axis=axis)
  got = jax.jit(partial(losses.softmax_cross_entropy, axis=axis, reduction="none"))(x, y)
  np.testing.assert_allclose(got, optax.losses.softmax_cross_entropy(x, y, axis=axis),
                             rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_softmax_ce_matches_torch_with_smoothing(ls):
  x, y = categorical_inputs(9)
  expected = F.cross_entropy(to_torch(x), to_torch(y), label_smoothing=ls).numpy()
  got = jax.jit(partial(losses.softmax_cross_entropy, label_smoothing=ls))(x, y)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_softmax_ce_class_weights_multiply_per_example_weight():
  x, labels = integer_label_inputs(10)
  onehot = np.eye(C, dtype=np.float32)[labels]
  cw = np.linspace(0.5, 2.5, C).astype(np.float32)
  # With one-hot probability targets torch weights each term and divides by N.
  expected = F.cross_entropy(to_torch(x), to_torch(onehot), weight=to_torch(cw)).numpy()
  got = jax.jit(partial(losses.softmax_cross_entropy, class_weights=cw))(x, onehot)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  soft = categorical_inputs(11)[1]
  per_example = losses.softmax_cross_entropy(x, soft, reduction="none")
  np.testing.assert_allclose(
      losses.softmax_cross_entropy(x, soft, class_weights=cw, reduction="none"),
      per_example * (soft @ cw), rtol=1e-5)


def test_integer_ce_none_matches_optax_and_axis_matches_torch():
  x, labels = integer_label_inputs(12)
  got = jax.jit(partial(losses.softmax_cross_entropy_with_integer_labels,
                        reduction="none"))(x, labels)
  np.testing.assert_allclose(
      got, optax.losses.softmax_cross_entropy_with_integer_labels(x, labels), rtol=1e-5)
  rng = np.random.default_rng(13)
  x3 = rng.standard_normal((4, C, 6)).astype(np.float32)  # torch's (N, C, d) layout
  l3 = rng.integers(0, C, (4, 6)).astype(np.int64)
  expected = F.cross_entropy(to_torch(x3), to_torch(l3), label_smoothing=0.2).numpy()
  got = losses.softmax_cross_entropy_with_integer_labels(x3, l3, axis=1,
                                                         label_smoothing=0.2)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.25])
def test_integer_ce_matches_torch_label_smoothing(ls):
  x, labels = integer_label_inputs(14)
  expected = F.cross_entropy(to_torch(x), to_torch(labels).long(), label_smoothing=ls)
  got = jax.jit(partial(losses.softmax_cross_entropy_with_integer_labels,
                        label_smoothing=ls))(x, labels)
  np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)


@pytest.mark.parametrize("ignore", [False, True])
def test_integer_ce_class_weights_weighted_mean_matches_torch(ignore):
  x, labels = integer_label_inputs(15)
  if ignore:
    labels[[1, 4, 5]] = -100
  cw = np.linspace(0.2, 3.0, C).astype(np.float32)
  xt = to_torch(x).requires_grad_()
  expected = F.cross_entropy(xt, to_torch(labels).long(), weight=to_torch(cw),
                             ignore_index=-100)
  expected.backward()
  fn = partial(losses.softmax_cross_entropy_with_integer_labels, class_weights=cw,
               ignore_index=-100 if ignore else None, reduction="weighted_mean")
  value, grad = jax.jit(jax.value_and_grad(fn))(x, labels)
  np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-5)
  np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_integer_ce_ignore_index_mean_matches_torch_and_bad_label_is_nan():
  x, labels = integer_label_inputs(16)
  labels[[0, 3]] = -100
  expected = F.cross_entropy(to_torch(x), to_torch(labels).long(), ignore_index=-100)
  fn = jax.jit(partial(losses.softmax_cross_entropy_with_integer_labels,
                       ignore_index=-100))
  np.testing.assert_allclose(fn(x, labels), expected.numpy(), rtol=1e-5)
  labels[0] = C  # out of range, not ignored: loud, since jit cannot raise
  assert np.isnan(fn(x, labels))
  with pytest.raises(ValueError, match=rf"labels.*\[0, {C}\)"):  # concrete: raises
    losses.softmax_cross_entropy_with_integer_labels(x, labels, ignore_index=-100)


def test_integer_ce_masked_out_of_range_labels_are_safe():
  x, labels = integer_label_inputs(29)
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
  y = categorical_inputs(18)[1]
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
  x, y = categorical_inputs(24)
  per_example = jax.vmap(losses.softmax_cross_entropy)(x, y)
  np.testing.assert_allclose(
      per_example, losses.softmax_cross_entropy(x, y, reduction="none"), rtol=1e-6)
  xb, yb = binary_inputs(25)
  np.testing.assert_allclose(
      jax.vmap(losses.sigmoid_focal_loss)(xb, yb),
      losses.sigmoid_focal_loss(xb, yb, reduction="none").mean(axis=1), rtol=1e-6)


def test_no_retrace_for_same_shapes():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, labels):
    return (losses.softmax_cross_entropy_with_integer_labels(x, labels, ignore_index=-1)
            + losses.sigmoid_focal_loss(x, jax.nn.one_hot(labels, C)))

  x, labels = integer_label_inputs(26)
  step(x, labels)
  step(x + 1, labels[::-1])


# ------------------------------------------------------------------ errors


def test_errors_name_the_argument():
  x, y = binary_inputs(27)
  xi, li = integer_label_inputs(27)
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


def test_binary_losses_refuse_labels_and_probs_outside_unit_interval():
  # Issue 22: labels of 2 or −1 (and probabilities outside [0, 1]) were taken,
  # giving a negative or meaningless loss. Concrete included entries are
  # checked; entries excluded by where may hold anything, and traced values
  # (under jit) pass unchecked, as the integer-label range check.
  x = np.float32([0.3, -1.2, 2.0, 0.1])
  p = np.float32([0.3, 0.9, 0.5, 0.1])
  bad_labels = {"2": np.float32([1, 2, 0, 1]), "-1": np.float32([1, -1, 0, 1]),
                "nan": np.float32([1, np.nan, 0, 1])}
  keep = np.array([True, False, True, True])
  cases = [(losses.binary_cross_entropy, p), (losses.sigmoid_binary_cross_entropy, x),
           (losses.sigmoid_focal_loss, x)]
  for fn, first in cases:
    for text, labels in bad_labels.items():
      with pytest.raises(ValueError, match=rf"^labels must be in \[0, 1\], got labels\[1\]={text} "):
        fn(first, labels)
      with pytest.raises(ValueError, match=r"labels\[1, 0\]="):  # per-sample where, (N, 1)
        fn(first[:, None], labels[:, None], where=np.array([True, True, False, True]))
      # Excluded: the loss of the other entries, exactly.
      clean = labels.copy()
      clean[1] = 0.0
      assert float(fn(first, labels, where=keep)) == float(fn(first, clean, where=keep))
      assert np.isfinite(float(jax.jit(fn)(first, clean)))
    jax.jit(fn)(first, bad_labels["2"])  # traced: unchecked (documented)
  for text, probs in (("1.5", np.float32([0.3, 1.5, 0.5, 0.1])),
                      ("-0.2", np.float32([0.3, -0.2, 0.5, 0.1]))):
    with pytest.raises(ValueError, match=rf"^probs must be in \[0, 1\], got probs\[1\]={text} "):
      losses.binary_cross_entropy(probs, np.float32([1, 0, 0, 1]))
    losses.binary_cross_entropy(probs, np.float32([1, 0, 0, 1]), where=keep)  # excluded
  # The ends are legal: probabilities 0 and 1, hard and soft labels.
  np.testing.assert_allclose(
      losses.binary_cross_entropy(np.float32([0, 1, 0.5]), np.float32([0, 1, 0.25]),
                                  reduction="none"),
      [1e-7, 1e-7, np.log(2)], rtol=1e-6, atol=3e-8)  # −log(1 − ε) in float32
