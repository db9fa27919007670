"""scikit-learn's own coordinate-descent tests, ported, at their (default) settings.

Each test cites the scikit-learn test it ports, all from
``sklearn/linear_model/tests/test_coordinate_descent.py`` (scikit-learn
repository; the file ships in the installed package). Expected values and
tolerances are scikit-learn's; tolerances ``tol`` / ``max_iter`` are the ones
those tests pass to the estimator (the defaults where they pass none).
scikit-learn runs them in float64, so they run here with the ``x64`` fixture;
``global_random_seed`` is scikit-learn's default seed, 42, plus 0.
"""

import contextlib
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_almost_equal, assert_array_almost_equal
from sklearn import linear_model as sklm
from sklearn import datasets
from sklearn.datasets import make_regression

from lossreg_jax import linear
from lossreg_jax.linear import _checks as linear_checks

SEEDS = [42, 0]  # scikit-learn's default global_random_seed, and one more

# X, Y, T of test_lasso_toy / test_enet_toy: a straight line and test points.
TOY_X = np.array([[-1.0], [0.0], [1.0]])
TOY_Y = np.array([-1.0, 0.0, 1.0])
TOY_T = np.array([[2.0], [3.0], [4.0]])


# One compiled elastic net for the (300, 100) consistency problems: penalties and
# tol are traced, so the 12 cases share one compilation.
_weighted_enet = jax.jit(
    lambda X, y, sw, alpha, l1_ratio, tol: linear.elastic_net(
        X, y, alpha=alpha, l1_ratio=l1_ratio, tol=tol, sample_weight=sw))


def _predict(fit, X):
  return np.asarray(X) @ np.asarray(fit.coef) + np.asarray(fit.intercept)


# test_lasso_toy: (alpha, coef, predictions at T), decimal=6 (the default).
LASSO_TOY = [
    (1e-8, [1.0], [2.0, 3.0, 4.0]),
    (0.1, [0.85], [1.7, 2.55, 3.4]),
    (0.5, [0.25], [0.5, 0.75, 1.0]),
    (1.0, [0.0], [0.0, 0.0, 0.0]),
]


def test_lasso_toy(x64):
  # scikit-learn, sklearn/linear_model/tests/test_coordinate_descent.py, test_lasso_toy.
  alphas = jnp.array([a for a, _, _ in LASSO_TOY])
  fits = jax.jit(jax.vmap(lambda a: linear.lasso(TOY_X, TOY_Y, alpha=a)))(alphas)
  for k, (_, coef, pred) in enumerate(LASSO_TOY):
    fit = jax.tree.map(lambda v: v[k], fits)
    assert_array_almost_equal(fit.coef, coef)
    assert_array_almost_equal(_predict(fit, TOY_T), pred)
    assert_almost_equal(fit.dual_gap, 0)


def test_lasso_toy_float32_is_close():
  # The same cases in float32 (x64 off, float32 inputs: no warning): the
  # polish leaves only float32 rounding, so 6 decimals still hold.
  fits = jax.vmap(lambda a: linear.lasso(TOY_X.astype(np.float32), TOY_Y.astype(np.float32),
                                         alpha=a))(jnp.array([a for a, _, _ in LASSO_TOY]))
  assert fits.coef.dtype == jnp.float32
  for k, (_, coef, _) in enumerate(LASSO_TOY):
    assert_array_almost_equal(fits.coef[k], coef, decimal=6)
    assert abs(float(fits.dual_gap[k])) < 1e-6


def test_enet_toy(x64):
  # scikit-learn, sklearn/linear_model/tests/test_coordinate_descent.py, test_enet_toy.
  # precompute=False/True/Gram all map to our one (Gram) solver. The two fits
  # at default max_iter share one compilation (vmap over alpha and l1_ratio).
  fits = jax.jit(jax.vmap(lambda a, r: linear.elastic_net(TOY_X, TOY_Y, alpha=a, l1_ratio=r)))(
      jnp.array([1e-8, 0.5]), jnp.array([1.0, 0.5]))
  lasso_like, half = (jax.tree.map(lambda v, k=k: v[k], fits) for k in range(2))
  assert_array_almost_equal(lasso_like.coef, [1])
  assert_array_almost_equal(_predict(lasso_like, TOY_T), [2, 3, 4])
  assert_almost_equal(lasso_like.dual_gap, 0)

  fit = jax.jit(partial(linear.elastic_net, alpha=0.5, l1_ratio=0.3, max_iter=100))(TOY_X, TOY_Y)
  assert_array_almost_equal(fit.coef, [0.50819], decimal=3)
  assert_array_almost_equal(_predict(fit, TOY_T), [1.0163, 1.5245, 2.0327], decimal=3)
  assert_almost_equal(fit.dual_gap, 0)

  assert_array_almost_equal(half.coef, [0.45454], 3)
  assert_array_almost_equal(_predict(half, TOY_T), [0.9090, 1.3636, 1.8181], 3)
  assert_almost_equal(half.dual_gap, 0)


