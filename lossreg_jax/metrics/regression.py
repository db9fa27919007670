"""Regression metrics equal to scikit-learn's, as jit-able global weighted sums.

Predictions and targets have shape ``(n,)`` or ``(n, k)`` (``k`` outputs, each
scored on its own, then combined as scikit-learn's ``multioutput``:
``"uniform_average"`` (the default, equal weights), ``"raw_values"`` (one value
per output, shape ``(k,)``; ``(1,)`` for ``(n,)`` inputs), an array of ``k``
output weights, or, for ``r2_score`` only as in scikit-learn,
``"variance_weighted"``). ``weights`` (scikit-learn's
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
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array, check_in_range, check_rank, check_same_shape, compute_dtype)
from lossreg_jax.metrics._common import (
    concrete_included, divide, float_dtype, is_traced, row_array, row_mask)
from lossreg_jax.metrics._warnings import warn_undefined

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


_MULTIOUTPUT = ("raw_values", "uniform_average")


def _check_multioutput(multioutput, predictions, allowed=_MULTIOUTPUT):
  """Returns ``(mode, output_weights)``: a static mode and the ``(k,)`` weights or None."""
  if isinstance(multioutput, str):
    if multioutput not in allowed:
      raise ValueError(f"multioutput must be one of {', '.join(map(repr, allowed))} or an "
                       f"array of output weights; got {multioutput!r}.")
    return multioutput, None
  weights = jnp.asarray(multioutput)
  k = 1 if predictions.ndim == 1 else predictions.shape[1]
  if predictions.ndim == 1:
    raise ValueError("multioutput weights are useful only with several outputs (targets of "
                     f"shape (n, k)), got predictions.shape={predictions.shape}.")
  if weights.shape != (k,):
    raise ValueError(f"multioutput weights must have shape ({k},) (one per output), got "
                     f"shape {weights.shape}.")
  return "custom", weights


def _combine(per_output, mode, output_weights, dtype, variance=None):
  """scikit-learn's ``multioutput``: the ``(k,)`` values, their mean or a weighted mean."""
  if mode == "raw_values":
    return per_output
  if mode == "uniform_average":
    return jnp.mean(per_output)
  if mode == "variance_weighted":
    # All-constant targets: every weight is 0, scikit-learn falls back to uniform.
    output_weights = jnp.where(jnp.any(variance != 0), variance, jnp.ones_like(variance))
  output_weights = output_weights.astype(dtype)
  return jnp.sum(output_weights * per_output) / jnp.sum(output_weights)


def _weighted_mean(values, w, dtype, mode, output_weights):
  # Per output: Σ w·v / Σ w (0 for an empty selection), then combined over outputs.
  per_output = divide(jnp.sum(w * values, axis=0), jnp.sum(w), 0.0, dtype)
  return _combine(per_output, mode, output_weights, dtype)


_COMMON_ARGS = """predictions: Floating predictions, shape ``(n,)`` or ``(n, k)``.
    targets: True values, same shape (any real dtype; cast to the compute dtype).
    weights: Per-row weights, shape ``(n,)`` (scikit-learn's ``sample_weight``).
    where: Boolean mask, shape ``(n,)``; excluded rows count for nothing, as if
      removed.
    multioutput: ``"uniform_average"`` (mean over outputs), ``"raw_values"``
      (shape ``(k,)``) or ``(k,)`` output weights, as scikit-learn's."""


def _doc(text: str) -> str:
  return text.replace("{common}", _COMMON_ARGS)


def mean_squared_error(predictions: ArrayLike, targets: ArrayLike, *,
                       weights: ArrayLike | None = None,
                       where: ArrayLike | None = None,
                       multioutput: str | ArrayLike = "uniform_average") -> jax.Array:
  args = _check(predictions, targets, weights, where)
  mode, output_weights = _check_multioutput(multioutput, args[0])
  return _mean_squared_error(*args, output_weights, mode=mode)


mean_squared_error.__doc__ = _doc("""Mean squared error, as ``sklearn.metrics.mean_squared_error``.

  ``Σ w·(target − prediction)² / Σ w`` per output, then averaged over outputs.

  Args:
    {common}

  Returns:
    A scalar (float32, or float64 with x64), or ``(k,)`` with
    ``multioutput="raw_values"``; 0 for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for a bad ``multioutput``, different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> mean_squared_error(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.375, dtype=float32)
""")


@partial(jax.jit, static_argnames=("mode",))
def _mean_squared_error(predictions, targets, weights, where, output_weights, *, mode):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  return _weighted_mean(jnp.square(t - p), w, dtype, mode, output_weights)


