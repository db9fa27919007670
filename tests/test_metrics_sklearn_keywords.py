"""scikit-learn's calling conventions for lossreg_jax.metrics (issue 22).

scikit-learn's keywords (``y_true=`` first in meaning), ``labels=`` class
lists, ``multioutput=``, its exception types, its ``UndefinedMetricWarning``
cases, integer counts, the float64-in-float32 warning, swapped calibration
arguments and the expected calibration error's bins at their edges. Reference
values come from the installed scikit-learn 1.9.1 unless a test cites one of
scikit-learn's own tests.
"""

import inspect
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import calibration as skc
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning as SkUndefinedMetricWarning

from lossreg_jax import metrics
from lossreg_jax.metrics import _aliases

N = 40


def _data(seed=0):
  rng = np.random.default_rng(seed)
  yc = rng.integers(0, 4, N)
  pc = np.where(rng.random(N) < 0.5, yc, rng.integers(0, 4, N))
  yb = rng.integers(0, 2, N)
  score = rng.random(N).astype(np.float32)
  pb = (score > 0.5).astype(int)
  w = rng.uniform(0.1, 2.0, N).astype(np.float32)
  t = rng.normal(size=(N, 2)).astype(np.float32)
  p = (t + rng.normal(size=(N, 2))).astype(np.float32)
  proba = jax.nn.softmax(jnp.asarray(rng.normal(size=(N, 3)), jnp.float32))
  return dict(yc=yc, pc=pc, yb=yb, score=score, pb=pb, w=w, t=t, p=p,
              proba=np.asarray(proba), y3=rng.integers(0, 3, N))


def _calls(d):
  """Every metric: (our call with scikit-learn's keywords, the reference value)."""
  w, yb, yc, pc, score = d["w"], d["yb"], d["yc"], d["pc"], d["score"]
  cls = dict(y_true=yc, y_pred=pc, sample_weight=w)
  reg = dict(y_true=d["t"], y_pred=d["p"], sample_weight=w)
  cost = np.array([[0.0, 1.0], [4.0, 0.0]], np.float32)
  return {
      "accuracy": (metrics.accuracy(**cls), skm.accuracy_score(**cls)),
      "precision": (metrics.precision(**cls, labels=[2, 0, 1], average="macro"),
                    skm.precision_score(**cls, labels=[2, 0, 1], average="macro")),
      "recall": (metrics.recall(y_true=yb, y_pred=d["pb"], sample_weight=w),
                 skm.recall_score(y_true=yb, y_pred=d["pb"], sample_weight=w)),
      "f1_score": (metrics.f1_score(**cls, labels=[3, 1], average=None),
                   skm.f1_score(**cls, labels=[3, 1], average=None)),
      "fbeta_score": (metrics.fbeta_score(**cls, beta=0.5, average="weighted"),
                      skm.fbeta_score(**cls, beta=0.5, average="weighted")),
      "confusion_matrix": (metrics.confusion_matrix(**cls, labels=[3, 0, 2]),
                           skm.confusion_matrix(**cls, labels=[3, 0, 2])),
      "roc_auc": (metrics.roc_auc(y_true=yb, y_score=score, sample_weight=w),
                  skm.roc_auc_score(y_true=yb, y_score=score, sample_weight=w)),
      "roc_curve": (metrics.roc_curve(y_true=yb, y_score=score, sample_weight=w),
                    skm.roc_curve(y_true=yb, y_score=score, sample_weight=w)),
      # probas_pred= is scikit-learn's former name (before 1.7) for y_score.
      "precision_recall_curve": (metrics.precision_recall_curve(y_true=yb, probas_pred=score),
                                 skm.precision_recall_curve(y_true=yb, y_score=score)),
      "average_precision": (
          metrics.average_precision(y_true=yb, y_score=score, sample_weight=w),
          skm.average_precision_score(y_true=yb, y_score=score, sample_weight=w)),
      "mean_squared_error": (metrics.mean_squared_error(**reg, multioutput="raw_values"),
                             skm.mean_squared_error(**reg, multioutput="raw_values")),
      "root_mean_squared_error": (metrics.root_mean_squared_error(**reg),
                                  skm.root_mean_squared_error(**reg)),
      "mean_absolute_error": (metrics.mean_absolute_error(**reg),
                              skm.mean_absolute_error(**reg)),
      "r2_score": (metrics.r2_score(**reg, multioutput="variance_weighted"),
                   skm.r2_score(**reg, multioutput="variance_weighted")),
      "mean_pinball_loss": (metrics.mean_pinball_loss(**reg, alpha=0.3),
                            skm.mean_pinball_loss(**reg, alpha=0.3)),
      "brier_score": (metrics.brier_score(y_true=yb, y_proba=score, sample_weight=w),
                      skm.brier_score_loss(y_true=yb, y_proba=score, sample_weight=w)),
      "calibration_curve": (metrics.calibration_curve(y_true=yb, y_prob=score, n_bins=4),
                            skc.calibration_curve(y_true=yb, y_prob=score, n_bins=4)),
      # Not in scikit-learn: the keywords must mean what our positional call means.
      "underprediction_rate": (metrics.underprediction_rate(**reg),
                               metrics.underprediction_rate(d["p"], d["t"], weights=w)),
      "expected_calibration_error": (
          metrics.expected_calibration_error(y_true=d["y3"], y_prob=d["proba"],
                                             sample_weight=w),
          metrics.expected_calibration_error(d["proba"], d["y3"], weights=w)),
      "expected_cost": (metrics.expected_cost(y_true=yb, y_pred=d["pb"], cost_matrix=cost,
                                              sample_weight=w),
                        metrics.expected_cost(d["pb"], yb, cost_matrix=cost, weights=w)),
      "best_threshold": (metrics.best_threshold(y_true=yb, y_score=score, cost_fp=1.0,
                                                cost_fn=3.0, sample_weight=w),
                         metrics.best_threshold(score, yb, cost_fp=1.0, cost_fn=3.0,
                                                weights=w)),
  }


