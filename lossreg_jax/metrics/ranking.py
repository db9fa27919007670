"""Ranking metrics: ROC AUC (binary, multiclass, partial), ROC and precision-recall curves, AP.

All equal scikit-learn's (``roc_auc_score``, ``roc_curve``,
``precision_recall_curve``, ``average_precision_score``), ties and
``sample_weight`` included. One descending sort of the included scores gives
the cumulative true- and false-positive weights at every threshold; every
quantity is a global weighted sum, so a sharded batch gives the value of the
whole batch. Multiclass scores (shape ``(n, C)`` with integer labels in
``[0, C)``) are handled in ``_ranking_multiclass.py``.

Predictions come first: ``roc_auc(scores, labels)``, not scikit-learn's
``roc_auc_score(y_true, y_score)``; concrete arguments that look swapped
(0/1 scores with probability-like labels) are refused with a message.

Curves have a data-dependent length. Called eagerly on concrete inputs they
return exactly scikit-learn's points. Inside ``jax.jit`` / ``vmap`` (any trace,
also of a function that closes over concrete arrays) they return fixed-length
arrays (one entry per input row, plus one): the first entries are
scikit-learn's points and the rest repeat the last point, so areas, maxima and
plots computed from them are unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import check_choice
from lossreg_jax.metrics import _ranking_multiclass as mc
from lossreg_jax.metrics._common import (
    as_arrays, check_binary, check_inputs, check_no_nan, check_zero_division, compact, divide,
    has_nan, is_traced, prepare, threshold_points)
from lossreg_jax.metrics._warnings import warn_undefined

__all__ = ["average_precision", "precision_recall_curve", "roc_auc", "roc_curve"]


def _check_scores(fn, scores, labels, where):
  """Concrete checks shared by the binary ranking metrics: argument order,
  floating finite scores, no NaN, 0/1 labels."""
  mc.check_argument_order(fn, scores, labels)
  sv, lv = check_inputs("scores", scores, "labels", labels, where, classes=False)
  mc.check_finite("scores", sv, fn)
  check_no_nan("labels", lv, fn)
  check_binary("labels", lv, fn)


def _check_max_fpr(max_fpr):
  if max_fpr is None:
    return None
  if isinstance(max_fpr, bool) or not isinstance(max_fpr, (int, float, np.integer, np.floating)):
    raise TypeError(
        f"max_fpr must be None or a static Python float in (0, 1], got {max_fpr!r} "
        f"({type(max_fpr).__name__})."
    )
  if not 0 < max_fpr <= 1:
    raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr!r}.")
  return float(max_fpr)


def roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    multi_class: Literal["raise", "ovr", "ovo"] = "raise",
    average: Literal["macro", "weighted", "micro"] | None = "macro",
    max_fpr: float | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    zero_division: float = 0.0,
) -> jax.Array:
  """Area under the ROC curve, as ``sklearn.metrics.roc_auc_score``.

  Binary (``scores`` and ``labels`` of one shape): the weighted Mann–Whitney
  form, each positive earning the negative weight scored strictly below it
  plus half the negative weight tied with it, which equals the trapezoidal
  area of scikit-learn's ROC curve, ties included (one sort and two
  ``searchsorted`` calls: O(n log n) time, O(n) memory). With ``max_fpr``, the
  area up to that false-positive rate (the curve interpolated linearly
  there), standardized by McClish's correction to 0.5 for chance and 1 for a
  perfect ranking, as scikit-learn.

  Multiclass (``scores`` shaped ``(n, C)``, one row of class probabilities
  per sample, with integer ``labels`` shaped ``(n,)``): ``multi_class="ovr"``
  averages the AUC of each class against the rest, ``"ovo"`` the AUC of each
  pair of classes present (Hand & Till 2001). Column ``c`` belongs to class
  ``c``, as scikit-learn's ``labels=range(C)``; a class that is absent makes
  its one-vs-rest AUC undefined (``zero_division``) and drops out of
  one-vs-one. scikit-learn refuses ``sample_weight`` with ``"ovo"``; here
  ``weights`` weigh every pairwise AUC and the pair prevalences (unit weights
  give scikit-learn's value), as ``where`` must.

  Args:
    scores: Floating scores, higher means more likely positive, shape
      ``[...]`` (binary) or ``(n, C)`` probabilities (multiclass).
    labels: Binary labels (0/1 or bool) of the shape of ``scores``, or
      integer class indices in ``[0, C)`` of shape ``(n,)`` (multiclass).
    multi_class: Multiclass only: ``"ovr"`` (one-vs-rest) or ``"ovo"``
      (one-vs-one); the default ``"raise"`` refuses multiclass scores, as
      scikit-learn. Ignored for binary scores.
    average: Multiclass only: ``"macro"`` (the unweighted mean over classes or
      pairs), ``"weighted"`` (by class weight, or by pair prevalence for
      ``"ovo"``), ``"micro"`` (``"ovr"`` only: one binary AUC of the flattened
      one-hot labels and scores) or ``None`` (``"ovr"`` only: the ``(C,)``
      per-class AUCs). Ignored for binary scores, as scikit-learn.
    max_fpr: Binary only: a static Python float in ``(0, 1]`` for the
      McClish-standardized partial AUC over ``[0, max_fpr]``; None or 1 for the
      full area.
    weights: Per-sample weights (``sample_weight``), broadcastable to
      ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing.
    zero_division: Returned for an AUC that is undefined because the included
      positives or negatives have zero total weight (scikit-learn warns and
      returns ``nan``; pass ``jnp.nan`` for that). Concrete inputs warn with
      :class:`UndefinedMetricWarning` there.

  Returns:
    A scalar in ``[0, 1]``, or shape ``(C,)`` with ``average=None``; NaN under
    ``jit`` when an included score or label is NaN (it cannot be rejected there).

  Raises:
    ValueError: if concrete included labels are not 0/1 (binary) or not in
      ``[0, C)`` (multiclass); concrete included scores hold NaN or ±inf;
      concrete multiclass rows do not sum to 1; the arguments look swapped
      (scikit-learn's order); multiclass scores come with
      ``multi_class="raise"``, a ``max_fpr`` or an ``average`` that the mode
      lacks; or ``max_fpr`` is outside ``(0, 1]``.
    TypeError: if ``scores`` is not floating, multiclass ``labels`` are not
      integer, or ``max_fpr`` is not a number.

  Examples:
    >>> roc_auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    Array(0.75, dtype=float32)
    >>> roc_auc(jnp.array([0.5, 0.5, 0.2, 0.9]), jnp.array([0, 1, 0, 1]))  # a tie
    Array(0.875, dtype=float32)
    >>> roc_auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]), max_fpr=0.5)
    Array(0.6666667, dtype=float32)
    >>> probs = jnp.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6],
    ...                    [0.3, 0.4, 0.3]])
    >>> roc_auc(probs, jnp.array([0, 1, 2, 2]), multi_class="ovr")
    Array(0.9583334, dtype=float32)

  References:
    Hanley & McNeil (1982), The meaning and use of the area under a ROC curve.
    McClish (1989), Analyzing a portion of the ROC curve.
    Hand & Till (2001), A simple generalisation of the area under the ROC curve
    for multiple class classification problems.
  """
  zd = check_zero_division(zero_division)
  check_choice("multi_class", multi_class, ("raise", "ovr", "ovo"))
  check_choice("average", average, mc.AVERAGES)
  max_fpr = _check_max_fpr(max_fpr)
  if mc.is_multiclass(scores, labels):
    return _multiclass_roc_auc(scores, labels, multi_class, average, max_fpr, weights,
                               where, zd)
  _check_scores("roc_auc", scores, labels, where)
  args = as_arrays(scores, labels, weights, where)
  if max_fpr is None or max_fpr == 1:
    auc = _roc_auc(*args, zd)
  else:
    auc = _partial_roc_auc(*args, max_fpr, zd)
  totals = mc.class_weights(labels, weights, where, 2)
  if totals is not None and totals.min() == 0:
    warn_undefined(
        f"Only one class is present in labels (among the included rows with nonzero "
        f"weight): ROC AUC is not defined; returning zero_division={zd} (scikit-learn "
        f"returns nan).")
  return auc


def _multiclass_roc_auc(scores, labels, multi_class, average, max_fpr, weights, where, zd):
  shape = jnp.shape(scores)
  if multi_class == "raise":
    raise ValueError(
        f"roc_auc got multiclass scores of shape {shape} with labels of shape "
        f"{jnp.shape(labels)}: pass multi_class='ovr' (one-vs-rest) or 'ovo' "
        f"(one-vs-one), as scikit-learn's roc_auc_score requires"
        + (" (for binary labels, pass the probability of class 1: scores[:, 1])."
           if shape[1] == 2 else ".")
    )
  if max_fpr is not None and max_fpr != 1:
    raise ValueError(
        f"max_fpr (partial AUC) is for binary scores only, as in scikit-learn; got "
        f"max_fpr={max_fpr} with multiclass scores of shape {shape}."
    )
  if multi_class == "ovo" and average not in ("macro", "weighted"):
    raise ValueError(
        f"average must be 'macro' or 'weighted' with multi_class='ovo' (scikit-learn "
        f"has no per-class or micro one-vs-one AUC), got average={average!r}."
    )
  num_classes = mc.check_multiclass("roc_auc", scores, labels, where, probabilities=True)
  args = as_arrays(scores, labels, weights, where)
  core = mc.ovr_roc_auc if multi_class == "ovr" else mc.ovo_roc_auc
  auc = core(*args, zd, average=average)
  mc.warn_roc_auc(mc.class_weights(labels, weights, where, num_classes), multi_class,
                  average, zd, stacklevel=5)
  return auc


@jax.jit
def _roc_auc(scores, labels, weights, where, zd):
  s, y, w, include, dtype = prepare(scores, labels, weights, where)
  nan_found = has_nan(s, y, include)
  w = w.astype(dtype)
  s = s if include is None else jnp.where(include, s, jnp.zeros((), s.dtype))
  twice_wins, pairs = mc.mann_whitney(s, y == 1, w, dtype)
  auc = divide(twice_wins, 2 * pairs, zd, dtype)
  # NaN cannot be rejected under jit; it poisons the result instead of being
  # sorted to an end and silently ranked.
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), auc)


@jax.jit
def _partial_roc_auc(scores, labels, weights, where, max_fpr, zd):
  # The area under scikit-learn's ROC curve up to fpr = max_fpr: each segment
  # is clipped at max_fpr, its end interpolated linearly (np.interp in
  # scikit-learn); padded points repeat the last one and add nothing.
  _, fps, tps, _, nan_found, dtype = threshold_points(scores, labels, weights, where)
  zero = jnp.zeros(1, dtype)
  negatives, positives = fps[-1], tps[-1]
  fpr = jnp.concatenate([zero, fps / jnp.where(negatives > 0, negatives, 1)])
  tpr = jnp.concatenate([zero, tps / jnp.where(positives > 0, positives, 1)])
  x0, x1, y0, y1 = fpr[:-1], fpr[1:], tpr[:-1], tpr[1:]
  m = jnp.asarray(max_fpr, dtype)
  width = x1 - x0
  end = jnp.minimum(x1, m)
  slope = jnp.where(width > 0, (y1 - y0) / jnp.where(width > 0, width, 1), 0)
  y_end = y0 + slope * (end - x0)
  area = jnp.sum(jnp.where((x0 < m) & (width > 0), (end - x0) * (y0 + y_end) / 2, 0))
  # McClish (1989): 0.5 for the chance diagonal, 1 for a perfect ranking.
  min_area, max_area = m * m / 2, m
  auc = 0.5 * (1 + (area - min_area) / (max_area - min_area))
  auc = jnp.where((negatives > 0) & (positives > 0), auc, jnp.asarray(zd, dtype))
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


@jax.jit
def _precision_recall_curve(scores, labels, weights, where):
  count, fps, tps, thresholds, nan_found, dtype = threshold_points(
      scores, labels, weights, where)
  precision = mc.precision_at(fps, tps)
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
    average: Literal["macro", "weighted", "micro"] | None = "macro",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """Average precision, as ``sklearn.metrics.average_precision_score``.

  The step-function integral ``Σ_k (R_k − R_{k−1}) P_k`` over the distinct
  included scores (no interpolation), computed as the positive weight gained
  at each threshold times the precision there, over the total positive weight.

  Multiclass (``scores`` shaped ``(n, C)`` with integer ``labels`` shaped
  ``(n,)``): one-vs-rest over the label-binarized classes, column ``c``
  scoring class ``c``, averaged as scikit-learn does for multiclass
  ``y_true``. A class without included positives has AP 0 (scikit-learn's
  value, with its warning). Scores need not be probabilities.

  Args:
    scores: Floating scores, higher means more likely positive, shape
      ``[...]`` (binary) or ``(n, C)`` (multiclass).
    labels: Binary labels (0/1 or bool) of the shape of ``scores``, or
      integer class indices in ``[0, C)`` of shape ``(n,)`` (multiclass).
    average: Multiclass only: ``"macro"`` (unweighted mean over classes),
      ``"weighted"`` (by class weight; 0 when no class has any), ``"micro"``
      (one AP of the flattened one-hot labels and scores) or ``None`` (the
      ``(C,)`` per-class APs). Ignored for binary scores, as scikit-learn.
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing, as if removed.

  Returns:
    A scalar in ``[0, 1]``, or shape ``(C,)`` with ``average=None``; 0 when
    the included positives have no weight (as scikit-learn, which warns, as
    this function does on concrete inputs); NaN under ``jit`` when an included
    score or label is NaN.

  Raises:
    ValueError: if concrete included labels are not 0/1 (binary) or not in
      ``[0, C)`` (multiclass), concrete included scores or labels hold NaN or
      scores ±inf, the arguments look swapped (scikit-learn's order), or
      ``average`` is unknown.
    TypeError: if ``scores`` is not floating or multiclass ``labels`` are not
      integer.

  Examples:
    >>> average_precision(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    Array(0.8333334, dtype=float32)
    >>> scores = jnp.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6],
    ...                     [0.3, 0.4, 0.3]])
    >>> average_precision(scores, jnp.array([0, 1, 2, 2]), average=None)
    Array([1. , 1. , 0.8333334], dtype=float32)
  """
  check_choice("average", average, mc.AVERAGES)
  if mc.is_multiclass(scores, labels):
    num_classes = mc.check_multiclass("average_precision", scores, labels, where,
                                      probabilities=False)
    ap = mc.multiclass_average_precision(*as_arrays(scores, labels, weights, where),
                                         average=average)
    mc.warn_average_precision(mc.class_weights(labels, weights, where, num_classes),
                              average)
    return ap
  _check_scores("average_precision", scores, labels, where)
  ap = _average_precision(*as_arrays(scores, labels, weights, where))
  totals = mc.class_weights(labels, weights, where, 2)
  if totals is not None and totals[1] == 0:
    warn_undefined(
        "No positive class found in labels (among the included rows with nonzero "
        "weight): average precision is 0, as in scikit-learn.")
  return ap


@jax.jit
def _average_precision(scores, labels, weights, where):
  _, fps, tps, _, nan_found, dtype = threshold_points(scores, labels, weights, where)
  ap = mc.ap_from_points(fps, tps, dtype)
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), ap)
