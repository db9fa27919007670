"""Bounding-box losses: IoU, GIoU, DIoU and CIoU, plus the pairwise IoU matrix.

Boxes have shape ``[..., 4]`` in one of three formats (``box_format``):

* ``"xyxy"``: ``(x_min, y_min, x_max, y_max)``;
* ``"xywh"``: ``(x_min, y_min, width, height)``;
* ``"cxcywh"``: ``(center_x, center_y, width, height)``.

The losses compare matched pairs of boxes elementwise and return one value per
box (shape ``[...]`` with ``reduction="none"``) exactly as ``torchvision.ops``
computes them; then the shared weights / where / reduction contract applies.
float16 and bfloat16 boxes are computed in float32 and the result is cast back.
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
    compute_dtype,
    standard_result_type,
)
from lossreg_jax.losses._reduce import Reduction, broadcast_where, check_pair, reduce_loss, sanitize

__all__ = ["box_iou", "ciou_loss", "diou_loss", "giou_loss", "iou_loss"]

BOX_FORMATS: tuple[str, ...] = ("xyxy", "xywh", "cxcywh")
# A valid unit box put in place of excluded (``where=False``) boxes, so that their
# (discarded) losses and gradients are finite.
_SAFE_BOX = (0.0, 0.0, 1.0, 1.0)


def _check_boxes(name: str, boxes: jax.Array) -> None:
  if boxes.ndim < 1 or boxes.shape[-1] != 4:
    raise ValueError(
        f"{name} must have shape [..., 4] (four coordinates on the last axis), got "
        f"{name}.shape={boxes.shape}."
    )


def _to_xyxy(boxes: jax.Array, box_format: str) -> jax.Array:
  """Converts boxes of ``box_format`` to ``(x_min, y_min, x_max, y_max)``."""
  if box_format == "xyxy":
    return boxes
  a, b, w, h = (boxes[..., i] for i in range(4))
  if box_format == "xywh":
    corners = (a, b, a + w, b + h)
  else:  # cxcywh
    corners = (a - w / 2, b - h / 2, a + w / 2, b + h / 2)
  return jnp.stack(corners, axis=-1)


def _prepare(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    box_format: str,
    eps: float,
    where: ArrayLike | None,
) -> tuple[jax.Array, jax.Array, jnp.dtype]:
  """Validates a matched pair of box arrays; returns them in float32+ xyxy."""
  check_choice("box_format", box_format, BOX_FORMATS)
  check_in_range("eps", eps, 0.0, low_inclusive=False)
  pred, target = check_pair("pred_boxes", pred_boxes, "target_boxes", target_boxes)
  _check_boxes("pred_boxes", pred)
  _check_boxes("target_boxes", target)
  dtype = pred.dtype
  compute = compute_dtype(dtype)  # half precision overflows in areas
  pred = _to_xyxy(pred.astype(compute), box_format)
  target = _to_xyxy(target.astype(compute), box_format)
  mask = broadcast_where(where, pred.shape[:-1])
  if mask is not None:
    safe = jnp.asarray(_SAFE_BOX, compute)
    pred = sanitize(pred, mask[..., None], safe)
    target = sanitize(target, mask[..., None], safe)
  return pred, target, dtype


def _inter_union(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Intersection and union areas of matched xyxy boxes (torchvision's formula)."""
  x1, y1, x2, y2 = (pred[..., i] for i in range(4))
  x1g, y1g, x2g, y2g = (target[..., i] for i in range(4))
  # Disjoint boxes have a negative overlap on some axis: clip it to 0.
  inter_w = jnp.maximum(jnp.minimum(x2, x2g) - jnp.maximum(x1, x1g), 0.0)
  inter_h = jnp.maximum(jnp.minimum(y2, y2g) - jnp.maximum(y1, y1g), 0.0)
  inter = inter_w * inter_h
  union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
  return inter, union