@pytest.mark.slow  # compiles every metric once (~25 programs)
def test_every_metric_accepts_sklearn_keywords_with_sklearn_meaning():
  d = _data()
  calls = _calls(d)
  no_arrays = {"cost_threshold", "UndefinedMetricWarning"}  # keyword-only costs; a class
  assert set(calls) == set(metrics.__all__) - no_arrays
  for name, (got, expected) in calls.items():
    got, expected = jax.tree.leaves(got), jax.tree.leaves(expected)
    assert len(got) == len(expected), name
    for g, e in zip(got, expected):
      np.testing.assert_allclose(np.asarray(g), e, rtol=2e-5, atol=1e-6, err_msg=name)
  # The functions keep their own names, signatures and docstrings, plus the aliases.
  for name in calls:
    fn = getattr(metrics, name)
    assert fn.__name__ == name and "scikit-learn's keywords" in fn.__doc__
  assert list(inspect.signature(metrics.precision).parameters)[:2] == ["predictions", "labels"]
  # Under jit, by keyword.
  got = jax.jit(partial(metrics.f1_score, average="macro", labels=[0, 2]))(
      y_true=d["yc"], y_pred=d["pc"])
  np.testing.assert_allclose(
      got, skm.f1_score(d["yc"], d["pc"], average="macro", labels=[0, 2]), rtol=1e-6)


def test_alias_with_the_argument_it_stands_for_is_a_type_error():
  y, p = np.array([0, 1, 1]), np.array([1, 1, 0])
  cases = [
      (lambda: metrics.precision(p, y_pred=p), r"predictions as positional .* y_pred="),
      (lambda: metrics.precision(p, y, y_true=y), r"labels as positional .* y_true="),
      (lambda: metrics.accuracy(predictions=p, y_pred=p, labels=y),
       r"predictions= and y_pred="),
      (lambda: metrics.brier_score(y_true=y, y_prob=p * 0.5, y_proba=p * 0.5),
       r"y_prob= and y_proba="),
      (lambda: metrics.mean_squared_error(p * 1.0, y * 1.0, weights=None, sample_weight=y),
       r"weights= and sample_weight="),
      (lambda: metrics.precision(p, y, labels=[0, 1]), r"labels= and 2 positional arrays"),
      (lambda: metrics.recall(y_true=y, y_pred=p, labels=[1], classes=[1]),
       r"labels= .* and classes="),
  ]
  for call, match in cases:
    with pytest.raises(TypeError, match=match):
      call()


