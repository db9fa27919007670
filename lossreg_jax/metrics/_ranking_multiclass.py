"""Multiclass ROC AUC and average precision, and the checks ranking metrics share (private).

Scores shaped ``(n, C)`` with integer labels in ``[0, C)`` are multiclass.
Label ``c`` plays the role of scikit-learn's ``labels=range(C)``: column ``c``
of the scores belongs to class ``c``, whether or not the class occurs.

- One-vs-rest (``roc_auc(..., multi_class="ovr")`` and ``average_precision``):
  class ``c`` against the rest, scored by column ``c``: one binary metric per
  class, vmapped over the columns, then averaged (``macro``, ``weighted`` by
  class weight, ``micro`` over the flattened one-hot problem, or ``None``).
- One-vs-one (``multi_class="ovo"``, Hand & Till 2001): for each pair of
  classes ``a < b`` present among the included rows, the mean of the AUC of
  ``a`` against ``b`` on column ``a`` and of ``b`` against ``a`` on column
  ``b``. One sort per column gives, for every class ``j`` at once, the
  weight of class ``j`` below each score; the ``C × C`` Mann–Whitney sums
  follow (one column at a time under ``lax.map``: ``O(n·C)`` memory).

Every sum is a global weighted sum, so a sharded batch gives the value of the
whole batch.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from lossreg_jax._validation import as_float_array, concrete_values
from lossreg_jax.metrics._common import (
    check_class_dtype, check_no_nan, concrete_included, divide, float_dtype, row_weights,
    threshold_points)
from lossreg_jax.metrics._warnings import warn_undefined

AVERAGES = (None, "macro", "weighted", "micro")


# --- Checks shared with the binary metrics ---


def check_argument_order(fn: str, scores, labels) -> None:
  """Raises when the arguments look swapped: ``fn(y_true, y_score)`` in scikit-learn's order.

  Shapes (static, also under ``jit``): 1-D ``scores`` with 2-D ``labels`` of
  as many rows. Concrete values: ``labels`` holds non-integral values in
  ``[0, 1]`` (probabilities) while ``scores`` holds only 0 and 1 (labels).
  """
  s_shape, l_shape = jnp.shape(scores), jnp.shape(labels)
  swapped = (len(s_shape) == 1 and len(l_shape) == 2 and s_shape[0] == l_shape[0])
  seen = f"scores.shape={s_shape} and labels.shape={l_shape}"
  if not swapped:
    y = concrete_values(labels)
    if y is None or y.size == 0 or not jnp.issubdtype(y.dtype, jnp.floating):
      return  # integer or bool labels: nothing to suspect
    s = concrete_values(scores)
    if s is None:
      return
    y = y.astype(np.float64)
    y = y[np.isfinite(y)]
    swapped = (y.size and y.min() >= 0 and y.max() <= 1 and (y != np.round(y)).any()
               and np.isin(s, (0, 1)).all())
    seen = "labels holds non-integral values in [0, 1] and scores only 0 and 1"
  if swapped:
    raise ValueError(
        f"{fn}(scores, labels) takes the predictions first, but the arguments look "
        f"swapped ({seen}), as in scikit-learn's order (y_true, y_score). Call "
        f"{fn}(y_score, y_true), or use the keywords y_true= and y_score=."
    )


def check_finite(name: str, values: np.ndarray | None, fn: str) -> None:
  """NaN and ±inf in concrete included ``values`` are refused (scikit-learn refuses both)."""
  if values is None or not jnp.issubdtype(values.dtype, jnp.floating):
    return
  values = values.astype(np.float64)  # bfloat16 is no NumPy floating type
  check_no_nan(name, values, fn)
  bad = np.isinf(values)
  if bad.any():
    raise ValueError(
        f"{fn} got inf in {name} ({int(bad.sum())} of {values.size} included entries; "
        f"scikit-learn refuses infinite scores too); clip them, e.g. "
        f"jnp.clip({name}, -1e30, 1e30), or exclude those rows with where=."
    )


def is_multiclass(scores, labels) -> bool:
  """Scores shaped ``(n, C)`` with labels shaped ``(n,)`` (static shapes)."""
  s_shape, l_shape = jnp.shape(scores), jnp.shape(labels)
  return len(s_shape) == 2 and len(l_shape) == 1 and s_shape[0] == l_shape[0]


def check_multiclass(fn: str, scores, labels, where, *, probabilities: bool) -> int:
  """Dtypes and shapes; concrete values: finite scores, labels in ``[0, C)``, row sums.

  Returns the number of classes ``C``.
  """
  p = as_float_array("scores", scores)
  y = jnp.asarray(labels)
  check_class_dtype("labels", y)
  n, num_classes = p.shape
  if num_classes < 2:
    raise ValueError(
        f"{fn} needs scores of shape (n, C) with C >= 2 classes, got scores.shape={p.shape}."
    )
  sv = concrete_included(scores, where, n)
  lv = concrete_included(labels, where, n)
  check_finite("scores", sv, fn)
  if lv is not None and lv.size and (lv.min() < 0 or lv.max() >= num_classes):
    raise ValueError(
        f"labels must be class indices in [0, {num_classes}) for scores of shape "
        f"{p.shape}, got values in [{lv.min()}, {lv.max()}]."
    )
  if probabilities and sv is not None and sv.size:
    sums = sv.astype(np.float64).sum(axis=1)
    # scikit-learn's np.allclose(1, y_score.sum(axis=1)); half-precision rows
    # are allowed their own rounding.
    rtol = max(1e-5, float(jnp.finfo(p.dtype).eps))
    if not np.allclose(sums, 1.0, rtol=rtol, atol=1e-8):
      raise ValueError(
          f"{fn} needs scores that are probabilities for a multiclass ROC AUC (as "
          f"scikit-learn): each included row must sum to 1, got row sums in "
          f"[{sums.min():.6g}, {sums.max():.6g}]; apply jax.nn.softmax(logits, axis=-1) first."
      )
  return num_classes


def class_weights(labels, weights, where, num_classes: int) -> np.ndarray | None:
  """Total included weight of each class (NumPy ``(C,)``), or None when anything is traced."""
  y = concrete_values(labels)
  w = None if weights is None else concrete_values(weights)
  m = None if where is None else concrete_values(where)
  if y is None or (weights is not None and w is None) or (where is not None and m is None):
    return None
  w = np.ones(y.shape) if w is None else np.broadcast_to(w.astype(np.float64), y.shape)
  if m is not None:  # excluded rows may hold anything (NaN labels included)
    keep = np.broadcast_to(m, y.shape)
    y, w = y[keep], w[keep]
  return np.bincount(y.reshape(-1).astype(np.int64), weights=w.reshape(-1),
                     minlength=num_classes)[:num_classes]


# --- Binary building blocks (shared with ranking.py) ---


def mann_whitney(s, positive, w, dtype):
  """Twice the positive-over-negative weight of a ranking, and the pair weight.

  Each positive earns the negative weight scored strictly below it plus half
  the negative weight tied with it; the area under the ROC curve is
  ``twice_wins / (2 * pairs)``. One sort and two ``searchsorted`` calls.
  """
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
  return twice_wins, pairs


def precision_at(fps, tps):
  # tp / (tp + fp), 0 where nothing is predicted positive (scikit-learn).
  ps = tps + fps
  return jnp.where(ps != 0, tps / jnp.where(ps != 0, ps, 1), 0)


def ap_from_points(fps, tps, dtype):
  """``Σ_k (R_k − R_{k−1}) P_k`` from the (padded) cumulative counts; 0 without positives."""
  # Padding repeats the last point, so its gain is 0.
  gain = tps - jnp.concatenate([jnp.zeros(1, dtype), tps[:-1]])
  return jnp.maximum(divide(jnp.sum(gain * precision_at(fps, tps)), tps[-1], 0.0, dtype), 0)


# --- Multiclass cores ---


def _rows(scores, labels, weights, where):
  """Per-row weights (excluded rows 0), scores with excluded rows at 0, one-hot, NaN flag."""
  n, num_classes = scores.shape
  dtype = float_dtype(weights)
  w, include = row_weights(weights, where, n, dtype)
  bad = jnp.isnan(scores)
  if include is not None:
    bad = bad & include[:, None]
    scores = jnp.where(include[:, None], scores, jnp.zeros((), scores.dtype))
  classes = jnp.arange(num_classes, dtype=jnp.int32)
  onehot = labels.astype(jnp.int32)[:, None] == classes[None, :]
  return scores, onehot, w, jnp.any(bad), dtype


def _average(per_class, support, average, zd, dtype):
  """scikit-learn's ``_average_binary_score`` over classes; ``support`` weighs ``weighted``."""
  if average is None:
    return per_class
  if average == "macro":
    return jnp.mean(per_class)
  # "weighted": classes without support count 0 (scikit-learn forces them to 0,
  # so their undefined value cannot leak into the average).
  per_class = jnp.where(support > 0, per_class, 0)
  return divide(jnp.sum(per_class * support), jnp.sum(support), zd, dtype)


