"""Elementwise binary cross-entropy kernels with hand-written derivatives.

Private to :func:`lossreg_jax.losses.binary_cross_entropy` and
:func:`lossreg_jax.losses.sigmoid_binary_cross_entropy`, which add the
validation, label smoothing and the reduction. Kept apart from
``classification.py`` for file length, beside ``_focal.py`` whose pieces
(``exp_neg_abs``, ``log1p_unit``) they share.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from lossreg_jax.losses._focal import exp_neg_abs, log1p_unit

__all__: list[str] = []


@partial(jax.custom_jvp, nondiff_argnums=(4,))
def sigmoid_bce(x: jax.Array, y: jax.Array, ybar: jax.Array, pw: jax.Array,
                 unit: bool) -> jax.Array:
  """``−pw·y·log σ(x) − ybar·log σ(−x)`` with one exp and one log1p per element.

  ``ybar`` is ``1 − y``, passed in so that label smoothing can form it without
  cancellation. With ``l = log1p(exp(−|x|))``, ``−log σ(x) = l + max(−x, 0)``
  and ``−log σ(−x) = l + max(x, 0)``, so the loss is
  ``(pw·y + ybar)·l + (ybar·x if x ≥ 0 else −pw·y·x)``: a sum of non-negative
  terms, exact to a few ulps for every logit. (The former form ``(1 − y)·x +
  softplus(−x)`` added ``x`` and ``l − x`` for ``x < 0``, ``y = 0``: the terms
  cancelled, leaving 0 where the loss is ``e^x``.) ``unit``: statically
  ``pw·y + ybar = 1`` (no positive weight, no smoothing), so ``l`` is not
  multiplied, exactly as in the focal loss's cross-entropy.
  """
  # The exponent −|x| is never positive, so nothing overflows. The linear term
  # is m·x with m = ybar (x ≥ 0) or −pw·y (x < 0), the same numbers as before;
  # at an infinite logit whose label weight on its side is 0 (a matching hard
  # label: x = +inf, y = 1 or x = −inf, y = 0) m·x is 0·inf = NaN, so m = 0
  # selects cl, the exact limit (l is 0 there too), and a mismatching label
  # gives +inf. Ending in one select lets XLA fuse it into one loop: ending in
  # the add (cl + select) took twice as long for the value and gradient of a
  # 2M-element mean on a CPU.
  pos = x >= 0
  a = pw * y
  l = log1p_unit(exp_neg_abs(x))  # faster than jnp.log1p on a CPU, as accurate
  cl = l if unit else (a + ybar) * l
  m = jnp.where(pos, ybar, -a)
  return jnp.where(m == 0, cl, cl + m * x)


def _perturbed(t) -> bool:
  return not isinstance(t, SymbolicZero)


@partial(sigmoid_bce.defjvp, symbolic_zeros=True)
def _sigmoid_bce_jvp(unit, primals, tangents):
  x, y, ybar, pw = primals
  tx, ty, tybar, tpw = tangents
  # symbolic_zeros: an argument that is not differentiated (the labels, a
  # constant weight) has a SymbolicZero tangent and its term is left out. It
  # is not multiplied by an instantiated 0: at an infinite logit −log σ(±x) is
  # inf, and inf·0 would make the logits' tangent (jax.jvp, jacfwd) NaN.
  # d/dx = ybar·σ(x) − pw·y·σ(−x) = r·(ybar − pw·y·e) for x ≥ 0 and
  # r·(ybar·e − pw·y) below, with e = exp(−|x|) and r = 1/(1 + e): for a hard
  # label one product is exactly 0, so nothing cancels. e is formed as its twin
  # so that value and gradient stay one GPU kernel (see exp_neg_abs).
  pos = x >= 0
  e = exp_neg_abs(x, twin=True)
  r = 1 / (1 + e)
  a = pw * y
  dx = r * jnp.where(pos, ybar - a * e, ybar * e - a)
  out = dx * tx if _perturbed(tx) else jnp.zeros_like(x)
  if _perturbed(ty) or _perturbed(tybar) or _perturbed(tpw):
    # The label and weight derivatives are −log σ(±x), from the value's exp.
    l = log1p_unit(exp_neg_abs(x))
    sp_neg = l + jnp.maximum(-x, 0)  # softplus(−x) = −log σ(x)
    sp_pos = l + jnp.maximum(x, 0)  # softplus(x) = −log σ(−x)
    if _perturbed(ty):
      out = out + (pw * sp_neg) * ty
    if _perturbed(tybar):
      out = out + sp_pos * tybar
    if _perturbed(tpw):
      out = out + (y * sp_neg) * tpw
  return sigmoid_bce(x, y, ybar, pw, unit), out


@jax.custom_jvp
def clipped_bce(p: jax.Array, y: jax.Array, pw: jax.Array, eps: jax.Array) -> jax.Array:
  """``−(pw·y·log p̂ + (1 − y)·log(1 − p̂))`` with ``p̂ = clip(p, eps, 1 − eps)``."""
  # log(1 − p̂), not log1p(−p̂), as Keras and torch: with p̂ ≥ eps its absolute
  # error is below the loss's rounding, and log costs less than log1p. One
  # negation at the end: each op is a pass in the CPU's reduction library.
  pc = jnp.clip(p, eps, 1 - eps)
  return -(pw * y * jnp.log(pc) + (1 - y) * jnp.log(1 - pc))


@clipped_bce.defjvp
def _clipped_bce_jvp(primals, tangents):
  p, y, pw, eps = primals
  tp, ty, tpw, teps = tangents
  pc = jnp.clip(p, eps, 1 - eps)
  log_p, log_q = jnp.log(pc), jnp.log(1 - pc)
  # dL/dp̂ = (1 − y)/(1 − p̂) − pw·y/p̂, as one division. p̂ follows p inside
  # [eps, 1 − eps] and ±eps outside: no gradient reaches p there, and none of
  # jnp.clip's tie-splitting divisions.
  d_pc = ((1 - y) * pc - pw * y * (1 - pc)) / (pc * (1 - pc))
  t_pc = jnp.where(p < eps, teps, jnp.where(p > 1 - eps, -teps, tp))
  out = d_pc * t_pc - (pw * log_p - log_q) * ty - y * log_p * tpw
  return clipped_bce(p, y, pw, eps), out
