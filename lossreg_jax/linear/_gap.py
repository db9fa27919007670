"""scikit-learn's elastic-net duality gap on Gram statistics, batched.

Shared by the FISTA loop and the active-set polish in ``_solvers``. Everything
is in scikit-learn's coordinate-descent scale (``sklearn/linear_model/_cd_fast.pyx``,
``gap_enet_gram``): ``P(w) = 1/2 ||y - X w||^2 + l1 ||w||_1 + l2/2 ||w||^2``,
with ``G = X'X``, ``q = X'y`` and ``y'y`` per fold (leading axis ``F``) and the
penalties per problem (``(F, B)``).

The gap is formed from Gram sums (``||y - Xw||^2 = y'y + w'Gw - 2 q'w``), so it
has a rounding floor of about ``eps * y'y``: below that it cannot certify
anything, which is why the solver's final phase (``_polish``) verifies the
optimality conditions directly instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gap_from_sums(sums, dual_norm, y_norm2, l1, l2):
  """The gap from ``sums = (w'w, |w|_1, q'w, w'Gw, |X'R|^2)`` (each ``(F, B)``)."""
  w_l2, w_l1, q_w, w_gw, xtr_norm2 = sums
  y_norm2 = y_norm2[:, None]
  r_norm2 = y_norm2 + w_gw - 2.0 * q_w  # ||y - Xw||^2
  r_y = y_norm2 - q_w  # (y - Xw)'y
  # Formulation A: rescale the residual into the dual feasible set.
  feasible = dual_norm <= l1
  scale = jnp.where(feasible, 1.0, l1 / jnp.where(feasible, 1.0, dual_norm))
  penalty_sq = r_norm2 + l2 * w_l2
  gap_a = 0.5 * (1.0 + scale**2) * penalty_sq + l1 * w_l1 - scale * r_y
  # Formulation B (l1 = 0 < l2) and the OLS first-order condition.
  safe_l2 = jnp.where(l2 > 0, l2, 1.0)
  gap_b = r_norm2 + 0.5 * l2 * w_l2 - r_y + xtr_norm2 / (2.0 * safe_l2)
  return jnp.where(l1 > 0, gap_a, jnp.where(l2 > 0, gap_b, xtr_norm2))


def gap_sums(w, gw, q, l2, *extra, positive=False):
  """One fused reduction over features for the gap (and ``extra`` products).

  With ``positive`` (constraint ``w >= 0``) the dual norm is ``max(X'R - l2
  w)``, as scikit-learn's ``positive`` gap, and the ``|X'R|^2`` term of
  formulation B / the OLS condition is that of the projected gradient:
  ``(X'R)_j`` where ``w_j > 0``, ``max((X'R)_j, 0)`` where ``w_j = 0`` (the
  gap of the constrained problem: 0 exactly at its optimum; scikit-learn keeps
  the unconstrained term there, which is not 0 at a constrained optimum).
  """
  xtr = q[:, None, :] - gw  # X'R
  grad = jnp.where(w > 0, xtr, jnp.maximum(xtr, 0.0)) if positive else xtr
  terms = [w * w, jnp.abs(w), q[:, None, :] * w, w * gw, grad * grad, *extra]
  sums = jnp.sum(jnp.stack(terms), axis=-1)
  dual = xtr - l2[..., None] * w
  # |X'R - l2 w|_inf, or its largest entry under the constraint.
  dual_norm = jnp.max(dual if positive else jnp.abs(dual), axis=-1)
  return sums, dual_norm


def duality_gap(w, gw, q, y_norm2, l1, l2, *, positive=False) -> jax.Array:
  """scikit-learn's elastic-net duality gap (``gap_enet_gram``), batched.

  Args:
    w, gw: coefficients and ``G w``, shape ``(F, B, p)``.
    q: ``X'y``, shape ``(F, p)``. y_norm2: ``y'y``, shape ``(F,)``.
    l1, l2: penalties in the cd scale, shape ``(F, B)``.
    positive: the gap of the problem constrained to ``w >= 0`` (see
      ``gap_sums``).

  Returns:
    The gap, shape ``(F, B)``: formulation A for ``l1 > 0``, formulation B for
    ``l1 == 0 < l2`` (ridge) and ``||X'R||^2`` for ``l1 == l2 == 0`` (OLS), as
    scikit-learn.
  """
  sums, dual_norm = gap_sums(w, gw, q, l2, positive=positive)
  return gap_from_sums(sums, dual_norm, y_norm2, l1, l2)
