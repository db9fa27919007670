"""Tests for the decision metrics: expected cost and cost-optimal thresholds."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from lossreg_jax import metrics

N = 50
C = 3


def _classes(seed, num_classes=C):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, N)
  preds = np.where(rng.random(N) < 0.5, labels, rng.integers(0, num_classes, N))
  cost = rng.uniform(0.0, 5.0, (num_classes, num_classes)).astype(np.float32)
  np.fill_diagonal(cost, 0.0)
  return preds, labels, cost, rng.uniform(0.1, 3.0, N).astype(np.float32), rng.random(N) < 0.7


@pytest.mark.parametrize("num_classes", [2, C])
def test_expected_cost_matches_numpy_and_sklearn_confusion_matrix(num_classes):
  p, y, cost, w, m = _classes(num_classes, num_classes)
  fn = jax.jit(metrics.expected_cost)
  direct = np.mean(cost[y, p])
  cm = skm.confusion_matrix(y, p, labels=np.arange(num_classes))
  np.testing.assert_allclose(fn(p, y, cost_matrix=cost), direct, rtol=1e-6)
  np.testing.assert_allclose(fn(p, y, cost_matrix=cost), (cm * cost).sum() / N, rtol=1e-6)
  cm_w = skm.confusion_matrix(y, p, labels=np.arange(num_classes), sample_weight=w)
  np.testing.assert_allclose(fn(p, y, cost_matrix=cost, weights=w),
                             (cm_w * cost).sum() / w.sum(), rtol=1e-5)
  np.testing.assert_allclose(fn(p, y, cost_matrix=cost, weights=w, where=m),
                             np.average(cost[y[m], p[m]], weights=w[m]), rtol=1e-5)
  # where equals slicing.
  np.testing.assert_allclose(metrics.expected_cost(p, y, cost_matrix=cost, weights=w, where=m),
                             metrics.expected_cost(p[m], y[m], cost_matrix=cost, weights=w[m]),
                             rtol=1e-6)


def test_expected_cost_binary_is_fp_and_fn_counts():
  p, y, _, _, _ = _classes(3, 2)
  cost = np.array([[0.0, 1.0], [5.0, 0.0]])
  fp, fn = np.sum((p == 1) & (y == 0)), np.sum((p == 0) & (y == 1))
  np.testing.assert_allclose(metrics.expected_cost(p, y, cost_matrix=cost), (fp + 5 * fn) / N,
                             rtol=1e-6)
  # The 0/1 cost matrix gives the error rate.
  np.testing.assert_allclose(metrics.expected_cost(p, y, cost_matrix=1 - np.eye(2)),
                             1 - metrics.accuracy(p, y), rtol=1e-6)


def test_expected_cost_checks_cost_matrix():
  p, y, cost, _, _ = _classes(4)
  with pytest.raises(ValueError, match="cost_matrix must be a square"):
    metrics.expected_cost(p, y, cost_matrix=cost[:, :2])
  with pytest.raises(ValueError, match="cost_matrix must be a square"):
    metrics.expected_cost(p, y, cost_matrix=cost[0])
  with pytest.raises(ValueError, match="cost_matrix must be finite"):
    metrics.expected_cost(p, y, cost_matrix=np.where(np.eye(C) > 0, cost, np.inf))
  with pytest.raises(ValueError, match="cost_matrix must be non-negative"):
    metrics.expected_cost(p, y, cost_matrix=-cost)
  with pytest.raises(ValueError, match="cost_matrix of shape"):
    metrics.expected_cost(p, y, cost_matrix=cost[:2, :2])
  with pytest.raises(ValueError, match="predictions must hold integral class ids"):
    metrics.expected_cost(p + 0.5, y, cost_matrix=cost)
  with pytest.raises(TypeError, match="predictions"):
    metrics.expected_cost(p.astype(str), y, cost_matrix=cost)
  # Masked rows may hold any class id.
  bad = p.copy()
  bad[0] = 7
  keep = np.arange(N) > 0
  np.testing.assert_allclose(metrics.expected_cost(bad, y, cost_matrix=cost, where=keep),
                             np.mean(cost[y[1:], p[1:]]), rtol=1e-6)
  # Under jit an included out-of-range id cannot raise: the result is NaN.
  assert np.isnan(jax.jit(metrics.expected_cost)(bad, y, cost_matrix=cost))
  assert metrics.expected_cost(p, y, cost_matrix=cost, where=np.zeros(N, bool)) == 0.0


def test_cost_threshold_is_bayes_optimal_for_calibrated_probabilities():
  np.testing.assert_allclose(metrics.cost_threshold(cost_fp=1.0, cost_fn=4.0), 0.2)
  np.testing.assert_allclose(jax.jit(metrics.cost_threshold)(cost_fp=3.0, cost_fn=1.0), 0.75)
  # Calibrated probabilities: predicting positive iff p >= t minimizes the
  # expected cost E[c_fp (1 - p) [pos] + c_fn p [neg]] among all thresholds.
  p = np.linspace(0, 1, 201, dtype=np.float64)
  for c_fp, c_fn in ((1.0, 4.0), (2.0, 1.0), (1.0, 1.0)):
    t = float(metrics.cost_threshold(cost_fp=c_fp, cost_fn=c_fn))
    risk = lambda th: np.mean(np.where(p >= th, c_fp * (1 - p), c_fn * p))
    assert risk(t) <= min(risk(th) for th in p) + 1e-12
  with pytest.raises(ValueError, match="cost_fp"):
    metrics.cost_threshold(cost_fp=-1.0, cost_fn=1.0)
  with pytest.raises(ValueError, match="cost_fp \\+ cost_fn"):
    metrics.cost_threshold(cost_fp=0.0, cost_fn=0.0)


def _scores(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, N)
  scores = np.round(labels * 0.3 + rng.random(N), 1).astype(np.float32)  # ties
  return scores, labels, rng.integers(1, 4, N).astype(np.float32), rng.random(N) < 0.7


def _best_threshold_numpy(scores, labels, c_fp, c_fn, w):
  """Brute force over the distinct scores; ties -> the larger threshold."""
  best = None
  for t in sorted(set(scores[w != 0].tolist()), reverse=True):
    pos = scores >= t
    cost = c_fp * w[pos & (labels == 0)].sum() + c_fn * w[~pos & (labels == 1)].sum()
    if best is None or cost < best[0]:
      best = (cost, t)
  return best[1]


@pytest.mark.parametrize("c_fp, c_fn", [(1.0, 1.0), (1.0, 5.0), (4.0, 1.0), (0.0, 1.0)])
def test_best_threshold_matches_brute_force(c_fp, c_fn):
  s, y, w, m = _scores(int(c_fp * 10 + c_fn))
  fn = jax.jit(metrics.best_threshold)
  assert fn(s, y, cost_fp=c_fp, cost_fn=c_fn) == _best_threshold_numpy(s, y, c_fp, c_fn,
                                                                        np.ones(N))
  assert fn(s, y, cost_fp=c_fp, cost_fn=c_fn, weights=w) == _best_threshold_numpy(
      s, y, c_fp, c_fn, w)
  assert fn(s, y, cost_fp=c_fp, cost_fn=c_fn, weights=w, where=m) == _best_threshold_numpy(
      s[m], y[m], c_fp, c_fn, w[m])
  # The chosen threshold's empirical cost equals expected_cost of its decisions.
  t = fn(s, y, cost_fp=c_fp, cost_fn=c_fn, weights=w)
  cost = np.array([[0.0, c_fp], [c_fn, 0.0]])
  best = metrics.expected_cost((s >= t).astype(int), y, cost_matrix=cost, weights=w)
  for other in np.unique(s):
    assert best <= metrics.expected_cost((s >= other).astype(int), y, cost_matrix=cost,
                                         weights=w) + 1e-6


def test_best_threshold_ties_and_limits():
  s = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
  y = np.array([0, 1, 0, 1])
  # Costs at t = 0.4, 0.3, 0.2, 0.1 (c_fp = c_fn = 1): 1, 2, 1, 2 -> the larger, 0.4.
  assert metrics.best_threshold(s, y, cost_fp=1.0, cost_fn=1.0) == np.float32(0.4)
  # Free false positives: any threshold catching both positives costs 0;
  # 0.2 and 0.1 tie and the larger one wins.
  assert metrics.best_threshold(s, y, cost_fp=0.0, cost_fn=1.0) == np.float32(0.2)
  # Free misses: the largest observed score (candidates are observed scores).
  assert metrics.best_threshold(s, y, cost_fp=1.0, cost_fn=0.0) == np.float32(0.4)
  # Traced costs and an empty selection.
  t = jax.jit(metrics.best_threshold)(s, y, cost_fp=jnp.float32(0.0), cost_fn=jnp.float32(1.0))
  assert t == np.float32(0.2)
  assert np.isnan(metrics.best_threshold(s, y, cost_fp=1.0, cost_fn=1.0,
                                         where=np.zeros(4, bool)))
  bad = s.copy()
  bad[0] = np.nan
  with pytest.raises(ValueError, match="NaN in scores"):
    metrics.best_threshold(bad, y, cost_fp=1.0, cost_fn=1.0)
  assert np.isnan(jax.jit(metrics.best_threshold)(bad, y, cost_fp=1.0, cost_fn=1.0))
  with pytest.raises(ValueError, match="labels"):
    metrics.best_threshold(s, y + 1, cost_fp=1.0, cost_fn=1.0)
  with pytest.raises(ValueError, match="cost_fn"):
    metrics.best_threshold(s, y, cost_fp=1.0, cost_fn=-1.0)


def test_vmap_best_threshold_over_cost_ratios():
  s, y, w, _ = _scores(9)
  ratios = jnp.array([0.5, 1.0, 2.0, 8.0], jnp.float32)
  got = jax.vmap(partial(metrics.best_threshold, s, y, weights=w, cost_fp=1.0))(cost_fn=ratios)
  expected = [_best_threshold_numpy(s, y, 1.0, float(r), w) for r in ratios]
  np.testing.assert_array_equal(got, expected)
