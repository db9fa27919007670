"""Tests for lossreg_jax.metrics against scikit-learn.

Inputs share one length (N) so that compiled programs are reused across tests.
"""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from lossreg_jax import metrics

C = 4  # classes in the multiclass tests
N = 60
AVERAGES = ["binary", "micro", "macro", "weighted", None]


def _data(seed, num_classes=C):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, N)
  # Half right, half random predictions.
  preds = np.where(rng.random(N) < 0.5, labels, rng.integers(0, num_classes, N))
  weights = rng.uniform(0.1, 3.0, N).astype(np.float32)
  where = rng.random(N) < 0.7
  return preds, labels, weights, where


SK = {
    "precision": skm.precision_score,
    "recall": skm.recall_score,
    "f1_score": skm.f1_score,
    "fbeta_score": partial(skm.fbeta_score, beta=0.5),
}
OURS = {
    "precision": metrics.precision,
    "recall": metrics.recall,
    "f1_score": metrics.f1_score,
    "fbeta_score": partial(metrics.fbeta_score, beta=0.5),
}


def _sk(name, labels, preds, average, **kwargs):
  if average is None:
    kwargs.setdefault("labels", np.arange(C))
  return SK[name](labels, preds, average=average, **kwargs)


@pytest.mark.parametrize("average", AVERAGES)
def test_matches_sklearn_plain_weighted_and_masked(average):
  num_classes = 2 if average == "binary" else C
  preds, labels, weights, where = _data(seed=AVERAGES.index(average), num_classes=num_classes)
  for name, fn in OURS.items():
    fn = partial(fn, num_classes=num_classes, average=average)
    np.testing.assert_allclose(fn(preds, labels), _sk(name, labels, preds, average),
                               rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        fn(preds, labels, weights=weights),
        _sk(name, labels, preds, average, sample_weight=weights), rtol=1e-5, err_msg=name)
    # Masked: sklearn sees the filtered arrays.
    np.testing.assert_allclose(
        fn(preds, labels, weights=weights, where=where),
        _sk(name, labels[where], preds[where], average, sample_weight=weights[where]),
        rtol=1e-5, err_msg=name)


def test_all_averages_under_one_jit_and_traced_once():
  preds, labels, weights, where = _data(seed=20)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def all_metrics(p, t, w, m):
    out = {}
    for name, fn in OURS.items():
      out[f"{name}/binary"] = fn(p % 2, t % 2, weights=w, where=m, pos_label=0)
      for average in AVERAGES[1:]:
        out[f"{name}/{average}"] = fn(p, t, num_classes=C, average=average, weights=w,
                                      where=m)
    out["accuracy"] = metrics.accuracy(p, t, weights=w, where=m)
    return out

  for seed in (20, 21):  # the second call reuses the compiled program
    preds, labels, weights, where = _data(seed=seed)
    got = all_metrics(preds, labels, weights, where)
    p, t, w = preds[where], labels[where], weights[where]
    for key, value in got.items():
      if key == "accuracy":
        expected = skm.accuracy_score(t, p, sample_weight=w)
      else:
        name, average = key.split("/")
        average = None if average == "None" else average
        if average == "binary":
          expected = SK[name](t % 2, p % 2, pos_label=0, sample_weight=w)
        else:
          expected = _sk(name, t, p, average, sample_weight=w)
      np.testing.assert_allclose(value, expected, rtol=1e-5, err_msg=key)


def test_float32_by_default_float64_with_x64_and_bool_inputs(x64):
  preds, labels, weights, _ = _data(seed=4, num_classes=2)
  got = metrics.f1_score(preds.astype(bool), labels.astype(bool), weights=weights.astype(float))
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(got, skm.f1_score(labels, preds, sample_weight=weights),
                             rtol=1e-12)
  with jax.enable_x64(False):
    assert metrics.f1_score(preds, labels).dtype == jnp.float32


# Class 2 is true but never predicted; class 3 is predicted but never true.
ZD_LABELS = np.array([0, 1, 2, 2, 1, 0, 1, 0])
ZD_PREDS = np.array([0, 1, 1, 1, 3, 0, 1, 0])


@pytest.mark.parametrize("zero_division", [0.0, 1.0, np.nan])
def test_zero_division_as_sklearn(zero_division):
  for average in AVERAGES[1:]:
    for name, fn in OURS.items():
      got = fn(ZD_PREDS, ZD_LABELS, average=average, zero_division=zero_division)
      expected = _sk(name, ZD_LABELS, ZD_PREDS, average, zero_division=zero_division)
      np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"{name} {average}")


