"""Exact final phase of the elastic-net solver: a verified active-set Newton polish.

FISTA stops once scikit-learn's duality gap is below ``tol * y'y``; at that
point its iterate is still ``O(sqrt(gap))`` from the optimum, and the gap,
formed from Gram sums, cannot certify anything below its rounding floor (see
``_gap``). The optimum itself is the solution of a linear system once its
support and signs are known::

    (G_AA + l2 I) w_A = q_A - l1 s_A,      w_j = 0 off A,

so the polish runs the primal-dual active-set method (the semismooth Newton
method on the proximal-gradient fixed point, Hintermueller, Ito & Kunisch
2003): from ``z = w - tau * grad`` (``tau = 1/L`` as in FISTA) take ``A =
{|z_j| > tau l1}`` and ``s = sign(z_A)``, solve the system above by conjugate
gradients (one batched product with ``G`` per iteration, as FISTA, so the
polish also runs on ``X`` without a Gram matrix and inside ``shard_map``), and
repeat until ``(A, s)`` no longer changes. A fixed point is exactly the
optimality (KKT) condition: every active coefficient has its sign and
``|grad_j| <= l1`` off the support, so the result is VERIFIED optimal to the
rounding of the solve, not merely within a gap. Problems are batched and frozen
once verified; a problem that is not verified within the round limit keeps the
better (smaller gap) of its FISTA and polished iterates, so the polish never
makes a result worse.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lossreg_jax.linear._gap import duality_gap

# Most active-set changes before a problem gives up (keeping its better iterate).
MAX_ROUNDS = 6
# Conjugate gradients stop at a residual ||r|| <= _CG_RTOL * eps * ||b||.
_CG_RTOL = 8.0


class PolishResult(NamedTuple):
  coef: jax.Array  # (F, B, p)
  gap: jax.Array  # (F, B)
  n_products: jax.Array  # (F, B) int32, products with G spent by the polish
  verified: jax.Array  # (F, B) bool, support and signs stable: KKT holds


def _active_set(w, gw, q, l1, l2, step):
  """``A = {|z| > step * l1}`` and ``sign(z)`` for the prox-gradient point ``z``."""
  z = w - step * (gw - q[:, None, :] + l2[..., None] * w)
  # For l1 = 0 (ridge, OLS) every coefficient is free: the system is the whole
  # normal equations.
  active = (jnp.abs(z) > step * l1[..., None]) | (l1[..., None] == 0)
  return active, jnp.where(active, jnp.sign(z), 0.0)


def polish(
    matvec: Callable[[jax.Array], jax.Array],
    q: jax.Array,
    y_norm2: jax.Array,
    l1: jax.Array,
    l2: jax.Array,
    *,
    step: jax.Array,
    w: jax.Array,
    gw: jax.Array,
    gap: jax.Array,
    max_cg: int,
    rtol: jax.Array,
) -> PolishResult:
  """Polishes the batch of FISTA iterates ``w`` (with ``gw = G w`` and ``gap``).

  Args:
    matvec: ``W -> G W`` on ``(F, B, p)``.
    q: ``(F, p)``. y_norm2: ``(F,)``. l1, l2: ``(F, B)``, cd scale.
    step: ``(F, 1, 1)``, FISTA's step ``1/L``.
    w, gw: ``(F, B, p)``, the iterate and its product with ``G``.
    gap: ``(F, B)``, the iterate's duality gap.
    max_cg: most conjugate-gradient iterations per active set.

  Returns:
    ``PolishResult``; a problem's coefficients are the polished ones when they
    are verified or have a smaller gap, else ``w`` unchanged.
  """
  dtype = w.dtype
  eps = jnp.finfo(dtype).eps
  l1b, l2b = l1[..., None], l2[..., None]
  qb = q[:, None, :]
  active, sign = _active_set(w, gw, q, l1, l2, step)
  shape = l1.shape
  # state: k, w, gw, active, sign, r, d, rs, thr, reset, done, verified,
  # rounds, cg_it, n_products. A (re)started round first recomputes G w.
  init = (0, jnp.where(active, w, 0.0), gw, active, sign, jnp.zeros_like(w),
          jnp.zeros_like(w), jnp.zeros(shape, dtype), jnp.zeros(shape, dtype),
          jnp.ones(shape, bool), jnp.zeros(shape, bool), jnp.zeros(shape, bool),
          jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32),
          jnp.zeros(shape, jnp.int32))
  max_total = MAX_ROUNDS * (max_cg + 1)

  def cond(state):
    return (state[0] < max_total) & ~jnp.all(state[10])

  def body(state):
    (k, w, gw, active, sign, r, d, rs, thr, reset, done, verified, rounds, cg_it,
     n_products) = state
    keep = done[..., None]
    # One product per iteration: G w on a (re)start, else G d for the CG step.
    u = matvec(jnp.where(reset[..., None], w, d))
    # Restart: the residual of (G_AA + l2 I) w_A = q_A - l1 s_A from scratch.
    b = jnp.where(active, qb - l1b * sign, 0.0)
    r0 = jnp.where(active, b - u - l2b * w, 0.0)
    rs0 = jnp.sum(r0 * r0, axis=-1)
    thr0 = jnp.maximum(_CG_RTOL * eps, rtol) ** 2 * jnp.sum(b * b, axis=-1)
    # CG step along d (zero off A) with M d = (G d + l2 d) on A.
    md = jnp.where(active, u + l2b * d, 0.0)
    dmd = jnp.sum(d * md, axis=-1)
    ok = dmd > 0
    a = jnp.where(ok, rs / jnp.where(ok, dmd, 1.0), 0.0)[..., None]
    w_cg = w + a * d
    gw_cg = gw + a * u
    r_cg = r - a * md
    rs_cg = jnp.sum(r_cg * r_cg, axis=-1)
    beta = jnp.where(rs > 0, rs_cg / jnp.where(rs > 0, rs, 1.0), 0.0)[..., None]
    d_cg = r_cg + beta * d
    rst = reset[..., None]
    gw_n = jnp.where(rst, u, gw_cg)
    w_n = jnp.where(rst, w, w_cg)
    r_n = jnp.where(rst, r0, r_cg)
    d_n = jnp.where(rst, r0, d_cg)
    rs_n = jnp.where(reset, rs0, rs_cg)
    thr_n = jnp.where(reset, thr0, thr)
    cg_n = jnp.where(reset, 0, cg_it + 1)
    # End of a round: the system is solved (or CG gave up). A stable active set
    # and sign pattern is the KKT condition; otherwise restart on the new one.
    solved = (rs_n <= thr_n) | ((~reset) & ~ok)
    round_end = solved | (cg_n >= max_cg)
    new_active, new_sign = _active_set(w_n, gw_n, q, l1, l2, step)
    stable = jnp.all((new_active == active) & (new_sign == sign), axis=-1)
    ver_n = round_end & stable & solved
    finish = round_end & (stable | (rounds + 1 >= MAX_ROUNDS))
    restart = round_end & ~finish
    active_n = jnp.where(restart[..., None], new_active, active)
    sign_n = jnp.where(restart[..., None], new_sign, sign)
    w_n = jnp.where(restart[..., None], jnp.where(new_active, w_n, 0.0), w_n)

    def frozen(old, new):
      return jnp.where(keep if old.ndim == 3 else done, old, new)

    return (k + 1, frozen(w, w_n), frozen(gw, gw_n), frozen(active, active_n),
            frozen(sign, sign_n), frozen(r, r_n), frozen(d, d_n), frozen(rs, rs_n),
            frozen(thr, thr_n), frozen(reset, restart), done | finish,
            frozen(verified, ver_n), frozen(rounds, rounds + restart.astype(jnp.int32)),
            frozen(cg_it, cg_n), frozen(n_products, n_products + 1))

  state = lax.while_loop(cond, body, init)
  w_p, verified, n_products = state[1], state[11], state[14]
  # The CG recurrence lets G w drift by rounding: one more product for the gap.
  gap_p = duality_gap(w_p, matvec(w_p), q, y_norm2, l1, l2)
  take = verified | (gap_p < gap)
  coef = jnp.where(take[..., None], w_p, w)
  return PolishResult(coef, jnp.where(take, gap_p, gap), n_products, verified)
