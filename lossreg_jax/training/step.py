"""The Flax NNX train step: one optimizer step of loss plus penalty.

``train_step`` is the step itself, uncompiled, so that it runs inside any
transformation (``jax.vmap`` / ``lax.scan`` over ``nnx.merge``-d states, as the
comparison engine of ``lossreg_jax.experiments`` does). ``make_train_step``
compiles it with ``nnx.jit`` for an ``nnx.Module`` and an ``nnx.Optimizer``:
loss plus optional penalty, per-sample weights, a row mask, dropout keys drawn
from the model's own ``nnx.Rngs`` streams, auxiliary metrics.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from lossreg_jax._validation import check_callable

__all__ = [
    "make_eval_step",
    "make_train_step",
    "train_step",
]

LossFn = Callable[..., jax.Array]
MetricsFn = Callable[[jax.Array, jax.Array], Mapping[str, jax.Array]]


def _unpack(batch: Any) -> tuple[Any, Any, Any, Any]:
  """Returns ``(inputs, targets, weights or None, where or None)`` of a dict or a tuple."""
  if isinstance(batch, Mapping):
    unknown = set(batch) - {"inputs", "targets", "weights", "where"}
    if unknown or "inputs" not in batch or "targets" not in batch:
      raise ValueError(f"batch dict needs the keys 'inputs' and 'targets' (and optionally "
                       f"'weights', 'where'), got keys {sorted(batch)}.")
    return batch["inputs"], batch["targets"], batch.get("weights"), batch.get("where")
  if isinstance(batch, (tuple, list)) and len(batch) in (2, 3, 4):
    return (*batch, None, None)[:4]
  raise ValueError(f"batch must be a dict with 'inputs', 'targets' (and 'weights', 'where') "
                   f"or a tuple (inputs, targets[, weights[, where]]), got {type(batch).__name__}.")


def _objective(loss_fn, penalty):
  def objective(model, inputs, targets, weights, where=None):
    outputs = model(inputs)
    # weights= / where= only when given: a plain loss_fn(outputs, targets) works.
    extra = {k: v for k, v in (("weights", weights), ("where", where)) if v is not None}
    data = loss_fn(outputs, targets, **extra)
    reg = jnp.zeros((), jnp.float32)
    if penalty is not None:
      reg = penalty(nnx.state(model, nnx.Param))
    return data + reg, (data, reg, outputs)
  return objective


def _step(objective, model, optimizer, inputs, targets, weights, where):
  """Gradient of ``objective`` w.r.t. the ``nnx.Param`` variables, applied in place."""
  grad_fn = nnx.value_and_grad(objective, has_aux=True)
  (total, (data, reg, outputs)), grads = grad_fn(model, inputs, targets, weights, where)
  optimizer.update(model, grads)
  return total, data, reg, outputs


def _aux(total, data, reg, outputs, targets, metrics_fn):
  aux = {"loss": total, "data_loss": data, "penalty": reg}
  if metrics_fn is not None:
    aux.update(metrics_fn(outputs, targets))
  return aux


def _check_functions(loss_fn, penalty, metrics_fn) -> None:
  check_callable("loss_fn", loss_fn)
  check_callable("penalty", penalty, optional=True)
  check_callable("metrics_fn", metrics_fn, optional=True)


def _check_optimizer(optimizer: Any) -> None:
  if not isinstance(optimizer, nnx.Optimizer):
    raise TypeError(f"optimizer must be an nnx.Optimizer (nnx.Optimizer(model, tx, "
                    f"wrt=nnx.Param)), got {type(optimizer).__name__}.")


def _check_model(name: str, model: Any) -> None:
  if not isinstance(model, nnx.Module):
    raise TypeError(f"{name} must be an nnx.Module, got {type(model).__name__}.")


def make_train_step(
    loss_fn: LossFn,
    *,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics_fn: MetricsFn | None = None,
) -> Callable[[nnx.Module, nnx.Optimizer, Any], tuple[jax.Array, dict]]:
  """Builds a compiled train step ``step(model, optimizer, batch) -> (loss, aux)``.

  The step computes ``loss_fn(model(inputs), targets[, weights=weights]) +
  penalty(params)``, its gradient with respect to the model's ``nnx.Param``
  variables, and applies ``optimizer.update(model, grads)`` in place. It is
  ``nnx.jit``-compiled once per batch shape and model mode: the model's
  ``nnx.Rngs`` streams (build it with ``rngs=nnx.Rngs(params=..., dropout=...)``)
  are state that the step advances, so ``nnx.Dropout`` draws fresh masks on
  every call without retracing. Dropout is active when the model is in
  training mode (``model.train()``), inactive after ``model.eval()``.

  A new model or ``nnx.Optimizer`` of the same structure reuses the compiled
  step, provided the optimizers share one optax transformation: ``nnx.jit``
  keys its cache on the optimizer's graph, which holds the transformation's
  functions, so each new ``optax.adam(...)`` object traces and compiles the
  step again (about half a second for a small MLP on a CPU). Build ``tx`` once.

  Args:
    loss_fn: ``loss_fn(outputs, targets) -> scalar``; called with
      ``weights=`` when the batch has weights (every ``lossreg_jax.losses``
      loss accepts it, e.g. ``losses.sigmoid_binary_cross_entropy``).
    penalty: Optional ``penalty(params) -> scalar`` on
      ``nnx.state(model, nnx.Param)``, added to the loss, e.g.
      ``lambda p: 1e-3 * regularizers.l2_penalty(p, mask=regularizers.decay_mask(p))``.
    metrics_fn: Optional ``metrics_fn(outputs, targets) -> {name: scalar}``
      merged into ``aux``.

  Returns:
    ``step(model, optimizer, batch)`` with ``batch`` a dict with keys
    ``inputs``, ``targets`` and optionally ``weights`` (per sample, shape
    ``(batch,)``) and ``where`` (boolean row mask, passed to ``loss_fn``), or a tuple ``(inputs, targets[, weights])``. It returns the
    total loss (scalar) and ``aux = {"loss", "data_loss", "penalty", **metrics}``.

  Raises:
    TypeError: if ``loss_fn``, ``penalty`` or ``metrics_fn`` is not callable;
      the step raises it for a ``model`` that is not an ``nnx.Module`` or an
      ``optimizer`` that is not an ``nnx.Optimizer``.

  Examples:
    >>> import optax
    >>> from flax import nnx
    >>> from lossreg_jax import losses
    >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    >>> opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    >>> step = make_train_step(lambda z, y, **kw: losses.squared_error(z[:, 0], y, **kw))
    >>> batch = {"inputs": jnp.ones((4, 2)), "targets": jnp.zeros(4)}
    >>> first, _ = step(model, opt, batch)
    >>> second, aux = step(model, opt, batch)
    >>> bool(second < first), sorted(aux)
    (True, ['data_loss', 'loss', 'penalty'])
  """
  _check_functions(loss_fn, penalty, metrics_fn)
  objective = _objective(loss_fn, penalty)

  @nnx.jit
  def compiled_step(model, optimizer, batch):
    inputs, targets, weights, where = _unpack(batch)
    total, data, reg, outputs = _step(objective, model, optimizer, inputs, targets, weights,
                                      where)
    return total, _aux(total, data, reg, outputs, targets, metrics_fn)

  def step(model, optimizer, batch):
    _check_model("model", model)
    _check_optimizer(optimizer)
    return compiled_step(model, optimizer, batch)

  return step


def make_eval_step(
    loss_fn: LossFn,
    *,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics_fn: MetricsFn | None = None,
) -> Callable[[nnx.Module, Any], tuple[jax.Array, dict]]:
  """Builds a compiled ``eval_step(model, batch) -> (loss, aux)`` (no update).

  Same objective and ``aux`` as :func:`make_train_step`; call ``model.eval()``
  first so that dropout is off.

  Args:
    loss_fn: As in :func:`make_train_step`.
    penalty: As in :func:`make_train_step`.
    metrics_fn: As in :func:`make_train_step`.

  Returns:
    ``eval_step(model, batch)`` returning the total loss and ``aux``.

  Raises:
    TypeError: if ``loss_fn``, ``penalty`` or ``metrics_fn`` is not callable;
      ``eval_step`` raises it for a ``model`` that is not an ``nnx.Module``.

  Examples:
    >>> from flax import nnx
    >>> from lossreg_jax import losses
    >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    >>> evaluate = make_eval_step(lambda z, y: losses.absolute_error(z[:, 0], y))
    >>> loss, aux = evaluate(model, (jnp.zeros((3, 2)), jnp.ones(3)))
    >>> loss
    Array(1., dtype=float32)
  """
  _check_functions(loss_fn, penalty, metrics_fn)
  objective = _objective(loss_fn, penalty)

  @nnx.jit
  def compiled_eval_step(model, batch):
    inputs, targets, weights, where = _unpack(batch)
    total, (data, reg, outputs) = objective(model, inputs, targets, weights, where)
    return total, _aux(total, data, reg, outputs, targets, metrics_fn)

  def eval_step(model, batch):
    _check_model("model", model)
    return compiled_eval_step(model, batch)

  return eval_step


def train_step(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    batch: Any,
    *,
    loss_fn: LossFn,
    penalty: Callable[[Any], jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """One optimizer step, uncompiled: the step inside :func:`make_train_step`.

  Updates ``model`` (its ``nnx.Param`` variables and ``nnx.Rngs`` streams) and
  ``optimizer`` in place with the gradient of ``loss_fn(model(inputs),
  targets[, weights=, where=]) + penalty(params)``. Being uncompiled, it runs
  inside any JAX transformation on a model rebuilt by ``nnx.merge``, e.g. a
  ``lax.scan`` over minibatches ``vmap``-ed over cross-validation folds
  (``lossreg_jax.experiments.compare_losses`` trains every fold this way).

  Args:
    model: An ``nnx.Module``.
    optimizer: ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.
    batch: A dict with ``inputs``, ``targets`` and optionally ``weights``
      (per sample) and ``where`` (a boolean row mask: excluded rows add
      nothing, see the loss contract), or a tuple ``(inputs, targets[,
      weights])``.
    loss_fn: ``loss_fn(outputs, targets) -> scalar``, called with
      ``weights=`` / ``where=`` when the batch has them.
    penalty: Optional ``penalty(params) -> scalar``.

  Returns:
    ``(total, data_loss, penalty, outputs)``: scalars and the model's outputs.

  Examples:
    >>> import optax
    >>> from flax import nnx
    >>> from lossreg_jax import losses
    >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    >>> opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    >>> batch = {"inputs": jnp.ones((4, 2)), "targets": jnp.zeros(4),
    ...          "where": jnp.array([True, True, False, False])}
    >>> mse = lambda z, y, **kw: losses.squared_error(z[:, 0], y, **kw)
    >>> total, *_ = train_step(model, opt, batch, loss_fn=mse)
    >>> total.shape
    ()
  """
  inputs, targets, weights, where = _unpack(batch)
  return _step(_objective(loss_fn, penalty), model, optimizer, inputs, targets, weights,
               where)
