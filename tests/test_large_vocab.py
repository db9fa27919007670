"""Tests for lossreg_jax.losses.linear_softmax_cross_entropy.

The outside reference is optax's softmax cross-entropy on the materialized
logits ``hidden @ weight``; label smoothing is checked against the sibling
``softmax_cross_entropy_with_integer_labels`` and a numpy formula.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossreg_jax import losses
from lossreg_jax.losses import linear_softmax_cross_entropy as lsce

N, D, V, CHUNK = 48, 16, 1000, 384  # V is not a multiple of CHUNK


def _data(n=N, d=D, v=V, seed=0, scale=1.0, dtype=jnp.float32, lead=()):
  k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
  hidden = (scale * jax.random.normal(k1, (*lead, n, d))).astype(dtype)
  weight = (jax.random.normal(k2, (d, v)) / np.sqrt(d)).astype(dtype)
  labels = jax.random.randint(k3, (*lead, n), 0, v)
  return hidden, weight, labels, k4


def _optax_tokens(hidden, weight, labels):
  logits = jnp.dot(hidden, weight, precision="highest")
  return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)


def _reference(hidden, weight, labels, *, weights=None, where=None, ignore_index=None,
               reduction="mean"):
  """optax on materialized logits, reduced by hand."""
  tokens = _optax_tokens(hidden, weight, labels)
  mask = jnp.ones(labels.shape, bool) if where is None else where
  if ignore_index is not None:
    mask = mask & (labels != ignore_index)
  w = jnp.ones(labels.shape) if weights is None else weights
  total = jnp.sum(jnp.where(mask, tokens * w, 0))
  if reduction == "sum":
    return total
  if reduction == "mean":
    return total / jnp.sum(mask)
  return total / jnp.sum(jnp.where(mask, w, 0))  # weighted_mean


def _assert_value_and_grads(ours, ref, hidden, weight, rtol=1e-5, atol=1e-6):
  @jax.jit  # one program for both: fewer compilations
  def both(h, w):
    return (jax.value_and_grad(ours, argnums=(0, 1))(h, w),
            jax.value_and_grad(ref, argnums=(0, 1))(h, w))

  (got_v, (got_h, got_w)), (exp_v, (exp_h, exp_w)) = both(hidden, weight)
  np.testing.assert_allclose(got_v, exp_v, rtol=rtol, atol=atol)
  np.testing.assert_allclose(got_h, exp_h, rtol=rtol, atol=atol)
  np.testing.assert_allclose(got_w, exp_w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", ["mean", "sum", "weights", "where", "ignore_index"])
def test_value_and_both_grads_match_optax_on_materialized_logits(case):
  hidden, weight, labels, key = _data()
  kw = {}
  if case == "sum":
    kw = dict(reduction="sum")
  elif case == "weights":
    kw = dict(weights=jax.random.uniform(key, (N,)), reduction="weighted_mean")
  elif case == "where":
    kw = dict(where=jax.random.bernoulli(key, 0.6, (N,)))
  elif case == "ignore_index":
    labels = labels.at[::3].set(-100)
    kw = dict(ignore_index=-100)
  ref_labels = labels if case != "ignore_index" else jnp.where(labels < 0, 0, labels)
  ours = lambda h, w: lsce(h, w, labels, chunk_size=CHUNK, **kw)
  ref = lambda h, w: _reference(h, w, ref_labels, **{
      **kw, "ignore_index": None,
      "where": (labels != -100) if case == "ignore_index" else kw.get("where")})
  _assert_value_and_grads(ours, ref, hidden, weight)


def test_reduction_none_equals_optax_per_token_and_sums_to_sum():
  hidden, weight, labels, _ = _data()
  got = jax.jit(partial(lsce, chunk_size=CHUNK, reduction="none"))(hidden, weight, labels)
  np.testing.assert_allclose(got, _optax_tokens(hidden, weight, labels), rtol=1e-5, atol=1e-6)
  total = jax.jit(partial(lsce, chunk_size=CHUNK, reduction="sum"))(hidden, weight, labels)
  np.testing.assert_allclose(jnp.sum(got), total, rtol=1e-5)


@pytest.mark.parametrize("chunk", [4096, 7])
def test_chunk_size_equal_larger_or_tiny(chunk):
  # chunk > V (clipped to V: one chunk), and a tiny ragged chunk.
  hidden, weight, labels, _ = _data(n=8, v=100 if chunk == 7 else V)
  ours = lambda h, w: lsce(h, w, labels, chunk_size=chunk)
  ref = lambda h, w: _reference(h, w, labels)
  _assert_value_and_grads(ours, ref, hidden, weight)


def test_label_smoothing_matches_sibling_loss_and_numpy():
  hidden, weight, labels, _ = _data()
  eps = 0.1
  ours = jax.jit(lambda h, w: lsce(h, w, labels, chunk_size=CHUNK, label_smoothing=eps))
  sibling = lambda h, w: losses.softmax_cross_entropy_with_integer_labels(
      jnp.dot(h, w, precision="highest"), labels, label_smoothing=eps)
  _assert_value_and_grads(ours, sibling, hidden, weight)
  # numpy: (1 - e) * nll + e * mean_c(-log p_c)
  logits = np.asarray(hidden, np.float64) @ np.asarray(weight, np.float64)
  logp = logits - np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1,
                                keepdims=True)) - logits.max(1, keepdims=True)
  expected = np.mean((1 - eps) * -logp[np.arange(N), labels] + eps * -logp.mean(1))
  np.testing.assert_allclose(ours(hidden, weight), expected, rtol=1e-5)


def test_gradient_wrt_traced_label_smoothing_matches_sibling():
  hidden, weight, labels, _ = _data()
  ours = jax.jit(jax.grad(lambda e: lsce(hidden, weight, labels, chunk_size=CHUNK,
                                         label_smoothing=e)))
  sibling = jax.jit(jax.grad(lambda e: losses.softmax_cross_entropy_with_integer_labels(
      jnp.dot(hidden, weight, precision="highest"), labels, label_smoothing=e)))
  np.testing.assert_allclose(ours(0.2), sibling(0.2), rtol=1e-5, atol=1e-6)


def test_leading_dims_and_vmap_over_a_batch_axis():
  hidden, weight, labels, _ = _data(n=12, lead=(3,))
  f = lambda h, y: lsce(h, weight, y, chunk_size=CHUNK)

  @jax.jit  # one program: fewer compilations
  def everything(hidden, labels):
    per_token = lsce(hidden, weight, labels, chunk_size=CHUNK, reduction="none")
    values, grads = jax.vmap(jax.value_and_grad(f))(hidden, labels)
    ref_grads = jax.vmap(jax.grad(lambda h, y: _reference(h, weight, y)))(hidden, labels)
    return per_token, values, grads, _optax_tokens(hidden, weight, labels), ref_grads

  per_token, values, grads, expected, ref_grads = everything(hidden, labels)
  assert per_token.shape == (3, 12)
  np.testing.assert_allclose(per_token, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(values, expected.mean(1), rtol=1e-5)
  np.testing.assert_allclose(grads, ref_grads, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_is_finite_close_to_float32_and_keeps_dtypes(dtype):
  hidden, weight, labels, _ = _data(dtype=dtype)
  value, (gh, gw) = jax.jit(jax.value_and_grad(
      lambda h, w: lsce(h, w, labels, chunk_size=CHUNK), argnums=(0, 1)))(hidden, weight)
  assert value.dtype == dtype and gh.dtype == dtype and gw.dtype == dtype
  h32, w32 = hidden.astype(jnp.float32), weight.astype(jnp.float32)
  ref_v, (ref_h, ref_w) = jax.jit(jax.value_and_grad(
      lambda h, w: _reference(h, w, labels), argnums=(0, 1)))(h32, w32)
  assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
  tol = 2e-2 if dtype == jnp.bfloat16 else 2e-3
  np.testing.assert_allclose(float(value), ref_v, rtol=tol)
  np.testing.assert_allclose(gh.astype(jnp.float32), ref_h, atol=tol * float(jnp.abs(ref_h).max()))
  np.testing.assert_allclose(gw.astype(jnp.float32), ref_w, atol=tol * float(jnp.abs(ref_w).max()))


def test_huge_logits_are_finite_and_match_optax():
  hidden, weight, labels, _ = _data(n=8, scale=3e3)  # logits up to ~1e4
  logits = hidden @ weight
  assert float(jnp.abs(logits).max()) > 5e3
  labels = labels.at[0].set(jnp.argmax(logits[0]))  # a loss of exactly ~0 too
  value, (gh, gw) = jax.jit(jax.value_and_grad(
      lambda h, w: lsce(h, w, labels, chunk_size=CHUNK, reduction="sum"),
      argnums=(0, 1)))(hidden, weight)
  assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
  np.testing.assert_allclose(value, jnp.sum(_optax_tokens(hidden, weight, labels)), rtol=1e-4)
  bf = jax.jit(partial(lsce, chunk_size=CHUNK))(
      hidden.astype(jnp.bfloat16), weight.astype(jnp.bfloat16), labels)
  assert jnp.isfinite(bf)


def test_masked_nan_hidden_and_all_masked_give_finite_values_and_grads():
  hidden, weight, labels, _ = _data(n=8)
  hidden = hidden.at[0].set(jnp.nan)
  where = jnp.arange(8) > 0
  f = lambda h, w, m: lsce(h, w, labels, chunk_size=CHUNK, where=m)
  f = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
  value, (gh, gw) = f(hidden, weight, where)
  assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
  value, (gh, gw) = f(hidden, weight, where & False)
  assert value == 0 and jnp.all(gh == 0) and jnp.all(gw == 0)


def test_out_of_range_label_is_nan():
  hidden, weight, labels, _ = _data(n=4)
  f = jax.jit(partial(lsce, chunk_size=CHUNK, reduction="none"))
  got = f(hidden, weight, labels.at[1].set(V))
  assert jnp.isnan(got[1]) and jnp.all(jnp.isfinite(got[jnp.array([0, 2, 3])]))


def test_never_materializes_the_logits():
  n, d, v, chunk = 1024, 64, 16384, 1024
  logits_bytes = n * v * 4
  args = (jax.ShapeDtypeStruct((n, d), jnp.float32), jax.ShapeDtypeStruct((d, v), jnp.float32),
          jax.ShapeDtypeStruct((n,), jnp.int32))

  def temp_bytes(loss):
    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return f.lower(*args).compile().memory_analysis().temp_size_in_bytes

  ours = temp_bytes(lambda h, w, y: lsce(h, w, y, chunk_size=chunk))
  materialized = temp_bytes(lambda h, w, y: _optax_tokens(h, w, y).mean())
  print(f"temp bytes: ours {ours}, optax on logits {materialized}, logits {logits_bytes}")
  assert ours < logits_bytes / 4
  assert materialized >= logits_bytes


def test_bad_inputs_raise_and_name_the_argument():
  hidden, weight, labels, _ = _data(n=4)
  with pytest.raises(ValueError, match="hidden.*weight"):
    lsce(hidden, weight[:-1], labels)
  with pytest.raises(ValueError, match="weight"):
    lsce(hidden, weight[None], labels)
  with pytest.raises(ValueError, match=r"labels.shape.*\(4,\)"):
    lsce(hidden, weight, labels[:3])
  with pytest.raises(TypeError, match="labels"):
    lsce(hidden, weight, labels.astype(jnp.float32))
  with pytest.raises(TypeError, match="hidden"):
    lsce(jnp.ones((4, D), jnp.int32), weight, labels)
  for bad in (0, -8, 2.5):
    with pytest.raises(ValueError, match="chunk_size"):
      lsce(hidden, weight, labels, chunk_size=bad)
  with pytest.raises(ValueError, match="label_smoothing"):
    lsce(hidden, weight, labels, label_smoothing=1.5)
  with pytest.raises(ValueError, match="reduction"):
    lsce(hidden, weight, labels, reduction="avg")
