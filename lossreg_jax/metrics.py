"""Classification metrics equal to scikit-learn's, as jit-able sums.

Every metric is computed from weighted sums over samples (per-class counts via
``jax.ops.segment_sum``), never from means of chunks, so a batch sharded across
devices gives the same value as the whole batch. ``weights`` is scikit-learn's
``sample_weight``; ``where`` is a boolean mask whose excluded samples contribute
exactly nothing (as if removed before calling scikit-learn). Predictions and
labels are integer class indices (binary: 0/1). The metrics are piecewise
constant in their inputs, so their gradients are zero (or absent); they are
for evaluation, not for training.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import as_float_array, check_choice, check_same_shape
from lossreg_jax.losses._reduce import broadcast_where

__all__ = ["accuracy", "confusion_matrix", "f1_score", "fbeta_score", "precision", "recall",
           "roc_auc"]

Average = Literal["binary", "micro", "macro", "weighted"] | None
_AVERAGES = ("binary", "micro", "macro", "weighted", None)


# --- Input handling ---


def _is_traced(*xs) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in xs)


def _arrays(*xs):
  """``jnp.asarray`` for the jitted cores (lists become one array, None stays)."""
  return tuple(None if x is None else jnp.asarray(x) for x in xs)


def _check_class_dtype(name: str, x) -> None:
  if not (jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_):
    raise TypeError(
        f"{name} must hold integer class indices (or booleans), got dtype "
        f"{x.dtype} with shape {x.shape}; threshold probabilities or take an "
        f"argmax first, e.g. {name}.argmax(-1)."
    )


def _check_inputs(name_p, predictions, name_t, labels, where, *, classes=True):
  """Checks dtypes and shapes without computing anything.

  Returns the included values of both arrays as flat NumPy arrays for value
  checks, or ``(None, None)`` when anything is traced.
  """
  traced = _is_traced(predictions, labels, where)
  p = predictions if _is_traced(predictions) else np.asarray(predictions)
  t = labels if _is_traced(labels) else np.asarray(labels)
  if classes:
    _check_class_dtype(name_p, p)
    _check_class_dtype(name_t, t)
  else:
    as_float_array(name_p, p)
  check_same_shape(name_p, p, name_t, t)
  if traced:
    return None, None
  p, t = p.reshape(-1), t.reshape(-1)
  if where is None:
    return p, t
  mask = np.asarray(where)
  if mask.dtype != np.bool_:
    raise TypeError(f"where must be a boolean mask, got dtype {mask.dtype}.")
  try:
    mask = np.broadcast_to(mask, np.shape(predictions))
  except ValueError:
    raise ValueError(
        f"where must be broadcastable to {name_t}.shape={np.shape(labels)}, got "
        f"where.shape={mask.shape}."
    ) from None
  mask = mask.reshape(-1)
  return p[mask], t[mask]


def _float_dtype(weights: jax.Array | None) -> jnp.dtype:
  # float32, or float64 with x64 enabled; low-precision weights accumulate in it.
  default = jnp.asarray(0.0).dtype
  if weights is None or not jnp.issubdtype(weights.dtype, jnp.floating):
    return default
  return jnp.promote_types(weights.dtype, default)


def _prepare(predictions, labels, weights, where, *, name_t="labels"):
  """Flattens the (checked) inputs; returns ``(p, t, w, include, dtype)``.

  ``w`` is the per-sample weight with excluded samples set to 0 (an int32 count
  when ``weights`` is None, so unweighted counts are exact), ``include`` the
  flat boolean mask or None.
  """
  p, t = jnp.asarray(predictions), jnp.asarray(labels)
  if not jnp.issubdtype(p.dtype, jnp.floating):
    p = p.astype(jnp.int32)  # class ids (bool or any integer width)
  if not jnp.issubdtype(t.dtype, jnp.floating):
    t = t.astype(jnp.int32)
  shape = p.shape
  include = broadcast_where(where, shape)
  include = None if include is None else include.reshape(-1)
  if weights is None:
    dtype = _float_dtype(None)
    w = jnp.ones(p.size, jnp.int32) if include is None else include.astype(jnp.int32)
  else:
    weights = jnp.asarray(weights)
    dtype = _float_dtype(weights)
    try:
      w = jnp.broadcast_to(weights.astype(dtype), shape).reshape(-1)
    except ValueError:
      raise ValueError(
          f"weights must be broadcastable to {name_t}.shape={shape}, got "
          f"weights.shape={weights.shape}."
      ) from None
    if include is not None:
      w = jnp.where(include, w, jnp.zeros((), dtype))
  return p.reshape(-1), t.reshape(-1), w, include, dtype


def _resolve_num_classes(num_classes, pv, tv, fn: str) -> int:
  """Checks a given ``num_classes`` or infers it from concrete included values."""
  if num_classes is not None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
      raise TypeError(
          f"num_classes must be a static Python int, got {num_classes!r} "
          f"({type(num_classes).__name__})."
      )
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
  elif pv is None:
    raise ValueError(
        f"{fn} needs num_classes=<static int> when predictions, labels or where "
        f"are traced (under jax.jit / jax.vmap); got num_classes=None. Pass it as "
        f"a keyword and mark it static, e.g. jax.jit(partial({fn}, num_classes=3))."
    )
  for name, v in (("predictions", pv), ("labels", tv)):
    if v is not None and v.size and v.min() < 0:
      raise ValueError(f"{name} must be class indices >= 0, got {v.min()}.")
    if v is not None and v.size and num_classes is not None and v.max() >= num_classes:
      raise ValueError(
          f"{name} must be class indices < num_classes={num_classes}, got "
          f"{v.max()}."
      )
  if num_classes is None:
    num_classes = int(max(pv.max(initial=0), tv.max(initial=0))) + 1
  return int(num_classes)


def _check_binary(name: str, v: np.ndarray | None, context: str) -> None:
  if v is not None and not np.isin(v, (0, 1)).all():
    raise ValueError(f"{context} needs 0/1 {name}, got values {np.unique(v).tolist()}.")


def _check_zero_division(zero_division):
  if _is_traced(zero_division):
    return zero_division  # a traced value cannot be checked
  if isinstance(zero_division, str) or not np.isscalar(zero_division):
    raise TypeError(
        f"zero_division must be a Python float (0.0, 1.0 or nan), got {zero_division!r}."
    )
  value = float(zero_division)
  if not (math.isnan(value) or 0.0 <= value <= 1.0):
    raise ValueError(f"zero_division must be in [0, 1] or nan, got {zero_division!r}.")
  return value


def _divide(num: jax.Array, den: jax.Array, zero_division: float, dtype) -> jax.Array:
  # sklearn's _prf_divide: a zero denominator gives zero_division; the untaken
  # branch divides by 1 so no inf / NaN is ever produced.
  num, den = num.astype(dtype), den.astype(dtype)
  zero = den == 0
  return jnp.where(zero, jnp.asarray(zero_division, dtype), num / jnp.where(zero, 1, den))


def _segment_sum(x: jax.Array, ids: jax.Array, n: int) -> jax.Array:
  # Ids outside [0, n) (masked padding) are dropped by segment_sum.
  return jax.ops.segment_sum(x, ids, num_segments=n)


# --- Accuracy and the confusion matrix ---


def accuracy(
    predictions: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """Fraction of (weighted) samples whose predicted class equals the label.

  Args:
    predictions: Integer class predictions, any shape ``[...]``.
    labels: Integer true classes, same shape as ``predictions``.
    weights: Per-sample weights (scikit-learn's ``sample_weight``),
      broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing.

  Returns:
    A scalar, ``Σ w·[pred == label] / Σ w``; 0 for an empty selection.

  Examples:
    >>> accuracy(jnp.array([0, 1, 2, 2]), jnp.array([0, 1, 1, 2]))
    Array(0.75, dtype=float32)

  References:
    ``sklearn.metrics.accuracy_score``.
  """
  _check_inputs("predictions", predictions, "labels", labels, where)
  return _accuracy(*_arrays(predictions, labels, weights, where))


@jax.jit
def _accuracy(predictions, labels, weights, where):
  p, t, w, _, dtype = _prepare(predictions, labels, weights, where)
  correct = jnp.sum(jnp.where(p == t, w, 0), dtype=dtype)
  return _divide(correct, jnp.sum(w, dtype=dtype), 0.0, dtype)


def confusion_matrix(
    predictions: ArrayLike,
    labels: ArrayLike,
    *,
    num_classes: int | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    normalize: Literal["true", "pred", "all"] | None = None,
) -> jax.Array:
  """Confusion matrix with rows = true labels and columns = predictions.

  Counts are one ``segment_sum`` over ``label * num_classes + prediction``
  (O(n), exact integer counts without weights).

  Args:
    predictions: Integer class predictions in ``[0, num_classes)``, shape ``[...]``.
    labels: Integer true classes, same shape.
    num_classes: Static number of classes; required under ``jax.jit``, else
      inferred as ``max(labels, predictions) + 1`` over included samples.
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask; excluded samples are not counted.
    normalize: ``None`` (counts), ``"true"`` (rows sum to 1), ``"pred"``
      (columns sum to 1) or ``"all"``; empty rows / columns give 0, as in
      scikit-learn.

  Returns:
    ``(num_classes, num_classes)``: int32 counts without weights and
    normalization, else floating. Equals scikit-learn's
    ``confusion_matrix(labels, predictions, labels=range(num_classes))``.

  Raises:
    ValueError: if ``num_classes`` is missing under ``jit`` or concrete values
      fall outside ``[0, num_classes)``.

  Examples:
    >>> confusion_matrix(jnp.array([0, 1, 1, 2]), jnp.array([0, 1, 2, 2]))
    Array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]], dtype=int32)
  """
  check_choice("normalize", normalize, ("true", "pred", "all", None))
  pv, tv = _check_inputs("predictions", predictions, "labels", labels, where)
  c = _resolve_num_classes(num_classes, pv, tv, "confusion_matrix")
  args = _arrays(predictions, labels, weights, where)
  return _confusion_matrix(*args, c=c, normalize=normalize)


@partial(jax.jit, static_argnames=("c", "normalize"))
def _confusion_matrix(predictions, labels, weights, where, *, c, normalize):
  p, t, w, _, dtype = _prepare(predictions, labels, weights, where)
  # Out-of-range ids (possible only for masked samples or traced bad input)
  # are sent past the end and dropped.
  valid = (p >= 0) & (p < c) & (t >= 0) & (t < c)
  ids = jnp.where(valid, t * c + p, c * c)
  cm = _segment_sum(w, ids, c * c).reshape(c, c)
  if normalize is None:
    return cm
  cm = cm.astype(dtype)
  if normalize == "true":
    den = cm.sum(axis=1, keepdims=True)
  elif normalize == "pred":
    den = cm.sum(axis=0, keepdims=True)
  else:
    den = cm.sum()
  return _divide(cm, jnp.broadcast_to(den, cm.shape), 0.0, dtype)


# --- Precision, recall, F-beta ---


def _average(values, present, true_sum, average, zero_division, dtype):
  """sklearn's ``_nanaverage`` over the present classes (NaN entries skipped)."""
  valid = present & ~jnp.isnan(values)
  count = valid.astype(dtype)
  if average == "weighted":
    support = jnp.where(valid, true_sum.astype(dtype), 0)
    # All-zero supports (e.g. all weights 0): sklearn falls back to a plain mean.
    count = jnp.where(jnp.sum(support) > 0, support, count)
  total = jnp.sum(jnp.where(valid, values, 0) * count)
  return _divide(total, jnp.sum(count), zero_division, dtype)


