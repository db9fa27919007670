"""Classification metrics (accuracy, precision, recall, F, confusion matrix).

All equal scikit-learn's, as jit-able sums. Every metric is computed from weighted sums
over samples (per-class counts via ``jax.ops.segment_sum``), never from means of chunks,
so a batch sharded across devices gives the same value as the whole batch. ``weights``
is scikit-learn's ``sample_weight``; ``where`` is a boolean mask whose excluded samples
contribute exactly nothing (as if removed before calling scikit-learn). Predictions and
labels are integer class indices (binary: 0/1). The metrics are piecewise constant in
their inputs, so their gradients are zero (or absent); they are for evaluation, not for
training.
"""

from __future__ import annotations

from functools import partial
from typing import Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import check_choice
from lossreg_jax.metrics._common import (
    as_arrays, as_class_ids, check_binary, check_inputs, check_zero_division, divide, is_traced,
    prepare, resolve_num_classes, segment_sum)
from lossreg_jax.metrics._warnings import warn_undefined

__all__ = ["accuracy", "confusion_matrix", "f1_score", "fbeta_score", "precision", "recall"]

Average = Literal["binary", "micro", "macro", "weighted"] | None
_AVERAGES = ("binary", "micro", "macro", "weighted", None)


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
  check_inputs("predictions", predictions, "labels", labels, where)
  predictions, labels = as_class_ids(predictions), as_class_ids(labels)
  return _accuracy(*as_arrays(predictions, labels, weights, where))


@jax.jit
def _accuracy(predictions, labels, weights, where):
  p, t, w, _, dtype = prepare(predictions, labels, weights, where)
  correct = jnp.sum(jnp.where(p == t, w, 0), dtype=dtype)
  return divide(correct, jnp.sum(w, dtype=dtype), 0.0, dtype)


def _check_classes(classes) -> tuple[int, ...] | None:
  """scikit-learn's ``labels=``: a concrete, non-empty list of distinct class ids."""
  if classes is None:
    return None
  if is_traced(classes):
    raise TypeError("classes (scikit-learn's labels=) must be concrete class ids (a list or "
                    "array known outside jax.jit): they fix the output's shape.")
  v = np.asarray(classes)
  if v.dtype.kind == "f" and np.all(np.isfinite(v)) and np.all(v == np.round(v)):
    v = v.astype(np.int64)
  if v.dtype.kind not in "iub":
    raise TypeError(f"classes (scikit-learn's labels=) must hold integer class ids, got "
                    f"{classes!r} (dtype {v.dtype}).")
  if v.ndim != 1 or v.size == 0:
    raise ValueError(f"classes (scikit-learn's labels=) must be a non-empty 1-D list of "
                     f"class ids, got shape {v.shape}.")
  if np.unique(v).size != v.size:
    raise ValueError(f"classes (scikit-learn's labels=) must not repeat a class, got "
                     f"{v.tolist()}.")
  return tuple(int(c) for c in v)


def _positions(x, classes):
  """Each entry's index in ``classes`` (an array), or ``len(classes)`` (dropped) for other ids."""
  equal = x[:, None] == classes.astype(x.dtype)[None, :]
  return jnp.where(jnp.any(equal, axis=1), jnp.argmax(equal, axis=1), classes.shape[0])


def _class_array(classes):
  # A dynamic argument: one compiled program per number of classes, not per list.
  return None if classes is None else jnp.asarray(classes, jnp.int32)


