"""Token-chunked, fused forward + backward of the large-vocabulary cross-entropy.

Private engine behind ``linear_softmax_cross_entropy(..., strategy="tokens")``.
When the loss is reduced to a scalar, its cotangent is a scalar too, so every
token's gradient scale (weight, mask and normalizer) is known before the
backward pass. The forward pass therefore loops over chunks of tokens and, for
each, computes the chunk's full-vocabulary logits once, its exact log-sum-exp,
its loss terms and the softmax gradient block, then both gradient matmuls:
3 matmuls in all, as on materialized logits, instead of the 4 of the
vocabulary-chunked path (which recomputes the logits in the backward pass). The
backward pass only multiplies the saved gradients by the scalar cotangent.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from lossreg_jax._validation import standard_result_type

__all__: list[str] = []

# The automatic token chunk keeps one (token_chunk, V) logits block in the
# accumulation dtype (float32) at or under this many bytes. Measured on an H200 at
# (8192 x 4096) @ (4096 x 131072) bf16: 512 rows (256 MiB) ran at 1.18x optax's
# time, 1024 rows (512 MiB) at 1.08x with 778 MiB of temporaries, 2048 rows at
# 1.04x but 1555 MiB (benchmarks/results/h200_full.log).
LOGITS_BLOCK_BYTES = 512 * 2**20
# ... and makes at least this many chunks, whatever the sizes, so that one block is
# at most 1/8 of the logits. A step holds the float32 block plus, under grad, the
# softmax gradient in the inputs' dtype (fused into the block's buffer on CPU;
# half a block for bfloat16 on GPU), so the temporaries stay under a quarter of
# the logits. At the H200 size above 1024 rows is both limits (8192 / 8).
MIN_CHUNKS = 8


def acc_dtype(*arrays: jax.Array) -> jnp.dtype:
  """Matmuls run in the inputs' dtype but accumulate in at least float32."""
  return standard_result_type(standard_result_type(*arrays), jnp.float32)


def weight_grad_dtype(weight: jax.Array) -> jnp.dtype:
  """Dtype of the running weight gradient (the sum over token chunks): the weight's.

  float32 for a float32 weight. For bfloat16 / float16 weights the sum over
  chunks runs in that dtype, as Liger-Kernel's fused linear cross-entropy: a
  float32 accumulator for a bfloat16 (4096, 131072) weight would alone take
  2 GiB of temporary memory. Each chunk's matmul still sums its tokens in
  float32 inside the GEMM; only the ``ceil(N / token_chunk)`` partial sums are
  rounded, so the relative error grows like ``sqrt(chunks) * 2**-9`` in
  bfloat16 instead of ``2**-9``.
  """
  return weight.dtype


