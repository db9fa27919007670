"""Regression losses: squared, absolute, Huber, smooth L1, log-cosh, quantile, asymmetric.

Every loss computes an elementwise loss of ``predictions`` and ``targets`` (same
shape) and hands it to the one ``weights`` / ``where`` / ``reduction`` contract
of :func:`lossreg_jax.losses._reduce.reduce_loss`. Half-precision inputs
(float16, bfloat16) are computed in float32 and the elementwise loss is cast
back to the input dtype; XLA fuses the converts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import check_in_range, compute_dtype
from lossreg_jax.losses._reduce import Reduction, check_pair, reduce_loss, sanitize

__all__ = [
    "squared_error",
    "absolute_error",
    "huber_loss",
    "smooth_l1_loss",
    "log_cosh",
    "quantile_loss",
    "asymmetric_squared_error",
]


def _upcast(*arrays: jax.Array) -> tuple[jax.Array, ...]:
  """Casts half-precision arrays to float32 (the dtype of the first array decides)."""
  dtype = compute_dtype(arrays[0].dtype)
  return tuple(a.astype(dtype) for a in arrays)


def _errors(
    predictions: ArrayLike, targets: ArrayLike, where: ArrayLike | None
) -> tuple[jax.Array, jnp.dtype]:
  """Checks the pair, makes excluded entries safe and returns ``(p - t, dtype)``."""
  predictions, targets = check_pair("predictions", predictions, "targets", targets)
  dtype = predictions.dtype
  # Excluded entries may hold NaN/inf: replace them before any arithmetic so
  # their (discarded) gradient stays finite.
  predictions = sanitize(predictions, where, 0)
  targets = sanitize(targets, where, 0)
  predictions, targets = _upcast(predictions, targets)
  return predictions - targets, dtype


def squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Squared error ``(predictions - targets)²``.

  With ``reduction="none"`` it equals ``optax.losses.squared_error``; the mean is
  the mean squared error.

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``; excluded entries
      contribute 0 and no NaN gradient.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ or ``reduction`` is unknown.

  Examples:
    >>> squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
    Array(2.5, dtype=float32)
  """
  err, dtype = _errors(predictions, targets, where)
  loss = jnp.square(err)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def absolute_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Absolute error ``|predictions - targets|``; its mean is the MAE.

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ.

  Examples:
    >>> absolute_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
    Array(1.5, dtype=float32)
  """
  err, dtype = _errors(predictions, targets, where)
  loss = jnp.abs(err)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def _huber(err: jax.Array, delta: jax.Array) -> jax.Array:
  abs_err = jnp.abs(err)
  # One select (no min/max pair): the same values as optax's form, fused by XLA
  # into a single loop; at |err| == delta both pieces have slope delta.
  return jnp.where(
      abs_err <= delta, 0.5 * jnp.square(err), delta * (abs_err - 0.5 * delta)
  )


def huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    delta: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Huber loss: ``½e²`` for ``|e| ≤ delta``, ``delta·(|e| − ½delta)`` beyond.

  With ``reduction="none"`` it equals ``optax.losses.huber_loss``; the mean
  equals ``torch.nn.functional.huber_loss(delta=delta)``.

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    delta: Positive threshold between the quadratic and linear parts.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ or ``delta <= 0``.

  Examples:
    >>> huber_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]))
    Array(1.3125, dtype=float32)

  References:
    Huber, "Robust Estimation of a Location Parameter", 1964.
  """
  check_in_range("delta", delta, 0, None, low_inclusive=False)
  err, dtype = _errors(predictions, targets, where)
  loss = _huber(err, jnp.asarray(delta, err.dtype))
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def smooth_l1_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    beta: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Smooth L1 loss: ``½e²/beta`` for ``|e| < beta``, ``|e| − ½beta`` beyond.

  It is ``huber_loss(delta=beta) / beta`` and its mean equals
  ``torch.nn.functional.smooth_l1_loss(beta=beta)``.

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    beta: Positive threshold between the quadratic and linear parts.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ or ``beta <= 0``.

  Examples:
    >>> smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), beta=2.0)
    Array(1.03125, dtype=float32)

  References:
    Girshick, "Fast R-CNN", 2015.
  """
  check_in_range("beta", beta, 0, None, low_inclusive=False)
  err, dtype = _errors(predictions, targets, where)
  beta = jnp.asarray(beta, err.dtype)
  loss = _huber(err, beta) / beta
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def log_cosh(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Log-cosh loss ``log(cosh(predictions − targets))``.

  Computed as ``|e| + log1p(exp(−2|e|)) − log 2``, which never overflows (cosh
  itself overflows for ``|e| > 89`` in float32). With ``reduction="none"`` it
  equals ``optax.losses.log_cosh``.

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ.

  Examples:
    >>> log_cosh(jnp.array([1.0, 100.0]), jnp.array([0.0, 0.0]), reduction="none")
    Array([ 0.4337..., 99.3068...], dtype=float32)

  References:
    Chen et al., "Log Hyperbolic Cosine Loss Improves Variational
    Auto-Encoder", 2019.
  """
  err, dtype = _errors(predictions, targets, where)
  abs_err = jnp.abs(err)
  # cosh(e) = exp(|e|)·(1 + exp(−2|e|))/2: only a non-positive exponent is used.
  loss = abs_err + jnp.log1p(jnp.exp(-2 * abs_err)) - jnp.log(2.0).astype(err.dtype)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def quantile_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    quantile: float | ArrayLike = 0.5,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Quantile (pinball) loss ``max(q·(t − p), (q − 1)·(t − p))``.

  Under-prediction costs ``quantile`` per unit and over-prediction
  ``1 − quantile``; the mean equals scikit-learn's
  ``mean_pinball_loss(alpha=quantile)``. ``quantile=0.5`` is half the absolute
  error.

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    quantile: Target quantile in ``(0, 1)``.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ or ``quantile`` is outside ``(0, 1)``.

  Examples:
    >>> quantile_loss(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0]), quantile=0.9)
    Array(0.5, dtype=float32)

  References:
    Koenker and Bassett, "Regression Quantiles", 1978.
  """
  check_in_range("quantile", quantile, 0, 1, low_inclusive=False, high_inclusive=False)
  err, dtype = _errors(predictions, targets, where)
  q = jnp.asarray(quantile, err.dtype)
  # max(q·d, (q − 1)·d) with d = targets − predictions = −err, no negation.
  loss = jnp.maximum(-q * err, (1 - q) * err)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def asymmetric_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    under_weight: float | ArrayLike = 1.0,
    over_weight: float | ArrayLike = 0.1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Squared error weighted differently for under- and over-prediction.

  ``(targets − predictions)²`` is multiplied by ``under_weight`` where
  ``predictions < targets`` and by ``over_weight`` elsewhere. With the defaults,
  under-predicting costs ten times more (the seed's "financial" loss).

  Args:
    predictions: Floating predictions, shape ``[...]``.
    targets: Targets, same shape as ``predictions``.
    under_weight: Non-negative weight where ``predictions < targets``.
    over_weight: Non-negative weight where ``predictions >= targets``.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating, or ``weights`` or a
      hyperparameter is not a number (a string, ``True``).
    ValueError: if the shapes differ or a weight is negative.

  Examples:
    >>> asymmetric_squared_error(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0]))
    Array(0.55, dtype=float32)
  """
  check_in_range("under_weight", under_weight, 0, None)
  check_in_range("over_weight", over_weight, 0, None)
  err, dtype = _errors(predictions, targets, where)
  side = jnp.where(
      err < 0, jnp.asarray(under_weight, err.dtype), jnp.asarray(over_weight, err.dtype)
  )
  loss = side * jnp.square(err)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)
