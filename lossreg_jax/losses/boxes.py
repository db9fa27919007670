"""Bounding-box losses (IoU, GIoU, DIoU, CIoU), IoU matrices and format conversion.

Boxes have shape ``[..., 4]`` in one of three formats (``box_format``):

* ``"xyxy"``: ``(x_min, y_min, x_max, y_max)``;
* ``"xywh"``: ``(x_min, y_min, width, height)``;
* ``"cxcywh"``: ``(center_x, center_y, width, height)``.

The losses compare matched pairs of boxes elementwise and return one value per
box (shape ``[...]`` with ``reduction="none"``) as ``torchvision.ops``
computes them; then the shared weights / where / reduction contract applies.
float16 and bfloat16 boxes are computed in float32 and the result is cast back;
their gradients saturate at the dtype's largest value instead of overflowing,
and they are differentiable in reverse mode only (``jax.grad``, not ``jax.jvp``).

The box rule. A box with a negative width or height is *empty*: it has area 0,
IoU 0 with every box, and the enclosing box only sees its center (the geometry
is in ``_box_geometry.py``). Target boxes must be valid: concretely inverted
targets raise ``ValueError`` (traced ones, inside ``jit``, count as empty). An
inverted *predicted* box gets the loss of the empty box at its center plus a
bounded term that grows with the inversion, so every loss stays inside its
range and its gradient pushes the box back to a valid one (``iou_loss``, whose
empty-box value 1 is its maximum, is flat there, as for disjoint boxes).
Lengths are measured relative to each pair's size, so coordinates up to 1e20
(and down to 1e-20) give finite values, gradients and second derivatives.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array,
    check_choice,
    check_in_range,
    check_rank,
    check_same_shape,
    compute_dtype,
    standard_result_type,
)
from lossreg_jax.losses._box_geometry import (
    BOX_FORMATS,
    PairGeometry,
    check_boxes,
    check_not_inverted,
    convert,
    pair_geometry,
    upcast,
)
from lossreg_jax.losses._reduce import Reduction, broadcast_where, check_pair, reduce_loss, sanitize

__all__ = [
    "box_convert",
    "box_iou",
    "ciou_loss",
    "diou_loss",
    "giou_loss",
    "iou_loss",
    "matched_box_iou",
]

# A valid unit box put in place of excluded (``where=False``) boxes, so that their
# (discarded) losses and gradients are finite.
_SAFE_BOX = (0.0, 0.0, 1.0, 1.0)
# Suprema of the losses (their ranges are [0, max)); an inverted prediction's loss
# moves from the empty box's value towards these, never past them.
_GIOU_MAX = 2.0  # 1 - IoU + (C - U) / C < 2
_DIOU_MAX = 2.0  # 1 - IoU + d² / c² < 2
_CIOU_MAX = 2.5  # DIoU + α·v with α·v = v² / (1 - IoU + v) <= v² / (1 + v) <= 1/2 at IoU 0


def _prepare(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    box_format: str,
    eps: float,
    where: ArrayLike | None,
) -> tuple[PairGeometry, jnp.dtype]:
  """Validates a matched pair of box arrays; returns their geometry (float32+)."""
  check_choice("box_format", box_format, BOX_FORMATS)
  check_in_range("eps", eps, 0.0, low_inclusive=False)
  pred, target = check_pair("pred_boxes", pred_boxes, "target_boxes", target_boxes)
  check_boxes("pred_boxes", pred)
  check_boxes("target_boxes", target)
  dtype = pred.dtype
  compute = compute_dtype(dtype)  # half precision overflows in areas
  pred = convert(upcast(pred, compute), box_format, "xyxy")
  target = convert(upcast(target, compute), box_format, "xyxy")
  mask = broadcast_where(where, pred.shape[:-1])
  check_not_inverted("target_boxes", target, mask)
  if mask is not None:
    safe = jnp.asarray(_SAFE_BOX, compute)
    pred = sanitize(pred, mask[..., None], safe)
    target = sanitize(target, mask[..., None], safe)
  return pair_geometry(pred, target), dtype


def _iou(g: PairGeometry, eps: float) -> jax.Array:
  # eps keeps degenerate (zero-area) pairs finite: 0 / eps = 0, no 0 / 0.
  return g.inter / (g.union + eps)


def _diou(g: PairGeometry, iou: jax.Array, eps: float) -> jax.Array:
  """``1 - IoU + d² / c²`` as torchvision's ``_diou_iou_loss``."""
  # Squared distances only (no square root), so identical centers give finite
  # gradients; eps keeps the diagonal of a degenerate enclosing box positive.
  diagonal_sq = g.enclosing_w**2 + g.enclosing_h**2 + eps
  return 1 - iou + (g.dx**2 + g.dy**2) / diagonal_sq


