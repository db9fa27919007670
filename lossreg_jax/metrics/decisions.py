"""Decision metrics: the expected cost of predictions and cost-optimal thresholds.

A cost matrix ``cost_matrix[true, predicted]`` prices each kind of error
(issue 15): ``expected_cost`` averages it over rows; for a binary classifier
with scores, ``cost_threshold`` is the Bayes-optimal threshold for calibrated
probabilities and ``best_threshold`` the empirical one on held-out rows.
All values are global weighted sums, so a sharded batch gives the value of
the whole batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import check_in_range, concrete_values
from lossreg_jax.metrics._common import (
    as_arrays, as_class_ids, check_binary, check_inputs, check_no_nan, divide, float_dtype,
    prepare, threshold_points)

__all__ = ["best_threshold", "cost_threshold", "expected_cost"]


def _check_cost_matrix(cost_matrix, pv, tv) -> jax.Array:
  c = jnp.asarray(cost_matrix)
  if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 1:
    raise ValueError(
        f"cost_matrix must be a square (num_classes, num_classes) matrix indexed "
        f"[true, predicted], got cost_matrix.shape={c.shape}."
    )
  if not (jnp.issubdtype(c.dtype, jnp.floating) or jnp.issubdtype(c.dtype, jnp.integer)):
    raise TypeError(f"cost_matrix must hold real numbers, got dtype {c.dtype}.")
  values = concrete_values(cost_matrix)
  if values is not None:
    if not np.isfinite(values).all():
      raise ValueError(f"cost_matrix must be finite, got {values.tolist()}.")
    if (values < 0).any():
      raise ValueError(f"cost_matrix must be non-negative, got {values.tolist()}.")
  k = c.shape[0]
  for name, v in (("predictions", pv), ("labels", tv)):
    if v is not None and v.size and (v.min() < 0 or v.max() >= k):
      raise ValueError(
          f"cost_matrix of shape {c.shape} covers classes 0..{k - 1}, but {name} "
          f"holds class {v.max() if v.max() >= k else v.min()}; its size must match "
          f"the number of classes."
      )
  return c


def expected_cost(
    predictions: ArrayLike,
    labels: ArrayLike,
    *,
    cost_matrix: ArrayLike,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """Mean cost per row, ``Σ w·cost_matrix[label, prediction] / Σ w``.

  Equals ``(confusion_matrix(labels, predictions, sample_weight=w) *
  cost_matrix).sum() / Σ w`` in scikit-learn's terms. Binary problems use a
  2×2 matrix ``[[0, cost_fp], [cost_fn, 0]]``.

  Args:
    predictions: Integer predicted classes (binary: 0/1), shape ``[...]``.
    labels: Integer true classes, same shape.
    cost_matrix: ``(C, C)`` non-negative finite costs indexed
      ``[true, predicted]``, ``C`` covering every class.
    weights: Per-sample weights (``sample_weight``), broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing.

  Returns:
    A scalar; 0 for an empty selection. Under ``jit`` an included class id
    outside ``[0, C)`` (which cannot be rejected there) gives NaN.

  Raises:
    ValueError: if ``cost_matrix`` is not square, or (concretely) not finite,
      negative, or smaller than the classes seen, or for concrete class ids
      that are NaN, inf or non-integral (integral floats are accepted).
    TypeError: for non-numeric predictions or labels, or traced floating ones.

  Examples:
    >>> cost = jnp.array([[0.0, 1.0], [5.0, 0.0]])  # a missed positive costs 5
    >>> expected_cost(jnp.array([1, 0, 0, 1]), jnp.array([1, 1, 0, 0]), cost_matrix=cost)
    Array(1.5, dtype=float32)
  """
  pv, tv = check_inputs("predictions", predictions, "labels", labels, where)
  cost_matrix = _check_cost_matrix(cost_matrix, pv, tv)
  predictions, labels = as_class_ids(predictions), as_class_ids(labels)
  return _expected_cost(*as_arrays(predictions, labels, weights, where), cost_matrix)


@jax.jit
def _expected_cost(predictions, labels, weights, where, cost_matrix):
  p, t, w, include, dtype = prepare(predictions, labels, weights, where)
  dtype = jnp.promote_types(dtype, float_dtype(cost_matrix))
  k = cost_matrix.shape[0]
  valid = (p >= 0) & (p < k) & (t >= 0) & (t < k)
  costs = cost_matrix.astype(dtype).reshape(-1)[jnp.where(valid, t * k + p, 0)]
  costs = jnp.where(valid, costs, jnp.asarray(jnp.nan, dtype))
  w = w.astype(dtype)
  # Excluded rows add an exact 0, whatever their (possibly invalid) ids.
  contribution = w * costs if include is None else jnp.where(include, w * costs, 0)
  return divide(jnp.sum(contribution), jnp.sum(w), 0.0, dtype)


def _check_costs(cost_fp, cost_fn):
  check_in_range("cost_fp", cost_fp, 0.0)
  check_in_range("cost_fn", cost_fn, 0.0)
  fp, fn = concrete_values(cost_fp), concrete_values(cost_fn)
  if fp is not None and fn is not None and float(fp) + float(fn) <= 0:
    raise ValueError(
        f"cost_fp + cost_fn must be > 0, got cost_fp={cost_fp!r}, cost_fn={cost_fn!r}.")


def cost_threshold(*, cost_fp: float | ArrayLike, cost_fn: float | ArrayLike) -> jax.Array:
  """Bayes-optimal threshold ``cost_fp / (cost_fp + cost_fn)`` for calibrated probabilities.

  Predicting positive when ``P(y = 1) >= t`` minimizes the expected cost when
  a false positive costs ``cost_fp`` and a false negative ``cost_fn`` (correct
  decisions cost 0): positive is cheaper exactly when
  ``(1 − p)·cost_fp <= p·cost_fn``.

  Args:
    cost_fp: Cost of a false positive, ``>= 0``.
    cost_fn: Cost of a false negative, ``>= 0``; ``cost_fp + cost_fn > 0``.

  Returns:
    A scalar in ``[0, 1]`` (float32, or float64 with x64).

  Raises:
    ValueError: for concrete negative costs or a zero sum.

  Examples:
    >>> cost_threshold(cost_fp=1.0, cost_fn=4.0)
    Array(0.2, dtype=float32)

  References:
    Elkan (2001), The foundations of cost-sensitive learning.
  """
  _check_costs(cost_fp, cost_fn)
  dtype = jnp.promote_types(float_dtype(jnp.asarray(cost_fp)), float_dtype(jnp.asarray(cost_fn)))
  fp, fn = jnp.asarray(cost_fp, dtype), jnp.asarray(cost_fn, dtype)
  return fp / (fp + fn)


def best_threshold(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    cost_fp: float | ArrayLike,
    cost_fn: float | ArrayLike,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """The observed score that, as a threshold, minimizes the empirical cost.

  Predicting positive when ``score >= t``, the cost on the included rows is
  ``cost_fp·Σ w[negative, score >= t] + cost_fn·Σ w[positive, score < t]``.
  The candidates are the distinct included scores of rows with non-zero
  weight (the thresholds of ``roc_curve``); among equal costs the larger
  threshold wins (fewer positive predictions). Exact ties only: costs are
  compared as computed.

  Args:
    scores: Floating scores, higher means more likely positive, shape ``[...]``.
    labels: Binary labels (0/1 or bool), same shape.
    cost_fp: Cost of a false positive, ``>= 0`` (may be traced).
    cost_fn: Cost of a false negative, ``>= 0`` (may be traced).
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing.

  Returns:
    A scalar of ``scores``' dtype; NaN when no row is included (no candidate)
    or, under ``jit``, when an included score or label is NaN.

  Raises:
    ValueError: for concrete non-0/1 labels, NaN scores or labels, negative
      costs or a zero cost sum.
    TypeError: if ``scores`` is not floating.

  Examples:
    >>> scores = jnp.array([0.1, 0.3, 0.35, 0.6, 0.8])
    >>> labels = jnp.array([0, 1, 0, 1, 1])
    >>> best_threshold(scores, labels, cost_fp=1.0, cost_fn=1.0)
    Array(0.6, dtype=float32)
    >>> best_threshold(scores, labels, cost_fp=1.0, cost_fn=5.0)  # misses cost more
    Array(0.3, dtype=float32)
  """
  _check_costs(cost_fp, cost_fn)
  sv, lv = check_inputs("scores", scores, "labels", labels, where, classes=False)
  check_no_nan("scores", sv, "best_threshold")
  check_no_nan("labels", lv, "best_threshold")
  check_binary("labels", lv, "best_threshold")
  return _best_threshold(*as_arrays(scores, labels, weights, where), cost_fp, cost_fn)


@jax.jit
def _best_threshold(scores, labels, weights, where, cost_fp, cost_fn):
  count, fps, tps, thresholds, nan_found, dtype = threshold_points(
      scores, labels, weights, where)
  cost = (jnp.asarray(cost_fp, dtype) * fps
          + jnp.asarray(cost_fn, dtype) * (tps[-1] - tps))
  # Candidates are in decreasing threshold order: argmin's first minimum is the
  # largest threshold among equal costs. Padding is never a candidate.
  real = jnp.arange(cost.shape[0]) < count
  best = jnp.argmin(jnp.where(real, cost, jnp.inf))
  nan = jnp.asarray(jnp.nan, thresholds.dtype)
  return jnp.where(nan_found | (count == 0), nan, thresholds[best])
