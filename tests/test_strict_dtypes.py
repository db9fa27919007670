"""Every loss, penalty and regularizing transform under strict dtype promotion.

``jax_numpy_dtype_promotion="strict"`` turns every implicit promotion (float16 +
float32, float32 + bool, int32 / float32, ...) into a TypePromotionError, so
these tests fail if the library relies on one anywhere in a value or gradient
computation. Each test runs inside ``jax.numpy_dtype_promotion("strict")`` (the
autouse fixture below) and checks the dtypes the functions return:

* losses return the dtype of their floating inputs (half precision stays half),
  and their gradients have the inputs' dtype;
* penalties accumulate half-precision leaves in float32 (so ``Σw²`` cannot
  overflow) and return float32 for float16 / bfloat16 parameters, as their
  docstrings say ("float32 or wider"); their gradients have the leaves' dtype;
* ``class_weights`` takes integer labels only and returns float32;
* ``uncertainty_weighted`` with float16 losses and float32 log-variances returns
  float32 (documented promotion, done with explicit casts).

Each dtype compiles one program holding every function, to keep this fast.
Not covered here: optax's own ``scale_by_adam`` bias correction and its
schedules (``cosine_decay_schedule``, ...) raise under strict mode inside optax
(``float ** int32``, ``minimum(int32, float)``); the transforms are tested with
schedules written for strict mode.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossreg_jax import losses
from lossreg_jax import regularizers as reg
from lossreg_jax.regularizers import penalties

DTYPES = [jnp.float32, jnp.float16, jnp.bfloat16]
N, C = 6, 5  # batch, classes


@pytest.fixture(autouse=True)
def _strict():
  with jax.numpy_dtype_promotion("strict"):
    yield


def _inputs(dtype):
  rng = np.random.default_rng(0)
  f = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype)
  xy = rng.uniform(0, 4, size=(2, N, 2))
  wh = rng.uniform(0.5, 2, size=(2, N, 2))
  boxes = jnp.asarray(np.concatenate([xy, xy + wh], -1), dtype)
  probs = jax.nn.softmax(f(N, C).astype(jnp.float32)).astype(dtype)
  return {
      "x": f(N, 3),
      "y": f(N, 3),
      "logits": f(N, C),
      "soft": probs,
      "int_labels": jnp.asarray(rng.integers(0, C, N), jnp.int32),
      "binary": jnp.asarray(rng.integers(0, 2, (N, C)), dtype),
      "p": jnp.asarray(rng.uniform(0.05, 0.95, (N, C)), dtype),
      "signs": jnp.asarray(rng.choice([-1.0, 1.0], (N, 3)), dtype),
      "boxes": boxes[0],
      "target_boxes": boxes[1],
      "hidden": f(N, 4),
      "weight": f(4, C),
      "weights": jnp.asarray(rng.uniform(0.5, 1.5, N), dtype),
  }


def _sum_of_squares(prediction, target):
  return jnp.sum((prediction - target) ** 2)


# name -> (argument names differentiated, fn(args, inputs) -> loss). The first
# argument is differentiated; every other array is a constant.
LOSS_CASES = {
    "absolute_error": lambda a, d: losses.absolute_error(a, d["y"]),
    "asymmetric_squared_error": lambda a, d: losses.asymmetric_squared_error(
        a, d["y"], weights=d["weights"][:, None] * jnp.ones_like(a)),
    "huber_loss": lambda a, d: losses.huber_loss(a, d["y"], delta=0.5),
    "log_cosh": lambda a, d: losses.log_cosh(a, d["y"], reduction="sum"),
    "quantile_loss": lambda a, d: losses.quantile_loss(a, d["y"], quantile=0.3),
    "smooth_l1_loss": lambda a, d: losses.smooth_l1_loss(a, d["y"], beta=0.5),
    "squared_error": lambda a, d: losses.squared_error(a, d["y"]),
    "hinge_loss": lambda a, d: losses.hinge_loss(a, d["signs"]),
    "softmax_cross_entropy": lambda a, d: losses.softmax_cross_entropy(
        a, d["soft"], label_smoothing=0.1, weights=d["weights"]),
    "softmax_cross_entropy_with_integer_labels":
        lambda a, d: losses.softmax_cross_entropy_with_integer_labels(
            a, d["int_labels"], label_smoothing=0.1, ignore_index=0,
            class_weights=jnp.linspace(0.5, 1.5, C).astype(a.dtype)),
    "sigmoid_binary_cross_entropy": lambda a, d: losses.sigmoid_binary_cross_entropy(
        a, d["binary"], positive_weight=2.0, label_smoothing=0.1),
    "sigmoid_focal_loss": lambda a, d: losses.sigmoid_focal_loss(
        a, d["binary"], alpha=0.25, gamma=2.0),
    "binary_cross_entropy": lambda a, d: losses.binary_cross_entropy(
        jax.nn.sigmoid(a), d["binary"], positive_weight=2.0),
    "categorical_cross_entropy": lambda a, d: losses.categorical_cross_entropy(
        jax.nn.softmax(a), d["soft"], where=d["int_labels"] > 0),
    "iou_loss": lambda a, d: losses.iou_loss(a, d["target_boxes"]),
    "giou_loss": lambda a, d: losses.giou_loss(a, d["target_boxes"], weights=d["weights"]),
    "diou_loss": lambda a, d: losses.diou_loss(a, d["target_boxes"], reduction="sum"),
    "ciou_loss": lambda a, d: losses.ciou_loss(a, d["target_boxes"],
                                               where=d["int_labels"] > 0),
    "box_iou": lambda a, d: jnp.sum(losses.box_iou(a, d["target_boxes"])),
    "matched_box_iou": lambda a, d: jnp.sum(losses.matched_box_iou(a, d["target_boxes"])),
    "box_convert": lambda a, d: jnp.sum(losses.box_convert(a, in_format="xyxy",
                                                           out_format="cxcywh")),
    "weighted_sum": lambda a, d: losses.weighted_sum(
        {"a": jnp.sum(a), "b": jnp.sum(a * a)}, {"a": 0.5, "b": 2.0})[0],
    "uncertainty_weighted": lambda a, d: losses.uncertainty_weighted(
        {"a": jnp.sum(a * a), "b": jnp.mean(a)},
        {"a": jnp.zeros((), a.dtype), "b": jnp.asarray(0.5, a.dtype)})[0],
    "per_example": lambda a, d: losses.per_example(_sum_of_squares)(
        a, d["y"], weights=d["weights"]),
    "linear_softmax_cross_entropy": lambda a, d: losses.linear_softmax_cross_entropy(
        d["hidden"], a, d["int_labels"], token_chunk_size=4,
        strategy="tokens", label_smoothing=0.1, ignore_index=0),
}
# Which input each case differentiates.
WRT = {
    "hinge_loss": "x", "softmax_cross_entropy": "logits", "sigmoid_binary_cross_entropy":
    "logits", "sigmoid_focal_loss": "logits", "binary_cross_entropy": "logits",
    "categorical_cross_entropy": "logits", "softmax_cross_entropy_with_integer_labels":
    "logits", "iou_loss": "boxes", "giou_loss": "boxes", "diou_loss": "boxes",
    "ciou_loss": "boxes", "box_iou": "boxes", "linear_softmax_cross_entropy": "weight",
    "matched_box_iou": "boxes", "box_convert": "boxes",
}
# The same large-vocabulary loss through its other code path (vocab chunks).
EXTRA = {
    "linear_softmax_cross_entropy[vocab]":
        ("weight", lambda a, d: losses.linear_softmax_cross_entropy(
            d["hidden"], a, d["int_labels"], chunk_size=2, strategy="vocab",
            weights=d["weights"])),
    "linear_softmax_cross_entropy[hidden]":
        ("hidden", lambda a, d: losses.linear_softmax_cross_entropy(
            a, d["weight"], d["int_labels"], token_chunk_size=4, strategy="tokens",
            reduction="sum")),
}
NOT_DIFFERENTIABLE = {"class_weights"}  # integer labels in, float32 weights out


def test_every_public_loss_is_covered():
  assert set(LOSS_CASES) | NOT_DIFFERENTIABLE == set(losses.__all__)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_losses_value_and_grad_keep_dtype_under_strict(dtype):
  inputs = _inputs(dtype)
  cases = {name: (WRT.get(name, "x"), fn) for name, fn in LOSS_CASES.items()} | EXTRA

  @jax.jit
  def everything(d):
    out = {name: jax.value_and_grad(lambda a, fn=fn: fn(a, d))(d[wrt])
           for name, (wrt, fn) in cases.items()}
    out["class_weights"] = (losses.class_weights(d["int_labels"], C), None)
    return out

  out = everything(inputs)
  for name, (value, grad) in out.items():
    if name == "class_weights":
      assert value.dtype == jnp.float32 and value.shape == (C,), name
      assert np.all(np.isfinite(np.asarray(value))), name
      continue
    wrt = cases[name][0]
    assert value.dtype == dtype and value.shape == (), (name, value.dtype, value.shape)
    assert grad.dtype == dtype and grad.shape == inputs[wrt].shape, (name, grad.dtype)
    assert np.isfinite(float(value)), name
    assert np.all(np.isfinite(np.asarray(grad, np.float32))), name
    # The gradient is not identically 0 (the loss reached its input).
    assert np.any(np.asarray(grad, np.float32) != 0), name


def test_uncertainty_weighted_promotes_explicitly_under_strict():
  # float16 losses with float32 log-variances give float32, as in standard mode.
  fn = jax.jit(jax.value_and_grad(
      lambda s: losses.uncertainty_weighted({"a": jnp.float16(1.5)}, {"a": s})[0]))
  value, grad = fn(jnp.float32(0.25))
  assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
  np.testing.assert_allclose(value, np.exp(-0.25) * 1.5 + 0.25, rtol=1e-6)


def test_mixed_user_dtypes_follow_standard_promotion_explicitly():
  # Mixed hidden / weight dtypes: the loss casts explicitly (result in float32).
  d16, d32 = _inputs(jnp.float16), _inputs(jnp.float32)
  value = jax.jit(lambda h, w, y: losses.linear_softmax_cross_entropy(
      h, w, y, strategy="tokens"))(d16["hidden"], d32["weight"], d32["int_labels"])
  assert value.dtype == jnp.float32 and np.isfinite(float(value))
  iou = jax.jit(losses.box_iou)(d16["boxes"], d32["target_boxes"])
  assert iou.dtype == jnp.float16 and iou.shape == (N, N)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_penalties_accumulate_in_float32_under_strict(dtype):
  rng = np.random.default_rng(1)
  params = {"w": jnp.asarray(rng.normal(size=(4, 3)), dtype),
            "b": jnp.asarray(rng.normal(size=(3,)), dtype)}
  mask = {"w": True, "b": jnp.asarray(False)}  # a traced mask leaf goes through jnp.where
  fns = {
      "l1_penalty": lambda p: penalties.l1_penalty(p, mask=mask),
      "l2_penalty": lambda p: penalties.l2_penalty(p),
      "elastic_net_penalty": lambda p: penalties.elastic_net_penalty(
          p, alpha=jnp.asarray(0.1, dtype), l1_ratio=0.3),
      "group_lasso_penalty": lambda p: penalties.group_lasso_penalty(p, scale_by_size=True),
  }
  assert set(fns) <= set(penalties.__all__)
  out = jax.jit(lambda p: {k: jax.value_and_grad(f)(p) for k, f in fns.items()})(params)
  p32 = jax.tree.map(lambda x: np.asarray(x, np.float32), params)
  expected_l1 = np.abs(p32["w"]).sum()
  for name, (value, grad) in out.items():
    assert value.dtype == jnp.float32, (name, value.dtype)
    assert np.isfinite(float(value)), name
    for g, p in zip(jax.tree.leaves(grad), jax.tree.leaves(params), strict=True):
      assert g.dtype == dtype and g.shape == p.shape, (name, g.dtype)
  np.testing.assert_allclose(out["l1_penalty"][0], expected_l1, rtol=1e-6)
  assert np.all(np.asarray(out["l1_penalty"][1]["b"], np.float32) == 0)
  # Converters of Keras / scikit-learn strengths accept arrays too.
  # elastic net = alpha·r·Σ|w| + alpha·(1 - r)/2·Σw²: the coefficients are
  # rounded in alpha's dtype (as in standard mode), the sums are float32.
  alpha = jnp.asarray(0.1, dtype)
  c1, c2 = float(alpha * 0.3), float(0.5 * alpha * (1 - 0.3))
  expected = (c1 * sum(np.abs(x).sum() for x in p32.values())
              + c2 * sum((x ** 2).sum() for x in p32.values()))
  np.testing.assert_allclose(out["elastic_net_penalty"][0], expected, rtol=1e-5)
  # Converters of Keras / scikit-learn strengths accept (mixed-dtype) arrays too,
  # with the dtype standard promotion would give.
  l1, l2 = penalties.sklearn_to_l1_l2(jnp.asarray(0.5, dtype), jnp.float32(0.25))
  assert l1.dtype == jnp.float32 and l2.dtype == jnp.float32
  np.testing.assert_allclose([l1, l2], penalties.sklearn_to_l1_l2(0.5, 0.25), rtol=1e-6)
  k1, k2 = penalties.keras_to_l1_l2(jnp.asarray(0.125, dtype), jnp.asarray(0.25, dtype))
  assert k1.dtype == dtype and k2.dtype == dtype
  np.testing.assert_allclose(np.float32([k1, k2]), penalties.keras_to_l1_l2(0.125, 0.25))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_transforms_keep_update_dtype_under_strict(dtype):
  # float32 array-valued schedules (strict-safe: they cast the int32 count).
  lr = lambda count: 0.1 / (1.0 + count.astype(jnp.float32))
  strength = lambda count: jnp.float32(1e-2) * jnp.ones((), jnp.float32)
  tx = optax.chain(
      reg.add_l1_decay(strength, mask=reg.decay_mask),
      reg.add_elastic_net_decay(0.01, strength),
      reg.proximal_l1(lr, 0.05),
      reg.proximal_elastic_net(lr, strength, 0.5, mask=reg.decay_mask),
  )
  rng = np.random.default_rng(2)
  params = {"w": jnp.asarray(rng.normal(size=(3, 3)), dtype),
            "b": jnp.asarray(rng.normal(size=(3,)), dtype)}
  grads = jax.tree.map(lambda x: x * jnp.asarray(0.5, dtype), params)

  @jax.jit
  def two_steps(p):
    state = tx.init(p)
    for _ in range(2):
      u, state = tx.update(grads, state, p)
      p = optax.apply_updates(p, u)
    return p

  new = two_steps(params)
  for name in params:
    assert new[name].dtype == dtype, (name, new[name].dtype)
    assert np.all(np.isfinite(np.asarray(new[name], np.float32))), name
    assert np.any(np.asarray(new[name] != params[name])), name
