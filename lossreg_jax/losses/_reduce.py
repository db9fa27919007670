"""The weights / where / reduction contract, written once for every loss.

Every loss computes an elementwise loss and returns
``reduce_loss(loss, weights=weights, where=where, reduction=reduction,
dtype=input_dtype)``. The contract:

* **Weights and masks align with the leading (sample) axes first.** A
  ``weights`` (or ``where``) shape that is a prefix of the elementwise loss
  shape, such as Keras' per-sample ``sample_weight`` of shape ``(N,)`` on an
  ``(N, d)`` or ``(N, N)`` loss, weights whole samples: it is indexed by the
  leading axes and repeated along the trailing ones. Any other shape (e.g.
  ``(d,)`` per column, ``(N, 1)``, a scalar) broadcasts as NumPy does, from the
  right. A shape that fits neither way raises a ``ValueError`` naming both
  shapes. So an ``(N,)`` weight never silently weights the columns of an
  ``(N, N)`` loss: write ``weights[None, :]`` for that.
* **Half precision never overflows before the reduction.** Losses compute in
  float32 for float16 / bfloat16 inputs and hand the float32 elementwise loss
  here with ``dtype=`` the input dtype; the weights are cast to float32 too, and
  only the reduced value (or, for ``reduction="none"``, the weighted
  elementwise loss) is cast back. ``squared_error`` of float16 ``[300, 0]``
  against zeros is 45000 (its mean) although ``300² = 90000`` is no float16.
* ``where`` excludes entries: they contribute exactly 0, and the losses
  ``sanitize`` their inputs first so that the gradient there is 0, not NaN.
* ``reduction``: ``"none"``, ``"sum"``, ``"mean"`` (sum / number of included
  entries) or ``"weighted_mean"`` (sum / included weight). An empty selection
  reduces to 0.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array,
    check_choice,
    check_number,
    check_same_shape,
    compute_dtype,
    concrete_values,
)

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
        f"{name} must have a prefix of the elementwise loss shape {shape} (one "
        f"value per sample, aligned with the leading axes) or be broadcastable "
        f"to it, got {name}.shape={x.shape}."
    ) from None


def align_leading(name: str, x: ArrayLike, shape: tuple[int, ...]) -> jax.Array:
  """``x`` broadcast to ``shape``, a prefix of ``shape`` aligning with its leading axes.

  ``x.shape == shape[:x.ndim]`` (e.g. per-sample weights ``(N,)`` on an ``(N, d)``
  or ``(N, N)`` loss) is indexed by the leading axes and repeated along the
  others, as Keras' ``sample_weight``; any other shape broadcasts as NumPy does.

  Raises:
    ValueError: naming ``name`` and both shapes if ``x`` fits neither way.
  """
  x = jnp.asarray(x)
  if 0 < x.ndim < len(shape) and x.shape == tuple(shape[: x.ndim]):
    x = x.reshape(x.shape + (1,) * (len(shape) - x.ndim))
  return _broadcast_arg(name, x, shape)


def broadcast_where(where: ArrayLike | None, shape: tuple[int, ...]) -> jax.Array | None:
  """Returns ``where`` as a boolean array of ``shape`` (``None`` stays ``None``).

  A ``where`` whose shape is a prefix of ``shape`` aligns with the leading axes
  (see :func:`align_leading`); other shapes broadcast as NumPy does.
  """
  if where is None:
    return None
  where = jnp.asarray(where)
  if where.dtype != jnp.bool_:
    raise TypeError(f"where must be a boolean mask, got dtype {where.dtype}.")
  return align_leading("where", where, shape)


def sanitize(x: jax.Array, where: ArrayLike | None, fill: ArrayLike) -> jax.Array:
  """Replaces excluded entries of ``x`` by ``fill`` before a loss is computed.

  The "double where" trick: masking only the loss leaves NaN or inf in the
  backward pass of excluded entries (0 * inf = NaN), so inputs are made safe
  first. ``where`` must broadcast to ``x``.
  """
  if where is None:
    return x
  return jnp.where(broadcast_where(where, x.shape), x, jnp.asarray(fill, x.dtype))


def check_unit_interval(name: str, x: ArrayLike, where: ArrayLike | None) -> None:
  """Raises ``ValueError`` for a concrete included entry of ``x`` outside ``[0, 1]``.

  For labels and probabilities of the binary losses: a label of 2 or −1 (or
  NaN) would otherwise give a loss that is negative, unbounded below or NaN
  without a word. Entries excluded by ``where`` may hold anything. Traced
  values (under ``jit``) cannot be inspected and pass, as do arrays whose
  ``where`` is traced. NumPy only: a ``jnp`` op on a concrete array captured
  inside a ``jit`` would be traced.
  """
  values = concrete_values(x)
  if values is None or values.size == 0:
    return
  values = values.astype(np.float64)
  with np.errstate(invalid="ignore"):
    bad = ~((values >= 0) & (values <= 1))  # NaN is bad too
  if where is not None:
    mask = concrete_values(where)
    if mask is None:
      return
    if 0 < mask.ndim < values.ndim and mask.shape == values.shape[: mask.ndim]:
      mask = mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim))
    try:
      bad &= np.broadcast_to(mask, values.shape).astype(bool)
    except ValueError:
      return  # the reduction names the bad shape of where
  if np.any(bad):
    index = [int(i) for i in np.argwhere(bad)[0]]
    raise ValueError(
        f"{name} must be in [0, 1], got {name}{index}={values[bad].flat[0]:g} "
        f"({int(bad.sum())} of {values.size} outside [0, 1])."
    )


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
    dtype: jnp.dtype | None = None,
) -> jax.Array:
  """Applies weights, the mask and the reduction to an elementwise loss.

  Args:
    loss: Elementwise loss, shape ``[...]``; for half-precision inputs, the
      float32 loss (see ``dtype``).
    weights: Per-sample or per-element weights: a prefix of ``loss.shape``
      aligns with the leading axes, any other shape broadcasts as NumPy does.
    where: Boolean mask, aligned as ``weights``; excluded entries contribute
      exactly 0.
    reduction: ``"none"`` (weighted elementwise loss, 0 where excluded),
      ``"sum"``, ``"mean"`` (sum / number of included entries) or
      ``"weighted_mean"`` (sum / total included weight).
    dtype: The dtype of the result (the loss's inputs' dtype); default
      ``loss.dtype``. Weights and sums are in at least float32 and only the
      result is cast to it, so a half-precision mean does not overflow where
      an elementwise loss or a weight would.

  Returns:
    ``loss.shape`` for ``"none"``, else a scalar, of ``dtype``. An empty
    selection reduces to 0.
  """
  check_choice("reduction", reduction, REDUCTIONS)
  if weights is not None:
    check_number("weights", weights)  # not '1' or True (read as a weight of 1)
  shape = loss.shape
  out_dtype = jnp.dtype(loss.dtype if dtype is None else dtype)
  acc = compute_dtype(loss.dtype)  # half precision weighs and sums in float32
  if jnp.dtype(compute_dtype(out_dtype)).itemsize > acc.itemsize:
    acc = compute_dtype(out_dtype)
  loss = loss.astype(acc)
  if weights is not None:
    weights = align_leading("weights", jnp.asarray(weights), shape).astype(acc)
    loss = loss * weights
  mask = broadcast_where(where, shape)
  if mask is not None:
    loss = jnp.where(mask, loss, jnp.zeros((), acc))
  if reduction == "none":
    return loss.astype(out_dtype)
  total = jnp.sum(loss)
  if reduction == "sum":
    return total.astype(out_dtype)
  if reduction == "mean":
    count = jnp.sum(mask, dtype=acc) if mask is not None else jnp.asarray(loss.size, acc)
    return _safe_divide(total, count).astype(out_dtype)
  # weighted_mean
  w = weights if weights is not None else jnp.ones(shape, acc)
  if mask is not None:
    w = jnp.where(mask, w, jnp.zeros((), acc))
  return _safe_divide(total, jnp.sum(w)).astype(out_dtype)