def confusion_matrix(
    predictions: ArrayLike,
    labels: ArrayLike,
    *,
    num_classes: int | None = None,
    classes: Sequence[int] | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    normalize: Literal["true", "pred", "all"] | None = None,
) -> jax.Array:
  """Confusion matrix with rows = true labels and columns = predictions.

  Counts are one ``segment_sum`` over ``label * num_classes + prediction``
  (O(n), exact integer counts without weights).

  Args:
    predictions: Integer class predictions in ``[0, num_classes)``, shape ``[...]``
      (concrete integral floats are accepted, as scikit-learn).
    labels: Integer true classes, same shape.
    num_classes: Static number of classes; required under ``jax.jit`` (unless
      ``classes`` is given), else inferred as ``max(labels, predictions) + 1``
      over included samples.
    classes: scikit-learn's ``labels=`` (spelled so with ``y_true=``): the
      classes to index the matrix with, in this order; samples whose label or
      prediction is not among them are not counted. A concrete list of
      distinct ids.
    weights: Per-sample weights, broadcastable to ``labels``.
    where: Boolean mask; excluded samples are not counted.
    normalize: ``None`` (counts), ``"true"`` (rows sum to 1), ``"pred"``
      (columns sum to 1) or ``"all"``; empty rows / columns give 0, as in
      scikit-learn.

  Returns:
    ``(num_classes, num_classes)`` (or ``(len(classes), len(classes))``):
    integer counts (JAX's default integer: int32, int64 with x64) without
    weights or with integer weights and no normalization, else floating.
    Equals scikit-learn's ``confusion_matrix(labels, predictions,
    labels=range(num_classes))`` (or ``labels=classes``).

  Raises:
    ValueError: if ``num_classes`` is missing under ``jit``, concrete values
      fall outside ``[0, num_classes)`` or are NaN, inf or non-integral, or
      ``classes`` is empty, repeats a class or holds none of the included
      labels (as scikit-learn).

  Examples:
    >>> confusion_matrix(jnp.array([0, 1, 1, 2]), jnp.array([0, 1, 2, 2]))
    Array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]], dtype=int32)
  """
  check_choice("normalize", normalize, ("true", "pred", "all", None))
  pv, tv = check_inputs("predictions", predictions, "labels", labels, where)
  classes = _check_classes(classes)
  if classes is None:
    c = resolve_num_classes(num_classes, pv, tv, "confusion_matrix")
  else:
    if num_classes is not None:
      resolve_num_classes(num_classes, pv, tv, "confusion_matrix")
    if tv is not None and tv.size and not np.isin(tv, classes).any():
      raise ValueError(f"At least one class in classes (scikit-learn's labels=) must be in "
                       f"the labels (y_true), got classes={list(classes)}.")
    c = len(classes)
  predictions, labels = as_class_ids(predictions), as_class_ids(labels)
  args = as_arrays(predictions, labels, weights, where)
  return _confusion_matrix(*args, _class_array(classes), c=c, normalize=normalize)


@partial(jax.jit, static_argnames=("c", "normalize"))
def _confusion_matrix(predictions, labels, weights, where, classes, *, c, normalize):
  p, t, w, _, dtype = prepare(predictions, labels, weights, where)
  if classes is not None:
    p, t = _positions(p, classes), _positions(t, classes)
  # Out-of-range ids (possible only for masked samples, traced bad input or
  # classes not listed in `classes`) are sent past the end and dropped.
  valid = (p >= 0) & (p < c) & (t >= 0) & (t < c)
  ids = jnp.where(valid, t * c + p, c * c)
  cm = segment_sum(w, ids, c * c).reshape(c, c)
  if normalize is None:
    return cm
  cm = cm.astype(dtype)
  if normalize == "true":
    den = cm.sum(axis=1, keepdims=True)
  elif normalize == "pred":
    den = cm.sum(axis=0, keepdims=True)
  else:
    den = cm.sum()
  return divide(cm, jnp.broadcast_to(den, cm.shape), 0.0, dtype)


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
  return divide(total, jnp.sum(count), zero_division, dtype)


def _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype):
  """Precision, recall and F-beta from the counts, each as sklearn divides."""
  precision_ = divide(tp, pred_sum, zd, dtype)
  recall_ = divide(tp, true_sum, zd, dtype)
  # sklearn's form (1 + b^2) tp / (b^2 true_sum + pred_sum): undefined only when
  # a class is neither true nor predicted. beta = 0 / inf select P / R.
  beta2 = jnp.square(jnp.asarray(beta, dtype))
  f = divide((1 + beta2) * tp.astype(dtype),
              beta2 * true_sum.astype(dtype) + pred_sum.astype(dtype), zd, dtype)
  f = jnp.where(beta2 == 0, precision_, jnp.where(jnp.isinf(beta2), recall_, f))
  return precision_, recall_, f


def _warn_prf(msg_start: str, modifier: str, size: int) -> None:
  # scikit-learn's _warn_prf message, word for word (it is filtered by text too).
  where = "due to" if size == 1 else "in labels with"
  warn_undefined(f"{msg_start} ill-defined and being set to 0.0 {where} no {modifier} "
                 f"samples. Use `zero_division` parameter to control this behavior.",
                 stacklevel=6)  # the caller of the public (keyword-aliased) metric


