"""Tests for lossreg_jax.linear against scikit-learn (float64, tight tolerances)."""

import subprocess
import sys
import textwrap
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import datasets
from sklearn import linear_model as sklm
from sklearn.model_selection import KFold

from lossreg_jax import linear

TIGHT = 1e-12


def _diabetes():
  return datasets.load_diabetes(return_X_y=True)


def _random_problem(n=60, p=8, seed=0):
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, p)) + rng.normal(size=p)  # non-centered columns
  coef = np.where(rng.random(p) < 0.5, 0.0, rng.normal(size=p) * 3)
  y = X @ coef + 2.0 + rng.normal(size=n)
  return X, y


def _centered_norm2(y, sample_weight=None):
  w = np.ones_like(y) if sample_weight is None else sample_weight * len(y) / sample_weight.sum()
  yc = y - np.average(y, weights=w)
  return np.sum(w * yc**2)


# ------------------------------------------------------------------ ridge


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_matches_sklearn(x64, fit_intercept, weighted):
  X, y = _random_problem()
  sw = np.random.default_rng(1).uniform(0.1, 3.0, len(y)) if weighted else None
  ref = sklm.Ridge(alpha=2.5, fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
  fit = jax.jit(partial(linear.ridge, alpha=2.5, fit_intercept=fit_intercept))(
      X, y, sample_weight=sw)
  np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-10, atol=1e-10)
  assert fit.dual_gap == 0 and fit.n_iter == 0


def test_ridge_wide_uses_kernel_form_and_is_differentiable(x64):
  X, y = _random_problem(n=10, p=30, seed=2)
  ref = sklm.Ridge(alpha=0.7).fit(X, y)
  fit = linear.ridge(X, y, alpha=0.7)
  np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-9, atol=1e-10)
  np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-9)
  grad = jax.grad(lambda a: jnp.sum(linear.ridge(X, y, alpha=a).coef ** 2))(0.7)
  assert np.isfinite(grad) and grad < 0  # more shrinkage, smaller coefficients



@pytest.mark.parametrize("shape", [(40, 5), (8, 12)])  # primal and kernel (dual) forms
def test_ridge_rank_deficient_alpha0_is_min_norm_least_squares(x64, shape):
  n, p = shape
  X, y = _random_problem(n=n, p=p, seed=4)
  X = np.concatenate([X, X[:, :1], X[:, 1:2] - 2 * X[:, 2:3]], axis=1)  # rank deficient
  fit = jax.jit(partial(linear.ridge, alpha=0.0))(X, y)
  assert np.all(np.isfinite(fit.coef)) and np.isfinite(fit.intercept)
  ref = sklm.LinearRegression().fit(X, y)
  np.testing.assert_allclose(X @ fit.coef + fit.intercept, ref.predict(X), rtol=1e-9, atol=1e-9)
  Xc, yc = X - X.mean(axis=0), y - y.mean()
  min_norm = np.linalg.lstsq(Xc, yc, rcond=None)[0]
  np.testing.assert_allclose(fit.coef, min_norm, rtol=1e-9, atol=1e-10)
  np.testing.assert_allclose(fit.intercept, y.mean() - X.mean(axis=0) @ min_norm, rtol=1e-9)
  # The fallback is differentiable in the data (pinv's constant-rank derivative).
  grad = jax.grad(lambda y_: jnp.sum(linear.ridge(X, y_, alpha=0.0).coef ** 2))(y)
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)
  # Under vmap both branches run; the discarded one must not poison the gradient.
  size = lambda a: jnp.sum(linear.ridge(X, y, alpha=a).coef ** 2)
  grads = jax.vmap(jax.grad(size))(jnp.array([0.0, 1e-12, 1.0]))
  assert np.all(np.isfinite(grads)) and grads[2] < 0
  # Small alpha: close to the alpha = 0 solution (min-norm is the ridge limit).
  small = linear.ridge(X, y, alpha=1e-8).coef
  np.testing.assert_allclose(small, min_norm, rtol=1e-4, atol=1e-6)


def test_ridge_rank_deficient_float32_is_finite():
  X, y = _random_problem(n=30, p=4, seed=5)
  X = np.concatenate([X, X[:, :2]], axis=1).astype(np.float32)
  fit = linear.ridge(X, y.astype(np.float32), alpha=0.0)
  assert fit.coef.dtype == jnp.float32 and np.all(np.isfinite(fit.coef))
  ref = sklm.LinearRegression().fit(X.astype(np.float64), y)
  np.testing.assert_allclose(X @ fit.coef + fit.intercept, ref.predict(X), rtol=1e-3, atol=1e-3)