def _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype):
  """Precision, recall and F-beta from the counts, each as sklearn divides."""
  precision_ = _divide(tp, pred_sum, zd, dtype)
  recall_ = _divide(tp, true_sum, zd, dtype)
  # sklearn's form (1 + b^2) tp / (b^2 true_sum + pred_sum): undefined only when
  # a class is neither true nor predicted. beta = 0 / inf select P / R.
  beta2 = jnp.square(jnp.asarray(beta, dtype))
  f = _divide((1 + beta2) * tp.astype(dtype),
              beta2 * true_sum.astype(dtype) + pred_sum.astype(dtype), zd, dtype)
  f = jnp.where(beta2 == 0, precision_, jnp.where(jnp.isinf(beta2), recall_, f))
  return precision_, recall_, f


def _prf(metric, predictions, labels, *, beta=1.0, num_classes, average, pos_label,
         weights, where, zero_division):
  """Checks the static arguments and the concrete values, then runs ``_prf_all``."""
  check_choice("average", average, _AVERAGES)
  zd = _check_zero_division(zero_division)
  if not (isinstance(beta, (int, float)) and beta >= 0):
    raise ValueError(f"beta must be a static float >= 0, got {beta!r}.")
  pv, tv = _check_inputs("predictions", predictions, "labels", labels, where)
  c = None
  if average == "binary":
    if pos_label not in (0, 1):
      raise ValueError(f"pos_label must be 0 or 1 with average='binary', got {pos_label!r}.")
    for name, v in (("predictions", pv), ("labels", tv)):
      _check_binary(name, v, "average='binary' (use 'micro', 'macro', 'weighted' or "
                    "None for multiclass inputs)")
  elif average != "micro":
    fn = {"precision": "precision", "recall": "recall", "f": "fbeta_score"}[metric]
    c = _resolve_num_classes(num_classes, pv, tv, fn)
  # One compiled program per (average, classes) serves all three metrics.
  args = _arrays(predictions, labels, weights, where)
  out = _prf_all(*args, zd, beta, average=average, c=c, pos_label=int(pos_label))
  return out[("precision", "recall", "f").index(metric)]