def _enclosing_wh(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Width and height of the smallest box enclosing both boxes."""
  w = jnp.maximum(pred[..., 2], target[..., 2]) - jnp.minimum(pred[..., 0], target[..., 0])
  h = jnp.maximum(pred[..., 3], target[..., 3]) - jnp.minimum(pred[..., 1], target[..., 1])
  return w, h


def _iou(pred: jax.Array, target: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
  inter, union = _inter_union(pred, target)
  # eps keeps degenerate (zero-area) pairs finite: 0 / eps = 0, no 0 / 0.
  return inter / (union + eps), union


def _diou_terms(pred: jax.Array, target: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
  """Returns ``(1 - IoU + d² / c², IoU)`` as torchvision's ``_diou_iou_loss``."""
  iou, _ = _iou(pred, target, eps)
  cw, ch = _enclosing_wh(pred, target)
  # Squared distances only (no square root), so identical points give finite
  # gradients; eps keeps the diagonal of a degenerate enclosing box positive.
  diagonal_sq = cw**2 + ch**2 + eps
  dx = (pred[..., 0] + pred[..., 2]) / 2 - (target[..., 0] + target[..., 2]) / 2
  dy = (pred[..., 1] + pred[..., 3]) / 2 - (target[..., 1] + target[..., 3]) / 2
  return 1 - iou + (dx**2 + dy**2) / diagonal_sq, iou


def _finish(loss: jax.Array, dtype, weights, where, reduction) -> jax.Array:
  return reduce_loss(loss.astype(dtype), weights=weights, where=where, reduction=reduction)


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
  (their IoU is 0, with finite gradients).

  Args:
    pred_boxes: Predicted boxes, shape ``[..., 4]``, floating.
    target_boxes: Target boxes, shape ``[..., 4]`` (same as ``pred_boxes``).
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"`` (see the module docstring).
    eps: Positive constant added to the union.
    weights: Broadcastable to ``[...]``; per-box weights.
    where: Boolean mask broadcastable to ``[...]``; excluded boxes contribute 0.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` (one value per box, in ``[0, 1]`` for valid boxes) with
    ``reduction="none"``, else a scalar; the dtype of ``pred_boxes``.

  Raises:
    ValueError: for an unknown ``box_format``, a last axis that is not 4 or
      mismatched shapes.

  Examples:
    >>> import jax.numpy as jnp
    >>> pred = jnp.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    >>> target = jnp.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0]])
    >>> iou_loss(pred, target, reduction="none")
    Array([0.857..., 0.0...], dtype=float32)

  References:
    Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.
  """
  pred, target, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  iou, _ = _iou(pred, target, eps)
  return _finish(1 - iou, dtype, weights, where, reduction)


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
  flat at 1).

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
    ValueError: for an unknown ``box_format``, a last axis that is not 4 or
      mismatched shapes.

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
  pred, target, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  iou, union = _iou(pred, target, eps)
  cw, ch = _enclosing_wh(pred, target)
  area_c = cw * ch
  giou = iou - (area_c - union) / (area_c + eps)
  return _finish(1 - giou, dtype, weights, where, reduction)


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
  so degenerate boxes give finite values and gradients.

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
    ValueError: for an unknown ``box_format``, a last axis that is not 4 or
      mismatched shapes.

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
  pred, target, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  loss, _ = _diou_terms(pred, target, eps)
  return _finish(loss, dtype, weights, where, reduction)


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
  the difference is of order ``eps / h``).

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
    ValueError: for an unknown ``box_format``, a last axis that is not 4 or
      mismatched shapes.

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
  pred, target, dtype = _prepare(pred_boxes, target_boxes, box_format, eps, where)
  diou, iou = _diou_terms(pred, target, eps)

  def aspect(boxes):
    # w / (h + eps): a zero-height box has a finite ratio and arctan gradient.
    return jnp.arctan((boxes[..., 2] - boxes[..., 0]) / (boxes[..., 3] - boxes[..., 1] + eps))

  v = (4 / math.pi**2) * (aspect(target) - aspect(pred)) ** 2
  alpha = jax.lax.stop_gradient(v / (1 - iou + v + eps))
  return _finish(diou + alpha * v, dtype, weights, where, reduction)


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
  so that zero-area pairs give 0 instead of NaN.

  Args:
    boxes1: Shape ``(N, 4)``.
    boxes2: Shape ``(M, 4)``.
    box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
    eps: Positive constant added to the union.

  Returns:
    Shape ``(N, M)``: entry ``[i, j]`` is the IoU of ``boxes1[i]`` and
    ``boxes2[j]``, in the floating dtype of ``boxes1``.

  Raises:
    ValueError: for an unknown ``box_format`` or shapes other than ``(N, 4)``.

  Examples:
    >>> import jax.numpy as jnp
    >>> a = jnp.array([[0.0, 0.0, 2.0, 2.0]])
    >>> b = jnp.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
    >>> box_iou(a, b)
    Array([[0.142..., 1. ]], dtype=float32)
  """
  check_choice("box_format", box_format, BOX_FORMATS)
  check_in_range("eps", eps, 0.0, low_inclusive=False)
  arrays = []
  for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
    boxes = jnp.asarray(boxes)
    if jnp.issubdtype(boxes.dtype, jnp.integer):
      boxes = boxes.astype(jnp.float32)
    boxes = as_float_array(name, boxes)
    check_rank(name, boxes, 2)
    _check_boxes(name, boxes)
    arrays.append(boxes)
  dtype = arrays[0].dtype
  compute = compute_dtype(standard_result_type(dtype, arrays[1].dtype))
  a, b = (_to_xyxy(x.astype(compute), box_format) for x in arrays)
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  lt = jnp.maximum(a[:, None, :2], b[None, :, :2])
  rb = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
  wh = jnp.maximum(rb - lt, 0.0)
  inter = wh[..., 0] * wh[..., 1]
  union = area_a[:, None] + area_b[None, :] - inter
  return (inter / (union + eps)).astype(dtype)
