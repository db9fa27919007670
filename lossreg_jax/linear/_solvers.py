"""Private solvers behind ``lossreg_jax.linear``: batched FISTA on Gram matrices, ridge solves.

Every elastic-net problem here is written in scikit-learn's coordinate-descent
scale (``sklearn/linear_model/_cd_fast.pyx``)::

    P(w) = 1/2 ||y - X w||^2 + l1 ||w||_1 + l2/2 ||w||^2,
    l1 = alpha * l1_ratio * n,  l2 = alpha * (1 - l1_ratio) * n,

which is ``n`` times the public objective. Problems come in a batch shaped
``(n_folds, n_problems)``: the data (Gram matrix ``G = X'X``, ``q = X'y``,
``y'y``) has a leading fold axis ``F`` and the penalties have shape ``(F, B)``.
The solver is accelerated proximal gradient (FISTA) with gradient-based
adaptive restarts; it keeps ``G x`` for the current and previous iterate so that
the gradient at the extrapolated point is a linear combination of the two and
each iteration costs ONE batched matrix product, ``(F, B, p) @ (F, p, p)``,
while the exact duality gap of scikit-learn is available at every iterate for
free. Once the gap meets ``tol`` the batch goes to ``_polish``, which solves
the optimality conditions on each problem's support by conjugate gradients (the
same one product per iteration) and verifies them; problems it cannot verify
go back to FISTA for a 100x smaller gap and are polished again. The (folds x
problems) axes are explicit so that they can be sharded.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

from lossreg_jax.linear import _polish
from lossreg_jax.linear._gap import gap_from_sums, gap_sums

# (F, B, p) -> (F, B, p): applies each fold's Gram matrix to a batch of vectors.
MatVec = Callable[[jax.Array], jax.Array]

_POWER_ITERATIONS = 64
# Power iteration approaches the largest eigenvalue from below; the margin keeps
# the FISTA step below 1/L so that the iteration cannot diverge.
_LIPSCHITZ_MARGIN = 1.05
# Conjugate gradients on p unknowns end in p steps in exact arithmetic; the
# polish allows a few more per active set for rounding.
_CG_EXTRA = 10
# Second FISTA stage (problems the polish could not verify): a gap target of
# tol * _STAGE2_TOL, but not below _STAGE2_EPS * eps * y'y (the Gram gap's floor).
_STAGE2_TOL = 1e-2
_STAGE2_EPS = 64.0


def full_precision(fn):
  """Traces ``fn`` with full-precision float32 matmuls.

  GPUs and TPUs otherwise multiply float32 in TF32 / bfloat16 passes, whose
  ~1e-3 relative error would swamp the duality gap the solver stops on.
  """

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with jax.default_matmul_precision("highest"):
      return fn(*args, **kwargs)

  return wrapped


class SolverResult(NamedTuple):
  coef: jax.Array  # (F, B, p)
  gap: jax.Array  # (F, B), in the cd scale (n times the public objective)
  n_iter: jax.Array  # (F, B) int32


def gram_matvec(gram: jax.Array) -> MatVec:
  """Returns ``W -> G W`` for ``gram`` shaped ``(F, p, p)``."""
  return lambda w: jnp.einsum("fbp,fqp->fbq", w, gram)


def design_matvec(x: jax.Array) -> MatVec:
  """Returns ``W -> X'X W`` without forming the Gram (``x`` shaped ``(F, n, p)``)."""
  return lambda w: jnp.einsum("fnq,fbn->fbq", x, jnp.einsum("fnp,fbp->fbn", x, w))


def largest_eigenvalue(matvec: MatVec, n_folds: int, n_features: int, dtype) -> jax.Array:
  """Each fold's largest Gram eigenvalue, shape ``(F,)``.

  A power-iteration estimate (from below) times a 5% margin.
  """
  # A fixed, irregular start (almost surely not orthogonal to the top
  # eigenvector); cheaper to compile than a jax.random draw.
  v = 1.0 + 0.5 * jnp.sin(2.3 * jnp.arange(n_features, dtype=dtype) + 0.7)
  v = jnp.broadcast_to(v, (n_folds, 1, n_features))

  def body(_, v):
    u = matvec(v)
    return u / jnp.maximum(jnp.linalg.norm(u, axis=-1, keepdims=True), jnp.finfo(dtype).tiny)

  v = lax.fori_loop(0, _POWER_ITERATIONS, body, v)
  v = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), jnp.finfo(dtype).tiny)
  rayleigh = jnp.sum(v * matvec(v), axis=-1)[:, 0]
  return _LIPSCHITZ_MARGIN * rayleigh