@partial(jax.jit, static_argnames=("average",))
def ovr_roc_auc(scores, labels, weights, where, zd, *, average):
  s, onehot, w, nan_found, dtype = _rows(scores, labels, weights, where)
  if average == "micro":
    num_classes = s.shape[1]
    twice, pairs = mann_whitney(s.reshape(-1), onehot.reshape(-1), jnp.repeat(w, num_classes),
                                dtype)
    auc = divide(twice, 2 * pairs, zd, dtype)
  else:
    twice, pairs = jax.vmap(mann_whitney, in_axes=(1, 1, None, None))(s, onehot, w, dtype)
    per_class = divide(twice, 2 * pairs, zd, dtype)
    support = jnp.sum(jnp.where(onehot, w[:, None], 0), axis=0)
    auc = _average(per_class, support, average, zd, dtype)
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), auc)


@partial(jax.jit, static_argnames=("average",))
def ovo_roc_auc(scores, labels, weights, where, zd, *, average):
  s, onehot, w, nan_found, dtype = _rows(scores, labels, weights, where)
  num_classes = s.shape[1]
  class_w = jnp.where(onehot, w[:, None], jnp.zeros((), dtype))  # (n, C)

  def column(i):
    # Column i ranks every row; below[k, j] is the weight of class j scored
    # below (lo) or at-or-below (hi) row k. Class-i rows earn them.
    order = jnp.argsort(s[:, i])
    s_sorted = s[:, i][order]
    cw = class_w[order]
    cum = jnp.concatenate([jnp.zeros((1, num_classes), dtype), jnp.cumsum(cw, axis=0)])
    lo = jnp.searchsorted(s_sorted, s_sorted, side="left")
    hi = jnp.searchsorted(s_sorted, s_sorted, side="right")
    # An elementwise product and a sum, not a matmul (TF32 on GPUs would round it).
    return jnp.sum(cw[:, i][:, None] * (cum[lo] + cum[hi]), axis=0)

  twice = jax.lax.map(column, jnp.arange(num_classes))  # twice[a, b]: a over b on column a
  total = jnp.sum(class_w, axis=0)
  pairs = total[:, None] * total[None, :]
  auc = divide(twice, 2 * pairs, 0.0, dtype)
  pair_auc = (auc + auc.T) / 2
  present = total > 0
  upper = jnp.arange(num_classes)[:, None] < jnp.arange(num_classes)[None, :]
  valid = upper & present[:, None] & present[None, :]
  # "weighted": each pair by its prevalence, the weight of its two classes
  # (scikit-learn: the share of rows in the pair; the total cancels).
  pair_w = (total[:, None] + total[None, :]) if average == "weighted" else jnp.ones_like(pairs)
  pair_w = jnp.where(valid, pair_w, 0)
  result = divide(jnp.sum(pair_w * pair_auc), jnp.sum(pair_w), zd, dtype)
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), result)