@partial(jax.jit, static_argnames=("average", "c", "pos_label"))
def _prf_all(predictions, labels, weights, where, zd, beta, *, average, c, pos_label):
  p, t, w, include, dtype = _prepare(predictions, labels, weights, where)
  if average == "binary":
    pred_pos, true_pos = p == pos_label, t == pos_label
    tp = jnp.sum(jnp.where(pred_pos & true_pos, w, 0))
    pred_sum = jnp.sum(jnp.where(pred_pos, w, 0))
    true_sum = jnp.sum(jnp.where(true_pos, w, 0))
    return _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype)
  if average == "micro":
    # Single-label multiclass: every sample is one prediction and one truth,
    # so the micro precision, recall and F all reduce to sum(correct) / sum(w).
    tp = jnp.sum(jnp.where(p == t, w, 0))
    total = jnp.sum(w)
    return _prf_from_sums(tp, total, total, beta, zd, dtype)
  tp = _segment_sum(jnp.where(p == t, w, 0), t, c)
  pred_sum = _segment_sum(w, p, c)
  true_sum = _segment_sum(w, t, c)
  per_class = _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype)
  if average is None:
    return per_class
  # sklearn's default labels=None averages over the classes that occur in the
  # labels or predictions (weight 0 still counts as occurring; masked does not).
  inc = jnp.ones(p.shape, jnp.int32) if include is None else include.astype(jnp.int32)
  present = (_segment_sum(inc, t, c) + _segment_sum(inc, p, c)) > 0
  return tuple(_average(v, present, true_sum, average, zd, dtype) for v in per_class)


