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
makes a result worse (``_solvers.fista`` then gives it a second FISTA stage).
PDAS is not globally convergent: from a support FISTA has not settled (a
coefficient that is 0 at the optimum but not yet in the iterate) it can cycle;
on diabetes' lasso path at ``tol=1e-4`` that happened at 1 alpha of 100, which
the second stage fixed. Only the TRUE residual (a fresh product with ``G``)
decides that a system is solved: the CG recurrence drifts from it, in float32
by far on an ill-conditioned ``G``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lossreg_jax.linear._gap import duality_gap

# Most active-set changes before a problem gives up (keeping its better iterate).
MAX_ROUNDS = 6
# Conjugate gradients stop at a TRUE residual ||r||^2 <= f^2 (||b||^2 + ||M w||^2),
# f = max(_CG_RTOL * eps, rtol): a backward error that rounding can reach.
_CG_RTOL = 8.0


class PolishResult(NamedTuple):
  coef: jax.Array  # (F, B, p)
  gap: jax.Array  # (F, B)
  n_products: jax.Array  # (F, B) int32, products with G spent by the polish
  verified: jax.Array  # (F, B) bool, support and signs stable: KKT holds


def _active_set(w, gw, q, l1, l2, step, positive=False):
  """``A = {|z| > step * l1}`` and ``sign(z)`` for the prox-gradient point ``z``.

  Under the constraint ``w >= 0`` (``positive``) the prox keeps only ``z >
  step * l1``, with sign +1: a coefficient the solve drives negative leaves
  the support, so a stable support is the constrained KKT condition.
  """
  z = w - step * (gw - q[:, None, :] + l2[..., None] * w)
  if positive:
    active = z > step * l1[..., None]
    return active, active.astype(w.dtype)
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
    done: jax.Array,
    max_cg: int,
    rtol: jax.Array,
    positive: bool = False,
) -> PolishResult:
  """Polishes the batch of FISTA iterates ``w`` (with ``gw = G w`` and ``gap``).

  Args:
    matvec: ``W -> G W`` on ``(F, B, p)``.
    q: ``(F, p)``. y_norm2: ``(F,)``. l1, l2: ``(F, B)``, cd scale.
    step: ``(F, 1, 1)``, FISTA's step ``1/L``.
    w, gw: ``(F, B, p)``, the iterate and its product with ``G``.
    gap: ``(F, B)``, the iterate's duality gap.
    done: ``(F, B)`` bool, problems to leave alone (returned as given).
    max_cg: most conjugate-gradient iterations per active set.
    positive: solve under the constraint ``w >= 0`` (positive support only).

  Returns:
    ``PolishResult``; a problem's coefficients are the polished ones when they
    are verified or have a smaller gap, else ``w`` unchanged.
  """
  dtype = w.dtype
  eps = jnp.finfo(dtype).eps
  l1b, l2b = l1[..., None], l2[..., None]
  qb = q[:, None, :]
  active, sign = _active_set(w, gw, q, l1, l2, step, positive)
  shape = l1.shape
  f_zeros, b_false = jnp.zeros(shape, dtype), jnp.zeros(shape, bool)
  i_zeros, b_true = jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)
  # state: k, w, gw, active, sign, r, d, rs, thr, reset, fresh, done, verified,
  # rounds, cg_it, n_products. `reset`: this iteration multiplies w (not d) to
  # get the TRUE residual; `fresh`: that reset starts a new active set.
  init = (0, jnp.where(active, w, 0.0), gw, active, sign, jnp.zeros_like(w), jnp.zeros_like(w),
          f_zeros, f_zeros, b_true, b_true, done, b_false, i_zeros, i_zeros, i_zeros)
  max_total = MAX_ROUNDS * 2 * (max_cg + 1)
  factor = jnp.maximum(_CG_RTOL * eps, rtol) ** 2

  def cond(state):
    return (state[0] < max_total) & ~jnp.all(state[11])

  def body(state):
    (k, w, gw, active, sign, r, d, rs, thr, reset, fresh, done, verified, rounds, cg_it,
     n_products) = state
    # One product per iteration: G w on a reset, else G d for the CG step.
    u = matvec(jnp.where(reset[..., None], w, d))
    # Reset: the true residual of (G_AA + l2 I) w_A = q_A - l1 s_A. The CG
    # recurrence residual drifts from it (in float32 by far on ill-conditioned
    # G), so only the true one decides that a system is solved: to a backward
    # error of ``factor`` relative to ||b|| + ||M w||, the most that rounding
    # allows.
    b = jnp.where(active, qb - l1b * sign, 0.0)
    mw = jnp.where(active, u + l2b * w, 0.0)
    r0 = b - mw
    rs0 = jnp.sum(r0 * r0, axis=-1)
    thr0 = factor * (jnp.sum(b * b, axis=-1) + jnp.sum(mw * mw, axis=-1))
    cg_round = jnp.where(fresh, 0, cg_it)
    solved = rs0 <= thr0
    round_end = solved | (cg_round >= max_cg)
    # ... at the end of a round a stable support and sign pattern IS the KKT
    # condition (with the true G w); otherwise restart on the new pattern.
    new_active, new_sign = _active_set(w, u, q, l1, l2, step, positive)
    stable = jnp.all((new_active == active) & (new_sign == sign), axis=-1)
    finish = reset & round_end & (stable | (rounds + 1 >= MAX_ROUNDS))
    restart = reset & round_end & ~finish
    # CG step along d (zero off A) with M d = (G d + l2 d) on A.
    md = jnp.where(active, u + l2b * d, 0.0)
    dmd = jnp.sum(d * md, axis=-1)
    ok = dmd > 0
    a = jnp.where(ok, rs / jnp.where(ok, dmd, 1.0), 0.0)[..., None]
    r_cg = r - a * md
    rs_cg = jnp.sum(r_cg * r_cg, axis=-1)
    beta = jnp.where(rs > 0, rs_cg / jnp.where(rs > 0, rs, 1.0), 0.0)[..., None]
    # Recurrence converged (or CG cannot go on): check the true residual next.
    check = (rs_cg <= thr) | ~ok | (cg_it + 1 >= max_cg)

    rst, rsr = reset[..., None], restart[..., None]
    w_n = jnp.where(rst, jnp.where(rsr & ~new_active, 0.0, w), w + a * d)
    gw_n = jnp.where(rst, u, gw + a * u)
    r_n = jnp.where(rst, r0, r_cg)
    d_n = jnp.where(rst, r0, r_cg + beta * d)
    new = (w_n, gw_n, jnp.where(rsr, new_active, active), jnp.where(rsr, new_sign, sign),
           r_n, d_n, jnp.where(reset, rs0, rs_cg), jnp.where(reset, thr0, thr),
           jnp.where(reset, restart, check), restart, done | finish,
           verified | (finish & stable & solved), rounds + restart.astype(jnp.int32),
           jnp.where(reset, cg_round, cg_it + 1), n_products + 1)
    old = (w, gw, active, sign, r, d, rs, thr, reset, fresh, done, verified, rounds, cg_it,
           n_products)
    # Finished problems are frozen.
    return (k + 1,) + tuple(jnp.where(done[..., None] if o.ndim == 3 else done, o, n)
                            for o, n in zip(old, new))

  state = lax.while_loop(cond, body, init)
  w_p, verified, n_products = state[1], state[12], state[15]
  # The CG recurrence lets G w drift by rounding: one more product for the gap.
  gap_p = duality_gap(w_p, matvec(w_p), q, y_norm2, l1, l2, positive=positive)
  take = ~done & (verified | (gap_p < gap))
  coef = jnp.where(take[..., None], w_p, w)
  return PolishResult(coef, jnp.where(take, gap_p, gap), n_products, verified)
