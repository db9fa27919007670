"""Ranking metrics of binary scores: ROC AUC, ROC and precision-recall curves, AP.

All equal scikit-learn's (``roc_auc_score``, ``roc_curve``,
``precision_recall_curve``, ``average_precision_score``), ties and
``sample_weight`` included. One descending sort of the included scores gives
the cumulative true- and false-positive weights at every threshold; every
quantity is a global weighted sum, so a sharded batch gives the value of the
whole batch.

Curves have a data-dependent length. Called eagerly on concrete inputs they
return exactly scikit-learn's points. Inside ``jax.jit`` / ``vmap`` (any trace,
also of a function that closes over concrete arrays) they return fixed-length
arrays (one entry per input row, plus one): the first entries are
scikit-learn's points and the rest repeat the last point, so areas, maxima and
plots computed from them are unchanged.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax.metrics._common import (
    as_arrays, check_binary, check_inputs, check_no_nan, check_zero_division, compact, divide,
    has_nan, is_traced, prepare, threshold_points)

__all__ = ["average_precision", "precision_recall_curve", "roc_auc", "roc_curve"]


def _check_scores(fn, scores, labels, where):
  """Concrete checks shared by the ranking metrics: floating scores, no NaN, 0/1 labels."""
  sv, lv = check_inputs("scores", scores, "labels", labels, where, classes=False)
  check_no_nan("scores", sv, fn)
  check_no_nan("labels", lv, fn)
  check_binary("labels", lv, fn)


def roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    zero_division: float = 0.0,
) -> jax.Array:
  """Area under the ROC curve of binary scores, as ``sklearn.metrics.roc_auc_score``.

  Uses the weighted Mann–Whitney form: each positive earns the negative weight
  scored strictly below it plus half the negative weight tied with it, which
  equals the trapezoidal area of scikit-learn's ROC curve, ties included. One
  sort and two ``searchsorted`` calls: O(n log n) time, O(n) memory.

  Args:
    scores: Floating scores, higher means more likely positive, shape ``[...]``.
    labels: Binary labels (0/1 or bool), same shape; 1 is the positive class.
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask; excluded samples count for nothing.
    zero_division: Returned when the included positives or negatives have zero
      total weight (scikit-learn returns ``nan`` there; pass ``jnp.nan`` for that).

  Returns:
    A scalar in ``[0, 1]``; NaN under ``jit`` when an included score or label
    is NaN (it cannot be rejected there).

  Raises:
    ValueError: if concrete included labels are not 0/1, or concrete included
      scores or labels hold NaN (the message names the argument).
    TypeError: if ``scores`` is not floating.

  Examples:
    >>> roc_auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    Array(0.75, dtype=float32)
    >>> roc_auc(jnp.array([0.5, 0.5, 0.2, 0.9]), jnp.array([0, 1, 0, 1]))  # a tie
    Array(0.875, dtype=float32)

  References:
    Hanley & McNeil (1982), The meaning and use of the area under a ROC curve.
  """
  zd = check_zero_division(zero_division)
  _check_scores("roc_auc", scores, labels, where)
  return _roc_auc(*as_arrays(scores, labels, weights, where), zd)


@jax.jit
def _roc_auc(scores, labels, weights, where, zd):
  s, y, w, include, dtype = prepare(scores, labels, weights, where)
  nan_found = has_nan(s, y, include)
  w = w.astype(dtype)
  s = s if include is None else jnp.where(include, s, jnp.zeros((), s.dtype))
  positive = y == 1
  order = jnp.argsort(s)
  s_sorted = s[order]
  pos_w = jnp.where(positive, w, 0)[order]
  neg_w = jnp.where(positive, 0, w)[order]
  neg_cum = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(neg_w)])
  # Tie groups: negatives strictly below are neg_cum[lo], below-or-tied neg_cum[hi];
  # their sum is twice "below + half of ties".
  lo = jnp.searchsorted(s_sorted, s_sorted, side="left")
  hi = jnp.searchsorted(s_sorted, s_sorted, side="right")
  twice_wins = jnp.sum(pos_w * (neg_cum[lo] + neg_cum[hi]))
  pairs = jnp.sum(pos_w) * neg_cum[-1]
  auc = divide(twice_wins, 2 * pairs, zd, dtype)
  # NaN cannot be rejected under jit; it poisons the result instead of being
  # sorted to an end and silently ranked.
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), auc)



# --- Curves ---


def _trim(count, outputs, *inputs):
  """Concrete inputs: the first ``count (+1)`` points; traced: the padded arrays.

  Inside any trace (even of a function that closes over concrete inputs) the
  count is a tracer and the padded arrays are returned.
  """
  if is_traced(count, *inputs):
    return tuple(x for x, _ in outputs)
  k = int(count)
  return tuple(x[:k + extra] for x, extra in outputs)


def _rate(x, dtype):
  # x / x[-1]; NaN where the total is not positive (scikit-learn warns and
  # returns NaN there).
  total = x[-1]
  ok = total > 0
  return jnp.where(ok, x / jnp.where(ok, total, 1), jnp.asarray(jnp.nan, dtype))


def _shift(x, step):
  # x[j - step] for step = 1 (previous) or x[j + 1] for step = -1, edges repeated.
  if step == 1:
    return jnp.concatenate([x[:1], x[:-1]])
  return jnp.concatenate([x[1:], x[-1:]])


def roc_curve(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    drop_intermediate: bool = True,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Receiver operating characteristic curve, as ``sklearn.metrics.roc_curve``.

  One point per distinct included score (a sample is predicted positive when
  its score is ``>= threshold``), preceded by the point ``(0, 0)`` at threshold
  ``+inf``. Rows with zero weight are dropped first, as scikit-learn does.

  Args:
    scores: Floating scores, higher means more likely positive, shape ``[...]``
      (flattened).
    labels: Binary labels (0/1 or bool), same shape; 1 is the positive class.
    weights: Per-sample weights (scikit-learn's ``sample_weight``),
      broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing, as if removed.
    drop_intermediate: Drop the points that lie on a straight segment between
      their neighbours (scikit-learn's rule: zero second difference of both the
      false and the true positives), a static Python bool.

  Returns:
    ``(fpr, tpr, thresholds)``. With concrete inputs each has scikit-learn's
    length ``m + 1`` (``m`` kept thresholds) and equals its values;
    ``thresholds[0]`` is ``inf`` and ``thresholds`` has the dtype of ``scores``.
    Inside ``jit`` / ``vmap`` (any trace) each has length ``n + 1`` for
    ``n = scores.size``: the first ``m + 1`` entries are the same points and
    the rest repeat the last point ``(1, 1, min score)``, which changes no
    area or maximum. ``fpr`` (``tpr``) is NaN throughout when the included
    negatives (positives) have no weight, as in scikit-learn; both are NaN
    under ``jit`` when an included score or label is NaN.

  Raises:
    ValueError: if concrete included labels are not 0/1 or concrete included
      scores or labels hold NaN.
    TypeError: if ``scores`` is not floating or ``drop_intermediate`` is not a bool.

  Examples:
    >>> fpr, tpr, thresholds = roc_curve(jnp.array([0.1, 0.4, 0.35, 0.8]),
    ...                                  jnp.array([0, 0, 1, 1]))
    >>> fpr
    Array([0. , 0. , 0.5, 0.5, 1. ], dtype=float32)
    >>> tpr
    Array([0. , 0.5, 0.5, 1. , 1. ], dtype=float32)
    >>> thresholds
    Array([ inf, 0.8 , 0.4 , 0.35, 0.1 ], dtype=float32)
  """
  if not isinstance(drop_intermediate, bool):
    raise TypeError(f"drop_intermediate must be a Python bool, got {drop_intermediate!r}.")
  _check_scores("roc_curve", scores, labels, where)
  args = as_arrays(scores, labels, weights, where)
  fpr, tpr, thresholds, count = _roc_curve(*args, drop_intermediate=drop_intermediate)
  return _trim(count, ((fpr, 0), (tpr, 0), (thresholds, 0)), scores, labels, weights, where)


