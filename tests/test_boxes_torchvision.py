"""Box losses, IoU matrices and box_convert against torchvision's expected values.

Expected values are ported from pytorch/vision, test/test_ops.py (read at commit
00673be3960268a837860cd6a05373d9861221d3); each test names the torchvision test
it ports. torchvision is not installed: the values are copied with a citation,
and a numpy formula checks the same boxes independently.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import losses

# pytorch/vision test/test_ops.py, get_boxes(): box1..box4, box1s, box2s.
BOX1 = [-1.0, -1.0, 1.0, 1.0]
BOX2 = [0.0, 0.0, 1.0, 1.0]
BOX3 = [0.0, 1.0, 1.0, 2.0]
BOX4 = [1.0, 1.0, 2.0, 2.0]
BOX1S = [BOX2, BOX2]
BOX2S = [BOX3, BOX4]

# pytorch/vision test/test_ops.py, module constants INT_BOXES, INT_BOXES2, FLOAT_BOXES.
INT_BOXES = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300], [0, 0, 25, 25]]
INT_BOXES2 = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300]]
FLOAT_BOXES = [
    [285.3538, 185.5758, 1193.5110, 851.4551],
    [285.1472, 188.7374, 1192.4984, 851.0669],
    [279.2440, 197.9812, 1189.4746, 849.2019],
]
# TestBoxIou / TestGeneralizedBoxIou / TestDistanceBoxIoU / TestCompleteBoxIou:
# int_expected (INT_BOXES x INT_BOXES2) and float_expected (FLOAT_BOXES x FLOAT_BOXES).
IOU_INT = [[1.0, 0.25, 0.0], [0.25, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0625, 0.25, 0.0]]
GIOU_INT = [[1.0, 0.25, -0.7778], [0.25, 1.0, -0.8611], [-0.7778, -0.8611, 1.0],
            [0.0625, 0.25, -0.8819]]
DIOU_INT = [[1.0000, 0.1875, -0.4444], [0.1875, 1.0000, -0.5625], [-0.4444, -0.5625, 1.0000],
            [-0.0781, 0.1875, -0.6267]]
CIOU_INT = DIOU_INT  # square boxes: the aspect term is 0
FLOAT_EXPECTED = [[1.0, 0.9933, 0.9673], [0.9933, 1.0, 0.9737], [0.9673, 0.9737, 1.0]]


def _pairwise(loss_fn, a, b):
  """``1 - loss`` of every pair (the pairwise GIoU / DIoU / CIoU matrix)."""
  a, b = jnp.asarray(a), jnp.asarray(b)
  shape = (a.shape[0], b.shape[0], 4)
  return 1 - loss_fn(jnp.broadcast_to(a[:, None], shape), jnp.broadcast_to(b[None], shape),
                     reduction="none")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_giou_loss_values(dtype):
  # pytorch/vision test/test_ops.py, TestGeneralizedBoxIouLoss.test_giou_loss.
  b = {k: jnp.asarray(v, dtype) for k, v in
       dict(b1=BOX1, b2=BOX2, b3=BOX3, b4=BOX4, b1s=BOX1S, b2s=BOX2S).items()}

  @jax.jit
  def run(b):
    loss = partial(losses.giou_loss, reduction="none")
    return (loss(b["b1"], b["b1"]), loss(b["b1"], b["b2"]), loss(b["b2"], b["b3"]),
            loss(b["b2"], b["b4"]), losses.giou_loss(b["b1s"], b["b2s"], reduction="sum"),
            losses.giou_loss(b["b1s"], b["b2s"], reduction="mean"))

  got = [np.asarray(x, np.float32) for x in run(b)]
  # identical 0; quarter box inside 0.75; side by side 1.0; diagonal 1.5; sum 2.5; mean 1.25
  for value, expected in zip(got, [0.0, 0.75, 1.0, 1.5, 2.5, 1.25]):
    np.testing.assert_allclose(value, expected, atol=1e-5 if dtype == jnp.float32 else 1e-3)
  assert run(b)[0].dtype == dtype
  with pytest.raises(ValueError, match="reduction"):
    losses.giou_loss(b["b1s"], b["b2s"], reduction="xyz")


@pytest.mark.parametrize("name", ["diou_loss", "ciou_loss"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_diou_and_ciou_loss_values(name, dtype):
  # pytorch/vision test/test_ops.py, TestDistanceBoxIouLoss.test_distance_iou_loss and
  # TestCompleteBoxIouLoss.test_ciou_loss (the same expected values: square boxes).
  fn = getattr(losses, name)
  arr = lambda v: jnp.asarray(v, dtype)

  @jax.jit
  def run():
    loss = partial(fn, reduction="none")
    return (loss(arr(BOX1), arr(BOX1)), loss(arr(BOX1), arr(BOX2)), loss(arr(BOX1), arr(BOX3)),
            loss(arr(BOX1), arr(BOX4)), fn(arr(BOX1S), arr(BOX2S), reduction="mean"),
            fn(arr(BOX1S), arr(BOX2S), reduction="sum"))

  # torchvision compares with torch.testing.assert_close defaults on 4-digit values.
  tol = 1e-4 if dtype == jnp.float32 else 2e-3
  for value, expected in zip(run(), [0.0, 0.8125, 1.1923, 1.2500, 1.2250, 2.4500]):
    np.testing.assert_allclose(np.float32(value), expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("name", ["iou_loss", "giou_loss", "diou_loss", "ciou_loss"])
def test_empty_inputs(name):
  # pytorch/vision test/test_ops.py, TestGeneralizedBoxIouLoss.test_empty_inputs (and
  # the CIoU / DIoU ones): mean over no boxes is 0 with a gradient, "none" is empty.
  fn = getattr(losses, name)
  empty = jnp.zeros((0, 4))
  value, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))(empty, empty)
  assert float(value) == 0.0 and grads[0].shape == (0, 4) and grads[1].shape == (0, 4)
  assert fn(empty, empty, reduction="none").shape == (0,)


@pytest.mark.parametrize("dtype", [jnp.int16, jnp.int32])
def test_box_iou_int_boxes(dtype):
  # pytorch/vision test/test_ops.py, TestBoxIou.test_iou (INT_BOXES x INT_BOXES2, atol 1e-4).
  got = jax.jit(losses.box_iou)(jnp.asarray(INT_BOXES, dtype), jnp.asarray(INT_BOXES2, dtype))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, IOU_INT, atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype, atol", [(jnp.float16, 0.002), (jnp.float32, 1e-3)])
def test_box_iou_float_boxes(dtype, atol):
  # pytorch/vision test/test_ops.py, TestBoxIou.test_iou (FLOAT_BOXES, float16 atol 0.002).
  boxes = jnp.asarray(FLOAT_BOXES, dtype)
  got = jax.jit(losses.box_iou)(boxes, boxes)
  assert got.dtype == dtype
  np.testing.assert_allclose(np.asarray(got, np.float32), FLOAT_EXPECTED, atol=atol, rtol=0)


@pytest.mark.parametrize("name, expected", [("giou_loss", GIOU_INT), ("diou_loss", DIOU_INT),
                                            ("ciou_loss", CIOU_INT), ("iou_loss", IOU_INT)])
def test_pairwise_generalized_distance_complete_iou(name, expected):
  # pytorch/vision test/test_ops.py, TestGeneralizedBoxIou / TestDistanceBoxIoU /
  # TestCompleteBoxIou.test_iou: the matrices equal 1 - our matched losses of all pairs.
  fn = getattr(losses, name)
  ints = jax.jit(partial(_pairwise, fn))(jnp.asarray(INT_BOXES, jnp.float32),
                                         jnp.asarray(INT_BOXES2, jnp.float32))
  np.testing.assert_allclose(ints, expected, atol=1e-4, rtol=0)
  floats = jax.jit(partial(_pairwise, fn))(jnp.asarray(FLOAT_BOXES), jnp.asarray(FLOAT_BOXES))
  np.testing.assert_allclose(floats, FLOAT_EXPECTED, atol=1e-3, rtol=0)


def test_matched_box_iou_is_the_diagonal_and_a_numpy_formula():
  a = jnp.asarray(FLOAT_BOXES + INT_BOXES2, jnp.float32)
  b = jnp.asarray(FLOAT_BOXES[::-1] + INT_BOXES[:3], jnp.float32)
  matched, full = jax.jit(lambda a, b: (losses.matched_box_iou(a, b), losses.box_iou(a, b)))(a, b)
  assert matched.shape == (6,)
  np.testing.assert_allclose(matched, jnp.diag(full), rtol=1e-6)
  a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
  iw = np.clip(np.minimum(a64[:, 2], b64[:, 2]) - np.maximum(a64[:, 0], b64[:, 0]), 0, None)
  ih = np.clip(np.minimum(a64[:, 3], b64[:, 3]) - np.maximum(a64[:, 1], b64[:, 1]), 0, None)
  area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
  np.testing.assert_allclose(matched, iw * ih / (area(a64) + area(b64) - iw * ih), rtol=1e-5)
  # Leading axes, formats and integer boxes.
  lead = losses.matched_box_iou(a.reshape(2, 3, 4), b.reshape(2, 3, 4))
  np.testing.assert_allclose(lead, matched.reshape(2, 3), rtol=1e-6)
  cxcywh = losses.matched_box_iou(
      losses.box_convert(a, in_format="xyxy", out_format="cxcywh"),
      losses.box_convert(b, in_format="xyxy", out_format="cxcywh"), box_format="cxcywh")
  np.testing.assert_allclose(cxcywh, matched, rtol=1e-5)
  ints = losses.matched_box_iou(jnp.asarray(INT_BOXES2), jnp.asarray(INT_BOXES[:3]))
  np.testing.assert_allclose(ints, [1.0, 1.0, 1.0], rtol=2e-7)  # 1 / (1 + eps)
  with pytest.raises(ValueError, match="boxes1 and boxes2"):
    losses.matched_box_iou(a, b[:2])


# pytorch/vision test/test_ops.py, TestBoxConvert: test_bbox_xyxy_xywh,
# test_bbox_xyxy_cxcywh, test_bbox_xywh_cxcywh.
CONVERT_XYXY = [[0, 0, 100, 100], [0, 0, 0, 0], [10, 15, 30, 35], [23, 35, 93, 95]]
CONVERT_XYWH = [[0, 0, 100, 100], [0, 0, 0, 0], [10, 15, 20, 20], [23, 35, 70, 60]]
CONVERT_CXCYWH = [[50, 50, 100, 100], [0, 0, 0, 0], [20, 25, 20, 20], [58, 65, 70, 60]]


@pytest.mark.parametrize("in_format, source, out_format, expected", [
    ("xyxy", CONVERT_XYXY, "xywh", CONVERT_XYWH),
    ("xyxy", CONVERT_XYXY, "cxcywh", CONVERT_CXCYWH),
    ("xywh", CONVERT_XYWH, "cxcywh", CONVERT_CXCYWH),
    ("xyxy", CONVERT_XYXY, "xyxy", CONVERT_XYXY),
])
def test_box_convert_and_back(in_format, source, out_format, expected):
  boxes = jnp.asarray(source, jnp.float32)
  convert = jax.jit(losses.box_convert, static_argnames=("in_format", "out_format"))
  out = convert(boxes, in_format=in_format, out_format=out_format)
  np.testing.assert_array_equal(out, np.asarray(expected, np.float32))
  back = convert(out, in_format=out_format, out_format=in_format)
  np.testing.assert_array_equal(back, boxes)


def test_box_convert_dtypes_grad_and_invalid_formats():
  ints = jnp.asarray(CONVERT_XYXY, jnp.int32)
  assert losses.box_convert(ints, in_format="xyxy", out_format="xywh").dtype == jnp.int32
  halves = losses.box_convert(ints, in_format="xyxy", out_format="cxcywh")
  assert halves.dtype == jnp.float32
  np.testing.assert_array_equal(halves, np.asarray(CONVERT_CXCYWH, np.float32))
  for dtype in (jnp.float16, jnp.bfloat16):
    out = losses.box_convert(jnp.asarray(CONVERT_XYWH, dtype), in_format="xywh",
                             out_format="cxcywh")
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out, np.float32), CONVERT_CXCYWH)
  # Linear, so the Jacobian of xyxy -> cxcywh is exact.
  jac = jax.jacobian(lambda b: losses.box_convert(b, in_format="xyxy", out_format="cxcywh"))(
      jnp.asarray([1.0, 2.0, 5.0, 3.0]))
  np.testing.assert_array_equal(jac, [[0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5], [-1, 0, 1, 0],
                                      [0, -1, 0, 1]])
  # pytorch/vision test/test_ops.py, TestBoxConvert.test_bbox_invalid.
  boxes = jnp.asarray(CONVERT_XYWH, jnp.float32)
  for bad_in, bad_out in (("xwyh", "xywh"), ("cxwyh", "xyxy"), ("xyxy", "xwcx"),
                          ("xywh", "xhwcy")):
    with pytest.raises(ValueError, match="in_format" if bad_in not in ("xyxy", "xywh")
                       else "out_format"):
      losses.box_convert(boxes, in_format=bad_in, out_format=bad_out)
  with pytest.raises(ValueError, match="boxes"):
    losses.box_convert(jnp.zeros((3, 5)), in_format="xyxy", out_format="xywh")
