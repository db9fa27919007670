"""Tests for lossreg_jax.losses.linear_softmax_cross_entropy.

The outside reference is optax's softmax cross-entropy on the materialized
logits ``hidden @ weight``; label smoothing is checked against the sibling
``softmax_cross_entropy_with_integer_labels`` and a numpy formula. Every check
runs both strategies ("tokens": fused, token-chunked; "vocab": vocabulary-
chunked with a recomputing backward pass), usually inside one jitted program.
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
TCHUNK = 20  # N is not a multiple of TCHUNK: the last token chunk is ragged
STRATEGIES = ("tokens", "vocab")


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
    return total / jnp.sum(mask).astype(total.dtype)
  return total / jnp.sum(jnp.where(mask, w, 0))  # weighted_mean


def _ours(strategy, **kw):
  """Our loss with a small (ragged) chunk of the strategy's axis."""
  chunk_size, token_chunk_size = kw.pop("chunk_size", CHUNK), kw.pop("token_chunk_size", TCHUNK)
  if strategy == "vocab":
    return partial(lsce, strategy=strategy, chunk_size=chunk_size, **kw)
  return partial(lsce, strategy=strategy, token_chunk_size=token_chunk_size, **kw)


def _assert_value_and_grads(ours_fns, ref, hidden, weight, rtol=1e-5, atol=1e-6):
  """Each of ``ours_fns`` (one per strategy) vs ``ref``, all in one jitted program."""
  @jax.jit  # one program for all: fewer compilations
  def everything(h, w):
    vg = lambda f: jax.value_and_grad(f, argnums=(0, 1))(h, w)
    return [vg(f) for f in ours_fns], vg(ref)

  got, (exp_v, (exp_h, exp_w)) = everything(hidden, weight)
  for got_v, (got_h, got_w) in got:
    np.testing.assert_allclose(got_v, exp_v, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got_h, exp_h, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got_w, exp_w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", ["weights_where", "ignore_index_sum"])  # plain mean: below
def test_value_and_both_grads_match_optax_on_materialized_logits(case):
  hidden, weight, labels, key = _data()
  kw, where = {}, None
  if case == "weights_where":
    where = jax.random.bernoulli(key, 0.6, (N,))
    kw = dict(weights=jax.random.uniform(key, (N,)), where=where, reduction="weighted_mean")
  elif case == "ignore_index_sum":
    labels = labels.at[::3].set(-100)
    where = labels != -100
    kw = dict(ignore_index=-100, reduction="sum")
  ref_labels = jnp.where(labels < 0, 0, labels)
  ours = [lambda h, w, s=s: _ours(s, **kw)(h, w, labels) for s in STRATEGIES]
  ref = lambda h, w: _reference(h, w, ref_labels, **{**kw, "ignore_index": None, "where": where})
  _assert_value_and_grads(ours, ref, hidden, weight)


def test_gradient_wrt_weights_matches_reference():
  hidden, weight, labels, key = _data()
  weights = jax.random.uniform(key, (N,))
  where = jax.random.bernoulli(key, 0.7, (N,))

  @jax.jit
  def grads(wt):
    out = []
    for reduction in ("weighted_mean",):
      out.append([jax.grad(lambda t, s=s: _ours(s, weights=t, where=where, reduction=reduction)(
          hidden, weight, labels))(wt) for s in STRATEGIES])
      out[-1].append(jax.grad(lambda t: _reference(hidden, weight, labels, weights=t,
                                                   where=where, reduction=reduction))(wt))
    return out

  for *got, expected in grads(weights):
    for g in got:
      np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)


def test_auto_strategy_picks_tokens_for_scalar_losses_and_vocab_for_none():
  hidden, weight, labels, _ = _data(n=8)
  args = (hidden, weight, labels)
  # The fused path computes its gradients inside the forward pass: 3 matmuls
  # under grad, 4 for the vocabulary path (it recomputes the logits).
  def dots(f):
    return str(jax.make_jaxpr(jax.grad(f, argnums=(0, 1)))(*args)).count("dot_general")
  assert dots(partial(lsce, token_chunk_size=4)) == 3
  assert dots(partial(lsce, strategy="tokens", token_chunk_size=4)) == 3
  assert dots(partial(lsce, strategy="vocab", chunk_size=3)) == 4
  # Without differentiation only the forward matmul is traced, in both paths.
  for s in STRATEGIES:
    assert str(jax.make_jaxpr(_ours(s, token_chunk_size=4))(*args)).count("dot_general") == 1


