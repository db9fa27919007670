"""Bagged ensembles of Flax NNX models, trained as one vmapped program.

Public names are reached through ``lossreg_jax.training``. Bagging (Breiman
1996) is the seed's implicit regularization by averaging: each member trains on
a bootstrap resample of the rows. Here a resample is a vector of per-sample
counts (how often each row was drawn, summing to ``n``) used as loss weights,
so every member sees the same batch tensor with a different weighting, and the
members are one ``nnx.vmap`` axis of stacked parameters: one compiled step
trains all of them.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from lossreg_jax.training.fit import (_as_batch, _check_epochs, _epoch_bar, _host_arrays,
                                      _num_rows, _row_orders)
from lossreg_jax.training.step import LossFn, MetricsFn, _aux, _objective, _step, _unpack

__all__ = [
    "bootstrap_weights",
    "ensemble_member",
    "fit_ensemble",
    "make_ensemble",
    "make_ensemble_optimizer",
    "make_ensemble_train_step",
    "predict_ensemble",
]


def _check_members(num_members) -> int:
  if isinstance(num_members, bool) or not isinstance(num_members, (int, np.integer)) \
      or num_members < 1:
    raise ValueError(f"num_members must be an int >= 1, got {num_members!r}.")
  return int(num_members)


def _as_key(key) -> jax.Array:
  return jax.random.key(key) if isinstance(key, (int, np.integer)) else key


def bootstrap_weights(key: jax.Array | int, n: int, *, num_members: int) -> jax.Array:
  """Draws one bootstrap resample of ``n`` rows per member, as per-row counts.

  Member ``m`` draws ``n`` row indices uniformly with replacement; its weight
  for row ``i`` is how often ``i`` was drawn (a multinomial count), so every
  row of weights sums to exactly ``n`` and about ``1/e`` of the rows get weight
  0 (held out of that member: its out-of-bag rows).

  Args:
    key: ``jax.random`` key or int seed.
    n: Number of rows.
    num_members: Number of resamples.

  Returns:
    Float32 counts shaped ``(num_members, n)``.

  Raises:
    ValueError: if ``n`` or ``num_members`` is not a positive int.

  Examples:
    >>> w = bootstrap_weights(0, 5, num_members=3)
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
  """
  num_members = _check_members(num_members)
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f"n must be an int >= 1, got {n!r}.")
  draws = jax.random.randint(_as_key(key), (num_members, n), 0, n)
  return jax.vmap(lambda d: jnp.bincount(d, length=n))(draws).astype(jnp.float32)


def make_ensemble(model_fn: Callable[[nnx.Rngs], nnx.Module], *, num_members: int,
                  key: jax.Array | int) -> nnx.Module:
  """Builds ``num_members`` models as one module with stacked parameters.

  Member ``m`` is ``model_fn(nnx.Rngs(jax.random.split(key, num_members)[m]))``
  (its initial parameters and its dropout stream come from that key), built
  under ``nnx.vmap(in_axes=0, out_axes=0)`` as in Flax NNX's ensemble guide:
  every ``nnx.Variable`` gains a leading member axis.

  Args:
    model_fn: ``model_fn(rngs) -> nnx.Module``.
    num_members: Number of members.
    key: ``jax.random`` key or int seed.

  Returns:
    The stacked module; :func:`ensemble_member` takes one member out.

  Raises:
    ValueError: if ``num_members`` is not a positive int.

  Examples:
    >>> from flax import nnx
    >>> ens = make_ensemble(lambda r: nnx.Linear(2, 1, rngs=r), num_members=4, key=0)
    >>> ens.kernel.shape
    (4, 2, 1)
  """
  num_members = _check_members(num_members)
  keys = jax.random.split(_as_key(key), num_members)
  create = nnx.vmap(lambda k: model_fn(nnx.Rngs(k)), in_axes=0, out_axes=0)
  return create(keys)


def make_ensemble_optimizer(ensemble: nnx.Module, tx: optax.GradientTransformation, *,
                            wrt: Any = nnx.Param) -> nnx.Optimizer:
  """Builds one ``nnx.Optimizer`` per member, stacked like the ensemble.

  Each member has its own optimizer state and step count, so transforms that
  look across a whole gradient (``optax.clip_by_global_norm``) see one member's
  gradient only, exactly as for a model trained alone.

  Args:
    ensemble: From :func:`make_ensemble`.
    tx: The optax transformation (build it once: see ``make_train_step``).
    wrt: Filter of the trained variables.

  Returns:
    The stacked ``nnx.Optimizer``.

  Examples:
    >>> import optax
    >>> from flax import nnx
    >>> ens = make_ensemble(lambda r: nnx.Linear(2, 1, rngs=r), num_members=3, key=0)
    >>> make_ensemble_optimizer(ens, optax.sgd(0.1)).step.shape
    (3,)
  """
  create = nnx.vmap(lambda m: nnx.Optimizer(m, tx, wrt=wrt), in_axes=0, out_axes=0)
  return create(ensemble)


def ensemble_member(ensemble: nnx.Module, index: int) -> nnx.Module:
  """Returns member ``index`` as a standalone module (a copy of its state).

  Args:
    ensemble: From :func:`make_ensemble`.
    index: Member index.

  Returns:
    A module of the type ``model_fn`` builds, with that member's variables.

  Examples:
    >>> from flax import nnx
    >>> ens = make_ensemble(lambda r: nnx.Linear(2, 1, rngs=r), num_members=3, key=0)
    >>> ensemble_member(ens, 2).kernel.shape
    (2, 1)
  """
  graphdef, state = nnx.split(ensemble)
  return nnx.merge(graphdef, jax.tree.map(lambda a: a[index], state))


def make_ensemble_train_step(
    loss_fn: LossFn,
    *,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics_fn: MetricsFn | None = None,
) -> Callable[..., tuple[jax.Array, dict]]:
  """Builds ``step(ensemble, optimizer, batch, member_weights) -> (loss, aux)``.

  One ``nnx.jit`` program runs ``make_train_step``'s objective and update for
  every member under ``nnx.vmap``: the batch is shared (``in_axes=None``) and
  member ``m`` weights its rows by ``member_weights[m]`` (times the batch's own
  ``weights``, if any), so its gradient is that of
  ``loss_fn(outputs, targets, weights=w_m)``. Each member advances its own
  dropout stream.

  Args:
    loss_fn: As in ``make_train_step``; it must accept ``weights=``.
    penalty: As in ``make_train_step`` (per member).
    metrics_fn: As in ``make_train_step``.

  Returns:
    ``step`` returning the per-member total loss ``(num_members,)`` and ``aux``
    whose values have a leading member axis.

  Examples:
    >>> import optax
    >>> from flax import nnx
    >>> from lossreg_jax import losses
    >>> ens = make_ensemble(lambda r: nnx.Linear(2, 1, rngs=r), num_members=3, key=0)
    >>> opt = make_ensemble_optimizer(ens, optax.sgd(0.1))
    >>> step = make_ensemble_train_step(lambda z, y, **kw: losses.squared_error(z[:, 0], y, **kw))
    >>> loss, aux = step(ens, opt, (jnp.ones((4, 2)), jnp.zeros(4)), jnp.ones((3, 4)))
    >>> loss.shape
    (3,)
  """
  objective = _objective(loss_fn, penalty)

  def member_step(model, optimizer, inputs, targets, weights, where):
    total, data, reg, outputs = _step(objective, model, optimizer, inputs, targets, weights,
                                      where)
    return total, _aux(total, data, reg, outputs, targets, metrics_fn)

  vmapped = nnx.vmap(member_step, in_axes=(0, 0, None, None, 0, None), out_axes=0)

  @nnx.jit
  def step(ensemble, optimizer, batch, member_weights):
    inputs, targets, weights, where = _unpack(batch)
    member_weights = jnp.asarray(member_weights, jnp.float32)
    n = jax.tree.leaves(inputs)[0].shape[0]
    if member_weights.ndim != 2 or member_weights.shape[1] != n:
      raise ValueError(f"member_weights must be shaped (num_members, batch) = (M, {n}), "
                       f"got {member_weights.shape}.")
    if weights is not None:
      member_weights = member_weights * jnp.asarray(weights, jnp.float32)[None]
    return vmapped(ensemble, optimizer, inputs, targets, member_weights, where)

  return step


def predict_ensemble(ensemble: nnx.Module, inputs: Any, *,
                     link: Callable[[jax.Array], jax.Array] = jax.nn.softmax) -> jax.Array:
  """Averages the members' probabilities: ``mean_m link(member_m(inputs))``.

  Call ``ensemble.eval()`` first so that dropout is off. Probabilities are
  averaged, not logits: the ensemble's log-loss is then at most the mean of
  its members' log-losses (Jensen's inequality, ``-log`` being convex).

  Args:
    ensemble: From :func:`make_ensemble`.
    inputs: Model inputs (shared by all members).
    link: Maps one member's outputs to probabilities (``jax.nn.softmax`` for
      class logits, ``jax.nn.sigmoid`` for binary logits, ``lambda z: z`` to
      average raw outputs as for regression).

  Returns:
    The averaged ``link`` outputs, shaped as one member's.

  Examples:
    >>> from flax import nnx
    >>> ens = make_ensemble(lambda r: nnx.Linear(2, 3, rngs=r), num_members=4, key=0)
    >>> p = predict_ensemble(ens, jnp.ones((5, 2)))
    >>> p.shape, bool(jnp.allclose(p.sum(-1), 1.0))
    ((5, 3), True)
  """
  forward = nnx.vmap(lambda m, x: link(m(x)), in_axes=(0, None), out_axes=0)
  return jnp.mean(forward(ensemble, inputs), axis=0)


def fit_ensemble(
    ensemble: nnx.Module,
    optimizer: nnx.Optimizer,
    train_data: Any,
    *,
    loss_fn: LossFn,
    epochs: int,
    batch_size: int,
    key: jax.Array | int,
    member_weights: ArrayLike | None = None,
    penalty: Callable[[Any], jax.Array] | None = None,
    metrics_fn: MetricsFn | None = None,
    progress: bool = True,
) -> dict:
  """Trains a bagged ensemble in place; every member sees the same minibatches.

  ``key`` is split into a shuffling key (used as ``fit`` uses its key: one
  permutation of the rows per epoch, shared by all members) and, when
  ``member_weights`` is None, a bootstrap key for
  ``bootstrap_weights(key, n, num_members=M)``. With ``member_weights`` given,
  member ``m`` follows exactly the trajectory that ``fit``-style training of
  that member alone, with ``weights = member_weights[m]``, would follow.

  Args:
    ensemble: From :func:`make_ensemble` (in-place updates).
    optimizer: From :func:`make_ensemble_optimizer`.
    train_data: ``(inputs, targets[, weights])`` or a dict, as for ``fit``.
    loss_fn: As in ``make_train_step``; it must accept ``weights=``.
    epochs: Passes over the data.
    batch_size: Rows per step.
    key: ``jax.random`` key or int seed.
    member_weights: Optional per-member row weights ``(M, n)``; default a
      bootstrap resample per member.
    penalty: As in ``make_train_step``.
    metrics_fn: As in ``make_train_step``.
    progress: Show a tqdm progress bar over epochs.

  Returns:
    ``{"train_loss": list of per-member epoch losses (each a list of M floats,
    the per-row mean), "member_weights": (M, n) array, "epochs_run": int}``.

  Raises:
    ValueError: for bad sizes or a malformed ``train_data``.

  Examples:
    >>> import optax
    >>> from flax import nnx
    >>> from lossreg_jax import losses
    >>> ens = make_ensemble(lambda r: nnx.Linear(3, 1, rngs=r), num_members=4, key=0)
    >>> opt = make_ensemble_optimizer(ens, optax.adam(0.1))
    >>> X = jax.random.normal(jax.random.key(1), (64, 3)); y = X @ jnp.array([1.0, -2.0, 0.5])
    >>> mse = lambda z, t, **kw: losses.squared_error(z[:, 0], t, **kw)
    >>> h = fit_ensemble(ens, opt, (X, y), loss_fn=mse, epochs=20, batch_size=16, key=0,
    ...                  progress=False)
    >>> len(h["train_loss"]), len(h["train_loss"][0]), h["member_weights"].shape
    (20, 4, (4, 64))
  """
  _check_epochs(epochs, batch_size)
  train = _host_arrays("train_data", train_data)
  n = _num_rows(train)
  num_members = jax.tree.leaves(nnx.state(ensemble, nnx.Param))[0].shape[0]
  shuffle_key, boot_key = jax.random.split(_as_key(key))
  if member_weights is None:
    member_weights = bootstrap_weights(boot_key, n, num_members=num_members)
  member_weights = np.asarray(member_weights, np.float32)
  if member_weights.shape != (num_members, n):
    raise ValueError(f"member_weights must be shaped (num_members, n) = ({num_members}, {n}), "
                     f"got {member_weights.shape}.")
  step = make_ensemble_train_step(loss_fn, penalty=penalty, metrics_fn=metrics_fn)
  history: dict = {"train_loss": []}
  bar = _epoch_bar(epochs, progress, "fit_ensemble")
  for _, order in zip(bar, _row_orders(shuffle_key, n)):
    ensemble.train()
    total = np.zeros(num_members)
    for start in range(0, n, batch_size):
      rows = order[start:start + batch_size]
      loss, _ = step(ensemble, optimizer, _as_batch(train, rows), member_weights[:, rows])
      total += np.asarray(loss) * len(rows)
    history["train_loss"].append((total / n).tolist())
  history["member_weights"] = jnp.asarray(member_weights)
  history["epochs_run"] = len(history["train_loss"])
  ensemble.eval()
  return history