def _binary_ap(s, positive, w):
  _, fps, tps, _, _, dtype = threshold_points(s, positive.astype(jnp.int32), w, None)
  return ap_from_points(fps, tps, dtype)


@partial(jax.jit, static_argnames=("average",))
def multiclass_average_precision(scores, labels, weights, where, *, average):
  s, onehot, w, nan_found, dtype = _rows(scores, labels, weights, where)
  if average == "micro":
    ap = _binary_ap(s.reshape(-1), onehot.reshape(-1), jnp.repeat(w, s.shape[1]))
  else:
    per_class = jax.vmap(_binary_ap, in_axes=(1, 1, None))(s, onehot, w)
    support = jnp.sum(jnp.where(onehot, w[:, None], 0), axis=0)
    # scikit-learn returns 0 when no class has support.
    ap = _average(per_class.astype(dtype), support, average, 0.0, dtype)
  return jnp.where(nan_found, jnp.asarray(jnp.nan, dtype), ap)


# --- Eager warnings ---


def warn_roc_auc(totals: np.ndarray | None, multi_class: str, average, zd, *,
                 stacklevel: int = 4) -> None:
  """UndefinedMetricWarning where an AUC the result uses is undefined (concrete inputs)."""
  if totals is None:
    return
  everything = totals.sum()
  if multi_class == "ovo":
    if (totals > 0).sum() < 2:
      warn_undefined(
          f"Only one class is present in labels (among the included rows with nonzero "
          f"weight): one-vs-one ROC AUC is not defined; returning zero_division={zd} "
          f"(scikit-learn returns nan).", stacklevel=stacklevel)
    return
  undefined = (totals == 0) | (everything - totals == 0)
  if average == "micro":
    undefined = np.array([everything == 0])
  elif average == "weighted":
    undefined = undefined & ((totals > 0) | (everything == 0))
  if undefined.any():
    classes = np.flatnonzero(undefined).tolist() if average != "micro" else "all"
    warn_undefined(
        f"Only one class is present in labels for the one-vs-rest problem of classes "
        f"{classes} (no positive or no negative weight among the included rows): ROC AUC "
        f"is not defined there and counts as zero_division={zd} (scikit-learn: nan).",
        stacklevel=stacklevel)


def warn_average_precision(totals: np.ndarray | None, average) -> None:
  """UserWarning-compatible UndefinedMetricWarning for classes without positives."""
  if totals is None:
    return
  missing = np.array([totals.sum() == 0]) if average == "micro" else totals == 0
  if missing.any():
    classes = "all" if average == "micro" else np.flatnonzero(missing).tolist()
    warn_undefined(
        f"No positive class found in labels for classes {classes} (among the included "
        f"rows with nonzero weight): their average precision is 0, as in scikit-learn.",
        stacklevel=4)
