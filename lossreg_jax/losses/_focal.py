"""The elementwise sigmoid focal loss with a hand-written derivative.

Private to :func:`lossreg_jax.losses.sigmoid_focal_loss`, which adds the
validation and the reduction. Kept apart from ``classification.py`` only for
file length.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

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


@partial(jax.custom_jvp, nondiff_argnums=(4,))
def focal_core(x: jax.Array, y: jax.Array, gamma: jax.Array, alpha: jax.Array | None,
               k: int | None) -> jax.Array:
  """``α_t·ce·(1 − p_t)^γ`` elementwise; ``k`` is γ as a static int, else None.

  With ``e = exp(−|x|)``: ``ce = (1 − y)·x + softplus(−x)`` and ``1 − p_t =
  (near + far·e)/(1 + e)``, where ``near`` is the label weight of the class on
  the logit's side, ``far = 1 − near``. Nothing cancels or overflows, so a hard
  label with a huge correct logit gives exactly 0. A whole ``γ`` costs a few
  multiplications (``lax.integer_pow``) instead of ``exp(γ·log(1 − p_t))``.
  ``alpha=None`` means no class balancing (``α_t = 1``).
  """
  pos = x >= 0
  e = jnp.exp(jnp.where(pos, -x, x))  # exp(−|x|) in (0, 1]: never overflows
  log1p_e = jnp.log1p(e)
  near = jnp.where(pos, 1 - y, y)
  # × a reciprocal rather than a division: XLA will not fuse an expensive op
  # (the division) whose result the integer power uses more than once.
  w = _pow((near + (1 - near) * e) * (1 / (1 + e)), gamma, k)
  aw = _alpha_weight(alpha, y)
  w = w if aw is None else aw * w
  # ce = (1 − y)·x + softplus(−x) = log1p(e) + ((1 − y)·x if x ≥ 0 else −y·x):
  # no cancellation. Ending in one select lets XLA fuse the whole loss into one
  # loop (as the BCE).
  return jnp.where(pos, (log1p_e + (1 - y) * x) * w, (log1p_e - y * x) * w)


@focal_core.defjvp
def _focal_core_jvp(k, primals, tangents):
  x, y, gamma, alpha = primals
  tx, ty, tg, ta = tangents
  # With q = 1 − p_t and L = ce·q^γ (before α_t):
  # dL/dx = (p − y)·q^γ + γ·(1 − 2y)·p(1 − p)·ce·q^(γ−1),
  # dL/dy = −x·q^γ + γ·(1 − 2p)·ce·q^(γ−1), dL/dγ = L·log q.
  # The pieces come from t = σ(−|x|) (the logistic op) rather than from the
  # forward's exp(−|x|): sharing that exp would make XLA write it to memory
  # between the value and gradient loops, as for the BCE.
  pos = x >= 0
  t = jax.nn.sigmoid(-jnp.abs(x))  # min(p, 1 − p) in [0, 1/2]
  u = 1 - t  # max(p, 1 − p) in [1/2, 1]: no cancellation
  near = jnp.where(pos, 1 - y, y)
  q = near * u + (1 - near) * t
  ce = jnp.where(pos, (1 - y) * x, -y * x) - jnp.log1p(-t)
  p_minus_y = jnp.where(pos, (1 - y) - t, t - y)  # not u − y: u rounds to 1
  qg = _pow(q, gamma, k)
  if k is None:
    # ce·q^(γ−1) as (ce/q)·q^γ: q^(γ−1) alone is infinite at q = 0 for γ < 1,
    # but there ce = 0 too, and ce/q stays below about |x| + 1.
    safe_q = jnp.where(q > 0, q, 1)
    ce_q1 = ce / safe_q * qg
  else:
    ce_q1 = ce * _pow(q, gamma, k - 1) if k > 0 else jnp.zeros_like(q)
  g = gamma if k is None else k
  dx = p_minus_y * qg + g * (1 - 2 * y) * (t * u) * ce_q1
  dy = g * jnp.where(pos, t - u, u - t) * ce_q1 - x * qg
  out = dx * tx + dy * ty
  if k is None:  # d/dγ (0 where q = 0)
    out = out + ce * qg * jnp.log(safe_q) * tg
  aw = _alpha_weight(alpha, y)
  if aw is not None:  # d(α_t·L) = α_t·dL + L·dα_t
    out = aw * out + ce * qg * ((2 * alpha - 1) * ty + (2 * y - 1) * ta)
  return focal_core(x, y, gamma, alpha, k), out
