r"""Optax gradient transformations for L1 / elastic-net decay and proximal steps.

Two ways to regularize with an optax chain:

* *Decay* (:func:`add_l1_decay`, :func:`add_elastic_net_decay`) adds the
  (sub)gradient of a penalty to the updates, like ``optax.add_decayed_weights``.
  Weights hover around zero (``sign(w)`` flips) but are never exactly zero.
* *Proximal* (:func:`proximal_l1`, :func:`proximal_elastic_net`) goes LAST in a
  chain and replaces the step by the proximal point of the penalty: small
  weights become exactly ``0.0`` (ISTA / proximal gradient descent).

Where the decay sits in the chain matters with adaptive optimizers::

  # coupled (Adam + L2 in the loss): the decay is rescaled by Adam's 1/√v
  optax.chain(add_elastic_net_decay(wd, 0.0), optax.scale_by_adam(), optax.scale(-lr))
  # decoupled (AdamW): the decay bypasses Adam's rescaling
  optax.chain(optax.scale_by_adam(), add_elastic_net_decay(wd, 0.0), optax.scale(-lr))
  # == optax.adamw(lr, weight_decay=wd)

With plain SGD both placements are the same.

All strengths (and ``learning_rate``) accept an ``optax.ScalarOrSchedule``;
schedules are evaluated at the state's ``count``, which starts at 0 and grows by
one per ``update``. ``mask=`` (a pytree of bools, a prefix of one, or a
callable such as :func:`decay_mask`) restricts a transform to some leaves via
``optax.masked``. The state's structure never changes between steps, so every
transform runs inside ``jax.jit``, ``jax.lax.scan`` and ``nnx.Optimizer``.

References:
  Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
  Parikh & Boyd, "Proximal Algorithms", 2014 (soft thresholding, §6.5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossreg_jax._validation import check_in_range, standard_result_type
from lossreg_jax.regularizers.penalties import _mask_leaves

__all__ = [
    "AddL1DecayState",
    "AddElasticNetDecayState",
    "ProximalL1State",
    "ProximalElasticNetState",
    "add_l1_decay",
    "add_elastic_net_decay",
    "proximal_l1",
    "proximal_elastic_net",
    "decay_mask",
]


class AddL1DecayState(NamedTuple):
  """State of :func:`add_l1_decay`."""

  count: jax.Array  # int32 step counter, indexes schedules


class AddElasticNetDecayState(NamedTuple):
  """State of :func:`add_elastic_net_decay`."""

  count: jax.Array  # int32 step counter, indexes schedules


class ProximalL1State(NamedTuple):
  """State of :func:`proximal_l1`."""

  count: jax.Array  # int32 step counter, indexes schedules


class ProximalElasticNetState(NamedTuple):
  """State of :func:`proximal_elastic_net`."""

  count: jax.Array  # int32 step counter, indexes schedules


def _check_strength(name: str, value: Any, high: float | None = None) -> None:
  if callable(value):
    return  # schedules are checked by the user; only static values here
  check_in_range(name, value, 0.0, high)


def _at(value: optax.ScalarOrSchedule, count: jax.Array) -> Any:
  return value(count) if callable(value) else value


def _no_params(name: str) -> ValueError:
  return ValueError(
      f"{name} needs the current params: call tx.update(updates, state, params) "
      "(nnx.Optimizer does this for you)."
  )


def _with_mask(tx: optax.GradientTransformation, mask: Any) -> Any:
  if mask is None:
    return tx

  def mask_fn(tree):
    # Check the structure here (ValueError naming `mask`) and expand a prefix or
    # Variable-wrapped mask to the exact structure optax.masked is handed.
    return jax.tree.unflatten(jax.tree.structure(tree), _mask_leaves(mask, tree))

  return optax.masked(tx, mask_fn)


def _map(fn: Callable[..., jax.Array], updates: Any, params: Any, *coefs: Any) -> Any:
  """``fn(u, p, *coefs)`` per leaf, returned in the update's dtype.

  The leaf computes in the dtype JAX's standard promotion gives ``u``, ``p`` and
  ``coefs`` (Python floats are weak: a half-precision leaf stays half) and every
  operand is cast to it explicitly, so it also runs under
  ``jax_numpy_dtype_promotion="strict"`` with the same result.
  """

  def leaf(path, u, p):
    if u is None:  # None updates (frozen leaves) stay None, as in optax.add_decayed_weights.
      return None
    for name, x in (("updates", u), ("params", p)):
      dtype = getattr(x, "dtype", None)
      if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} must be a pytree of floating arrays; "
                        f"{name}{jax.tree_util.keystr(path)} is {type(x).__name__}"
                        f"{'' if dtype is None else f' with dtype {dtype}'}.")
    dtype = standard_result_type(u, p, *coefs)
    # Python scalars stay weakly typed (cast straight to `dtype`, no double rounding).
    cast = [c if isinstance(c, (int, float)) else jnp.asarray(c).astype(dtype) for c in coefs]
    return fn(u.astype(dtype), p.astype(dtype), *cast).astype(u.dtype)

  try:
    return jax.tree_util.tree_map_with_path(leaf, updates, params, is_leaf=lambda x: x is None)
  except ValueError as e:
    if "structure" not in str(e) and "Custom node type mismatch" not in str(e):
      raise
    raise ValueError(
        f"updates and params must have the same tree structure; got updates "
        f"{str(jax.tree.structure(updates))[:200]} and params "
        f"{str(jax.tree.structure(params))[:200]}.") from None


def add_l1_decay(
    strength: optax.ScalarOrSchedule, *, mask: Any = None
) -> optax.GradientTransformation:
  r"""Adds ``strength · sign(w)``, the L1 subgradient, to the updates.

  The gradient of ``strength * l1_penalty(params)`` (with ``sign(0) = 0``).
  As a subgradient method it leaves weights oscillating near zero rather than
  exactly at zero; use :func:`proximal_l1` for exact sparsity.

  Args:
    strength: Coefficient ``≥ 0`` or a schedule ``count -> coefficient``.
    mask: Optional pytree of bools / callable selecting the leaves to decay
      (e.g. :func:`decay_mask`), applied through ``optax.masked``.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`AddL1DecayState`.

  Raises:
    ValueError: if a static ``strength`` is negative; from ``update`` if
      ``params`` is missing or ``mask`` does not match the params' structure.

  Examples:
    >>> tx = add_l1_decay(0.1)
    >>> params = {"w": jnp.array([2.0, -1.0, 0.0])}
    >>> updates, _ = tx.update(params, tx.init(params), params)
    >>> updates["w"]
    Array([ 2.1, -1.1,  0. ], dtype=float32)
  """
  _check_strength("strength", strength)

  def init_fn(params):
    del params
    return AddL1DecayState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise _no_params("add_l1_decay")
    s = _at(strength, state.count)
    updates = _map(lambda u, p, s: u + s * jnp.sign(p), updates, params, s)
    return updates, AddL1DecayState(count=optax.safe_increment(state.count))

  return _with_mask(optax.GradientTransformation(init_fn, update_fn), mask)


def add_elastic_net_decay(
    alpha: optax.ScalarOrSchedule,
    l1_ratio: optax.ScalarOrSchedule,
    *,
    mask: Any = None,
) -> optax.GradientTransformation:
  r"""Adds ``α·ρ·sign(w) + α·(1−ρ)·w``, the gradient of the elastic-net penalty.

  The (sub)gradient of :func:`~lossreg_jax.regularizers.elastic_net_penalty`
  (scikit-learn's scaling). ``l1_ratio=0`` is exactly
  ``optax.add_decayed_weights(alpha)``; ``l1_ratio=1`` is
  ``add_l1_decay(alpha)``. Placed after ``optax.scale_by_adam()`` it gives
  decoupled (AdamW) decay, before it coupled decay (see the module docstring).

  Args:
    alpha: Overall strength ``≥ 0`` or a schedule.
    l1_ratio: Mixing in ``[0, 1]`` or a schedule.
    mask: Optional pytree of bools / callable selecting the leaves to decay.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`AddElasticNetDecayState`.

  Raises:
    ValueError: if a static ``alpha < 0`` or ``l1_ratio`` outside ``[0, 1]``;
      from ``update`` if ``params`` is missing.

  Examples:
    >>> tx = add_elastic_net_decay(0.1, 0.5)
    >>> params = {"w": jnp.array([2.0, -1.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> updates["w"]
    Array([ 0.15, -0.1 ], dtype=float32)
  """
  _check_strength("alpha", alpha)
  _check_strength("l1_ratio", l1_ratio, 1.0)

  def init_fn(params):
    del params
    return AddElasticNetDecayState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise _no_params("add_elastic_net_decay")
    a, r = _at(alpha, state.count), _at(l1_ratio, state.count)
    l1, l2 = a * r, a * (1 - r)
    # u + l2·w first: with l1 = 0 this is bit for bit add_decayed_weights.
    updates = _map(lambda u, p, l1, l2: u + l2 * p + l1 * jnp.sign(p), updates, params, l1, l2)
    return updates, AddElasticNetDecayState(count=optax.safe_increment(state.count))

  return _with_mask(optax.GradientTransformation(init_fn, update_fn), mask)


def _prox_update(u: jax.Array, p: jax.Array, threshold: Any, shrink: Any) -> jax.Array:
  z = p + u
  zeroed = jnp.abs(z) <= threshold
  new = jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0) / shrink
  # Exact zeros: optax.apply_updates computes p + update, and p + (-p) is exactly
  # 0.0 in IEEE arithmetic, whereas p + (new - p) is only new up to roundoff.
  # Selecting -p explicitly keeps the zeros exact whatever XLA does to `new`.
  return jnp.where(zeroed, -p, new - p)


def proximal_l1(
    learning_rate: optax.ScalarOrSchedule,
    strength: optax.ScalarOrSchedule,
    *,
    mask: Any = None,
) -> optax.GradientTransformation:
  r"""Moves ``params + updates`` to its L1 proximal point (soft thresholding).

  Place it LAST in a chain, after the step is scaled by ``learning_rate``:
  ``optax.chain(optax.sgd(lr), proximal_l1(lr, strength))``. With
  ``z = params + updates`` the returned update moves the params to
  ``sign(z)·max(|z| − η·strength, 0)``; entries with ``|z| ≤ η·strength``
  become exactly ``0.0`` after ``optax.apply_updates`` (their update is
  ``-params``, which has no roundoff).

  Args:
    learning_rate: The step size ``η ≥ 0`` the chain used (scalar or schedule).
    strength: L1 coefficient ``≥ 0`` (scalar or schedule).
    mask: Optional pytree of bools / callable selecting the leaves to threshold.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ProximalL1State`.

  Raises:
    ValueError: if a static ``learning_rate`` or ``strength`` is negative; from
      ``update`` if ``params`` is missing.

  Examples:
    >>> tx = proximal_l1(1.0, 0.5)
    >>> params = {"w": jnp.array([2.0, 0.3, -1.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
    >>> optax.apply_updates(params, updates)["w"]
    Array([ 1.5,  0. , -0.5], dtype=float32)

  References:
    Parikh & Boyd, "Proximal Algorithms", 2014; Beck & Teboulle, ISTA, 2009.
  """
  _check_strength("learning_rate", learning_rate)
  _check_strength("strength", strength)

  def init_fn(params):
    del params
    return ProximalL1State(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise _no_params("proximal_l1")
    t = _at(learning_rate, state.count) * _at(strength, state.count)
    updates = _map(lambda u, p, t: _prox_update(u, p, t, 1), updates, params, t)
    return updates, ProximalL1State(count=optax.safe_increment(state.count))

  return _with_mask(optax.GradientTransformation(init_fn, update_fn), mask)


def proximal_elastic_net(
    learning_rate: optax.ScalarOrSchedule,
    alpha: optax.ScalarOrSchedule,
    l1_ratio: optax.ScalarOrSchedule,
    *,
    mask: Any = None,
) -> optax.GradientTransformation:
  r"""Moves ``params + updates`` to its elastic-net proximal point.

  Place it LAST in a chain, after the step is scaled by ``learning_rate``:
  ``optax.chain(optax.sgd(lr), proximal_elastic_net(lr, alpha, l1_ratio))``.
  With ``z = params + updates`` and ``η = learning_rate`` the params move to
  ``soft(z, η·α·ρ) / (1 + η·α·(1−ρ))``, the proximal operator of ``η`` times
  :func:`~lossreg_jax.regularizers.elastic_net_penalty`. Entries with
  ``|z| ≤ η·α·ρ`` become exactly ``0.0`` (unlike :func:`add_elastic_net_decay`).
  Iterating it with plain SGD is proximal gradient descent (ISTA), which
  converges to scikit-learn's ``ElasticNet`` solution for ``η ≤ 1/L``.

  Args:
    learning_rate: The step size ``η ≥ 0`` the chain used (scalar or schedule).
    alpha: Overall strength ``≥ 0`` (scalar or schedule).
    l1_ratio: Mixing in ``[0, 1]`` (scalar or schedule).
    mask: Optional pytree of bools / callable selecting the leaves.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ProximalElasticNetState`.

  Raises:
    ValueError: if a static ``learning_rate`` or ``alpha`` is negative or
      ``l1_ratio`` is outside ``[0, 1]``; from ``update`` if ``params`` is
      missing.

  Examples:
    >>> tx = proximal_elastic_net(1.0, 1.0, 0.5)
    >>> params = {"w": jnp.array([2.0, 0.3, -1.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
    >>> optax.apply_updates(params, updates)["w"]
    Array([ 1. ,  0. , -0.3333...], dtype=float32)

  References:
    Parikh & Boyd, "Proximal Algorithms", 2014, §6.5.3 (elastic net).
  """
  _check_strength("learning_rate", learning_rate)
  _check_strength("alpha", alpha)
  _check_strength("l1_ratio", l1_ratio, 1.0)

  def init_fn(params):
    del params
    return ProximalElasticNetState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise _no_params("proximal_elastic_net")
    eta_a = _at(learning_rate, state.count) * _at(alpha, state.count)
    r = _at(l1_ratio, state.count)
    t, shrink = eta_a * r, 1 + eta_a * (1 - r)
    updates = _map(_prox_update, updates, params, t, shrink)
    return updates, ProximalElasticNetState(count=optax.safe_increment(state.count))

  return _with_mask(optax.GradientTransformation(init_fn, update_fn), mask)


def decay_mask(params: Any) -> Any:
  """Marks the leaves to decay: True for kernels, False for biases and scales.

  The rule is on ranks only: a leaf with ``ndim >= 2`` (dense and conv kernels,
  embedding tables) is ``True``; ``ndim <= 1`` (biases, LayerNorm / BatchNorm
  scales and offsets, scalars) is ``False``. The result has ``params``'
  structure (Flax ``Variable`` wrappers in an ``nnx.State`` are kept) with
  Python bools as leaves, so it can be passed as ``mask=`` (or passed itself,
  as a callable, which also works inside ``nnx.Optimizer``).

  Args:
    params: A pytree of arrays: a dict, ``nnx.state(model, nnx.Param)``, ...

  Returns:
    A pytree of bools with the structure of ``params``.

  Examples:
    >>> decay_mask({"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)})
    {'bias': False, 'kernel': True}
  """
  return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)
