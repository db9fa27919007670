"""Private geometry of box pairs shared by the box losses and the IoU functions.

Everything here works on broadcastable ``[..., 4]`` arrays, so the matched losses
(``pred[i]`` against ``target[i]``) and the pairwise matrix (``a[:, None]``
against ``b[None, :]``) share one implementation of the two rules below.

* The empty-box rule. A box whose width (or height) is negative is empty: it
  is replaced by the zero-width (zero-height) box at its own center before
  anything is measured, so its area and every intersection with it are 0 and
  the enclosing box only sees its center. Without the rule an inverted box
  ``(2, 2, 0, 0)`` has a positive "area" 4 and a GIoU loss of -3.
* Scale. Every length of a pair is divided by the pair's size ``s`` (the
  largest side of their enclosing box, or of an inversion) before areas and
  squares are formed, so the measured quantities are at most 1: coordinates
  of 1e20 (areas 1e40, past float32's 3.4e38) stay finite, and so do tiny
  boxes (areas 1e-40, float32 subnormals). IoU, GIoU, DIoU and CIoU are ratios
  of areas or of squared lengths, invariant under scaling, so dividing by ``s``
  changes nothing but the relative size of ``eps``. ``s`` is a
  ``jax.lax.stop_gradient``: the loss does not depend on it, and a constant
  keeps the first and second derivatives simple and finite.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossreg_jax._validation import check_choice, concrete_values

BOX_FORMATS: tuple[str, ...] = ("xyxy", "xywh", "cxcywh")

__all__: list[str] = []


def check_boxes(name: str, boxes: jax.Array) -> None:
  """Raises ``ValueError`` unless ``boxes`` has shape ``[..., 4]``."""
  if boxes.ndim < 1 or boxes.shape[-1] != 4:
    raise ValueError(
        f"{name} must have shape [..., 4] (four coordinates on the last axis), got "
        f"{name}.shape={boxes.shape}."
    )


def convert(boxes: jax.Array, in_format: str, out_format: str) -> jax.Array:
  """Converts ``[..., 4]`` boxes between the three formats (plain arithmetic)."""
  check_choice("in_format", in_format, BOX_FORMATS)
  check_choice("out_format", out_format, BOX_FORMATS)
  if in_format == out_format:
    return boxes
  a, b, c, d = (boxes[..., i] for i in range(4))
  # Through xyxy. Halves are taken before sums (0.5 * x1 + 0.5 * x2), so that
  # coordinates near the largest float cannot overflow.
  if in_format == "xywh":
    a, b, c, d = a, b, a + c, b + d
  elif in_format == "cxcywh":
    a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
  if out_format == "xywh":
    a, b, c, d = a, b, c - a, d - b
  elif out_format == "cxcywh":
    a, b, c, d = a / 2 + c / 2, b / 2 + d / 2, c - a, d - b
  return jnp.stack((a, b, c, d), axis=-1)


def check_not_inverted(name: str, xyxy: jax.Array, mask: jax.Array | None) -> None:
  """Raises ``ValueError`` for concrete boxes of negative width or height.

  Traced boxes (inside ``jit``) cannot be checked; they follow the empty-box
  rule. Boxes excluded by a concrete ``mask`` are not checked.
  """
  values = concrete_values(xyxy)
  if values is None:
    return
  inverted = (values[..., 2] < values[..., 0]) | (values[..., 3] < values[..., 1])
  if mask is not None:
    mask_values = concrete_values(mask)
    if mask_values is None:
      return
    inverted = inverted & mask_values
  if inverted.any():
    first = tuple(int(i[0]) for i in inverted.nonzero())
    raise ValueError(
        f"{name} must have x_max >= x_min and y_max >= y_min (a valid box); "
        f"{name}[{', '.join(map(str, first))}] is {values[first].tolist()} in xyxy "
        f"({int(inverted.sum())} inverted box(es)). Predicted boxes may be inverted "
        "(they count as empty); target boxes may not."
    )


def upcast(x: jax.Array, dtype) -> jax.Array:
  """``x.astype(dtype)``; from half precision, with a gradient that saturates.

  Half-precision boxes are measured in float32. Their gradients are cast back
  to float16 and can exceed its range (65504) near degenerate pairs, where the
  loss does change that fast (``1 / width`` for a box of width 1e-5, ``1 / eps``
  on a zero-area pair): a plain cast would give inf. They saturate at the
  largest finite value instead, keeping the sign. This needs a
  ``jax.custom_vjp``, which has no forward mode, so it is used only when the
  dtype changes: float32 / float64 boxes keep ``jax.jvp`` and ``jax.jacfwd``.
  """
  if jnp.dtype(x.dtype) == jnp.dtype(dtype):
    return x
  return _saturating_cast(x, jnp.dtype(dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _saturating_cast(x: jax.Array, dtype) -> jax.Array:
  return x.astype(dtype)


def _saturating_cast_fwd(x, dtype):
  return x.astype(dtype), jnp.zeros((0,), x.dtype)


def _saturating_cast_bwd(dtype, like, ct):
  big = float(jnp.finfo(like.dtype).max)
  return (jnp.clip(ct, -big, big).astype(like.dtype),)


_saturating_cast.defvjp(_saturating_cast_fwd, _saturating_cast_bwd)


class PairGeometry(NamedTuple):
  """Lengths and areas of box pairs, each divided by the pair's scale ``s``."""

  inter: jax.Array  # intersection area
  union: jax.Array  # union area
  enclosing_w: jax.Array  # smallest box enclosing both
  enclosing_h: jax.Array
  dx: jax.Array  # pred center - target center
  dy: jax.Array
  pred_w: jax.Array  # clipped at 0 (the empty-box rule)
  pred_h: jax.Array
  target_w: jax.Array
  target_h: jax.Array
  inversion: jax.Array  # max(-pred width, 0) + max(-pred height, 0)