def auto_token_chunk(n: int, v: int, acc: jnp.dtype) -> int:
  """Rows per chunk: one ``(rows, v)`` block of ``acc`` fits LOGITS_BLOCK_BYTES and
  is at most ``1 / MIN_CHUNKS`` of the logits (at least one row)."""
  budget = LOGITS_BLOCK_BYTES // (v * jnp.dtype(acc).itemsize)
  return max(1, min(n // MIN_CHUNKS, budget))


def _token_chunks(hidden, weight, labels, scale, smoothing, chunk, smooth, with_grads):
  """Loops over token chunks; returns per-token losses, ``z_y - z_mean`` and the gradients.

  Gradients (``with_grads``) are those of ``sum(scale * loss)``. When ``N`` is
  not a multiple of ``chunk`` the last chunk starts at ``N - chunk`` (no copy of
  ``hidden``): its rows already seen are recomputed identically, so rewriting
  their loss and ``d_hidden`` is harmless, and their ``scale`` is zeroed for the
  weight gradient, which is a sum over chunks.
  """
  n, d = hidden.shape
  v = weight.shape[1]
  acc = acc_dtype(hidden, weight)
  mm = standard_result_type(hidden, weight)
  dw_dtype = weight_grad_dtype(weight)
  num_chunks = -(-n // chunk)
  ragged = n % chunk != 0
  cols = jnp.arange(v, dtype=labels.dtype)

  def body(i, carry):
    loss_tok, zdiff_tok, d_hidden, d_weight = carry
    start = jnp.minimum(i * chunk, n - chunk)
    h = lax.dynamic_slice_in_dim(hidden, start, chunk)
    y = lax.dynamic_slice_in_dim(labels, start, chunk)
    logits = jnp.dot(h, weight, preferred_element_type=acc)  # (chunk, V)
    # Exact log-sum-exp over the whole vocabulary: subtract the row max so no
    # exp overflows (logits ~1e4 stay finite).
    m = jnp.max(logits, axis=1)
    lse = m + jnp.log(jnp.sum(jnp.exp(logits - m[:, None]), axis=1))
    hit = cols[None, :] == y[:, None]
    # The label logit comes from the same block as lse, so lse - z_y is
    # consistent to the last bit (a loss of exactly ~0 stays ~0). It is a
    # gather of one entry per row: the masked sum `sum(where(hit, logits, 0))`
    # made XLA (CPU) hold a second (chunk, V) float32 block, doubling the
    # temporaries (memory_analysis at N=2048, V=8192: 2.0 -> 1.0 logits blocks).
    # Out-of-range labels gather a clipped column; their loss is NaN below.
    z_label = jnp.take_along_axis(logits, jnp.clip(y, 0, v - 1)[:, None], axis=1)[:, 0]
    if smooth:
      z_mean = jnp.mean(logits, axis=1)
      loss = lse - (1 - smoothing) * z_label - smoothing * z_mean
      zdiff_tok = lax.dynamic_update_slice_in_dim(zdiff_tok, z_label - z_mean, start, 0)
    else:
      loss = lse - z_label
    # Labels outside [0, V) have no label logit: NaN, as optax.
    loss = jnp.where((y >= 0) & (y < v), loss, jnp.nan)
    loss_tok = lax.dynamic_update_slice_in_dim(loss_tok, loss, start, 0)
    if not with_grads:
      return loss_tok, zdiff_tok, d_hidden, d_weight
    probs = jnp.exp(logits - lse[:, None])
    if smooth:
      g = probs - jnp.where(hit, 1 - smoothing, 0) - smoothing / v
    else:
      g = probs - hit.astype(probs.dtype)
    # g is left unscaled (entries in [-1, 1]) and each token's scale multiplies
    # the float32 d_hidden rows and the hidden rows entering the weight
    # gradient instead: g * scale (probabilities ~1e-6 times 1 / N) would
    # underflow in float16.
    g = g.astype(mm)
    s = lax.dynamic_slice_in_dim(scale, start, chunk)
    dh = jnp.einsum("tv,dv->td", g, weight, preferred_element_type=acc)
    d_hidden = lax.dynamic_update_slice_in_dim(
        d_hidden, (dh * s[:, None]).astype(d_hidden.dtype), start, 0)
    if ragged:  # rows an earlier chunk already added to the weight gradient
      s = jnp.where(start + jnp.arange(chunk) >= i * chunk, s, 0)
    hs = (h.astype(acc) * s[:, None]).astype(mm)
    d_weight = d_weight + jnp.einsum("td,tv->dv", hs, g, preferred_element_type=dw_dtype)
    return loss_tok, zdiff_tok, d_hidden, d_weight

  if with_grads:
    grads = (jnp.zeros((n, d), hidden.dtype), jnp.zeros((d, v), dw_dtype))
  else:
    grads = (jnp.zeros((0, d), hidden.dtype), jnp.zeros((d, 0), dw_dtype))
  zdiff = jnp.zeros((n if smooth else 0,), acc)
  init = (jnp.zeros((n,), acc), zdiff, *grads)
  return lax.fori_loop(0, num_chunks, body, init)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def fused_loss(hidden, weight, labels, scale, smoothing, chunk, smooth):
  """``sum(scale * token_loss)`` of ``hidden @ weight``; gradients computed in the forward.

  Args:
    hidden: ``(N, D)`` floating.
    weight: ``(D, V)`` floating.
    labels: ``(N,)`` int32; values outside ``[0, V)`` give a NaN token loss.
    scale: ``(N,)`` in the accumulation dtype: each token's coefficient in the
      reduction (weight, mask and normalizer folded in; 0 for excluded tokens,
      whose hidden rows must be finite).
    smoothing: Scalar label smoothing ``e``.
    chunk: Tokens per chunk, ``1 <= chunk <= N`` (static).
    smooth: Whether ``e`` may be non-zero (static).

  Without differentiation (this primal) only the forward matmul runs; under
  ``grad`` the custom forward below computes the gradients too.
  """
  loss_tok, _, _, _ = _token_chunks(hidden, weight, labels, scale, smoothing, chunk,
                                     smooth, with_grads=False)
  return jnp.sum(scale * loss_tok)


def _fused_fwd(hidden, weight, labels, scale, smoothing, chunk, smooth):
  loss_tok, zdiff, d_hidden, d_weight = _token_chunks(
      hidden, weight, labels, scale, smoothing, chunk, smooth, with_grads=True)
  d_smoothing = jnp.sum(scale * zdiff) if smooth else None
  value = jnp.sum(scale * loss_tok)
  d_weight = d_weight.astype(weight.dtype)
  return value, (d_hidden, d_weight, loss_tok, d_smoothing, smoothing)


def _fused_bwd(chunk, smooth, residuals, ct):
  d_hidden, d_weight, loss_tok, d_smoothing, smoothing = residuals

  def times_ct(x, dtype):
    # One elementwise pass, in float32 so a cotangent that is not a power of two
    # is not rounded to bfloat16 first; ct == 1 (value_and_grad) folds away.
    return (x.astype(ct.dtype) * ct).astype(dtype)

  if smooth:
    d_smoothing = (ct * d_smoothing).astype(smoothing.dtype)
  else:
    d_smoothing = jnp.zeros_like(smoothing)
  return (times_ct(d_hidden, d_hidden.dtype), times_ct(d_weight, d_weight.dtype), None,
          ct * loss_tok, d_smoothing)


fused_loss.defvjp(_fused_fwd, _fused_bwd)
