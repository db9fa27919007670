"""Box losses at the edges: inverted (empty) predictions, inverted targets, huge and
tiny coordinates, half precision, and finite second derivatives (issue 10)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import losses

from tests.test_boxes import DEGENERATE_PRED, DEGENERATE_TARGET, REFERENCES, random_boxes

LOSSES = ("iou_loss", "giou_loss", "diou_loss", "ciou_loss")
# Documented ranges: [0, 1] for iou_loss, [0, sup) for the others; an empty
# (inverted) prediction scores at least 1.
SUP = {"iou_loss": 1.0, "giou_loss": 2.0, "diou_loss": 2.0, "ciou_loss": 2.5}


def _in_range(name, values):
  values = np.asarray(values, np.float32)
  upper = values <= 1.0 if name == "iou_loss" else values < SUP[name]
  return np.all(values >= -1e-6) and np.all(upper)
PUSHED_BACK = ("giou_loss", "diou_loss", "ciou_loss")  # iou_loss is flat (1) when empty


def _each(p, t, **kw):
  return {name: getattr(losses, name)(p, t, reduction="none", **kw) for name in LOSSES}


def _inverted_boxes(n, seed):
  """Predictions with a negative width and/or height, and valid targets."""
  rng = np.random.default_rng(seed)
  pred, target = random_boxes(n, seed=seed)
  flip_x, flip_y = rng.random(n) < 0.7, rng.random(n) < 0.7
  flip_y[~flip_x] = True  # every box is inverted on at least one axis
  pred[flip_x] = pred[flip_x][:, [2, 1, 0, 3]]
  pred[flip_y] = pred[flip_y][:, [0, 3, 2, 1]]
  return pred, target


def _collapsed(pred):
  """The empty box at the center of each (inverted) prediction: zero width / height."""
  out = pred.copy()
  for lo, hi in ((0, 2), (1, 3)):
    bad = pred[:, hi] < pred[:, lo]
    center = (pred[:, lo] + pred[:, hi]) / 2
    out[bad, lo] = out[bad, hi] = center[bad]
  return out


def test_issue_example_inverted_prediction_is_an_empty_box():
  # giou_loss([[2, 2, 0, 0]], [[0, 0, 1, 1]]) was -3.0 (the inverted box had "area" 4).
  pred, target = jnp.array([[2.0, 2.0, 0.0, 0.0]]), jnp.array([[0.0, 0.0, 1.0, 1.0]])
  assert float(losses.matched_box_iou(pred, target)[0]) == 0.0
  assert float(losses.box_iou(pred, target)[0, 0]) == 0.0
  assert float(losses.iou_loss(pred, target)) == 1.0
  for name in PUSHED_BACK:
    value, grad = jax.jit(jax.value_and_grad(getattr(losses, name)))(pred, target)
    assert 1.0 <= float(value) < SUP[name], name
    # Gradient descent widens the box: x_min goes down relative to x_max (and y).
    assert grad[0, 0] > grad[0, 2] and grad[0, 1] > grad[0, 3], (name, grad)


def test_inverted_predictions_stay_in_range_above_their_empty_box():
  pred, target = _inverted_boxes(32, seed=10)
  empty = _collapsed(pred)
  got, at_center = jax.jit(lambda p, e, t: (_each(p, t), _each(e, t)))(pred, empty, target)
  np.testing.assert_array_equal(losses.matched_box_iou(pred, target), 0.0)
  for name in LOSSES:
    g, c = np.asarray(got[name]), np.asarray(at_center[name])
    assert np.all(g >= 1.0 - 1e-6) and _in_range(name, g), name
    # The empty box at the center is a valid (degenerate) box: the published formula
    # applies to it, and an inversion never scores better than it.
    with np.errstate(divide="ignore", invalid="ignore"):
      ref = REFERENCES[name](empty, target)
    known = np.isfinite(ref)  # CIoU's plain formula divides 0 / 0 for a point (w = h = 0)
    assert known.sum() >= 8, name
    np.testing.assert_allclose(c[known], ref[known], rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.all(g >= c - 1e-6), name
    if name in PUSHED_BACK:
      assert np.all(g > c), name
    else:
      np.testing.assert_array_equal(g, 1.0)


def test_loss_is_continuous_across_zero_width():
  target = jnp.array([[0.0, 0.0, 2.0, 2.0]])
  widths = jnp.array([-1e-4, 0.0, 1e-4])
  pred = jnp.stack([jnp.full(3, 0.5), jnp.full(3, 0.5), 0.5 + widths, jnp.full(3, 1.5)], -1)
  for name, values in _each(pred, jnp.broadcast_to(target, pred.shape)).items():
    assert np.ptp(np.asarray(values)) < 1e-3, (name, values)


@pytest.mark.parametrize("name", PUSHED_BACK)
def test_training_from_inverted_boxes_ends_on_valid_overlapping_boxes(name):
  # The issue: a network emitting x2 < x1 drove GIoU to -51 with IoU 0. Plain gradient
  # descent on the boxes must now turn them around and never see a negative loss.
  target = jnp.array([[0.0, 0.0, 1.0, 1.0], [10.0, 20.0, 14.0, 23.0], [5.0, 5.0, 6.0, 9.0]])
  start = jnp.array([[2.0, 2.0, 0.0, 0.0], [16.0, 25.0, 9.0, 19.0], [7.0, 4.0, 4.0, 10.0]])
  fn = getattr(losses, name)

  @jax.jit
  def train(p):
    def step(p, _):
      value, grad = jax.value_and_grad(lambda p: fn(p, target, reduction="sum"))(p)
      return p - 0.1 * grad, value
    return jax.lax.scan(step, p, None, length=1500)

  final, values = train(start)
  assert float(values.min()) >= 0.0 and np.all(np.isfinite(values))
  assert np.all(final[:, 2] > final[:, 0]) and np.all(final[:, 3] > final[:, 1]), final
  assert np.all(losses.matched_box_iou(final, target) > 0.5), final


def test_concretely_inverted_targets_raise_traced_ones_count_as_empty():
  pred, target = random_boxes(4, seed=11)
  bad = target.copy()
  bad[2] = bad[2][[2, 1, 0, 3]]
  for name in LOSSES:
    with pytest.raises(ValueError, match=r"target_boxes must have x_max >= x_min.*\[2\]"):
      getattr(losses, name)(pred, bad)
  negative_width = np.tile(np.array([0, 0, -1, 1], np.float32), (4, 1))  # xywh
  with pytest.raises(ValueError, match="target_boxes"):
    losses.giou_loss(pred, negative_width, box_format="xywh")
  # Excluded by a concrete mask: no error.
  where = np.array([True, True, False, True])
  assert np.isfinite(float(losses.giou_loss(pred, bad, where=where)))
  # Inside jit the values are unknown: the inverted target is an empty box (IoU 0).
  each = jax.jit(_each)(pred, bad)
  for name in LOSSES:
    assert np.all(np.isfinite(each[name])) and float(each[name][2]) >= 1.0 - 1e-6, name
    assert _in_range(name, each[name]), name


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_huge_and_tiny_coordinates_match_unit_scale(scale):
  pred, target = random_boxes(16, seed=12)
  pred[:4] = _inverted_boxes(4, seed=13)[0]
  unit = jax.jit(_each)(pred, target)

  @jax.jit
  def scaled(p, t):
    grads = {name: jax.grad(lambda p: getattr(losses, name)(p, t, reduction="sum"))(p)
             for name in LOSSES}
    return _each(p, t), grads

  got, grads = scaled(pred * np.float32(scale), target * np.float32(scale))
  for name in LOSSES:
    np.testing.assert_allclose(got[name], unit[name], rtol=2e-5, atol=2e-6, err_msg=name)
    assert np.all(np.isfinite(grads[name])), name
  cx = jax.jit(lambda p, t: losses.ciou_loss(p, t, box_format="cxcywh", reduction="none"))(
      losses.box_convert(pred * np.float32(scale), in_format="xyxy", out_format="cxcywh"),
      losses.box_convert(target * np.float32(scale), in_format="xyxy", out_format="cxcywh"))
  np.testing.assert_allclose(cx, unit["ciou_loss"], rtol=1e-4, atol=1e-5)
  iou = losses.box_iou(pred * np.float32(scale), target * np.float32(scale))
  assert np.all(np.isfinite(iou)) and np.all((iou >= 0) & (iou <= 1))


# Second derivatives scale as 1 / size², so boxes of size 1e-20 have true Hessians
# of ~1e40, past float32: tiny boxes are checked for values and gradients above.
EXTREME_PRED = np.array([
    [0.0, 0.0, 2e20, 3e20],     # huge
    [1e5, 1e5, 1e5 + 3.0, 1e5 + 2.0],  # small next to a large offset
    [1.0, 1.0, 1.0, 1.0],       # a point
    [0.0, 0.0, 0.0, 2.0],       # zero width
    [2.0, 2.0, 0.0, 0.0],       # inverted (the issue's box)
    [0.0, 3.0, 1.0, 1.0],       # inverted height only
    [0.0, 0.0, 1.0, 1.0],       # identical to its target
    [5.0, 5.0, 6.0, 6.0],       # disjoint
], np.float32)
EXTREME_TARGET = np.array([
    [1e20, 1e20, 4e20, 2e20],
    [1e5, 1e5, 1e5 + 2.0, 1e5 + 2.0],
    [1.0, 1.0, 1.0, 1.0],
    [0.0, 0.0, 0.0, 2.0],
    [0.0, 0.0, 1.0, 1.0],
    [0.0, 0.0, 2.0, 1.0],
    [0.0, 0.0, 1.0, 1.0],
    [0.0, 0.0, 1.0, 1.0],
], np.float32)


@pytest.mark.parametrize("name", LOSSES)
def test_hessian_of_the_mean_is_finite_at_extremes(name):
  fn = getattr(losses, name)
  hess = jax.jit(jax.hessian(fn, argnums=(0, 1)))(EXTREME_PRED, EXTREME_TARGET)
  for block in jax.tree_util.tree_leaves(hess):
    assert block.shape == (8, 4, 8, 4) and np.all(np.isfinite(block)), name

  # Not vacuous: curvature where the boxes are of ordinary size.
  assert np.any(np.asarray(hess[0][0])[4:, :, 4:, :] != 0), name


def test_matched_and_pairwise_iou_have_finite_hessians_at_extremes():
  for fn in (lambda a, b: jnp.sum(losses.matched_box_iou(a, b)),
             lambda a, b: jnp.sum(losses.box_iou(a, b))):
    hess = jax.jit(jax.hessian(fn, argnums=(0, 1)))(EXTREME_PRED, EXTREME_TARGET)
    assert all(np.all(np.isfinite(h)) for h in jax.tree_util.tree_leaves(hess))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_extremes_are_finite_and_keep_dtype(dtype):
  keep = slice(2, None) if dtype == jnp.float16 else slice(None)  # float16 tops out at 65504
  p, t = jnp.asarray(EXTREME_PRED[keep], dtype), jnp.asarray(EXTREME_TARGET[keep], dtype)
  p, t = jnp.concatenate([p, jnp.asarray(DEGENERATE_PRED, dtype)]), jnp.concatenate(
      [t, jnp.asarray(DEGENERATE_TARGET, dtype)])

  @jax.jit
  def run(p, t):
    return {name: jax.value_and_grad(lambda p: getattr(losses, name)(p, t))(p)
            for name in LOSSES}, _each(p, t)

  means, each = run(p, t)
  for name in LOSSES:
    value, grad = means[name]
    assert value.dtype == dtype and grad.dtype == dtype and each[name].dtype == dtype
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad, np.float32)))
    assert _in_range(name, np.minimum(np.asarray(each[name], np.float32), SUP[name] - 1e-6)), name


@pytest.mark.slow
def test_half_precision_gradient_saturates_and_float32_keeps_forward_mode():
  # Two identical zero-width boxes: the eps-guarded IoU changes at ~1 / eps there.
  box = jnp.array([[0.0, 0.0, 0.0, 2.0]])
  g32 = jax.grad(losses.iou_loss)(box, box)
  assert np.abs(np.asarray(g32)).max() > 65504  # past float16's range in float32
  g16 = jax.grad(losses.iou_loss)(box.astype(jnp.float16), box.astype(jnp.float16))
  assert g16.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(g16, np.float32)))
  np.testing.assert_array_equal(np.sign(np.asarray(g16, np.float32)), np.sign(g32))
  # float32 boxes have no custom rule in the way: forward mode works.
  pred, target = random_boxes(3, seed=14)
  fwd = jax.jacfwd(losses.ciou_loss)(pred, target)
  np.testing.assert_allclose(fwd, jax.grad(losses.ciou_loss)(pred, target), rtol=1e-5, atol=1e-7)