def test_binary_never_predicted_positive():
  preds = np.zeros_like(ZD_LABELS)
  labels = ZD_LABELS % 2
  for zd in (0.0, 1.0):
    for name, fn in OURS.items():
      np.testing.assert_allclose(fn(preds, labels, zero_division=zd),
                                 SK[name](labels, preds, zero_division=zd), err_msg=name)


@pytest.mark.parametrize("average", AVERAGES)
def test_empty_selection_gives_zero_division_never_nan(average):
  preds, labels, _, _ = _data(seed=5, num_classes=2)
  nothing = np.zeros(N, bool)
  for zd in (0.0, 1.0):
    got = np.asarray(metrics.f1_score(preds, labels, average=average, num_classes=2,
                                      zero_division=zd, where=nothing))
    np.testing.assert_array_equal(got, np.full_like(got, zd))


def test_all_zero_weights_give_zero_division():
  # sklearn refuses all-zero weights; every per-class denominator is 0 here.
  preds, labels, _, _ = _data(seed=6)
  for zd in (0.0, 1.0):
    got = metrics.recall(preds, labels, average="weighted", weights=np.zeros(N),
                         zero_division=zd)
    assert got == zd
  assert metrics.accuracy(preds, labels, weights=np.zeros(N)) == 0.0


def test_accuracy_matches_sklearn():
  preds, labels, weights, where = _data(seed=7)
  np.testing.assert_allclose(metrics.accuracy(preds, labels),
                             skm.accuracy_score(labels, preds), rtol=1e-6)
  np.testing.assert_allclose(
      metrics.accuracy(preds, labels, weights=weights, where=where),
      skm.accuracy_score(labels[where], preds[where], sample_weight=weights[where]),
      rtol=1e-6)
  assert metrics.accuracy(preds, labels, where=np.zeros(N, bool)) == 0.0


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(normalize):
  preds, labels, weights, where = _data(seed=8)
  preds[labels == 3] = 0  # an empty column, and class C never appears: an empty row
  got = metrics.confusion_matrix(preds, labels, num_classes=C + 1, normalize=normalize,
                                 weights=weights, where=where)
  expected = skm.confusion_matrix(labels[where], preds[where], labels=np.arange(C + 1),
                                  sample_weight=weights[where], normalize=normalize)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_confusion_matrix_counts_are_exact_int_sums():
  preds, labels, weights, _ = _data(seed=9)
  counts = jax.jit(partial(metrics.confusion_matrix, num_classes=C))(preds, labels)
  assert counts.dtype == jnp.int32 and counts.shape == (C, C)
  np.testing.assert_array_equal(counts, skm.confusion_matrix(labels, preds))
  # Sums, not means: the matrices of two halves (shards) add up to the whole.
  halves = [np.arange(N) < N // 2, np.arange(N) >= N // 2]
  parts = sum(metrics.confusion_matrix(preds, labels, num_classes=C, weights=weights, where=h)
              for h in halves)
  np.testing.assert_allclose(
      parts, metrics.confusion_matrix(preds, labels, num_classes=C, weights=weights), rtol=1e-6)


def test_vmap_over_batches():
  preds, labels, _, _ = _data(seed=10)
  fn = jax.vmap(partial(metrics.f1_score, num_classes=C, average="macro"))
  got = fn(preds.reshape(3, -1), labels.reshape(3, -1))
  for i, (p, t) in enumerate(zip(preds.reshape(3, -1), labels.reshape(3, -1))):
    np.testing.assert_allclose(got[i], skm.f1_score(t, p, average="macro"), rtol=1e-6)


def _roc_data(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, N)
  # Coarse scores: many ties, within and across classes.
  scores = np.round(labels * 0.3 + rng.random(N), 1).astype(np.float32)
  return scores, labels, rng.uniform(0.1, 2.0, N).astype(np.float32), rng.random(N) < 0.6


def test_roc_auc_matches_sklearn_with_ties_weights_and_mask():
  scores, labels, weights, where = _roc_data(seed=0)
  assert len(np.unique(scores)) < N // 4
  fn = metrics.roc_auc
  np.testing.assert_allclose(jax.jit(fn)(scores, labels), skm.roc_auc_score(labels, scores),
                             rtol=1e-6)
  np.testing.assert_allclose(fn(scores, labels, weights=weights),
                             skm.roc_auc_score(labels, scores, sample_weight=weights),
                             rtol=1e-5)
  np.testing.assert_allclose(
      fn(scores, labels, weights=weights, where=where),
      skm.roc_auc_score(labels[where], scores[where], sample_weight=weights[where]),
      rtol=1e-5)
  # Distinct scores (no ties) and all scores tied.
  distinct = np.random.default_rng(1).random(N).astype(np.float32)
  np.testing.assert_allclose(fn(distinct, labels), skm.roc_auc_score(labels, distinct),
                             rtol=1e-6)
  np.testing.assert_allclose(fn(np.zeros(N, np.float32), labels), 0.5)
  # Low-precision and huge scores: ranks are all that matter.
  for dtype in (jnp.bfloat16, jnp.float16):
    low = jnp.asarray(distinct * 1e4, dtype)
    got = fn(low, labels)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, skm.roc_auc_score(labels, np.asarray(low, np.float64)),
                               rtol=1e-6)