def test_enet_l1_ratio(x64):
  # scikit-learn, sklearn/linear_model/tests/test_coordinate_descent.py, test_enet_l1_ratio
  # (the single-task part; MultiTaskElasticNetCV has no counterpart here).
  X = np.array([[1, 2, 4, 5, 8], [3, 5, 7, 7, 8]], dtype=np.float64).T
  y = np.array([12, 10, 11, 21, 5], dtype=np.float64)
  with pytest.raises(ValueError, match="l1_ratio=0"):
    linear.elastic_net_cv(X, y, l1_ratio=0.0)
  with _no_warnings():
    linear.elastic_net_cv(X, y, l1_ratio=[0.0], alphas=[1.0])
  alphas = [0.1, 10.0]
  desired = linear.elastic_net_cv(X, y, l1_ratio=0.00001, alphas=alphas)
  got = linear.elastic_net_cv(X, y, l1_ratio=0.0, alphas=alphas)
  assert_array_almost_equal(got.coef, desired.coef, decimal=5)
  # and both equal scikit-learn's estimator on the same folds (KFold(5)).
  ref = sklm.ElasticNetCV(l1_ratio=0, alphas=alphas).fit(X, y)
  assert_array_almost_equal(got.coef, ref.coef_, decimal=5)
  assert_allclose(got.alpha, ref.alpha_)


@contextlib.contextmanager
def _no_warnings():
  """``warnings.simplefilter("error")`` for a block, as the scikit-learn test."""
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    yield


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ridge_alpha", [1e-6, 1e-1, 1.0, 1e6])
def test_enet_ridge_consistency(x64, ridge_alpha, seed):
  # scikit-learn, sklearn/linear_model/tests/test_coordinate_descent.py,
  # test_enet_ridge_consistency (n_targets=1; our solver works on the Gram
  # matrix, scikit-learn's precompute=True, whose rtol is 1e-5; we also meet
  # the precompute=False rtol of 5e-7).
  rng = np.random.RandomState(seed)
  X, y = make_regression(n_samples=300, n_features=100, n_targets=1, effective_rank=10,
                         n_informative=50, random_state=rng)
  sw = rng.uniform(low=0.01, high=10, size=X.shape[0])
  ridge = sklm.Ridge(alpha=ridge_alpha, solver="svd").fit(X, y, sample_weight=sw)
  tol = 1e-11 if ridge_alpha >= 1e-2 else 1e-16
  enet = _weighted_enet(X, y, sw, ridge_alpha / sw.sum(), 0.0, tol)
  for rtol in (1e-5, 5e-7):
    assert_allclose(enet.coef, ridge.coef_, rtol=rtol, atol=3e-11)
  assert_allclose(enet.intercept, ridge.intercept_, atol=3e-11)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("effective_rank", [None, 10])
def test_enet_ols_consistency(x64, effective_rank, seed):
  # scikit-learn, sklearn/linear_model/tests/test_coordinate_descent.py, test_enet_ols_consistency.
  rng = np.random.RandomState(seed)
  X, y = make_regression(n_samples=300, n_features=100, effective_rank=effective_rank,
                         n_informative=50, random_state=rng)
  sw = rng.uniform(low=0.01, high=10, size=X.shape[0])
  ols = sklm.LinearRegression().fit(X, y, sample_weight=sw)
  enet = _weighted_enet(X, y, sw, 0.0, 0.5, 1e-15)
  pred = _predict(enet, X)
  assert_allclose(pred, ols.predict(X))
  assert np.sum(sw * (y - ols.predict(X)) ** 2) <= 1e-19
  assert np.sum(sw * (y - pred) ** 2) <= 1e-19
  assert_allclose(enet.coef, ols.coef_, atol=1e-11)
  assert_allclose(enet.intercept, ols.intercept_, atol=1e-11)


# ------------------------------------------------- accuracy at equal tol


@pytest.mark.parametrize("use_x64", [True, False])
def test_default_tol_is_at_least_as_accurate_as_sklearn(use_x64):
  # At the same tol (1e-4, both defaults), our lasso path on diabetes is at
  # least as close to the exact solution (scikit-learn at tol=1e-12) as
  # scikit-learn's own, even in float32. Diabetes is ill-conditioned (cond(X'X)
  # ~ 470) and at one alpha FISTA's support at tol is not the optimum's: the
  # active-set polish alone cycles there and the second FISTA stage is needed.
  X, y = datasets.load_diabetes(return_X_y=True)
  Xc, yc = X - X.mean(0), y - y.mean()
  sk_alphas, sk, _ = sklm.lasso_path(Xc, yc)
  _, exact, _ = sklm.lasso_path(Xc, yc, alphas=sk_alphas, tol=1e-12, max_iter=100_000)
  objective = lambda W: 0.5 * np.mean((yc[:, None] - Xc @ W) ** 2, 0) + sk_alphas * np.abs(W).sum(0)
  dtype = np.float64 if use_x64 else np.float32
  with jax.enable_x64(use_x64):
    alphas, coefs = linear.elastic_net_path(Xc.astype(dtype), yc.astype(dtype), l1_ratio=1.0)
  np.testing.assert_allclose(alphas, sk_alphas, rtol=1e-5)
  coefs = np.asarray(coefs, np.float64)
  ours_err, sk_err = np.max(np.abs(coefs - exact)), np.max(np.abs(sk - exact))
  assert ours_err <= (1e-4 if use_x64 else 0.1) * sk_err, (ours_err, sk_err)
  best = objective(exact)
  assert np.max(objective(coefs) / best - 1) <= np.max(objective(sk) / best - 1)