_PRF_ARGS = """
  Args:
    predictions: Integer class predictions (binary: 0/1), shape ``[...]``.
    labels: Integer true classes, same shape as ``predictions``.
{beta}    num_classes: Static number of classes for ``average`` in ``"macro"``,
      ``"weighted"`` and ``None``: required under ``jax.jit`` / ``vmap``, else
      inferred from the concrete inputs. Not needed for ``"binary"``/``"micro"``.
    average: ``"binary"`` (the class ``pos_label`` only; 0/1 inputs),
      ``"micro"`` (global counts), ``"macro"`` (unweighted mean over classes),
      ``"weighted"`` (mean weighted by each class's true weight) or ``None``
      (per-class values). As scikit-learn's default ``labels=None``, the macro
      and weighted means run over classes present in the included labels or
      predictions; ``None`` returns all ``num_classes`` entries (absent classes
      get ``zero_division``, as scikit-learn with ``labels=range(num_classes)``).
    pos_label: The positive class (0 or 1) for ``average="binary"``.
    weights: Per-sample weights (scikit-learn's ``sample_weight``),
      broadcastable to ``labels``.
    where: Boolean mask broadcastable to ``labels``; excluded samples count for
      nothing, as if removed.
    zero_division: Value where a denominator is 0 (0.0, 1.0 or ``nan``; with
      ``nan`` such classes are skipped by the averages, as in scikit-learn).
      An empty selection gives this value, never NaN otherwise.

  Returns:
    A scalar, or ``(num_classes,)`` with ``average=None``.

  Raises:
    ValueError: for an unknown ``average``, non-0/1 concrete inputs with
      ``average="binary"``, or a missing ``num_classes`` under ``jit``.
    TypeError: for floating predictions or labels.
"""


def _with_args(doc: str, beta: str = "") -> str:
  return doc.replace("{args}", _PRF_ARGS.format(beta=beta).strip("\n"))


def precision(predictions: ArrayLike, labels: ArrayLike, *, num_classes: int | None = None,
              average: Average = "binary", pos_label: int = 1,
              weights: ArrayLike | None = None, where: ArrayLike | None = None,
              zero_division: float = 0.0) -> jax.Array:
  return _prf("precision", predictions, labels, num_classes=num_classes, average=average,
              pos_label=pos_label, weights=weights, where=where, zero_division=zero_division)