def test_labels_subset_and_order_match_sklearn():
  # As scikit-learn's test_classification.py::test_confusion_matrix_multiclass_subset_labels
  # and ::test_precision_recall_f1_score_multiclass (labels=), on random data.
  d = _data(1)
  y, p, w = d["yc"], d["pc"], d["w"]
  for labels in ([0, 1], [2, 1], [2, 5], [3, 0, 2, 1, 6]):
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true=y, y_pred=p, labels=labels),
                                  skm.confusion_matrix(y, p, labels=labels))
    for average in ("micro", "macro", "weighted", None):
      for ours, sk in ((metrics.precision, skm.precision_score),
                       (metrics.recall, skm.recall_score),
                       (partial(metrics.fbeta_score, beta=2.0), partial(skm.fbeta_score, beta=2.0))):
        kw = dict(labels=labels, average=average, sample_weight=w, zero_division=0.0)
        np.testing.assert_allclose(ours(y_true=y, y_pred=p, **kw), sk(y, p, **kw), rtol=1e-5)
  # Under jit classes are static: no num_classes needed.
  got = jax.jit(partial(metrics.recall, classes=(2, 5), average="macro"))(p, y)
  np.testing.assert_allclose(got, skm.recall_score(y, p, labels=[2, 5], average="macro",
                                                   zero_division=0.0), rtol=1e-6)
  # scikit-learn's test_classification.py::test_confusion_matrix_error.
  for labels, match in (([], "non-empty"), ([5, 6], "At least one class"),
                        ([1, 1], "must not repeat")):
    with pytest.raises(ValueError, match=match):
      metrics.confusion_matrix(y_true=y, y_pred=p, labels=labels)
  with pytest.raises(TypeError, match="classes"):
    metrics.precision(p, y, classes=[0.5, 1.0], average="macro")


def test_multioutput_matches_sklearn():
  # scikit-learn's test_regression.py::test_regression_custom_weights (values to 2-3
  # decimals) and ::test_multioutput_regression.
  y_true = np.array([[1, 2], [2.5, -1], [4.5, 3], [5, 7]], np.float32)
  y_pred = np.array([[1, 1], [2, -1], [5, 4], [5, 6.5]], np.float32)
  for fn, expected, decimal in ((metrics.mean_squared_error, 0.39, 2),
                                (metrics.root_mean_squared_error, 0.59, 2),
                                (metrics.mean_absolute_error, 0.475, 3),
                                (metrics.r2_score, 0.94, 2)):
    np.testing.assert_almost_equal(fn(y_pred, y_true, multioutput=[0.4, 0.6]), expected, decimal)
  y_true = np.array([[1, 0, 0, 1], [0, 1, 1, 1], [1, 1, 0, 1]], np.float32)
  y_pred = np.array([[0, 0, 0, 1], [1, 0, 1, 1], [0, 0, 0, 1]], np.float32)
  np.testing.assert_allclose(metrics.mean_pinball_loss(y_pred, y_true), (1 + 2 / 3) / 8,
                             rtol=1e-6)
  # Every mode against the installed scikit-learn, weighted and under jit.
  d = _data(2)
  for name in ("mean_squared_error", "root_mean_squared_error", "mean_absolute_error",
               "mean_pinball_loss", "r2_score"):
    modes = ["raw_values", "uniform_average", np.array([0.25, 0.75], np.float32)]
    modes += ["variance_weighted"] if name == "r2_score" else []
    for mode in modes:
      expected = getattr(skm, name)(d["t"], d["p"], sample_weight=d["w"], multioutput=mode)
      got = getattr(metrics, name)(d["p"], d["t"], weights=d["w"], multioutput=mode)
      np.testing.assert_allclose(got, expected, rtol=2e-5, err_msg=f"{name} {mode}")
  got = jax.jit(partial(metrics.r2_score, multioutput="raw_values"))(d["p"], d["t"])
  np.testing.assert_allclose(got, skm.r2_score(d["t"], d["p"], multioutput="raw_values"),
                             rtol=2e-5)
  raw = metrics.underprediction_rate(d["p"], d["t"], multioutput="raw_values")
  np.testing.assert_allclose(raw, (d["p"] < d["t"]).mean(axis=0), rtol=1e-6)
  with pytest.raises(ValueError, match="multioutput must be one of"):
    metrics.mean_squared_error(d["p"], d["t"], multioutput="variance_weighted")
  with pytest.raises(ValueError, match=r"multioutput weights must have shape \(2,\)"):
    metrics.r2_score(d["p"], d["t"], multioutput=[1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match="several outputs"):
    metrics.r2_score(d["p"][:, 0], d["t"][:, 0], multioutput=[1.0])


def test_bad_label_values_are_value_errors_and_wrong_types_type_errors():
  # scikit-learn's test_common.py::test_classification_inf_nan_input and
  # ::test_classification_binary_continuous_input raise ValueError for these.
  y = np.array([0.0, 1.0, 1.0, 0.0])
  for bad in (np.nan, np.inf, 0.5):
    wrong = y.copy()
    wrong[1] = bad
    for call in (lambda: metrics.accuracy(wrong, y), lambda: metrics.precision(y, wrong),
                 lambda: metrics.confusion_matrix(wrong, y),
                 lambda: metrics.brier_score(np.full(4, 0.5, np.float32), wrong),
                 lambda: metrics.expected_cost(wrong, y, cost_matrix=np.ones((2, 2)))):
      with pytest.raises(ValueError, match="class ids"):
        call()
  # Excluded rows may hold anything.
  assert metrics.accuracy(np.array([np.nan, 1.0]), np.array([0, 1]),
                          where=np.array([False, True])) == 1.0
  for call in (lambda: metrics.accuracy(np.array(["a", "b"]), np.array([0, 1])),
               lambda: metrics.roc_auc(np.array(["a", "b"]), np.array([0, 1]))):
    with pytest.raises(TypeError):
      call()
  # Integral floats are class ids, as in scikit-learn.
  np.testing.assert_allclose(metrics.f1_score(y_true=y, y_pred=y[::-1]),
                             skm.f1_score(y, y[::-1]), rtol=1e-6)


def test_counts_are_jax_default_integers_and_integer_weights_stay_integral(x64):
  # With x64 on, as scikit-learn's int64 counts (integer sample_weight included).
  y, p = np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1])
  cm = metrics.confusion_matrix(p, y)
  assert cm.dtype == jnp.int64
  w = np.array([1, 2, 3, 4, 5])
  cm = metrics.confusion_matrix(p, y, weights=w)
  expected = skm.confusion_matrix(y, p, sample_weight=w)
  assert cm.dtype == jnp.int64 and expected.dtype == np.int64
  np.testing.assert_array_equal(cm, expected)
  assert metrics.confusion_matrix(p, y, weights=w.astype(np.float64)).dtype == jnp.float64
  # Counts of 2**24 + 1 rows are exact (float32 could not hold them).
  n = 2**24 + 1
  assert int(metrics.confusion_matrix(np.zeros(n, np.int8), np.zeros(n, np.int8))[0, 0]) == n