def _inverted(loss: jax.Array, g: PairGeometry, eps: float, sup: float) -> jax.Array:
  """Moves an inverted prediction's loss from the empty box's value towards ``sup``.

  ``r = inversion / (target width + target height)`` (scale-free) and the loss
  becomes ``loss + (sup - loss) · r / (1 + r)``: equal to ``loss`` for valid
  boxes (r = 0, continuous at the boundary), below ``sup``, and increasing with
  the inversion, so the gradient widens the box back to a valid one.
  """
  r = g.inversion / (g.target_w + g.target_h + eps)
  return loss + (sup - loss) * (r / (1 + r))


def _finish(loss: jax.Array, dtype, weights, where, reduction) -> jax.Array:
  if reduction == "none":
    return reduce_loss(loss.astype(dtype), weights=weights, where=where, reduction=reduction)
  # Reduce in float32 (half-precision losses and weights would round first).
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction).astype(dtype)


def iou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """IoU loss ``1 - IoU`` of matched pairs of boxes.

  ``IoU = intersection / (union + eps)``; ``eps`` keeps zero-area boxes finite
  (their IoU is 0, with finite gradients). A predicted box with a negative
  width or height is empty (IoU 0, loss 1, the maximum): like a disjoint box it
  gets no gradient from this loss; ``giou_loss``, ``diou_loss`` and
  ``ciou_loss`` push it back to a valid box.

  Args:
    pred_boxes: Predicted boxes, shape ``[..., 4]``, floating.
    target_boxes: Target boxes, shape ``[..., 4]`` (same as ``pred_boxes``).
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"`` (see the module docstring).
    eps: Positive constant added to the union.
    weights: Broadcastable to ``[...]``; per-box weights.
    where: Boolean mask broadcastable to ``[...]``; excluded boxes contribute 0.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` (one value per box, in ``[0, 1]``) with
    ``reduction="none"``, else a scalar; the dtype of ``pred_boxes``.

  Raises:
    ValueError: for an unknown ``box_format``, a last axis that is not 4,
      mismatched shapes, or concrete target boxes of negative width or height.

  Examples:
    >>> import jax.numpy as jnp
    >>> pred = jnp.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    >>> target = jnp.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0]])
    >>> iou_loss(pred, target, reduction="none")
    Array([0.857..., 0.0...], dtype=float32)

  References:
    Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.
  """
  g, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  return _finish(1 - _iou(g, eps), dtype, weights, where, reduction)


