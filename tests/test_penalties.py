"""Tests for lossreg_jax.regularizers.penalties (numpy formulas as the reference)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lossreg_jax import regularizers as reg


def _params(seed=0):
  rng = np.random.default_rng(seed)
  return {
      "dense": {"kernel": rng.normal(size=(4, 3)).astype(np.float32),
                "bias": rng.normal(size=(3,)).astype(np.float32)},
      "conv": rng.normal(size=(2, 2, 1, 3)).astype(np.float32),
      "scale": np.float32(-0.7),
  }


def _np_leaves(params):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]


def _np_penalties(params, alpha, l1_ratio):
  leaves = _np_leaves(params)
  l1 = sum(np.abs(w).sum() for w in leaves)
  sq = sum((w ** 2).sum() for w in leaves)
  group = sum(np.sqrt((w ** 2).sum()) for w in leaves)
  group_scaled = sum(np.sqrt(w.size) * np.sqrt((w ** 2).sum()) for w in leaves)
  enet = alpha * l1_ratio * l1 + 0.5 * alpha * (1 - l1_ratio) * sq
  return {"l1": l1, "l2": 0.5 * sq, "enet": enet, "group": group,
          "group_scaled": group_scaled}


def test_values_match_numpy_under_jit():
  params = _params()
  alpha, l1_ratio = 0.3, 0.25
  ref = _np_penalties(params, alpha, l1_ratio)
  got = jax.jit(lambda p: {
      "l1": reg.l1_penalty(p),
      "l2": reg.l2_penalty(p),
      "enet": reg.elastic_net_penalty(p, alpha=alpha, l1_ratio=l1_ratio),
      "group": reg.group_lasso_penalty(p),
      "group_scaled": reg.group_lasso_penalty(p, scale_by_size=True),
  })(params)
  for name, value in ref.items():
    np.testing.assert_allclose(got[name], value, rtol=1e-5, err_msg=name)


def test_gradients_match_numpy():
  params = _params(1)
  alpha, l1_ratio = 0.8, 0.6
  leaves = _np_leaves(params)
  checks = {
      "l1": (reg.l1_penalty, [np.sign(w) for w in leaves]),
      "l2": (reg.l2_penalty, leaves),
      "enet": (lambda p: reg.elastic_net_penalty(p, alpha=alpha, l1_ratio=l1_ratio),
               [alpha * l1_ratio * np.sign(w) + alpha * (1 - l1_ratio) * w
                for w in leaves]),
      "group": (lambda p: reg.group_lasso_penalty(p, scale_by_size=True),
                [np.sqrt(w.size) * w / np.linalg.norm(w) for w in leaves]),
  }
  for name, (fn, expected) in checks.items():
    grads = jax.tree.leaves(jax.jit(jax.grad(fn))(params))
    for g, e in zip(grads, expected, strict=True):
      np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=name)


def test_traced_alpha_and_l1_ratio_pass_and_are_differentiable():
  params = _params(2)
  fn = jax.jit(lambda a, r: reg.elastic_net_penalty(params, alpha=a, l1_ratio=r))
  ref = _np_penalties(params, 0.5, 0.5)["enet"]
  np.testing.assert_allclose(fn(0.5, 0.5), ref, rtol=1e-5)
  d_alpha = jax.grad(fn)(0.5, 0.5)
  np.testing.assert_allclose(d_alpha, ref / 0.5, rtol=1e-5)


def test_pytree_mask_excludes_leaves():
  params = _params(3)
  mask = {"dense": {"kernel": True, "bias": False}, "conv": True, "scale": False}
  kept = {"dense": {"kernel": params["dense"]["kernel"]}, "conv": params["conv"]}
  ref = _np_penalties(kept, 1.0, 0.5)

  @jax.jit
  def run(p):
    grads = jax.grad(lambda q: reg.elastic_net_penalty(
        q, alpha=1.0, l1_ratio=0.5, mask=mask))(p)
    return (reg.l1_penalty(p, mask=mask), reg.l2_penalty(p, mask=mask),
            reg.group_lasso_penalty(p, mask=mask), grads)

  l1, l2, group, grads = run(params)
  np.testing.assert_allclose(l1, ref["l1"], rtol=1e-5)
  np.testing.assert_allclose(l2, ref["l2"], rtol=1e-5)
  np.testing.assert_allclose(group, ref["group"], rtol=1e-5)
  assert np.all(np.asarray(grads["dense"]["bias"]) == 0)
  assert float(grads["scale"]) == 0.0
  assert np.all(np.asarray(grads["conv"]) != 0)


def test_prefix_mask_and_callable_mask():
  params = _params(4)
  kept = {"dense": params["dense"]}
  np.testing.assert_allclose(
      reg.l1_penalty(params, mask={"dense": True, "conv": False, "scale": False}),
      _np_penalties(kept, 1.0, 1.0)["l1"], rtol=1e-5)
  # decay_mask as a callable keeps only ndim >= 2 leaves.
  kernels = {"dense": {"kernel": params["dense"]["kernel"]}, "conv": params["conv"]}
  np.testing.assert_allclose(
      reg.l2_penalty(params, mask=reg.decay_mask),
      _np_penalties(kernels, 1.0, 0.0)["l2"], rtol=1e-5)


def test_elementwise_bool_array_mask():
  w = jnp.array([1.0, -2.0, 3.0])
  m = jnp.array([True, False, True])
  assert float(jax.jit(lambda w, m: reg.l1_penalty({"w": w}, mask={"w": m}))(w, m)) == 4.0
  g = jax.grad(lambda w: reg.l2_penalty({"w": w}, mask={"w": m}))(w)
  np.testing.assert_array_equal(g, [1.0, 0.0, 3.0])


def test_nnx_state_with_variable_mask_or_pure_params():
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  state = nnx.state(model, nnx.Param)
  kernel = np.asarray(model.kernel[...], np.float64)
  expected = 0.5 * (kernel ** 2).sum()
  mask = reg.decay_mask(state)
  np.testing.assert_allclose(reg.l2_penalty(state, mask=mask), expected, rtol=1e-5)
  # The same Variable-wrapped mask applies to the pure state nnx.Optimizer uses.
  pure = nnx.as_pure(state)
  np.testing.assert_allclose(reg.l2_penalty(pure, mask=mask), expected, rtol=1e-5)
  grads = nnx.grad(lambda m: reg.l2_penalty(nnx.state(m, nnx.Param), mask=mask))(model)
  np.testing.assert_allclose(grads["kernel"][...], kernel, rtol=1e-6)
  np.testing.assert_array_equal(grads["bias"][...], 0.0)


def test_all_masked_and_empty_give_zero():
  params = _params(5)
  none = jax.tree.map(lambda _: False, params)
  assert float(reg.elastic_net_penalty(params, alpha=1.0, l1_ratio=0.5, mask=none)) == 0.0
  assert float(reg.group_lasso_penalty({})) == 0.0


def test_group_lasso_zero_group_has_finite_zero_gradient():
  params = {"zero": jnp.zeros((3, 2)), "w": jnp.array([3.0, 4.0])}
  value, grads = jax.jit(jax.value_and_grad(reg.group_lasso_penalty))(params)
  assert float(value) == 5.0
  np.testing.assert_array_equal(grads["zero"], 0.0)
  np.testing.assert_allclose(grads["w"], [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_is_accumulated_in_float32(dtype):
  params = {"w": jnp.full((64,), 300.0, dtype), "b": jnp.array([-1e4], dtype)}
  fns = (reg.l1_penalty, reg.l2_penalty, reg.group_lasso_penalty,
         lambda p: reg.elastic_net_penalty(p, alpha=1.0, l1_ratio=0.5))
  results = jax.jit(lambda p: [jax.value_and_grad(fn)(p) for fn in fns])(params)
  for value, grads in results:
    assert value.dtype == jnp.float32 and jnp.isfinite(value)
    assert all(g.dtype == dtype and bool(jnp.all(jnp.isfinite(g)))
               for g in jax.tree.leaves(grads))
  # ½Σw² ≈ 5e7 overflows float16 (max 65504) but not float32.
  expected = 0.5 * sum((np.asarray(w, np.float64) ** 2).sum()
                       for w in jax.tree.leaves(params))
  assert expected > 65504
  np.testing.assert_allclose(results[1][0], expected, rtol=1e-5)


def test_sklearn_converter_matches_penalty():
  params = _params(6)
  for alpha, l1_ratio in [(0.3, 0.0), (0.3, 0.4), (2.0, 1.0)]:
    l1, l2 = reg.sklearn_to_l1_l2(alpha, l1_ratio)
    np.testing.assert_allclose(
        l1 * reg.l1_penalty(params) + l2 * reg.l2_penalty(params),
        reg.elastic_net_penalty(params, alpha=alpha, l1_ratio=l1_ratio), rtol=1e-5)


def test_keras_converter_matches_keras_formula():
  params = _params(7)
  k_l1, k_l2 = 0.01, 0.003
  # keras.regularizers.L1L2.__call__: l1 * sum(|x|) + l2 * sum(x²), per weight.
  keras_value = sum(k_l1 * np.abs(w).sum() + k_l2 * (w ** 2).sum()
                    for w in _np_leaves(params))
  l1, l2 = reg.keras_to_l1_l2(k_l1, k_l2)
  ours = l1 * reg.l1_penalty(params) + l2 * reg.l2_penalty(params)
  np.testing.assert_allclose(ours, keras_value, rtol=1e-5)


def test_l2_coefficient_is_optax_weight_decay():
  params = _params(8)
  _, l2 = reg.sklearn_to_l1_l2(0.5, 0.0)
  zeros = jax.tree.map(jnp.zeros_like, params)
  tx = optax.add_decayed_weights(l2)
  added, _ = tx.update(zeros, tx.init(params), params)
  grads = jax.grad(lambda p: l2 * reg.l2_penalty(p))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), added, grads)


def test_elastic_net_gradient_equals_add_elastic_net_decay():
  params = _params(9)
  alpha, l1_ratio = 0.7, 0.3
  tx = reg.add_elastic_net_decay(alpha, l1_ratio)
  zeros = jax.tree.map(jnp.zeros_like, params)
  added, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
  grads = jax.grad(
      lambda p: reg.elastic_net_penalty(p, alpha=alpha, l1_ratio=l1_ratio))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), added, grads)


@pytest.mark.parametrize("kwargs, name", [
    ({"alpha": -0.1, "l1_ratio": 0.5}, "alpha"),
    ({"alpha": 0.1, "l1_ratio": 1.5}, "l1_ratio"),
    ({"alpha": 0.1, "l1_ratio": -0.1}, "l1_ratio"),
])
def test_bad_elastic_net_arguments(kwargs, name):
  with pytest.raises(ValueError, match=name):
    reg.elastic_net_penalty(_params(), **kwargs)
  with pytest.raises(ValueError, match=name):
    reg.sklearn_to_l1_l2(kwargs["alpha"], kwargs["l1_ratio"])


def test_bad_keras_arguments():
  with pytest.raises(ValueError, match="l1"):
    reg.keras_to_l1_l2(-1.0, 0.0)
  with pytest.raises(ValueError, match="l2"):
    reg.keras_to_l1_l2(0.0, -1.0)


def test_bad_mask_structure_names_mask_and_both_structures():
  params = {"a": jnp.ones(2), "b": jnp.ones(3)}
  with pytest.raises(ValueError, match=r"mask.*structure.*'c'.*params.*'b'"):
    reg.l1_penalty(params, mask={"a": True, "c": False})
  with pytest.raises(ValueError, match="mask"):
    reg.l2_penalty(params, mask=lambda p: [True, False, True])
  with pytest.raises(TypeError, match="mask"):
    reg.l2_penalty(params, mask={"a": 1.0, "b": 0.0})