def test_int32_counts_without_x64():
  y, p = np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1])
  assert metrics.confusion_matrix(p, y, weights=np.array([1, 2, 3, 4, 5])).dtype == jnp.int32


def _warned(fn):
  with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    fn()
  return [str(r.message) for r in record
          if r.category in (SkUndefinedMetricWarning, metrics.UndefinedMetricWarning)]


def test_undefined_metric_warnings_as_sklearn():
  # The same UndefinedMetricWarning messages as scikit-learn's, in its cases
  # (sklearn/metrics/_classification.py, _prf_divide / _warn_prf; _regression.py, r2_score).
  yb, pb0 = np.array([0, 1, 0, 1]), np.array([0, 0, 0, 0])
  y, p = np.array([0, 1, 2, 0]), np.array([0, 2, 2, 0])
  cases = [
      ("precision", dict(y_true=yb, y_pred=pb0)),
      ("recall", dict(y_true=pb0, y_pred=yb)),
      ("f1_score", dict(y_true=pb0, y_pred=pb0)),
      ("fbeta_score", dict(y_true=pb0, y_pred=pb0, beta=0.0)),  # no F warning: beta = 0
      ("precision", dict(y_true=y, y_pred=p, average="macro")),
      ("recall", dict(y_true=y, y_pred=p, average=None, labels=[0, 1, 3])),
      ("f1_score", dict(y_true=y, y_pred=p, average="macro", labels=[0, 3])),
      ("f1_score", dict(y_true=y, y_pred=p, average="micro", labels=[3])),
      ("precision", dict(y_true=yb, y_pred=pb0, zero_division=0.0)),  # explicit: silent
      ("recall", dict(y_true=y, y_pred=p, average="weighted")),  # defined: silent
  ]
  for name, kw in cases:
    sk = {"precision": skm.precision_score, "recall": skm.recall_score,
          "f1_score": skm.f1_score, "fbeta_score": skm.fbeta_score}[name]
    assert _warned(lambda: getattr(metrics, name)(**kw)) == _warned(lambda: sk(**kw)), (name, kw)
  assert len(_warned(lambda: metrics.precision(y_true=yb, y_pred=pb0))) == 1
  # Under jit nothing can be inspected, so nothing is warned; the value is the same.
  assert _warned(lambda: jax.jit(metrics.precision)(pb0, yb)) == []
  assert jax.jit(metrics.precision)(pb0, yb) == 0.0
  one = dict(y_true=np.array([1.0], np.float32), y_pred=np.array([2.0], np.float32))
  assert _warned(lambda: metrics.r2_score(**one)) == _warned(lambda: skm.r2_score(**one)) != []
  assert _warned(lambda: jax.jit(metrics.r2_score)(one["y_pred"], one["y_true"])) == []


