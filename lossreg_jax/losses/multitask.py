"""Combining the losses of several tasks into one objective.

Both functions take the per-task losses as a mapping from task name to a loss
(usually a scalar) and return ``(total, terms)``: the scalar objective to
differentiate and a dict of the per-task contributions to log. Dicts are pytrees,
so both work under ``jax.jit`` and ``jax.grad`` (the weights or log-variances can
be learned parameters).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import check_number, concrete_values, standard_result_type

__all__ = ["uncertainty_weighted", "weighted_sum"]


def _check_keys(name: str, mapping: Mapping[str, object], losses: Mapping[str, object]) -> None:
  """Raises ``ValueError`` unless ``mapping`` has exactly the keys of ``losses``."""
  if not isinstance(mapping, Mapping):
    raise TypeError(
        f"{name} must be a mapping from task name to value, got {type(mapping).__name__}."
    )
  missing = [k for k in losses if k not in mapping]
  extra = [k for k in mapping if k not in losses]
  if missing or extra:
    raise ValueError(
        f"{name} must have the same keys as losses ({sorted(losses)}); "
        f"missing keys: {missing}, extra keys: {extra}."
    )


def _check_losses(losses: Mapping[str, ArrayLike]) -> None:
  if not isinstance(losses, Mapping):
    raise TypeError(
        f"losses must be a mapping from task name to loss, got {type(losses).__name__}."
    )
  if not losses:
    raise ValueError("losses must contain at least one task, got an empty mapping.")


def _check_number(where: str, value: object) -> None:
  """Raises ``TypeError`` unless ``value`` is a number or a numeric array (maybe traced)."""
  check_number(where, value, expected="a number or a numeric array")


def _strong(x: jax.Array) -> jax.Array:
  # A Python-scalar loss gives a weakly typed array; return a plain one.
  return x.astype(x.dtype)


def _total(terms: dict[str, jax.Array]) -> jax.Array:
  values = list(terms.values())
  total = values[0]
  for value in values[1:]:
    total = total + value
  return total


def weighted_sum(
    losses: Mapping[str, ArrayLike],
    weights: Mapping[str, float | ArrayLike] | None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Fixed-weight multi-task objective ``total = Σ_k weights[k] · losses[k]``.

  The seed's detector objective ``w_cls * classification_loss + w_box *
  regression_loss`` is ``weighted_sum({"cls": ..., "box": ...}, {"cls": w_cls,
  "box": w_box})``.

  Args:
    losses: Mapping from task name to its loss (a scalar, or arrays of one
      common shape).
    weights: Mapping with exactly the keys of ``losses``, or ``None`` to weigh
      every task by 1. Values may be Python floats or (traced) arrays. It is a
      required positional argument (the public signature is
      ``weighted_sum(losses, weights)``), since the conventions make every
      defaulted option keyword-only.

  Returns:
    ``(total, terms)``: ``total`` is the sum of the weighted terms (the shape
    of the losses, usually a scalar) and ``terms`` a dict of
    ``weights[k] * losses[k]`` by task name.

  Raises:
    ValueError: if ``losses`` is empty, ``weights`` has missing or extra keys
      (the message names them) or a static weight is NaN.
    TypeError: if ``losses`` or ``weights`` is not a mapping, or one of their
      values is not a number (the message names its key).

  Examples:
    >>> import jax.numpy as jnp
    >>> total, terms = weighted_sum(
    ...     {"cls": jnp.array(0.5), "box": jnp.array(2.0)}, {"cls": 1.0, "box": 0.25})
    >>> total
    Array(1., dtype=float32)
    >>> terms["box"]
    Array(0.5, dtype=float32)
  """
  _check_losses(losses)
  for name, value in losses.items():
    _check_number(f"losses[{name!r}]", value)
  if weights is None:
    terms = {k: _strong(jnp.asarray(v)) for k, v in losses.items()}
  else:
    _check_keys("weights", weights, losses)
    for name, value in weights.items():
      _check_number(f"weights[{name!r}]", value)
      static = concrete_values(value)
      if static is not None and np.isnan(static).any():
        raise ValueError(f"weights[{name!r}] is NaN; every weight must be a number.")
    # Python-float weights are weakly typed: the terms keep the losses' dtype.
    terms = {k: _strong(weights[k] * jnp.asarray(v)) for k, v in losses.items()}
  return _total(terms), terms


def uncertainty_weighted(
    losses: Mapping[str, ArrayLike],
    log_vars: Mapping[str, ArrayLike],
) -> tuple[jax.Array, dict[str, jax.Array]]:
  r"""Homoscedastic-uncertainty weighting of task losses (Kendall et al. 2018).

  With a learned log-variance ``s_k = log σ_k²`` per task,

  ``total = Σ_k exp(-s_k) · L_k + s_k``.

  Kendall et al.'s regression form is ``L_k / (2σ_k²) + log σ_k =
  ½·(exp(-s_k)·L_k + s_k)``: this convention is exactly twice it, so it has the
  same minimizer in both the model parameters and ``s`` (the gradients are
  scaled by 2, which the learning rate absorbs). It is the form most
  implementations use for every task. For fixed ``L_k`` the optimum is
  ``s_k = log L_k``, where the term equals ``1 + log L_k``. Learning ``s``
  instead of ``σ`` keeps the weight ``exp(-s)`` positive and avoids dividing by
  zero. Initialize ``log_vars`` at 0 (every weight 1).

  Args:
    losses: Mapping from task name to its (scalar) loss ``L_k``.
    log_vars: Mapping with exactly the keys of ``losses`` to the learned
      log-variances ``s_k`` (scalars, usually parameters being trained).

  Returns:
    ``(total, terms)``: the scalar objective and a dict of
    ``exp(-s_k) · L_k + s_k`` by task name.

  Raises:
    ValueError: if ``losses`` is empty or ``log_vars`` has missing or extra
      keys (the message names them).
    TypeError: if ``losses`` or ``log_vars`` is not a mapping.

  Examples:
    >>> import jax.numpy as jnp
    >>> losses = {"depth": jnp.array(2.0), "seg": jnp.array(0.5)}
    >>> total, terms = uncertainty_weighted(losses, {"depth": 0.0, "seg": 0.0})
    >>> total
    Array(2.5, dtype=float32)
    >>> total, _ = uncertainty_weighted(losses, {"depth": jnp.log(2.0), "seg": 0.0})
    >>> total  # exp(-log 2) * 2 + log 2 + 0.5
    Array(2.193..., dtype=float32)

  References:
    Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
    Losses for Scene Geometry and Semantics", CVPR 2018.
  """
  _check_losses(losses)
  _check_keys("log_vars", log_vars, losses)
  for name in losses:
    _check_number(f"losses[{name!r}]", losses[name])
    _check_number(f"log_vars[{name!r}]", log_vars[name])
  terms = {}
  for k, v in losses.items():
    loss = jnp.asarray(v)
    s = jnp.asarray(log_vars[k])
    dtype = standard_result_type(loss, s, float)
    s = s.astype(dtype)
    terms[k] = jnp.exp(-s) * loss.astype(dtype) + s
  return _total(terms), terms
