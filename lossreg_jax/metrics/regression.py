"""Regression metrics equal to scikit-learn's, as jit-able global weighted sums.

Predictions and targets have shape ``(n,)`` or ``(n, k)`` (``k`` outputs, each
scored on its own and then averaged with equal weights: scikit-learn's default
``multioutput="uniform_average"``). ``weights`` (scikit-learn's
``sample_weight``) and ``where`` apply per row, shape ``(n,)``. Every value is
a ratio of sums over rows, never a mean of chunk means, so a batch sharded
across devices gives the value of the whole batch. Excluded rows are replaced
by zeros before any arithmetic, so NaN or inf there changes neither the value
nor the gradient, while a NaN in an included row makes the value NaN
(scikit-learn raises instead; a diverged model then still yields a report).
The metrics are differentiable in ``predictions`` (except
``underprediction_rate``, which is piecewise constant).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array, check_in_range, check_rank, check_same_shape, compute_dtype)
from lossreg_jax.metrics._common import divide, float_dtype, row_array, row_mask

__all__ = ["mean_absolute_error", "mean_pinball_loss", "mean_squared_error", "r2_score",
           "root_mean_squared_error", "underprediction_rate"]


def _check(predictions, targets, weights, where):
  """Trace-time checks; returns the arrays for the jitted cores."""
  p = as_float_array("predictions", predictions)
  t = jnp.asarray(targets)
  if not (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.integer)):
    raise TypeError(f"targets must be real numbers, got dtype {t.dtype} with shape {t.shape}.")
  check_same_shape("predictions", p, "targets", t)
  check_rank("predictions", p, (1, 2))
  n = p.shape[0]
  if weights is not None:
    weights = row_array("weights", weights, n)
    if not (jnp.issubdtype(weights.dtype, jnp.floating)
            or jnp.issubdtype(weights.dtype, jnp.integer)):
      raise TypeError(f"weights must be real numbers, got dtype {weights.dtype}.")
  return p, t, weights, row_mask(where, n)


def _rows(predictions, targets, weights, where):
  """Returns ``(p, t, w, dtype)`` as ``(n, k)`` / ``(n, 1)`` arrays in the compute dtype.

  Half precision is computed in float32; excluded rows get weight 0 and zero
  predictions and targets (the "double where": no NaN from them, even in
  gradients).
  """
  dtype = jnp.promote_types(compute_dtype(predictions.dtype), float_dtype(weights))
  # (n,) -> (n, 1): one output (reshape(n, -1) fails for n = 0).
  p = predictions.astype(dtype)
  p = p[:, None] if p.ndim == 1 else p
  t = targets.astype(dtype).reshape(p.shape)
  n = p.shape[0]
  w = jnp.ones((n,), dtype) if weights is None else weights.astype(dtype)
  if where is not None:
    zero = jnp.zeros((), dtype)
    w = jnp.where(where, w, zero)
    p = jnp.where(where[:, None], p, zero)
    t = jnp.where(where[:, None], t, zero)
  return p, t, w[:, None], dtype


def _weighted_mean(values, w, dtype):
  # Per output: Σ w·v / Σ w (0 for an empty selection), then the uniform
  # average over outputs.
  per_output = divide(jnp.sum(w * values, axis=0), jnp.sum(w), 0.0, dtype)
  return jnp.mean(per_output)


_COMMON_ARGS = """predictions: Floating predictions, shape ``(n,)`` or ``(n, k)``.
    targets: True values, same shape (any real dtype; cast to the compute dtype).
    weights: Per-row weights, shape ``(n,)`` (scikit-learn's ``sample_weight``).
    where: Boolean mask, shape ``(n,)``; excluded rows count for nothing, as if
      removed."""


def _doc(text: str) -> str:
  return text.replace("{common}", _COMMON_ARGS)


def mean_squared_error(predictions: ArrayLike, targets: ArrayLike, *,
                       weights: ArrayLike | None = None,
                       where: ArrayLike | None = None) -> jax.Array:
  return _mean_squared_error(*_check(predictions, targets, weights, where))


mean_squared_error.__doc__ = _doc("""Mean squared error, as ``sklearn.metrics.mean_squared_error``.

  ``Σ w·(target − prediction)² / Σ w`` per output, then averaged over outputs.

  Args:
    {common}

  Returns:
    A scalar (float32, or float64 with x64); 0 for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> mean_squared_error(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.375, dtype=float32)
""")


@jax.jit
def _mean_squared_error(predictions, targets, weights, where):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  return _weighted_mean(jnp.square(t - p), w, dtype)


def root_mean_squared_error(predictions: ArrayLike, targets: ArrayLike, *,
                            weights: ArrayLike | None = None,
                            where: ArrayLike | None = None) -> jax.Array:
  return _root_mean_squared_error(*_check(predictions, targets, weights, where))


root_mean_squared_error.__doc__ = _doc("""Root mean squared error, as scikit-learn's.

  Equals ``sklearn.metrics.root_mean_squared_error``: the square root of each
  output's mean squared error, then averaged over outputs. The gradient at a perfect prediction is 0,
  not NaN: the square root is taken only of positive errors.

  Args:
    {common}

  Returns:
    A scalar; 0 for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> root_mean_squared_error(jnp.array([2.5, 0.0, 2.0, 8.0]),
    ...                         jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.6123724, dtype=float32)
""")


@jax.jit
def _root_mean_squared_error(predictions, targets, weights, where):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  mse = divide(jnp.sum(w * jnp.square(t - p), axis=0), jnp.sum(w), 0.0, dtype)
  # sqrt has an infinite derivative at 0: take it only where mse > 0.
  positive = mse > 0
  return jnp.mean(jnp.where(positive, jnp.sqrt(jnp.where(positive, mse, 1)), 0))


def mean_absolute_error(predictions: ArrayLike, targets: ArrayLike, *,
                        weights: ArrayLike | None = None,
                        where: ArrayLike | None = None) -> jax.Array:
  return _mean_absolute_error(*_check(predictions, targets, weights, where))


mean_absolute_error.__doc__ = _doc("""Mean absolute error, as scikit-learn's.

  Equals ``sklearn.metrics.mean_absolute_error``: ``Σ w·|target − prediction|
  / Σ w`` per output, then averaged over outputs.

  Args:
    {common}

  Returns:
    A scalar; 0 for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> mean_absolute_error(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.5, dtype=float32)
""")


@jax.jit
def _mean_absolute_error(predictions, targets, weights, where):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  return _weighted_mean(jnp.abs(t - p), w, dtype)


def mean_pinball_loss(predictions: ArrayLike, targets: ArrayLike, *, alpha: float = 0.5,
                      weights: ArrayLike | None = None,
                      where: ArrayLike | None = None) -> jax.Array:
  check_in_range("alpha", alpha, 0.0, 1.0)
  return _mean_pinball_loss(*_check(predictions, targets, weights, where), alpha)


mean_pinball_loss.__doc__ = _doc("""Mean pinball (quantile) loss, as scikit-learn's.

  Equals ``sklearn.metrics.mean_pinball_loss``. Per row ``α·(t − p)`` when
  ``t >= p`` and ``(1 − α)·(p − t)`` otherwise, weighted mean per output, then
  averaged over outputs. For one output it equals
  ``losses.quantile_loss(quantile=alpha)`` with ``reduction="weighted_mean"``.

  Args:
    {common}
    alpha: The quantile in ``[0, 1]``; 0.5 gives half the mean absolute error.

  Returns:
    A scalar; 0 for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for ``alpha`` outside ``[0, 1]``, different shapes, a rank other
      than 1 or 2, or ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> mean_pinball_loss(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 1.0, 1.0]), alpha=0.9)
    Array(0.3333333, dtype=float32)