def test_float64_with_x64_off_warns_once_as_the_linear_models(monkeypatch):
  monkeypatch.setattr(_aliases, "_warned_float32", False)
  t = np.array([1.0, 2.0, 3.0])
  with pytest.warns(UserWarning, match="lossreg_jax.metrics.r2_score received float64") as rec:
    metrics.r2_score(t * 1.1, t)
  assert rec[0].filename == __file__  # points at the caller
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    metrics.mean_squared_error(t, t)  # once per process
    monkeypatch.setattr(_aliases, "_warned_float32", False)
    metrics.mean_squared_error(jnp.asarray(t), jnp.asarray(t))  # JAX arrays: float32 already
    metrics.accuracy(np.array([0, 1]), np.array([0, 1]))  # integers
    metrics.accuracy(np.array([0.0, 1.0]), np.array([0.0, 1.0]))  # float64 class ids: exact
    metrics.roc_auc(np.array([0.2, 0.7], np.float32), np.array([0.0, 1.0]))
  with pytest.warns(UserWarning, match="metrics.precision received float64"):
    metrics.precision(np.array([0, 1]), np.array([0, 1]), weights=np.array([0.5, 1.5]))


def test_swapped_calibration_arguments_are_named():
  y = np.array([0, 1, 1, 0])
  prob = np.array([0.2, 0.7, 0.9, 0.4], np.float32)
  for fn in (metrics.brier_score, metrics.calibration_curve,
             metrics.expected_calibration_error):
    with pytest.raises(ValueError, match=r"look swapped.*\(probabilities, labels\)"):
      fn(y, prob)  # scikit-learn's positional order
    with pytest.raises(ValueError, match="look swapped"):
      fn(y.astype(np.float32), prob)
  np.testing.assert_allclose(metrics.brier_score(y_true=y, y_prob=prob),
                             skm.brier_score_loss(y, prob), rtol=1e-6)


def _ece_reference(bins, correct, conf, n_bins):
  gaps = np.bincount(bins, correct - conf.astype(np.float64), minlength=n_bins)
  return np.abs(gaps).sum() / len(conf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ece_bins_at_their_edges(dtype, x64):
  # Top-label confidences exactly on the edges k/10 (float64 linspace's values
  # and their nearest float32), each paired with a row 0.04 below whose gap
  # cancels it when both share a bin: an edge row moved to the neighbouring
  # bin changes the ECE by more than 0.01.
  n_bins = 10
  edges = np.linspace(0.0, 1.0, n_bins + 1)
  conf = np.array([c for k in range(4, n_bins + 1) for c in (edges[k], edges[k] - 0.04)], dtype)
  correct = np.tile([1, 0], len(conf) // 2)
  rest = (1 - conf) / 2  # class 0 is the top label (conf >= 0.36 > rest)
  prob = np.stack([conf, rest, rest], axis=1).astype(dtype)
  labels = np.where(correct == 1, 0, 1)
  got = metrics.expected_calibration_error(prob, labels, n_bins=n_bins)
  # The documented binning: right-closed (b/n, (b+1)/n], exact float64 edges.
  conf64 = conf.astype(np.float64)
  bins = np.searchsorted(edges[1:-1], conf64, side="left")
  expected = _ece_reference(bins, correct, conf, n_bins)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # The neighbouring binnings (left-closed; edges rounded to nearest in dtype)
  # move edge rows and give another value.
  moved = 0
  for other in (np.searchsorted(edges[1:-1], conf64, side="right"),
                np.searchsorted(edges[1:-1].astype(dtype), conf, side="left")):
    if np.any(other != bins):
      moved += 1
      assert abs(_ece_reference(other, correct, conf, n_bins) - expected) > 0.01
  assert moved >= 1
  # scikit-learn's calibration_curve bins as documented: its mean confidence per bin.
  _, prob_pred = skc.calibration_curve(correct, conf, n_bins=n_bins)
  ref = [conf64[bins == b].mean() for b in range(n_bins) if np.any(bins == b)]
  np.testing.assert_allclose(prob_pred, ref, rtol=1e-6)
  # 0.5 itself, binary form: p = 0.5 (confidence 0.5, predicted 0, correct) is in
  # (0.4, 0.5]; p = 0.45 (confidence 0.55, predicted 0, wrong) in (0.5, 0.6].
  got = metrics.expected_calibration_error(np.array([0.5, 0.45], dtype), np.array([0, 1]),
                                           n_bins=10)
  np.testing.assert_allclose(got, (0.5 + 0.55) / 2, rtol=1e-6)  # same bin: 0.025