def fista(
    matvec: MatVec,
    q: jax.Array,
    y_norm2: jax.Array,
    l1: jax.Array,
    l2: jax.Array,
    *,
    lipschitz: jax.Array,
    tol: jax.Array,
    max_iter: int,
    polish: bool = True,
    positive: bool = False,
) -> SolverResult:
  """Solves the batch of elastic nets until every duality gap is below ``tol * y'y``.

  Args:
    matvec: ``W -> G W`` on ``(F, B, p)``.
    q: ``(F, p)``. y_norm2: ``(F,)``. l1, l2: ``(F, B)``.
    lipschitz: ``(F,)`` upper bound on the largest eigenvalue of each ``G``.
    tol: scalar relative tolerance, as scikit-learn's ``tol``.
    max_iter: most FISTA iterations (each is one product with ``G``).

    polish: run the verified active-set polish (``_polish.polish``) after
      the FISTA loop; False returns the FISTA iterates (for measurements).
    positive: constrain every coefficient to ``w >= 0`` (scikit-learn's
      ``positive=True``): the prox is ``max(0, soft-threshold)``, the polish
      keeps a positive support and the gap is the constrained one (static).

  Returns:
    ``SolverResult``. In the FISTA phase a problem whose gap meets the
    tolerance is frozen at that iterate; the polish then replaces it by the
    solution of the optimality conditions on its support when those are
    verified or give a smaller gap; unverified problems get a second FISTA
    stage (gap target ``tol * _STAGE2_TOL``) and polish, and keep the verified
    or smaller-gap result. ``gap`` is the returned iterate's and ``n_iter``
    counts the products with ``G`` of all phases.
  """
  dtype = q.dtype
  n_folds, n_problems = l1.shape
  n_features = q.shape[-1]
  step = 1.0 / jnp.maximum(lipschitz, jnp.finfo(dtype).tiny)
  step = step[:, None, None]  # (F, 1, 1)
  tol_abs = (tol * y_norm2)[:, None]
  w0 = jnp.zeros((n_folds, n_problems, n_features), dtype)
  none = jnp.zeros((n_folds, n_problems), bool)
  x, gx, n_iter, gap = _fista_loop(matvec, q, y_norm2, l1, l2, step=step, tol_abs=tol_abs,
                                   max_iter=max_iter, x=w0, gx=w0, done=none, positive=positive)
  if not polish:
    return SolverResult(x, gap, n_iter)
  run_polish = functools.partial(_polish.polish, matvec, q, y_norm2, l1, l2, step=step,
                                 max_cg=n_features + _CG_EXTRA, rtol=tol * tol,
                                 positive=positive)
  first = run_polish(w=x, gw=gx, gap=gap, done=none)
  # Second stage, for the problems the polish could not verify (a support that
  # FISTA had not settled, e.g. a coefficient that is 0 at the optimum): FISTA
  # goes on from its iterate to a 100x smaller gap (within its rounding floor),
  # then the polish runs again. Verified problems are frozen: a batch whose
  # problems are all verified skips both loops.
  done = first.verified
  tol2_abs = jnp.maximum(tol * _STAGE2_TOL, _STAGE2_EPS * jnp.finfo(dtype).eps) * y_norm2[:, None]
  x2, gx2, n_iter2, gap2 = _fista_loop(matvec, q, y_norm2, l1, l2, step=step,
                                       tol_abs=tol2_abs, max_iter=max_iter, x=x, gx=gx,
                                       done=done, positive=positive)
  second = run_polish(w=x2, gw=gx2, gap=gap2, done=done)
  # Verified results first; otherwise the smaller duality gap of the two stages.
  use_second = ~done & (second.verified | (second.gap < first.gap))
  coef = jnp.where(use_second[..., None], second.coef, first.coef)
  gap = jnp.where(use_second, second.gap, first.gap)
  return SolverResult(coef, gap, n_iter + first.n_products + n_iter2 + second.n_products)


