"""Calibration metrics: Brier score, calibration curve, expected calibration error.

``brier_score`` equals ``sklearn.metrics.brier_score_loss`` and
``calibration_curve`` equals ``sklearn.calibration.calibration_curve``.
Probabilities are either ``(n,)``, the probability of class 1 of a binary
problem, or ``(n, C)``, one row of class probabilities per sample with
integer labels in ``[0, C)``. Every value is a ratio of global weighted sums
(per-bin sums via ``jax.ops.segment_sum``), so a sharded batch gives the value
of the whole batch.

Bins: ``n_bins`` equal-width bins on ``[0, 1]``, right-closed as scikit-learn's
``calibration_curve(strategy="uniform")``: bin ``b`` holds the values in
``(b / n_bins, (b + 1) / n_bins]`` and 0 falls in the first bin. The edges are
the exact real numbers ``b / n_bins``, compared exactly with float32 inputs
(a float32 probability lands in scikit-learn's float64 bin).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array, check_choice, check_rank, compute_dtype, concrete_values)
from lossreg_jax.metrics._common import (
    as_arrays, as_class_ids, check_binary, check_class_dtype, check_class_values, check_no_nan,
    concrete_included, divide, float_dtype, is_traced, row_weights, segment_sum)

__all__ = ["brier_score", "calibration_curve", "expected_calibration_error"]


def _check_n_bins(n_bins) -> int:
  if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
    raise TypeError(f"n_bins must be a static Python int, got {n_bins!r}.")
  if n_bins < 1:
    raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
  return int(n_bins)


def _inner_edges(n_bins: int, dtype) -> jax.Array:
  """The edges ``b / n_bins`` (``0 < b < n_bins``) in ``dtype``, rounded down.

  ``edge < p`` holds for a value ``p`` of ``dtype`` exactly when it holds for
  the float64 edge scikit-learn uses: rounding the edge down to ``dtype``
  cannot cross a value of ``dtype``. Rounding to nearest could (0.2 rounds up
  in float32, so a float32 0.2 would change bins).
  """
  exact = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
  np_dtype = np.dtype(dtype)
  rounded = exact.astype(np_dtype)
  rounded = np.where(rounded > exact, np.nextafter(rounded, np_dtype.type(-np.inf)), rounded)
  return jnp.asarray(rounded, dtype)


def _check_swapped(fn, probabilities, labels) -> None:
  """ValueError when the values show scikit-learn's order ``(y_true, y_prob)`` was used.

  Labels holding non-integral values in ``[0, 1]`` next to "probabilities"
  that are all 0 or 1 are probabilities and labels passed the other way round.
  """
  p, y = concrete_values(probabilities), concrete_values(labels)
  if p is None or y is None or not p.size or not y.size:
    return
  if p.dtype.kind not in "biuf" or y.dtype.kind != "f":
    return
  with np.errstate(invalid="ignore"):
    y_like_prob = (np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()
                   and (y != np.round(y)).any())
    p_like_labels = np.isin(p, (0, 1)).all()
  if y_like_prob and p_like_labels:
    sk = {"brier_score": "brier_score_loss(y_true, y_proba)",
          "calibration_curve": "calibration_curve(y_true, y_prob)"}.get(fn, "(y_true, y_prob)")
    raise ValueError(
        f"{fn} got labels with values between 0 and 1 (e.g. {y[y != np.round(y)][0]}) and "
        f"probabilities that are all 0 or 1: the arguments look swapped. The order here is "
        f"{fn}(probabilities, labels), predictions first (optax's); scikit-learn's is "
        f"{sk}. Pass them in our order, or by scikit-learn's keywords "
        f"{fn}(y_true=..., y_prob=...)."
    )


def _check_probabilities(fn, probabilities, labels, where):
  """Shapes and dtypes at trace time; values (range, NaN, classes) when concrete.

  Returns ``labels`` as integers (concrete integral floats are accepted).
  """
  _check_swapped(fn, probabilities, labels)
  p = as_float_array("probabilities", probabilities)
  y = labels if is_traced(labels) else np.asarray(labels)
  check_rank("probabilities", p, (1, 2))
  check_class_dtype("labels", y)
  if y.shape != p.shape[:1]:
    raise ValueError(
        f"labels must have shape ({p.shape[0]},) (one per row of probabilities), "
        f"got labels.shape={y.shape} with probabilities.shape={p.shape}."
    )
  pv = concrete_included(probabilities, where, p.shape[0])
  lv = concrete_included(labels, where, p.shape[0])
  check_no_nan("probabilities", pv, fn)
  check_class_values("labels", lv)
  if pv is not None and pv.size and (pv.min() < 0 or pv.max() > 1):
    raise ValueError(
        f"{fn} needs probabilities in [0, 1], got values in [{pv.min()}, {pv.max()}]."
    )
  if p.ndim == 1:
    check_binary("labels", lv, f"{fn} with probabilities of shape (n,)")
  elif lv is not None and lv.size and (lv.min() < 0 or lv.max() >= p.shape[1]):
    raise ValueError(
        f"labels must be class indices in [0, {p.shape[1]}) for probabilities of "
        f"shape {p.shape}, got values in [{lv.min()}, {lv.max()}]."
    )
  return as_class_ids(labels)


def _dtype(probabilities, weights):
  return jnp.promote_types(compute_dtype(probabilities.dtype), float_dtype(weights))


# --- Brier score ---


def brier_score(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """Brier score, as ``sklearn.metrics.brier_score_loss``.

  Binary (``probabilities`` of shape ``(n,)``, the probability of class 1):
  ``Σ w·(p − y)² / Σ w``. Multiclass (``(n, C)``): ``Σ w·Σ_c (p_c − [y = c])²
  / Σ w``, in ``[0, 2]``, as scikit-learn >= 1.7's multiclass
  ``brier_score_loss``; with ``C = 2`` it is halved as scikit-learn's
  ``scale_by_half="auto"`` does, so ``[1 − p, p]`` scores as ``p``. Rows need
  not sum to 1 (scikit-learn only warns).

  Args:
    probabilities: Floating probabilities, shape ``(n,)`` or ``(n, C)``.
    labels: Integer labels, shape ``(n,)``: 0/1 for ``(n,)`` probabilities,
      else class indices in ``[0, C)``.
    weights: Per-row weights, broadcastable to ``(n,)`` (``sample_weight``).
    where: Boolean mask broadcastable to ``(n,)``; excluded rows count for
      nothing.

  Returns:
    A scalar; 0 for an empty selection. Differentiable in ``probabilities``.

  Raises:
    TypeError: if ``probabilities`` is not floating or ``labels`` not numeric
      (or traced floating).
    ValueError: for shapes that do not match, concrete included
      probabilities outside ``[0, 1]`` / NaN, labels out of range, NaN or
      non-integral, or values that show the arguments swapped (scikit-learn's
      order: 0/1 "probabilities" and labels between 0 and 1).

  Examples:
    >>> brier_score(jnp.array([0.1, 0.9, 0.8, 0.3]), jnp.array([0, 1, 1, 0]))
    Array(0.0375, dtype=float32)
    >>> brier_score(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), jnp.array([0, 1]))
    Array(0.8, dtype=float32)
  """
  labels = _check_probabilities("brier_score", probabilities, labels, where)
  return _brier_score(*as_arrays(probabilities, labels, weights, where))


@jax.jit
def _brier_score(probabilities, labels, weights, where):
  dtype = _dtype(probabilities, weights)
  n = probabilities.shape[0]
  w, include = row_weights(weights, where, n, dtype)
  p = probabilities.astype(dtype)
  if include is not None:  # "double where": excluded rows give no NaN, even in gradients
    p = jnp.where(include.reshape((n,) + (1,) * (p.ndim - 1)), p, 0)
  if p.ndim == 1:
    per_row = jnp.square(p - labels.astype(dtype))
  else:
    onehot = jax.nn.one_hot(labels, p.shape[1], dtype=dtype)
    per_row = jnp.sum(jnp.square(p - onehot), axis=1)
    if p.shape[1] == 2:
      per_row = per_row / 2
  return divide(jnp.sum(w * per_row), jnp.sum(w), 0.0, dtype)


# --- Calibration curve ---


def calibration_curve(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 5,
    strategy: Literal["uniform", "quantile"] = "uniform",
    where: ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Reliability diagram points, as ``sklearn.calibration.calibration_curve``.

  Bins the probabilities of class 1; per non-empty bin, the fraction of
  positives and the mean probability.

  Args:
    probabilities: Floating probabilities of class 1, shape ``(n,)``.
    labels: 0/1 labels, shape ``(n,)``.
    n_bins: Number of bins, a static int ``>= 1``.
    strategy: ``"uniform"`` (equal-width bins on ``[0, 1]``, right-closed, see
      the module docstring) or ``"quantile"`` (edges at the
      ``linspace(0, 100, n_bins + 1)`` percentiles of the included
      probabilities, linear interpolation as ``np.percentile``).
    where: Boolean mask, shape ``(n,)``; excluded rows are not binned (and do
      not move the quantile edges). scikit-learn has no ``sample_weight`` here,
      and neither has this function.

  Returns:
    ``(prob_true, prob_pred)``. With concrete inputs, one entry per non-empty
    bin, in bin order, equal to scikit-learn's. Inside ``jit`` / ``vmap``
    (any trace) both have shape ``(n_bins,)`` with NaN for empty bins
    (``jnp.isnan(prob_true)`` marks them), so the points stay aligned with the
    bins.

  Raises:
    TypeError: if ``probabilities`` is not floating or ``labels`` not numeric
      (or traced floating).
    ValueError: for a bad ``n_bins`` or ``strategy``, shapes that do not
      match, concrete included probabilities outside ``[0, 1]`` / NaN or
      non-0/1 labels, or values that show the arguments swapped.

  Examples:
    >>> prob_true, prob_pred = calibration_curve(
    ...     jnp.array([0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1.0]),
    ...     jnp.array([0, 0, 0, 0, 1, 1, 1, 1, 1]), n_bins=3)
    >>> prob_true
    Array([0. , 0.5, 1. ], dtype=float32)
    >>> prob_pred
    Array([0.2  , 0.525, 0.85 ], dtype=float32)
  """
  n_bins = _check_n_bins(n_bins)
  check_choice("strategy", strategy, ("uniform", "quantile"))
  check_rank("probabilities", jnp.asarray(probabilities), 1)
  labels = _check_probabilities("calibration_curve", probabilities, labels, where)
  prob_true, prob_pred, counts = _calibration_curve(
      *as_arrays(probabilities, labels, where), n_bins=n_bins, strategy=strategy)
  if is_traced(counts, probabilities, labels, where):  # counts: traced in any trace
    return prob_true, prob_pred
  nonempty = np.asarray(counts) > 0
  return prob_true[nonempty], prob_pred[nonempty]


