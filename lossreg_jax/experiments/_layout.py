"""The data checks and the folds every candidate of ``compare_losses`` shares (private).

``check_data`` reads and checks ``X`` and ``y`` and infers the task;
``fold_layout`` draws the repeated (stratified) k-fold masks, each repeat's row
order and each fold's minibatches of its training rows, and the keys of the
initializations, dropout, bootstrap and data-side randomness, from the seed;
``bootstrap`` and ``validation_rows`` are the per-fold rows of an ensemble's
members and of early stopping.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lossreg_jax import selection
from lossreg_jax.experiments import engine
from lossreg_jax.training import bootstrap_weights

_TASKS = ("binary", "multiclass", "regression")


def infer_task(y: np.ndarray, task: str | None) -> tuple[str, int, np.ndarray]:
  """Returns ``(task, num_classes, y)`` with ``y`` cast to int32 or float32."""
  if task is not None and task not in _TASKS:
    raise ValueError(f"task must be one of {', '.join(_TASKS)} or None, got {task!r}.")
  if y.ndim != 1:
    raise ValueError(f"y must have shape (n,), got {y.shape}.")
  if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
    raise ValueError(f"y must be numeric, got dtype {y.dtype}.")
  if not np.all(np.isfinite(y)):
    raise ValueError(f"y must be finite, got {int(np.sum(~np.isfinite(y)))} NaN or infinite "
                     f"value(s).")
  integer = y.dtype == bool or np.issubdtype(y.dtype, np.integer)
  if task == "regression" or (task is None and not integer):
    if np.ptp(y) == 0 if y.size else True:
      raise ValueError("y must not be constant for regression.")
    return "regression", 0, y.astype(np.float32)
  if not integer and not np.all(y == np.round(y)):
    raise ValueError(f"task={task!r} needs class labels 0..k-1 in y, got non-integer values "
                     f"such as {y[y != np.round(y)][0]}.")
  y = y.astype(np.int32)
  classes = np.unique(y)
  if y.min() < 0 or len(classes) < 2:
    raise ValueError(f"y must hold class indices 0..k-1 with at least two classes, got "
                     f"{classes.tolist()[:10]}.")
  num_classes = int(y.max()) + 1
  inferred = "binary" if num_classes == 2 else "multiclass"
  if task is not None and task != inferred:
    raise ValueError(f"task={task!r} but y has {num_classes} classes ({inferred}).")
  return inferred, num_classes, y


def check_int(name: str, value, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
  return int(value)


def check_number(name: str, value, *, low: float, high: float = math.inf,
                  low_open: bool = True, high_open: bool = False) -> float:
  ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  v = float(value) if ok else math.nan
  if not (ok and math.isfinite(v) and (v > low if low_open else v >= low)
          and (v < high if high_open else v <= high)):
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    raise ValueError(f"{name} must be a finite number in {left}{low:g}, {high:g}{right}, "
                     f"got {value!r}.")
  return v


def repeated_masks(n: int, folds: int, repeats: int, key, stratify) -> jax.Array:
  """``(repeats * folds, n)`` held-out masks: repeated (stratified) k-fold.

  Repeat 0 uses ``key`` itself, repeat ``r > 0`` ``fold_in(key, r)``: each
  repeat reshuffles the rows, each holds every row out exactly once.
  """
  keys = [key] + [jax.random.fold_in(key, r) for r in range(1, repeats)]
  return jnp.concatenate([selection.kfold_masks(n, folds, key=k, stratify=stratify)
                          for k in keys])


def check_data(X, y, task) -> tuple[np.ndarray, np.ndarray, str, int]:
  """``(X float32 (n, ...), y, task, num_classes)``, checked."""
  X = np.asarray(X, np.float32)
  y_np = np.asarray(y)
  if X.ndim < 2 or X.shape[0] != y_np.shape[0]:
    raise ValueError(f"X must have shape (n, d) (or images (n, H, W, C)) with n = len(y) = "
                     f"{y_np.shape[0]}, got {X.shape}.")
  if not np.all(np.isfinite(X)):
    bad = np.argwhere(~np.isfinite(X))[0]
    where = bad[1] if len(bad) == 2 else tuple(int(i) for i in bad[1:])
    raise ValueError(f"X must be finite, got {X[tuple(bad)]} at row {bad[0]}, column "
                     f"{where} ({int(np.sum(~np.isfinite(X)))} non-finite value(s)).")
  task, num_classes, y_np = infer_task(y_np, task)
  return X, y_np, task, num_classes


def fold_layout(X, y_np, task, *, folds, repeats, epochs, batch_size, seed):
  """Masks, per-fold minibatches and the per-repeat keys shared by every candidate."""
  n = X.shape[0]
  key = jax.random.key(seed)
  masks = np.asarray(repeated_masks(n, folds, repeats, jax.random.fold_in(key, 1), None if
                                     task == "regression" else jnp.asarray(y_np)))
  per_repeat = lambda k, r: k if r == 0 else jax.random.fold_in(k, r)
  # One row order per repeat, shared by every candidate (the comparison is paired).
  orders = np.repeat(np.stack([engine.shuffles(n, epochs, seed if r == 0 else (seed, r))
                               for r in range(repeats)]), folds, axis=0)

  def batches_for(excluded: np.ndarray):
    """Minibatches of each fold's rows outside ``excluded`` ``(R * folds, n)``."""
    rows, valid = engine.fold_batches(orders, excluded, batch_size)
    return jnp.asarray(rows), jnp.asarray(valid)

  batches, valid = batches_for(masks)
  keys = ([per_repeat(jax.random.fold_in(key, 2), r) for r in range(repeats)],
          [per_repeat(jax.random.fold_in(key, 3), r) for r in range(repeats)])
  return dict(masks=masks, batches=batches, valid=valid, keys=keys, seed=seed,
              batches_for=batches_for, bootstrap_key=jax.random.fold_in(key, 4),
              data_key=jax.random.fold_in(key, 5))


def bootstrap(key, masks: np.ndarray, members: int) -> jax.Array:
  """``(folds, members, n)`` counts: fold ``f``'s members resample its training rows.

  ``bootstrap_weights(fold_in(key, f), n_train, num_members=members)`` draws
  ``n_train`` rows with replacement among the fold's training rows per member;
  the counts sit on those rows (in index order), held-out rows weigh 0.
  """
  weights = np.zeros((masks.shape[0], members, masks.shape[1]), np.float32)
  for f, held_out in enumerate(masks):
    rows = np.flatnonzero(~held_out)
    weights[f][:, rows] = np.asarray(bootstrap_weights(
        jax.random.fold_in(key, f), len(rows), num_members=members))
  return jnp.asarray(weights)


def validation_rows(masks: np.ndarray, share: float, seed: int) -> np.ndarray:
  """``(folds, n)``: a share of each fold's training rows held back for early stopping."""
  val = np.zeros_like(masks)
  for f, held_out in enumerate(masks):
    rows = np.random.default_rng((seed, 7, f)).permutation(np.flatnonzero(~held_out))
    val[f, rows[:max(1, round(share * rows.size))]] = True
  return val
