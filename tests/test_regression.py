"""Tests for lossreg_jax.losses.regression against optax, PyTorch, scikit-learn and numpy."""

from __future__ import annotations

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from sklearn import metrics as skm

from lossreg_jax import losses

ALL = {
    "squared_error": (losses.squared_error, {}),
    "absolute_error": (losses.absolute_error, {}),
    "huber_loss": (losses.huber_loss, {"delta": 0.7}),
    "smooth_l1_loss": (losses.smooth_l1_loss, {"beta": 0.5}),
    "log_cosh": (losses.log_cosh, {}),
    "quantile_loss": (losses.quantile_loss, {"quantile": 0.8}),
    "asymmetric_squared_error": (
        losses.asymmetric_squared_error, {"under_weight": 2.0, "over_weight": 0.3}),
}
NAMES = sorted(ALL)


def _data(seed=0, shape=(7, 5), scale=2.0):
  rng = np.random.default_rng(seed)
  p = (scale * rng.standard_normal(shape)).astype(np.float32)
  t = (scale * rng.standard_normal(shape)).astype(np.float32)
  return p, t


def _loss(name, **extra):
  fn, kw = ALL[name]
  return partial(fn, **kw, **extra)


# ------------------------------------------------------ outside references


@pytest.mark.parametrize("name,ref,kw", [
    ("squared_error", optax.losses.squared_error, {}),
    ("huber_loss", optax.losses.huber_loss, {"delta": 0.7}),
    ("log_cosh", optax.losses.log_cosh, {}),
])
def test_none_matches_optax(name, ref, kw):
  p, t = _data(1)
  got = jax.jit(_loss(name, reduction="none"))(p, t)
  np.testing.assert_allclose(got, ref(p, t, **kw), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,ref", [
    ("squared_error", lambda p, t: torch.nn.functional.mse_loss(p, t)),
    ("absolute_error", lambda p, t: torch.nn.functional.l1_loss(p, t)),
    ("huber_loss", lambda p, t: torch.nn.functional.huber_loss(p, t, delta=0.7)),
    ("smooth_l1_loss", lambda p, t: torch.nn.functional.smooth_l1_loss(p, t, beta=0.5)),
])
def test_mean_matches_torch(name, ref):
  p, t = _data(2)
  expected = ref(torch.tensor(p), torch.tensor(t)).numpy()
  np.testing.assert_allclose(jax.jit(_loss(name))(p, t), expected, rtol=1e-5)


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9])
def test_quantile_matches_sklearn_pinball(quantile):
  p, t = _data(3, shape=(50,))
  w = np.random.default_rng(4).uniform(0.1, 2.0, 50).astype(np.float32)
  fn = jax.jit(partial(losses.quantile_loss, quantile=quantile))
  np.testing.assert_allclose(fn(p, t), skm.mean_pinball_loss(t, p, alpha=quantile),
                             rtol=1e-5)
  weighted = partial(losses.quantile_loss, quantile=quantile, weights=w,
                     reduction="weighted_mean")
  np.testing.assert_allclose(
      jax.jit(weighted)(p, t),
      skm.mean_pinball_loss(t, p, alpha=quantile, sample_weight=w), rtol=1e-5)


def test_squared_and_absolute_match_sklearn_with_sample_weight():
  p, t = _data(5, shape=(40,))
  w = np.random.default_rng(6).uniform(0.0, 3.0, 40).astype(np.float32)
  mse = jax.jit(partial(losses.squared_error, weights=w, reduction="weighted_mean"))
  mae = jax.jit(partial(losses.absolute_error, weights=w, reduction="weighted_mean"))
  np.testing.assert_allclose(mse(p, t), skm.mean_squared_error(t, p, sample_weight=w),
                             rtol=1e-5)
  np.testing.assert_allclose(mae(p, t), skm.mean_absolute_error(t, p, sample_weight=w),
                             rtol=1e-5)


@pytest.mark.parametrize("under_weight,over_weight", [(1.0, 0.1), (0.2, 5.0)])
def test_asymmetric_matches_seed_financial_loss(under_weight, over_weight):
  y_pred, y_true = _data(7, shape=(60,))
  expected = np.mean(
      np.where(y_pred < y_true, under_weight, over_weight) * (y_true - y_pred) ** 2)
  fn = jax.jit(partial(losses.asymmetric_squared_error, under_weight=under_weight,
                       over_weight=over_weight))
  np.testing.assert_allclose(fn(y_pred, y_true), expected, rtol=1e-5)


def test_smooth_l1_is_huber_over_beta():
  p, t = _data(8)
  np.testing.assert_allclose(
      losses.smooth_l1_loss(p, t, beta=0.4),
      losses.huber_loss(p, t, delta=0.4) / 0.4, rtol=1e-6)


# ------------------------------------------------------------ reductions


@pytest.mark.parametrize("name", NAMES)
def test_reductions_weights_and_where(name):
  p, t = _data(9)
  rng = np.random.default_rng(10)
  w = rng.uniform(0.0, 2.0, (7, 1)).astype(np.float32)  # per-row weights
  where = rng.uniform(size=(7, 5)) < 0.7

  @jax.jit
  def all_reductions(p, t):
    fn = _loss(name)
    return {r: fn(p, t, weights=w, where=where, reduction=r)
            for r in ("none", "sum", "mean", "weighted_mean")}

  out = all_reductions(p, t)
  plain = np.asarray(_loss(name, reduction="none")(p, t))
  w_full = np.broadcast_to(w, plain.shape)
  expected_none = np.where(where, plain * w_full, 0)
  np.testing.assert_allclose(out["none"], expected_none, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jnp.sum(out["none"]), out["sum"], rtol=1e-5)
  np.testing.assert_allclose(out["sum"], expected_none.sum(), rtol=1e-5)
  np.testing.assert_allclose(out["mean"], expected_none.sum() / where.sum(), rtol=1e-5)
  np.testing.assert_allclose(out["weighted_mean"],
                             expected_none.sum() / (w_full * where).sum(), rtol=1e-5)