def _prf(metric, predictions, labels, *, beta=1.0, num_classes, classes=None, average,
         pos_label, weights, where, zero_division):
  """Checks the static arguments and the concrete values, then runs ``_prf_all``."""
  check_choice("average", average, _AVERAGES)
  warn = isinstance(zero_division, str) and zero_division == "warn"
  zd = check_zero_division(zero_division, allow_warn=True)
  if not (isinstance(beta, (int, float)) and beta >= 0):
    raise ValueError(f"beta must be a static float >= 0, got {beta!r}.")
  pv, tv = check_inputs("predictions", predictions, "labels", labels, where)
  classes = _check_classes(classes)
  fn = {"precision": "precision", "recall": "recall", "f": "fbeta_score"}[metric]
  c = None
  if average == "binary":
    classes = None  # as scikit-learn: average='binary' scores pos_label only
    if pos_label not in (0, 1):
      raise ValueError(f"pos_label must be 0 or 1 with average='binary', got {pos_label!r}.")
    for name, v in (("predictions", pv), ("labels", tv)):
      check_binary(name, v, "average='binary' (use 'micro', 'macro', 'weighted' or "
                    "None for multiclass inputs)")
  elif classes is not None:
    if num_classes is not None:
      resolve_num_classes(num_classes, pv, tv, fn)
  elif average != "micro":
    c = resolve_num_classes(num_classes, pv, tv, fn)
  predictions, labels = as_class_ids(predictions), as_class_ids(labels)
  # One compiled program per (average, classes) serves all three metrics.
  args = as_arrays(predictions, labels, weights, where)
  *values, zero_flags = _prf_all(*args, zd, beta, _class_array(classes), average=average, c=c,
                                 pos_label=int(pos_label))
  if warn and not is_traced(*values, *zero_flags):
    # Eager only: under jit the flags are tracers and nothing is warned.
    no_pred, no_true, neither, size = (np.asarray(x) for x in zero_flags)
    if metric == "precision" and no_pred:
      _warn_prf("Precision is", "predicted", int(size))
    elif metric == "recall" and no_true:
      _warn_prf("Recall is", "true", int(size))
    elif metric == "f" and 0 < beta < float("inf") and neither:
      _warn_prf("F-score is", "true nor predicted", int(size))
  return values[("precision", "recall", "f").index(metric)]


@partial(jax.jit, static_argnames=("average", "c", "pos_label"))
def _prf_all(predictions, labels, weights, where, zd, beta, classes, *, average, c, pos_label):
  """Precision, recall, F and ``(no_pred, no_true, neither, size)`` over the scored classes.

  The flags say whether a scored class has no predicted / no true / neither
  weight (scikit-learn's undefined cases) and ``size`` how many classes are
  scored (1 for ``binary`` and ``micro``); they drive the eager warnings.
  """
  p, t, w, include, dtype = prepare(predictions, labels, weights, where)

  def flags(pred_sum, true_sum, scored=None):
    scored = jnp.ones(pred_sum.shape, bool) if scored is None else scored
    return (jnp.any(scored & (pred_sum == 0)), jnp.any(scored & (true_sum == 0)),
            jnp.any(scored & (pred_sum == 0) & (true_sum == 0)), jnp.sum(scored))

  if average == "binary":
    pred_pos, true_pos = p == pos_label, t == pos_label
    tp = jnp.sum(jnp.where(pred_pos & true_pos, w, 0))
    pred_sum = jnp.sum(jnp.where(pred_pos, w, 0))
    true_sum = jnp.sum(jnp.where(true_pos, w, 0))
    return *_prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype), flags(pred_sum, true_sum)
  if classes is not None:
    # scikit-learn's labels=: sums over the listed classes only, in their order.
    n = classes.shape[0]
    pos_p, pos_t = _positions(p, classes), _positions(t, classes)
    tp = segment_sum(jnp.where(p == t, w, 0), pos_t, n)
    pred_sum = segment_sum(w, pos_p, n)
    true_sum = segment_sum(w, pos_t, n)
    if average == "micro":
      tp, pred_sum, true_sum = jnp.sum(tp), jnp.sum(pred_sum), jnp.sum(true_sum)
      return *_prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype), flags(pred_sum, true_sum)
    per_class = _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype)
    zero_flags = flags(pred_sum, true_sum)
    if average is None:
      return *per_class, zero_flags
    present = jnp.ones(n, bool)
    return (*(_average(v, present, true_sum, average, zd, dtype) for v in per_class),
            zero_flags)
  if average == "micro":
    # Single-label multiclass: every sample is one prediction and one truth,
    # so the micro precision, recall and F all reduce to sum(correct) / sum(w).
    tp = jnp.sum(jnp.where(p == t, w, 0))
    total = jnp.sum(w)
    return *_prf_from_sums(tp, total, total, beta, zd, dtype), flags(total, total)
  tp = segment_sum(jnp.where(p == t, w, 0), t, c)
  pred_sum = segment_sum(w, p, c)
  true_sum = segment_sum(w, t, c)
  per_class = _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype)
  if average is None:
    return *per_class, flags(pred_sum, true_sum)
  # sklearn's default labels=None averages over the classes that occur in the
  # labels or predictions (weight 0 still counts as occurring; masked does not).
  inc = jnp.ones(p.shape, jnp.int32) if include is None else include.astype(jnp.int32)
  present = (segment_sum(inc, t, c) + segment_sum(inc, p, c)) > 0
  return (*(_average(v, present, true_sum, average, zd, dtype) for v in per_class),
          flags(pred_sum, true_sum, present))


