"""Early stopping as a pure, jit-able ``(init, update)`` pair with Keras' rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    check_array_tree,
    check_choice,
    check_in_range,
    check_int,
    check_same_structure,
    is_static_number,
)

__all__ = ["EarlyStoppingState", "EarlyStopping", "early_stopping"]


class EarlyStoppingState(NamedTuple):
  """State of ``early_stopping``; every field keeps its shape and dtype across updates.

  Attributes:
    step: int32, number of ``update`` calls taken into account (0-based index of
      the next metric); frozen once stopped.
    best_metric: Best metric seen so far (``+inf`` for ``mode="min"``, ``-inf``
      for ``"max"`` while ``best_step == -1``).
    best_step: int32, step of ``best_metric``; -1 until a step is counted.
    wait: int32, Keras' ``wait`` counter.
    should_stop: bool, True once patience ran out; the state is then frozen.
    stop_step: int32, step at which training stopped (Keras' ``stopped_epoch``),
      -1 while running.
    best_params: The params passed with the best metric (the ``init`` params
      until a step is counted).
  """

  step: jax.Array
  best_metric: jax.Array
  best_step: jax.Array
  wait: jax.Array
  should_stop: jax.Array
  stop_step: jax.Array
  best_params: Any


class EarlyStopping(NamedTuple):
  """The ``(init, update)`` pair returned by ``early_stopping``.

  Attributes:
    init: ``init(params) -> EarlyStoppingState``.
    update: ``update(state, metric, params) -> EarlyStoppingState``.
  """

  init: Callable[[Any], EarlyStoppingState]
  update: Callable[[EarlyStoppingState, ArrayLike, Any], EarlyStoppingState]


def _keep_if(condition: jax.Array, new: ArrayLike, old: jax.Array) -> jax.Array:
  new = jnp.asarray(new)
  if new.shape != old.shape:
    raise ValueError(
        f"params must keep the shapes given to init: a leaf has shape {new.shape}, "
        f"expected {old.shape}."
    )
  return jnp.where(condition, new.astype(old.dtype), old)


def early_stopping(
    *,
    patience: int = 0,
    min_delta: float = 0.0,
    mode: Literal["min", "max"] = "min",
    baseline: float | None = None,
    start_from_step: int = 0,
) -> EarlyStopping:
  """Keras ``EarlyStopping`` as a pure ``(init, update)`` pair that keeps the best params.

  Call ``update(state, metric, params)`` once per epoch (or evaluation) with the
  monitored metric and the params that produced it. The rules are Keras 3's
  ``EarlyStopping.on_epoch_end``, with ``epoch = state.step``:

  * steps before ``start_from_step`` are ignored (Keras ``start_from_epoch``);
  * otherwise ``wait += 1``; the metric improves if it is the first counted
    one or ``metric + min_delta < best`` (mode ``"min"``; ``metric - min_delta >
    best`` for ``"max"``); an improvement records ``best_metric``, ``best_step``
    and ``best_params`` and resets ``wait`` to 0 only if it also improves on
    ``baseline`` (when given) by the same rule;
  * a step that does not improve stops training if ``wait >= patience`` and
    ``step > 0``.

  So with a ``baseline`` training stops after ``patience`` steps in which the
  metric never beat the baseline, while ``best_params`` still tracks the best
  of them. Once ``should_stop`` is True, ``update`` returns the state unchanged,
  so a fixed-length ``lax.scan`` keeps the best params of the stopped run; in a
  ``lax.while_loop`` use ``~state.should_stop`` as the condition. ``update`` is
  a pure function of arrays (``jnp.where``, no Python branching on values), so it
  works under ``jit``, ``scan``, ``while_loop`` and ``vmap``.

  Args:
    patience: Number of counted steps without improvement before stopping, ``>= 0``.
    min_delta: Minimum absolute change that counts as an improvement, ``>= 0``
      (Keras takes ``abs(min_delta)``; here a negative value is an error).
    mode: ``"min"`` for losses, ``"max"`` for accuracies.
    baseline: Value the metric must beat (by ``min_delta``) for ``wait`` to reset.
    start_from_step: Steps before this one are not counted (warm-up).

  Returns:
    ``EarlyStopping(init, update)``.

  Raises:
    ValueError: if ``mode`` is not ``"min"``/``"max"``, or ``patience``,
      ``min_delta`` or ``start_from_step`` is negative, or ``baseline`` is NaN;
      ``update`` raises it for a non-scalar ``metric`` or ``params`` whose
      structure differs from ``init``'s.
    TypeError: if ``patience`` or ``start_from_step`` is not an int, or
      ``min_delta`` / ``baseline`` is not a number; ``init`` / ``update`` raise
      it for params that are not a pytree of numeric arrays or a ``metric``
      that is not a number.

  Examples:
    >>> es = early_stopping(patience=2)
    >>> state = es.init({"w": jnp.zeros(())})
    >>> for step, loss in enumerate([3.0, 2.0, 2.5, 2.4, 1.0]):
    ...   state = es.update(state, loss, {"w": jnp.asarray(float(step))})
    >>> bool(state.should_stop), int(state.stop_step), int(state.best_step)
    (True, 3, 1)
    >>> float(state.best_metric), float(state.best_params["w"])
    (2.0, 1.0)

  References:
    ``keras.callbacks.EarlyStopping`` (Keras 3).
  """
  patience = check_int("patience", patience, 0)
  start_from_step = check_int("start_from_step", start_from_step, 0)
  check_choice("mode", mode, ("min", "max"))
  check_in_range("min_delta", min_delta, 0.0, None)
  if baseline is not None and not is_static_number(baseline):
    raise TypeError(f"baseline must be None or a number, got {baseline!r}.")
  if baseline is not None:
    check_in_range("baseline", baseline)  # a number, not NaN
  sign = 1.0 if mode == "min" else -1.0

  def improves(value: jax.Array, reference: ArrayLike) -> jax.Array:
    # Keras' monitor_op(current - min_delta, reference), min_delta signed by mode.
    if mode == "min":
      return value + min_delta < reference
    return value - min_delta > reference

  def init_fn(params: Any) -> EarlyStoppingState:
    check_array_tree("params", params, floating=False)
    dtype = jnp.result_type(float)
    minus_one = jnp.asarray(-1, jnp.int32)
    return EarlyStoppingState(
        step=jnp.asarray(0, jnp.int32),
        best_metric=jnp.asarray(sign * jnp.inf, dtype),
        best_step=minus_one,
        wait=jnp.asarray(0, jnp.int32),
        should_stop=jnp.asarray(False),
        stop_step=minus_one,
        best_params=jax.tree.map(jnp.asarray, params),
    )

  def update_fn(state: EarlyStoppingState, metric: ArrayLike, params: Any) -> EarlyStoppingState:
    if not isinstance(state, EarlyStoppingState):
      raise TypeError(f"state must be the EarlyStoppingState returned by init or update, "
                      f"got {type(state).__name__}.")
    dtype = getattr(metric, "dtype", None)
    if dtype is None:
      dtype = np.asarray(metric).dtype
    if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
      raise TypeError(f"metric must be a number (a scalar array or a Python float), got "
                      f"{type(metric).__name__} {metric!r:.60}.")
    check_same_structure("params", params, "the params given to init", state.best_params)
    metric = jnp.asarray(metric)
    if metric.ndim != 0:
      raise ValueError(f"metric must be a scalar, got shape {metric.shape}.")
    metric = metric.astype(state.best_metric.dtype)
    step = state.step
    counted = step >= start_from_step
    # best_step == -1 plays Keras' `best is None`: the first counted step improves.
    improved = counted & ((state.best_step < 0) | improves(metric, state.best_metric))
    wait = jnp.where(counted, state.wait + 1, state.wait)
    resets = improved if baseline is None else improved & improves(metric, baseline)
    wait = jnp.where(resets, 0, wait)
    stop = counted & ~improved & (wait >= patience) & (step > 0)
    new = EarlyStoppingState(
        step=step + 1,
        best_metric=jnp.where(improved, metric, state.best_metric),
        best_step=jnp.where(improved, step, state.best_step),
        wait=wait,
        should_stop=stop,
        stop_step=jnp.where(stop, step, state.stop_step),
        best_params=jax.tree.map(lambda best, p: _keep_if(improved, p, best),
                                 state.best_params, params),
    )
    # Frozen once stopped: every leaf keeps its old value.
    return jax.tree.map(lambda old, upd: jnp.where(state.should_stop, old, upd), state, new)

  return EarlyStopping(init_fn, update_fn)