def giou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Generalized IoU loss ``1 - GIoU`` of matched pairs of boxes.

  ``GIoU = IoU - (C - union) / (C + eps)`` with ``C`` the area of the smallest
  box enclosing both, as ``torchvision.ops.generalized_box_iou_loss``. It lies
  in ``[0, 2)`` and keeps a gradient for disjoint boxes (where ``1 - IoU`` is
  flat at 1). A predicted box with a negative width or height is empty: it
  gets the loss of the empty box at its center, in ``[1, 2)``, moved towards 2
  as the inversion grows (``+ (2 - loss) · r / (1 + r)`` with ``r`` the
  inversion over the target's width + height), so its gradient widens it back
  to a valid box.

  Args:
    pred_boxes: Predicted boxes, shape ``[..., 4]``, floating.
    target_boxes: Target boxes, shape ``[..., 4]`` (same as ``pred_boxes``).
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
    eps: Positive constant added to the denominators (finite degenerate boxes).
    weights: Broadcastable to ``[...]``; per-box weights.
    where: Boolean mask broadcastable to ``[...]``; excluded boxes contribute 0.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar; the dtype of
    ``pred_boxes``.

  Raises:
    ValueError: for an unknown ``box_format``, a last axis that is not 4,
      mismatched shapes, or concrete target boxes of negative width or height.

  Examples:
    >>> import jax.numpy as jnp
    >>> pred = jnp.array([[0.0, 0.0, 1.0, 1.0]])
    >>> target = jnp.array([[2.0, 0.0, 3.0, 1.0]])  # disjoint: IoU = 0
    >>> giou_loss(pred, target)
    Array(1.333..., dtype=float32)

  References:
    Rezatofighi et al., "Generalized Intersection over Union: A Metric and a
    Loss for Bounding Box Regression", CVPR 2019.
  """
  g, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  area_c = g.enclosing_w * g.enclosing_h
  loss = 1 - _iou(g, eps) + (area_c - g.union) / (area_c + eps)
  return _finish(_inverted(loss, g, eps, _GIOU_MAX), dtype, weights, where, reduction)


def diou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Distance-IoU loss ``1 - IoU + d² / c²`` of matched pairs of boxes.

  ``d`` is the distance between the box centers and ``c`` the diagonal of the
  smallest enclosing box, as ``torchvision.ops.distance_box_iou_loss``. Only
  squared distances are used (no square root) and ``eps`` is added to ``c²``,
  so degenerate boxes give finite values and gradients. The loss lies in
  ``[0, 2)``. A predicted box with a negative width or height is empty: its
  loss, in ``[1, 2)``, is that of the empty box at its center moved towards 2
  as the inversion grows, so its gradient widens it back to a valid box.

  Args:
    pred_boxes: Predicted boxes, shape ``[..., 4]``, floating.
    target_boxes: Target boxes, shape ``[..., 4]`` (same as ``pred_boxes``).
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
    eps: Positive constant added to the denominators.
    weights: Broadcastable to ``[...]``; per-box weights.
    where: Boolean mask broadcastable to ``[...]``; excluded boxes contribute 0.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar; the dtype of
    ``pred_boxes``.

  Raises:
    ValueError: for an unknown ``box_format``, a last axis that is not 4,
      mismatched shapes, or concrete target boxes of negative width or height.

  Examples:
    >>> import jax.numpy as jnp
    >>> pred = jnp.array([[0.0, 0.0, 1.0, 1.0]])
    >>> target = jnp.array([[2.0, 0.0, 3.0, 1.0]])
    >>> diou_loss(pred, target)
    Array(1.4, dtype=float32)

  References:
    Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding
    Box Regression", AAAI 2020.
  """
  g, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  loss = _diou(g, _iou(g, eps), eps)
  return _finish(_inverted(loss, g, eps, _DIOU_MAX), dtype, weights, where, reduction)


def ciou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Complete-IoU loss ``1 - IoU + d² / c² + α·v`` of matched pairs of boxes.

  ``v = 4/π² · (arctan(w_t / h_t) - arctan(w_p / h_p))²`` measures the
  aspect-ratio mismatch and ``α = v / (1 - IoU + v + eps)`` is a trade-off
  treated as a constant (``jax.lax.stop_gradient``), as
  ``torchvision.ops.complete_box_iou_loss``. The ratios are ``w / (h + eps)`` so
  that boxes of zero height stay finite (torchvision divides by ``h`` alone;
  the difference is of order ``eps / h``). The loss lies in ``[0, 2.5)``
  (``α·v <= 1/2``). A predicted box with a negative width or height is empty:
  its loss, in ``[1, 2.5)``, is that of the empty box at its center moved
  towards 2.5 as the inversion grows, so its gradient widens it back to a
  valid box.

  Args:
    pred_boxes: Predicted boxes, shape ``[..., 4]``, floating.
    target_boxes: Target boxes, shape ``[..., 4]`` (same as ``pred_boxes``).
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
    eps: Positive constant added to the denominators.
    weights: Broadcastable to ``[...]``; per-box weights.
    where: Boolean mask broadcastable to ``[...]``; excluded boxes contribute 0.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar; the dtype of
    ``pred_boxes``.

  Raises:
    ValueError: for an unknown ``box_format``, a last axis that is not 4,
      mismatched shapes, or concrete target boxes of negative width or height.

  Examples:
    >>> import jax.numpy as jnp
    >>> pred = jnp.array([[0.0, 0.0, 2.0, 1.0]])
    >>> target = jnp.array([[0.0, 0.0, 1.0, 1.0]])
    >>> ciou_loss(pred, target)
    Array(0.5532..., dtype=float32)

  References:
    Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding
    Box Regression", AAAI 2020.
  """
  g, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  iou = _iou(g, eps)
  # w / (h + eps): a zero-height box has a finite ratio and arctan gradient.
  aspect_t = jnp.arctan(g.target_w / (g.target_h + eps))
  aspect_p = jnp.arctan(g.pred_w / (g.pred_h + eps))
  v = (4 / math.pi**2) * (aspect_t - aspect_p) ** 2
  alpha = jax.lax.stop_gradient(v / (1 - iou + v + eps))
  loss = _diou(g, iou, eps) + alpha * v
  return _finish(_inverted(loss, g, eps, _CIOU_MAX), dtype, weights, where, reduction)


def _iou_inputs(names, arrays, box_format, eps):
  """Floating ``[..., 4]`` arrays (integers become float32) in a shared float32+ dtype."""
  check_choice("box_format", box_format, BOX_FORMATS)
  check_in_range("eps", eps, 0.0, low_inclusive=False)
  out = []
  for name, boxes in zip(names, arrays):
    boxes = jnp.asarray(boxes)
    if jnp.issubdtype(boxes.dtype, jnp.integer):
      boxes = boxes.astype(jnp.float32)  # pixel boxes, as torchvision upcasts them
    boxes = as_float_array(name, boxes)
    check_boxes(name, boxes)
    out.append(boxes)
  dtype = out[0].dtype
  compute = compute_dtype(standard_result_type(dtype, out[1].dtype))
  return [convert(upcast(b, compute), box_format, "xyxy") for b in out], dtype


def box_iou(
    boxes1: ArrayLike,
    boxes2: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
) -> jax.Array:
  """Pairwise IoU matrix of two sets of boxes, as ``torchvision.ops.box_iou``.

  Integer boxes are converted to float32 (as torchvision upcasts them); half
  precision is computed in float32 and cast back. ``eps`` is added to the union
  (of each pair's lengths scaled to at most 1) so that zero-area pairs give 0
  instead of NaN. A box with a negative width or height is empty: its IoU with
  every box is 0. For matched pairs (``boxes1[i]`` with ``boxes2[i]``) use
  :func:`matched_box_iou`, which does not form the ``(N, M)`` matrix.

  Args:
    boxes1: Shape ``(N, 4)``.
    boxes2: Shape ``(M, 4)``.
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
    eps: Positive constant added to the union.

  Returns:
    Shape ``(N, M)``: entry ``[i, j]`` is the IoU of ``boxes1[i]`` and
    ``boxes2[j]``, in ``[0, 1]``, in the floating dtype of ``boxes1``.

  Raises:
    ValueError: for an unknown ``box_format`` or shapes other than ``(N, 4)``.

  Examples:
    >>> import jax.numpy as jnp
    >>> a = jnp.array([[0.0, 0.0, 2.0, 2.0]])
    >>> b = jnp.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
    >>> box_iou(a, b)
    Array([[0.142..., 1. ]], dtype=float32)
  """
  for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
    check_rank(name, jnp.asarray(boxes), 2)
  (a, b), dtype = _iou_inputs(("boxes1", "boxes2"), (boxes1, boxes2), box_format, eps)
  g = pair_geometry(a[:, None, :], b[None, :, :])
  return _iou(g, eps).astype(dtype)


def matched_box_iou(
    boxes1: ArrayLike,
    boxes2: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
) -> jax.Array:
  """IoU of matched pairs of boxes: ``boxes1[i]`` with ``boxes2[i]``.

  The diagonal of :func:`box_iou` without the ``(N, M)`` matrix (and with any
  leading shape); ``1 - matched_box_iou`` is :func:`iou_loss` with
  ``reduction="none"``. A box with a negative width or height is empty (IoU 0);
  here neither argument is a target, so inverted boxes are never an error.
  Integer boxes are converted to float32; half precision is computed in
  float32 and cast back.

  Args:
    boxes1: Shape ``[..., 4]``.
    boxes2: Shape ``[..., 4]``, the same as ``boxes1``.
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
    eps: Positive constant added to the union.

  Returns:
    Shape ``[...]``, in ``[0, 1]``, in the floating dtype of ``boxes1``.

  Raises:
    ValueError: for an unknown ``box_format``, a last axis that is not 4 or
      mismatched shapes.

  Examples:
    >>> import jax.numpy as jnp
    >>> a = jnp.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    >>> b = jnp.array([[1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 0.0, 0.0]])  # the 2nd is inverted
    >>> matched_box_iou(a, b)
    Array([0.142..., 0. ], dtype=float32)
  """
  (a, b), dtype = _iou_inputs(("boxes1", "boxes2"), (boxes1, boxes2), box_format, eps)
  check_same_shape("boxes1", a, "boxes2", b)
  return _iou(pair_geometry(a, b), eps).astype(dtype)


def box_convert(boxes: ArrayLike, *, in_format: str, out_format: str) -> jax.Array:
  """Converts boxes between formats, as ``torchvision.ops.box_convert``.

  The formats are ``"xyxy"`` (corners), ``"xywh"`` (corner, width, height) and
  ``"cxcywh"`` (center, width, height). Conversions are plain arithmetic, so
  they are exact up to rounding and differentiable; widths come out negative for
  inverted boxes (which the losses treat as empty). Integer boxes keep their
  dtype between ``"xyxy"`` and ``"xywh"`` and become float32 to or from
  ``"cxcywh"`` (halves).

  Args:
    boxes: Shape ``[..., 4]``.
    in_format: Format of ``boxes``.
    out_format: Format to return.

  Returns:
    Shape ``[..., 4]`` in ``out_format``.

  Raises:
    ValueError: for an unknown format or a last axis that is not 4.

  Examples:
    >>> import jax.numpy as jnp
    >>> box_convert(jnp.array([[10.0, 15.0, 30.0, 35.0]]), in_format="xyxy",
    ...             out_format="cxcywh")
    Array([[20., 25., 20., 20.]], dtype=float32)
  """
  check_choice("in_format", in_format, BOX_FORMATS)
  check_choice("out_format", out_format, BOX_FORMATS)
  boxes = jnp.asarray(boxes)
  check_boxes("boxes", boxes)
  if jnp.issubdtype(boxes.dtype, jnp.integer) and "cxcywh" in (in_format, out_format):
    boxes = boxes.astype(jnp.float32)
  elif not jnp.issubdtype(boxes.dtype, jnp.integer):
    boxes = as_float_array("boxes", boxes)
  return convert(boxes, in_format, out_format)