""")


@jax.jit
def _mean_pinball_loss(predictions, targets, weights, where, alpha):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  alpha = jnp.asarray(alpha, dtype)
  diff = t - p
  loss = jnp.where(diff >= 0, alpha * diff, (alpha - 1) * diff)
  return _weighted_mean(loss, w, dtype)


def r2_score(predictions: ArrayLike, targets: ArrayLike, *, weights: ArrayLike | None = None,
             where: ArrayLike | None = None, force_finite: bool = True) -> jax.Array:
  if not isinstance(force_finite, bool):
    raise TypeError(f"force_finite must be a Python bool, got {force_finite!r}.")
  args = _check(predictions, targets, weights, where)
  return _r2_score(*args, force_finite=force_finite)


r2_score.__doc__ = _doc("""Coefficient of determination, as ``sklearn.metrics.r2_score``.

  Per output ``1 − Σ w·(t − p)² / Σ w·(t − t̄)²`` with ``t̄`` the weighted mean
  target, then averaged over outputs. Constant targets follow scikit-learn's
  ``force_finite=True``: a perfect prediction scores 1 and any other 0 (instead
  of NaN and -inf). A target is constant when all its included rows of non-zero
  weight are equal (tested exactly, so a rounding error in ``t̄`` cannot turn a
  constant target into a huge negative score). As scikit-learn, fewer than two
  included rows give NaN.

  Args:
    {common}
    force_finite: ``False`` returns NaN (perfect prediction) or ``-inf``
      (otherwise) for constant targets, as scikit-learn's ``force_finite=False``.

  Returns:
    A scalar, at most 1.

  Raises:
    TypeError: if ``predictions`` is not floating, ``where`` not boolean or
      ``force_finite`` not a bool.
    ValueError: for different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> r2_score(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.9486081, dtype=float32)
    >>> r2_score(jnp.array([1.0, 2.0]), jnp.array([3.0, 3.0]))  # constant target
    Array(0., dtype=float32)
