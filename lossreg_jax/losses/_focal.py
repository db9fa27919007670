"""The elementwise sigmoid focal loss with a hand-written derivative.

Private to :func:`lossreg_jax.losses.sigmoid_focal_loss`, which adds the
validation, ``alpha`` and the reduction. Kept apart from ``classification.py``
only for file length.
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


@partial(jax.custom_jvp, nondiff_argnums=(3,))
def focal_core(x: jax.Array, y: jax.Array, gamma: jax.Array, k: int | None) -> jax.Array:
  """``ce·(1 − p_t)^γ`` elementwise; ``k`` is γ as a static int, else None.

  With ``e = exp(−|x|)``: ``ce = (1 − y)·x + softplus(−x)`` and ``1 − p_t =
  (near + far·e)/(1 + e)``, where ``near`` is the label weight of the class on
  the logit's side, ``far = 1 − near``. Nothing cancels or overflows, so a hard
  label with a huge correct logit gives exactly 0. A whole ``γ`` costs a few
  multiplications (``lax.integer_pow``) instead of ``exp(γ·log(1 − p_t))``.
  """
  pos = x >= 0
  e = jnp.exp(jnp.where(pos, -x, x))  # exp(−|x|) in (0, 1]: never overflows
  log1p_e = jnp.log1p(e)
  ce = (1 - y) * x + jnp.where(pos, log1p_e, log1p_e - x)
  near = jnp.where(pos, 1 - y, y)
  return ce * _pow((near + (1 - near) * e) / (1 + e), gamma, k)


@focal_core.defjvp
def _focal_core_jvp(k, primals, tangents):
  x, y, gamma = primals
  tx, ty, tg = tangents
  # d/dx = (p − y)·q^γ + γ·(1 − 2y)·p(1 − p)·ce·q^(γ−1),
  # d/dy = −x·q^γ + γ·(1 − 2p)·ce·q^(γ−1), with q = 1 − p_t.
  # The pieces come from t = σ(−|x|) (the logistic op) rather than from the
  # forward's exp(−|x|): sharing that exp would make XLA write it to memory
  # between the value and gradient loops, as for the BCE.
  pos = x >= 0
  t = jax.nn.sigmoid(-jnp.abs(x))  # min(p, 1 − p) in [0, 1/2]
  u = 1 - t  # max(p, 1 − p) in [1/2, 1]: no cancellation
  p = jnp.where(pos, u, t)
  near = jnp.where(pos, 1 - y, y)
  q = near * u + (1 - near) * t
  ce = (1 - y) * x + jnp.where(pos, 0, -x) - jnp.log1p(-t)
  qg = _pow(q, gamma, k)
  if k is None:
    # ce·q^(γ−1) as (ce/q)·q^γ: q^(γ−1) alone is infinite at q = 0 for γ < 1,
    # but there ce = 0 too, and ce/q stays below about |x| + 1.
    safe_q = jnp.where(q > 0, q, 1)
    ce_q1 = ce / safe_q * qg
  else:
    ce_q1 = ce * _pow(q, gamma, k - 1) if k > 0 else jnp.zeros_like(q)
  g = gamma if k is None else k
  dx = (p - y) * qg + g * (1 - 2 * y) * (t * u) * ce_q1
  dy = g * jnp.where(pos, t - u, u - t) * ce_q1 - x * qg
  out = dx * tx + dy * ty
  if k is None:  # d/dγ = ce·q^γ·log q (0 where q = 0)
    out = out + ce * qg * jnp.log(safe_q) * tg
  return focal_core(x, y, gamma, k), out
