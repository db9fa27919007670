"""Tests for lossreg_jax.selection against scikit-learn."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.feature_selection import RFE
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from lossreg_jax import selection


def _sk_masks(splitter, n, y=None):
  masks = np.zeros((splitter.get_n_splits(), n), bool)
  for i, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), y)):
    masks[i, test] = True
  return masks


@pytest.mark.parametrize("n,k", [(10, 3), (7, 7), (12, 5), (9, 2)])
def test_kfold_masks_equal_sklearn_kfold(n, k):
  got = selection.kfold_masks(n, k)
  assert got.shape == (k, n) and got.dtype == jnp.bool_
  np.testing.assert_array_equal(got, _sk_masks(KFold(k), n))


def test_shuffled_kfold_is_a_permuted_partition_with_kfold_sizes():
  n, k = 23, 4
  fn = jax.jit(selection.kfold_masks, static_argnums=(0, 1))
  a = np.asarray(fn(n, k, key=jax.random.key(0)))
  b = np.asarray(fn(n, k, key=jax.random.key(1)))
  sizes = _sk_masks(KFold(k), n).sum(axis=1)
  for masks in (a, b):
    np.testing.assert_array_equal(masks.sum(axis=0), np.ones(n))  # each row held out once
    np.testing.assert_array_equal(masks.sum(axis=1), sizes)
  assert not np.array_equal(a, b)
  assert not np.array_equal(a, _sk_masks(KFold(k), n))


def _labels(n, seed):
  rng = np.random.default_rng(seed)
  # Classes appear out of sorted order (scikit-learn encodes by first appearance).
  return rng.choice(np.array([7, 2, 5]), n, p=[0.5, 0.3, 0.2])


@pytest.mark.parametrize("n,k,seed", [(31, 3, 0), (17, 5, 2)])
def test_stratified_without_key_equals_sklearn_exactly(n, k, seed):
  y = _labels(n, seed)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # a class smaller than k
    expected = _sk_masks(StratifiedKFold(k), n, y)
  np.testing.assert_array_equal(selection.kfold_masks(n, k, stratify=y), expected)


def test_stratified_with_key_has_sklearn_per_class_counts():
  n, k = 31, 3
  y = _labels(n, seed=3)
  reference = _sk_masks(StratifiedKFold(k, shuffle=True, random_state=0), n, y)
  # Traced labels and key.
  fn = jax.jit(lambda key, y: selection.kfold_masks(n, k, key=key, stratify=y))
  got = np.asarray(fn(jax.random.key(0), y))
  np.testing.assert_array_equal(got.sum(axis=0), np.ones(n))
  for cls in np.unique(y):
    np.testing.assert_array_equal(got[:, y == cls].sum(axis=1),
                                  reference[:, y == cls].sum(axis=1))
  assert not np.array_equal(got, selection.kfold_masks(n, k, stratify=y))


def test_kfold_masks_bad_input():
  with pytest.raises(ValueError, match=r"k=1.*n=5"):
    selection.kfold_masks(5, 1)
  with pytest.raises(ValueError, match=r"k=6.*n=5"):
    selection.kfold_masks(5, 6)
  with pytest.raises(TypeError, match="k"):
    selection.kfold_masks(5, 2.0)
  with pytest.raises(ValueError, match="stratify"):
    selection.kfold_masks(5, 2, stratify=np.zeros(4, int))
  with pytest.raises(ValueError, match="k=3"):
    selection.kfold_masks(4, 3, stratify=np.array([0, 0, 1, 1]))


ALPHA = 2.0


def ridge_fit_eval(data, train_w, test_w):
  """Ridge with intercept via weighted normal equations; weighted test MSE."""
  X, y = data
  x_mean = train_w @ X / train_w.sum()
  y_mean = train_w @ y / train_w.sum()
  Xc = X - x_mean[None, :]
  gram = Xc.T @ (train_w[:, None] * Xc) + ALPHA * jnp.eye(X.shape[1])
  coef = jnp.linalg.solve(gram, Xc.T @ (train_w * (y - y_mean)))
  residual = y - (X @ coef + y_mean - x_mean @ coef)
  return {"mse": test_w @ residual**2 / test_w.sum(), "coef": coef}


def _regression(n=53, d=4, seed=0):
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, d))
  y = X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) + 1.0
  return X, y


def test_cross_validate_equals_sklearn_loop_and_traces_once(x64):
  X, y = _regression()
  traces = []

  def fit_eval(data, train_w, test_w):
    traces.append(train_w.shape)
    return ridge_fit_eval(data, train_w, test_w)

  masks = selection.kfold_masks(len(y), 5)
  scores = selection.cross_validate(fit_eval, (jnp.asarray(X), jnp.asarray(y)), masks)
  expected = -cross_val_score(Ridge(ALPHA), X, y, cv=KFold(5),
                              scoring="neg_mean_squared_error")
  np.testing.assert_allclose(scores["mse"], expected, rtol=1e-10)
  assert scores["coef"].shape == (5, X.shape[1])
  for i, (train, _) in enumerate(KFold(5).split(X)):
    np.testing.assert_allclose(scores["coef"][i], Ridge(ALPHA).fit(X[train], y[train]).coef_,
                               rtol=1e-10)
  # One trace, under vmap: the weights seen have no fold axis.
  assert traces == [(len(y),)]
  # Cached per function: a second call with new data does not retrace.
  selection.cross_validate(fit_eval, (jnp.asarray(X) + 1.0, jnp.asarray(y)), masks)
  assert len(traces) == 1


def test_cross_validate_bad_masks():
  X, y = _regression(n=10)
  with pytest.raises(TypeError, match="masks"):
    selection.cross_validate(ridge_fit_eval, (X, y), np.ones((2, 10)))
  with pytest.raises(ValueError, match="masks"):
    selection.cross_validate(ridge_fit_eval, (X, y), np.ones(10, bool))
  with pytest.raises(ValueError, match="devices"):
    selection.cross_validate(ridge_fit_eval, (X, y), selection.kfold_masks(10, 3),
                             devices=jax.devices() * 2)


def _sk_rfe(estimator, X, y, **kwargs):
  r = RFE(estimator, **kwargs).fit(X, y)
  return r.support_, r.ranking_


@pytest.mark.parametrize("kwargs", [
    {},
    {"n_features_to_select": 3, "step": 2},
    {"n_features_to_select": 0.5, "step": 0.3},
    {"n_features_to_select": 1, "step": 3},
])
def test_rfe_equals_sklearn_with_sklearn_fits(kwargs):
  X, y = _regression(n=40, d=9, seed=1)
  fit = lambda X, y: LinearRegression().fit(X, y).coef_
  support, ranking = selection.rfe(fit, X, y, **kwargs)
  sk_support, sk_ranking = _sk_rfe(LinearRegression(), X, y, **kwargs)
  np.testing.assert_array_equal(support, sk_support)
  np.testing.assert_array_equal(ranking, sk_ranking)


def test_rfe_multiclass_coef_sums_squares_over_classes():
  rng = np.random.default_rng(2)
  X = rng.normal(size=(90, 7))
  y = np.argmax(X[:, :3] @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(90, 3)), axis=1)
  fit = lambda X, y: LogisticRegression(max_iter=500).fit(X, y).coef_
  support, ranking = selection.rfe(fit, X, y, n_features_to_select=2)
  sk_support, sk_ranking = _sk_rfe(LogisticRegression(max_iter=500), X, y,
                                   n_features_to_select=2)
  np.testing.assert_array_equal(support, sk_support)
  np.testing.assert_array_equal(ranking, sk_ranking)


def test_rfe_with_jax_ridge_equals_sklearn_ridge(x64):
  X, y = _regression(n=40, d=7, seed=3)

  @jax.jit
  def ridge_coef(X, y):
    Xc, yc = X - X.mean(axis=0, keepdims=True), y - y.mean()
    return jnp.linalg.solve(Xc.T @ Xc + ALPHA * jnp.eye(X.shape[1]), Xc.T @ yc)

  # Fits on 7 then 5 columns (one compilation each), keeping 3.
  support, ranking = selection.rfe(ridge_coef, jnp.asarray(X), jnp.asarray(y), step=2)
  sk_support, sk_ranking = _sk_rfe(Ridge(ALPHA), X, y, step=2)
  np.testing.assert_array_equal(support, sk_support)
  np.testing.assert_array_equal(ranking, sk_ranking)


def test_rfe_bad_input():
  X, y = _regression(n=10, d=3)
  fit = lambda X, y: np.ones(X.shape[1])
  with pytest.raises(ValueError, match="n_features_to_select"):
    selection.rfe(fit, X, y, n_features_to_select=0)
  with pytest.raises(ValueError, match="step"):
    selection.rfe(fit, X, y, step=1.5)
  with pytest.raises(ValueError, match="X"):
    selection.rfe(fit, X[:, :1], y)
  with pytest.raises(ValueError, match="coef"):
    selection.rfe(lambda X, y: np.ones(5), X, y)