def test_float64_data_without_x64_warns_once(monkeypatch):
  monkeypatch.setattr(linear_checks, "_warned_float32", False)
  with pytest.warns(UserWarning, match="lossreg_jax.linear.ridge received float64"):
    linear.ridge(TOY_X, TOY_Y, alpha=0.1)
  with _no_warnings():  # once per process
    linear.ridge(TOY_X, TOY_Y, alpha=0.2)
  monkeypatch.setattr(linear_checks, "_warned_float32", False)
  with _no_warnings():  # float32 NumPy and JAX arrays are not rounded: no warning
    linear.ridge(TOY_X.astype(np.float32), TOY_Y.astype(np.float32), alpha=0.1)
    linear.ridge(jnp.asarray(TOY_X), jnp.asarray(TOY_Y), alpha=0.1)
  with pytest.warns(UserWarning, match="elastic_net_cv received float64"):
    linear.elastic_net_cv(TOY_X, TOY_Y.tolist(), cv=3, n_alphas=3)  # a list of floats too


def test_float64_data_with_x64_does_not_warn(x64, monkeypatch):
  monkeypatch.setattr(linear_checks, "_warned_float32", False)
  with _no_warnings():
    linear.ridge(TOY_X, TOY_Y, alpha=0.1)


def test_positive_constraint_toys(x64):
  # scikit-learn, sklearn/linear_model/tests/test_coordinate_descent.py,
  # test_lasso_positive_constraint and test_enet_positive_constraint: a line with
  # a negative slope; with positive=True the coefficient is clipped to 0 (and
  # scikit-learn's is exactly 0 too), the intercept is mean(y) = 0.
  X, y = [[-1.0], [0.0], [1.0]], [1.0, 0.0, -1.0]
  for fit in [linear.lasso(X, y, alpha=0.1, positive=True),
              linear.elastic_net(X, y, alpha=0.1, positive=True)]:
    assert min(fit.coef) >= 0
    assert_allclose(fit.coef, sklm.ElasticNet(alpha=0.1, positive=True).fit(X, y).coef_)
    assert fit.intercept == 0
  # test_enet_path_positive: every coefficient of a positive path is >= 0
  # (build_dataset's shapes, 50 x 50); here also equal to enet_path's.
  rng = np.random.RandomState(0)
  X = rng.randn(50, 50)
  y = X @ np.where(np.arange(50) < 10, rng.randn(50), 0.0) + rng.randn(50)
  for l1_ratio in [1.0, 0.5]:
    alphas, coefs = linear.elastic_net_path(X, y, l1_ratio=l1_ratio, n_alphas=8, positive=True,
                                            fit_intercept=False, tol=1e-10)
    ref_alphas, ref_coefs, _ = sklm.enet_path(X, y, l1_ratio=l1_ratio, alphas=8, positive=True,
                                              tol=1e-12, max_iter=100_000)
    assert np.all(np.asarray(coefs) >= 0)
    assert_allclose(alphas, ref_alphas, rtol=1e-12)
    assert_allclose(coefs, ref_coefs, atol=1e-6)


def test_ridge_positive(x64):
  # scikit-learn, sklearn/linear_model/tests/test_ridge.py,
  # test_ridge_positive_regression_test: true coefficients (1, -10), the fit
  # must be >= 0; here also equal to Ridge(positive=True)'s (lbfgs).
  X = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype=float)
  for fit_intercept in [True, False]:
    y = X @ [1.0, -10.0] + (20.0 if fit_intercept else 0.0)
    for alpha in [1e-3, 1e-2, 0.1, 1.0]:
      fit = linear.ridge(X, y, alpha=alpha, positive=True, fit_intercept=fit_intercept)
      ref = sklm.Ridge(alpha=alpha, positive=True, fit_intercept=fit_intercept, tol=1e-12).fit(X, y)
      assert np.all(np.asarray(fit.coef) >= 0)
      assert_allclose(fit.coef, ref.coef_, atol=1e-6)
      assert_allclose(fit.intercept, ref.intercept_, atol=1e-5)
  # test_ridge_ground_truth_positive_test: with positive true coefficients,
  # positive=True and positive=False give the same solution (atol 1e-6); the
  # unconstrained one is scikit-learn's Ridge (no second compilation here).
  rng = np.random.RandomState(42)
  X = rng.randn(300, 100)
  y = X @ rng.uniform(0.1, 1.0, size=100) + 1 + rng.normal(size=300) * 0.01
  for alpha in [1e-3, 1.0]:
    got = linear.ridge(X, y, alpha=alpha, positive=True).coef
    assert_allclose(got, sklm.Ridge(alpha=alpha).fit(X, y).coef_, atol=1e-6, rtol=0)