def root_mean_squared_error(predictions: ArrayLike, targets: ArrayLike, *,
                            weights: ArrayLike | None = None,
                            where: ArrayLike | None = None,
                            multioutput: str | ArrayLike = "uniform_average") -> jax.Array:
  args = _check(predictions, targets, weights, where)
  mode, output_weights = _check_multioutput(multioutput, args[0])
  return _root_mean_squared_error(*args, output_weights, mode=mode)


root_mean_squared_error.__doc__ = _doc("""Root mean squared error, as scikit-learn's.

  Equals ``sklearn.metrics.root_mean_squared_error``: the square root of each
  output's mean squared error, then averaged over outputs. The gradient at a perfect prediction is 0,
  not NaN: the square root is taken only of positive errors.

  Args:
    {common}

  Returns:
    A scalar, or ``(k,)`` with ``multioutput="raw_values"``; 0 for an empty
    selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for a bad ``multioutput``, different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> root_mean_squared_error(jnp.array([2.5, 0.0, 2.0, 8.0]),
    ...                         jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.6123724, dtype=float32)
""")


@partial(jax.jit, static_argnames=("mode",))
def _root_mean_squared_error(predictions, targets, weights, where, output_weights, *, mode):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  mse = divide(jnp.sum(w * jnp.square(t - p), axis=0), jnp.sum(w), 0.0, dtype)
  # sqrt has an infinite derivative at 0: take it only where mse > 0.
  positive = mse > 0
  per_output = jnp.where(positive, jnp.sqrt(jnp.where(positive, mse, 1)), 0)
  return _combine(per_output, mode, output_weights, dtype)


def mean_absolute_error(predictions: ArrayLike, targets: ArrayLike, *,
                        weights: ArrayLike | None = None,
                        where: ArrayLike | None = None,
                        multioutput: str | ArrayLike = "uniform_average") -> jax.Array:
  args = _check(predictions, targets, weights, where)
  mode, output_weights = _check_multioutput(multioutput, args[0])
  return _mean_absolute_error(*args, output_weights, mode=mode)


mean_absolute_error.__doc__ = _doc("""Mean absolute error, as scikit-learn's.

  Equals ``sklearn.metrics.mean_absolute_error``: ``Σ w·|target − prediction|
  / Σ w`` per output, then averaged over outputs.

  Args:
    {common}

  Returns:
    A scalar, or ``(k,)`` with ``multioutput="raw_values"``; 0 for an empty
    selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for a bad ``multioutput``, different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> mean_absolute_error(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.5, dtype=float32)
""")


@partial(jax.jit, static_argnames=("mode",))
def _mean_absolute_error(predictions, targets, weights, where, output_weights, *, mode):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  return _weighted_mean(jnp.abs(t - p), w, dtype, mode, output_weights)


def mean_pinball_loss(predictions: ArrayLike, targets: ArrayLike, *, alpha: float = 0.5,
                      weights: ArrayLike | None = None,
                      where: ArrayLike | None = None,
                      multioutput: str | ArrayLike = "uniform_average") -> jax.Array:
  check_in_range("alpha", alpha, 0.0, 1.0)
  args = _check(predictions, targets, weights, where)
  mode, output_weights = _check_multioutput(multioutput, args[0])
  return _mean_pinball_loss(*args, alpha, output_weights, mode=mode)


mean_pinball_loss.__doc__ = _doc("""Mean pinball (quantile) loss, as scikit-learn's.

  Equals ``sklearn.metrics.mean_pinball_loss``. Per row ``α·(t − p)`` when
  ``t >= p`` and ``(1 − α)·(p − t)`` otherwise, weighted mean per output, then
  averaged over outputs. For one output it equals
  ``losses.quantile_loss(quantile=alpha)`` with ``reduction="weighted_mean"``.

  Args:
    {common}
    alpha: The quantile in ``[0, 1]``; 0.5 gives half the mean absolute error.

  Returns:
    A scalar, or ``(k,)`` with ``multioutput="raw_values"``; 0 for an empty
    selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for ``alpha`` outside ``[0, 1]``, a bad ``multioutput``, different shapes, a rank other
      than 1 or 2, or ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> mean_pinball_loss(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 1.0, 1.0]), alpha=0.9)
    Array(0.3333333, dtype=float32)
""")


@partial(jax.jit, static_argnames=("mode",))
def _mean_pinball_loss(predictions, targets, weights, where, alpha, output_weights, *, mode):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  alpha = jnp.asarray(alpha, dtype)
  diff = t - p
  loss = jnp.where(diff >= 0, alpha * diff, (alpha - 1) * diff)
  return _weighted_mean(loss, w, dtype, mode, output_weights)