def _fista_loop(matvec, q, y_norm2, l1, l2, *, step, tol_abs, max_iter, x, gx, done,
                positive=False):
  """FISTA from ``x`` (``gx = G x``) until every gap is below ``tol_abs``.

  Problems already ``done`` stay frozen (their gap is reported as 0 here, the
  caller keeps its own). Returns ``(x, G x, n_iter, gap)``.
  """
  dtype = q.dtype
  thresh = step * l1[..., None]
  shrink = 1.0 / (1.0 + step * l2[..., None])
  qb = q[:, None, :]
  ones = jnp.ones(l1.shape, dtype)
  zeros_i = jnp.zeros(l1.shape, jnp.int32)
  # state: k, x, Gx, x_prev, Gx_prev, t, done, n_iter, gap. The gap of the start
  # is not tested before the loop: when it is optimal the first step returns it.
  init = (0, x, gx, x, gx, ones, done, zeros_i, jnp.where(done, 0.0, jnp.full_like(ones, jnp.inf)))

  def cond(state):
    k, done = state[0], state[6]
    return (k < max_iter) & ~jnp.all(done)

  def body(state):
    k, x, gx, x_prev, gx_prev, t, done, n_iter, gap = state
    t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
    beta = ((t - 1.0) / t_next)[..., None]
    # G is linear, so G y is a combination of G x and G x_prev: one product per step.
    y = x + beta * (x - x_prev)
    gy = gx + beta * (gx - gx_prev)
    z = y - step * (gy - qb)
    # Proximal step of l1|w| + l2/2 w^2: soft-threshold, then shrink.
    # Under w >= 0 the prox is max(0, z - thresh), then the shrink.
    if positive:
      x_new = jnp.maximum(z - thresh, 0.0) * shrink
    else:
      x_new = jnp.sign(z) * jnp.maximum(jnp.abs(z) - thresh, 0.0) * shrink
    gx_new = matvec(x_new)
    sums, dual_norm = gap_sums(x_new, gx_new, q, l2, (y - x_new) * (x_new - x),
                               positive=positive)
    gap_new = gap_from_sums(sums[:5], dual_norm, y_norm2, l1, l2)
    # O'Donoghue & Candes gradient restart: drop the momentum when it points uphill.
    restart = sums[5] > 0
    t_next = jnp.where(restart, 1.0, t_next)
    keep = done[..., None]
    # After a restart t = 1, so the next extrapolation weight is 0.
    x_prev = jnp.where(keep, x_prev, x)
    gx_prev = jnp.where(keep, gx_prev, gx)
    x = jnp.where(keep, x, x_new)
    gx = jnp.where(keep, gx, gx_new)
    gap = jnp.where(done, gap, gap_new)
    n_iter = jnp.where(done, n_iter, n_iter + 1)
    done = done | (gap_new <= tol_abs)
    return k + 1, x, gx, x_prev, gx_prev, t_next, done, n_iter, gap

  state = lax.while_loop(cond, body, init)
  return state[1], state[2], state[7], state[8]


class CenteredData(NamedTuple):
  """Data centered (weighted means) and scaled by ``sqrt(sample_weight)``."""

  x: jax.Array  # (n, p)
  y: jax.Array  # (n,)
  x_mean: jax.Array  # (p,), zeros without an intercept
  y_mean: jax.Array  # (), zero without an intercept


def center(x, y, sample_weight, *, fit_intercept: bool) -> CenteredData:
  """scikit-learn's ``_preprocess_data(..., rescale_with_sw=True)`` for dense data."""
  if fit_intercept:
    if sample_weight is None:
      x_mean, y_mean = jnp.mean(x, axis=0), jnp.mean(y)
    else:
      total = jnp.sum(sample_weight)
      x_mean = sample_weight @ x / total
      y_mean = sample_weight @ y / total
    x, y = x - x_mean[None, :], y - y_mean
  else:
    x_mean = jnp.zeros(x.shape[1], x.dtype)
    y_mean = jnp.zeros((), x.dtype)
  if sample_weight is not None:
    root = jnp.sqrt(sample_weight)
    x, y = x * root[:, None], y * root
  return CenteredData(x, y, x_mean, y_mean)