""")


@partial(jax.jit, static_argnames=("force_finite",))
def _r2_score(predictions, targets, weights, where, *, force_finite):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  total = jnp.sum(w)
  numerator = jnp.sum(w * jnp.square(t - p), axis=0)
  mean = divide(jnp.sum(w * t, axis=0, keepdims=True), total, 0.0, dtype)
  denominator = jnp.sum(w * jnp.square(t - mean), axis=0)
  counted = w != 0
  t_max = jnp.max(jnp.where(counted, t, -jnp.inf), axis=0, initial=-jnp.inf)
  t_min = jnp.min(jnp.where(counted, t, jnp.inf), axis=0, initial=jnp.inf)
  denominator = jnp.where(t_max > t_min, denominator, 0)
  zero_num, zero_den = numerator == 0, denominator == 0
  ratio = numerator / jnp.where(zero_den, 1, denominator)
  if force_finite:
    scores = jnp.where(zero_num, 1, jnp.where(zero_den, 0, 1 - ratio))
  else:
    scores = jnp.where(zero_den, jnp.where(zero_num, jnp.nan, -jnp.inf), 1 - ratio)
  score = jnp.mean(scores.astype(dtype))
  rows = p.shape[0] if where is None else jnp.sum(where)
  return jnp.where(rows < 2, jnp.asarray(jnp.nan, dtype), score)


def underprediction_rate(predictions: ArrayLike, targets: ArrayLike, *,
                         weights: ArrayLike | None = None,
                         where: ArrayLike | None = None) -> jax.Array:
  return _underprediction_rate(*_check(predictions, targets, weights, where))


underprediction_rate.__doc__ = _doc("""Weighted share of rows predicted strictly below their target.

  ``Σ w·[prediction < target] / Σ w`` per output, averaged over outputs: how
  often a forecast falls short, the error an asymmetric loss such as
  ``losses.asymmetric_squared_error`` penalizes more. Piecewise constant, so
  its gradient is zero.

  Args:
    {common}

  Returns:
    A scalar in ``[0, 1]``; 0 for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> underprediction_rate(jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.array([2.0, 2.0, 1.0, 5.0]))
    Array(0.5, dtype=float32)
""")


@jax.jit
def _underprediction_rate(predictions, targets, weights, where):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  return _weighted_mean((p < t).astype(dtype), w, dtype)
