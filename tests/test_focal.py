"""Tests for lossreg_jax.losses.sigmoid_focal_loss against optax, torchvision's formula
and finite differences."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from lossreg_jax import losses
from classification_inputs import binary_inputs, to_torch


FOCAL_GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.0]  # 0, 1, 2, 3 take the integer-power path


@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
@pytest.mark.parametrize("soft", [False, True])
def test_focal_none_matches_optax(gamma, soft):
  x, y = binary_inputs(6, soft=soft)
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
  x, y = binary_inputs(11)
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
  x, y = binary_inputs(8, soft=True)
  fn = partial(losses.sigmoid_focal_loss, alpha=0.25, gamma=gamma, reduction="sum")
  ref = lambda x, y: optax.losses.sigmoid_focal_loss(x, y, alpha=0.25, gamma=gamma).sum()
  value, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))(x, y)
  ref_value, ref_grads = jax.jit(jax.value_and_grad(ref, argnums=(0, 1)))(x, y)
  np.testing.assert_allclose(value, ref_value, rtol=2e-5)
  for got, expected in zip(grads, ref_grads):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_focal_traced_gamma_and_alpha_grads_match_optax():
  x, y = binary_inputs(9, soft=True)
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
  x, y = binary_inputs(10)
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
  x, y = binary_inputs(16)
  hlo = jax.jit(jax.value_and_grad(loss)).lower(x, y).compile().as_text()
  assert hlo.count("exponential(") == 2


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_focal_alpha_matches_torchvision_formula(gamma):
  x, y = binary_inputs(7)
  # torchvision.ops.sigmoid_focal_loss, as published (reduction="mean").
  inputs, targets = to_torch(x), to_torch(y)
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


def test_log1p_unit_is_as_accurate_as_log1p_and_replaces_it():
  # log1p_unit (losses/_focal.py) replaces jnp.log1p in the sigmoid BCE and the
  # focal loss: on a CPU XLA's own log1p is about 2x slower (its docstring). It
  # must stay within 2 float32 ulps of the exact log1p on [0, 1], and the
  # compiled losses must not fall back to XLA's log-plus-one.
  from lossreg_jax.losses._focal import log1p_unit
  e = np.concatenate([np.exp(-np.linspace(0, 87, 20001)), [0.0]]).astype(np.float32)
  got = np.asarray(jax.jit(log1p_unit)(e), np.float64)
  exact = np.log1p(e.astype(np.float64))
  keep = exact > 1e-37
  assert np.max(np.abs(got[keep] - exact[keep]) / exact[keep]) <= 2 * 2.0**-23
  assert got[-1] == 0.0
  x, y = binary_inputs(17)
  for loss in (losses.sigmoid_binary_cross_entropy, losses.sigmoid_focal_loss):
    hlo = jax.jit(jax.value_and_grad(loss)).lower(x, y).compile().as_text()
    assert "log-plus-one(" not in hlo, loss.__name__