def alpha_grid(xty: jax.Array, n_samples, l1_ratio: jax.Array, *, eps, n_alphas: int,
               positive: bool = False):
  """scikit-learn's ``_alpha_grid``: ``geomspace(alpha_max, eps * alpha_max)``.

  ``xty`` is ``X'y`` of the centered (weighted) data, ``n_samples`` the sum of
  the weights, ``l1_ratio`` has shape ``(R,)``; the result has shape ``(R,
  n_alphas)``, descending. With ``positive`` ``alpha_max`` uses ``max(0,
  max(X'y))`` instead of ``max|X'y|``, as scikit-learn.
  """
  top = jnp.maximum(jnp.max(xty), 0.0) if positive else jnp.max(jnp.abs(xty))
  alpha_max = top / (n_samples * l1_ratio)
  resolution = jnp.finfo(jnp.float64).resolution  # as scikit-learn, in any dtype
  ratios = jnp.asarray(eps, xty.dtype) ** jnp.linspace(0.0, 1.0, n_alphas, dtype=xty.dtype)
  grid = alpha_max[:, None] * ratios[None, :]
  return jnp.where(alpha_max[:, None] <= resolution, jnp.asarray(resolution, xty.dtype), grid)


def solve_centered(data, l1_ratio, alphas, tol, max_iter, gram=None, positive=False):
  """Solves the elastic nets ``alphas`` (shape ``(B,)``) on centered data."""
  n, p = data.x.shape
  if gram is not None:
    matvec = gram_matvec(gram[None])
  elif n >= p:  # Gram route: each iteration costs p^2 per problem
    matvec = gram_matvec((data.x.T @ data.x)[None])
  else:  # two products with X: 2 n p per problem
    matvec = design_matvec(data.x[None])
  q = (data.x.T @ data.y)[None]
  y_norm2 = jnp.sum(data.y * data.y)[None]
  lipschitz = largest_eigenvalue(matvec, 1, p, data.x.dtype)
  l1 = (alphas * l1_ratio * n)[None]
  l2 = (alphas * (1.0 - l1_ratio) * n)[None]
  out = fista(matvec, q, y_norm2, l1, l2, lipschitz=lipschitz, tol=tol, max_iter=max_iter,
              positive=positive)
  return out.coef[0], out.gap[0] / n, out.n_iter[0]



def sharded_fista(
    mesh: Mesh,
    gram: jax.Array,
    q: jax.Array,
    y_norm2: jax.Array,
    l1: jax.Array,
    l2: jax.Array,
    *,
    lipschitz: jax.Array,
    tol: jax.Array,
    max_iter: int,
    positive: bool = False,
) -> SolverResult:
  """``fista`` on Gram matrices with the problem axis ``B`` split over a 1-axis mesh.

  The data (``gram`` ``(F, p, p)``, ``q``, ``y_norm2``, ``lipschitz``) is
  replicated; the penalties ``(F, B)`` are padded to ``B_pad``, a multiple of
  the device count, with copies of problem 0 (a real problem, so the padding
  never runs longer than the batch) and split along ``B``. Each device runs
  its own ``fista`` loop under ``shard_map`` (no collective per iteration,
  nothing gathered) and stops when ITS problems have converged. Problems are
  independent and frozen once converged, so each result equals the unsharded
  one up to the rounding of the (smaller) batched products.

  Returns:
    ``SolverResult`` with ``B_pad`` problems, still split along that axis:
    the first ``B`` are the problems given, the rest are padding to drop.
  """
  (axis,) = mesh.axis_names
  pad = -l1.shape[1] % mesh.devices.size
  if pad:  # dummy problems: copies of problem 0, dropped by the caller
    l1 = jnp.concatenate([l1, jnp.repeat(l1[:, :1], pad, axis=1)], axis=1)
    l2 = jnp.concatenate([l2, jnp.repeat(l2[:, :1], pad, axis=1)], axis=1)
  split = P(None, axis)

  def local(gram, q, y_norm2, l1, l2, lipschitz, tol):
    return fista(gram_matvec(gram), q, y_norm2, l1, l2, lipschitz=lipschitz, tol=tol,
                 max_iter=max_iter, positive=positive)

  # check_vma=False: the loop state starts as replicated zeros and becomes
  # per-device; the body has no collectives, so the check has nothing to guard.
  return jax.shard_map(
      local, mesh=mesh, in_specs=(P(), P(), P(), split, split, P(), P()),
      out_specs=SolverResult(P(None, axis, None), split, split), check_vma=False,
  )(gram, q, y_norm2, l1, l2, lipschitz, tol)


