"""Tests for the regression metrics against scikit-learn."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from lossreg_jax import metrics

N = 40

OURS = {
    "mean_squared_error": metrics.mean_squared_error,
    "root_mean_squared_error": metrics.root_mean_squared_error,
    "mean_absolute_error": metrics.mean_absolute_error,
    "r2_score": metrics.r2_score,
    "mean_pinball_loss": metrics.mean_pinball_loss,
    "mean_pinball_loss/0.9": partial(metrics.mean_pinball_loss, alpha=0.9),
    "underprediction_rate": metrics.underprediction_rate,
}


def _underprediction_rate(y_true, y_pred, sample_weight=None):
  # The direct NumPy definition, per output then averaged (no scikit-learn twin).
  below = (np.asarray(y_pred) < np.asarray(y_true)).reshape(len(y_true), -1)
  return np.mean(np.average(below, axis=0, weights=sample_weight))


SK = {
    "mean_squared_error": skm.mean_squared_error,
    "root_mean_squared_error": skm.root_mean_squared_error,
    "mean_absolute_error": skm.mean_absolute_error,
    "r2_score": skm.r2_score,
    "mean_pinball_loss": skm.mean_pinball_loss,
    "mean_pinball_loss/0.9": partial(skm.mean_pinball_loss, alpha=0.9),
    "underprediction_rate": _underprediction_rate,
}


def _data(seed, outputs=None):
  rng = np.random.default_rng(seed)
  shape = (N,) if outputs is None else (N, outputs)
  targets = rng.normal(size=shape).astype(np.float32)
  predictions = (targets + rng.normal(scale=0.7, size=shape)).astype(np.float32)
  weights = rng.uniform(0.1, 3.0, N).astype(np.float32)
  return predictions, targets, weights, rng.random(N) < 0.7


@pytest.mark.parametrize("name", sorted(OURS))
@pytest.mark.parametrize("outputs", [None, 3])
def test_matches_sklearn_plain_weighted_masked_and_jitted(name, outputs):
  ours, theirs = jax.jit(OURS[name]), SK[name]
  p, t, w, m = _data(sorted(OURS).index(name), outputs)
  np.testing.assert_allclose(ours(p, t), theirs(t, p), rtol=2e-6)
  np.testing.assert_allclose(ours(p, t, weights=w), theirs(t, p, sample_weight=w), rtol=1e-5)
  np.testing.assert_allclose(ours(p, t, weights=w, where=m),
                             theirs(t[m], p[m], sample_weight=w[m]), rtol=1e-5)
  # where equals slicing, and excluded rows may hold anything.
  p_bad = np.where(m.reshape((N,) + (1,) * (p.ndim - 1)), p, np.nan).astype(np.float32)
  np.testing.assert_allclose(ours(p_bad, t, weights=w, where=m), ours(p[m], t[m], weights=w[m]),
                             rtol=1e-6)


def test_regression_metrics_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_regression.py::test_regression_metrics
  y_true = np.arange(50, dtype=np.float32)
  y_pred, y_pred_2 = y_true + 1, y_true - 1
  np.testing.assert_allclose(metrics.mean_squared_error(y_pred, y_true), 1.0)
  np.testing.assert_allclose(metrics.mean_absolute_error(y_pred, y_true), 1.0)
  np.testing.assert_allclose(metrics.mean_pinball_loss(y_pred, y_true), 0.5)
  np.testing.assert_allclose(metrics.mean_pinball_loss(y_pred_2, y_true), 0.5)
  np.testing.assert_allclose(metrics.mean_pinball_loss(y_pred, y_true, alpha=0.4), 0.6,
                             rtol=1e-6)
  np.testing.assert_allclose(metrics.mean_pinball_loss(y_pred_2, y_true, alpha=0.4), 0.4,
                             rtol=1e-6)
  np.testing.assert_allclose(metrics.r2_score(y_pred, y_true), 0.995, atol=5e-3)
  np.testing.assert_allclose(metrics.r2_score(y_pred, y_true, force_finite=False), 0.995,
                             atol=5e-3)


def test_multioutput_regression_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_regression.py::
  # test_multioutput_regression (uniform_average, the default).
  y_true = np.array([[1, 0, 0, 1], [0, 1, 1, 1], [1, 1, 0, 1]], np.float32)
  y_pred = np.array([[0, 0, 0, 1], [1, 0, 1, 1], [0, 0, 0, 1]], np.float32)
  np.testing.assert_allclose(metrics.mean_squared_error(y_pred, y_true),
                             (1.0 / 3 + 2.0 / 3 + 2.0 / 3) / 4.0, rtol=1e-6)
  np.testing.assert_allclose(metrics.root_mean_squared_error(y_pred, y_true), 0.454, atol=5e-3)
  np.testing.assert_allclose(metrics.mean_absolute_error(y_pred, y_true),
                             (1.0 + 2.0 / 3) / 4.0, rtol=1e-6)
  np.testing.assert_allclose(metrics.mean_pinball_loss(y_pred, y_true),
                             (1.0 + 2.0 / 3) / 8.0, rtol=1e-6)
  np.testing.assert_allclose(metrics.r2_score(y_pred, y_true), -0.875, rtol=1e-6)
  # The constant 4th output is NaN without force_finite and propagates.
  assert np.isnan(metrics.r2_score(y_pred, y_true, force_finite=False))


@pytest.mark.parametrize("targets, predictions, expected, expected_not_forced", [
    ([0.0, 0.0], [1.0, -1.0], 0.0, -np.inf),
    ([1.0, 1.0], [1.0, 1.0], 1.0, np.nan),
    ([0.0, 1.0], [0.0, 1.0], 1.0, 1.0),
])
def test_r2_at_limits_from_sklearn(targets, predictions, expected, expected_not_forced):
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_regression.py::
  # test_regression_metrics_at_limits
  t, p = np.asarray(targets, np.float32), np.asarray(predictions, np.float32)
  np.testing.assert_allclose(jax.jit(metrics.r2_score)(p, t), expected)
  np.testing.assert_allclose(metrics.r2_score(p, t, force_finite=False), expected_not_forced)
  np.testing.assert_allclose(skm.r2_score(t, p), expected)


def test_single_sample_limits_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_regression.py::
  # test_regression_metrics_at_limits (single-sample case); r2 is NaN there
  # (sklearn warns "not well-defined with less than two samples").
  one = np.zeros(1, np.float32)
  for name in ("mean_squared_error", "root_mean_squared_error", "mean_absolute_error",
               "mean_pinball_loss"):
    assert OURS[name](one, one) == 0.0
  with pytest.warns(metrics.UndefinedMetricWarning, match="less than two samples"):
    assert np.isnan(metrics.r2_score(one, one))
  p, t, w, _ = _data(3)
  only_one = np.zeros(N, bool)
  only_one[4] = True
  assert np.isnan(jax.jit(metrics.r2_score)(p, t, weights=w, where=only_one))


def test_constant_weighted_target_is_exactly_constant():
  # A weighted mean of a constant in float32 need not equal the constant; the
  # denominator must still be 0 (score 1 or 0), never a rounding residue.
  rng = np.random.default_rng(5)
  t = np.full(N, 0.1, np.float32)
  w = rng.uniform(0.1, 3.0, N).astype(np.float32)
  assert metrics.r2_score(t, t, weights=w) == 1.0
  assert metrics.r2_score(t + 0.5, t, weights=w) == 0.0


def test_empty_selection_is_zero_and_gradients_are_finite():
  p, t, w, _ = _data(6)
  none = np.zeros(N, bool)
  for name, fn in OURS.items():
    if name != "r2_score":
      assert fn(p, t, weights=w, where=none) == 0.0, name
  # Perfect predictions: RMSE's square root has a zero, finite gradient there.
  for name in ("mean_squared_error", "root_mean_squared_error", "mean_absolute_error",
               "r2_score", "mean_pinball_loss"):
    grad = jax.grad(OURS[name])(jnp.asarray(t), t, weights=w)
    assert np.isfinite(grad).all(), name
  # Huge errors and excluded NaN rows.
  m = np.ones(N, bool)
  m[0] = False
  big = (t + 1e4).astype(np.float32)
  big[0] = np.nan
  for name in ("mean_squared_error", "root_mean_squared_error", "r2_score"):
    value, grad = jax.value_and_grad(OURS[name])(jnp.asarray(big), t, weights=w, where=m)
    assert np.isfinite(value) and np.isfinite(grad).all(), name
    assert grad[0] == 0.0


def test_half_precision_computes_in_float32():
  p, t, w, _ = _data(7)
  for dtype in (jnp.float16, jnp.bfloat16):
    lp, lt = jnp.asarray(p * 300, dtype), jnp.asarray(t * 300, dtype)  # squares overflow f16
    got = metrics.mean_squared_error(lp, lt)
    assert got.dtype == jnp.float32
    expected = skm.mean_squared_error(np.asarray(lt, np.float64), np.asarray(lp, np.float64))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_float64_with_x64(x64):
  p, t, w, _ = _data(8)
  p, t = p.astype(np.float64), t.astype(np.float64)
  got = metrics.r2_score(p, t, weights=w.astype(np.float64))
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(got, skm.r2_score(t, p, sample_weight=w), rtol=1e-12)


def test_underprediction_rate_counts_strictly_below():
  t = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
  p = np.array([0.5, 2.0, 3.5, 3.0], np.float32)  # below, equal, above, below
  assert metrics.underprediction_rate(p, t) == 0.5
  w = np.array([1.0, 0.0, 0.0, 3.0], np.float32)
  assert metrics.underprediction_rate(p, t, weights=w) == 1.0
  assert jnp.all(jax.grad(metrics.underprediction_rate)(jnp.asarray(p), t) == 0)


def test_bad_inputs_raise():
  p, t, w, m = _data(9)
  with pytest.raises(TypeError, match="predictions"):
    metrics.mean_squared_error(p.astype(np.int32), t)
  with pytest.raises(ValueError, match="shape"):
    metrics.mean_absolute_error(p, t[:-1])
  with pytest.raises(ValueError, match="rank"):
    metrics.r2_score(p.reshape(2, 2, -1), t.reshape(2, 2, -1))
  with pytest.raises(ValueError, match="weights"):
    metrics.mean_squared_error(p, t, weights=w[:-1])
  with pytest.raises(ValueError, match="where"):
    metrics.mean_squared_error(p, t, where=m.reshape(2, -1))
  with pytest.raises(TypeError, match="where"):
    metrics.mean_squared_error(p, t, where=m.astype(np.int32))
  with pytest.raises(ValueError, match="alpha"):
    metrics.mean_pinball_loss(p, t, alpha=1.5)
  with pytest.raises(TypeError, match="force_finite"):
    metrics.r2_score(p, t, force_finite=None)


def test_vmap_over_batches():
  p = np.stack([_data(s)[0] for s in (10, 11)])
  t = np.stack([_data(s)[1] for s in (10, 11)])
  got = jax.vmap(metrics.r2_score)(p, t)
  np.testing.assert_allclose(got, [skm.r2_score(b, a) for a, b in zip(p, t)], rtol=1e-5)


def test_included_nan_propagates():
  p, t, w, _ = _data(12)
  p[3] = np.nan
  for name in ("mean_squared_error", "mean_absolute_error", "r2_score", "mean_pinball_loss"):
    assert np.isnan(OURS[name](p, t, weights=w)), name


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_pinball_equals_the_quantile_loss(alpha):
  from lossreg_jax import losses
  p, t, w, m = _data(13)
  np.testing.assert_allclose(
      metrics.mean_pinball_loss(p, t, alpha=alpha, weights=w, where=m),
      losses.quantile_loss(p, t, quantile=alpha, weights=w, where=m, reduction="weighted_mean"),
      rtol=1e-6)