@partial(jax.jit, static_argnames=("drop_intermediate",))
def _roc_curve(scores, labels, weights, where, *, drop_intermediate):
  count, fps, tps, thresholds, nan_found, dtype = threshold_points(
      scores, labels, weights, where)
  if drop_intermediate:
    # scikit-learn keeps the first and last points and those where
    # np.diff(x, 2) = (x[j+1] - x[j]) - (x[j] - x[j-1]) is non-zero for fps or tps.
    j = jnp.arange(fps.shape[0])
    interior = (j >= 1) & (j <= count - 2)

    def bends(x):
      return (_shift(x, -1) - x) - (x - _shift(x, 1)) != 0

    keep = (j < count) & (~interior | bends(fps) | bends(tps))
    count, (fps, tps, thresholds) = compact(keep, fps, tps, thresholds)
  zero = jnp.zeros(1, dtype)
  fps, tps = jnp.concatenate([zero, fps]), jnp.concatenate([zero, tps])
  thresholds = jnp.concatenate([jnp.full(1, jnp.inf, thresholds.dtype), thresholds])
  nan = jnp.asarray(jnp.nan, dtype)
  fpr = jnp.where(nan_found, nan, _rate(fps, dtype))
  tpr = jnp.where(nan_found, nan, _rate(tps, dtype))
  return fpr, tpr, thresholds, count + 1


