r"""Is the difference real? The corrected resampled t-test of repeated k-fold CV.

Two specs trained on the same R × k folds give paired per-fold scores; their
differences ``d_j`` are not independent (the training sets overlap), so the
plain t-test's variance ``S²/J`` is too small. Nadeau & Bengio (2003) correct
it to ``(1/J + n_test/n_train)·S²``; for k-fold CV ``n_test/n_train = 1/(k − 1)``
(Bouckaert & Frank 2004 apply it to R × k-fold CV). The t quantile and tail
probability come from ``jax.scipy.special.betainc`` (JAX has no t CDF or PPF),
so everything here is jit-able and needs no scipy.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import check_in_range

__all__ = ["PairedTest", "corrected_resampled_ttest", "t_quantile", "t_two_sided_p"]


def t_two_sided_p(t: ArrayLike, df: ArrayLike) -> jax.Array:
  r"""Two-sided tail probability ``P(|T| ≥ |t|)`` of Student's t with ``df`` degrees.

  ``P(|T| ≥ |t|) = I_x(df/2, 1/2)`` with ``x = df / (df + t²)``, the regularized
  incomplete beta function (Abramowitz & Stegun 26.7.1), computed by
  ``jax.scipy.special.betainc``. Infinite ``t`` gives 0, ``t = 0`` gives 1.

  Args:
    t: t statistics, any shape.
    df: Degrees of freedom ``> 0``, broadcastable to ``t``.

  Returns:
    Float array of ``t``'s broadcast shape, in ``[0, 1]``.

  Examples:
    >>> round(float(t_two_sided_p(2.0, 10.0)), 5)  # scipy: 2 * t.sf(2, 10)
    0.07339
  """
  t, df = jnp.asarray(t, jnp.float32), jnp.asarray(df, jnp.float32)
  # df / (df + t²) overflows to 0 for huge t, where the tail is 0 too.
  x = df / (df + jnp.square(t))
  return jnp.clip(jax.scipy.special.betainc(df / 2, 0.5, x), 0.0, 1.0)


def t_quantile(q: ArrayLike, df: ArrayLike) -> jax.Array:
  r"""Quantile (inverse CDF) of Student's t, as ``scipy.stats.t.ppf(q, df)``.

  Bisection on ``log t`` over ``[1e-8, 1e8]`` (80 halvings, float32-exact)
  of the tail probability :func:`t_two_sided_p`; the t distribution is
  symmetric, so ``q < 0.5`` is the negative of ``1 − q``'s quantile. The
  bisection is a ``lax.fori_loop``: the function is jit- and vmap-able (not
  differentiable in ``q``).

  Args:
    q: Probabilities in ``(0, 1)``, any shape.
    df: Degrees of freedom ``> 0``, broadcastable to ``q``.

  Returns:
    Float array of the broadcast shape.

  Examples:
    >>> round(float(t_quantile(0.975, 4.0)), 4)  # scipy.stats.t.ppf(0.975, 4)
    2.7764
  """
  q, df = jnp.broadcast_arrays(jnp.asarray(q, jnp.float32), jnp.asarray(df, jnp.float32))
  tail = 2 * jnp.minimum(q, 1 - q)  # two-sided probability beyond |t|
  lo, hi = jnp.full_like(q, jnp.log(1e-8)), jnp.full_like(q, jnp.log(1e8))

  def halve(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) / 2
    beyond = t_two_sided_p(jnp.exp(mid), df) > tail  # mid is still below the quantile
    return jnp.where(beyond, mid, lo), jnp.where(beyond, hi, mid)

  lo, hi = jax.lax.fori_loop(0, 80, halve, (lo, hi))
  t = jnp.exp((lo + hi) / 2)
  return jnp.where(q == 0.5, 0.0, jnp.where(q > 0.5, t, -t))


class PairedTest(NamedTuple):
  """The corrected resampled t-test of paired per-fold differences.

  Attributes:
    mean_diff: Mean of the differences (spec minus baseline).
    ci_low: Lower end of the confidence interval of the mean difference.
    ci_high: Upper end.
    t: The corrected t statistic (``±inf`` when every difference is the same
      non-zero number, 0 when all are 0).
    p_value: Two-sided p-value of "no difference" (``J − 1`` degrees of freedom).
  """

  mean_diff: jax.Array
  ci_low: jax.Array
  ci_high: jax.Array
  t: jax.Array
  p_value: jax.Array


def corrected_resampled_ttest(
    differences: ArrayLike,
    *,
    test_train_ratio: float,
    confidence: float = 0.95,
) -> PairedTest:
  r"""Nadeau & Bengio's corrected resampled t-test of per-fold score differences.

  With ``J`` differences ``d_j`` (one per fold of R repeats of k-fold CV, the
  two specs trained on the same folds), mean ``d̄`` and sample variance ``S²``
  (``ddof=1``), the variance of ``d̄`` is estimated as
  ``(1/J + n_test/n_train)·S²`` instead of ``S²/J``; ``t = d̄ / sqrt(that)``
  has ``J − 1`` degrees of freedom and the interval is
  ``d̄ ± t_{J−1, (1+confidence)/2}·sqrt(that)``. Differences over the last axis.

  Args:
    differences: Per-fold differences, shape ``(..., J)`` with ``J ≥ 2``.
    test_train_ratio: ``n_test / n_train`` of one fold: ``1 / (k − 1)`` for k-fold CV.
    confidence: Coverage of the interval, in ``(0, 1)``.

  Returns:
    A :class:`PairedTest` of arrays shaped ``differences.shape[:-1]``.

  Raises:
    ValueError: if ``J < 2``, ``test_train_ratio < 0`` or ``confidence`` is
      outside ``(0, 1)``.

  Examples:
    >>> res = corrected_resampled_ttest(jnp.array([0.02, 0.01, 0.03, 0.0, 0.02, 0.01]),
    ...                                 test_train_ratio=1 / 2)
    >>> [round(float(v), 4) for v in res]
    [0.015, -0.007, 0.037, 1.7516, 0.1402]

  References:
    Nadeau, C. and Bengio, Y. (2003). Inference for the generalization error.
    Machine Learning 52, 239-281. Bouckaert, R. R. and Frank, E. (2004).
    Evaluating the replicability of significance tests for comparing learning
    algorithms. PAKDD 2004.
  """
  d = jnp.asarray(differences, jnp.float32)
  if d.ndim < 1 or d.shape[-1] < 2:
    raise ValueError(f"differences must have at least 2 values on its last axis, got shape "
                     f"{d.shape}.")
  check_in_range("test_train_ratio", test_train_ratio, low=0.0)
  check_in_range("confidence", confidence, low=0.0, high=1.0, low_inclusive=False,
                 high_inclusive=False)
  return PairedTest(*_ttest(d, jnp.float32(test_train_ratio), jnp.float32(confidence)))


@jax.jit
def _ttest(d, ratio, confidence):
  J = d.shape[-1]
  mean = jnp.mean(d, axis=-1)
  var = jnp.var(d, axis=-1, ddof=1)
  se = jnp.sqrt((1.0 / J + ratio) * var)
  # se = 0: all differences equal; t is ±inf (or 0 for all-zero differences)
  # and the interval shrinks to the point.
  t = jnp.where(se > 0, mean / jnp.where(se > 0, se, 1.0),
                jnp.where(mean == 0, 0.0, jnp.sign(mean) * jnp.inf))
  half = t_quantile((1 + confidence) / 2, J - 1) * se
  return mean, mean - half, mean + half, t, t_two_sided_p(t, J - 1)