@partial(jax.jit, static_argnames=("n_bins", "strategy"))
def _calibration_curve(probabilities, labels, where, *, n_bins, strategy):
  dtype = _dtype(probabilities, None)
  p = probabilities.astype(dtype)
  n = p.shape[0]
  count, include = row_weights(None, where, n, dtype)
  if include is not None:
    p = jnp.where(include, p, 0)
  if strategy == "uniform":
    edges = _inner_edges(n_bins, p.dtype)
  else:
    # Percentiles of the included rows only: excluded ones are NaN and ignored.
    masked = p if include is None else jnp.where(include, p, jnp.nan)
    edges = jnp.nanpercentile(masked, jnp.linspace(0, 100, n_bins + 1)[1:-1])
  bins = jnp.searchsorted(edges, p, side="left")
  total = segment_sum(count, bins, n_bins)
  true = segment_sum(count * labels.astype(dtype), bins, n_bins)
  pred = segment_sum(count * p, bins, n_bins)
  nan = jnp.asarray(jnp.nan, dtype)
  return divide(true, total, nan, dtype), divide(pred, total, nan, dtype), total


# --- Expected calibration error ---


def expected_calibration_error(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 10,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
  """Binned top-label expected calibration error (L1), as Guo et al. (2017).

  Each row's confidence is its largest class probability and it is correct
  when that class (the first one on ties, as ``argmax``) is the label. With
  equal-width right-closed bins on ``[0, 1]`` (module docstring) and ``w_b``
  the weight of the rows in bin ``b`` out of ``W``:
  ``ECE = Σ_b (w_b / W)·|acc_b − conf_b|`` with ``acc_b`` and ``conf_b`` the
  weighted accuracy and mean confidence in the bin; empty bins add nothing.
  Binary probabilities ``p`` of shape ``(n,)`` are the two-class case
  ``[1 − p, p]``: confidence ``max(p, 1 − p)``, predicted class 1 iff
  ``p > 0.5``.

  Args:
    probabilities: Floating probabilities, shape ``(n,)`` (class 1) or
      ``(n, C)``.
    labels: Integer labels, shape ``(n,)`` (0/1 for ``(n,)`` probabilities).
    n_bins: Number of bins, a static int ``>= 1``.
    weights: Per-row weights, broadcastable to ``(n,)``.
    where: Boolean mask broadcastable to ``(n,)``; excluded rows count for
      nothing.

  Returns:
    A scalar in ``[0, 1]``; 0 for an empty selection.

  Raises:
    TypeError: if ``probabilities`` is not floating, ``labels`` not numeric
      (or traced floating) or ``n_bins`` not an int.
    ValueError: for ``n_bins < 1``, shapes that do not match, concrete
      included probabilities outside ``[0, 1]`` / NaN, labels out of range or
      non-integral, or values that show the arguments swapped.

  Examples:
    >>> expected_calibration_error(jnp.array([0.95, 0.85, 0.25, 0.55]),
    ...                            jnp.array([1, 1, 0, 0]), n_bins=5)
    Array(0.25, dtype=float32)

  References:
    Guo, Pleiss, Sun & Weinberger (2017), On calibration of modern neural
    networks; Naeini, Cooper & Hauskrecht (2015).
  """
  n_bins = _check_n_bins(n_bins)
  labels = _check_probabilities("expected_calibration_error", probabilities, labels, where)
  return _expected_calibration_error(*as_arrays(probabilities, labels, weights, where),
                                     n_bins=n_bins)


@partial(jax.jit, static_argnames=("n_bins",))
def _expected_calibration_error(probabilities, labels, weights, where, *, n_bins):
  dtype = _dtype(probabilities, weights)
  n = probabilities.shape[0]
  w, include = row_weights(weights, where, n, dtype)
  p = probabilities.astype(dtype)
  if p.ndim == 1:
    p = jnp.stack([1 - p, p], axis=1)
  if include is not None:
    p = jnp.where(include[:, None], p, 0)
  confidence = jnp.max(p, axis=1)
  correct = (jnp.argmax(p, axis=1) == labels.astype(jnp.int32)).astype(dtype)
  bins = jnp.searchsorted(_inner_edges(n_bins, dtype), confidence, side="left")
  # Σ_b (w_b / W)|acc_b − conf_b| = Σ_b |Σ_{i in b} w_i (correct_i − conf_i)| / W.
  gaps = segment_sum(w * (correct - confidence), bins, n_bins)
  return divide(jnp.sum(jnp.abs(gaps)), jnp.sum(w), 0.0, dtype)