def r2_score(predictions: ArrayLike, targets: ArrayLike, *, weights: ArrayLike | None = None,
             where: ArrayLike | None = None, force_finite: bool = True,
             multioutput: str | ArrayLike = "uniform_average") -> jax.Array:
  if not isinstance(force_finite, bool):
    raise TypeError(f"force_finite must be a Python bool, got {force_finite!r}.")
  args = _check(predictions, targets, weights, where)
  mode, output_weights = _check_multioutput(
      multioutput, args[0], _MULTIOUTPUT + ("variance_weighted",))
  n = args[0].shape[0]
  rows = None if is_traced(*args) else (
      n if args[3] is None else int(np.sum(concrete_included(np.ones(n, bool), args[3], n))))
  if rows is not None and rows < 2:
    # scikit-learn's case and message; eager only (under jit nothing is warned).
    warn_undefined("R^2 score is not well-defined with less than two samples.",
                   stacklevel=4)  # the caller of the public (keyword-aliased) metric
  return _r2_score(*args, output_weights, force_finite=force_finite, mode=mode)


r2_score.__doc__ = _doc("""Coefficient of determination, as ``sklearn.metrics.r2_score``.

  Per output ``1 − Σ w·(t − p)² / Σ w·(t − t̄)²`` with ``t̄`` the weighted mean
  target, then averaged over outputs. Constant targets follow scikit-learn's
  ``force_finite=True``: a perfect prediction scores 1 and any other 0 (instead
  of NaN and -inf). A target is constant when all its included rows of non-zero
  weight are equal (tested exactly, so a rounding error in ``t̄`` cannot turn a
  constant target into a huge negative score). As scikit-learn, fewer than two
  included rows give NaN (every entry with ``multioutput="raw_values"``) and,
  on concrete inputs, an ``UndefinedMetricWarning`` with scikit-learn's
  message; under ``jit`` nothing is warned. scikit-learn does not warn for a
  constant target, and neither does this.

  Args:
    {common}
    force_finite: ``False`` returns NaN (perfect prediction) or ``-inf``
      (otherwise) for constant targets, as scikit-learn's ``force_finite=False``.
    multioutput: Also ``"variance_weighted"``: outputs weighted by their
      target's weighted variance (uniform when every target is constant), as
      scikit-learn.

  Returns:
    A scalar at most 1, or ``(k,)`` with ``multioutput="raw_values"``.

  Raises:
    TypeError: if ``predictions`` is not floating, ``where`` not boolean or
      ``force_finite`` not a bool.
    ValueError: for a bad ``multioutput``, different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> r2_score(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.9486081, dtype=float32)
    >>> r2_score(jnp.array([1.0, 2.0]), jnp.array([3.0, 3.0]))  # constant target
    Array(0., dtype=float32)
""")


@partial(jax.jit, static_argnames=("force_finite", "mode"))
def _r2_score(predictions, targets, weights, where, output_weights, *, force_finite, mode):
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
  score = _combine(scores.astype(dtype), mode, output_weights, dtype, variance=denominator)
  rows = p.shape[0] if where is None else jnp.sum(where)
  return jnp.where(rows < 2, jnp.asarray(jnp.nan, dtype), score)


def underprediction_rate(predictions: ArrayLike, targets: ArrayLike, *,
                         weights: ArrayLike | None = None,
                         where: ArrayLike | None = None,
                         multioutput: str | ArrayLike = "uniform_average") -> jax.Array:
  args = _check(predictions, targets, weights, where)
  mode, output_weights = _check_multioutput(multioutput, args[0])
  return _underprediction_rate(*args, output_weights, mode=mode)


underprediction_rate.__doc__ = _doc("""Weighted share of rows predicted strictly below their target.

  ``Σ w·[prediction < target] / Σ w`` per output, averaged over outputs: how
  often a forecast falls short, the error an asymmetric loss such as
  ``losses.asymmetric_squared_error`` penalizes more. Piecewise constant, so
  its gradient is zero.

  Args:
    {common}

  Returns:
    A scalar in ``[0, 1]``, or ``(k,)`` with ``multioutput="raw_values"``; 0
    for an empty selection.

  Raises:
    TypeError: if ``predictions`` is not floating or ``where`` not boolean.
    ValueError: for a bad ``multioutput``, different shapes, a rank other than 1 or 2, or
      ``weights`` / ``where`` not shaped ``(n,)``.

  Examples:
    >>> underprediction_rate(jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.array([2.0, 2.0, 1.0, 5.0]))
    Array(0.5, dtype=float32)
""")


@partial(jax.jit, static_argnames=("mode",))
def _underprediction_rate(predictions, targets, weights, where, output_weights, *, mode):
  p, t, w, dtype = _rows(predictions, targets, weights, where)
  return _weighted_mean((p < t).astype(dtype), w, dtype, mode, output_weights)