_RIDGE_SWEEP = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from lossreg_jax import linear
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((300, 64)), jnp.float32)
    y = jnp.asarray(rng.standard_normal(300), jnp.float32)
    sweep = jax.jit(jax.vmap(lambda a: linear.ridge(X, y, alpha=a)))
    grid = jnp.concatenate([jnp.zeros(1), jnp.logspace(-2, 4, 60)])
    for i in range(60):
      sweep(grid + i * 1e-9).coef.block_until_ready()
    print("done")
""")


@pytest.mark.slow
def test_vmapped_ridge_does_not_deadlock_the_cpu_thread_pool():
  # Under vmap both branches of ridge's cond run: a batched Cholesky and a
  # batched SVD. Run at once they deadlocked XLA's 2-thread CPU pool (notebook
  # 03 hung in about 1 run in 8; this sweep, the notebook's sizes, hung within
  # 60 calls in 9 of 11 tries). _solvers.after orders them.
  try:
    proc = subprocess.run([sys.executable, "-c", _RIDGE_SWEEP], capture_output=True, text=True,
                          timeout=90, check=False)
  except subprocess.TimeoutExpired:
    pytest.fail("60 vmapped ridge sweeps did not finish in 90 s: the thread-pool deadlock")
  assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-3000:]


def test_ridge_regular_problem_is_the_plain_cholesky_solve(x64):
  # The singularity check must not change well-conditioned fits: bitwise equal
  # to solving the centered normal equations with solve(assume_a="pos").
  X, y = _random_problem(n=30, p=6, seed=6)
  fit = linear.ridge(X, y, alpha=0.0)
  Xc, yc = jnp.asarray(X - X.mean(axis=0)), jnp.asarray(y - y.mean())
  with jax.default_matmul_precision("highest"):
    expected = jax.scipy.linalg.solve(Xc.T @ Xc, Xc.T @ yc, assume_a="pos")
  np.testing.assert_allclose(fit.coef, expected, rtol=1e-13, atol=0)
  np.testing.assert_allclose(fit.coef, sklm.LinearRegression().fit(X, y).coef_, rtol=1e-9)

# ------------------------------------------------------------------ elastic net / lasso


@pytest.mark.parametrize("problem", ["diabetes", "random"])
def test_elastic_net_and_lasso_match_sklearn(x64, problem):
  X, y = _diabetes() if problem == "diabetes" else _random_problem()
  fit_fn = partial(linear.elastic_net, tol=TIGHT, max_iter=100_000)
  scale = np.max(np.abs((X - X.mean(0)).T @ (y - y.mean()))) / len(y)
  for frac, l1_ratio in [(0.5, 1.0), (0.05, 1.0), (0.01, 0.5), (0.1, 0.2), (2.0, 0.7)]:
    alpha = frac * scale
    ref = sklm.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=TIGHT, max_iter=100_000).fit(X, y)
    fit = fit_fn(X, y, alpha=alpha, l1_ratio=l1_ratio)
    np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-6, atol=1e-6 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-7)
    np.testing.assert_array_equal(np.asarray(fit.coef) == 0, ref.coef_ == 0)
    assert 0 < fit.n_iter < 100_000 or np.all(ref.coef_ == 0)
    assert fit.dual_gap <= TIGHT * _centered_norm2(y) / len(y)
  lasso = linear.lasso(X, y, alpha=0.05 * scale, tol=TIGHT, max_iter=100_000)
  ref = sklm.Lasso(alpha=0.05 * scale, tol=TIGHT, max_iter=100_000).fit(X, y)
  np.testing.assert_allclose(lasso.coef, ref.coef_, rtol=1e-6, atol=1e-6 * np.abs(ref.coef_).max())
  np.testing.assert_array_equal(np.asarray(lasso.coef) == 0, ref.coef_ == 0)


def test_elastic_net_sample_weight(x64):
  X, y = _random_problem(seed=3)
  sw = np.random.default_rng(4).uniform(0.0, 4.0, len(y))
  sw[:5] = 0.0  # zero weights drop rows
  ref = sklm.ElasticNet(alpha=0.3, l1_ratio=0.6, tol=TIGHT, max_iter=100_000).fit(
      X, y, sample_weight=sw)
  fit = linear.elastic_net(X, y, alpha=0.3, l1_ratio=0.6, tol=TIGHT, max_iter=100_000,
                           sample_weight=sw)
  np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-6, atol=1e-8)
  np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-6, atol=1e-8)
  np.testing.assert_array_equal(np.asarray(fit.coef) == 0, ref.coef_ == 0)
  assert fit.dual_gap <= TIGHT * _centered_norm2(y, sw) / len(y)


def test_elastic_net_under_jit_equals_eager(x64):
  X, y = _random_problem()
  kwargs = dict(alpha=0.2, l1_ratio=0.3, tol=TIGHT, max_iter=100_000)
  eager = linear.elastic_net(X, y, **kwargs)
  jitted = jax.jit(partial(linear.elastic_net, **kwargs))(X, y)
  for a, b in zip(eager, jitted):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_elastic_net_wide_problem_and_vmap(x64):
  # n < p: the solver multiplies by X instead of forming the Gram matrix.
  X, y = _random_problem(n=15, p=40, seed=5)
  alphas = np.array([0.5, 0.1])
  got = jax.vmap(lambda a: linear.elastic_net(X, y, alpha=a, l1_ratio=0.9, tol=TIGHT,
                                              max_iter=100_000).coef)(alphas)
  for alpha, coef in zip(alphas, got):
    ref = sklm.ElasticNet(alpha=alpha, l1_ratio=0.9, tol=TIGHT, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-5, atol=1e-7)


def test_elastic_net_float32_default_is_close_and_finite():
  X, y = _diabetes()
  fit = linear.elastic_net(X, y, alpha=0.01, l1_ratio=0.5)
  ref = sklm.ElasticNet(alpha=0.01, l1_ratio=0.5).fit(X, y)
  assert fit.coef.dtype == jnp.float32 and np.all(np.isfinite(fit.coef))
  np.testing.assert_allclose(fit.coef, ref.coef_, rtol=2e-2, atol=1e-2 * np.abs(ref.coef_).max())


# ------------------------------------------------------------------ path


def test_path_matches_enet_path(x64):
  X, y = _diabetes()
  alphas, coefs = linear.elastic_net_path(X, y, l1_ratio=0.8, n_alphas=30, eps=1e-2,
                                          fit_intercept=False, tol=TIGHT, max_iter=100_000)
  ref_alphas, ref_coefs, _ = sklm.enet_path(X, y, l1_ratio=0.8, alphas=30, eps=1e-2,
                                            tol=TIGHT, max_iter=100_000)
  assert coefs.shape == ref_coefs.shape == (X.shape[1], 30)
  np.testing.assert_allclose(alphas, ref_alphas, rtol=1e-12)
  np.testing.assert_allclose(coefs, ref_coefs, rtol=1e-6, atol=1e-6 * np.abs(ref_coefs).max())
  np.testing.assert_array_equal(np.asarray(coefs) == 0, ref_coefs == 0)


def test_path_with_intercept_equals_elastic_net_per_alpha(x64):
  X, y = _random_problem(seed=6)
  alphas, coefs = linear.elastic_net_path(X, y, l1_ratio=0.5, n_alphas=5, tol=TIGHT,
                                          max_iter=100_000)
  ref_alphas = sklm.ElasticNetCV(l1_ratio=0.5, alphas=5, cv=2).fit(X, y).alphas_
  np.testing.assert_allclose(alphas, ref_alphas, rtol=1e-12)
  for k in [1, 3, 4]:
    ref = sklm.ElasticNet(alpha=float(alphas[k]), l1_ratio=0.5, tol=TIGHT,
                          max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(coefs[:, k], ref.coef_, rtol=1e-6, atol=1e-8)
  assert np.all(coefs[:, 0] == 0)  # alpha_max zeroes every coefficient


# ------------------------------------------------------------------ CV


def test_cv_list_of_l1_ratios_matches_elastic_net_cv(x64):
  X, y = _diabetes()  # 442 rows: folds of 89, 89, 88, 88, 88 as KFold(5)
  ref = sklm.ElasticNetCV(l1_ratio=[0.2, 0.9], cv=KFold(5), alphas=10, tol=1e-10,
                          max_iter=100_000).fit(X, y)
  got = linear.elastic_net_cv(X, y, l1_ratio=[0.2, 0.9], n_alphas=10, tol=1e-10,
                              max_iter=100_000)
  assert got.alphas.shape == ref.alphas_.shape == (2, 10)
  assert got.mse_path.shape == ref.mse_path_.shape == (2, 10, 5)
  np.testing.assert_allclose(got.alphas, ref.alphas_, rtol=1e-12)
  np.testing.assert_allclose(got.mse_path, ref.mse_path_, rtol=1e-4)
  np.testing.assert_allclose(got.alpha, ref.alpha_, rtol=1e-12)
  np.testing.assert_allclose(got.l1_ratio, ref.l1_ratio_)
  np.testing.assert_allclose(got.coef, ref.coef_, rtol=1e-5, atol=1e-5 * np.abs(ref.coef_).max())
  np.testing.assert_allclose(got.intercept, ref.intercept_, rtol=1e-6)


def test_cv_explicit_alphas_and_shuffled_folds(x64):
  X, y = _random_problem(n=40, p=5, seed=8)
  key = jax.random.key(3)
  perm = np.asarray(jax.random.permutation(key, len(y)))
  grid = np.array([0.01, 1.0, 0.1])
  ref = sklm.ElasticNetCV(l1_ratio=0.7, cv=KFold(3), alphas=grid, tol=1e-10,
                          max_iter=100_000).fit(X[perm], y[perm])
  got = jax.jit(partial(linear.elastic_net_cv, l1_ratio=0.7, cv=3, alphas=grid, tol=1e-10,
                        max_iter=100_000))(X, y, key=key)
  assert got.alphas.shape == (3,) and got.mse_path.shape == ref.mse_path_.shape == (3, 3)
  np.testing.assert_allclose(got.alphas, ref.alphas_, rtol=1e-12)  # sorted descending
  np.testing.assert_allclose(got.mse_path, ref.mse_path_, rtol=1e-4)
  np.testing.assert_allclose(got.alpha, ref.alpha_)
  np.testing.assert_allclose(got.coef, ref.coef_, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(got.intercept, ref.intercept_, rtol=1e-6)


# ------------------------------------------------------------------ bad input


def test_bad_inputs_raise_naming_the_argument():
  X, y = _random_problem(n=12, p=3)
  with pytest.raises(ValueError, match="X and y"):
    linear.elastic_net(X, y[:-1])
  with pytest.raises(ValueError, match="X must have rank 2"):
    linear.ridge(X[:, 0], y)
  with pytest.raises(ValueError, match="y must have rank 1 or 2"):
    linear.lasso(X, y[:, None, None])
  with pytest.raises(ValueError, match="y must have rank 1,"):
    linear.elastic_net_cv(X, y[:, None])
  with pytest.raises(ValueError, match="X contains NaN"):
    linear.elastic_net(np.where(X > 1, np.nan, X), y)
  with pytest.raises(ValueError, match="y contains NaN"):
    linear.elastic_net_cv(X, np.full_like(y, np.nan))
  with pytest.raises(ValueError, match="alpha must be in"):
    linear.ridge(X, y, alpha=-1.0)
  with pytest.raises(ValueError, match="alpha must be in"):
    linear.lasso(X, y, alpha=-0.1)
  with pytest.raises(ValueError, match="l1_ratio must be in"):
    linear.elastic_net(X, y, l1_ratio=1.5)
  with pytest.raises(ValueError, match="l1_ratio must be in"):
    linear.elastic_net_cv(X, y, l1_ratio=[0.5, -0.2])
  with pytest.raises(ValueError, match="l1_ratio=0"):
    linear.elastic_net_path(X, y, l1_ratio=0.0)
  with pytest.raises(ValueError, match="cv must be"):
    linear.elastic_net_cv(X, y, cv=13)
  with pytest.raises(ValueError, match="cv must be"):
    linear.elastic_net_cv(X, y, cv=1)
  with pytest.raises(ValueError, match="max_iter"):
    linear.elastic_net(X, y, max_iter=0)
  with pytest.raises(ValueError, match="sample_weight"):
    linear.elastic_net(X, y, sample_weight=np.ones(5))
  with pytest.raises(ValueError, match="alphas must be"):
    linear.elastic_net_path(X, y, alphas=[0.1, -1.0])


def test_input_checks_of_issue_22():
  # Finite but huge data: scikit-learn refuses it (ElasticNet: "Coordinate
  # descent iterations resulted in non-finite parameter values", Ridge: "array
  # must not contain infs or NaNs"); we refused nothing and returned NaN or zeros.
  rng = np.random.default_rng(0)
  X, y = _random_problem(n=30, p=4, seed=11)
  huge = np.finfo(np.float64).max * rng.uniform(size=X.shape)
  with jax.enable_x64(True):
    for fit in [linear.elastic_net, linear.ridge, linear.elastic_net_path, linear.elastic_net_cv]:
      with pytest.raises(ValueError, match="X has entries of magnitude up to 1.7"):
        fit(huge, y)
    with pytest.raises(ValueError, match="y has entries of magnitude"):
      linear.lasso(X, y * 1e300)
  # X of order 1e20 (fine in float64) has a Gram matrix that overflows float32:
  # refused with a message, where the solver returned zeros; ridge's SVD
  # fallback computes it: returned.
  X20 = (X * 1e20).astype(np.float32)
  with pytest.raises(ValueError, match="X has entries of magnitude.*overflow float32"):
    linear.lasso(X20, y.astype(np.float32))
  with pytest.raises(ValueError, match="X contains NaN or infinity.*float32"):
    with warnings.catch_warnings():  # the float64-in-float32 warning (once per process)
      warnings.simplefilter("ignore", UserWarning)
      linear.ridge(huge, y)  # float64 beyond float32's range: infinite once converted
  coef = linear.ridge(X20, y.astype(np.float32)).coef
  np.testing.assert_allclose(coef * 1e20, sklm.Ridge().fit(X * 1e20, y).coef_ * 1e20, rtol=1e-4)
  # sample_weight: all zero, negative, NaN.
  for sw, match in [(np.zeros(30), "have a positive sum, got all 30 weights 0"),
                    (-np.ones(30), "be finite and >= 0, got an entry .*-1.0"),
                    (np.full(30, np.nan), "be finite and >= 0, got an entry .*nan")]:
    for fit in [linear.ridge, linear.elastic_net]:
      with pytest.raises(ValueError, match=f"sample_weight must {match}"):
        fit(X, y, sample_weight=sw)
  # Wrong types: strings and bools as numbers.
  for call, name in [(lambda: linear.ridge(X, y, alpha="1"), "alpha"),
                     (lambda: linear.elastic_net(X, y, l1_ratio="0.5"), "l1_ratio"),
                     (lambda: linear.lasso(X, y, tol="1e-4"), "tol"),
                     (lambda: linear.elastic_net(X, y, max_iter=True), "max_iter"),
                     (lambda: linear.elastic_net_path(X, y, n_alphas=True), "n_alphas"),
                     (lambda: linear.elastic_net_path(X, y, eps="0.1"), "eps"),
                     (lambda: linear.elastic_net_cv(X, y, cv=True), "cv"),
                     (lambda: linear.lasso(X, y, positive="yes"), "positive")]:
    with pytest.raises(TypeError, match=f"^{name} must be"):
      call()


def test_cv_float32_far_from_origin_is_accurate():
  # Same shapes as the elastic_net_cv doctest (shared compile). Columns centered
  # far from 0: the folds' centering is a rank-one correction after a global
  # centering, so float32 keeps its accuracy.
  rng = np.random.default_rng(9)
  X = (rng.normal(size=(20, 2)) + 1e4).astype(np.float32)
  y = (X.astype(np.float64) @ [1.0, -2.0] + rng.normal(size=20)).astype(np.float32)
  got = linear.elastic_net_cv(X, y, cv=4, n_alphas=10)
  ref = sklm.ElasticNetCV(cv=KFold(4), alphas=10, tol=1e-10).fit(X.astype(np.float64), y)
  assert got.mse_path.dtype == jnp.float32
  np.testing.assert_allclose(got.alphas, ref.alphas_, rtol=1e-4)
  np.testing.assert_allclose(got.mse_path, ref.mse_path_, rtol=2e-2)
  np.testing.assert_allclose(got.alpha, ref.alpha_, rtol=1e-4)


def test_fits_close_over_concrete_data_under_jit():
  # Data captured from outside a jitted function is concrete; checking it for NaN
  # must not create traced booleans (regression: TracerBoolConversionError).
  rng = np.random.default_rng(3)
  X = jnp.asarray(rng.normal(size=(40, 5)), jnp.float32)
  y = jnp.asarray(X @ jnp.arange(1.0, 6.0) + 0.1 * rng.normal(size=40), jnp.float32)
  coef = jax.jit(lambda a: linear.ridge(X, y, alpha=a).coef)(1.0)
  expected = linear.ridge(X, y, alpha=1.0).coef
  np.testing.assert_allclose(coef, expected, rtol=1e-5)


# ------------------------------------------------------------------ positive=True


def test_positive_matches_sklearn_on_random_problems(x64):
  # Tall (Gram route) and wide (products with X) problems, with and without
  # sample weights; scikit-learn's coordinate descent run to tol=1e-12 is the
  # reference, ours at the default tol (the polish solves the constrained KKT
  # system exactly where it verifies it).
  enet = jax.jit(lambda X, y, a, r, sw: linear.elastic_net(X, y, alpha=a, l1_ratio=r,
                                                           sample_weight=sw, positive=True))
  for n, p, seed in [(50, 8, 0), (15, 30, 2)]:
    X, y = _random_problem(n=n, p=p, seed=seed)
    sw = np.random.default_rng(seed).uniform(0.2, 3.0, n)
    ones = np.ones(n)  # weights of 1 are no weights: one compilation per shape
    for alpha, l1_ratio, weights in [(0.1, 1.0, ones), (0.05, 0.5, sw), (0.5, 0.3, ones)]:
      ref = sklm.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, positive=True, tol=TIGHT,
                            max_iter=100_000).fit(X, y, sample_weight=weights)
      fit = enet(X, y, alpha, l1_ratio, weights)
      scale = np.abs(ref.coef_).max()
      np.testing.assert_allclose(fit.coef, ref.coef_, atol=1e-6 * scale)
      np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-6, atol=1e-6 * scale)
      assert np.all(np.asarray(fit.coef) >= 0)
      assert fit.dual_gap <= 1e-4 * _centered_norm2(y, weights) / n
  # ridge: Ridge(positive=True) (L-BFGS-B) on a tall weighted problem; on a wide
  # one L-BFGS-B stops early, so ours must reach an objective at least as low.
  X, y = _random_problem(n=60, p=8, seed=7)
  sw = np.random.default_rng(7).uniform(0.2, 3.0, 60)
  ref = sklm.Ridge(alpha=0.5, positive=True, tol=1e-12).fit(X, y, sample_weight=sw)
  fit = linear.ridge(X, y, alpha=0.5, positive=True, sample_weight=sw)
  np.testing.assert_allclose(fit.coef, ref.coef_, atol=1e-7)
  np.testing.assert_allclose(fit.intercept, ref.intercept_, atol=1e-7)
  X, y = _random_problem(n=15, p=30, seed=1)
  fit = linear.ridge(X, y, alpha=0.1, positive=True)
  ref = sklm.Ridge(alpha=0.1, positive=True).fit(X, y)
  objective = lambda w, b: np.sum((y - X @ w - b) ** 2) + 0.1 * np.sum(w * w)
  assert np.all(np.asarray(fit.coef) >= 0)
  assert objective(np.asarray(fit.coef), fit.intercept) <= objective(ref.coef_, ref.intercept_)
  assert abs(fit.dual_gap) <= 1e-8 * _centered_norm2(y)


def test_cv_positive_matches_elastic_net_cv(x64):
  # Tall problem whose largest correlation is negative: the positive alpha_max
  # (max(0, max X'y)) differs from max|X'y|.
  X, y = _random_problem(n=40, p=5, seed=8)
  y = y - 3.0 * X[:, 0]
  ref = sklm.ElasticNetCV(l1_ratio=0.6, cv=KFold(3), alphas=6, positive=True, tol=1e-10,
                          max_iter=100_000).fit(X, y)
  got = linear.elastic_net_cv(X, y, l1_ratio=0.6, cv=3, n_alphas=6, positive=True, tol=1e-10,
                              max_iter=100_000)
  np.testing.assert_allclose(got.alphas, ref.alphas_, rtol=1e-12)
  np.testing.assert_allclose(got.mse_path, ref.mse_path_, rtol=1e-6)
  np.testing.assert_allclose(got.alpha, ref.alpha_)
  np.testing.assert_allclose(got.coef, ref.coef_, rtol=1e-6, atol=1e-8)
  assert np.all(np.asarray(got.coef) >= 0)


# ------------------------------------------------------------------ multi-output y


def _multi_output_problem():
  X, _ = _random_problem(n=40, p=6, seed=10)
  rng = np.random.default_rng(10)
  Y = X @ rng.normal(size=(6, 3)) + rng.normal(size=(40, 3))
  return X, Y, rng.uniform(0.5, 2.0, 40)


def test_multi_output_ridge_matches_sklearn(x64):
  # y of shape (n, k): one independent fit per column, coef (k, p) as Ridge's
  # coef_; a shared alpha, one alpha per target, and per-target alphas with
  # positive=True (Ridge's lbfgs at tol=1e-12).
  X, Y, sw = _multi_output_problem()
  per_target = np.array([0.1, 1.0, 10.0])
  for alpha, positive in [(1.5, False), (per_target, False), (per_target, True)]:
    ref = sklm.Ridge(alpha=alpha, positive=positive, tol=1e-12).fit(X, Y, sample_weight=sw)
    fit = linear.ridge(X, Y, alpha=alpha, positive=positive, sample_weight=sw)
    assert fit.coef.shape == (3, 6) and fit.intercept.shape == fit.dual_gap.shape == (3,)
    np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-7, atol=1e-7)
  with pytest.raises(ValueError, match=r"alpha must be a scalar or have shape \(n_targets,\)"):
    linear.ridge(X, Y, alpha=[1.0, 2.0])


@pytest.mark.slow  # two vmapped solver compilations: ~2-5 s on a shared 2-core machine
def test_multi_output_elastic_net_and_path_match_sklearn(x64):
  X, Y, sw = _multi_output_problem()
  ref = sklm.ElasticNet(alpha=0.1, l1_ratio=0.7, tol=TIGHT, max_iter=100_000).fit(
      X, Y, sample_weight=sw)
  fit = linear.elastic_net(X, Y, alpha=0.1, l1_ratio=0.7, tol=TIGHT, max_iter=100_000,
                           sample_weight=sw)
  assert fit.coef.shape == (3, 6) and fit.n_iter.shape == fit.intercept.shape == (3,)
  np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-7)
  np.testing.assert_allclose(fit.dual_gap, ref.dual_gap_, atol=TIGHT * np.sum(Y**2))
  # elastic_net_path: an independent path per column, each enet_path's on it
  # (not enet_path's 2-D y, the multi-task problem).
  alphas, coefs = linear.elastic_net_path(X, Y, n_alphas=5, fit_intercept=False, tol=TIGHT,
                                          max_iter=100_000)
  assert alphas.shape == (3, 5) and coefs.shape == (3, 6, 5)
  for k in range(3):
    ref_alphas, ref_coefs, _ = sklm.enet_path(X, Y[:, k], alphas=5, tol=TIGHT, max_iter=100_000)
    np.testing.assert_allclose(alphas[k], ref_alphas, rtol=1e-12)
    np.testing.assert_allclose(coefs[k], ref_coefs, rtol=1e-7, atol=1e-9)


def test_cv_sample_weight_matches_elastic_net_cv_on_the_same_folds(x64):
  # ElasticNetCV.fit(sample_weight=) with our (shuffled) folds passed explicitly
  # as a list of (train, test): the weighted grid, each fold's weighted fit and
  # weighted held-out MSE, the weighted refit. Zero weights included.
  X, y = _random_problem(n=40, p=5, seed=12)
  sw = np.random.default_rng(12).uniform(0.0, 3.0, 40)
  sw[:4] = 0.0
  key = jax.random.key(5)
  perm = np.asarray(jax.random.permutation(key, 40))
  folds = [(np.setdiff1d(np.arange(40), perm[t]), perm[t]) for _, t in KFold(3).split(X)]
  ref = sklm.ElasticNetCV(l1_ratio=[0.3, 0.9], cv=folds, alphas=6, tol=1e-10,
                          max_iter=100_000).fit(X, y, sample_weight=sw)
  got = linear.elastic_net_cv(X, y, l1_ratio=[0.3, 0.9], cv=3, n_alphas=6, key=key, tol=1e-10,
                              max_iter=100_000, sample_weight=sw)
  np.testing.assert_allclose(got.alphas, ref.alphas_, rtol=1e-12)
  np.testing.assert_allclose(got.mse_path, ref.mse_path_, rtol=1e-8)
  np.testing.assert_allclose(got.alpha, ref.alpha_, rtol=1e-12)
  np.testing.assert_allclose(got.l1_ratio, ref.l1_ratio_)
  np.testing.assert_allclose(got.coef, ref.coef_, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(got.intercept, ref.intercept_, rtol=1e-8)