def _axis(lo: jax.Array, hi: jax.Array):
  """One axis of a box: (collapsed lo, collapsed hi, center, width >= 0, inversion >= 0)."""
  center = lo / 2 + hi / 2
  width = hi - lo
  valid = width >= 0
  # The empty-box rule: an inverted extent becomes the point at its center.
  lo = jnp.where(valid, lo, center)
  hi = jnp.where(valid, hi, center)
  return lo, hi, center, jnp.maximum(width, 0), jnp.maximum(-width, 0)


def pair_geometry(pred: jax.Array, target: jax.Array) -> PairGeometry:
  """Measures broadcastable xyxy boxes ``pred`` and ``target`` (see the module doc)."""
  px1, px2, pcx, pw, p_inv_w = _axis(pred[..., 0], pred[..., 2])
  py1, py2, pcy, ph, p_inv_h = _axis(pred[..., 1], pred[..., 3])
  tx1, tx2, tcx, tw, _ = _axis(target[..., 0], target[..., 2])
  ty1, ty2, tcy, th, _ = _axis(target[..., 1], target[..., 3])
  inter_w = jnp.maximum(jnp.minimum(px2, tx2) - jnp.maximum(px1, tx1), 0)
  inter_h = jnp.maximum(jnp.minimum(py2, ty2) - jnp.maximum(py1, ty1), 0)
  enclosing_w = jnp.maximum(px2, tx2) - jnp.minimum(px1, tx1)
  enclosing_h = jnp.maximum(py2, ty2) - jnp.minimum(py1, ty1)
  # The pair's scale: a constant (stop_gradient) that makes every length <= 1.
  s = jnp.maximum(jnp.maximum(enclosing_w, enclosing_h), jnp.maximum(p_inv_w, p_inv_h))
  s = jax.lax.stop_gradient(s)
  s = jnp.where((s > 0) & jnp.isfinite(s), s, jnp.ones((), s.dtype))  # equal points: no scale
  n = lambda x: x / s
  inter_w, inter_h, pw, ph, tw, th = map(n, (inter_w, inter_h, pw, ph, tw, th))
  inter = inter_w * inter_h
  return PairGeometry(
      inter=inter,
      union=pw * ph + tw * th - inter,
      enclosing_w=n(enclosing_w),
      enclosing_h=n(enclosing_h),
      dx=n(pcx - tcx),
      dy=n(pcy - tcy),
      pred_w=pw,
      pred_h=ph,
      target_w=tw,
      target_h=th,
      inversion=n(p_inv_w + p_inv_h),
  )
