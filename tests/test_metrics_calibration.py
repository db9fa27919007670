"""Tests for the calibration metrics against scikit-learn and direct NumPy formulas."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import calibration as skc
from sklearn import metrics as skm

from lossreg_jax import metrics

N = 60
C = 4


def _binary(seed):
  rng = np.random.default_rng(seed)
  p = rng.random(N).astype(np.float32)
  labels = (rng.random(N) < p).astype(np.int32)
  p[:4] = [0.0, 1.0, 0.2, 0.6]  # bin edges and the ends of [0, 1]
  return p, labels, rng.uniform(0.1, 3.0, N).astype(np.float32), rng.random(N) < 0.7


def _multiclass(seed):
  rng = np.random.default_rng(seed)
  logits = rng.normal(scale=2.0, size=(N, C))
  p = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=1))
  labels = np.array([rng.choice(C, p=row / row.sum()) for row in p.astype(np.float64)])
  return p, labels, rng.uniform(0.1, 3.0, N).astype(np.float32), rng.random(N) < 0.7


# --- Brier score ---


def test_brier_score_matches_sklearn_binary_and_multiclass():
  for p, y, w, m in (_binary(0), _multiclass(1)):
    kw = {} if p.ndim == 1 else {"labels": np.arange(C)}
    fn = jax.jit(metrics.brier_score)
    np.testing.assert_allclose(fn(p, y), skm.brier_score_loss(y, p, **kw), rtol=1e-6)
    np.testing.assert_allclose(fn(p, y, weights=w),
                               skm.brier_score_loss(y, p, sample_weight=w, **kw), rtol=1e-5)
    np.testing.assert_allclose(fn(p, y, weights=w, where=m),
                               skm.brier_score_loss(y[m], p[m], sample_weight=w[m], **kw),
                               rtol=1e-5)


def test_brier_score_binary_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_classification.py::
  # test_brier_score_loss_binary: (n,) and (n, 2) probabilities give the same score.
  y = np.array([0, 1, 1, 0, 1, 1])
  p = np.array([0.1, 0.8, 0.9, 0.3, 1.0, 0.95], np.float32)
  true_score = np.linalg.norm(y - p.astype(np.float64)) ** 2 / len(y)
  assert metrics.brier_score(y.astype(np.float32), y) == 0.0
  np.testing.assert_allclose(metrics.brier_score(p, y), true_score, rtol=1e-6)
  np.testing.assert_allclose(metrics.brier_score(np.column_stack([1 - p, p]), y), true_score,
                             rtol=1e-6)


@pytest.mark.parametrize("labels, probabilities, expected", [
    ([1, 0, 2], [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]], 0.41333333),
    ([0, 1, 2], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], 0.0),
    ([0, 1, 2], [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], 2.0),
    # ["eggs", "spam", "ham"] with labels ["eggs", "ham", "spam", "yams"] -> 0, 2, 1.
    ([0, 2, 1], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], 2 / 3),
])
def test_brier_score_multiclass_from_sklearn(labels, probabilities, expected):
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_classification.py::
  # test_brier_score_loss_multiclass
  got = metrics.brier_score(np.asarray(probabilities, np.float32), np.asarray(labels))
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_brier_score_gradient_and_extremes():
  p, y, w, m = _binary(2)
  grad = jax.grad(metrics.brier_score)(jnp.asarray(p), y, weights=w, where=m)
  expected = np.where(m, 2 * w * (p - y) / w[m].sum(), 0)
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
  # Excluded NaN rows change nothing, not even the gradient.
  bad = p.copy()
  bad[~m] = np.nan
  value, grad = jax.value_and_grad(jax.jit(metrics.brier_score))(jnp.asarray(bad), y,
                                                                  weights=w, where=m)
  np.testing.assert_allclose(value, metrics.brier_score(p[m], y[m], weights=w[m]), rtol=1e-6)
  assert np.isfinite(grad).all()
  for dtype in (jnp.float16, jnp.bfloat16):
    got = metrics.brier_score(jnp.asarray(p, dtype), y)
    assert got.dtype == jnp.float32


# --- Calibration curve ---


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [3, 5, 10, 40])
def test_calibration_curve_matches_sklearn(strategy, n_bins):
  p, y, _, m = _binary(n_bins)
  got = metrics.calibration_curve(p, y, n_bins=n_bins, strategy=strategy)
  expected = skc.calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
  for g, e in zip(got, expected):
    assert g.shape == e.shape
    np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
  # where equals slicing (and the quantile edges use the included rows only).
  got = metrics.calibration_curve(p, y, n_bins=n_bins, strategy=strategy, where=m)
  expected = skc.calibration_curve(y[m], p[m], n_bins=n_bins, strategy=strategy)
  for g, e in zip(got, expected):
    np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)


def test_calibration_curve_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/tests/test_calibration.py::test_calibration_curve
  y = np.array([0, 0, 0, 1, 1, 1])
  p = np.array([0.0, 0.1, 0.2, 0.8, 0.9, 1.0], np.float32)
  prob_true, prob_pred = metrics.calibration_curve(p, y, n_bins=2)
  np.testing.assert_allclose(prob_true, [0, 1])
  np.testing.assert_allclose(prob_pred, [0.1, 0.9], rtol=1e-6)
  with pytest.raises(ValueError, match="probabilities"):
    metrics.calibration_curve(np.array([-0.1], np.float32), np.array([1]))
  y2 = np.array([0, 0, 0, 0, 1, 1])
  p2 = np.array([0.0, 0.1, 0.2, 0.5, 0.9, 1.0], np.float32)
  prob_true, prob_pred = metrics.calibration_curve(p2, y2, n_bins=2, strategy="quantile")
  np.testing.assert_allclose(prob_true, [0, 2 / 3], rtol=1e-6)
  np.testing.assert_allclose(prob_pred, [0.1, 0.8], rtol=1e-6)
  with pytest.raises(ValueError, match="strategy"):
    metrics.calibration_curve(p2, y2, strategy="percentile")


def test_calibration_curve_under_jit_keeps_empty_bins_as_nan():
  p, y, _, _ = _binary(7)
  p = p * 0.5  # nothing above 0.5: the upper bins are empty
  for strategy in ("uniform", "quantile"):
    fn = jax.jit(partial(metrics.calibration_curve, n_bins=10, strategy=strategy))
    prob_true, prob_pred = fn(p, y)
    assert prob_true.shape == prob_pred.shape == (10,)
    filled = ~np.isnan(prob_true)
    np.testing.assert_array_equal(filled, ~np.isnan(prob_pred))
    expected = skc.calibration_curve(y, p, n_bins=10, strategy=strategy)
    np.testing.assert_allclose(prob_true[filled], expected[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(prob_pred[filled], expected[1], rtol=1e-5)
    if strategy == "uniform":
      assert not filled[5:].any()


# --- Expected calibration error ---


def _ece_numpy(p, y, w, n_bins):
  """Direct NumPy ECE (float64): top-label confidence, bins (b/B, (b+1)/B]."""
  p = np.asarray(p)
  if p.ndim == 1:  # 1 - p in the input's float32, as the library computes it
    p = np.stack([1 - p, p], axis=1)
  p = p.astype(np.float64)
  conf, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
  bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
  total = 0.0
  for b in range(n_bins):
    i = bins == b
    if w[i].sum() > 0:
      acc = np.average(correct[i], weights=w[i])
      mean_conf = np.average(conf[i], weights=w[i])
      total += w[i].sum() / w.sum() * abs(acc - mean_conf)
  return total


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_numpy_formula(n_bins):
  for p, y, w, m in (_binary(10 + n_bins), _multiclass(20 + n_bins)):
    # Away from bin edges, where float32 and float64 agree on the bin.
    fn = jax.jit(partial(metrics.expected_calibration_error, n_bins=n_bins))
    np.testing.assert_allclose(fn(p, y), _ece_numpy(p, y, np.ones(N), n_bins), rtol=1e-5)
    np.testing.assert_allclose(fn(p, y, weights=w), _ece_numpy(p, y, w, n_bins), rtol=1e-5)
    np.testing.assert_allclose(fn(p, y, weights=w, where=m),
                               _ece_numpy(p[m], y[m], w[m], n_bins), rtol=1e-5)


@pytest.mark.parametrize("n_bins", [5, 10])
def test_ece_equals_calibration_curve_of_top_label(n_bins):
  # Unweighted ECE from scikit-learn's calibration_curve of (correct, confidence):
  # Σ_b n_b / n · |prob_true_b − prob_pred_b|.
  p, y, _, _ = _multiclass(30 + n_bins)
  conf, correct = p.max(1), (p.argmax(1) == y).astype(int)
  prob_true, prob_pred = skc.calibration_curve(correct, conf, n_bins=n_bins)
  bins = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], conf)
  counts = np.bincount(bins, minlength=n_bins)
  expected = np.sum(counts[counts > 0] / N * np.abs(prob_true - prob_pred))
  np.testing.assert_allclose(metrics.expected_calibration_error(p, y, n_bins=n_bins), expected,
                             rtol=1e-5)


def test_ece_binary_is_the_two_class_case():
  p, y, w, _ = _binary(40)
  p[5] = 0.5  # a tie: class 0, as argmax over [1 - p, p]
  two = np.stack([1 - p, p], axis=1)
  np.testing.assert_allclose(metrics.expected_calibration_error(p, y, weights=w),
                             metrics.expected_calibration_error(two, y, weights=w), rtol=1e-7)
  # One bin holding everything: |accuracy - mean confidence|.
  conf, correct = np.maximum(p, 1 - p), (p > 0.5) == y
  np.testing.assert_allclose(metrics.expected_calibration_error(p, y, n_bins=1),
                             abs(correct.mean() - conf.mean()), rtol=1e-5)


def test_bins_are_right_closed_as_sklearn_at_float32_edges():
  # float32(0.6) > 0.6 and float32(0.2) > 0.2: scikit-learn (float64 edges)
  # puts them in the bin above; so do we. float32(0.4) < 0.4 stays below.
  p = np.array([0.2, 0.4, 0.6, 0.8, 0.0, 1.0], np.float32)
  y = np.array([0, 1, 0, 1, 0, 1])
  got = metrics.calibration_curve(p, y, n_bins=5)
  expected = skc.calibration_curve(y, p, n_bins=5)
  for g, e in zip(got, expected):
    np.testing.assert_allclose(g, e, rtol=1e-6)


def test_empty_selection_and_bad_inputs():
  p, y, w, _ = _multiclass(50)
  none = np.zeros(N, bool)
  assert metrics.expected_calibration_error(p, y, where=none) == 0.0
  assert metrics.brier_score(p, y, where=none) == 0.0
  with pytest.raises(ValueError, match="labels"):
    metrics.brier_score(p, y + 1)  # class C does not exist
  with pytest.raises(ValueError, match="labels"):
    metrics.brier_score(p[:, 0], y)  # (n,) needs 0/1
  with pytest.raises(ValueError, match=r"labels must have shape"):
    metrics.expected_calibration_error(p, y[:-1])
  # Integral float labels are accepted (as scikit-learn); bad values are ValueErrors.
  assert metrics.expected_calibration_error(p, y.astype(np.float32)) == (
      metrics.expected_calibration_error(p, y))
  with pytest.raises(ValueError, match="labels must hold integral class ids"):
    metrics.expected_calibration_error(p, y + 0.5)
  with pytest.raises(TypeError, match="labels"):
    metrics.expected_calibration_error(p, y.astype(str))
  with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
    metrics.expected_calibration_error(p * 2, y)
  bad = p.copy()
  bad[0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN in probabilities"):
    metrics.brier_score(bad, y)
  with pytest.raises(ValueError, match="n_bins"):
    metrics.expected_calibration_error(p, y, n_bins=0)
  with pytest.raises(TypeError, match="n_bins"):
    metrics.calibration_curve(p[:, 0], (y > 0).astype(int), n_bins=2.0)
  with pytest.raises(ValueError, match="rank"):
    metrics.calibration_curve(p, y)
  with pytest.raises(ValueError, match="weights"):
    metrics.brier_score(p, y, weights=w[:-1])
