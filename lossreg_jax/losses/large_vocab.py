"""Cross-entropy over a large vocabulary that never materializes the logits.

``linear_softmax_cross_entropy(hidden, weight, labels)`` is the cross-entropy of
``hidden @ weight`` against integer labels, computed without the ``(N, V)``
logits matrix (4 GiB in float32 for 8192 tokens and a 131072-word vocabulary).
Two strategies:

* ``"tokens"`` (scalar reductions; ``_large_vocab_fused.py``): chunks of tokens,
  each chunk's full-vocabulary logits, loss and both gradients computed in the
  forward pass (3 matmuls, as on materialized logits).
* ``"vocab"`` (any reduction; here): chunks of the vocabulary, a running
  log-sum-exp in the forward pass, and a custom VJP that recomputes each
  chunk's logits in the backward pass (4 matmuls).
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array,
    check_choice,
    check_in_range,
    check_int,
    check_rank,
    is_static_number,
)
from lossreg_jax.losses._large_vocab_fused import acc_dtype as _acc_dtype
from lossreg_jax._validation import standard_result_type as _standard_result_type
from lossreg_jax.losses._large_vocab_fused import MIN_CHUNKS, auto_token_chunk, fused_loss
from lossreg_jax.losses._reduce import Reduction, broadcast_where, reduce_loss, sanitize

__all__ = ["linear_softmax_cross_entropy"]

Strategy = Literal["auto", "vocab", "tokens"]
# The "vocab" strategy's automatic chunk: at most this many columns, and at most
# V / MIN_CHUNKS (8192 at V = 131072, as before that cap).
DEFAULT_VOCAB_CHUNK = 8192


def _chunk(weight: jax.Array, i: jax.Array, chunk: int):
  """Columns ``[i * chunk, (i + 1) * chunk)`` of ``weight`` (the last chunk overlaps).

  When ``V`` is not a multiple of ``chunk`` the last chunk starts at ``V - chunk``
  instead of padding ``weight`` (which would copy it); its columns already seen
  in the previous chunk are flagged invalid.
  """
  v = weight.shape[1]
  start = jnp.minimum(i * chunk, v - chunk)
  w = lax.dynamic_slice_in_dim(weight, start, chunk, axis=1)
  cols = start + jnp.arange(chunk)
  valid = cols >= i * chunk
  return w, start, cols, valid


def _chunk_logits(hidden: jax.Array, w: jax.Array) -> jax.Array:
  return jnp.dot(hidden, w, preferred_element_type=_acc_dtype(hidden, w))


def _forward_stats(hidden, weight, labels, chunk, smooth):
  """One pass over the chunks: log-sum-exp, label logit and mean logit per token."""
  n, v = hidden.shape[0], weight.shape[1]
  acc = _acc_dtype(hidden, weight)
  num_chunks = -(-v // chunk)
  ragged = v % chunk != 0

  def body(i, carry):
    m, s, z_label, z_sum = carry
    w, start, _, valid = _chunk(weight, i, chunk)
    logits = _chunk_logits(hidden, w)
    if ragged:
      logits = jnp.where(valid[None, :], logits, -jnp.inf)
    # Online log-sum-exp: keep the running max m and sum s of exp(logit - m),
    # rescaling s whenever the max grows, so no exp ever overflows.
    m_new = jnp.maximum(m, jnp.max(logits, axis=1))
    s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(logits - m_new[:, None]), axis=1)
    # The label logit is picked from the same block as the log-sum-exp, so that
    # lse - z_label is exactly consistent (matters when logits are ~1e4). A
    # gather of one entry per row: a masked sum over the block made XLA hold a
    # second (N, chunk) temporary (see _large_vocab_fused.py).
    local = labels - start
    inside = (labels >= i * chunk) & (local < chunk)  # in this chunk, not an overlap
    picked = jnp.take_along_axis(logits, jnp.clip(local, 0, chunk - 1)[:, None], axis=1)[:, 0]
    z_label = z_label + jnp.where(inside, picked, 0)
    if smooth:
      z_sum = z_sum + jnp.sum(jnp.where(valid[None, :], logits, 0), axis=1)
    return m_new, s, z_label, z_sum

  init = (
      jnp.full((n,), -jnp.inf, acc),
      jnp.zeros((n,), acc),
      jnp.zeros((n,), acc),
      jnp.zeros((n,), acc),
  )
  m, s, z_label, z_sum = lax.fori_loop(0, num_chunks, body, init)
  return m + jnp.log(s), z_label, z_sum / v


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _token_loss(hidden, weight, labels, smoothing, chunk, smooth):
  loss, _ = _token_loss_fwd(hidden, weight, labels, smoothing, chunk, smooth)
  return loss


def _token_loss_fwd(hidden, weight, labels, smoothing, chunk, smooth):
  lse, z_label, z_mean = _forward_stats(hidden, weight, labels, chunk, smooth)
  if smooth:
    # (1 - e) * (lse - z_y) + e * mean_c (lse - z_c)
    loss = lse - (1 - smoothing) * z_label - smoothing * z_mean
  else:
    loss = lse - z_label
  return loss, (hidden, weight, labels, smoothing, lse, z_label, z_mean)


def _token_loss_bwd(chunk, smooth, residuals, ct):
  hidden, weight, labels, smoothing, lse, z_label, z_mean = residuals
  d, v = weight.shape
  acc = _acc_dtype(hidden, weight)
  mm_dtype = _standard_result_type(hidden, weight)
  num_chunks = -(-v // chunk)
  ragged = v % chunk != 0
  ct = ct.astype(acc)

  def body(i, carry):
    d_hidden, d_weight = carry
    w, start, cols, valid = _chunk(weight, i, chunk)
    # Recompute this chunk's logits instead of storing all of them.
    logits = _chunk_logits(hidden, w)
    probs = jnp.exp(logits - lse[:, None])
    onehot = (cols[None, :] == labels[:, None]).astype(acc)
    if smooth:
      g = probs - (1 - smoothing) * onehot - smoothing / v
    else:
      g = probs - onehot
    if ragged:
      g = jnp.where(valid[None, :], g, 0)
    g = (g * ct[:, None]).astype(mm_dtype)
    d_hidden = d_hidden + jnp.einsum("nc,dc->nd", g, w, preferred_element_type=acc)
    d_w = jnp.einsum("nd,nc->dc", hidden, g, preferred_element_type=acc)
    d_w = d_w.astype(weight.dtype)
    if ragged:
      # Columns of the overlapping last chunk that an earlier chunk wrote keep
      # their value.
      old = lax.dynamic_slice_in_dim(d_weight, start, chunk, axis=1)
      d_w = jnp.where(valid[None, :], d_w, old)
    d_weight = lax.dynamic_update_slice_in_dim(d_weight, d_w, start, axis=1)
    return d_hidden, d_weight

  init = (jnp.zeros(hidden.shape, acc), jnp.zeros(weight.shape, weight.dtype))
  d_hidden, d_weight = lax.fori_loop(0, num_chunks, body, init)
  if smooth:
    d_smoothing = jnp.sum(ct * (z_label - z_mean)).astype(smoothing.dtype)
  else:
    d_smoothing = jnp.zeros_like(smoothing)
  return d_hidden.astype(hidden.dtype), d_weight, None, d_smoothing


_token_loss.defvjp(_token_loss_fwd, _token_loss_bwd)


def _resolve_strategy(strategy, chunk_size, token_chunk_size, reduction, n, v, acc):
  """Returns ``(strategy, chunk)``: the path to run and its chunk, never ignoring an argument.

  A chunk size the caller passes is used, or rejected when it belongs to the
  other strategy. Automatic chunks make at least ``MIN_CHUNKS`` chunks along the
  chunked axis (when it is that long), so one logits block is at most 1/8 of the
  ``(N, V)`` logits.
  """
  chunk_size = check_int("chunk_size", chunk_size, 1, optional=True)
  token_chunk_size = check_int("token_chunk_size", token_chunk_size, 1, optional=True)
  check_choice("strategy", strategy, ("auto", "vocab", "tokens"))
  check_choice("reduction", reduction, ("none", "sum", "mean", "weighted_mean"))
  if strategy == "auto":
    if chunk_size is not None and token_chunk_size is not None:
      raise ValueError(
          f"chunk_size={chunk_size} (vocabulary chunks, strategy='vocab') and "
          f"token_chunk_size={token_chunk_size} (token chunks, strategy='tokens') "
          "exclude each other: pass one of them."
      )
    if token_chunk_size is not None:
      strategy = "tokens"
    elif chunk_size is not None or reduction == "none":
      strategy = "vocab"
    else:  # chunk the axis that splits into more pieces: tokens unless N is tiny
      strategy = "tokens" if n >= min(MIN_CHUNKS, v) else "vocab"
  if strategy == "tokens" and reduction == "none":
    raise ValueError(
        'strategy="tokens" (or token_chunk_size) needs a scalar loss (reduction "sum", '
        '"mean" or "weighted_mean"), got reduction="none"; use strategy="vocab" with '
        "chunk_size."
    )
  if strategy == "tokens" and chunk_size is not None:
    raise ValueError(
        f"chunk_size={chunk_size} sets vocabulary chunks, which strategy='tokens' does "
        "not use; pass token_chunk_size (tokens per chunk) instead."
    )
  if strategy == "vocab" and token_chunk_size is not None:
    raise ValueError(
        f"token_chunk_size={token_chunk_size} sets token chunks, which strategy='vocab' "
        "does not use; pass chunk_size (vocabulary columns per chunk) instead."
    )
  if strategy == "tokens" and n > 0:
    chunk = auto_token_chunk(n, v, acc) if token_chunk_size is None else token_chunk_size
    return strategy, min(chunk, n)
  if chunk_size is None:  # also "tokens" with no tokens: the empty reduction
    chunk_size = max(1, min(DEFAULT_VOCAB_CHUNK, v // MIN_CHUNKS))
  return "vocab", min(chunk_size, v)


def _token_scale(batch_shape, dtype, weights, mask, reduction) -> jax.Array:
  """Each token's coefficient in the reduction, from ``reduce_loss`` itself.

  ``reduce_loss`` is linear in the loss, so its gradient at any loss is the
  vector of coefficients ``weight * mask / normalizer`` (0 for an empty
  selection): the same semantics, computed before the token loop. It stays
  differentiable with respect to ``weights``.
  """
  return jax.grad(lambda loss: reduce_loss(loss, weights=weights, where=mask,
                                           reduction=reduction))(jnp.zeros(batch_shape, dtype))


def linear_softmax_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    chunk_size: int | None = None,
    token_chunk_size: int | None = None,
    strategy: Strategy = "auto",
    ignore_index: int | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  r"""Softmax cross-entropy of ``hidden @ weight`` without materializing the logits.

  Equals ``optax.losses.softmax_cross_entropy_with_integer_labels(hidden @ weight,
  labels)`` per token (with ``label_smoothing`` as
  ``softmax_cross_entropy_with_integer_labels``: ``(1 - e) * nll + e * mean_c
  -log p_c``), reduced as every loss, but only a block of the logits exists at
  a time. Two strategies give the same values and gradients:

  * ``"tokens"`` (scalar reductions only): loops over chunks of
    ``token_chunk_size`` tokens. For each, the chunk's full-vocabulary logits
    give an exact log-sum-exp (max-subtracted, so logits ~1e4 stay finite),
    the loss terms and ``g = softmax - onehot`` (minus the smoothing terms),
    then ``d_hidden[chunk] = scale * g @ Wᵀ`` and ``d_weight += (scale *
    hidden[chunk])ᵀ @ g``, where ``scale`` is each token's coefficient in the
    reduction (weights, mask and normalizer, known in advance because the
    cotangent of a scalar loss is a scalar). 3 matmuls, as on materialized
    logits; the gradients are computed inside the forward pass of a
    ``jax.custom_vjp`` and the backward pass only multiplies them by the
    cotangent. Without differentiation only the forward matmul runs. With
    bfloat16 / float16 weights the sum over token chunks of the weight
    gradient runs in that dtype (as Liger-Kernel; a float32 accumulator would
    cost ``4 * D * V`` bytes): each chunk's matmul accumulates in float32, and
    the ``ceil(N / token_chunk_size)`` partial sums are rounded.
  * ``"vocab"`` (any reduction): loops over vocabulary chunks of
    ``chunk_size`` columns with a running max and running sum of
    ``exp(logit - max)`` (an online log-sum-exp); a ``jax.custom_vjp``
    recomputes each chunk's logits in the backward pass and accumulates
    ``d_hidden += g @ W_chunkᵀ`` and ``d_weight[:, chunk] = hiddenᵀ @ g``
    (4 matmuls). Each column of the weight gradient is rounded once.

  ``"auto"`` follows the chunk size given: ``chunk_size`` runs ``"vocab"``,
  ``token_chunk_size`` runs ``"tokens"`` (passing both is an error, and so is a
  chunk size for the other strategy: no argument is silently ignored). With
  neither, it picks ``"tokens"`` unless ``reduction="none"`` or
  ``N < min(8, V)`` (too few tokens to split). Automatic chunks split the
  chunked axis into at least 8 chunks (when it has 8 entries), so one logits
  block is at most 1/8 of the ``(N, V)`` logits and the compiled temporaries,
  value and gradient, stay under a quarter of the logits (measured with
  ``memory_analysis()`` at N=2048, D=32, V=8192: 0.14), plus the gradients' own
  size and, when ``N < D``, the ``(D, chunk)`` slice of ``weight``. Both
  differentiate with respect to ``hidden``, ``weight``, ``label_smoothing`` and ``weights``
  (reverse mode only: no ``jax.jvp``); ``labels`` get no gradient. Matmuls run
  in the inputs' dtype (bfloat16 / float16 use tensor cores) and accumulate in
  float32; gradients come back in the inputs' dtypes. Ragged sizes (``V`` not a
  multiple of ``chunk_size``, ``N`` not a multiple of ``token_chunk_size``)
  overlap the last chunk with the previous one and mask the repeated part:
  ``hidden`` and ``weight`` are never padded or copied.

  Args:
    hidden: Final hidden states, shape ``[..., D]``, floating.
    weight: Output projection, shape ``[D, V]``, floating.
    labels: Integer class indices in ``[0, V)``, shape ``[...]``
      (``hidden.shape[:-1]``). Other values (except ``ignore_index``) give a
      NaN loss.
    chunk_size: Vocabulary columns per chunk, for ``"vocab"`` (a Python int >
      0; clipped to ``V``); passing it makes ``"auto"`` run ``"vocab"``.
      ``None``: ``min(8192, V // 8)`` (at least 1). Memory scales with
      ``N * chunk_size``.
    token_chunk_size: Tokens per chunk, for ``"tokens"`` (a Python int > 0,
      clipped to ``N``); passing it makes ``"auto"`` run ``"tokens"``.
      ``None`` picks the most rows whose float32 ``(rows, V)`` logits block
      fits in 512 MiB and is at most ``N // 8`` (at least 1): 1024 for
      ``N = 8192, V = 131072``. Memory scales with ``token_chunk_size * V``;
      larger chunks are faster.
    strategy: ``"auto"``, ``"tokens"`` or ``"vocab"`` (see above).
    ignore_index: Label value whose tokens are excluded (folded into ``where``),
      as PyTorch's ``ignore_index``.
    label_smoothing: ``e`` in ``[0, 1]``; the target puts ``1 - e`` on the label
      and ``e / V`` on every class.
    weights: Broadcastable to ``labels``; per-token weights.
    where: Boolean mask broadcastable to ``labels``; excluded tokens contribute
      exactly 0.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``labels.shape`` with ``reduction="none"``, else a scalar, in the
    result dtype of ``hidden`` and ``weight`` (accumulated in float32).

  Raises:
    TypeError: if ``hidden`` or ``weight`` is not floating, or ``labels`` is
      not integer.
    ValueError: if ``weight`` is not 2-D, the inner dimensions differ,
      ``labels.shape != hidden.shape[:-1]``, ``chunk_size`` or
      ``token_chunk_size`` is not a positive int, a chunk size is passed for
      the strategy that does not use it (or both under ``"auto"``),
      ``label_smoothing`` is outside ``[0, 1]``, ``strategy`` is unknown, or
      ``"tokens"`` is asked for with ``reduction="none"``.

  Examples:
    >>> import jax.numpy as jnp
    >>> hidden = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    >>> weight = jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    >>> linear_softmax_cross_entropy(hidden, weight, jnp.array([0, 1]), token_chunk_size=1)
    Array(0.4076..., dtype=float32)
    >>> linear_softmax_cross_entropy(hidden, weight, jnp.array([0, 1]), chunk_size=2)
    Array(0.4076..., dtype=float32)

  References:
    Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", 2024;
    Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM Training", 2024
    (fused linear cross-entropy);
    Milakov & Gimelshein, "Online normalizer calculation for softmax", 2018.
  """
  hidden = as_float_array("hidden", hidden)
  weight = as_float_array("weight", weight)
  labels = jnp.asarray(labels)
  check_rank("weight", weight, 2)
  if hidden.ndim < 1 or hidden.shape[-1] != weight.shape[0]:
    raise ValueError(
        f"hidden's last dimension must equal weight's first (D), got hidden.shape="
        f"{hidden.shape} and weight.shape={weight.shape}."
    )
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(
        f"labels must be integer class indices, got dtype {labels.dtype} with "
        f"shape {labels.shape}."
    )
  if labels.shape != hidden.shape[:-1]:
    raise ValueError(
        f"labels.shape must equal hidden.shape[:-1]={hidden.shape[:-1]}, got "
        f"labels.shape={labels.shape} (hidden.shape={hidden.shape})."
    )
  if weight.shape[1] == 0:
    raise ValueError(f"weight must have at least one column (V > 0), got shape {weight.shape}.")
  check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
  ignore_index = check_int("ignore_index", ignore_index, optional=True)
  smooth = not (is_static_number(label_smoothing) and float(label_smoothing) == 0.0)

  batch_shape = labels.shape
  d, v = weight.shape
  n = labels.size
  out_dtype = _standard_result_type(hidden, weight)
  acc = _acc_dtype(hidden, weight)
  strategy, chunk = _resolve_strategy(strategy, chunk_size, token_chunk_size, reduction, n, v,
                                      acc)
  mask = broadcast_where(where, batch_shape)
  if ignore_index is not None:
    keep = labels != ignore_index
    mask = keep if mask is None else mask & keep
  if mask is not None:
    # Excluded tokens' hidden states become 0 and their labels a valid class,
    # so their loss is finite: a NaN there cannot reach the weight gradient
    # (their cotangent is 0, but 0 * NaN is NaN).
    hidden = sanitize(hidden, mask[..., None], 0)
    labels = jnp.where(mask, labels, 0)
  smoothing = jnp.asarray(label_smoothing, acc)
  hidden = hidden.reshape(-1, d)
  flat_labels = labels.reshape(-1).astype(jnp.int32)
  if strategy == "tokens":
    scale = _token_scale(batch_shape, acc, weights, mask, reduction).reshape(-1)
    loss = fused_loss(hidden, weight, flat_labels, scale, smoothing, chunk, smooth)
    return loss.astype(out_dtype)
  loss = _token_loss(hidden, weight, flat_labels, smoothing, chunk, smooth).reshape(batch_shape)
  # Labels outside [0, V) (other than ignore_index) cannot be checked under jit:
  # their loss is NaN, as in softmax_cross_entropy_with_integer_labels.
  loss = jnp.where((labels >= 0) & (labels < v), loss, jnp.nan)
  # Reduce in float32, then return the inputs' dtype.
  return reduce_loss(loss, weights=weights, where=mask, reduction=reduction).astype(out_dtype)