# ---------------------------------------------------------------- ridge


# A Cholesky factor whose pivots satisfy min(d)^2 <= this * dim * eps * max(d)^2
# proves cond(A) >= (max d / min d)^2 beyond what the working precision resolves.
_SINGULAR_FACTOR = 100.0


def cholesky_solve(a, b):
  """``solve(a, b, assume_a="pos")`` guarded against a singular ``a``.

  Returns ``(solve, singular)``: ``solve()`` is the computation of
  ``jax.scipy.linalg.solve(a, b, assume_a="pos")`` (one Cholesky factorization,
  reused for the gradient); ``singular`` is True when the factorization failed
  (NaN) or its pivots show that ``a`` is singular to working precision.
  """
  factor, lower = jax.scipy.linalg.cho_factor(lax.stop_gradient(a))
  # For A = U'U, lambda_min <= min U_ii^2 and lambda_max >= max U_ii^2.
  pivots = jnp.abs(jnp.diagonal(factor)) ** 2
  tiny = _SINGULAR_FACTOR * a.shape[0] * jnp.finfo(a.dtype).eps * jnp.max(pivots)
  singular = ~jnp.all(jnp.isfinite(factor)) | (jnp.min(pivots) <= tiny)
  # A singular factor is swapped for the identity: the solve's transpose then
  # stays finite when lax.cond (a select under vmap) discards this branch.
  factor = jnp.where(singular, jnp.eye(a.shape[0], dtype=a.dtype), factor)

  def solve():
    return lax.custom_linear_solve(
        lambda v: a @ v, b, solve=lambda _, v: jax.scipy.linalg.cho_solve((factor, lower), v),
        symmetric=True)

  return solve, singular


def after(x, done):
  """``x``, made to depend on ``done``: XLA computes what uses it after ``done``.

  Under ``vmap`` ``lax.cond`` runs both branches, and two batched LAPACK calls
  running at once (Cholesky and SVD) can deadlock XLA's CPU thread pool: each
  holds a pool thread while it waits for pool threads to run its batch (seen on
  2 cores with jaxlib 0.10.2, within a few hundred calls). ``optimization_barrier``
  does not order them on the CPU (XLA drops it), so the order is a data
  dependency: ``x + 0 * s`` with ``s`` a finite scalar of ``done`` (XLA does not
  fold ``0 * s`` for floats, and a non-finite ``done`` is replaced by 0).
  """
  s = jnp.sum(done)
  s = lax.stop_gradient(jnp.where(jnp.isfinite(s), s, 0.0))
  return x + (0 * s).astype(x.dtype)


def min_norm_ridge(x, y, alpha):
  """Minimum-norm ridge solution by a pseudo-inverse (any rank, any ``alpha >= 0``).

  Ridge is least squares on ``[X; sqrt(alpha) I] w ~ [y; 0]`` (``n >= p``), or
  the minimum-norm solution of ``[X, sqrt(alpha) I] [w; z] = y`` (``n < p``);
  for ``alpha = 0`` both are ``pinv(X) @ y``, the minimum-norm least-squares
  solution (``np.linalg.lstsq``, ``LinearRegression``). ``pinv`` has a
  constant-rank derivative, so gradients in ``X`` and ``y`` stay finite.
  """
  n, p = x.shape
  positive = alpha > 0
  # Double where: sqrt has an infinite slope at 0; give alpha = 0 a zero gradient.
  root = jnp.where(positive, jnp.sqrt(jnp.where(positive, alpha, 1.0)), 0.0)
  if n >= p:
    design = jnp.concatenate([x, root * jnp.eye(p, dtype=x.dtype)], axis=0)
    return jnp.linalg.pinv(design) @ jnp.concatenate([y, jnp.zeros(p, x.dtype)])
  design = jnp.concatenate([x, root * jnp.eye(n, dtype=x.dtype)], axis=1)
  return (jnp.linalg.pinv(design) @ y)[:p]