def test_reduction_none_equals_optax_per_token_and_sums_to_sum():
  hidden, weight, labels, _ = _data()

  @jax.jit
  def both(hidden, weight, labels):
    per_token = lsce(hidden, weight, labels, chunk_size=CHUNK, reduction="none")
    totals = [_ours(s, reduction="sum")(hidden, weight, labels) for s in STRATEGIES]
    return per_token, totals

  got, totals = both(hidden, weight, labels)
  np.testing.assert_allclose(got, _optax_tokens(hidden, weight, labels), rtol=1e-5, atol=1e-6)
  for total in totals:
    np.testing.assert_allclose(jnp.sum(got), total, rtol=1e-5)


def test_chunk_sizes_equal_larger_or_tiny():
  # Chunks larger than the data (clipped: one chunk), and tiny ragged chunks:
  # 1-token chunks, 7-column chunks.
  hidden, weight, labels, _ = _data(n=9, v=100)
  sizes = (("tokens", None, 1), ("vocab", 7, None), ("tokens", None, 4096), ("vocab", 4096, None),
           ("auto", None, None))
  ours = [lambda h, w, s=s, c=c, t=t: _ours(s, chunk_size=c, token_chunk_size=t)(h, w, labels)
          for s, c, t in sizes]
  ref = lambda h, w: _reference(h, w, labels)
  _assert_value_and_grads(ours, ref, hidden, weight)


def test_automatic_token_chunk_is_at_most_512_mib_and_an_eighth_of_the_tokens():
  from lossreg_jax.losses import _large_vocab_fused as fused
  assert fused.auto_token_chunk(8192, 131072, jnp.float32) == 1024  # both limits (the H200 size)
  assert fused.auto_token_chunk(8192, 131072, jnp.float64) == 512  # 512 MiB
  assert fused.auto_token_chunk(100, 1000, jnp.float32) == 12  # at least 8 chunks
  assert fused.auto_token_chunk(2048, 8192, jnp.float32) == 256
  assert fused.auto_token_chunk(8, 2**29 + 1, jnp.float32) == 1  # at least one row
  assert fused.auto_token_chunk(3, 10, jnp.float32) == 1


def test_label_smoothing_matches_sibling_loss_and_numpy():
  hidden, weight, labels, _ = _data()
  eps = 0.1
  ours = [lambda h, w, s=s: _ours(s, label_smoothing=eps)(h, w, labels) for s in STRATEGIES]
  sibling = lambda h, w: losses.softmax_cross_entropy_with_integer_labels(
      jnp.dot(h, w, precision="highest"), labels, label_smoothing=eps)
  _assert_value_and_grads(ours, sibling, hidden, weight)
  # numpy: (1 - e) * nll + e * mean_c(-log p_c)
  logits = np.asarray(hidden, np.float64) @ np.asarray(weight, np.float64)
  logp = logits - np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1,
                                keepdims=True)) - logits.max(1, keepdims=True)
  expected = np.mean((1 - eps) * -logp[np.arange(N), labels] + eps * -logp.mean(1))
  np.testing.assert_allclose(jax.jit(ours[0])(hidden, weight), expected, rtol=1e-5)


def test_gradient_wrt_traced_label_smoothing_matches_sibling():
  hidden, weight, labels, _ = _data()

  @jax.jit
  def grads(e):
    ours = [jax.grad(lambda e, s=s: _ours(s, label_smoothing=e)(hidden, weight, labels))(e)
            for s in STRATEGIES]
    sibling = jax.grad(lambda e: losses.softmax_cross_entropy_with_integer_labels(
        jnp.dot(hidden, weight, precision="highest"), labels, label_smoothing=e))(e)
    return ours, sibling

  ours, sibling = grads(0.2)
  for g in ours:
    np.testing.assert_allclose(g, sibling, rtol=1e-5, atol=1e-6)