# -------------------------------------------------------------- extremes


@pytest.mark.parametrize("name", NAMES)
def test_all_masked_gives_zero_and_zero_grad(name):
  p, t = _data(11, shape=(6,))
  where = np.zeros(6, bool)
  for reduction in ("mean", "weighted_mean"):
    fn = jax.jit(jax.value_and_grad(_loss(name, where=where, reduction=reduction)))
    value, grad = fn(p, t)
    assert value == 0.0
    np.testing.assert_array_equal(grad, np.zeros(6, np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_masked_inputs_gives_finite_grads(name):
  p, t = _data(12, shape=(6,))
  where = np.array([True, False, True, True, False, True])
  p_bad, t_bad = p.copy(), t.copy()
  p_bad[1], t_bad[4], p_bad[4] = np.nan, np.inf, -np.inf
  fn = jax.jit(jax.value_and_grad(_loss(name, where=where)))
  value, grad = fn(p_bad, t_bad)
  expected = np.asarray(_loss(name, reduction="none")(p, t))[where].mean()
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  assert np.all(np.isfinite(grad)) and np.all(grad[~where] == 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_is_finite_and_close(name, dtype):
  p, t = _data(13, shape=(32,), scale=3.0)
  fn = jax.jit(jax.value_and_grad(_loss(name)))
  value, grad = fn(jnp.asarray(p, dtype), jnp.asarray(t, dtype))
  assert value.dtype == dtype and grad.dtype == dtype
  assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad))
  ref_value, _ = fn(jnp.asarray(p, dtype).astype(jnp.float32),
                    jnp.asarray(t, dtype).astype(jnp.float32))
  np.testing.assert_allclose(float(value), float(ref_value), rtol=2e-2)


def test_log_cosh_is_stable_for_huge_errors():
  p = jnp.array([-1e4, -100.0, 0.0, 100.0, 1e4], jnp.float32)
  value, grad = jax.jit(jax.value_and_grad(losses.log_cosh))(p, jnp.zeros(5))
  expected = np.log(np.cosh(np.float64(p[1:4])))
  np.testing.assert_allclose(losses.log_cosh(p, jnp.zeros(5), reduction="none"),
                             [1e4 - np.log(2), *expected, 1e4 - np.log(2)], rtol=1e-6)
  assert jnp.isfinite(value)
  np.testing.assert_allclose(grad, np.tanh(np.float64(p)) / 5, rtol=1e-6)


# -------------------------------------------------- transformations, traces


def test_grad_of_squared_error_and_vmap_per_example():
  p, t = _data(14, shape=(4, 3))
  grad = jax.jit(jax.grad(losses.squared_error))(p, t)
  np.testing.assert_allclose(grad, 2 * (p - t) / p.size, rtol=1e-6)
  per_example = jax.vmap(partial(losses.huber_loss, delta=0.7))(p, t)
  np.testing.assert_allclose(
      per_example, losses.huber_loss(p, t, delta=0.7, reduction="none").mean(axis=1),
      rtol=1e-6)


def test_grad_with_respect_to_delta_and_quantile():
  p, t = _data(15, shape=(10,))
  g_delta = jax.grad(lambda d: losses.huber_loss(p, t, delta=d))(0.5)
  g_quant = jax.grad(lambda q: losses.quantile_loss(p, t, quantile=q))(0.3)
  err = np.abs(p - t)
  np.testing.assert_allclose(g_delta, np.mean(np.where(err > 0.5, err - 0.5, 0)),
                             rtol=1e-5)
  np.testing.assert_allclose(g_quant, np.mean(t - p), rtol=1e-5)


def test_no_retrace_for_same_shapes():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(p, t):
    return losses.huber_loss(p, t, delta=2.0) + losses.quantile_loss(p, t, quantile=0.3)

  p, t = _data(16)
  step(p, t)
  step(p + 1, t - 1)


# ------------------------------------------------------------------ errors


def test_errors_name_the_argument():
  p, t = _data(17, shape=(4,))
  with pytest.raises(ValueError, match="predictions"):
    losses.squared_error(p, t[:3])
  with pytest.raises(TypeError, match="predictions"):
    losses.absolute_error(np.arange(4), t)
  with pytest.raises(ValueError, match="delta"):
    losses.huber_loss(p, t, delta=0.0)
  with pytest.raises(ValueError, match="beta"):
    losses.smooth_l1_loss(p, t, beta=-1.0)
  for q in (0.0, 1.0, 1.5):
    with pytest.raises(ValueError, match="quantile"):
      losses.quantile_loss(p, t, quantile=q)
  with pytest.raises(ValueError, match="under_weight"):
    losses.asymmetric_squared_error(p, t, under_weight=-1.0)
  with pytest.raises(ValueError, match="over_weight"):
    losses.asymmetric_squared_error(p, t, over_weight=-0.1)
  with pytest.raises(ValueError, match="reduction"):
    losses.log_cosh(p, t, reduction="avg")
  with pytest.raises(ValueError, match="weights"):
    losses.squared_error(p, t, weights=np.ones(3))
  with pytest.raises(TypeError, match="where"):
    losses.squared_error(p, t, where=np.ones(4))