def precision_recall_curve(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Precision-recall pairs, as ``sklearn.metrics.precision_recall_curve``.

  One point per distinct included score (predict positive when the score is
  ``>= threshold``), in increasing threshold order, followed by the point
  ``(precision=1, recall=0)`` that has no threshold. Zero-weight rows are
  dropped first, as scikit-learn does.

  Args:
    scores: Floating scores, higher means more likely positive, shape ``[...]``
      (flattened).
    labels: Binary labels (0/1 or bool), same shape; 1 is the positive class.
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing, as if removed.

  Returns:
    ``(precision, recall, thresholds)``. With concrete inputs, scikit-learn's
    arrays: ``m + 1``, ``m + 1`` and ``m`` entries for ``m`` distinct included
    scores. Inside ``jit`` / ``vmap`` (any trace) their lengths are ``n + 1``, ``n + 1`` and
    ``n`` (``n = scores.size``): the first entries are the same and the rest
    repeat the last entry (precision 1, recall 0, the largest score). As in
    scikit-learn, a threshold with no predicted positive has precision 0 and,
    without any positive weight, the recall is 1 at every threshold. Precision
    and recall are NaN under ``jit`` when an included score or label is NaN.

  Raises:
    ValueError: if concrete included labels are not 0/1 or concrete included
      scores or labels hold NaN.
    TypeError: if ``scores`` is not floating.

  Examples:
    >>> precision, recall, thresholds = precision_recall_curve(
    ...     jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    >>> precision
    Array([0.5      , 0.6666667, 0.5      , 1.       , 1.       ], dtype=float32)
    >>> recall
    Array([1. , 1. , 0.5, 0.5, 0. ], dtype=float32)
    >>> thresholds
    Array([0.1 , 0.35, 0.4 , 0.8 ], dtype=float32)
  """
  _check_scores("precision_recall_curve", scores, labels, where)
  precision, recall, thresholds, count = _precision_recall_curve(
      *as_arrays(scores, labels, weights, where))
  return _trim(count, ((precision, 1), (recall, 1), (thresholds, 0)),
               scores, labels, weights, where)


def _precision(fps, tps):
  # tp / (tp + fp), 0 where nothing is predicted positive (scikit-learn).
  ps = tps + fps
  return jnp.where(ps != 0, tps / jnp.where(ps != 0, ps, 1), 0)


@jax.jit
def _precision_recall_curve(scores, labels, weights, where):
  count, fps, tps, thresholds, nan_found, dtype = threshold_points(
      scores, labels, weights, where)
  precision = _precision(fps, tps)
  total = tps[-1]
  recall = jnp.where(total != 0, tps / jnp.where(total != 0, total, 1), 1)
  # Reverse the first `count` entries (increasing thresholds), then the end
  # point (1, 0) and its repeats.
  j = jnp.arange(fps.shape[0])
  real = j < count
  source = jnp.where(real, count - 1 - j, 0)
  one, zero = jnp.ones(1, dtype), jnp.zeros(1, dtype)
  precision = jnp.concatenate([jnp.where(real, precision[source], 1), one])
  recall = jnp.concatenate([jnp.where(real, recall[source], 0), zero])
  nan = jnp.asarray(jnp.nan, dtype)
  precision = jnp.where(nan_found, nan, precision)
  recall = jnp.where(nan_found, nan, recall)
  return precision, recall, thresholds[source], count


def average_precision(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """Average precision, as ``sklearn.metrics.average_precision_score`` (binary).

  The step-function integral ``Σ_k (R_k − R_{k−1}) P_k`` over the distinct
  included scores (no interpolation), computed as the positive weight gained
  at each threshold times the precision there, over the total positive weight.

  Args:
    scores: Floating scores, higher means more likely positive, shape ``[...]``.
    labels: Binary labels (0/1 or bool), same shape; 1 is the positive class.
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing, as if removed.

  Returns:
    A scalar in ``[0, 1]``; 0 when the included positives have no weight (as
    scikit-learn); NaN under ``jit`` when an included score or label is NaN.

  Raises:
    ValueError: if concrete included labels are not 0/1 or concrete included
      scores or labels hold NaN.
    TypeError: if ``scores`` is not floating.

  Examples:
    >>> average_precision(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    Array(0.8333334, dtype=float32)
  """
  _check_scores("average_precision", scores, labels, where)
  return _average_precision(*as_arrays(scores, labels, weights, where))


@jax.jit
def _average_precision(scores, labels, weights, where):
  _, fps, tps, _, nan_found, dtype = threshold_points(scores, labels, weights, where)
  # Padding repeats the last point, so its gain is 0.
  gain = tps - jnp.concatenate([jnp.zeros(1, dtype), tps[:-1]])
  ap = jnp.maximum(divide(jnp.sum(gain * _precision(fps, tps)), tps[-1], 0.0, dtype), 0)
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), ap)