def test_leading_dims_and_vmap_over_a_batch_axis():
  hidden, weight, labels, _ = _data(n=12, lead=(3,))

  @jax.jit  # one program: fewer compilations
  def everything(hidden, labels):
    per_token = lsce(hidden, weight, labels, chunk_size=CHUNK, reduction="none")
    leading = [jax.value_and_grad(lambda h, s=s: _ours(s, token_chunk_size=5)(
        h, weight, labels))(hidden) for s in STRATEGIES]
    vmapped = [jax.vmap(jax.value_and_grad(lambda h, y, s=s: _ours(s, token_chunk_size=5)(
        h, weight, y)))(hidden, labels) for s in STRATEGIES]
    ref = jax.value_and_grad(lambda h: _reference(h, weight, labels))(hidden)
    ref_grads = jax.vmap(jax.grad(lambda h, y: _reference(h, weight, y)))(hidden, labels)
    return per_token, leading, vmapped, _optax_tokens(hidden, weight, labels), ref, ref_grads

  per_token, leading, vmapped, expected, ref, ref_grads = everything(hidden, labels)
  assert per_token.shape == (3, 12)
  np.testing.assert_allclose(per_token, expected, rtol=1e-5, atol=1e-6)
  for (value, grad), (values, grads) in zip(leading, vmapped):
    np.testing.assert_allclose(value, ref[0], rtol=1e-5)
    np.testing.assert_allclose(grad, ref[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, expected.mean(1), rtol=1e-5)
    np.testing.assert_allclose(grads, ref_grads, rtol=1e-5, atol=1e-6)


def test_bfloat16_is_finite_close_to_float32_and_keeps_dtypes():
  dtype = jnp.bfloat16
  hidden, weight, labels, _ = _data(dtype=dtype)

  @jax.jit
  def everything(h, w):
    ours = [jax.value_and_grad(lambda h, w, s=s: _ours(s)(h, w, labels), argnums=(0, 1))(h, w)
            for s in STRATEGIES]
    h32, w32 = h.astype(jnp.float32), w.astype(jnp.float32)
    ref = jax.value_and_grad(lambda h, w: _reference(h, w, labels), argnums=(0, 1))(h32, w32)
    return ours, ref

  ours, (ref_v, (ref_h, ref_w)) = everything(hidden, weight)
  tol = 2e-2
  for value, (gh, gw) in ours:
    assert value.dtype == dtype and gh.dtype == dtype and gw.dtype == dtype
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
    np.testing.assert_allclose(float(value), ref_v, rtol=tol)
    np.testing.assert_allclose(gh.astype(jnp.float32), ref_h,
                               atol=tol * float(jnp.abs(ref_h).max()))
    np.testing.assert_allclose(gw.astype(jnp.float32), ref_w,
                               atol=tol * float(jnp.abs(ref_w).max()))


def test_float16_is_close_to_float32_and_tiny_gradients_do_not_underflow():
  # Softmax gradients ~1/V times a 1/N mean scale (~2e-7) are float16
  # subnormals with a few bits left. The fused path scales the float32
  # d_hidden rows instead of g and is ~4x more accurate here than the vocab
  # path, which rounds g * cotangent to float16.
  dtype = jnp.float16
  n, v = 1024, 4096
  hidden, weight, labels, _ = _data(n=n, v=v, dtype=dtype)

  @jax.jit
  def everything(h, w):
    ours = [jax.value_and_grad(lambda h, w, s=s: _ours(s, token_chunk_size=256, chunk_size=1024)(
        h, w, labels), argnums=(0, 1))(h, w) for s in STRATEGIES]
    h32, w32 = h.astype(jnp.float32), w.astype(jnp.float32)
    ref = jax.value_and_grad(lambda h, w: _reference(h, w, labels), argnums=(0, 1))(h32, w32)
    return ours, ref

  ours, (ref_v, (ref_h, ref_w)) = everything(hidden, weight)
  for (value, (gh, gw)), tol in zip(ours, (1e-3, 1e-2)):
    assert value.dtype == dtype and gh.dtype == dtype and gw.dtype == dtype
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
    np.testing.assert_allclose(float(value), ref_v, rtol=2e-3)
    np.testing.assert_allclose(gh.astype(jnp.float32), ref_h,
                               atol=tol * float(jnp.abs(ref_h).max()))
    np.testing.assert_allclose(gw.astype(jnp.float32), ref_w,
                               atol=tol * float(jnp.abs(ref_w).max()))


def test_huge_logits_are_finite_and_match_optax():
  hidden, weight, labels, _ = _data(n=8, scale=3e3)  # logits up to ~1e4
  logits = hidden @ weight
  assert float(jnp.abs(logits).max()) > 5e3
  labels = labels.at[0].set(jnp.argmax(logits[0]))  # a loss of exactly ~0 too

  @jax.jit
  def everything(h, w):
    ours = [jax.value_and_grad(lambda h, w, s=s: _ours(s, token_chunk_size=3, reduction="sum")(
        h, w, labels), argnums=(0, 1))(h, w) for s in STRATEGIES]
    bf = [_ours(s, token_chunk_size=3)(h.astype(jnp.bfloat16), w.astype(jnp.bfloat16), labels)
          for s in STRATEGIES]
    return ours, bf

  ours, bf = everything(hidden, weight)
  for value, (gh, gw) in ours:
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
    np.testing.assert_allclose(value, jnp.sum(_optax_tokens(hidden, weight, labels)), rtol=1e-4)
  assert all(jnp.isfinite(b) for b in bf)


def test_masked_nan_hidden_and_all_masked_give_finite_values_and_grads():
  hidden, weight, labels, _ = _data(n=8)
  hidden = hidden.at[0].set(jnp.nan)
  labels = labels.at[0].set(-5)  # masked out-of-range label: no NaN either
  where = jnp.arange(8) > 0

  @jax.jit
  def everything(h, w, m):
    return [jax.value_and_grad(lambda h, w, s=s: _ours(s, token_chunk_size=3, where=m)(
        h, w, labels), argnums=(0, 1))(h, w) for s in STRATEGIES]

  for value, (gh, gw) in everything(hidden, weight, where):
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(gh)) and jnp.all(jnp.isfinite(gw))
  for value, (gh, gw) in everything(hidden, weight, where & False):
    assert value == 0 and jnp.all(gh == 0) and jnp.all(gw == 0)


