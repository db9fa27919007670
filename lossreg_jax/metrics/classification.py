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
from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import check_choice
from lossreg_jax.metrics._common import (
    as_arrays, check_binary, check_inputs, check_zero_division, divide, prepare,
    resolve_num_classes, segment_sum)

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
  return _accuracy(*as_arrays(predictions, labels, weights, where))


@jax.jit
def _accuracy(predictions, labels, weights, where):
  p, t, w, _, dtype = prepare(predictions, labels, weights, where)
  correct = jnp.sum(jnp.where(p == t, w, 0), dtype=dtype)
  return divide(correct, jnp.sum(w, dtype=dtype), 0.0, dtype)


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
  pv, tv = check_inputs("predictions", predictions, "labels", labels, where)
  c = resolve_num_classes(num_classes, pv, tv, "confusion_matrix")
  args = as_arrays(predictions, labels, weights, where)
  return _confusion_matrix(*args, c=c, normalize=normalize)


@partial(jax.jit, static_argnames=("c", "normalize"))
def _confusion_matrix(predictions, labels, weights, where, *, c, normalize):
  p, t, w, _, dtype = prepare(predictions, labels, weights, where)
  # Out-of-range ids (possible only for masked samples or traced bad input)
  # are sent past the end and dropped.
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


def _prf(metric, predictions, labels, *, beta=1.0, num_classes, average, pos_label,
         weights, where, zero_division):
  """Checks the static arguments and the concrete values, then runs ``_prf_all``."""
  check_choice("average", average, _AVERAGES)
  zd = check_zero_division(zero_division)
  if not (isinstance(beta, (int, float)) and beta >= 0):
    raise ValueError(f"beta must be a static float >= 0, got {beta!r}.")
  pv, tv = check_inputs("predictions", predictions, "labels", labels, where)
  c = None
  if average == "binary":
    if pos_label not in (0, 1):
      raise ValueError(f"pos_label must be 0 or 1 with average='binary', got {pos_label!r}.")
    for name, v in (("predictions", pv), ("labels", tv)):
      check_binary(name, v, "average='binary' (use 'micro', 'macro', 'weighted' or "
                    "None for multiclass inputs)")
  elif average != "micro":
    fn = {"precision": "precision", "recall": "recall", "f": "fbeta_score"}[metric]
    c = resolve_num_classes(num_classes, pv, tv, fn)
  # One compiled program per (average, classes) serves all three metrics.
  args = as_arrays(predictions, labels, weights, where)
  out = _prf_all(*args, zd, beta, average=average, c=c, pos_label=int(pos_label))
  return out[("precision", "recall", "f").index(metric)]


@partial(jax.jit, static_argnames=("average", "c", "pos_label"))
def _prf_all(predictions, labels, weights, where, zd, beta, *, average, c, pos_label):
  p, t, w, include, dtype = prepare(predictions, labels, weights, where)
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
  tp = segment_sum(jnp.where(p == t, w, 0), t, c)
  pred_sum = segment_sum(w, p, c)
  true_sum = segment_sum(w, t, c)
  per_class = _prf_from_sums(tp, pred_sum, true_sum, beta, zd, dtype)
  if average is None:
    return per_class
  # sklearn's default labels=None averages over the classes that occur in the
  # labels or predictions (weight 0 still counts as occurring; masked does not).
  inc = jnp.ones(p.shape, jnp.int32) if include is None else include.astype(jnp.int32)
  present = (segment_sum(inc, t, c) + segment_sum(inc, p, c)) > 0
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


