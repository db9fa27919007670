"""The fit loop: epochs over shuffled minibatches of the train step.

``fit`` runs :func:`~lossreg_jax.training.make_train_step`'s step over
shuffled minibatches with a progress bar, validation and early stopping, and
stops with ``TrainingDivergedError`` when the loss becomes NaN or infinite.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lossreg_jax.training.step import (LossFn, MetricsFn, _check_functions, _check_model,
                                       _check_optimizer, _unpack, make_eval_step,
                                       make_train_step)

__all__ = ["TrainingDivergedError", "fit"]


class TrainingDivergedError(ValueError):
  """A training loss became NaN or infinite; the message says where."""


def _is_array_leaf(x) -> bool:
  # Lists are array-likes (np.asarray reads them), not pytree nodes.
  return isinstance(x, list)


def _host_arrays(name: str, data: Any) -> tuple[Any, ...]:
  """Returns the non-None parts of ``data`` as pytrees of NumPy arrays, checked."""
  parts = tuple(jax.tree.map(np.asarray, a, is_leaf=_is_array_leaf)
                for a in _unpack(data) if a is not None)
  leaves = jax.tree.leaves(parts)
  for path, leaf in jax.tree_util.tree_flatten_with_path(parts)[0]:
    if not (jnp.issubdtype(leaf.dtype, jnp.number) or jnp.issubdtype(leaf.dtype, jnp.bool_)):
      raise TypeError(f"{name} must hold numeric arrays; {name}{jax.tree_util.keystr(path)} "
                      f"has dtype {leaf.dtype} and shape {leaf.shape}.")
  n = leaves[0].shape[0] if leaves and leaves[0].ndim else -1
  if n < 1 or any(leaf.ndim == 0 or leaf.shape[0] != n for leaf in leaves):
    raise ValueError(f"{name} arrays must share a non-empty first dimension, got shapes "
                     f"{jax.tree.map(np.shape, parts)}.")
  return parts


def _as_batch(parts, rows=None):
  """Device arrays of ``parts`` (pytrees), each leaf indexed by ``rows`` if given."""
  take = (lambda a: a) if rows is None else (lambda a: a[rows])
  return jax.tree.map(lambda a: jnp.asarray(take(a)), tuple(parts))


def _num_rows(parts) -> int:
  return jax.tree.leaves(parts)[0].shape[0]


def _check_epochs(epochs, batch_size) -> None:
  for name, value in (("epochs", epochs), ("batch_size", batch_size)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"{name} must be an int >= 1, got {value!r}.")


def _epoch_bar(epochs: int, progress: bool, desc: str):
  """``range(epochs)``, under a tqdm bar when ``progress``."""
  if not progress:
    return range(epochs)
  from tqdm.auto import tqdm
  return tqdm(range(epochs), desc=desc, unit="epoch", leave=False)


def _row_orders(key: jax.Array, n: int):
  """Endless shuffled row orders, one per epoch, each from a fresh split of ``key``."""
  while True:
    key, sub = jax.random.split(key)
    yield np.asarray(jax.random.permutation(sub, n))


def fit(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    train_data: Any,
    *,
    loss_fn: LossFn,
    epochs: int,
    batch_size: int,
    key: jax.Array | int,
    val_data: Any = None,
    early_stopping: Any = None,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics_fn: MetricsFn | None = None,
    progress: bool = True,
) -> dict:
  """Trains ``model`` in place over shuffled minibatches; returns the history.

  Each epoch shuffles the rows with a fresh key split from ``key``, runs the
  :func:`make_train_step` step on every minibatch (the last one may be
  smaller, which compiles the step once more), then evaluates ``val_data`` in
  one batch with dropout off. The monitored metric is the validation loss, or
  the epoch's mean training loss without ``val_data``. ``early_stopping`` is
  ``lossreg_jax.regularizers.early_stopping(...)``: its state is updated once
  per epoch with the monitored metric and the params; training stops when it
  says so and the best params are restored into ``model`` at the end. The
  model is left in eval mode.

  Args:
    model: An ``nnx.Module`` (in-place updates).
    optimizer: ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.
    train_data: ``(inputs, targets[, weights])`` or a dict with those keys.
      ``inputs`` and ``targets`` may be arrays or pytrees of arrays (dicts,
      tuples, e.g. ``{"cls": labels, "box": boxes}`` for a two-head model;
      lists are read as arrays); every leaf has ``n`` rows and is shuffled
      and batched with the same row indices.
    loss_fn: As in :func:`make_train_step`.
    epochs: Most passes over the data.
    batch_size: Rows per step.
    key: ``jax.random`` key or int seed for the shuffling.
    val_data: Optional validation data, same layout as ``train_data``.
    early_stopping: Optional object with ``init(params)`` and
      ``update(state, metric, params)``, e.g.
      ``regularizers.early_stopping(patience=5)``.
    penalty: As in :func:`make_train_step`.
    metrics_fn: As in :func:`make_train_step`; on validation data its values
      are recorded as ``val_<name>``.
    progress: Show a tqdm progress bar over epochs.

  Returns:
    A dict with per-epoch lists ``train_loss`` (mean over rows), ``val_loss``
    and ``val_<metric>`` (with ``val_data``), plus ``epochs_run``,
    ``stopped_epoch`` (0-based epoch at which early stopping fired, or None)
    and ``best_epoch`` (with early stopping).

  Raises:
    TrainingDivergedError: (a ``ValueError``) when an epoch's training loss is
      NaN or infinite: "training diverged: the training loss is nan in epoch E".
    ValueError: for bad sizes or a malformed ``train_data``.
    TypeError: if ``model`` is not an ``nnx.Module``, ``optimizer`` not an
      ``nnx.Optimizer``, ``loss_fn`` / ``penalty`` / ``metrics_fn`` not
      callable, ``early_stopping`` lacks ``init`` / ``update``, or ``key`` is
      neither a ``jax.random`` key nor an int.

  Examples:
    >>> import optax
    >>> from flax import nnx
    >>> from lossreg_jax import losses
    >>> model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    >>> opt = nnx.Optimizer(model, optax.adam(0.1), wrt=nnx.Param)
    >>> X = jax.random.normal(jax.random.key(1), (64, 3)); y = X @ jnp.array([1.0, -2.0, 0.5])
    >>> mse = lambda z, t, **kw: losses.squared_error(z[:, 0], t, **kw)
    >>> h = fit(model, opt, (X, y), loss_fn=mse, epochs=20, batch_size=16, key=0,
    ...         progress=False)
    >>> len(h["train_loss"]), h["train_loss"][-1] < 0.1 * h["train_loss"][0]
    (20, True)
  """
  _check_epochs(epochs, batch_size)
  _check_model("model", model)
  _check_optimizer(optimizer)
  _check_functions(loss_fn, penalty, metrics_fn)
  if early_stopping is not None and not (callable(getattr(early_stopping, "init", None))
                                         and callable(getattr(early_stopping, "update", None))):
    raise TypeError(f"early_stopping must have init(params) and update(state, metric, "
                    f"params), e.g. regularizers.early_stopping(patience=5); got "
                    f"{type(early_stopping).__name__}.")
  if isinstance(key, bool) or not (isinstance(key, (int, np.integer)) or (
      isinstance(key, (jax.Array, np.ndarray)) and (
          jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == np.uint32))):
    raise TypeError(f"key must be a jax.random key or an int seed, got "
                    f"{type(key).__name__} {key!r:.60}.")
  train = _host_arrays("train_data", train_data)
  val = None if val_data is None else _as_batch(_host_arrays("val_data", val_data))
  n = _num_rows(train)
  key = jax.random.key(int(key)) if isinstance(key, (int, np.integer)) else key
  step = make_train_step(loss_fn, penalty=penalty, metrics_fn=metrics_fn)
  evaluate = make_eval_step(loss_fn, penalty=penalty, metrics_fn=metrics_fn)
  history: dict = {"train_loss": [], "stopped_epoch": None}
  es_state = None
  if early_stopping is not None:
    es_state = early_stopping.init(nnx.state(model, nnx.Param))
  bar = _epoch_bar(epochs, progress, "fit")
  for epoch, order in zip(bar, _row_orders(key, n)):
    model.train()
    batch_losses = []
    for start in range(0, n, batch_size):
      rows = order[start:start + batch_size]
      loss, _ = step(model, optimizer, _as_batch(train, rows))
      batch_losses.append(loss * len(rows))
    history["train_loss"].append(float(sum(batch_losses)) / n)
    if not np.isfinite(history["train_loss"][-1]):
      raise TrainingDivergedError(
          f"training diverged: the training loss is {history['train_loss'][-1]} in epoch "
          f"{epoch}; lower the learning rate or check loss_fn / penalty for NaN or inf.")
    monitored = history["train_loss"][-1]
    postfix = {"loss": f"{monitored:.4g}"}
    if val is not None:
      model.eval()
      val_loss, aux = evaluate(model, val)
      monitored = float(val_loss)
      history.setdefault("val_loss", []).append(monitored)
      for name, value in aux.items():
        if name not in ("loss", "data_loss", "penalty"):
          history.setdefault(f"val_{name}", []).append(float(value))
      postfix["val_loss"] = f"{monitored:.4g}"
    if progress:
      bar.set_postfix(postfix)
    if es_state is not None:
      es_state = early_stopping.update(es_state, jnp.asarray(monitored, jnp.float32),
                                       nnx.state(model, nnx.Param))
      if bool(es_state.should_stop):
        history["stopped_epoch"] = epoch
        break
  history["epochs_run"] = len(history["train_loss"])
  if es_state is not None:
    nnx.update(model, es_state.best_params)
    history["best_epoch"] = int(es_state.best_step)  # update calls count epochs from 0
  model.eval()
  return history
