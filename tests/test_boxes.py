"""Tests for lossreg_jax.losses.boxes against the published formulas (numpy)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import losses

LOSSES = ("iou_loss", "giou_loss", "diou_loss", "ciou_loss")


# ---------------------------------------------------------------- numpy references
# Written from the papers in the plain form (no eps), float64, one box pair per row.

def _np_parts(p, t):
  p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
  iw = np.clip(np.minimum(p[:, 2], t[:, 2]) - np.maximum(p[:, 0], t[:, 0]), 0, None)
  ih = np.clip(np.minimum(p[:, 3], t[:, 3]) - np.maximum(p[:, 1], t[:, 1]), 0, None)
  inter = iw * ih
  area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
  area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
  union = area_p + area_t - inter
  cw = np.maximum(p[:, 2], t[:, 2]) - np.minimum(p[:, 0], t[:, 0])
  ch = np.maximum(p[:, 3], t[:, 3]) - np.minimum(p[:, 1], t[:, 1])
  return p, t, inter / union, union, cw, ch


def np_iou_loss(p, t):
  return 1 - _np_parts(p, t)[2]


def np_giou_loss(p, t):
  _, _, iou, union, cw, ch = _np_parts(p, t)
  enclosing = cw * ch
  return 1 - (iou - (enclosing - union) / enclosing)


def np_diou_loss(p, t):
  p, t, iou, _, cw, ch = _np_parts(p, t)
  rho2 = ((p[:, 0] + p[:, 2]) / 2 - (t[:, 0] + t[:, 2]) / 2) ** 2 + \
         ((p[:, 1] + p[:, 3]) / 2 - (t[:, 1] + t[:, 3]) / 2) ** 2
  return 1 - iou + rho2 / (cw**2 + ch**2)


def np_ciou_loss(p, t, alpha=None):
  p64, t64, iou, *_ = _np_parts(p, t)
  v = 4 / np.pi**2 * (np.arctan((t64[:, 2] - t64[:, 0]) / (t64[:, 3] - t64[:, 1]))
                      - np.arctan((p64[:, 2] - p64[:, 0]) / (p64[:, 3] - p64[:, 1]))) ** 2
  if alpha is None:
    alpha = v / ((1 - iou) + v)
  return np_diou_loss(p, t) + alpha * v, alpha


REFERENCES = {
    "iou_loss": np_iou_loss,
    "giou_loss": np_giou_loss,
    "diou_loss": np_diou_loss,
    "ciou_loss": lambda p, t: np_ciou_loss(p, t)[0],
}


def _all_losses(**kwargs):
  """All four losses of the same boxes, as a dict by name."""
  return lambda p, t: {name: getattr(losses, name)(p, t, **kwargs) for name in LOSSES}


def random_boxes(n, seed=0):
  """Valid xyxy boxes and nearby (sometimes disjoint) valid targets, float32."""
  rng = np.random.default_rng(seed)
  xy = rng.uniform(0, 10, size=(n, 2))
  wh = rng.uniform(0.5, 5, size=(n, 2))
  txy = xy + rng.normal(scale=2.0, size=(n, 2))
  twh = wh * rng.uniform(0.3, 2.0, size=(n, 2))
  pred = np.concatenate([xy, xy + wh], -1).astype(np.float32)
  target = np.concatenate([txy, txy + twh], -1).astype(np.float32)
  return pred, target


def to_format(xyxy, fmt):
  """Converts xyxy boxes (numpy or jax arrays) to ``fmt`` with plain arithmetic."""
  x1, y1, x2, y2 = (xyxy[..., i] for i in range(4))
  xp = jnp if isinstance(xyxy, jax.Array) else np
  if fmt == "xywh":
    return xp.stack([x1, y1, x2 - x1, y2 - y1], -1)
  if fmt == "cxcywh":
    return xp.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
  return xyxy


# ---------------------------------------------------------------- reference values

def test_matches_published_formulas_under_jit():
  pred, target = random_boxes(64)
  assert np.any(np_iou_loss(pred, target) == 1), "the sample should include disjoint boxes"
  none, mean = jax.jit(lambda p, t: (_all_losses(reduction="none")(p, t),
                                     _all_losses()(p, t)))(pred, target)
  for name in LOSSES:
    expected = REFERENCES[name](pred, target)
    assert none[name].shape == (64,) and none[name].dtype == jnp.float32
    np.testing.assert_allclose(none[name], expected, rtol=1e-5, atol=2e-6, err_msg=name)
    np.testing.assert_allclose(mean[name], expected.mean(), rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_formats_agree_with_xyxy(fmt):
  pred, target = random_boxes(16, seed=1)
  got = jax.jit(_all_losses(box_format=fmt, reduction="none"))(to_format(pred, fmt),
                                                                 to_format(target, fmt))
  for name in LOSSES:
    np.testing.assert_allclose(got[name], REFERENCES[name](pred, target), rtol=1e-5, atol=1e-5,
                               err_msg=name)


def test_known_values_by_hand():
  unit = jnp.array([[0.0, 0.0, 1.0, 1.0]])
  far = jnp.array([[2.0, 0.0, 3.0, 1.0]])  # disjoint, 1 apart
  for name in LOSSES:  # identical boxes: loss 0
    np.testing.assert_allclose(getattr(losses, name)(unit, unit), 0.0, atol=1e-6, err_msg=name)
  assert float(losses.iou_loss(far, unit)) == 1.0
  # GIoU: enclosing area 3, union 2 -> GIoU = -1/3, loss 4/3 > 1.
  np.testing.assert_allclose(losses.giou_loss(far, unit), 4 / 3, rtol=1e-6)
  # DIoU: centers 2 apart (d² = 4), enclosing diagonal² = 3² + 1² = 10 -> 1 + 0.4.
  np.testing.assert_allclose(losses.diou_loss(far, unit), 1.4, rtol=1e-6)
  # Same shape: CIoU = DIoU (v = 0).
  np.testing.assert_allclose(losses.ciou_loss(far, unit), 1.4, rtol=1e-6)
  # Half overlap: [0,0,2,2] vs [1,0,3,2]: IoU = 2 / 6.
  half = losses.iou_loss(jnp.array([0.0, 0.0, 2.0, 2.0]), jnp.array([1.0, 0.0, 3.0, 2.0]),
                         reduction="none")
  np.testing.assert_allclose(half, 1 - 1 / 3, rtol=1e-6)


def test_ciou_alpha_is_a_stop_gradient(x64):
  pred, target = random_boxes(8, seed=2)
  pred, target = pred.astype(np.float64), target.astype(np.float64)
  grad = jax.jit(jax.grad(lambda p: losses.ciou_loss(p, target, reduction="sum")))(pred)
  _, alpha = np_ciou_loss(pred, target)
  h = 1e-6
  fd_frozen = np.zeros_like(pred)
  fd_full = np.zeros_like(pred)
  for idx in np.ndindex(*pred.shape):
    e = np.zeros_like(pred)
    e[idx] = h
    fd_frozen[idx] = (np_ciou_loss(pred + e, target, alpha)[0].sum()
                      - np_ciou_loss(pred - e, target, alpha)[0].sum()) / (2 * h)
    fd_full[idx] = (np_ciou_loss(pred + e, target)[0].sum()
                    - np_ciou_loss(pred - e, target)[0].sum()) / (2 * h)
  np.testing.assert_allclose(grad, fd_frozen, rtol=1e-5, atol=1e-7)
  # The check discriminates: differentiating through alpha gives another gradient.
  assert np.max(np.abs(fd_full - fd_frozen)) > 1e-4


def test_box_iou_matches_pairwise_formula_and_matched_loss():
  a, _ = random_boxes(5, seed=3)
  _, b = random_boxes(7, seed=4)
  expected = np.array([[1 - np_iou_loss(a[i:i + 1], b[j:j + 1])[0] for j in range(7)]
                       for i in range(5)])

  @jax.jit
  def run(a, b):
    return (losses.box_iou(a, b),
            losses.box_iou(to_format(a, "cxcywh"), to_format(b, "cxcywh"), box_format="cxcywh"),
            jnp.diag(losses.box_iou(a, b[:5])), losses.iou_loss(a, b[:5], reduction="none"))

  got, got_cxcywh, diag, loss = run(a, b)
  assert got.shape == (5, 7)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  # cxcywh input gives the same matrix; the diagonal of a square matrix is 1 - iou_loss.
  np.testing.assert_allclose(got_cxcywh, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(diag, 1 - loss, rtol=1e-6, atol=1e-7)
  # Integer pixel boxes are accepted (as torchvision upcasts them).
  ints = losses.box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]))
  np.testing.assert_allclose(ints, [[1 / 7]], rtol=1e-6)


# ---------------------------------------------------------------- numerics

DEGENERATE_PRED = np.array([
    [1.0, 1.0, 1.0, 1.0],   # a point
    [1.0, 1.0, 1.0, 1.0],   # the same point as its target
    [0.0, 0.0, 0.0, 2.0],   # zero width
    [0.0, 0.0, 2.0, 0.0],   # zero height
    [0.0, 0.0, 2.0, 2.0],   # a box around a point target
    [0.0, 0.0, 0.0, 0.0],   # a point at the origin vs a far point
], np.float32)
DEGENERATE_TARGET = np.array([
    [0.0, 0.0, 2.0, 2.0],
    [1.0, 1.0, 1.0, 1.0],
    [0.0, 0.0, 0.0, 2.0],
    [1.0, 0.0, 1.0, 3.0],
    [1.0, 1.0, 1.0, 1.0],
    [5.0, 5.0, 5.0, 5.0],
], np.float32)


def test_degenerate_boxes_have_finite_values_and_gradients():
  total = lambda p, t: sum(_all_losses(reduction="sum")(p, t).values())
  run = jax.jit(lambda p, t: (
      {name: jax.grad(lambda p, t: getattr(losses, name)(p, t, reduction="sum"),
                      argnums=(0, 1))(p, t) for name in LOSSES},
      _all_losses(reduction="none")(p, t), total(p, t)))
  grads, each, value = run(DEGENERATE_PRED, DEGENERATE_TARGET)
  assert np.isfinite(value)
  for name in LOSSES:
    assert all(np.all(np.isfinite(g)) for g in grads[name]), name
    assert np.all(np.isfinite(each[name])) and np.all(each[name] >= -1e-6), name


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_pixel_boxes_compute_in_float32(dtype):
  # Pixel boxes: areas (~1e5) overflow float16 (max 65504) unless computed in float32.
  pred, target = random_boxes(16, seed=5)
  p, t = jnp.asarray(60 * pred, dtype), jnp.asarray(60 * target, dtype)
  run = jax.jit(lambda p, t: (
      {name: jax.value_and_grad(lambda p: getattr(losses, name)(p, t, reduction="sum"))(p)
       for name in LOSSES}, _all_losses(reduction="none")(p, t)))
  value_grad, each = run(p, t)
  for name in LOSSES:
    value, grad = value_grad[name]
    assert each[name].dtype == dtype and value.dtype == dtype
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad, np.float32)))
    expected = REFERENCES[name](np.asarray(p, np.float32), np.asarray(t, np.float32))
    np.testing.assert_allclose(np.asarray(each[name], np.float32), expected, rtol=2e-2,
                               atol=2e-2, err_msg=name)


def test_where_excludes_boxes_with_finite_gradients():
  pred, target = random_boxes(6, seed=6)
  pred[2] = np.nan  # padding rows full of NaN
  target[4] = np.inf
  where = np.array([True, True, False, True, False, True])
  weights = np.array([1.0, 2.0, 3.0, 0.5, 1.0, 1.5], np.float32)

  @jax.jit
  def run(pred):
    out = {}
    for name in LOSSES:
      fn = getattr(losses, name)
      value, grad = jax.value_and_grad(
          lambda p: fn(p, target, weights=weights, where=where))(pred)
      wmean = fn(pred, target, weights=weights, where=where, reduction="weighted_mean")
      none = fn(pred, target, where=where, reduction="none")
      total = fn(pred, target, where=where, reduction="sum")
      out[name] = (value, grad, wmean, none, total)
    return out

  results = run(pred)
  for name in LOSSES:
    value, grad, wmean, none, total = results[name]
    ref = REFERENCES[name](pred[where], target[where])
    np.testing.assert_allclose(value, np.sum(weights[where] * ref) / where.sum(), rtol=1e-5)
    assert np.all(np.isfinite(grad)) and np.all(grad[~where] == 0)
    np.testing.assert_allclose(wmean, np.sum(weights[where] * ref) / weights[where].sum(),
                               rtol=1e-5)
    assert np.all(none[~where] == 0)
    np.testing.assert_allclose(jnp.sum(none), total, rtol=1e-6)


def test_vmap_and_batch_axes():
  pred, target = random_boxes(12, seed=7)
  pred, target = pred.reshape(3, 4, 4), target.reshape(3, 4, 4)
  loss = partial(losses.giou_loss, reduction="none")
  direct = jax.jit(loss)(pred, target)
  assert direct.shape == (3, 4)
  mapped = jax.jit(jax.vmap(loss))(pred, target)
  np.testing.assert_allclose(mapped, direct, rtol=1e-6)
  iou = jax.jit(jax.vmap(losses.box_iou))(pred, target)
  assert iou.shape == (3, 4, 4)
  np.testing.assert_allclose(iou[1], losses.box_iou(pred[1], target[1]), rtol=1e-6)


# ---------------------------------------------------------------- bad input

def test_bad_input_raises_naming_the_argument():
  box = jnp.zeros((2, 4))
  with pytest.raises(ValueError, match="box_format"):
    losses.giou_loss(box, box, box_format="yxyx")
  with pytest.raises(ValueError, match="box_format"):
    losses.box_iou(box, box, box_format="xyxy2")
  with pytest.raises(ValueError, match=r"pred_boxes.*\(2, 3\)"):
    losses.iou_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match="target_boxes"):
    losses.ciou_loss(box, jnp.zeros((3, 4)))
  with pytest.raises(ValueError, match="boxes1"):
    losses.box_iou(jnp.zeros((2, 2, 4)), box)
  with pytest.raises(ValueError, match="boxes2"):
    losses.box_iou(box, jnp.zeros((2, 5)))
  with pytest.raises(TypeError, match="pred_boxes"):
    losses.diou_loss(jnp.zeros((2, 4), jnp.int32), box)
  with pytest.raises(ValueError, match="eps"):
    losses.iou_loss(box, box, eps=0.0)