def test_out_of_range_label_is_nan():
  hidden, weight, labels, _ = _data(n=4)
  labels = labels.at[1].set(V)

  @jax.jit
  def everything(h, w, y):
    return (lsce(h, w, y, chunk_size=CHUNK, reduction="none"),
            [_ours(s, token_chunk_size=3)(h, w, y) for s in STRATEGIES])

  per_token, means = everything(hidden, weight, labels)
  assert jnp.isnan(per_token[1]) and jnp.all(jnp.isfinite(per_token[jnp.array([0, 2, 3])]))
  assert all(jnp.isnan(m) for m in means)


def _temp_bytes(loss, n, d, v, grad):
  args = (jax.ShapeDtypeStruct((n, d), jnp.float32), jax.ShapeDtypeStruct((d, v), jnp.float32),
          jax.ShapeDtypeStruct((n,), jnp.int32))
  f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)) if grad else loss)
  return f.lower(*args).compile().memory_analysis().temp_size_in_bytes


# (N, D, V) of issue 10, where the automatic token chunk used to hold the whole logits
# and an explicit chunk_size=512 was ignored.
ISSUE_SIZE = (2048, 32, 8192)


@pytest.mark.parametrize("kw", [{}, {"chunk_size": 512}, {"strategy": "vocab"},
                                {"strategy": "tokens"}, {"reduction": "none"},
                                {"token_chunk_size": 256}])