_PRF_ARGS = """
  Args:
    predictions: Integer class predictions (binary: 0/1), shape ``[...]``.
    labels: Integer true classes, same shape as ``predictions``.
{beta}    num_classes: Static number of classes for ``average`` in ``"macro"``,
      ``"weighted"`` and ``None``: required under ``jax.jit`` / ``vmap``, else
      inferred from the concrete inputs. Not needed for ``"binary"``/``"micro"``
      or with ``classes``.
    classes: scikit-learn's ``labels=`` (spelled so with ``y_true=``): the
      classes to score, in this order (a concrete list of distinct ids).
      ``average=None`` returns one value per listed class; ``"micro"`` sums the
      counts of the listed classes; ``"macro"`` / ``"weighted"`` average over
      all of them, present or not. Ignored with ``average="binary"``, as in
      scikit-learn.
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
      The default ``"warn"`` is scikit-learn's: 0.0 plus an
      ``UndefinedMetricWarning`` with scikit-learn's message, given eagerly on
      concrete inputs only (under ``jit`` nothing is warned), for precision with
      no predicted samples, recall with no true samples, and F-beta (finite
      ``beta > 0``) with neither, in a scored class. An empty selection gives
      this value, never NaN otherwise.

  Returns:
    A scalar, or ``(num_classes,)`` with ``average=None``.

  Raises:
    ValueError: for an unknown ``average``, non-0/1 concrete inputs with
      ``average="binary"``, NaN, inf or non-integral concrete class ids, a bad
      ``classes``, or a missing ``num_classes`` under ``jit``.
    TypeError: for non-numeric predictions or labels, or traced floating ones.
"""


def _with_args(doc: str, beta: str = "") -> str:
  return doc.replace("{args}", _PRF_ARGS.format(beta=beta).strip("\n"))


def precision(predictions: ArrayLike, labels: ArrayLike, *, num_classes: int | None = None,
              classes: Sequence[int] | None = None,
              average: Average = "binary", pos_label: int = 1,
              weights: ArrayLike | None = None, where: ArrayLike | None = None,
              zero_division: float | str = "warn") -> jax.Array:
  return _prf("precision", predictions, labels, num_classes=num_classes, classes=classes,
              average=average,
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
           classes: Sequence[int] | None = None,
           average: Average = "binary", pos_label: int = 1,
           weights: ArrayLike | None = None, where: ArrayLike | None = None,
           zero_division: float | str = "warn") -> jax.Array:
  return _prf("recall", predictions, labels, num_classes=num_classes, classes=classes,
              average=average,
              pos_label=pos_label, weights=weights, where=where, zero_division=zero_division)


recall.__doc__ = _with_args("""Recall ``tp / (tp + fn)``, equal to ``sklearn.metrics.recall_score``.
{args}
  Examples:
    >>> recall(jnp.array([1, 0, 0, 1]), jnp.array([1, 1, 0, 1]))
    Array(0.666..., dtype=float32)
""")


def fbeta_score(predictions: ArrayLike, labels: ArrayLike, *, beta: float,
                num_classes: int | None = None, classes: Sequence[int] | None = None,
                average: Average = "binary",
                pos_label: int = 1, weights: ArrayLike | None = None,
                where: ArrayLike | None = None, zero_division: float | str = "warn") -> jax.Array:
  return _prf("f", predictions, labels, beta=beta, num_classes=num_classes, classes=classes,
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
             classes: Sequence[int] | None = None,
             average: Average = "binary", pos_label: int = 1,
             weights: ArrayLike | None = None, where: ArrayLike | None = None,
             zero_division: float | str = "warn") -> jax.Array:
  return _prf("f", predictions, labels, beta=1.0, num_classes=num_classes, classes=classes,
              average=average, pos_label=pos_label, weights=weights, where=where,
              zero_division=zero_division)


f1_score.__doc__ = _with_args("""F1 score, harmonic mean of precision and recall (``f1_score``).
{args}
  Examples:
    >>> f1_score(jnp.array([0, 2, 1, 2]), jnp.array([0, 1, 1, 2]), average="macro")
    Array(0.777..., dtype=float32)
""")


