"""Ridge, lasso and elastic net at scikit-learn parity: fits, paths and CV grids.

The elastic-net family minimizes scikit-learn's objective

    1/(2n) ||y - X w||^2 + alpha * l1_ratio * ||w||_1
        + 1/2 * alpha * (1 - l1_ratio) * ||w||^2

in two phases on the Gram matrix: accelerated proximal gradient (FISTA with
adaptive restarts) until scikit-learn's duality-gap test passes, then an
active-set Newton polish that solves the optimality conditions on the support
exactly and verifies them (see ``_polish``). Batches of problems (all alphas of
a path, all folds x alphas x l1 ratios of a CV grid) are solved together, one
batched matrix product per iteration, in one compiled program.
``positive=True`` constrains the coefficients to ``w >= 0`` (the prox, the
polish's support and the duality gap are those of the constrained problem), and
a 2-D ``y`` of shape ``(n_samples, n_targets)`` is one independent fit per
target (``vmap``), as scikit-learn's estimators.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import check_bool
from lossreg_jax.linear import _solvers
from lossreg_jax.linear._checks import check_data as _check_data
from lossreg_jax.linear._checks import check_grid as _check_grid
from lossreg_jax.linear._checks import check_options as _check_options

__all__ = [
    "LinearFit",
    "ridge",
    "lasso",
    "elastic_net",
    "elastic_net_path",
]


class LinearFit(NamedTuple):
  """A fitted linear model ``y ~ X @ coef + intercept``.

  For a 2-D ``y`` of shape ``(n_samples, n_targets)`` every field gains a
  leading target axis, as scikit-learn's ``coef_`` (``(n_targets,
  n_features)``) and ``intercept_`` (``(n_targets,)``): each target is an
  independent fit.

  Attributes:
    coef: Coefficients, shape ``(n_features,)`` (``(n_targets, n_features)``).
    intercept: Scalar intercept, 0 without ``fit_intercept`` (``(n_targets,)``).
    dual_gap: Duality gap of the returned ``coef`` in the objective's scale
      (scikit-learn's ``dual_gap_``); 0 for the closed-form ``ridge``
      (``(n_targets,)``).
    n_iter: Solver iterations, 0 for ``ridge`` (``(n_targets,)``).
  """

  coef: jax.Array
  intercept: jax.Array
  dual_gap: jax.Array
  n_iter: jax.Array


def _per_target(impl, X, y, sample_weight, alpha, *args, **static):
  """``impl`` (a one-target fit) on ``y``, or on each column of a 2-D ``y``.

  The targets are a ``vmap`` axis: what does not depend on ``y`` (centering
  ``X``, its Gram matrix, a ridge factorization with a shared ``alpha``) is
  computed once. ``alpha`` with a leading axis is per target.
  """
  if y.ndim == 1:
    return impl(X, y, sample_weight, alpha, *args, **static)
  fit = lambda y_k, alpha_k: impl(X, y_k, sample_weight, alpha_k, *args, **static)
  return jax.vmap(fit, in_axes=(1, 0 if jnp.ndim(alpha) else None))(y, alpha)


# ---------------------------------------------------------------- ridge


@partial(jax.jit, static_argnames=("fit_intercept",))
@_solvers.full_precision
def _ridge_impl(X, y, sample_weight, alpha, *, fit_intercept):
  data = _solvers.center(X, y, sample_weight, fit_intercept=fit_intercept)
  n, p = data.x.shape
  if n >= p:  # primal: (X'X + alpha I) w = X'y
    gram = data.x.T @ data.x + alpha * jnp.eye(p, dtype=X.dtype)
    solve, singular = _solvers.cholesky_solve(gram, data.x.T @ data.y)
  else:  # dual (kernel) form, as scikit-learn's cholesky solver for p > n
    kernel = data.x @ data.x.T + alpha * jnp.eye(n, dtype=X.dtype)
    dual_solve, singular = _solvers.cholesky_solve(kernel, data.y)
    solve = lambda: data.x.T @ dual_solve()
  # Singular system (rank-deficient X with alpha ~ 0): the minimum-norm solution,
  # as scikit-learn's fallback to its SVD solver. lax.cond runs one branch under
  # jit (both under vmap), so a regular problem pays only the Cholesky solve.
  direct = solve()
  x_after = _solvers.after(data.x, direct)  # the SVD starts once the Cholesky solve is done
  coef = jax.lax.cond(singular, lambda: _solvers.min_norm_ridge(x_after, data.y, alpha),
                      lambda: direct)
  intercept = data.y_mean - data.x_mean @ coef
  zero = jnp.zeros((), X.dtype)
  return LinearFit(coef, intercept, zero, jnp.zeros((), jnp.int32))


# Relative duality-gap tolerance of ridge(positive=True)'s FISTA phase (the
# verified polish then solves the constrained optimality conditions exactly).
_RIDGE_POSITIVE_TOL = 1e-8
_RIDGE_POSITIVE_MAX_ITER = 2000


@partial(jax.jit, static_argnames=("fit_intercept",))
@_solvers.full_precision
def _ridge_positive_impl(X, y, sample_weight, alpha, *, fit_intercept):
  # Ridge's objective ||y - Xw||^2 + alpha ||w||^2 is twice the cd scale's
  # 1/2 ||y - Xw||^2 + l2/2 ||w||^2 with l1 = 0 and l2 = alpha (= n * alpha / n).
  data = _solvers.center(X, y, sample_weight, fit_intercept=fit_intercept)
  n = X.shape[0]
  coef, gap, n_iter = _solvers.solve_centered(
      data, jnp.zeros((), X.dtype), (alpha / n)[None], jnp.asarray(_RIDGE_POSITIVE_TOL, X.dtype),
      _RIDGE_POSITIVE_MAX_ITER, positive=True)
  coef = coef[0]
  return LinearFit(coef, data.y_mean - data.x_mean @ coef, 2.0 * n * gap[0], n_iter[0])


def ridge(
    X: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float | ArrayLike = 1.0,
    fit_intercept: bool = True,
    sample_weight: ArrayLike | None = None,
    positive: bool = False,
) -> LinearFit:
  """Ridge regression in closed form, as ``sklearn.linear_model.Ridge``.

  Minimizes ``sum_i s_i (y_i - x_i w - b)^2 + alpha ||w||^2`` (``s`` the
  sample weights, 1 by default) by centering with weighted means and one
  Cholesky solve of the ``p x p`` normal equations, or of the ``n x n`` kernel
  system when ``p > n``. When that system is singular to working precision
  (rank-deficient ``X``, e.g. a duplicated column, with ``alpha`` 0 or tiny;
  detected from a non-finite solution or the Cholesky pivots), the result is
  instead the minimum-norm solution from a pseudo-inverse of the centered
  design, as scikit-learn's SVD fallback: with ``alpha=0`` it is
  ``LinearRegression``'s / ``np.linalg.lstsq``'s minimum-norm least-squares
  fit. Differentiable in ``X``, ``y`` and ``alpha`` (for a singular system the
  gradient in ``alpha`` at exactly ``alpha=0`` is returned as 0).

  With ``positive=True`` the coefficients are constrained to ``w >= 0``, as
  ``Ridge(positive=True)`` (which uses L-BFGS-B): there is no closed form, so
  the problem is solved as ``elastic_net``'s solver solves its problems, with
  ``l1 = 0`` (FISTA with the prox ``max(0, .)`` to a relative duality gap of
  1e-8, then the active-set polish, which solves the optimality conditions on
  the positive support and verifies them); that route is not differentiable.

  Args:
    X: Design matrix, shape ``(n_samples, n_features)``.
    y: Targets, shape ``(n_samples,)`` or ``(n_samples, n_targets)`` (one
      independent fit per column, as Ridge).
    alpha: L2 strength, ``>= 0``: a scalar, or shape ``(n_targets,)`` for a
      2-D ``y``, one penalty per target (as Ridge).
    fit_intercept: Whether to fit an unpenalized intercept.
    sample_weight: Per-sample weights, shape ``(n_samples,)`` (not rescaled,
      as Ridge).
    positive: Constrain the coefficients to be ``>= 0`` (static).

  Returns:
    ``LinearFit`` with ``coef`` of shape ``(n_features,)``, a scalar
    ``intercept``, ``dual_gap = 0`` and ``n_iter = 0`` (a direct solve); with
    ``positive=True`` the duality gap of the constrained problem in Ridge's
    objective's scale and the products with the Gram matrix spent. For a
    2-D ``y`` each field has a leading ``n_targets`` axis (``coef``
    ``(n_targets, n_features)``), as ``Ridge.coef_``.

  Raises:
    ValueError: for non-2-D ``X``, lengths that differ, NaN in concrete inputs,
      entries so large that the sums of the solve overflow (e.g.
      ``finfo.max * U(0, 1)``), a negative, NaN or all-zero
      ``sample_weight``, a negative ``alpha`` or one whose shape is neither
      ``()`` nor ``(n_targets,)``.
    TypeError: for a string or bool ``alpha`` or a non-bool ``positive``.

  Examples:
    >>> X = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> fit = ridge(X, jnp.array([1.0, 2.0, 4.0, 5.0]), alpha=0.1)
    >>> fit.coef
    Array([1.30..., 0.32...], dtype=float32)
    >>> fit.intercept
    Array(0.708..., dtype=float32)
    >>> X2 = jnp.concatenate([X, X[:, :1]], axis=1)  # duplicated column, rank 2
    >>> ridge(X2, jnp.array([1.0, 2.0, 4.0, 5.0]), alpha=0.0).coef  # min-norm
    Array([0.66..., 0.33..., 0.66...], dtype=float32)

  References:
    scikit-learn, ``sklearn.linear_model.Ridge`` (``solver="cholesky"``).
  """
  _check_options(alpha=alpha)
  positive = check_bool("positive", positive)
  X, y, sample_weight = _check_data(X, y, sample_weight, caller="ridge", multi_output=True,
                                    rescale_weights=False, gram=positive)
  alpha = jnp.asarray(alpha, X.dtype)
  n_targets = y.shape[1] if y.ndim == 2 else None
  if alpha.ndim and alpha.size == 1:
    alpha = alpha.reshape(())
  if alpha.ndim and alpha.shape != (n_targets,):
    raise ValueError(
        f"alpha must be a scalar or have shape (n_targets,) = ({n_targets},) for y of shape "
        f"{y.shape}, got alpha.shape={alpha.shape}.")
  impl = _ridge_positive_impl if positive else _ridge_impl
  return _per_target(impl, X, y, sample_weight, alpha, fit_intercept=fit_intercept)


# ---------------------------------------------------------------- elastic net


@partial(jax.jit, static_argnames=("fit_intercept", "max_iter", "positive"))
@_solvers.full_precision
def _elastic_net_impl(X, y, sample_weight, alpha, l1_ratio, tol, *, fit_intercept, max_iter,
                      positive=False):
  if sample_weight is not None:  # as ElasticNet.fit: weights sum to n_samples
    sample_weight = sample_weight * (X.shape[0] / jnp.sum(sample_weight))
  data = _solvers.center(X, y, sample_weight, fit_intercept=fit_intercept)
  coef, gap, n_iter = _solvers.solve_centered(data, l1_ratio, alpha[None], tol, max_iter,
                                              positive=positive)
  coef = coef[0]
  return LinearFit(coef, data.y_mean - data.x_mean @ coef, gap[0], n_iter[0])


def elastic_net(
    X: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float | ArrayLike = 1.0,
    l1_ratio: float | ArrayLike = 0.5,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    sample_weight: ArrayLike | None = None,
    positive: bool = False,
) -> LinearFit:
  """Elastic net, as ``sklearn.linear_model.ElasticNet``.

  Minimizes ``1/(2n) ||y - X w - b||^2 + alpha * l1_ratio * ||w||_1 +
  1/2 * alpha * (1 - l1_ratio) * ||w||^2``.

  Stopping rule, all on the Gram matrix (on ``X`` itself when ``n_features >
  n_samples``): (1) FISTA with gradient restarts, started at zero, runs until
  the duality gap of the ``n``-scaled problem is at most ``tol * ||y_c||^2``
  (``y_c`` the centered, weighted targets), scikit-learn's test, or
  ``max_iter`` products; (2) an active-set polish takes the support and signs
  the FISTA iterate implies, solves the optimality conditions on them,
  ``(X_A'X_A + n alpha (1 - l1_ratio) I) w_A = X_A'y - n alpha l1_ratio
  sign_A``, by conjugate gradients (true residual at most ``max(tol**2, 8
  eps)`` relative), and repeats on the new support until support and signs no
  longer change, which verifies the KKT conditions; (3) a problem the polish
  could not verify goes back to FISTA, to a 100x smaller gap (not below ``64
  eps ||y_c||^2``), and is polished again. Verified coefficients are returned,
  otherwise the iterate with the smallest gap (never worse than phase 1). So
  at scikit-learn's ``tol`` the result is closer to the optimum than
  scikit-learn's coordinate descent at the same ``tol`` (typically to the
  rounding of the solve: ``tol**2`` relative residual in float64).
  the same ``tol``. With ``sample_weight`` the weights are rescaled
  to sum to ``n_samples``, the data centered with weighted means and the rows
  scaled by ``sqrt(weight)``, as ElasticNet. Matrix products run at full
  float32 precision on GPU/TPU (no TF32), half-precision and integer inputs are
  computed in float32 (the default float). Works under ``jit`` and ``vmap``;
  not differentiable (the solver is a ``lax.while_loop``); under ``jit`` NaN
  inputs cannot be rejected and give NaN results.

  Args:
    X: Design matrix, shape ``(n_samples, n_features)``.
    y: Targets, shape ``(n_samples,)`` or ``(n_samples, n_targets)`` (one
      independent fit per column, as ElasticNet; vmapped).
    alpha: Penalty strength, ``>= 0``.
    l1_ratio: Mix ``rho`` in ``[0, 1]``: 1 is the lasso, 0 is ridge (in this
      objective's scaling).
    fit_intercept: Whether to fit an unpenalized intercept.
    tol: Relative duality-gap tolerance, as scikit-learn's ``tol``.
    max_iter: Most FISTA iterations per FISTA stage; each costs one product
      with the Gram matrix, about a coordinate-descent epoch of
      scikit-learn's. A polish costs at most ``12 * (n_features + 11)``
      products (typically a few to a few tens).
    sample_weight: Per-sample weights, shape ``(n_samples,)``.
    positive: Constrain the coefficients to be ``>= 0``, as scikit-learn's
      ``positive=True`` (static): the FISTA prox becomes ``max(0,
      soft-threshold)``, the polish keeps a positive support (a stable one is
      the constrained KKT condition) and ``dual_gap`` is scikit-learn's gap
      for the constrained problem (dual norm ``max(X'R - l2 w)``).

  Returns:
    ``LinearFit``: ``coef`` ``(n_features,)``, scalar ``intercept``, the
    ``dual_gap`` of the returned ``coef`` (scikit-learn's ``dual_gap_``
    scale; formed from Gram sums, so it bottoms out near ``eps * ||y_c||^2 /
    n`` and may be slightly negative) and ``n_iter``, the products with the
    Gram matrix spent in both phases (FISTA's at most ``max_iter``, plus the
    polish's). For a 2-D ``y`` each field has a leading ``n_targets`` axis
    (``coef`` ``(n_targets, n_features)``, as ``ElasticNet.coef_``).

  Raises:
    ValueError: for non-2-D ``X``, lengths that differ, NaN in concrete
      inputs, entries so large that the Gram statistics overflow (e.g.
      ``X`` of order ``1e20`` in float32, or ``finfo.max * U(0, 1)``), a
      negative, NaN or all-zero ``sample_weight``, ``alpha < 0``,
      ``l1_ratio`` outside ``[0, 1]`` or ``max_iter < 1``.
    TypeError: for a string or bool hyperparameter (``alpha='1'``,
      ``max_iter=True``) or a non-bool ``positive``.

  Examples:
    >>> X = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> fit = elastic_net(X, jnp.array([1.0, 2.0, 4.0, 5.0]), alpha=0.1)
    >>> fit.coef
    Array([1.26..., 0.24...], dtype=float32)
    >>> bool(fit.dual_gap <= 1e-4 * 10.0 / 4)  # tol * ||y - mean(y)||^2 / n
    True

  References:
    Beck & Teboulle (2009), A fast iterative shrinkage-thresholding algorithm;
    O'Donoghue & Candes (2015), Adaptive restart for accelerated gradient
    schemes; Hintermueller, Ito & Kunisch (2003), The primal-dual active set
    strategy as a semismooth Newton method; scikit-learn's ``_cd_fast.pyx``
    for the duality gap.
  """
  _check_options(alpha=alpha, l1_ratio=l1_ratio, tol=tol, max_iter=max_iter)
  positive = check_bool("positive", positive)
  X, y, sample_weight = _check_data(X, y, sample_weight, caller="elastic_net",
                                    multi_output=True)
  return _per_target(
      _elastic_net_impl, X, y, sample_weight, jnp.asarray(alpha, X.dtype),
      jnp.asarray(l1_ratio, X.dtype), jnp.asarray(tol, X.dtype), fit_intercept=fit_intercept,
      max_iter=max_iter, positive=positive,
  )


def lasso(
    X: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float | ArrayLike = 1.0,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    sample_weight: ArrayLike | None = None,
    positive: bool = False,
) -> LinearFit:
  """Lasso, as ``sklearn.linear_model.Lasso``: ``elastic_net`` with ``l1_ratio=1``.

  Minimizes ``1/(2n) ||y - X w - b||^2 + alpha ||w||_1``; see ``elastic_net``
  for the solver and its stopping rule (FISTA to scikit-learn's duality-gap
  ``tol``, then a verified active-set polish).

  Args:
    X: Design matrix, shape ``(n_samples, n_features)``.
    y: Targets, shape ``(n_samples,)`` or ``(n_samples, n_targets)``.
    alpha: L1 strength, ``>= 0``.
    fit_intercept: Whether to fit an unpenalized intercept.
    tol: Relative duality-gap tolerance, as scikit-learn's ``tol``.
    max_iter: Most FISTA iterations.
    sample_weight: Per-sample weights, shape ``(n_samples,)``.
    positive: Constrain the coefficients to be ``>= 0`` (see ``elastic_net``).

  Returns:
    ``LinearFit`` as ``elastic_net`` (a leading ``n_targets`` axis for a
    2-D ``y``).

  Raises:
    ValueError: as ``elastic_net``.
    TypeError: as ``elastic_net``.

  Examples:
    >>> X = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> lasso(X, jnp.array([1.0, 2.0, 4.0, 5.0]), alpha=0.5).coef
    Array([1., 0.], dtype=float32)

  References:
    Tibshirani (1996), Regression shrinkage and selection via the lasso.
  """
  return elastic_net(
      X, y, alpha=alpha, l1_ratio=1.0, fit_intercept=fit_intercept, tol=tol,
      max_iter=max_iter, sample_weight=sample_weight, positive=positive,
  )


# ---------------------------------------------------------------- paths and CV


@partial(jax.jit, static_argnames=("fit_intercept", "max_iter", "n_alphas", "positive"))
@_solvers.full_precision
def _path_impl(X, y, l1_ratio, alphas, eps, tol, *, fit_intercept, max_iter, n_alphas,
               positive=False):
  data = _solvers.center(X, y, None, fit_intercept=fit_intercept)
  if alphas is None:
    xty = data.x.T @ data.y
    alphas = _solvers.alpha_grid(xty, X.shape[0], l1_ratio[None], eps=eps, n_alphas=n_alphas,
                                 positive=positive)[0]
  else:
    alphas = jnp.sort(alphas)[::-1]
  coef, _, _ = _solvers.solve_centered(data, l1_ratio, alphas, tol, max_iter,
                                       positive=positive)
  return alphas, coef.T


def elastic_net_path(
    X: ArrayLike,
    y: ArrayLike,
    *,
    l1_ratio: float | ArrayLike = 0.5,
    eps: float = 1e-3,
    n_alphas: int = 100,
    alphas: ArrayLike | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    positive: bool = False,
) -> tuple[jax.Array, jax.Array]:
  """Elastic-net regularization path, as ``sklearn.linear_model.enet_path``.

  Without ``alphas`` the grid is scikit-learn's: ``alpha_max = max|X_c'y_c| /
  (n * l1_ratio)`` (the smallest alpha with all coefficients zero; ``X_c, y_c``
  centered when ``fit_intercept``) down to ``eps * alpha_max``, geometric,
  descending. All alphas are solved together as one batch, each from zero
  (FISTA to the duality-gap ``tol``, then the verified active-set polish; see
  ``elastic_net`` for the stopping rule). ``fit_intercept=False`` is exactly
  ``enet_path``, which never centers; with ``fit_intercept=True`` column ``k``
  equals ``elastic_net(X, y, alpha=alphas[k]).coef`` and the intercepts are
  ``mean(y) - mean(X, 0) @ coefs``.

  Args:
    X: Design matrix, shape ``(n_samples, n_features)``.
    y: Targets, shape ``(n_samples,)`` or ``(n_samples, n_targets)``: one
      independent path per column (each equal to ``enet_path`` on that
      column, with its own generated grid). Unlike ``enet_path``, whose 2-D
      ``y`` solves the multi-task problem (a shared support).
    l1_ratio: Mix in ``[0, 1]`` (``> 0`` without ``alphas``).
    eps: ``alpha_min / alpha_max`` of the generated grid.
    n_alphas: Length of the generated grid.
    alphas: Explicit alphas, shape ``(n_alphas,)``; sorted descending.
    fit_intercept: Center ``X`` and ``y`` first.
    tol: Relative duality-gap tolerance (see ``elastic_net``).
    max_iter: Most FISTA iterations.
    positive: Constrain the coefficients to be ``>= 0`` (see ``elastic_net``);
      the generated grid then starts at ``alpha_max = max(0, max(X_c'y_c)) /
      (n * l1_ratio)``, as scikit-learn.

  Returns:
    ``(alphas, coefs)`` with shapes ``(n_alphas,)`` and ``(n_features,
    n_alphas)``; for a 2-D ``y`` ``(n_targets, n_alphas)`` and
    ``(n_targets, n_features, n_alphas)``.

  Raises:
    ValueError: for bad data (see ``elastic_net``), ``l1_ratio`` outside
      ``[0, 1]`` or 0 without ``alphas``, ``eps <= 0``, negative ``alphas``.
    TypeError: for a string or bool hyperparameter (``n_alphas=True``,
      ``eps='0.1'``) or a non-bool ``positive``.

  Examples:
    >>> X = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> alphas, coefs = elastic_net_path(X, jnp.array([1.0, 2.0, 4.0, 5.0]), n_alphas=3)
    >>> alphas
    Array([3.5       , 0.11067972, 0.0035    ], dtype=float32)
    >>> coefs.shape
    (2, 3)

  References:
    Friedman, Hastie & Tibshirani (2010), Regularization paths for generalized
    linear models via coordinate descent (the alpha grid).
  """
  _check_options(l1_ratio=l1_ratio, tol=tol, max_iter=max_iter)
  positive = check_bool("positive", positive)
  grid = _check_grid([l1_ratio], alphas, n_alphas, eps)
  X, y, _ = _check_data(X, y, caller="elastic_net_path", multi_output=True)
  if grid is not None:
    grid = grid.astype(X.dtype)
  path = partial(_path_impl, fit_intercept=fit_intercept, max_iter=max_iter, n_alphas=n_alphas,
                 positive=positive)
  args = (jnp.asarray(l1_ratio, X.dtype), grid, jnp.asarray(eps, X.dtype),
          jnp.asarray(tol, X.dtype))
  if y.ndim == 1:
    return path(X, y, *args)
  return jax.vmap(lambda y_k: path(X, y_k, *args), in_axes=1)(y)
