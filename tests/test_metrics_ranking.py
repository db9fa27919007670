"""Tests for the ranking metrics (curves, average precision, ROC AUC) against scikit-learn.

Inputs share one length (N) so that compiled programs are reused across tests.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from lossreg_jax import metrics

N = 40


def _data(seed, *, ties=True):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, N)
  scores = labels * 0.3 + rng.random(N)
  if ties:  # coarse scores: many ties within and across classes
    scores = np.round(scores, 1)
  weights = rng.uniform(0.1, 2.0, N).astype(np.float32)
  weights[rng.random(N) < 0.1] = 0.0  # zero weights: scikit-learn drops those rows
  return scores.astype(np.float32), labels, weights, rng.random(N) < 0.7


def _sk_curve(fn, scores, labels, weights=None, where=None, **kw):
  if where is not None:
    scores, labels = scores[where], labels[where]
    weights = None if weights is None else weights[where]
  return fn(labels, scores, sample_weight=weights, **kw)


CURVES = {
    "roc_curve": (metrics.roc_curve, skm.roc_curve),
    "roc_curve/all": (partial(metrics.roc_curve, drop_intermediate=False),
                      partial(skm.roc_curve, drop_intermediate=False)),
    "precision_recall_curve": (metrics.precision_recall_curve, skm.precision_recall_curve),
}


@pytest.mark.parametrize("name", sorted(CURVES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curves_match_sklearn_with_ties_weights_and_mask(name, seed):
  ours, theirs = CURVES[name]
  scores, labels, weights, where = _data(seed, ties=seed != 2)
  for kw in ({}, {"weights": weights}, {"weights": weights, "where": where}):
    got = ours(scores, labels, **kw)
    expected = _sk_curve(theirs, scores, labels, kw.get("weights"), kw.get("where"))
    for g, e in zip(got, expected):
      assert g.shape == e.shape, (kw.keys(), g.shape, e.shape)
      np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CURVES))
def test_curves_under_jit_are_padded_by_repeating_the_last_point(name):
  ours, theirs = CURVES[name]
  scores, labels, weights, where = _data(3)
  got = jax.jit(ours)(scores, labels, weights=weights, where=where)
  expected = _sk_curve(theirs, scores, labels, weights, where)
  # Thresholds have one entry fewer than the points in the precision-recall curve.
  lengths = [N + 1, N + 1, N] if name == "precision_recall_curve" else [N + 1] * 3
  for g, e, length in zip(got, expected, lengths):
    assert g.shape == (length,)
    k = len(e)
    assert k < length  # the test needs padding to mean something
    np.testing.assert_allclose(g[:k], e, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g[k:], np.full(length - k, e[-1], np.float32))
  # The padded points change no area: trapezoids over the padded ROC curve.
  if name.startswith("roc"):
    fpr, tpr, _ = got
    np.testing.assert_allclose(jnp.trapezoid(tpr, fpr),
                               metrics.roc_auc(scores, labels, weights=weights, where=where),
                               rtol=1e-5)


# Expected values from scikit-learn's own tests,
# scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::test_roc_curve_toydata
# (which unpacks roc_curve's (fpr, tpr) as "tpr, fpr"; named correctly here).
@pytest.mark.parametrize("labels, scores, fpr, tpr, auc", [
    ([0, 1], [0, 1], [0, 0, 1], [0, 1, 1], 1.0),
    ([0, 1], [1, 0], [0, 1, 1], [0, 0, 1], 0.0),
    ([1, 0], [1, 1], [0, 1], [0, 1], 0.5),
    ([1, 0], [1, 0], [0, 0, 1], [0, 1, 1], 1.0),
    ([1, 0], [0.5, 0.5], [0, 1], [0, 1], 0.5),
    ([0, 0], [0.25, 0.75], [0.0, 0.5, 1.0], [np.nan] * 3, None),
    ([1, 1], [0.25, 0.75], [np.nan] * 3, [0.0, 0.5, 1.0], None),
])
def test_roc_curve_toydata_from_sklearn(labels, scores, fpr, tpr, auc):
  scores = np.asarray(scores, np.float32)
  got_fpr, got_tpr, thresholds = metrics.roc_curve(scores, np.asarray(labels))
  np.testing.assert_allclose(got_fpr, fpr)
  np.testing.assert_allclose(got_tpr, tpr)
  assert thresholds[0] == np.inf
  if auc is not None:
    np.testing.assert_allclose(metrics.roc_auc(scores, np.asarray(labels)), auc)


def test_roc_curve_drop_intermediate_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_roc_curve_drop_intermediate
  _, _, thresholds = metrics.roc_curve(
      np.array([0.0, 0.2, 0.5, 0.6, 0.7, 1.0], np.float32), np.array([0, 0, 0, 0, 1, 1]))
  np.testing.assert_allclose(thresholds, [np.inf, 1.0, 0.7, 0.0])
  labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
  scores = np.array([0.0, 0.1, 0.6, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8, 0.9, 0.9, 1.0],
                    np.float32)
  _, _, thresholds = metrics.roc_curve(scores, labels)
  np.testing.assert_allclose(thresholds, [np.inf, 1.0, 0.9, 0.7, 0.6, 0.0])
  # Under jit the same points come first.
  _, _, padded = jax.jit(metrics.roc_curve)(scores, labels)
  np.testing.assert_allclose(padded[:6], [np.inf, 1.0, 0.9, 0.7, 0.6, 0.0])
  np.testing.assert_allclose(padded[6:], 0.0)


def test_roc_curve_fpr_tpr_increasing_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_roc_curve_fpr_tpr_increasing
  fpr, tpr, _ = metrics.roc_curve(np.array([0.1, 0.7, 0.3, 0.4, 0.5], np.float32),
                                  np.array([0, 0, 1, 1, 1]), weights=np.full(5, 0.2))
  assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()


# scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
# test_precision_recall_curve_toydata (binary cases).
@pytest.mark.parametrize("labels, scores, precision, recall, ap", [
    ([0, 1], [0, 1], [0.5, 1, 1], [1, 1, 0], 1.0),
    ([0, 1], [1, 0], [0.5, 0.0, 1.0], [1.0, 0.0, 0.0], 0.5),
    ([1, 0], [1, 1], [0.5, 1], [1.0, 0], 0.5),
    ([1, 0], [1, 0], [0.5, 1, 1], [1, 1, 0], 1.0),
    ([1, 0], [0.5, 0.5], [0.5, 1], [1, 0.0], 0.5),
    ([0, 0], [0.25, 0.75], [0, 0, 1], [1, 1, 0], 0.0),
    ([1, 1], [0.25, 0.75], [1.0, 1.0, 1.0], [1, 0.5, 0.0], 1.0),
])
def test_precision_recall_curve_toydata_from_sklearn(labels, scores, precision, recall, ap):
  scores, labels = np.asarray(scores, np.float32), np.asarray(labels)
  got_p, got_r, _ = metrics.precision_recall_curve(scores, labels)
  np.testing.assert_allclose(got_p, precision)
  np.testing.assert_allclose(got_r, recall)
  if labels.any():
    np.testing.assert_allclose(metrics.average_precision(scores, labels), ap)
  else:  # scikit-learn warns "No positive class found in y_true" too
    with pytest.warns(metrics.UndefinedMetricWarning, match="No positive class found"):
      np.testing.assert_allclose(metrics.average_precision(scores, labels), ap)
  np.testing.assert_allclose(jax.jit(metrics.average_precision)(scores, labels), ap)


def test_average_precision_constant_values_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_average_precision_constant_values: a constant score has AP = the
  # fraction of positives.
  labels = np.zeros(100, int)
  labels[::4] = 1
  assert metrics.average_precision(np.ones(100, np.float32), labels) == 0.25


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_sklearn_under_jit(seed):
  scores, labels, weights, where = _data(seed, ties=seed != 2)
  fn = jax.jit(metrics.average_precision)
  np.testing.assert_allclose(fn(scores, labels), skm.average_precision_score(labels, scores),
                             rtol=1e-6)
  np.testing.assert_allclose(
      fn(scores, labels, weights=weights),
      skm.average_precision_score(labels, scores, sample_weight=weights), rtol=1e-5)
  np.testing.assert_allclose(
      fn(scores, labels, weights=weights, where=where),
      skm.average_precision_score(labels[where], scores[where], sample_weight=weights[where]),
      rtol=1e-5)


def test_where_equals_slicing_and_zero_weight_equals_removal():
  scores, labels, weights, where = _data(4)
  for fn in (metrics.roc_curve, metrics.precision_recall_curve):
    for a, b in zip(fn(scores, labels, weights=weights, where=where),
                    fn(scores[where], labels[where], weights=weights[where])):
      np.testing.assert_array_equal(a, b)
    for a, b in zip(fn(scores, labels, weights=np.where(where, weights, 0)),
                    fn(scores[where], labels[where], weights=weights[where])):
      np.testing.assert_allclose(a, b, rtol=1e-6)
  for fn in (metrics.average_precision, metrics.roc_auc):
    np.testing.assert_allclose(fn(scores, labels, weights=weights, where=where),
                               fn(scores[where], labels[where], weights=weights[where]),
                               rtol=1e-6)


def test_low_precision_scores():
  scores, labels, _, _ = _data(5, ties=False)
  for dtype in (jnp.bfloat16, jnp.float16):
    low = jnp.asarray(scores, dtype)
    ref = np.asarray(low, np.float64)
    fpr, tpr, thresholds = metrics.roc_curve(low, labels)
    e_fpr, e_tpr, e_thr = skm.roc_curve(labels, ref)
    np.testing.assert_allclose(fpr, e_fpr, rtol=1e-6)
    np.testing.assert_allclose(tpr, e_tpr, rtol=1e-6)
    assert thresholds.dtype == dtype
    np.testing.assert_allclose(np.asarray(thresholds, np.float64), e_thr)
    ap = metrics.average_precision(low, labels)
    assert ap.dtype == jnp.float32
    np.testing.assert_allclose(ap, skm.average_precision_score(labels, ref), rtol=1e-6)


def test_nan_inputs_raise_when_concrete_and_give_nan_under_jit():
  scores, labels, _, where = _data(6)
  bad = scores.copy()
  bad[3] = np.nan
  float_labels = labels.astype(np.float32)
  float_labels[5] = np.nan
  fns = [metrics.roc_auc, metrics.average_precision, metrics.roc_curve,
         metrics.precision_recall_curve]
  for fn in fns:
    with pytest.raises(ValueError, match="NaN in scores"):
      fn(bad, labels)
    with pytest.raises(ValueError, match="NaN in labels"):
      fn(scores, float_labels)
    # An excluded NaN is allowed: it counts for nothing.
    mask = np.ones(N, bool)
    mask[3] = False
    fn(bad, labels, where=mask)
  # Previously NaN scores were silently ranked: roc_auc gave 1.0 (or 0.5 for all NaN).
  assert np.isnan(jax.jit(metrics.roc_auc)(bad, labels))
  assert np.isnan(jax.jit(metrics.roc_auc)(np.full(N, np.nan, np.float32), labels))
  assert np.isnan(jax.jit(metrics.roc_auc)(scores, float_labels))
  assert np.isnan(jax.jit(metrics.average_precision)(bad, labels))
  fpr, tpr, _ = jax.jit(metrics.roc_curve)(bad, labels)
  assert np.isnan(fpr).all() and np.isnan(tpr).all()
  precision, recall, _ = jax.jit(metrics.precision_recall_curve)(bad, labels)
  assert np.isnan(precision).all() and np.isnan(recall).all()
  # Excluded NaN under jit: the value of the included rows.
  mask = ~np.isnan(bad)
  np.testing.assert_allclose(jax.jit(metrics.roc_auc)(bad, labels, where=mask),
                             metrics.roc_auc(scores[mask], labels[mask]), rtol=1e-6)


def test_bad_arguments_raise():
  scores, labels, _, _ = _data(7)
  with pytest.raises(TypeError, match="scores"):
    metrics.roc_curve(labels, labels)
  with pytest.raises(ValueError, match="labels"):
    metrics.precision_recall_curve(scores, labels + 1)
  with pytest.raises(ValueError, match="shape"):
    metrics.average_precision(scores, labels[:-1])
  with pytest.raises(TypeError, match="drop_intermediate"):
    metrics.roc_curve(scores, labels, drop_intermediate=1)


def test_vmap_over_batches_gives_padded_curves():
  scores = np.stack([_data(s)[0] for s in (8, 9)])
  labels = np.stack([_data(s)[1] for s in (8, 9)])
  fpr, _, _ = jax.vmap(metrics.roc_curve)(scores, labels)
  assert fpr.shape == (2, N + 1)
  ap = jax.vmap(metrics.average_precision)(scores, labels)
  np.testing.assert_allclose(ap, [skm.average_precision_score(t, s)
                                  for s, t in zip(scores, labels)], rtol=1e-6)


@pytest.mark.parametrize("fn", [metrics.roc_curve, metrics.precision_recall_curve])
def test_zero_sample_weight_from_sklearn(fn):
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_confusion_matrix_at_thresholds_zero_sample_weight: a zero-weight row
  # is as if removed (its score is no threshold).
  labels = np.array([0, 0, 1, 1, 1])
  scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5], np.float32)
  weights = np.array([1, 1, 1, 0.5, 0], np.float32)
  for a, b in zip(fn(scores, labels, weights=weights),
                  fn(scores[:-1], labels[:-1], weights=weights[:-1])):
    np.testing.assert_allclose(a, b)
  # test_sort_inputs_and_compute_classification_thresholds_zero_weights:
  # rows 0 and 4 have zero weight, so 0.1 and 0.5 are no thresholds.
  labels = np.array([0, 1, 0, 1, 0, 1])
  scores = np.array([0.1, 0.9, 0.3, 0.7, 0.5, 0.2], np.float32)
  weights = np.array([0.0, 2.0, 1.0, 1.5, 0.0, 0.8], np.float32)
  thresholds = np.asarray(fn(scores, labels, weights=weights)[2])
  assert not np.isin(np.float32([0.1, 0.5]), thresholds).any()


def test_roc_curve_end_points_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::test_roc_curve_end_points
  labels = np.array([0] * 50 + [1] * 50)
  scores = np.random.RandomState(0).randint(3, size=100).astype(np.float32)
  fpr, tpr, thresholds = metrics.roc_curve(scores, labels, drop_intermediate=True)
  assert fpr[0] == 0 and fpr[-1] == 1
  assert fpr.shape == tpr.shape == thresholds.shape


def test_roc_curve_one_label_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::test_roc_curve_one_label
  labels = np.ones(10, int)
  scores = np.array([0, 1] * 5, np.float32)
  fpr, tpr, thresholds = metrics.roc_curve(scores, labels)
  assert np.isnan(fpr).all() and fpr.shape == tpr.shape == thresholds.shape
  fpr, tpr, thresholds = metrics.roc_curve(scores, 1 - labels)
  assert np.isnan(tpr).all() and fpr.shape == tpr.shape == thresholds.shape
  # roc_auc keeps its documented zero_division there (scikit-learn: NaN), and warns.
  with pytest.warns(metrics.UndefinedMetricWarning, match="Only one class is present"):
    assert metrics.roc_auc(scores, labels) == 0.0


def test_float64_with_x64(x64):
  rng = np.random.default_rng(11)
  labels = rng.integers(0, 2, N)
  scores = np.round(rng.random(N), 1)  # float64, with ties
  weights = rng.uniform(0.1, 2.0, N)
  for ours, theirs in ((metrics.roc_curve, skm.roc_curve),
                       (metrics.precision_recall_curve, skm.precision_recall_curve)):
    for g, e in zip(ours(scores, labels, weights=weights),
                    theirs(labels, scores, sample_weight=weights)):
      assert g.dtype == jnp.float64
      np.testing.assert_allclose(g, e, rtol=1e-12)
  ap = metrics.average_precision(scores, labels, weights=weights)
  assert ap.dtype == jnp.float64
  np.testing.assert_allclose(
      ap, skm.average_precision_score(labels, scores, sample_weight=weights), rtol=1e-12)


# --- Binary: partial AUC, undefined AUC, input checks (multiclass ones too) ---

# Three-class probabilities of scikit-learn's test_multiclass_ovo_roc_auc_toydata.
PROBS3 = np.array([[0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.35, 0.5, 0.15], [0, 0.2, 0.8]],
                  np.float32)


def test_one_class_warns_as_sklearn_and_returns_zero_division():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_auc_score_non_binary_class (scikit-learn warns and returns nan).
  scores = np.random.RandomState(404).rand(10).astype(np.float32)
  for labels in (np.zeros(10, int), np.ones(10, int)):
    with pytest.warns(metrics.UndefinedMetricWarning, match="Only one class is present"):
      assert metrics.roc_auc(scores, labels) == 0.0
    with pytest.warns(metrics.UndefinedMetricWarning, match="Only one class is present"):
      assert np.isnan(metrics.roc_auc(scores, labels, zero_division=np.nan, max_fpr=0.5))
  # Multiclass, class 2 absent: its one-vs-rest AUC is undefined; with
  # zero_division=nan the values equal scikit-learn's with labels=[0, 1, 2].
  probs, labels = PROBS3, np.array([0, 1, 1, 0])
  kw = dict(multi_class="ovr", labels=[0, 1, 2])
  with pytest.warns(metrics.UndefinedMetricWarning, match=r"classes \[2\]"):
    got = metrics.roc_auc(probs, labels, multi_class="ovr", average=None,
                          zero_division=np.nan)
  with pytest.warns(UserWarning, match="Only one class is present"):  # scikit-learn's own
    expected = skm.roc_auc_score(labels, probs, average=None, **kw)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  with pytest.warns(UserWarning, match="Only one class is present"):
    expected = skm.roc_auc_score(labels, probs, average="weighted", **kw)
  np.testing.assert_allclose(
      metrics.roc_auc(probs, labels, multi_class="ovr", average="weighted"), expected)
  with pytest.warns(metrics.UndefinedMetricWarning, match="one-vs-one ROC AUC is not"):
    assert metrics.roc_auc(probs, np.zeros(4, int), multi_class="ovo") == 0.0


def test_partial_roc_auc_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_partial_roc_auc_score
  labels = np.array([0, 0, 1, 1])
  perfect = labels.astype(np.float32)
  assert metrics.roc_auc(perfect, labels, max_fpr=1) == 1
  assert metrics.roc_auc(perfect, labels, max_fpr=0.001) == 1
  for max_fpr in (-0.1, 1.1, 0):
    with pytest.raises(ValueError, match=r"max_fpr must be in \(0, 1\]"):
      metrics.roc_auc(perfect, labels, max_fpr=max_fpr)
  with pytest.raises(TypeError, match="max_fpr"):
    metrics.roc_auc(perfect, labels, max_fpr="0.5")
  scores = np.array([0.1, 0, 0.1, 0.01], np.float32)
  assert metrics.roc_auc(scores, labels, max_fpr=1) == metrics.roc_auc(scores, labels)
  np.testing.assert_allclose(metrics.roc_auc(scores, labels, max_fpr=0.3), 0.5, rtol=1e-6)


def test_swapped_arguments_and_infinite_scores_raise():
  scores, labels, _, _ = _data(12, ties=False)
  probs = scores / scores.max()
  swapped = "takes the predictions first.*y_true= and y_score="
  bad = scores.copy()
  bad[[2, 7]] = [np.inf, -np.inf]
  for fn in (metrics.roc_auc, metrics.average_precision, metrics.roc_curve,
             metrics.precision_recall_curve):
    with pytest.raises(ValueError, match=swapped):
      fn(labels, probs)  # scikit-learn's order: (y_true, y_score)
    with pytest.raises(ValueError, match=swapped):
      fn(labels.astype(np.float32), probs)
    with pytest.raises(ValueError, match=r"inf in scores \(2 of 40"):
      fn(bad, labels)
  float_labels = labels.astype(np.float32)
  metrics.roc_auc(float_labels, float_labels)  # integral labels: no trap
  metrics.roc_auc(bad, labels, where=np.isfinite(bad))  # excluded rows are not checked
  nan_labels = float_labels.copy()
  nan_labels[2] = np.nan
  metrics.roc_auc(scores, nan_labels, where=np.isfinite(bad))  # nor are their labels
  with pytest.raises(ValueError, match=swapped):  # multiclass: (y_true, y_score) by shape
    metrics.roc_auc(np.array([0, 1, 0, 2]), PROBS3, multi_class="ovr")
  bad = PROBS3.copy()
  bad[0, 0] = np.inf
  with pytest.raises(ValueError, match="inf in scores"):
    metrics.average_precision(bad, np.array([0, 1, 0, 2]))
  bad[0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN in scores"):
    metrics.roc_auc(bad, np.array([0, 1, 0, 2]), multi_class="ovo")
  # Under jit NaN cannot be refused: it poisons the value.
  assert np.isnan(jax.jit(partial(metrics.roc_auc, multi_class="ovo"))(
      bad, np.array([0, 1, 0, 2])))
