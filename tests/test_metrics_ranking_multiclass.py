"""Tests for multiclass ROC AUC (one-vs-rest, one-vs-one) and average precision.

Expected values are scikit-learn's, ported from its own tests
(scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py) or computed
by it on the same numbers; one jitted program per test checks every mode.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from lossreg_jax import metrics


# scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
# test_multiclass_ovo_roc_auc_toydata
OVO_SCORES = np.array([[0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.35, 0.5, 0.15], [0, 0.2, 0.8]],
                      np.float32)


def test_multiclass_ovo_roc_auc_toydata_from_sklearn():
  labels = np.array([0, 1, 0, 2])
  auc = skm.roc_auc_score  # the expected values, computed as scikit-learn's test does
  pair_01 = (auc([1, 0, 1], [0.1, 0.3, 0.35]) + auc([0, 1, 0], [0.8, 0.4, 0.5])) / 2
  pair_02 = (auc([1, 1, 0], [0.1, 0.35, 0]) + auc([0, 0, 1], [0.1, 0.15, 0.8])) / 2
  pair_12 = (auc([1, 0], [0.4, 0.2]) + auc([0, 1], [0.3, 0.8])) / 2
  macro = (pair_01 + pair_02 + pair_12) / 3
  weighted = np.average([pair_01, pair_02, pair_12], weights=[0.75, 0.75, 0.5])
  assert (macro, weighted) == (0.75, 0.71875)  # by hand: pairs 0.25, 1, 1
  ovo = partial(metrics.roc_auc, multi_class="ovo")
  np.testing.assert_allclose(ovo(OVO_SCORES, labels), macro, rtol=1e-6)
  np.testing.assert_allclose(ovo(OVO_SCORES, labels, average="weighted"), weighted, rtol=1e-6)
  # scikit-learn raises NotImplementedError for average=None; a bad value here.
  for average in (None, "micro"):
    with pytest.raises(ValueError, match="average must be 'macro' or 'weighted'"):
      ovo(OVO_SCORES, labels, average=average)
  # test_multiclass_ovo_roc_auc_toydata_binary: class 1 absent (labels=[0, 1, 2]
  # in scikit-learn), so only the pair (0, 2) counts, in both averages.
  scores = np.array([[0.2, 0.0, 0.8], [0.6, 0.0, 0.4], [0.55, 0.0, 0.45], [0.4, 0.0, 0.6]],
                    np.float32)
  expected = (auc([1, 0, 1, 0], [0.2, 0.6, 0.55, 0.4])
              + auc([0, 1, 0, 1], [0.8, 0.4, 0.45, 0.6])) / 2
  for average in ("macro", "weighted"):
    np.testing.assert_allclose(ovo(scores, np.array([0, 2, 0, 2]), average=average), expected,
                               rtol=1e-6)


def test_multiclass_ovr_roc_auc_toydata_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_multiclass_ovr_roc_auc_toydata
  labels = np.array([0, 1, 2, 2])
  scores = np.array([[1.0, 0.0, 0.0], [0.1, 0.5, 0.4], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]],
                    np.float32)
  per_class = [skm.roc_auc_score([1, 0, 0, 0], scores[:, 0]),
               skm.roc_auc_score([0, 1, 0, 0], scores[:, 1]),
               skm.roc_auc_score([0, 0, 1, 1], scores[:, 2])]
  ovr = partial(metrics.roc_auc, scores, labels, multi_class="ovr")
  np.testing.assert_allclose(ovr(average=None), per_class, rtol=1e-6)
  np.testing.assert_allclose(ovr(), np.mean(per_class), rtol=1e-6)
  np.testing.assert_allclose(ovr(average="weighted"),
                             np.dot(per_class, [0.25, 0.25, 0.5]), rtol=1e-6)


@pytest.mark.parametrize("multi_class, average",
                         [("ovr", "macro"), ("ovr", "micro"), ("ovo", "macro")])
def test_perfect_imperfect_chance_multiclass_roc_auc_from_sklearn(multi_class, average):
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_perfect_imperfect_chance_multiclass_roc_auc
  labels = np.array([3, 1, 2, 0])
  fn = partial(metrics.roc_auc, multi_class=multi_class, average=average)
  perfect = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                      [0.75, 0.05, 0.05, 0.15]], np.float32)
  np.testing.assert_allclose(fn(perfect, labels), 1.0, rtol=1e-6)
  imperfect = perfect.copy()
  imperfect[3] = [0.0, 0.0, 0.0, 1.0]
  assert fn(imperfect, labels) < 1.0
  np.testing.assert_allclose(fn(np.full((4, 4), 0.25, np.float32), labels), 0.5, rtol=1e-6)


def test_micro_averaged_ovr_roc_auc_from_sklearn():
  # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
  # test_micro_averaged_ovr_roc_auc (Dirichlet predictions, labels drawn from them).
  rng = np.random.default_rng(0)
  probs = rng.dirichlet([2.0, 1.0, 0.5], size=1000)
  labels = np.array([rng.choice(3, p=p) for p in probs])
  onehot = np.eye(3)[labels]
  fpr, tpr, _ = skm.roc_curve(onehot.ravel(), probs.ravel())
  got = metrics.roc_auc(probs.astype(np.float32), labels, multi_class="ovr", average="micro")
  np.testing.assert_allclose(got, skm.auc(fpr, tpr), rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    # scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
    # test_roc_auc_score_multiclass_error (the sample_weight case is supported here).
    (dict(multi_class="ovo", average="samples"), "average must be one of"),
    (dict(multi_class="ovr", average="samples"), "average must be one of"),
    (dict(multi_class="ovo", max_fpr=0.5), r"max_fpr \(partial AUC\) is for binary"),
    ({}, "pass multi_class='ovr'.*or 'ovo'"),
])
def test_multiclass_roc_auc_errors_from_sklearn(kwargs, message):
  rng = np.random.RandomState(404)
  probs = np.asarray(jax.nn.softmax(jnp.asarray(rng.rand(20, 3), jnp.float32)))
  labels = rng.randint(0, 3, size=20)
  with pytest.raises(ValueError, match=message):
    metrics.roc_auc(probs, labels, **kwargs)


def test_multiclass_value_checks():
  probs, labels = OVO_SCORES, np.array([0, 1, 0, 2])
  # test_roc_auc_score_multiclass_labels_error: labels outside the columns.
  with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
    metrics.roc_auc(probs, np.array([0, 1, 2, 3]), multi_class="ovr")
  # _multiclass_roc_auc_score: "Target scores need to be probabilities".
  with pytest.raises(ValueError, match="each included row must sum to 1"):
    metrics.roc_auc(probs * 2, labels, multi_class="ovo")
  metrics.average_precision(probs * 2, labels)  # AP takes any scores, as scikit-learn
  # test_multiclass_ranking_metrics_raise_for_incorrect_shape_of_y_score: 1-D
  # scores with multiclass labels are binary inputs, refused by their labels.
  with pytest.raises(ValueError, match="0/1 labels"):
    metrics.average_precision(probs[:, 0], np.array([0, 1, 2, 0]))
  # Concrete integral float labels are class indices, as in scikit-learn.
  np.testing.assert_allclose(metrics.roc_auc(probs, labels.astype(np.float32), multi_class="ovr"),
                             metrics.roc_auc(probs, labels, multi_class="ovr"))
  with pytest.raises(ValueError, match="C >= 2"):
    metrics.roc_auc(probs[:, :1], labels * 0, multi_class="ovr")
  # Excluded rows are not checked: a row that does not sum to 1 may be masked out.
  bad = probs.copy()
  bad[1] = 0.9
  keep = np.array([True, False, True, True])
  np.testing.assert_allclose(metrics.roc_auc(bad, labels, multi_class="ovo", where=keep),
                             metrics.roc_auc(probs[keep], labels[keep], multi_class="ovo"))


# scikit-learn/scikit-learn: sklearn/metrics/tests/test_ranking.py::
# test_precision_recall_curve_toydata, the multilabel cases whose rows are one-hot
# (multiclass labels): (labels, scores, macro, weighted, micro).
@pytest.mark.parametrize("labels, scores, macro, weighted, micro", [
    ([1, 1], [[0, 1], [0, 1]], 0.5, 1.0, 1.0),
    ([1, 1], [[0, 1], [1, 0]], 0.5, 1.0, 0.5),
    ([0, 1], [[0, 1], [1, 0]], 0.5, 0.5, 0.5),
    ([0, 1], [[0.5, 0.5], [0.5, 0.5]], 0.5, 0.5, 0.5),
])
def test_multiclass_average_precision_toydata_from_sklearn(labels, scores, macro, weighted,
                                                          micro):
  labels, scores = np.asarray(labels), np.asarray(scores, np.float32)
  absent = len(set(labels.tolist())) < 2  # scikit-learn warns "No positive class found"
  for average, expected in (("macro", macro), ("weighted", weighted), ("micro", micro)):
    if absent and average != "micro":
      with pytest.warns(UserWarning, match="No positive class found"):
        got = metrics.average_precision(scores, labels, average=average)
    else:
      got = metrics.average_precision(scores, labels, average=average)
    np.testing.assert_allclose(got, expected, err_msg=average)


def _random_multiclass(seed=21, n=48, num_classes=4):
  rng = np.random.default_rng(seed)
  labels = np.arange(n) % num_classes
  probs = rng.dirichlet(np.ones(num_classes), n) + 0.8 * np.eye(num_classes)[labels]
  probs = np.round(probs / probs.sum(1, keepdims=True), 1)  # coarse: ties
  probs[:, -1] = 1 - probs[:, :-1].sum(1)
  weights = rng.uniform(0.1, 2.0, n).astype(np.float32)
  integer_weights = rng.integers(0, 3, n).astype(np.float32)
  return probs.astype(np.float32), labels, weights, integer_weights, rng.random(n) < 0.8


def _check_jitted_cases(cases, probs, labels, weights, integer_weights, where):
  """Runs every ``(kwargs, expected, integer_weights?)`` case in one compiled program."""

  @jax.jit
  def all_modes(probs, labels, weights, integer_weights, where):
    out = []
    for kw, _, integer in cases:
      kw = dict(kw)
      kind = kw.pop("fn", None)
      w = integer_weights if integer else weights
      if kind == "binary":
        out.append(metrics.roc_auc(probs[:, 1], (labels == 1).astype(jnp.int32), weights=w,
                                   where=where, **kw))
      else:
        fn = metrics.average_precision if kind == "ap" else metrics.roc_auc
        out.append(fn(probs, labels, weights=w, where=where, **kw))
    return out

  with jax.numpy_dtype_promotion("strict"):
    got = all_modes(probs, labels, weights, integer_weights, where)
  for g, (kw, expected, _) in zip(got, cases):
    np.testing.assert_allclose(g, expected, rtol=2e-5, err_msg=str(kw))


def test_multiclass_roc_auc_matches_sklearn_under_jit():
  """Every multiclass ROC AUC mode, jitted (weights and a mask traced), against scikit-learn."""
  probs, labels, weights, integer_w, where = _random_multiclass()
  p_in, y_in, w_in = probs[where].astype(np.float64), labels[where], weights[where]
  cases = [(dict(multi_class="ovr", average=average),
            skm.roc_auc_score(y_in, p_in, multi_class="ovr", average=average,
                              sample_weight=w_in), False)
           for average in ("macro", "weighted", "micro", None)]
  # scikit-learn refuses sample_weight with "ovo"; integer weights here equal
  # repeating each row that many times.
  repeat = integer_w[where].astype(int)
  cases += [(dict(multi_class="ovo", average=average),
             skm.roc_auc_score(np.repeat(y_in, repeat), np.repeat(p_in, repeat, axis=0),
                               multi_class="ovo", average=average), True)
            for average in ("macro", "weighted")]
  _check_jitted_cases(cases, probs, labels, weights, integer_w, where)


def test_multiclass_average_precision_and_partial_auc_match_sklearn_under_jit():
  probs, labels, weights, integer_w, where = _random_multiclass()
  p_in, y_in, w_in = probs[where].astype(np.float64), labels[where], weights[where]
  cases = [(dict(fn="ap", average=average),
            skm.average_precision_score(y_in, p_in, average=average, sample_weight=w_in),
            False)
           for average in ("macro", "weighted", "micro", None)]
  # Partial AUC (binary: class 1 against the rest), several max_fpr.
  binary = (y_in == 1).astype(int)
  cases += [(dict(fn="binary", max_fpr=float(max_fpr)),
             skm.roc_auc_score(binary, p_in[:, 1], max_fpr=max_fpr, sample_weight=w_in), False)
            for max_fpr in np.linspace(1e-4, 1, 5)[:-1]]
  _check_jitted_cases(cases, probs, labels, weights, integer_w, where)
