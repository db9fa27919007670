"""``elastic_net_cv``: every fold x l1 ratio x alpha problem in one compiled program.

Folds are padded index blocks; the training Gram statistics of every fold come
from the held-out blocks (the data is read once), and every fold x l1 ratio x
alpha problem is solved by one batched FISTA loop and active-set polish,
optionally split along the grid axis over a 1-axis device mesh (one loop per
device, ``shard_map``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.typing import ArrayLike

from lossreg_jax._validation import check_bool, check_in_range, check_int, check_number
from lossreg_jax.linear import _solvers
from lossreg_jax.linear._checks import check_data as _check_data
from lossreg_jax.linear._checks import check_grid as _check_grid
from lossreg_jax.linear._checks import check_options as _check_options

__all__ = ["EnetCVResult", "elastic_net_cv"]


def kfold_indices(n_samples: int, n_folds: int):
  """``KFold(n_folds)`` test folds as a padded index array and mask, both ``(F, m)``.

  NumPy, static: the first ``n_samples % n_folds`` folds hold one extra row.
  """
  sizes = np.full(n_folds, n_samples // n_folds)
  sizes[: n_samples % n_folds] += 1
  starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
  width = int(sizes.max())
  offsets = np.arange(width)
  mask = offsets[None, :] < sizes[:, None]
  index = np.where(mask, starts[:, None] + offsets[None, :], 0)
  return index, mask


def problem_mesh(devices, mesh) -> Mesh | None:
  """The 1-axis mesh that ``elastic_net_cv`` splits its problems over, or None."""
  if devices is None and mesh is None:
    return None
  if devices is not None and mesh is not None:
    raise ValueError("Pass devices or mesh to elastic_net_cv, not both.")
  if mesh is not None:
    if not isinstance(mesh, Mesh):
      raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}.")
    if len(mesh.axis_names) != 1:
      raise ValueError(
          f"mesh must have exactly one axis, got axis_names={mesh.axis_names} (shape "
          f"{dict(mesh.shape)}); build one with Mesh(np.array(devices), ('problems',))."
      )
    return mesh
  if isinstance(devices, (jax.Device, str)) or not hasattr(devices, "__iter__"):
    raise TypeError(
        f"devices must be a sequence of jax.Device (e.g. jax.devices()), got "
        f"{type(devices).__name__}."
    )
  devices = list(np.ravel(np.asarray(devices, dtype=object)))
  bad = [d for d in devices if not isinstance(d, jax.Device)]
  if not devices or bad:
    raise ValueError(
        f"devices must be a non-empty sequence of jax.Device, got {len(devices)} items"
        + (f", including {bad[0]!r}." if bad else ".")
    )
  if len(set(devices)) != len(devices):
    raise ValueError(f"devices must be distinct, got {devices}.")
  return Mesh(np.array(devices), ("problems",))


class FoldStats(NamedTuple):
  """Per-fold training statistics, centered on each training set."""

  gram: jax.Array  # (F, p, p)
  xty: jax.Array  # (F, p)
  y_norm2: jax.Array  # (F,)
  x_mean: jax.Array  # (F, p)
  y_mean: jax.Array  # (F,)
  n_train: jax.Array  # (F,)
  full_gram: jax.Array  # (p, p), of all the data


def fold_stats(x_test, y_test, mask, n_samples, *, fit_intercept: bool, root_test=None):
  """Training Gram statistics of every fold from the held-out blocks.

  The folds partition the rows, so the full Gram is the sum of the held-out
  Grams and each training Gram is the full one minus its held-out block: the
  data is read once (``n p^2`` flops in all, not ``k n p^2``). Centering each
  training set is a rank-one correction; ``x_test, y_test`` (padded rows are
  zero, ``mask`` False) should already be centered on all the data so that the
  correction is small and loses no precision.

  With sample weights ``x_test, y_test`` are the rows scaled by ``root_test =
  sqrt(weight)`` (``(F, m)``, 0 on padding) and ``n_samples`` is the sum of
  the weights: the Grams are then weighted, the sums ``sum w x`` come from
  ``root * x`` and ``n_train`` is each training set's weight sum, so the
  rank-one correction centers on the weighted means (ElasticNetCV rescales
  each training set's weights to sum to its size, which leaves this
  objective, in which alpha multiplies the weight sum, unchanged).
  """
  gram_t = jnp.einsum("fmp,fmq->fpq", x_test, x_test)
  xty_t = jnp.einsum("fmp,fm->fp", x_test, y_test)
  if root_test is None:
    sum_x_t, sum_y_t = jnp.sum(x_test, axis=1), jnp.sum(y_test, axis=1)
    n_train = (n_samples - jnp.sum(mask, axis=1)).astype(x_test.dtype)
  else:
    sum_x_t = jnp.einsum("fmp,fm->fp", x_test, root_test)
    sum_y_t = jnp.sum(y_test * root_test, axis=1)
    n_train = n_samples - jnp.sum(root_test * root_test, axis=1)
  yy_t = jnp.sum(y_test * y_test, axis=1)
  full_gram = jnp.sum(gram_t, axis=0)
  gram = full_gram[None] - gram_t
  xty = jnp.sum(xty_t, axis=0, keepdims=True) - xty_t
  y_norm2 = jnp.sum(yy_t) - yy_t
  if fit_intercept:
    x_mean = (jnp.sum(sum_x_t, axis=0, keepdims=True) - sum_x_t) / n_train[:, None]
    y_mean = (jnp.sum(sum_y_t) - sum_y_t) / n_train
    gram = gram - n_train[:, None, None] * x_mean[:, :, None] * x_mean[:, None, :]
    xty = xty - n_train[:, None] * x_mean * y_mean[:, None]
    y_norm2 = y_norm2 - n_train * y_mean**2
  else:
    x_mean = jnp.zeros_like(sum_x_t)
    y_mean = jnp.zeros_like(sum_y_t)
  return FoldStats(gram, xty, y_norm2, x_mean, y_mean, n_train, full_gram)


def held_out_mse(x_test, y_test, mask, coef, intercept, root_test=None):
  """Mean squared error of each fold's held-out rows, shape ``(F, B)``.

  ``coef`` is ``(F, B, p)`` and ``intercept`` ``(F, B)``; the residuals are
  formed explicitly (one ``(F, m, p) x (F, B, p)`` product), not from Gram
  statistics, so no precision is lost to cancellation. With ``root_test =
  sqrt(weight)`` (rows of ``x_test, y_test`` scaled by it) the weighted
  average, as ElasticNetCV's ``np.average(residues**2, weights=sw_test)``.
  """
  pred = jnp.einsum("fmp,fbp->fmb", x_test, coef)
  if root_test is None:
    pred = pred + intercept[:, None, :]
    total = jnp.sum(mask, axis=1)
  else:
    pred = pred + intercept[:, None, :] * root_test[..., None]
    total = jnp.sum(root_test * root_test, axis=1)
  resid = jnp.where(mask[..., None], pred - y_test[..., None], 0.0)
  return jnp.sum(resid * resid, axis=1) / total[:, None]


@partial(jax.jit, static_argnames=("fit_intercept", "max_iter", "n_alphas", "mesh", "positive"))
@_solvers.full_precision
def cv_impl(X, y, test_index, test_mask, l1_ratios, alphas, eps, tol, *, fit_intercept,
            max_iter, n_alphas, mesh=None, positive=False, sample_weight=None):
  p = X.shape[1]
  # With weights every "n" below is a weight sum: the objective is
  # 1/(2 sum w) sum w r^2 + penalties, ElasticNet's with weights rescaled.
  n = X.shape[0] if sample_weight is None else jnp.sum(sample_weight)
  # Center on all the data once: the folds' own centering is then a small
  # rank-one correction (see fold_stats) and the alpha grid is scikit-learn's,
  # computed on the full data and shared by every fold.
  data = _solvers.center(X, y, sample_weight, fit_intercept=fit_intercept)
  if alphas is None:
    grid = _solvers.alpha_grid(data.x.T @ data.y, n, l1_ratios, eps=eps, n_alphas=n_alphas,
                               positive=positive)
  else:
    grid = jnp.broadcast_to(jnp.sort(alphas)[::-1], (l1_ratios.shape[0], alphas.shape[0]))
  x_test = jnp.where(test_mask[..., None], data.x[test_index], 0.0)
  y_test = jnp.where(test_mask, data.y[test_index], 0.0)
  root_test = None
  if sample_weight is not None:  # data rows are scaled by sqrt(weight)
    root_test = jnp.where(test_mask, jnp.sqrt(sample_weight)[test_index], 0.0)
  stats = fold_stats(x_test, y_test, test_mask, n, fit_intercept=fit_intercept,
                     root_test=root_test)
  # One batch axis (n_folds + 1, n_l1_ratios * n_alphas): the data has the fold
  # axis, the penalties both. The extra "fold" is all the data, so the refit at
  # the selected alpha is already solved by the same loop (one compiled solver).
  n_folds = test_index.shape[0]
  gram = jnp.concatenate([stats.gram, stats.full_gram[None]])
  xty = jnp.concatenate([stats.xty, (data.x.T @ data.y)[None]])
  y_norm2 = jnp.concatenate([stats.y_norm2, jnp.sum(data.y * data.y)[None]])
  n_rows = jnp.concatenate([stats.n_train, jnp.full((1,), n, X.dtype)])  # weight sums
  n_ratios, n_grid = grid.shape
  flat_alpha = grid.reshape(-1)
  flat_ratio = jnp.repeat(l1_ratios, n_grid)
  l1 = n_rows[:, None] * (flat_alpha * flat_ratio)[None, :]
  l2 = n_rows[:, None] * (flat_alpha * (1.0 - flat_ratio))[None, :]
  matvec = _solvers.gram_matvec(gram)
  lipschitz = _solvers.largest_eigenvalue(matvec, n_folds + 1, p, X.dtype)
  if mesh is None:
    out = _solvers.fista(
        matvec, xty, y_norm2, l1, l2, lipschitz=lipschitz, tol=tol, max_iter=max_iter,
        positive=positive,
    )
  else:  # the problem axis split over the mesh, one solver loop per device
    out = _solvers.sharded_fista(
        mesh, gram, xty, y_norm2, l1, l2, lipschitz=lipschitz, tol=tol, max_iter=max_iter,
        positive=positive,
    )
  coefs = out.coef[:n_folds]
  intercept = stats.y_mean[:, None] - jnp.einsum("fp,fbp->fb", stats.x_mean, coefs)
  mse = held_out_mse(x_test, y_test, test_mask, coefs, intercept, root_test)
  if mesh is not None:  # (F, B_pad), split over the mesh: gather it, drop the padding
    mse = _replicate(mesh, mse)[:, : n_ratios * n_grid]
  mse_path = jnp.moveaxis(mse.reshape(n_folds, n_ratios, n_grid), 0, -1)  # (R, A, F)
  # First minimum in (l1_ratio, alpha) order, as ElasticNetCV's strict '<' scan.
  best = jnp.argmin(jnp.mean(mse_path, axis=-1).reshape(-1))
  alpha, ratio = flat_alpha[best], flat_ratio[best]
  if mesh is None:
    coef = out.coef[n_folds, best]
  else:
    # An index into the split axis would gather every coefficient; a masked sum
    # (exact: the other terms are 0) is a local sum and one all-reduce of p values.
    refit = out.coef[n_folds]
    coef = jnp.sum(jnp.where((jnp.arange(refit.shape[0]) == best)[:, None], refit, 0.0), axis=0)
  result = alpha, ratio, coef, data.y_mean - data.x_mean @ coef, grid, mse_path
  return result if mesh is None else _replicate(mesh, result)


def _replicate(mesh, tree):
  """Constrains every array of ``tree`` to be replicated over ``mesh``."""
  replicated = NamedSharding(mesh, PartitionSpec())
  return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, replicated), tree)


class EnetCVResult(NamedTuple):
  """Result of ``elastic_net_cv``, with scikit-learn ``ElasticNetCV``'s shapes.

  Attributes:
    alpha: The selected alpha (``alpha_``).
    l1_ratio: The selected l1 ratio (``l1_ratio_``).
    coef: Coefficients refit on all the data, shape ``(n_features,)``.
    intercept: Intercept of the refit.
    alphas: The grid, ``(n_alphas,)`` for one l1 ratio or user alphas, else
      ``(n_l1_ratios, n_alphas)`` (``alphas_``).
    mse_path: Held-out mean squared errors, ``(n_alphas, n_folds)`` for one l1
      ratio, else ``(n_l1_ratios, n_alphas, n_folds)`` (``mse_path_``).
  """

  alpha: jax.Array
  l1_ratio: jax.Array
  coef: jax.Array
  intercept: jax.Array
  alphas: jax.Array
  mse_path: jax.Array


# ---------------------------------------------------------------- validation


def elastic_net_cv(
    X: ArrayLike,
    y: ArrayLike,
    *,
    l1_ratio: float | Sequence[float] | ArrayLike = 0.5,
    cv: int = 5,
    n_alphas: int = 100,
    eps: float = 1e-3,
    alphas: ArrayLike | None = None,
    key: jax.Array | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    devices: Sequence[jax.Device] | None = None,
    mesh: Mesh | None = None,
    positive: bool = False,
    sample_weight: ArrayLike | None = None,
) -> EnetCVResult:
  """Cross-validated elastic net, as ``sklearn.linear_model.ElasticNetCV``.

  Every fold x l1 ratio x alpha problem is solved in ONE compiled program: the
  training Gram matrices come from the held-out blocks (full Gram minus each
  fold's block, centered by a rank-one correction), then a single batched FISTA
  loop runs until every problem's duality gap meets ``tol`` and a batched
  active-set polish solves and verifies each problem's optimality conditions
  (the stopping rule of ``elastic_net``: at scikit-learn's ``tol`` the
  ``mse_path`` is typically exact to rounding, closer to the exact one than
  ``ElasticNetCV``'s); the held-out MSEs pick the alpha (and l1 ratio) with the lowest mean,
  first in grid order on ties. The refit on all the data rides in the same
  batch (one extra "fold" per grid point, about ``1 / cv`` more work) and the
  fit at the selected alpha is returned; it solves the same problem as
  scikit-learn's refit (to ``tol``), from zero. ``cv``, ``n_alphas`` and the
  number of l1 ratios are static under ``jit``. The
  alpha grid is computed on the full data once, per l1 ratio, as scikit-learn.

  With ``devices`` or ``mesh`` the ``(n_folds + 1) x (n_l1_ratios * n_alphas)``
  problem batch is split along its grid axis over the devices (SPMD, one
  compiled program): the data and its per-fold Gram statistics (``p x p`` per
  fold) are replicated, the grid axis is padded to a multiple of the device
  count with copies of a real problem (results dropped) and each device runs
  the solver loop on its own share, under ``shard_map``, with no communication
  per iteration; only the ``(n_folds, n_grid)`` held-out errors and the
  selected refit (``n_features`` values) cross devices. The result equals the
  unsharded one (identical alpha, l1 ratio, coef and intercept in our tests;
  ``mse_path`` to ~1e-15 relative, the rounding of smaller batched products)
  and its arrays are replicated on the mesh.

  Args:
    X: Design matrix, shape ``(n_samples, n_features)``.
    y: Targets, shape ``(n_samples,)``.
    l1_ratio: One mix in ``[0, 1]`` or a sequence of them.
    cv: Number of folds, ``2 <= cv <= n_samples``.
    n_alphas: Length of each generated alpha grid.
    eps: ``alpha_min / alpha_max`` of the generated grid.
    alphas: Explicit alphas, shape ``(n_alphas,)``, shared by all l1 ratios.
    key: Without a key the folds are ``KFold(cv)``'s contiguous blocks; with a
      key the rows are first permuted by ``jax.random.permutation(key, n)``.
    fit_intercept: Whether to fit (and center for) an intercept.
    tol: Relative duality-gap tolerance (see ``elastic_net``).
    max_iter: Most FISTA iterations.
    devices: Devices to split the problem grid over, e.g. ``jax.devices()``
      (static; a 1-axis mesh named ``"problems"`` is built from them).
    mesh: A ``jax.sharding.Mesh`` with exactly one axis, the grid is split
      along it (static). Give ``devices`` or ``mesh``, not both; with neither
      everything runs on the default device.
    positive: Constrain the coefficients to be ``>= 0`` (see ``elastic_net``;
      the grid's ``alpha_max`` uses ``max(0, max(X_c'y_c))``), as
      ``ElasticNetCV(positive=True)`` (static).
    sample_weight: Per-sample weights, shape ``(n_samples,)``, as
      ``ElasticNetCV.fit(sample_weight=)``: the grid from the weighted,
      weighted-centered data; each training fit is ElasticNet's with its
      fold's weights (centered on the fold's weighted means); the held-out
      errors are weighted averages; the refit uses all the weights.

  Returns:
    ``EnetCVResult(alpha, l1_ratio, coef, intercept, alphas, mse_path)``:
    ``alphas`` shaped ``(n_alphas,)`` for one l1 ratio (or explicit alphas),
    else ``(n_l1_ratios, n_alphas)``; ``mse_path`` shaped ``(n_alphas,
    n_folds)`` for one l1 ratio, else ``(n_l1_ratios, n_alphas, n_folds)``.

  Raises:
    ValueError: for bad data or ``sample_weight`` (see ``elastic_net``), ``cv`` outside ``[2,
      n_samples]``, an ``l1_ratio`` outside ``[0, 1]`` (or 0 without
      ``alphas``), ``eps <= 0``, negative ``alphas``, both ``devices`` and
      ``mesh``, empty or repeated ``devices`` or a mesh without exactly one
      axis.
    TypeError: for ``devices`` that is not a sequence or ``mesh`` that is not
      a ``Mesh``, a string or bool hyperparameter (``cv=True``) or a non-bool
      ``positive``.

  Examples:
    >>> X = jnp.arange(40.0).reshape(20, 2) % 7
    >>> y = X @ jnp.array([1.0, -2.0]) + 0.5
    >>> result = elastic_net_cv(X, y, cv=4, n_alphas=10)
    >>> result.mse_path.shape
    (10, 4)
    >>> result.alpha
    Array(0.01344, dtype=float32)
    >>> result.coef
    Array([ 0.99..., -1.99...], dtype=float32)
    >>> sharded = elastic_net_cv(X, y, cv=4, n_alphas=10, devices=jax.devices())
    >>> bool(jnp.allclose(sharded.mse_path, result.mse_path, rtol=1e-6))
    True

  References:
    scikit-learn, ``sklearn.linear_model.ElasticNetCV`` and ``KFold``.
  """
  single = np.ndim(l1_ratio) == 0
  ratios = [l1_ratio] if single else list(np.asarray(l1_ratio).reshape(-1))
  if not ratios:
    raise ValueError("l1_ratio must hold at least one value, got an empty sequence.")
  for r in ratios:
    check_number("l1_ratio", r)
    check_in_range("l1_ratio", r, 0.0, 1.0)
  _check_options(tol=tol, max_iter=max_iter)
  positive = check_bool("positive", positive)
  grid = _check_grid(ratios, alphas, n_alphas, eps)
  grid_mesh = problem_mesh(devices, mesh)
  X, y, sample_weight = _check_data(X, y, sample_weight, caller="elastic_net_cv")
  n = X.shape[0]
  check_int("cv", cv, 2)
  if not cv <= n:
    raise ValueError(f"cv must be an int in [2, n_samples={n}], got {cv!r}.")
  index, mask = kfold_indices(n, int(cv))
  index, mask = jnp.asarray(index), jnp.asarray(mask)
  if key is not None:
    index = jax.random.permutation(key, n)[index]
  extra = {}
  if grid_mesh is not None:
    # Inputs committed to another device would clash with the mesh: replicate them.
    X, y, index, mask, sample_weight = jax.device_put(
        (X, y, index, mask, sample_weight), NamedSharding(grid_mesh, PartitionSpec()))
    extra = dict(mesh=grid_mesh)
  out = cv_impl(
      X, y, index, mask, jnp.asarray(ratios, X.dtype),
      None if grid is None else grid.astype(X.dtype), jnp.asarray(eps, X.dtype),
      jnp.asarray(tol, X.dtype), fit_intercept=fit_intercept, max_iter=max_iter,
      n_alphas=n_alphas, positive=positive, sample_weight=sample_weight, **extra,
  )
  alpha, ratio, coef, intercept, grid_out, mse_path = out
  if single:
    grid_out, mse_path = grid_out[0], mse_path[0]
  elif grid is not None:
    grid_out = grid_out[0]
  return EnetCVResult(alpha, ratio, coef, intercept, grid_out, mse_path)
