"""Every loss at the extremes: float32 accuracy against float64, finite second
derivatives, half precision, and the loss contract's weights rule and checks.

The accuracy tests measure errors in float32 ulps: ``|got − exact| / scale``
in units of ``2⁻²³`` (the spacing of float32 numbers in ``[1, 2)``), with
``exact`` computed in float64 from the same float32 inputs. For a value,
``scale`` is the value itself. For a gradient that is a difference of two
terms (soft labels, where it crosses zero at ``σ(x) = y``), ``scale`` is the
sum of the terms' magnitudes, the accuracy any float32 formula can have; for
hard labels one term is 0 and this is the plain relative error.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossreg_jax import losses

ULP = 2.0**-23
TINY = 1e-37  # below, float32 results are subnormal (flushed to 0 on CPU)
# 40001 logits in [−100, 100] (step 0.005, so −17 and −10 are on the grid).
GRID = np.linspace(-100, 100, 40001).astype(np.float32)


def _ulps(got, exact, scale):
  keep = scale > TINY
  got = np.asarray(got, np.float64)[keep]
  return float(np.max(np.abs(got - exact[keep]) / scale[keep]) / ULP)


def _sp(z):  # softplus in float64, overflow-free
  return np.logaddexp(0.0, z)


def _sigmoid(z):
  return np.exp(-_sp(-z))


# ------------------------------------------------ sigmoid BCE vs float64


def _bce_reference(x, y, pw, ls):
  x = x.astype(np.float64)
  ys, yb = y * (1 - ls) + 0.5 * ls, (1 - y) * (1 - ls) + 0.5 * ls
  value = pw * ys * _sp(-x) + yb * _sp(x)
  a, b = yb * _sigmoid(x), pw * ys * _sigmoid(-x)
  return value, a - b, a + b


@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("pw", [1.0, 2.5])
def test_sigmoid_bce_value_and_grad_within_ulps_of_float64(pw, ls):
  # Issue 10: for x < 0, y = 0 the former form cancelled (4.578e-5 for 4.540e-5
  # at x = −10, 0 for 2.06e-9 at x = −20). Every logit in [−100, 100], hard and
  # soft labels, with and without positive_weight and label smoothing.
  fn = jax.jit(jax.vmap(jax.value_and_grad(partial(
      losses.sigmoid_binary_cross_entropy, positive_weight=pw, label_smoothing=ls,
      reduction="sum"))))
  for y in (0.0, 1.0, 0.3, 0.7):
    value, grad = fn(GRID, np.full_like(GRID, y))
    ref_value, ref_grad, scale = _bce_reference(GRID, y, pw, ls)
    assert _ulps(value, ref_value, ref_value) <= 4, y
    assert _ulps(grad, ref_grad, scale) <= 4, y


def test_sigmoid_bce_where_logit_and_label_disagree_in_sign():
  x = np.float32([-10.0, -17.0, -20.0, -50.0, -80.0])
  value, grad = jax.jit(jax.vmap(jax.value_and_grad(partial(
      losses.sigmoid_binary_cross_entropy, reduction="sum"))))(x, np.zeros(5, np.float32))
  exact = np.log1p(np.exp(x.astype(np.float64)))  # 4.540e-5 at −10, 2.06e-9 at −20
  np.testing.assert_allclose(value, exact, rtol=4 * ULP)
  np.testing.assert_allclose(grad, _sigmoid(x.astype(np.float64)), rtol=4 * ULP)
  # optax agrees there (its log_sigmoid is exact too).
  np.testing.assert_allclose(value, optax.losses.sigmoid_binary_cross_entropy(
      x, np.zeros(5, np.float32)), rtol=4 * ULP)


def test_sigmoid_bce_at_infinite_logits():
  # Issue 22: an infinite logit with the matching hard label gave NaN (the
  # linear term 0·inf); the loss is 0 there, its gradient 0, and the
  # mismatching label gives +inf with a finite gradient (+1 or −pw). Checked
  # against the float64 formula with 0·inf = 0, in every float dtype, with
  # positive_weight and label smoothing (rows of one call) and without them
  # (the default path); value, jax.grad and jax.jvp alike, and the mean.
  # (torch's binary_cross_entropy_with_logits and optax give NaN there too.)
  x = np.tile(np.array([np.inf, -np.inf, np.inf, -np.inf], np.float32), (4, 1))
  y = np.float32([1.0, 0.0, 0.0, 1.0])  # matching, matching, mismatching, mismatching
  pw = np.float32([[1.0], [2.5], [1.0], [2.5]])
  ls = np.float32([[0.0], [0.0], [0.1], [0.1]])
  ys, yb = y * (1 - ls) + 0.5 * ls, (1 - y) * (1 - ls) + 0.5 * ls
  sp = lambda z: np.logaddexp(0, z.astype(np.float64))
  with np.errstate(invalid="ignore"):  # 0·inf is NaN in NumPy: its limit is 0
    ref = np.where(pw * ys == 0, 0, pw * ys * sp(-x)) + np.where(yb == 0, 0, yb * sp(x))
  ref_grad = np.where(x > 0, yb, -pw * ys)  # σ(+inf) = 1, σ(−inf) = 0

  def run(a):
    weighted = partial(losses.sigmoid_binary_cross_entropy, labels=np.tile(y, (4, 1)),
                       positive_weight=pw, label_smoothing=ls, reduction="none")
    plain = partial(losses.sigmoid_binary_cross_entropy, labels=y, reduction="none")
    out = []
    for fn, arg in ((weighted, a), (plain, a[0])):
      out += [fn(arg), jax.grad(lambda b: jnp.sum(fn(b).astype(jnp.float32)))(arg),
              jax.jvp(fn, (arg,), (jnp.ones_like(arg),))[1]]
    mean, grad = jax.value_and_grad(
        lambda b: losses.sigmoid_binary_cross_entropy(b, y[:2]))(a[0, :2])
    return out + [mean, grad]

  for dtype in (jnp.float32, jnp.float16, jnp.bfloat16):
    got = [np.float64(v) for v in jax.jit(run)(jnp.asarray(x, dtype))]
    name = jnp.dtype(dtype).name
    for i, (want, want_grad) in enumerate(((ref, ref_grad), (ref[0], ref_grad[0]))):
      value, grad, tangent = got[3 * i: 3 * i + 3]
      np.testing.assert_array_equal(value, want, err_msg=name)
      np.testing.assert_allclose(grad, want_grad, rtol=1e-2, err_msg=name)
      np.testing.assert_allclose(tangent, want_grad, rtol=1e-2, err_msg=name)
    assert got[6] == 0.0 and np.all(got[7] == 0), name  # matching labels: mean 0, grad 0


def test_focal_at_infinite_logits():
  # The same for the focal loss: 0 (gradient 0) with the matching label, +inf
  # with gradient ±α_t otherwise, never NaN (whole and real gamma, alpha).
  x = np.array([np.inf, -np.inf, np.inf, -np.inf], np.float32)
  y = np.float32([1.0, 0.0, 0.0, 1.0])
  configs = ((2.0, None), (1.5, None), (0.0, None), (2.0, 0.25))

  def run(a):
    out = []
    for gamma, alpha in configs:
      fn = partial(losses.sigmoid_focal_loss, labels=y, gamma=gamma, alpha=alpha,
                   reduction="none")
      out.append((fn(a), jax.grad(lambda b: jnp.sum(fn(b)))(a),
                  jax.jvp(fn, (a,), (jnp.ones_like(a),))[1]))
    return out

  for (gamma, alpha), (value, grad, tangent) in zip(configs, jax.jit(run)(x)):
    a_t = np.ones(4) if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    expected = a_t * np.float32([0.0, 0.0, 1.0, -1.0])
    np.testing.assert_array_equal(value, [0.0, 0.0, np.inf, np.inf])
    np.testing.assert_allclose(grad, expected, atol=1e-6, err_msg=str(gamma))
    np.testing.assert_allclose(tangent, expected, atol=1e-6, err_msg=str(gamma))


# ------------------------------------------------- focal loss vs float64


def _focal_reference(x, y, gamma):
  x = x.astype(np.float64)
  p, p_neg = _sigmoid(x), _sigmoid(-x)  # σ(x), 1 − σ(x) = σ(−x), both exact
  q = y * p_neg + (1 - y) * p  # 1 − p_t
  ce = y * _sp(-x) + (1 - y) * _sp(x)
  value = ce * q**gamma
  # dL/dx = (p − y)·q^γ + γ·(1 − 2y)·p(1 − p)·ce·q^(γ−1): two terms, with
  # p − y = (1 − y)·σ(x) − y·σ(−x) (p − 1 would cancel even in float64).
  a = ((1 - y) * p - y * p_neg) * q**gamma
  with np.errstate(divide="ignore", invalid="ignore"):
    b = np.where(q > 0, gamma * (1 - 2 * y) * p * p_neg * ce * q ** (gamma - 1), 0)
  return value, a + b, ((1 - y) * p + y * p_neg) * q**gamma + np.abs(b)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
def test_focal_value_and_grad_within_ulps_of_float64(gamma):
  fn = jax.jit(jax.vmap(jax.value_and_grad(partial(
      losses.sigmoid_focal_loss, gamma=gamma, reduction="sum"))))
  for y in (0.0, 1.0, 0.3):
    value, grad = fn(GRID, np.full_like(GRID, y))
    ref_value, ref_grad, scale = _focal_reference(GRID, y, gamma)
    # q^γ rounds a little more than the cross-entropy: about γ ulps more.
    assert _ulps(value, ref_value, ref_value) <= 4 + 2 * gamma, y
    assert _ulps(grad, ref_grad, scale) <= 4 + 2 * gamma, y


def test_focal_never_exceeds_bce_on_the_grid():
  # torchvision's test_correct_ratio (pytorch/vision, test/test_ops.py,
  # TestFocalLoss): focal ≤ BCE must hold elementwise; here at every logit of
  # the grid, for binary labels, gamma in {0, 2} and alpha in {None, 0.58, 1}.
  for y in (0.0, 1.0):
    yy = np.full_like(GRID, y)
    bce = np.asarray(losses.sigmoid_binary_cross_entropy(GRID, yy, reduction="none"))
    for gamma in (0, 2, 0.5):
      for alpha in (None, 0.58, 1.0):
        focal = np.asarray(losses.sigmoid_focal_loss(
            GRID, yy, gamma=gamma, alpha=alpha, reduction="none"))
        assert np.all(focal <= bce), (y, gamma, alpha)


# --------------------------------- finite first and second derivatives


_LOGITS = np.float32([-1e4, -100.0, -44.0, -17.0, 0.0, 17.0, 44.0, 100.0, 1e4])
_LABELS = np.float32([0.0, 1.0, 0.0, 0.3, 1.0, 0.7, 1.0, 0.0, 1.0])
_BINARY = np.float32([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
_PRED = np.float32([-1e4, -1.0, 0.0, 0.5, 1e4, 3.0])
_TARGET = np.float32([1e4, 0.0, 0.0, 0.5, -1e4, -2.0])
_CLS_LOGITS = np.float32([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4],
                          [1.0, 2.0, 3.0]])
_INT_LABELS = np.int32([1, 0, 2, 1])
_SOFT = np.float32([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
_PROBS = np.float32([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1e-30, 0.5, 0.5], [0.2, 0.3, 0.5]])
_BOXES = np.float32([[0, 0, 1, 1], [0, 0, 2, 2], [1, 1, 3, 3]])
_PRED_BOXES = np.float32([[1e4, 1e4, 1e4 + 1, 1e4 + 1], [0, 0, 0, 0], [-1e4, -1e4, 1e4, 1e4]])
_HIDDEN = np.float32([[1e2, -1e2], [0.0, 1.0]])
_WEIGHT = np.float32([[1e2, -1e2, 0.0], [1.0, 2.0, 3.0]])

# name -> (first argument (differentiated), fn(a) -> scalar). Every loss of
# losses.__all__ that takes predictions, logits, probabilities or boxes.
SECOND_ORDER = {
    "squared_error": (_PRED, lambda a: losses.squared_error(a, _TARGET)),
    "absolute_error": (_PRED, lambda a: losses.absolute_error(a, _TARGET)),
    "huber_loss": (_PRED, lambda a: losses.huber_loss(a, _TARGET, delta=0.5)),
    "smooth_l1_loss": (_PRED, lambda a: losses.smooth_l1_loss(a, _TARGET, beta=0.5)),
    "log_cosh": (_PRED, lambda a: losses.log_cosh(a, _TARGET)),
    "quantile_loss": (_PRED, lambda a: losses.quantile_loss(a, _TARGET, quantile=0.2)),
    "asymmetric_squared_error": (_PRED, lambda a: losses.asymmetric_squared_error(a, _TARGET)),
    "hinge_loss": (_PRED, lambda a: losses.hinge_loss(a, np.sign(_TARGET + 0.5))),
    "binary_cross_entropy": (
        np.float32([0.0, 1.0, 1e-30, 0.5, 1 - 1e-7, 1.0, 0.0, 0.3, 1.0]),
        lambda a: losses.binary_cross_entropy(a, _LABELS, positive_weight=2.0,
                                              label_smoothing=0.1)),
    "sigmoid_binary_cross_entropy": (
        _LOGITS, lambda a: losses.sigmoid_binary_cross_entropy(a, _LABELS)),
    "sigmoid_binary_cross_entropy[pw, ls]": (
        _LOGITS, lambda a: losses.sigmoid_binary_cross_entropy(
            a, _LABELS, positive_weight=2.5, label_smoothing=0.1)),
    "softmax_cross_entropy": (
        _CLS_LOGITS, lambda a: losses.softmax_cross_entropy(a, _SOFT, label_smoothing=0.1)),
    "softmax_cross_entropy_with_integer_labels": (
        _CLS_LOGITS, lambda a: losses.softmax_cross_entropy_with_integer_labels(
            a, _INT_LABELS, label_smoothing=0.1)),
    "categorical_cross_entropy": (
        _PROBS, lambda a: losses.categorical_cross_entropy(a, _SOFT, label_smoothing=0.1)),
    "iou_loss": (_PRED_BOXES, lambda a: losses.iou_loss(a, _BOXES)),
    "giou_loss": (_PRED_BOXES, lambda a: losses.giou_loss(a, _BOXES)),
    "diou_loss": (_PRED_BOXES, lambda a: losses.diou_loss(a, _BOXES)),
    "ciou_loss": (_PRED_BOXES, lambda a: losses.ciou_loss(a, _BOXES)),
    "box_iou": (_PRED_BOXES, lambda a: jnp.mean(losses.box_iou(a, _BOXES))),
    "matched_box_iou": (_PRED_BOXES, lambda a: jnp.mean(losses.matched_box_iou(a, _BOXES))),
    "linear_softmax_cross_entropy": (
        _WEIGHT, lambda w: losses.linear_softmax_cross_entropy(_HIDDEN, w, np.int32([0, 2]))),
}
for _gamma in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
  for _labels, _kind in ((_LABELS, "soft"), (_BINARY, "hard")):
    SECOND_ORDER[f"sigmoid_focal_loss[{_gamma}, {_kind}]"] = (
        _LOGITS, partial(lambda a, g, y: losses.sigmoid_focal_loss(a, y, gamma=g),
                         g=_gamma, y=_labels))
SECOND_ORDER["sigmoid_focal_loss[1.5, alpha]"] = (
    _LOGITS, lambda a: losses.sigmoid_focal_loss(a, _BINARY, gamma=1.5, alpha=0.25))
# Not losses of predictions: they combine given losses, wrap a user's loss,
# compute weights from labels, or convert box formats (linear in the boxes).
NOT_OF_PREDICTIONS = {"weighted_sum", "uncertainty_weighted", "per_example", "class_weights",
                      "box_convert"}


def test_second_order_sweep_covers_every_loss():
  covered = {name.split("[")[0] for name in SECOND_ORDER}
  assert covered | NOT_OF_PREDICTIONS == set(losses.__all__)


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_finite_first_and_second_derivatives_at_extremes(name):
  # |logit| up to 1e4 in float32: value, gradient and jax.hessian of the mean
  # are finite (optax's test_extreme_logits_finite_gradients asks this of the
  # focal loss with gamma = 0.5; issue 10 found NaN for 0.5, 1.5, 2.5 at 44).
  a, fn = SECOND_ORDER[name]
  value, grad, hess = jax.jit(lambda a: (fn(a), jax.grad(fn)(a), jax.hessian(fn)(a)))(a)
  assert value.dtype == jnp.float32
  assert np.isfinite(float(value)), name
  assert np.all(np.isfinite(grad)), (name, grad)
  assert np.all(np.isfinite(hess)), name


# ------------------------------------------------------- half precision


def test_half_precision_mean_does_not_overflow_before_the_reduction():
  # Issue 10: float16 [300, 0] against zeros: 300² = 90000 is no float16, but
  # the mean, 45000, is.
  x = jnp.float16([300.0, 0.0])
  value, grad = jax.jit(jax.value_and_grad(losses.squared_error))(x, jnp.zeros(2, jnp.float16))
  assert value.dtype == jnp.float16 and value == jnp.float16(45000.0)  # 44992
  np.testing.assert_array_equal(np.float32(grad), [300.0, 0.0])
  assert losses.squared_error(x, jnp.zeros(2, jnp.float16), reduction="sum") == np.inf


REGRESSION = ["squared_error", "absolute_error", "huber_loss", "smooth_l1_loss",
              "log_cosh", "quantile_loss", "asymmetric_squared_error"]


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_large_half_precision_weights_reduce_in_float32(name, dtype):
  fn = getattr(losses, name)
  p = np.float32([1.5, -2.0, 0, 0, 0, 0, 0, 0])
  t = np.zeros(8, np.float32)
  w = np.full(8, 60000.0, np.float32)  # weight·loss > 65504, the mean is not
  for reduction in ("mean", "weighted_mean"):
    got = jax.jit(partial(fn, reduction=reduction))(
        jnp.asarray(p, dtype), jnp.asarray(t, dtype), weights=jnp.asarray(w, dtype))
    ref = fn(jnp.asarray(p, dtype).astype(jnp.float32), jnp.asarray(t, dtype).astype(
        jnp.float32), weights=jnp.asarray(w, dtype).astype(jnp.float32), reduction=reduction)
    assert got.dtype == dtype and np.isfinite(float(got)), (reduction, got)
    np.testing.assert_allclose(float(got), float(ref), rtol=1e-2)


# -------------------------------------------------- the weights rule


def test_sample_weights_align_with_the_leading_axis():
  rng = np.random.default_rng(0)
  w = np.float32([1.0, 2.0, 3.0])
  for shape in ((3, 2), (3, 3), (3, 3, 2)):  # (N, d), (N, N), (N, N, d)
    p = rng.normal(size=shape).astype(np.float32)
    plain = np.asarray(losses.squared_error(p, 0 * p, reduction="none"))
    got = losses.squared_error(p, 0 * p, weights=w, reduction="none")
    np.testing.assert_allclose(got, plain * w.reshape((3,) + (1,) * (p.ndim - 1)), rtol=1e-6)
    np.testing.assert_allclose(
        losses.squared_error(p, 0 * p, weights=w, reduction="weighted_mean"),
        (plain * w.reshape((3,) + (1,) * (p.ndim - 1))).sum()
        / np.broadcast_to(w.reshape((3,) + (1,) * (p.ndim - 1)), shape).sum(), rtol=1e-6)
  # Not a prefix: NumPy broadcasting from the right (per column).
  p = rng.normal(size=(3, 2)).astype(np.float32)
  got = losses.squared_error(p, 0 * p, weights=np.float32([1.0, 5.0]), reduction="none")
  np.testing.assert_allclose(got, p**2 * [1.0, 5.0], rtol=1e-6)
  # Columns of a square loss need an explicit row vector.
  p = rng.normal(size=(3, 3)).astype(np.float32)
  got = losses.squared_error(p, 0 * p, weights=w[None, :], reduction="none")
  np.testing.assert_allclose(got, p**2 * w[None, :], rtol=1e-6)
  # A mask of shape (N,) selects samples (rows) too, consistently with weights.
  where = np.array([True, False, True])
  got = losses.squared_error(p, 0 * p, where=where, reduction="none")
  np.testing.assert_allclose(got, np.where(where[:, None], p**2, 0), rtol=1e-6)
  with pytest.raises(ValueError, match=r"weights.*\(3, 2\).*\(2, 3\)"):
    losses.squared_error(np.ones((3, 2), np.float32), np.ones((3, 2)), weights=np.ones((2, 3)))


def test_sample_weights_align_for_class_axis_losses():
  x = np.float32([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]])
  labels = np.int32([0, 2, 1])
  w = np.float32([1.0, 0.0, 2.0])
  plain = np.asarray(losses.softmax_cross_entropy_with_integer_labels(
      x, labels, reduction="none"))
  got = losses.softmax_cross_entropy_with_integer_labels(
      x, labels, weights=w, class_weights=np.float32([1.0, 1.0, 3.0]), reduction="none")
  np.testing.assert_allclose(got, plain * w * [1.0, 3.0, 1.0], rtol=1e-6)


# ------------------------------------------- concrete hyperparameter checks


@pytest.mark.parametrize("call, name", [
    (lambda v: losses.sigmoid_binary_cross_entropy(np.ones(3), np.ones(3), positive_weight=v),
     "positive_weight"),
    (lambda v: losses.binary_cross_entropy(np.full(3, 0.5), np.ones(3), positive_weight=v),
     "positive_weight"),
    (lambda v: losses.huber_loss(np.ones(3), np.zeros(3), delta=v), "delta"),
    (lambda v: losses.smooth_l1_loss(np.ones(3), np.zeros(3), beta=v), "beta"),
    (lambda v: losses.quantile_loss(np.ones(3), np.zeros(3), quantile=v), "quantile"),
    (lambda v: losses.asymmetric_squared_error(np.ones(3), np.zeros(3), under_weight=v),
     "under_weight"),
    (lambda v: losses.sigmoid_focal_loss(np.ones(3), np.ones(3), gamma=v), "gamma"),
    (lambda v: losses.sigmoid_focal_loss(np.ones(3), np.ones(3), alpha=v - 0.5), "alpha"),
    (lambda v: losses.sigmoid_binary_cross_entropy(np.ones(3), np.ones(3), label_smoothing=v),
     "label_smoothing"),
])
def test_array_hyperparameters_are_range_checked_when_concrete(call, name):
  # Issue 10: positive_weight=jnp.array(-1.0) gave a negative BCE, delta=-1 a
  # negative Huber loss. Arrays (any shape) are checked whenever concrete.
  for bad in (jnp.asarray(-1.0), np.float32([0.5, -1.0, 0.5]), jnp.asarray(np.nan)):
    with pytest.raises(ValueError, match=name):
      call(bad)


def test_traced_hyperparameters_are_not_checked():
  value = jax.jit(lambda d: losses.huber_loss(np.ones(3, np.float32), np.zeros(3), delta=d))(
      -1.0)
  assert np.isfinite(float(value))  # documented: only concrete values are checked


def test_out_of_range_integer_labels_raise_when_concrete():
  x = np.zeros((3, 4), np.float32)
  ce = losses.softmax_cross_entropy_with_integer_labels
  with pytest.raises(ValueError, match=r"labels.*\[0, 4\).*labels\[1\]=4"):
    ce(x, np.int32([0, 4, 1]))
  with pytest.raises(ValueError, match=r"labels.*-1"):
    ce(x, np.int32([0, -1, 1]), ignore_index=-100)
  # Excluded labels (ignore_index, where=False) may be anything.
  np.testing.assert_allclose(ce(x, np.int32([0, -100, 1]), ignore_index=-100), np.log(4),
                             rtol=1e-6)
  np.testing.assert_allclose(ce(x, np.int32([0, 9, 1]), where=np.array([True, False, True])),
                             np.log(4), rtol=1e-6)
  # Under jit the labels are traced: NaN, as documented.
  assert np.isnan(jax.jit(ce)(x, np.int32([0, 4, 1])))


# --------------------------------------------- categorical cross-entropy


def test_categorical_ce_all_zero_row_is_finite():
  p = np.float32([[0.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
  y = np.float32([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  loss = jax.jit(partial(losses.categorical_cross_entropy, reduction="none"))(p, y)
  grad = jax.jit(jax.grad(losses.categorical_cross_entropy))(p, y)
  # The zero row is clipped to epsilon everywhere: −log(1e-7).
  np.testing.assert_allclose(loss, [-np.log(np.float32(1e-7)), -np.log(0.3)], rtol=1e-6)
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("ls", [0.1, 0.3])
def test_categorical_ce_label_smoothing_matches_keras_formula_and_logit_twin(ls):
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(5, 4)).astype(np.float32)
  y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 5)]
  p = np.asarray(jax.nn.softmax(logits))
  # keras.losses.categorical_crossentropy(label_smoothing=ls): y·(1 − ls) + ls/C.
  ys = y * (1 - ls) + ls / 4
  expected = -(ys * np.log(np.clip(p / p.sum(-1, keepdims=True), 1e-7, 1 - 1e-7))).sum(-1)
  got = jax.jit(partial(losses.categorical_cross_entropy, label_smoothing=ls,
                        reduction="none"))(p, y)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  twin = losses.softmax_cross_entropy(logits, y, label_smoothing=ls, reduction="none")
  np.testing.assert_allclose(got, twin, rtol=1e-5)
  with pytest.raises(ValueError, match="label_smoothing"):
    losses.categorical_cross_entropy(p, y, label_smoothing=1.5)
