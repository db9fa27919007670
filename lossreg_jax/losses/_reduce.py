"""The weights / where / reduction contract, written once for every loss.

Every loss computes an elementwise loss and returns
``reduce_loss(loss, weights=weights, where=where, reduction=reduction)``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import as_float_array, check_choice, check_same_shape, compute_dtype

Reduction = Literal["none", "sum", "mean", "weighted_mean"]
REDUCTIONS: tuple[str, ...] = ("none", "sum", "mean", "weighted_mean")


def check_pair(
    name_a: str,
    a: ArrayLike,
    name_b: str,
    b: ArrayLike,
) -> tuple[jax.Array, jax.Array]:
  """Returns ``(a, b)`` as arrays of ``a``'s floating dtype and the same shape.

  ``a`` (predictions, logits, probabilities) must be floating; ``b`` (targets,
  labels) may be any real dtype and is cast to ``a``'s dtype.

  Raises:
    TypeError: if ``a`` is not floating.
    ValueError: if the shapes differ.
  """
  a = as_float_array(name_a, a)
  b = jnp.asarray(b)
  check_same_shape(name_a, a, name_b, b)
  return a, b.astype(a.dtype)


def _broadcast_arg(name: str, x: ArrayLike, shape: tuple[int, ...]) -> jax.Array:
  x = jnp.asarray(x)
  try:
    return jnp.broadcast_to(x, shape)
  except ValueError:
    raise ValueError(
        f"{name} must be broadcastable to the elementwise loss shape {shape}, "
        f"got {name}.shape={x.shape}."
    ) from None


def broadcast_where(where: ArrayLike | None, shape: tuple[int, ...]) -> jax.Array | None:
  """Returns ``where`` as a boolean array of ``shape`` (``None`` stays ``None``)."""
  if where is None:
    return None
  where = jnp.asarray(where)
  if where.dtype != jnp.bool_:
    raise TypeError(f"where must be a boolean mask, got dtype {where.dtype}.")
  return _broadcast_arg("where", where, shape)


def sanitize(x: jax.Array, where: ArrayLike | None, fill: ArrayLike) -> jax.Array:
  """Replaces excluded entries of ``x`` by ``fill`` before a loss is computed.

  The "double where" trick: masking only the loss leaves NaN or inf in the
  backward pass of excluded entries (0 * inf = NaN), so inputs are made safe
  first. ``where`` must broadcast to ``x``.
  """
  if where is None:
    return x
  return jnp.where(broadcast_where(where, x.shape), x, jnp.asarray(fill, x.dtype))


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
  # An empty selection has den == 0: return 0, and keep the unused branch of the
  # division finite so that its gradient is finite too.
  positive = den > 0
  return jnp.where(positive, num / jnp.where(positive, den, 1), 0)


def reduce_loss(
    loss: jax.Array,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Applies weights, the mask and the reduction to an elementwise loss.

  Args:
    loss: Elementwise loss, shape ``[...]``.
    weights: Broadcastable to ``loss``; per-sample or per-element weights.
    where: Boolean mask broadcastable to ``loss``; excluded entries contribute
      exactly 0.
    reduction: ``"none"`` (weighted elementwise loss, 0 where excluded),
      ``"sum"``, ``"mean"`` (sum / number of included entries) or
      ``"weighted_mean"`` (sum / total included weight).

  Returns:
    ``loss.shape`` for ``"none"``, else a scalar of ``loss.dtype``. An empty
    selection reduces to 0. Sums accumulate in at least float32.
  """
  check_choice("reduction", reduction, REDUCTIONS)
  shape = loss.shape
  dtype = loss.dtype
  if weights is not None:
    weights = _broadcast_arg("weights", jnp.asarray(weights).astype(dtype), shape)
    loss = loss * weights
  mask = broadcast_where(where, shape)
  if mask is not None:
    loss = jnp.where(mask, loss, jnp.zeros((), dtype))
  if reduction == "none":
    return loss
  acc = compute_dtype(dtype)  # half precision sums in float32
  total = jnp.sum(loss, dtype=acc)
  if reduction == "sum":
    return total.astype(dtype)
  if reduction == "mean":
    count = jnp.sum(mask, dtype=acc) if mask is not None else jnp.asarray(loss.size, acc)
    return _safe_divide(total, count).astype(dtype)
  # weighted_mean
  w = weights.astype(acc) if weights is not None else jnp.ones(shape, acc)
  if mask is not None:
    w = jnp.where(mask, w, 0)
  return _safe_divide(total, jnp.sum(w)).astype(dtype)
