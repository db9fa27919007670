"""The elementwise sigmoid focal loss with a hand-written derivative.

Private to :func:`lossreg_jax.losses.sigmoid_focal_loss`, which adds the
validation and the reduction, and home of ``exp_neg_abs``, which the sigmoid
BCE's derivative shares. Kept apart from ``classification.py`` only for file
length.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from lossreg_jax._validation import is_static_number

__all__: list[str] = []


def static_integer_power(gamma) -> int | None:
  """``gamma`` as a Python int if it is statically a whole number, else None."""
  if not is_static_number(gamma):
    return None
  value = float(gamma)
  return int(value) if value.is_integer() and 0 <= value < 2**31 else None


def _pow(q: jax.Array, gamma: jax.Array, k: int | None) -> jax.Array:
  if k is None:
    return q**gamma  # 0**γ = 0 for γ > 0 and 1 for γ = 0: no NaN at q = 0
  return jnp.ones_like(q) if k == 0 else lax.integer_pow(q, k)


def _alpha_weight(alpha: jax.Array | None, y: jax.Array) -> jax.Array | None:
  return None if alpha is None else alpha * y + (1 - alpha) * (1 - y)


def exp_neg_abs(x: jax.Array, *, twin: bool = False) -> jax.Array:
  """``exp(−|x|)``, in ``(0, 1]``: never overflows.

  A hand-written derivative passes ``twin=True``: it then forms ``−|x|`` as
  ``|x|·(−1)``, equal numbers that XLA does not recognise as equal. The
  derivative's copy of the exp (and what is built on it) stays apart from the
  value's, so XLA fuses value and gradient into one GPU kernel (an exp the two
  shared would be written to memory between two kernels), and LLVM, which folds
  ``·(−1)`` into a negation, merges the copies inside that kernel: one pass over
  memory and one set of transcendentals per element.
  """
  abs_x = jnp.abs(x)
  return jnp.exp(abs_x * -1.0 if twin else -abs_x)


def log1p_unit(e: jax.Array) -> jax.Array:
  """``log1p(e)`` for ``e`` in ``[0, 1]``, as ``2·atanh(s)``, ``s = e/(2 + e)``.

  ``s ≤ 1/3``, so eight terms of ``atanh``'s odd series (truncation below
  ``s¹⁷/17 < 5e-10`` relative) give ``log1p`` to within 2 float32 ulps, as
  accurate as ``jnp.log1p``; it is one division and eight multiply-adds that
  the CPU compiler vectorizes, where XLA's CPU loop emitter calls a slower
  ``log1p``: ``log1p(exp(−|x|))`` over 4M elements takes about 6 ms instead
  of 10 ms (min of 40 runs). Smooth, so every derivative is finite. float64
  (under x64) uses ``jnp.log1p``: the series is a float32 approximation.
  """
  if jnp.dtype(e.dtype).itemsize > 4:
    return jnp.log1p(e)
  s = e / (2 + e)
  s2 = s * s
  acc = jnp.full_like(s, 1 / 17)
  for k in range(7, -1, -1):  # Horner: 1 + s²/3 + s⁴/5 + … + s¹⁶/17
    acc = acc * s2 + 1 / (2 * k + 1)
  return 2 * s * acc


def _pieces(x: jax.Array, y: jax.Array, *, twin: bool = False):
  """What the value and the derivatives share: one exp, one reciprocal, one log1p.

  Returns ``(pos, e, t, u, near, q, log1p(e))``. With ``e = exp(−|x|)``:
  ``u = 1/(1 + e) = max(p, 1 − p)``, ``t = e·u =
  min(p, 1 − p)``, ``near`` = the label weight of the class on the logit's side,
  ``q = 1 − p_t = (near + (1 − near)·e)·u`` and ``log1p(e)``, from which ``ce =
  (1 − y)·x + softplus(−x) = log1p(e) + ((1 − y)·x if x ≥ 0 else −y·x)``.
  Nothing cancels or overflows, so a hard label with a huge correct logit gives
  exactly 0. ``twin``: see :func:`exp_neg_abs`.
  """
  pos = x >= 0
  e = exp_neg_abs(x, twin=twin)
  u = 1 / (1 + e)
  near = jnp.where(pos, 1 - y, y)
  q = (near + (1 - near) * e) * u
  return pos, e, e * u, u, near, q, log1p_unit(e)


def _ce(pos: jax.Array, x: jax.Array, y: jax.Array, log1p_e: jax.Array) -> jax.Array:
  """``ce = log1p(e) + m·x`` with ``m = 1 − y`` (``x ≥ 0``) or ``−y`` (``x < 0``).

  At an infinite logit with a matching hard label ``m·x`` is ``0·inf``: ``m = 0``
  selects its limit 0, so the loss there is 0, not NaN.
  """
  m = jnp.where(pos, 1 - y, -y)
  return log1p_e + jnp.where(m == 0, jnp.zeros_like(x), m * x)


def _log1p_over(e: jax.Array) -> jax.Array:
  """``log1p(e)/e`` for ``e`` in ``[0, 1]``, smooth down to ``e = 0`` (value 1).

  Below ``1e-4`` three terms of its series (error under ``e³/4``) replace the
  quotient, whose derivatives divide by ``e²``, which underflows.
  """
  big = e > 1e-4
  e_big = jnp.where(big, e, 1)
  return jnp.where(big, jnp.log1p(e_big) / e_big, 1 - e * (0.5 - e / 3))


def _focal_terms(x, e, u, near, q, ce, log1p_e, gamma, k: int | None):
  """``(ce·q^γ, q^γ, ce·q^(γ−1), t·q^(γ−1), log q)``, with ``t = e·u``.

  A whole ``γ = k`` uses integer powers. Otherwise ``q = (near + (1 − near)·e)·u``
  underflows for a confidently correct logit (``near = 0``, ``q = t``), and a
  real power of it has an infinite derivative there (``γ·q^(γ−1)`` at ``q = 0``)
  and ``L/q`` a derivative through ``1/q²``, which underflows from ``|x| ≈ 44``:
  NaN second derivatives. So nothing here divides by ``q`` or raises it to a
  power below 1: ``log q`` is formed in log space (``−|x| − log1p(e)`` when
  ``near = 0``), ``t/q = e/(near + (1 − near)·e)`` is exactly 1 when
  ``near = 0``, and ``ce/q = (1 + e)·ce/(near + (1 − near)·e)`` is
  ``(1 + e)·log1p(e)/e`` there. Each quotient has a denominator of at least
  ``near`` (a "double where" keeps the unused branch finite), so every
  derivative of every order stays finite. ``q^γ`` itself is ``q**γ`` (most
  accurate) where ``q`` is a normal number, ``exp(γ·log q)`` where it is not.
  """
  if k is None:
    den = near + (1 - near) * e
    has_near = near > 0
    den_s = jnp.where(has_near, den, 1)
    log_q = jnp.where(has_near, jnp.log(den_s), -jnp.abs(x)) - log1p_e
    normal = q > 1e-30
    qg = jnp.where(normal, jnp.where(normal, q, 1) ** gamma, jnp.exp(gamma * log_q))
    ce_over_q = (1 + e) * jnp.where(has_near, ce / den_s, _log1p_over(e))
    t_over_q = jnp.where(has_near, e / den_s, 1)
    return ce * qg, qg, ce_over_q * qg, t_over_q * qg, log_q
  t = e * u
  if k == 0:
    zero = jnp.zeros_like(q)
    return ce, jnp.ones_like(q), zero, zero, None
  if k == 1:
    return ce * q, q, ce, t, None
  q_k2 = _pow(q, gamma, k - 2)
  q_k1 = q_k2 * q
  return ce * q_k1 * q, q_k1 * q, ce * q_k1, t * q_k1, None


@partial(jax.custom_jvp, nondiff_argnums=(4,))
def focal_core(x: jax.Array, y: jax.Array, gamma: jax.Array, alpha: jax.Array | None,
               k: int | None) -> jax.Array:
  """``α_t·ce·(1 − p_t)^γ`` elementwise; ``k`` is γ as a static int, else None.

  A whole ``γ`` costs a few multiplications (``lax.integer_pow``) instead of
  ``exp(γ·log(1 − p_t))``. ``alpha=None`` means no class balancing (``α_t =
  1``). See ``_pieces`` for how ``ce`` and ``1 − p_t`` stay exact.
  """
  pos, _, _, _, _, q, log1p_e = _pieces(x, y)
  w = _pow(q, gamma, k)
  aw = _alpha_weight(alpha, y)
  w = w if aw is None else aw * w
  # Ending in one select keeps the CPU's reduction from pulling the products
  # into a library call that reads its operands from memory.
  m = jnp.where(pos, 1 - y, -y)  # as in _ce
  return jnp.where(m == 0, log1p_e * w, (log1p_e + m * x) * w)


@partial(focal_core.defjvp, symbolic_zeros=True)
def _focal_core_jvp(k, primals, tangents):
  x, y, gamma, alpha = primals
  # Symbolic zeros: the terms of arguments that are not differentiated (the
  # labels, a constant gamma or alpha) are left out rather than multiplied by
  # an instantiated 0, which at an infinite logit would turn the logits'
  # tangent NaN (their label derivative has x·q^γ = inf·0 there).
  tx, ty, tg, ta = (None if isinstance(t, SymbolicZero) else t for t in tangents)
  # With q = 1 − p_t and L = ce·q^γ (before α_t), s = sign(x) (+1 at 0):
  # dL/dx = (p − y)·q^γ + γ·(1 − 2y)·p(1 − p)·ce·q^(γ−1)
  #       = s·[(near − t)·q^γ + γ·(2·near − 1)·t·u·ce·q^(γ−1)],
  # dL/dy = −x·q^γ + γ·(1 − 2p)·ce·q^(γ−1), dL/dγ = L·log q.
  # near − t, not p − y: for x ≥ 0, p = u rounds to 1 where t does not.
  pos, e, t, u, near, q, log1p_e = _pieces(x, y, twin=True)
  ce = _ce(pos, x, y, log1p_e)
  loss, qg, ce_q1, t_q1, log_q = _focal_terms(x, e, u, near, q, ce, log1p_e, gamma, k)
  g = gamma if k is None else k
  out = jnp.zeros_like(x)
  if tx is not None:
    # ce·t_q1 → 0 as |x| → inf (|x|·e^−|x|); at an infinite logit it is
    # inf·0, so a zero t_q1 selects 0: the gradient there is ±1 or 0, not NaN.
    focus = ((2 * g) * near - g) * u * ce * t_q1
    dx_abs = (near - t) * qg + jnp.where(t_q1 == 0, jnp.zeros_like(x), focus)
    out = out + jnp.where(pos, dx_abs, -dx_abs) * tx
  if ty is not None:
    out = out + (g * jnp.where(pos, t - u, u - t) * ce_q1 - x * qg) * ty
  if k is None and tg is not None:  # d/dγ = L·log q (log q finite: see _focal_terms)
    out = out + loss * log_q * tg
  aw = _alpha_weight(alpha, y)
  if aw is not None:  # d(α_t·L) = α_t·dL + L·dα_t
    out = aw * out
    if ty is not None:
      out = out + loss * (2 * alpha - 1) * ty
    if ta is not None:
      out = out + loss * (2 * y - 1) * ta
  return focal_core(x, y, gamma, alpha, k), out
