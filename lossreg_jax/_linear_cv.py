"""Private cross-validation machinery behind ``lossreg_jax.linear.elastic_net_cv``.

Folds are padded index blocks; the training Gram statistics of every fold come
from the held-out blocks (the data is read once), and every fold x l1 ratio x
alpha problem is solved by one batched FISTA loop, optionally split along the
grid axis over a 1-axis device mesh (one loop per device, ``shard_map``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lossreg_jax import _linear_solvers as _solvers


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


def fold_stats(x_test, y_test, mask, n_samples, *, fit_intercept: bool):
  """Training Gram statistics of every fold from the held-out blocks.

  The folds partition the rows, so the full Gram is the sum of the held-out
  Grams and each training Gram is the full one minus its held-out block: the
  data is read once (``n p^2`` flops in all, not ``k n p^2``). Centering each
  training set is a rank-one correction; ``x_test, y_test`` (padded rows are
  zero, ``mask`` False) should already be centered on all the data so that the
  correction is small and loses no precision.
  """
  gram_t = jnp.einsum("fmp,fmq->fpq", x_test, x_test)
  xty_t = jnp.einsum("fmp,fm->fp", x_test, y_test)
  sum_x_t, sum_y_t = jnp.sum(x_test, axis=1), jnp.sum(y_test, axis=1)
  yy_t = jnp.sum(y_test * y_test, axis=1)
  n_train = (n_samples - jnp.sum(mask, axis=1)).astype(x_test.dtype)
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


def held_out_mse(x_test, y_test, mask, coef, intercept):
  """Mean squared error of each fold's held-out rows, shape ``(F, B)``.

  ``coef`` is ``(F, B, p)`` and ``intercept`` ``(F, B)``; the residuals are
  formed explicitly (one ``(F, m, p) x (F, B, p)`` product), not from Gram
  statistics, so no precision is lost to cancellation.
  """
  pred = jnp.einsum("fmp,fbp->fmb", x_test, coef) + intercept[:, None, :]
  resid = jnp.where(mask[..., None], pred - y_test[..., None], 0.0)
  return jnp.sum(resid * resid, axis=1) / jnp.sum(mask, axis=1)[:, None]


@partial(jax.jit, static_argnames=("fit_intercept", "max_iter", "n_alphas", "mesh"))
@_solvers.full_precision
def cv_impl(X, y, test_index, test_mask, l1_ratios, alphas, eps, tol, *, fit_intercept,
            max_iter, n_alphas, mesh=None):
  n, p = X.shape
  # Center on all the data once: the folds' own centering is then a small
  # rank-one correction (see fold_stats) and the alpha grid is scikit-learn's,
  # computed on the full data and shared by every fold.
  data = _solvers.center(X, y, None, fit_intercept=fit_intercept)
  if alphas is None:
    grid = _solvers.alpha_grid(data.x.T @ data.y, n, l1_ratios, eps=eps, n_alphas=n_alphas)
  else:
    grid = jnp.broadcast_to(jnp.sort(alphas)[::-1], (l1_ratios.shape[0], alphas.shape[0]))
  x_test = jnp.where(test_mask[..., None], data.x[test_index], 0.0)
  y_test = jnp.where(test_mask, data.y[test_index], 0.0)
  stats = fold_stats(x_test, y_test, test_mask, n, fit_intercept=fit_intercept)
  # One batch axis (n_folds + 1, n_l1_ratios * n_alphas): the data has the fold
  # axis, the penalties both. The extra "fold" is all the data, so the refit at
  # the selected alpha is already solved by the same loop (one compiled solver).
  n_folds = test_index.shape[0]
  gram = jnp.concatenate([stats.gram, stats.full_gram[None]])
  xty = jnp.concatenate([stats.xty, (data.x.T @ data.y)[None]])
  y_norm2 = jnp.concatenate([stats.y_norm2, jnp.sum(data.y * data.y)[None]])
  n_rows = jnp.concatenate([stats.n_train, jnp.full((1,), n, X.dtype)])
  n_ratios, n_grid = grid.shape
  flat_alpha = grid.reshape(-1)
  flat_ratio = jnp.repeat(l1_ratios, n_grid)
  l1 = n_rows[:, None] * (flat_alpha * flat_ratio)[None, :]
  l2 = n_rows[:, None] * (flat_alpha * (1.0 - flat_ratio))[None, :]
  matvec = _solvers.gram_matvec(gram)
  lipschitz = _solvers.largest_eigenvalue(matvec, n_folds + 1, p, X.dtype)
  if mesh is None:
    out = _solvers.fista(
        matvec, xty, y_norm2, l1, l2, lipschitz=lipschitz, tol=tol, max_iter=max_iter
    )
  else:  # the problem axis split over the mesh, one solver loop per device
    out = _solvers.sharded_fista(
        mesh, gram, xty, y_norm2, l1, l2, lipschitz=lipschitz, tol=tol, max_iter=max_iter
    )
  coefs = out.coef[:n_folds]
  intercept = stats.y_mean[:, None] - jnp.einsum("fp,fbp->fb", stats.x_mean, coefs)
  mse = held_out_mse(x_test, y_test, test_mask, coefs, intercept)
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