precision.__doc__ = _with_args("""Precision ``tp / (tp + fp)``, as sklearn's ``precision_score``.
{args}
  Examples:
    >>> precision(jnp.array([1, 1, 0, 1]), jnp.array([1, 0, 0, 1]))
    Array(0.666..., dtype=float32)
    >>> precision(jnp.array([0, 2, 1, 2]), jnp.array([0, 1, 1, 2]), average=None)
    Array([1. , 1. , 0.5], dtype=float32)
""")


def recall(predictions: ArrayLike, labels: ArrayLike, *, num_classes: int | None = None,
           average: Average = "binary", pos_label: int = 1,
           weights: ArrayLike | None = None, where: ArrayLike | None = None,
           zero_division: float = 0.0) -> jax.Array:
  return _prf("recall", predictions, labels, num_classes=num_classes, average=average,
              pos_label=pos_label, weights=weights, where=where, zero_division=zero_division)


recall.__doc__ = _with_args("""Recall ``tp / (tp + fn)``, equal to ``sklearn.metrics.recall_score``.
{args}
  Examples:
    >>> recall(jnp.array([1, 0, 0, 1]), jnp.array([1, 1, 0, 1]))
    Array(0.666..., dtype=float32)
""")


def fbeta_score(predictions: ArrayLike, labels: ArrayLike, *, beta: float,
                num_classes: int | None = None, average: Average = "binary",
                pos_label: int = 1, weights: ArrayLike | None = None,
                where: ArrayLike | None = None, zero_division: float = 0.0) -> jax.Array:
  return _prf("f", predictions, labels, beta=beta, num_classes=num_classes,
              average=average, pos_label=pos_label, weights=weights, where=where,
              zero_division=zero_division)


fbeta_score.__doc__ = _with_args("""F-beta score, equal to ``sklearn.metrics.fbeta_score``.

  Computed as scikit-learn does, ``(1 + β²)·tp / (β²·(tp + fn) + tp + fp)``, so
  it is 0 (not ``zero_division``) when only precision or only recall is
  undefined. ``beta=0`` is the precision and ``beta=inf`` the recall.
{args}
  Examples:
    >>> fbeta_score(jnp.array([1, 1, 0, 1]), jnp.array([1, 0, 0, 1]), beta=2.0)
    Array(0.909..., dtype=float32)
""", beta="""    beta: Weight of recall relative to precision, a Python float ``>= 0``.
""")


def f1_score(predictions: ArrayLike, labels: ArrayLike, *, num_classes: int | None = None,
             average: Average = "binary", pos_label: int = 1,
             weights: ArrayLike | None = None, where: ArrayLike | None = None,
             zero_division: float = 0.0) -> jax.Array:
  return _prf("f", predictions, labels, beta=1.0, num_classes=num_classes,
              average=average, pos_label=pos_label, weights=weights, where=where,
              zero_division=zero_division)


f1_score.__doc__ = _with_args("""F1 score, harmonic mean of precision and recall (``f1_score``).
{args}
  Examples:
    >>> f1_score(jnp.array([0, 2, 1, 2]), jnp.array([0, 1, 1, 2]), average="macro")
    Array(0.777..., dtype=float32)
""")


# --- ROC AUC ---


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
    A scalar in ``[0, 1]``.

  Raises:
    ValueError: if concrete included labels are not 0/1.
    TypeError: if ``scores`` is not floating.

  Examples:
    >>> roc_auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    Array(0.75, dtype=float32)
    >>> roc_auc(jnp.array([0.5, 0.5, 0.2, 0.9]), jnp.array([0, 1, 0, 1]))  # a tie
    Array(0.875, dtype=float32)

  References:
    Hanley & McNeil (1982), The meaning and use of the area under a ROC curve.
  """
  zd = _check_zero_division(zero_division)
  _, v = _check_inputs("scores", scores, "labels", labels, where, classes=False)
  _check_binary("labels", v, "roc_auc")
  return _roc_auc(*_arrays(scores, labels, weights, where), zd)


@jax.jit
def _roc_auc(scores, labels, weights, where, zd):
  s, y, w, include, dtype = _prepare(scores, labels, weights, where)
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
  return _divide(twice_wins, 2 * pairs, zd, dtype)
