"""Argument checks shared by ``models`` and ``cv`` (private).

Concrete inputs are checked eagerly; traced ones (under ``jit``) skip the value
checks, as everywhere in lossreg_jax (see ``lossreg_jax._validation``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossreg_jax._validation import (check_in_range, check_int, check_number, check_rank,
                                     concrete_values, is_static_number,
                                     warn_float64_as_float32)

# Set once the float64-in-float32 warning has been shown (once per process).
_warned_float32 = False

# The solvers form Gram statistics (X'X, X'y, y'y and their products with the
# coefficients, whose largest eigenvalue is at most n * p * max|x|^2); data is
# refused when that bound times this margin overflows the working dtype.
_OVERFLOW_MARGIN = 64.0


def check_finite(name: str, x: jax.Array, values: np.ndarray | None = None) -> None:
  # Only concrete arrays can be inspected; under jit NaN propagates to the result.
  if values is None:
    values = concrete_values(x)
  if values is not None and not np.all(np.isfinite(values)):
    hint = ""
    if x.dtype != np.float64:  # e.g. float64 input rounded to float32 (x64 off)
      hint = (f" (in {np.dtype(x.dtype).name} entries beyond {np.finfo(x.dtype).max:.3g} are "
              f"infinite: rescale {name} or enable jax_enable_x64)")
    raise ValueError(
        f"{name} contains NaN or infinity (shape {x.shape}){hint}; remove or impute them.")


def warn_if_float64_computed_in_float32(caller: str, *arrays) -> None:
  """Warns once per process when float64 data will be computed in float32 (x64 off).

  The check and message are ``_validation.warn_float64_as_float32``'s (shared
  with the metrics); the once-per-process flag is the linear models' own.
  """
  global _warned_float32
  if not _warned_float32 and warn_float64_as_float32(
      f"lossreg_jax.linear.{caller}", *arrays, stacklevel=5):
    _warned_float32 = True


def _check_scale(X, xs, ys, sw, *, rescale_weights: bool, gram: bool) -> None:
  """Refuses concrete data whose statistics overflow the working dtype.

  Finite but huge entries (e.g. ``finfo.max * U(0, 1)``, or ``1e20`` in
  float32) would turn ``X'X`` or ``y'y`` into infinity and the fit into NaN or
  zeros without a word; scikit-learn raises for them too. With ``gram`` the
  bound is on sums of squares (the Gram solvers); without, on plain sums
  (ridge's direct solve, whose SVD fallback handles an overflowing Gram).
  ``xs, ys, sw``: the concrete values of ``X``, ``y`` and the weights (or
  ``False`` for weights that are traced).
  """
  if xs is None or ys is None or sw is False:
    return
  n, p = X.shape
  big = float(np.finfo(X.dtype).max) / _OVERFLOW_MARGIN
  w = 1.0
  if sw is not None:  # rows are scaled by sqrt(weight), weights rescaled to sum n or not
    w = float(np.max(sw)) * (n / float(np.sum(sw)) if rescale_weights else 1.0)
  with np.errstate(over="ignore", invalid="ignore"):
    for name, values, count in (("X", xs, n * p), ("y", ys, n)):
      top = float(np.max(np.abs(values))) if values.size else 0.0
      # count * w * top^2 > big (or count * sqrt(w) * top > big), without overflow
      limit = (np.sqrt(big / count) / np.sqrt(w)) if gram else big / count / np.sqrt(w)
      if top > 0 and top > limit:
        what = f"sums of {count} squares" if gram else f"sums of {count} entries"
        raise ValueError(
            f"{name} has entries of magnitude up to {top:.3g}: its statistics ({what}, "
            f"times the weights) overflow {np.dtype(X.dtype).name} "
            f"(largest {np.finfo(X.dtype).max:.3g}); rescale {name} (e.g. divide it by "
            f"{top:.3g})" + ("" if X.dtype == np.float64 else
                             " or enable float64 with jax.config.update('jax_enable_x64', True)")
            + ".")


def check_data(X, y, sample_weight=None, *, caller="lossreg_jax.linear",
               multi_output=False, rescale_weights=True, gram=True):
  """Returns ``X, y, sample_weight`` as floating arrays of one dtype, checked.

  ``multi_output``: ``y`` may be ``(n_samples, n_targets)``.
  ``rescale_weights``: the solver rescales the weights to sum to ``n_samples``
  (ElasticNet), else they are used as given (Ridge); ``gram``: the solver
  forms Gram statistics. Both for the overflow check.
  """
  warn_if_float64_computed_in_float32(caller, X, y, sample_weight)
  X, y = jnp.asarray(X), jnp.asarray(y)
  check_rank("X", X, 2)
  check_rank("y", y, (1, 2) if multi_output else 1)
  if X.shape[0] != y.shape[0]:
    raise ValueError(
        f"X and y must have the same number of samples, got X.shape={X.shape} "
        f"and y.shape={y.shape}."
    )
  if X.shape[0] == 0 or X.shape[1] == 0:
    raise ValueError(f"X must have at least one sample and one feature, got X.shape={X.shape}.")
  if y.ndim == 2 and y.shape[1] == 0:
    raise ValueError(f"y must have at least one target, got y.shape={y.shape}.")
  for name, a in (("X", X), ("y", y)):
    if not (jnp.issubdtype(a.dtype, jnp.number) or a.dtype == bool):
      raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}.")
  # Integers become the default float; half precision is computed in float32.
  dtype = jnp.promote_types(jnp.result_type(X.dtype, y.dtype, float), jnp.float32)
  X, y = X.astype(dtype), y.astype(dtype)
  # Host copies of concrete data, read once for every value check.
  xs, ys, sw = concrete_values(X), concrete_values(y), None
  check_finite("X", X, xs)
  check_finite("y", y, ys)
  if sample_weight is not None:
    sample_weight = jnp.asarray(sample_weight, dtype)
    if sample_weight.shape != y.shape[:1]:
      raise ValueError(
          f"sample_weight must have shape (n_samples,) = {y.shape[:1]}, got "
          f"sample_weight.shape={sample_weight.shape}."
      )
    sw = concrete_values(sample_weight)
    if sw is None:
      sw = False  # traced: no value checks
    else:
      if not np.all(np.isfinite(sw)) or np.any(sw < 0):
        bad = sw[~(np.isfinite(sw) & (sw >= 0))].flat[0]
        raise ValueError(
            f"sample_weight must be finite and >= 0, got an entry {float(bad)!r} (shape {sw.shape}).")
      if not np.sum(sw) > 0:
        raise ValueError(
            f"sample_weight must have a positive sum, got all {sw.shape[0]} weights 0.")
  _check_scale(X, xs, ys, sw, rescale_weights=rescale_weights, gram=gram)
  return X, y, sample_weight


def check_options(*, alpha=None, l1_ratio=None, tol=None, max_iter=None) -> None:
  # check_in_range type-checks first (check_number): '1' and True are refused.
  check_in_range("alpha", alpha, 0.0)
  check_in_range("l1_ratio", l1_ratio, 0.0, 1.0)
  check_in_range("tol", tol, 0.0)
  if max_iter is not None:
    check_int("max_iter", max_iter, 1)


def check_grid(l1_ratios, alphas, n_alphas, eps):
  if alphas is None:
    check_int("n_alphas", n_alphas, 1)
    check_in_range("eps", eps, 0.0, low_inclusive=False)
    if any(is_static_number(r) and float(r) == 0.0 for r in l1_ratios):
      raise ValueError(
          "l1_ratio=0 cannot generate an alpha grid (alpha_max is infinite), as in "
          "scikit-learn; pass alphas= explicitly."
      )
    return None
  check_number("alphas", alphas)
  alphas = jnp.asarray(alphas)
  check_rank("alphas", alphas, 1)
  if alphas.shape[0] == 0:
    raise ValueError("alphas must hold at least one value, got an empty array.")
  if (a := concrete_values(alphas)) is not None and np.any(a < 0):
    raise ValueError(f"alphas must be >= 0, got min {float(np.min(np.asarray(alphas)))!r}.")
  return alphas
