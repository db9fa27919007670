r"""Penalties on parameter pytrees, and converters between penalty conventions.

Every penalty takes a pytree of arrays (a dict, a Flax ``nnx.State`` such as
``nnx.state(model, nnx.Param)``, a list, ...) and returns a scalar to add to a
loss. ``mask`` (a pytree of bools with the structure of ``params`` or a prefix
of it, or a callable ``params -> mask``, as ``optax.masked``) keeps only the
leaves marked ``True``; a bool array leaf masks element by element.

Sums are accumulated in at least float32 (float16 / bfloat16 parameters give a
float32 penalty, so ``Σw²`` does not overflow at ``|w| > 256``); gradients come
back in the parameters' dtype.

Scaling conventions, and how to convert (``l1``, ``l2`` below are the
coefficients of *our* :func:`l1_penalty` and :func:`l2_penalty`, i.e. the total
penalty is ``l1·Σ|w| + l2·½Σw²``; ``l2`` is then exactly a weight decay)::

  library / API                          penalty it adds             our (l1, l2)
  -------------------------------------  --------------------------  ---------------------
  elastic_net_penalty(alpha, l1_ratio),  α·ρ·Σ|w| + ½·α·(1−ρ)·Σw²    (α·ρ, α·(1−ρ))
    sklearn ElasticNet / Lasso (ρ=1)                                 = sklearn_to_l1_l2
  Keras regularizers.L1L2(l1, l2)        l1·Σ|w| + l2·Σw²            (l1, 2·l2)
                                                                     = keras_to_l1_l2
  optax.add_decayed_weights(wd),         adds wd·w to the gradient   (0, wd)
    torch SGD(weight_decay=wd)           = grad of wd·½Σw²
  add_elastic_net_decay(alpha, ρ)        adds α·ρ·sign(w)+α(1−ρ)·w   (α·ρ, α·(1−ρ))
  sklearn Ridge(alpha)                   α·Σw² on a SUM loss         (0, 2·α/n)
  sklearn LogisticRegression(C)          ½Σw² on C × SUM loss        (0, 1/(C·n))

The factor of ``n`` (number of samples) appears when the data term is a sum
rather than a mean: scikit-learn's ``ElasticNet`` / ``Lasso`` minimize
``1/(2n)·||y − Xw||² + penalty`` (a mean, like Keras and our losses'
``reduction="mean"``), while ``Ridge`` minimizes ``||y − Xw||² + α·||w||²``.
The factor ½ on the data term also matters: scikit-learn's ``1/(2n)·||y−Xw||²``
is half of Keras' mean squared error, so a Keras model with ``"mse"`` and
``L1L2(l1, l2)`` minimizes twice ``1/(2n)·||y−Xw||² + (l1/2)·Σ|w| + (l2/2)·Σw²``.

References:
  Zou & Hastie, "Regularization and variable selection via the elastic net",
  JRSS-B 2005. Yuan & Lin, "Model selection and estimation in regression with
  grouped variables", JRSS-B 2006.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from lossreg_jax._validation import (
    check_array_tree,
    check_bool,
    check_in_range,
    standard_result_type,
)

__all__ = [
    "l1_penalty",
    "l2_penalty",
    "elastic_net_penalty",
    "group_lasso_penalty",
    "sklearn_to_l1_l2",
    "keras_to_l1_l2",
]

MaskOrFn = Any | Callable[[Any], Any] | None


def _brief(treedef: Any, limit: int = 240) -> str:
  text = str(treedef)
  return text if len(text) <= limit else text[: limit - 3] + "..."


def _mask_leaves(mask: MaskOrFn, params: Any) -> list[Any]:
  """Returns one mask entry per leaf of ``params`` (in ``jax.tree.leaves`` order).

  ``mask`` may have exactly the structure of ``params``, that structure without
  Flax ``Variable`` wrappers (``nnx.as_pure``), or a prefix of it; a callable is
  called on ``params`` first.

  Raises:
    ValueError: if the structures do not match.
    TypeError: if a mask leaf is not boolean.
  """
  n_leaves = len(jax.tree.leaves(params))
  if mask is None:
    return [True] * n_leaves
  if callable(mask):
    mask = mask(params)
  if jax.tree.structure(mask) == jax.tree.structure(params):
    leaves = jax.tree.leaves(mask)
  else:
    # A mask built on nnx.state(model) still applies inside nnx.Optimizer, which
    # hands the transform the pure (Variable-free) state, and vice versa.
    pure_mask, pure_params = nnx.as_pure(mask), nnx.as_pure(params)
    try:
      # A prefix mask (optax.masked's rule): one bool covers a whole subtree.
      full = jax.tree.map(
          lambda m, p: jax.tree.map(lambda _: m, p), pure_mask, pure_params
      )
    except (ValueError, TypeError):
      raise ValueError(
          "mask must have the tree structure of params (or a prefix of it); got "
          f"mask structure {_brief(jax.tree.structure(mask))} and params "
          f"structure {_brief(jax.tree.structure(params))}."
      ) from None
    leaves = jax.tree.leaves(full)
  if len(leaves) != n_leaves:
    raise ValueError(
        f"mask must have one bool per leaf of params: got {len(leaves)} mask "
        f"leaves for {n_leaves} params leaves."
    )
  for m in leaves:
    if jnp.asarray(m).dtype != jnp.bool_:
      raise TypeError(
          f"mask leaves must be booleans (True keeps a leaf), got {m!r} of "
          f"dtype {jnp.asarray(m).dtype}."
      )
  return leaves


def _masked_leaves(params: Any, mask: MaskOrFn) -> list[jax.Array]:
  """The leaves of ``params`` kept by ``mask``, cast to an accumulation dtype."""
  check_array_tree("params", params)
  out = []
  for w, m in zip(jax.tree.leaves(params), _mask_leaves(mask, params), strict=True):
    if isinstance(m, bool) or (jnp.ndim(m) == 0 and not isinstance(m, jax.core.Tracer)):
      if not bool(m):
        continue  # a static False drops the leaf from the graph altogether
      w = jnp.asarray(w)
    else:
      w = jnp.where(m, w, jnp.zeros((), jnp.asarray(w).dtype))
    # Half-precision leaves are summed in float32 so Σw² cannot overflow.
    out.append(w.astype(standard_result_type(w.dtype, jnp.float32)))
  return out


def _coef_mul(a: Any, b: Any) -> Any:
  """``a * b`` in the dtype standard promotion gives, with explicit casts.

  A half-precision coefficient times a float32 sum gives float32 in both
  promotion modes; Python scalars stay weakly typed (no extra rounding).
  """
  dtype = standard_result_type(a, b)
  cast = lambda x: x if isinstance(x, (int, float)) else jnp.asarray(x).astype(dtype)
  return cast(a) * cast(b)


def _total(terms: list[jax.Array]) -> jax.Array:
  if not terms:
    return jnp.zeros((), jnp.asarray(0.0).dtype)
  return sum(terms[1:], terms[0])


def _check_enet(alpha: Any, l1_ratio: Any) -> None:
  check_in_range("alpha", alpha, 0.0)
  check_in_range("l1_ratio", l1_ratio, 0.0, 1.0)


def l1_penalty(params: Any, *, mask: MaskOrFn = None) -> jax.Array:
  """Sum of absolute values of all (unmasked) parameters, ``Σ|w|``.

  Args:
    params: A pytree of floating arrays (dict, ``nnx.State``, list, ...).
    mask: Optional pytree of bools with the structure of ``params`` (or a prefix
      of it), or a callable ``params -> mask``; ``False`` leaves are excluded.

  Returns:
    A scalar, float32 or wider (0 when every leaf is masked).

  Raises:
    ValueError: if ``mask``'s tree structure does not match ``params``.

  Examples:
    >>> l1_penalty({"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])})
    Array(6., dtype=float32)
    >>> l1_penalty({"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])},
    ...            mask={"w": True, "b": False})
    Array(3., dtype=float32)
  """
  return _total([jnp.sum(jnp.abs(w)) for w in _masked_leaves(params, mask)])


def l2_penalty(params: Any, *, mask: MaskOrFn = None) -> jax.Array:
  """Half the sum of squares, ``½Σw²``, whose gradient is ``w`` (weight decay).

  ``wd * l2_penalty(params)`` added to a loss is what
  ``optax.add_decayed_weights(wd)`` adds to the gradient.

  Args:
    params: A pytree of floating arrays.
    mask: Optional pytree of bools or callable, as in :func:`l1_penalty`.

  Returns:
    A scalar, float32 or wider.

  Raises:
    ValueError: if ``mask``'s tree structure does not match ``params``.

  Examples:
    >>> l2_penalty({"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])})
    Array(7., dtype=float32)
  """
  return _total([0.5 * jnp.sum(jnp.square(w)) for w in _masked_leaves(params, mask)])


def elastic_net_penalty(
    params: Any,
    *,
    alpha: float | jax.typing.ArrayLike,
    l1_ratio: float | jax.typing.ArrayLike,
    mask: MaskOrFn = None,
) -> jax.Array:
  r"""Elastic-net penalty in scikit-learn's scaling.

  ``α·ρ·Σ|w| + ½·α·(1−ρ)·Σw²`` with ``α = alpha`` and ``ρ = l1_ratio``, the
  penalty of ``sklearn.linear_model.ElasticNet`` (whose data term is
  ``1/(2n)·||y − Xw||²``). ``l1_ratio=1`` is the Lasso, ``l1_ratio=0`` is
  ``alpha * l2_penalty``. Its gradient is what :func:`add_elastic_net_decay`
  adds to the updates.

  Args:
    params: A pytree of floating arrays.
    alpha: Overall strength ``α ≥ 0``.
    l1_ratio: Mixing ``ρ`` in ``[0, 1]``.
    mask: Optional pytree of bools or callable, as in :func:`l1_penalty`.

  Returns:
    A scalar, float32 or wider.

  Raises:
    ValueError: if a static ``alpha < 0`` or ``l1_ratio`` outside ``[0, 1]``
      (traced values are not checked), or ``mask`` does not match ``params``.

  Examples:
    >>> elastic_net_penalty({"w": jnp.array([1.0, -2.0])}, alpha=0.5, l1_ratio=0.2)
    Array(1.3, dtype=float32)

  References:
    scikit-learn, ``ElasticNet`` user guide; Zou & Hastie (2005).
  """
  _check_enet(alpha, l1_ratio)
  leaves = _masked_leaves(params, mask)
  l1 = _total([jnp.sum(jnp.abs(w)) for w in leaves])
  l2 = _total([jnp.sum(jnp.square(w)) for w in leaves])
  c1, c2 = _coef_mul(alpha, l1_ratio), _coef_mul(0.5 * alpha, 1 - l1_ratio)
  return _coef_mul(c1, l1) + _coef_mul(c2, l2)


def group_lasso_penalty(
    params: Any,
    *,
    scale_by_size: bool = False,
    mask: MaskOrFn = None,
) -> jax.Array:
  r"""Group lasso: the sum over leaves (groups) of their Euclidean norms.

  Each leaf of ``params`` is one group ``g``; the penalty is ``Σ_g ‖w_g‖₂``, or
  ``Σ_g √|g|·‖w_g‖₂`` with ``scale_by_size=True`` (Yuan & Lin's weighting, so
  large groups are not favoured). It drives whole leaves to zero together.

  The norm is ``optax.safe_norm(w, 0)``: at an all-zero group its gradient is 0
  (a valid subgradient) instead of the NaN of ``0/0`` that ``sqrt`` would give.

  Args:
    params: A pytree of floating arrays; each leaf is a group.
    scale_by_size: Multiply each group's norm by ``√(number of elements)``.
    mask: Optional pytree of bools or callable, as in :func:`l1_penalty`.

  Returns:
    A scalar, float32 or wider.

  Raises:
    ValueError: if ``mask``'s tree structure does not match ``params``.

  Examples:
    >>> group_lasso_penalty({"a": jnp.array([3.0, 4.0]), "b": jnp.zeros(3)})
    Array(5., dtype=float32)
    >>> group_lasso_penalty({"a": jnp.array([3.0, 4.0])}, scale_by_size=True)
    Array(7.0710..., dtype=float32)

  References:
    Yuan & Lin, "Model selection and estimation in regression with grouped
    variables", JRSS-B 2006.
  """
  scale_by_size = check_bool("scale_by_size", scale_by_size)
  terms = []
  for w in _masked_leaves(params, mask):
    # safe_norm: finite (zero) gradient where the whole group is zero.
    norm = optax.safe_norm(jnp.ravel(w), 0.0)
    terms.append(norm * jnp.sqrt(w.size).astype(norm.dtype) if scale_by_size else norm)
  return _total(terms)


def sklearn_to_l1_l2(alpha: Any, l1_ratio: Any) -> tuple[Any, Any]:
  r"""Converts scikit-learn's ``(alpha, l1_ratio)`` to our ``(l1, l2)``.

  ======================================  ===============================
  convention                              penalty
  ======================================  ===============================
  sklearn ``ElasticNet(alpha, l1_ratio)``  ``α·ρ·Σ|w| + ½·α·(1−ρ)·Σw²``
  ours: ``l1·l1_penalty + l2·l2_penalty``  ``l1·Σ|w| + l2·½Σw²``
  ======================================  ===============================

  so ``l1 = α·ρ`` and ``l2 = α·(1−ρ)``; ``l2`` is then exactly the
  ``weight_decay`` of ``optax.add_decayed_weights`` and ``l1`` the strength of
  :func:`add_l1_decay`. Both share scikit-learn's per-sample scaling (the data
  term is a mean, ``1/(2n)·||y−Xw||²``): no factor of ``n`` enters. For Keras'
  ``L1L2`` coefficients (``l2·Σw²``, no ½) halve ``l2``.

  Args:
    alpha: Overall strength ``α ≥ 0``.
    l1_ratio: Mixing ``ρ`` in ``[0, 1]``.

  Returns:
    ``(l1, l2)`` with ``elastic_net_penalty(p, alpha=α, l1_ratio=ρ) ==
    l1 * l1_penalty(p) + l2 * l2_penalty(p)``.

  Raises:
    ValueError: if a static ``alpha < 0`` or ``l1_ratio`` outside ``[0, 1]``.

  Examples:
    >>> sklearn_to_l1_l2(0.5, 0.2)
    (0.1, 0.4)
  """
  _check_enet(alpha, l1_ratio)
  return _coef_mul(alpha, l1_ratio), _coef_mul(alpha, 1 - l1_ratio)


def keras_to_l1_l2(l1: Any, l2: Any) -> tuple[Any, Any]:
  r"""Converts Keras ``regularizers.L1L2(l1, l2)`` to our ``(l1, l2)``.

  ======================================  ===============================
  convention                              penalty
  ======================================  ===============================
  Keras ``L1L2(l1, l2)``                   ``l1·Σ|w| + l2·Σw²``
  ours: ``l1·l1_penalty + l2·l2_penalty``  ``l1·Σ|w| + l2·½Σw²``
  ======================================  ===============================

  so the L1 coefficient is unchanged and the L2 one doubles (our
  ``l2_penalty`` carries a ½). Keras adds the penalty to the batch-mean loss,
  as our ``reduction="mean"`` losses do, so no factor of ``n`` enters; note
  that Keras' ``"mse"`` is twice scikit-learn's ``1/(2n)·||y−Xw||²``.

  Args:
    l1: Keras' L1 coefficient, ``≥ 0``.
    l2: Keras' L2 coefficient, ``≥ 0``.

  Returns:
    ``(l1, 2 * l2)``, so that ``l1·Σ|w| + l2·Σw² == l1' * l1_penalty(p) + l2' *
    l2_penalty(p)``.

  Raises:
    ValueError: if a static ``l1`` or ``l2`` is negative.

  Examples:
    >>> keras_to_l1_l2(0.01, 0.005)
    (0.01, 0.01)
  """
  check_in_range("l1", l1, 0.0)
  check_in_range("l2", l2, 0.0)
  return l1, 2 * l2