def test_roc_auc_one_class_gives_zero_division_and_finite_grad():
  scores, labels, _, _ = _roc_data(seed=2)
  ones = np.ones(N, int)
  assert metrics.roc_auc(scores, ones) == 0.0
  assert jnp.isnan(metrics.roc_auc(scores, ones, zero_division=np.nan))
  assert metrics.roc_auc(scores, labels, where=np.zeros(N, bool)) == 0.0
  grad = jax.grad(metrics.roc_auc)(jnp.asarray(scores), labels)
  assert jnp.all(jnp.isfinite(grad))


def test_bad_inputs_raise():
  p = jnp.array([0, 1, 2])
  with pytest.raises(ValueError, match="num_classes"):
    jax.jit(partial(metrics.f1_score, average="macro"))(p, p)
  with pytest.raises(ValueError, match="num_classes"):
    jax.jit(metrics.confusion_matrix)(p, p)
  with pytest.raises(TypeError, match="num_classes"):
    metrics.recall(p, p, average=None, num_classes=3.0)
  with pytest.raises(ValueError, match="average"):
    metrics.precision(p, p)  # multiclass values with the binary default
  with pytest.raises(ValueError, match="average"):
    metrics.precision(p, p, average="samples")
  # A bad value is a ValueError (as scikit-learn's), a wrong type a TypeError;
  # integral floats are class ids, as in scikit-learn.
  for bad in (0.5, np.nan, np.inf):
    with pytest.raises(ValueError, match="predictions must hold (finite|integral) class ids"):
      metrics.recall(jnp.array([bad, 1.0]), jnp.array([0, 1]))
  with pytest.raises(TypeError, match="predictions"):
    metrics.recall(np.array(["a", "b"]), jnp.array([0, 1]))
  with pytest.raises(TypeError, match="under jax.jit"):
    jax.jit(metrics.recall)(jnp.array([0.0, 1.0]), jnp.array([0, 1]))
  assert metrics.recall(jnp.array([0.0, 1.0]), jnp.array([0, 1])) == 1.0
  with pytest.raises(ValueError, match="shape"):
    metrics.accuracy(p, p[:2])
  with pytest.raises(ValueError, match="labels"):
    metrics.confusion_matrix(p, jnp.array([0, 1, 5]), num_classes=3)
  with pytest.raises(ValueError, match="zero_division"):
    metrics.f1_score(p, p, average="macro", zero_division=2.0)
  with pytest.raises(ValueError, match="beta"):
    metrics.fbeta_score(p, p, beta=-1.0, average="macro")
  with pytest.raises(ValueError, match="pos_label"):
    metrics.recall(p % 2, p % 2, pos_label=2)
  with pytest.raises(ValueError, match="labels"):
    metrics.roc_auc(jnp.array([0.1, 0.2]), jnp.array([0, 2]))
  with pytest.raises(ValueError, match="weights"):
    metrics.accuracy(p, p, weights=jnp.ones(2))


@pytest.mark.parametrize("beta", [0.0, 2.0, float("inf")])
def test_fbeta_limits_match_sklearn(beta):
  preds, labels, weights, _ = _data(seed=12)
  got = metrics.fbeta_score(preds, labels, beta=beta, average="macro", weights=weights)
  expected = skm.fbeta_score(labels, preds, beta=beta, average="macro", sample_weight=weights)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
