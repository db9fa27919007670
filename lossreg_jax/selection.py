"""K-fold masks, cross-validation as one vmapped program, and recursive feature elimination.

Folds are boolean masks rather than gathered subsets, so every fold has the same
static shapes and all folds run as one ``jax.vmap``-ed, compiled program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import check_array_tree, check_callable, check_rank

__all__ = ["RFEResult", "cross_validate", "kfold_masks", "rfe"]


def _check_int(name: str, value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be a static Python int, got {value!r}.")
  return int(value)


@partial(jax.jit, static_argnums=1)
def _stratified_folds(y: jax.Array, k: int, key: jax.Array | None) -> jax.Array:
  """Fold index of each row, with StratifiedKFold's per-class allocation.

  scikit-learn encodes classes by order of first appearance, sorts the encoded
  labels and deals the sorted positions round-robin to the folds, so class c
  (occupying positions ``[block, block + size)``) gets, in fold i, the number of
  positions ``p`` in that range with ``p % k == i``. The m-th row of class c (in
  row order, or in a random order with a key) goes to the first fold whose
  cumulative allocation exceeds m. One sort and O(k n) sums: works on traced labels.
  """
  n = y.shape[0]
  pos = jnp.arange(n)
  if key is None:
    order = jnp.argsort(y, stable=True)  # grouped by label, rows in order
  else:
    # Grouped by label, rows in a random order within each group: this
    # shuffles each class's folds as StratifiedKFold(shuffle=True) does.
    order = jnp.lexsort((jax.random.permutation(key, n), y))
  ys = y[order]
  new = jnp.concatenate([jnp.ones(1, bool), ys[1:] != ys[:-1]])
  group = jnp.cumsum(new) - 1  # class id by sorted label, per sorted position
  start = jax.ops.segment_min(pos, group, n)[group]  # group start, sorted order
  size = jax.ops.segment_sum(jnp.ones(n, jnp.int32), group, n)[group]
  first = jax.ops.segment_min(order, group, n)[group]  # row of first appearance
  # scikit-learn orders the classes by first appearance: a class's block starts
  # after the sizes of the classes first seen in earlier rows (an exclusive
  # cumulative sum over rows, each class's size placed at its first row).
  size_at_first = jnp.zeros(n, jnp.int32).at[jnp.where(new, first, n)].add(size, mode="drop")
  block = (jnp.cumsum(size_at_first) - size_at_first)[first]
  folds = jnp.arange(k)[:, None]

  def count(x):  # positions p in [0, x) with p % k == fold, shape (k, n)
    return (x[None, :] - folds + k - 1) // k

  allocation = count(block + size) - count(block)
  fold_sorted = jnp.sum(jnp.cumsum(allocation, axis=0) <= (pos - start)[None, :], axis=0)
  return jnp.zeros(n, jnp.int32).at[order].set(fold_sorted.astype(jnp.int32))


def kfold_masks(
    n: int,
    k: int,
    *,
    key: jax.Array | None = None,
    stratify: ArrayLike | None = None,
) -> jax.Array:
  """Held-out masks of k-fold cross-validation.

  Without ``key`` and ``stratify`` the folds are contiguous, exactly as
  ``sklearn.model_selection.KFold(k)``: the first ``n % k`` folds hold
  ``n // k + 1`` rows, the others ``n // k``. With a ``key`` the rows are
  permuted first and then split contiguously (``KFold(k, shuffle=True)``, with
  JAX's random permutation instead of NumPy's).

  With ``stratify=labels`` each fold receives, per class, exactly the counts of
  ``StratifiedKFold(k)``. Without a key the folds are identical to
  ``StratifiedKFold(k, shuffle=False)``; with a key each class's rows are
  assigned in a random order (same counts, different membership), as
  ``StratifiedKFold(k, shuffle=True)``. ``stratify`` may be traced.

  Args:
    n: Static number of rows.
    k: Static number of folds, ``2 <= k <= n``.
    key: Optional PRNG key; shuffles the rows (or each class's rows).
    stratify: Optional class labels, shape ``(n,)``, any integer or bool dtype.

  Returns:
    ``(k, n)`` bool: row ``i`` is True where a sample is held out in fold ``i``;
    every sample is held out exactly once.

  Raises:
    ValueError: if ``k < 2``, ``k > n``, ``stratify`` is not ``(n,)``, or every
      class of a concrete ``stratify`` has fewer than ``k`` members.
    TypeError: if ``n`` or ``k`` is not a Python int.

  Examples:
    >>> kfold_masks(5, 2).astype(int)
    Array([[1, 1, 1, 0, 0],
           [0, 0, 0, 1, 1]], dtype=int32)
    >>> kfold_masks(6, 3, stratify=jnp.array([0, 0, 0, 1, 1, 1])).astype(int)
    Array([[1, 0, 0, 1, 0, 0],
           [0, 1, 0, 0, 1, 0],
           [0, 0, 1, 0, 0, 1]], dtype=int32)

  References:
    scikit-learn's ``KFold`` and ``StratifiedKFold``.
  """
  n, k = _check_int("n", n), _check_int("k", k)
  if k < 2 or k > n:
    raise ValueError(f"k must satisfy 2 <= k <= n, got k={k} and n={n}.")
  if stratify is not None:
    y = jnp.asarray(stratify)
    if y.shape != (n,):
      raise ValueError(f"stratify must have shape (n,) = ({n},), got {y.shape}.")
    if not isinstance(y, jax.core.Tracer):
      counts = np.unique(np.asarray(y), return_counts=True)[1]
      if np.all(counts < k):
        raise ValueError(
            f"k={k} is greater than the number of members in every class of "
            f"stratify (largest class: {counts.max()} of n={n})."
        )
    fold = _stratified_folds(y, k, key)
  else:
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    fold = jnp.asarray(np.repeat(np.arange(k, dtype=np.int32), sizes))
    if key is not None:
      # Row perm[j] takes position j of the contiguous split.
      fold = jnp.zeros(n, jnp.int32).at[jax.random.permutation(key, n)].set(fold)
  return fold[None, :] == jnp.arange(k, dtype=jnp.int32)[:, None]


def _vmapped_folds(fit_eval_fn, data, masks):
  test = masks.astype(jnp.asarray(0.0).dtype)  # float32, or float64 with x64
  return jax.vmap(fit_eval_fn, in_axes=(None, 0, 0))(data, 1 - test, test)


_jit_vmapped_folds = jax.jit(_vmapped_folds, static_argnums=0)


def cross_validate(
    fit_eval_fn: Callable[[Any, jax.Array, jax.Array], Any],
    data: Any,
    masks: ArrayLike,
    *,
    devices: Sequence[jax.Device] | None = None,
) -> Any:
  """Fits and evaluates every fold in one compiled, ``vmap``-ed program.

  ``fit_eval_fn(data, train_weights, test_weights)`` is called ONCE, traced
  under ``jax.vmap`` over the fold axis: ``data`` is the full data set (any
  pytree, shared by all folds) and ``train_weights`` / ``test_weights`` are
  ``(n,)`` float vectors, ``1.0`` for the rows in the training / held-out part
  of the fold and ``0.0`` elsewhere. Weighting by them rather than gathering
  subsets keeps every shape static. The whole is ``jax.jit``-compiled; the
  compiled program is cached per ``fit_eval_fn`` object.

  Args:
    fit_eval_fn: Pure JAX function ``(data, train_weights, test_weights) ->
      pytree of metrics``; it must use the weights (e.g. weighted normal
      equations and a weighted mean of the test error).
    data: Pytree of arrays whose rows are the ``n`` samples.
    masks: ``(k, n)`` bool, True where a row is held out (``kfold_masks``).
    devices: Optional devices to shard the fold axis over (``k`` must be a
      multiple of ``len(devices)``); ``data`` is replicated on each.

  Returns:
    The pytree returned by ``fit_eval_fn`` with a leading fold axis of size ``k``.

  Raises:
    ValueError: if ``masks`` is not rank 2, a leaf of ``data`` does not have
      ``n`` rows (``masks.shape[1]``), or ``k`` is not a multiple of the number
      of ``devices``.
    TypeError: if ``fit_eval_fn`` is not callable, ``masks`` is not boolean,
      a leaf of ``data`` is not a numeric array, or ``devices`` holds something
      else than ``jax.Device`` objects.

  Examples:
    A ridge fit (with intercept, as ``sklearn.linear_model.Ridge``) through
    weighted normal equations, scored by the weighted test MSE:

    >>> def fit_eval(data, train_w, test_w, alpha=1.0):
    ...   X, y = data
    ...   x_mean = train_w @ X / train_w.sum()
    ...   y_mean = train_w @ y / train_w.sum()
    ...   Xc, yc = X - x_mean[None, :], y - y_mean
    ...   gram = Xc.T @ (train_w[:, None] * Xc) + alpha * jnp.eye(X.shape[1])
    ...   coef = jnp.linalg.solve(gram, Xc.T @ (train_w * yc))
    ...   residual = y - (X @ coef + y_mean - x_mean @ coef)
    ...   return {"mse": test_w @ residual**2 / test_w.sum(), "coef": coef}
    >>> X = jnp.sin(jnp.arange(120.0) ** 2).reshape(40, 3)
    >>> y = X @ jnp.array([1.0, -2.0, 0.5]) + 3.0
    >>> scores = cross_validate(fit_eval, (X, y), kfold_masks(40, 5))
    >>> scores["mse"].shape, scores["coef"].shape
    ((5,), (5, 3))
    >>> bool(jnp.all(scores["mse"] < 0.1))
    True
  """
  check_callable("fit_eval_fn", fit_eval_fn)
  masks = jnp.asarray(masks)
  check_rank("masks", masks, 2)
  if masks.dtype != jnp.bool_:
    raise TypeError(f"masks must be boolean (True = held out), got dtype {masks.dtype}.")
  check_array_tree("data", data, floating=False)
  n = masks.shape[1]
  rows = {jax.tree_util.keystr(path): np.shape(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]}
  wrong = {path: shape for path, shape in rows.items() if not shape or shape[0] != n}
  if not rows or wrong:
    raise ValueError(f"data must be a pytree of arrays with one row per sample, {n} rows as "
                     f"masks has shape {masks.shape}; got "
                     + (", ".join(f"data{p} of shape {s}" for p, s in wrong.items())
                        or "no arrays") + ".")
  if devices is not None:
    devices = list(devices)
    for d in devices:
      if not isinstance(d, jax.Device):
        raise TypeError(f"devices must be jax.Device objects (e.g. jax.devices()), got "
                        f"{type(d).__name__} {d!r}.")
    k = masks.shape[0]
    if k % len(devices):
      raise ValueError(
          f"the number of folds k={k} must be a multiple of len(devices)="
          f"{len(devices)} to shard the fold axis."
      )
    mesh = jax.sharding.Mesh(np.asarray(devices), ("folds",))
    P = jax.sharding.PartitionSpec
    masks = jax.device_put(masks, jax.sharding.NamedSharding(mesh, P("folds", None)))
    data = jax.device_put(data, jax.sharding.NamedSharding(mesh, P()))
  try:
    hash(fit_eval_fn)
  except TypeError:  # unhashable callables cannot be static: compile per call
    return jax.jit(partial(_vmapped_folds, fit_eval_fn))(data, masks)
  return _jit_vmapped_folds(fit_eval_fn, data, masks)


class RFEResult(NamedTuple):
  """Result of ``rfe``, as scikit-learn's ``RFE.support_`` and ``RFE.ranking_``."""

  support: jax.Array  # (n_features,) bool, True for the selected features
  ranking: jax.Array  # (n_features,) int, 1 for selected, larger = eliminated earlier


def _importances(coef: Any, n_features: int) -> np.ndarray:
  coef = np.asarray(coef, dtype=np.float64)
  if coef.ndim not in (1, 2) or coef.shape[-1] != n_features:
    raise ValueError(
        f"fit_fn must return coef of shape ({n_features},) or (n_classes, "
        f"{n_features}) for X with {n_features} columns, got {coef.shape}."
    )
  # scikit-learn's importance_getter="auto" with transform_func="square".
  return coef**2 if coef.ndim == 1 else (coef**2).sum(axis=0)


def rfe(
    fit_fn: Callable[[Any, Any], Any],
    X: ArrayLike,
    y: ArrayLike,
    *,
    n_features_to_select: int | float | None = None,
    step: int | float = 1,
) -> RFEResult:
  """Recursive feature elimination, equal to ``sklearn.feature_selection.RFE``.

  Repeatedly fits ``fit_fn`` on the remaining columns and drops the ``step``
  features with the smallest importance, ``coef**2`` (summed over classes for a
  2-D coef, as scikit-learn's ``RFE``; ties broken by a stable sort), until
  ``n_features_to_select`` remain.

  The elimination loop is Python (the number of columns changes each round), so
  ``rfe`` itself is not jit-able; ``fit_fn`` may be jitted (it recompiles for
  each new number of columns).

  Args:
    fit_fn: ``fit_fn(X_subset, y) -> coef`` with coef ``(n_selected,)`` or
      ``(n_classes, n_selected)``; a JAX function or e.g.
      ``lambda X, y: LogisticRegression().fit(X, y).coef_``.
    X: ``(n_samples, n_features)``, ``n_features >= 2``; passed to ``fit_fn``
      column-subset, as a NumPy array unless given as a JAX array.
    y: Targets, passed to ``fit_fn`` unchanged.
    n_features_to_select: ``None`` (half, rounded down), an int ``>= 1`` or a
      fraction in ``(0, 1]`` of ``n_features``.
    step: Features removed per round: an int ``>= 1`` or a fraction in
      ``(0, 1)`` of ``n_features`` (at least 1).

  Returns:
    ``RFEResult(support, ranking)``, both ``(n_features,)``.

  Raises:
    ValueError: for invalid ``n_features_to_select`` / ``step``, ``X`` not 2-D
      or with fewer than 2 columns, ``y`` without one entry per row of ``X``,
      or a coef of the wrong shape.
    TypeError: if ``fit_fn`` is not callable or ``X`` does not hold numbers.

  Examples:
    >>> @jax.jit
    ... def fit_fn(X, y):  # least squares by the normal equations
    ...   return jnp.linalg.solve(X.T @ X, X.T @ y)
    >>> X = jnp.sin(jnp.arange(200.0) ** 2).reshape(50, 4)
    >>> y = X @ jnp.array([0.1, 3.0, -2.0, 0.0])
    >>> rfe(fit_fn, X, y, n_features_to_select=2)
    RFEResult(support=Array([False,  True,  True, False], dtype=bool),
              ranking=Array([2, 1, 1, 3], dtype=int32))

  References:
    Guyon et al. (2002), Gene selection for cancer classification using
    support vector machines; scikit-learn's ``RFE``.
  """
  check_callable("fit_fn", fit_fn)
  if not isinstance(X, jax.Array):
    X = np.asarray(X)
  if not (jnp.issubdtype(X.dtype, jnp.number) or jnp.issubdtype(X.dtype, jnp.bool_)):
    raise TypeError(f"X must hold numbers, got dtype {X.dtype} with shape {X.shape}.")
  check_rank("X", X, 2)
  if np.ndim(y) == 0 or np.shape(y)[0] != X.shape[0]:
    raise ValueError(f"y must have one entry per row of X ({X.shape[0]} rows), got shape "
                     f"{np.shape(y)}.")
  n_features = X.shape[1]
  if n_features < 2:
    raise ValueError(f"X must have at least 2 columns (features), got shape {X.shape}.")
  m = n_features_to_select
  if m is None:
    n_select = n_features // 2
  elif isinstance(m, (int, np.integer)) and not isinstance(m, bool) and m >= 1:
    n_select = int(m)
  elif isinstance(m, (float, np.floating)) and 0 < m <= 1:
    n_select = int(n_features * m)
  else:
    raise ValueError(
        f"n_features_to_select must be None, an int >= 1 or a float in (0, 1], got {m!r}."
    )
  if isinstance(step, (int, np.integer)) and not isinstance(step, bool) and step >= 1:
    n_step = int(step)
  elif isinstance(step, (float, np.floating)) and 0 < step < 1:
    n_step = int(max(1, step * n_features))
  else:
    raise ValueError(f"step must be an int >= 1 or a float in (0, 1), got {step!r}.")

  support = np.ones(n_features, dtype=bool)
  ranking = np.ones(n_features, dtype=np.int32)
  while support.sum() > n_select:
    features = np.flatnonzero(support)
    importances = _importances(fit_fn(X[:, features], y), len(features))
    weakest = features[np.argsort(importances, kind="stable")]
    support[weakest[: min(n_step, support.sum() - n_select)]] = False
    ranking[~support] += 1
  return RFEResult(jnp.asarray(support), jnp.asarray(ranking))