def test_never_holds_more_than_a_quarter_of_the_logits(kw):
  n, d, v = ISSUE_SIZE
  logits_bytes = n * v * 4
  loss = lambda h, w, y: jnp.sum(lsce(h, w, y, **kw))
  value = _temp_bytes(loss, n, d, v, grad=False)
  value_and_grad = _temp_bytes(loss, n, d, v, grad=True)
  print(f"{kw}: temp bytes / logits bytes: value {value / logits_bytes:.4f}, "
        f"value_and_grad {value_and_grad / logits_bytes:.4f}")
  assert value <= logits_bytes / 4 and value_and_grad <= logits_bytes / 4
  if "chunk_size" in kw:  # honoured: 512 of 8192 columns is 1/16 of the logits
    assert value_and_grad <= logits_bytes / 8


@pytest.mark.parametrize("n, v", [(4, 8192), (9, 1000), (1000, 9)])
def test_small_or_ragged_sizes_hold_a_quarter_beyond_input_chunks_and_gradients(n, v):
  # When N < D the (D, chunk) slice of the weight outweighs the (N, chunk) logits
  # block; allow a quarter of the inputs for such slices, and the gradients' size.
  d = 16
  logits_bytes, inputs_bytes = n * v * 4, (n * d + d * v) * 4
  loss = lambda h, w, y: lsce(h, w, y)
  assert _temp_bytes(loss, n, d, v, grad=False) <= (logits_bytes + inputs_bytes) / 4
  assert _temp_bytes(loss, n, d, v, grad=True) <= (logits_bytes + inputs_bytes) / 4 + inputs_bytes


def test_materialized_logits_reference_does_hold_them():
  # The measurement discriminates: optax on hidden @ weight holds the whole logits.
  n, d, v = ISSUE_SIZE
  materialized = _temp_bytes(lambda h, w, y: _optax_tokens(h, w, y).mean(), n, d, v, grad=True)
  assert materialized >= n * v * 4


def test_chunk_sizes_are_honoured_or_rejected():
  hidden, weight, labels, _ = _data(n=8)
  args = (hidden, weight, labels)

  def dot_shapes(**kw):
    jaxpr = str(jax.make_jaxpr(partial(lsce, **kw))(*args))
    return jaxpr.count("dot_general"), jaxpr

  # An explicit chunk_size runs the vocabulary path with that chunk (a (8, 100) block).
  _, jaxpr = dot_shapes(chunk_size=100)
  assert "f32[8,100]" in jaxpr and f"f32[8,{V}]" not in jaxpr
  _, jaxpr = dot_shapes(token_chunk_size=3)
  assert f"f32[3,{V}]" in jaxpr
  with pytest.raises(ValueError, match="chunk_size.*token_chunk_size"):
    lsce(*args, chunk_size=100, token_chunk_size=3)
  with pytest.raises(ValueError, match="chunk_size=100.*'tokens'.*token_chunk_size"):
    lsce(*args, chunk_size=100, strategy="tokens")
  with pytest.raises(ValueError, match="token_chunk_size=3.*'vocab'.*chunk_size"):
    lsce(*args, token_chunk_size=3, strategy="vocab")
  with pytest.raises(ValueError, match="reduction"):
    lsce(*args, token_chunk_size=3, reduction="none")


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
  for bad, error in ((0, ValueError), (-8, ValueError), (2.5, TypeError)):
    with pytest.raises(error, match="chunk_size"):
      lsce(hidden, weight, labels, chunk_size=bad)
    with pytest.raises(error, match="token_chunk_size"):
      lsce(hidden, weight, labels, token_chunk_size=bad)
  with pytest.raises(ValueError, match="label_smoothing"):
    lsce(hidden, weight, labels, label_smoothing=1.5)
  with pytest.raises(ValueError, match="reduction"):
    lsce(hidden, weight, labels, reduction="avg")
  with pytest.raises(ValueError, match="strategy"):
    lsce(hidden, weight, labels, strategy="rows")
  with pytest.raises(ValueError, match="strategy.*reduction"):
    lsce(hidden, weight, labels, strategy="tokens", reduction="none")
