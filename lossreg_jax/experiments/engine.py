"""The fold program of ``compare_losses``: Flax NNX models, every fold at once.

One candidate's R × k fold-models train in ONE compiled program. The model and
its ``nnx.Optimizer`` are ``nnx.split`` once into a graph definition and a state;
``train_fold`` is a pure function of that state (a ``lax.scan`` over epochs,
each a ``lax.scan`` over minibatches, each step ``nnx.merge``-ing the state and
running :func:`lossreg_jax.training.train_step`, the step every ``training``
step runs), and ``train_folds`` vmaps it over the folds' held-out masks,
minibatch orders and initial states. A bagged ensemble (``ensemble:M``) adds a
member axis inside the fold axis: member ``m`` weights the fold's training rows
by its bootstrap counts.

No held-out row reaches a fold's training: the minibatches of a fold are drawn
from its training rows only (padding rows are excluded through ``where=``), and
the feature (and regression target) standardization uses the fold's training
rows only. A held-out row enters only the held-out loss curve and the outputs.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lossreg_jax import regularizers, training

__all__ = ["NotAModuleError", "Program", "average_members", "fold_batches", "initial_states",
           "minibatch_keys", "shuffles", "spec_penalty", "training_batch", "train_folds",
           "train_one_fold", "train_sharded", "train_sweep"]


class Program(NamedTuple):
  """What one compiled fold program is specialized on (hashable, static under ``jit``).

  Attributes:
    graphdef: ``nnx.graphdef`` of ``(model, optimizer)``.
    loss_fn: ``loss_fn(outputs, targets, *, where, weights=None, **loss_params)``.
    penalty: Optional ``penalty(params) -> scalar`` of the user, added to the
      spec penalties (:func:`spec_penalty`).
    regression: Standardize the target with the training rows' mean and std
      for training, map predictions back to target units.
    squeeze: Drop the model outputs' last axis (one output per row).
    augment: ``(rotation, shift, zoom, flip)`` of ``regularizers.random_affine``
      for image minibatches, or None.
    patience: Early stopping's patience in epochs (monitoring the loss on the
      fold's inner validation rows), or None.
    num_classes: Classes of a multiclass task (mixup mixes one-hot targets).
    standardize: Standardize the inputs with the fold's training rows (else
      the model sees them as given).
  """

  graphdef: Any
  loss_fn: Callable
  penalty: Callable | None
  regression: bool
  squeeze: bool
  augment: tuple | None = None
  patience: int | None = None
  num_classes: int = 0
  standardize: bool = True


def spec_penalty(params, penalties: dict) -> jax.Array:
  """``l2`` / ``l1`` / ``elastic`` spec terms on the weight matrices (never biases).

  ``penalties`` maps a term's name to its traced parameters, so specs that
  differ only in strengths share one compiled program.
  """
  mask = regularizers.decay_mask(params)
  total = jnp.zeros((), jnp.float32)
  if "l2" in penalties:
    total += penalties["l2"]["strength"] * regularizers.l2_penalty(params, mask=mask)
  if "l1" in penalties:
    total += penalties["l1"]["strength"] * regularizers.l1_penalty(params, mask=mask)
  if "elastic" in penalties:
    total += regularizers.elastic_net_penalty(params, mask=mask, **penalties["elastic"])
  return total


def standardize(X: jax.Array, train: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``((X - mean) / std, mean, std)`` with the statistics of the ``train`` rows only.

  Per column for ``(n, d)``; per channel (over rows, height and width) for
  images ``(n, H, W, C)``. A constant column gets (and returns) std 1.
  """
  axes = (0,) if X.ndim == 2 else tuple(range(X.ndim - 1))
  w = jnp.broadcast_to(train.astype(X.dtype).reshape((-1,) + (1,) * (X.ndim - 1)), X.shape)
  count = jnp.sum(w, axis=axes, keepdims=True)
  mean = jnp.sum(w * X, axis=axes, keepdims=True) / count
  std = jnp.sqrt(jnp.sum(w * jnp.square(X - mean), axis=axes, keepdims=True) / count)
  std = jnp.where(std > 0, std, 1)
  return (X - mean) / std, mean, std


def training_batch(program: Program, key, x, t, data: dict):
  """Data-side regularizers on a training minibatch: augment, noise, mixup.

  Only training minibatches pass here; the held-out rows, the inner
  validation rows and every prediction see the inputs as they are. With mixup
  the targets become floats: one-hot rows for a multiclass task, ``(batch,)``
  mixed labels or targets otherwise (every built-in loss accepts them).
  """
  k_aug, k_noise, k_mix = jax.random.split(key, 3)
  if program.augment is not None:
    rotation, shift, zoom, flip = program.augment
    x = regularizers.random_affine(  # draws one transformation per image
        k_aug, x, rotation_range=rotation,
        width_shift_range=shift, height_shift_range=shift, zoom_range=zoom,
        horizontal_flip=bool(flip))
  if "noise" in data:
    x = regularizers.gaussian_noise(k_noise, x, stddev=data["noise"]["stddev"])
  if "mixup" in data:
    soft = (jax.nn.one_hot(t, program.num_classes) if program.num_classes else
            t.astype(x.dtype)[:, None])
    x, soft = regularizers.mixup(k_mix, x, soft, alpha=data["mixup"]["alpha"])
    t = soft if program.num_classes else soft[:, 0]
  return x, t


def minibatch_keys(key, batches) -> jax.Array:
  """The data-side regularizers' key of every minibatch: ``(epochs, n_batches)``."""
  return jax.random.split(key, batches.shape[:2])


def _predict(program: Program, state, X):
  model, _ = nnx.merge(program.graphdef, state)
  model.eval()  # dropout off, batch statistics frozen
  z = model(X)
  return z[..., 0] if program.squeeze else z


def train_fold(test_mask, batches, valid, state, weights, X, y, hyper, key=None,
               val_mask=None, *, program: Program):
  """Trains one fold-model from ``state`` on the rows outside ``test_mask``.

  Args:
    test_mask: ``(n,)`` bool, the fold's held-out rows.
    batches: ``(epochs, n_batches, batch_size)`` int32 row indices, drawn
      from the fold's training rows; ``valid`` flags the padding (False).
    state: ``nnx.state((model, optimizer))``.
    weights: ``(n,)`` per-row loss weights (an ensemble member's bootstrap
      counts) or None. The minibatch loss stays ``reduction="mean"``.
    X, y: All rows; ``y`` int32 labels or float32 targets (or a pytree of
      them, e.g. ``{"labels", "boxes"}`` for a two-head model).
    hyper: ``{"loss": {...}, "penalties": {...}, "data": {...}}`` traced scalars.
    key: The fold's key for the data-side regularizers (None without them).
    val_mask: ``(n,)`` bool inner validation rows for early stopping, or None.
    program: The static part (:class:`Program`).

  Returns:
    ``(outputs, train_curve, held_out_curve)``: the outputs of every row
    (logits, or for regression predictions in target units), ``(n,)`` or
    ``(n, C)``; each epoch's mean minibatch objective (loss plus penalty);
    each epoch's data loss on the held-out rows (no penalty, no dropout).
    With early stopping the model is the best epoch's and both curves stay
    flat after the stop.
  """
  train = ~test_mask
  Xs = standardize(X, train)[0] if program.standardize else X
  if program.regression:  # losses see the target standardized with the training rows
    ys, y_mean, y_std = standardize(y[:, None], train)
    y, y_mean, y_std = ys[:, 0], y_mean[0, 0], y_std[0, 0]
  squeeze = (lambda z: z[..., 0]) if program.squeeze else (lambda z: z)
  data = hyper.get("data", {})

  def loss(z, t, **kw):
    value = program.loss_fn(squeeze(z), t, **kw, **hyper["loss"])
    if jnp.shape(value) != ():  # checked while tracing: a user's loss must reduce
      raise ValueError(f"the loss {getattr(program.loss_fn, '__name__', program.loss_fn)!r} "
                       f"must return a scalar, got shape {jnp.shape(value)}.")
    return value

  def penalty(params):
    total = spec_penalty(params, hyper["penalties"])
    return total if program.penalty is None else total + program.penalty(params)

  def step(state, inputs):
    rows, ok, k = inputs
    model, optimizer = nnx.merge(program.graphdef, state)
    x, t = Xs[rows], jax.tree.map(lambda a: a[rows], y)  # y may be a dict of targets
    if k is not None:
      x, t = training_batch(program, k, x, t, data)
    batch = {"inputs": x, "targets": t, "where": ok & train[rows]}
    if weights is not None:
      batch["weights"] = weights[rows]
    total, *_ = training.train_step(model, optimizer, batch, loss_fn=loss, penalty=penalty)
    return nnx.state((model, optimizer)), total

  data_loss = lambda state, where: program.loss_fn(_predict(program, state, Xs), y,
                                                   where=where, **hyper["loss"])
  stopper = (None if program.patience is None else
             regularizers.early_stopping(patience=program.patience))

  def epoch(carry, inputs):
    state, es, last = carry
    new, values = jax.lax.scan(step, state, inputs)
    curve = (values.mean(), data_loss(new, test_mask))
    if stopper is None:
      return (new, es, curve), curve
    stopped = es.should_stop  # after the stop: the state and the curves stay
    new, curve = jax.tree.map(lambda a, b: jnp.where(stopped, a, b), (state, last),
                              (new, curve))
    es = stopper.update(es, data_loss(new, val_mask), new)
    return (new, es, curve), curve

  keys = None if key is None else minibatch_keys(key, batches)
  es = None if stopper is None else stopper.init(state)
  last = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
  (state, es, _), (train_curve, held_out_curve) = jax.lax.scan(
      epoch, (state, es, last), (batches, valid, keys))
  if es is not None:
    state = es.best_params
  z = _predict(program, state, Xs)
  if program.regression:
    z = z * y_std + y_mean
  return z, train_curve, held_out_curve


def _vmapped(ensemble: bool, program: Program):
  fold = functools.partial(train_fold, program=program)
  if ensemble:  # members share the fold's mask, minibatches and validation rows
    fold = jax.vmap(fold, in_axes=(None, None, None, 0, 0, None, None, None, 0, None))
  return fold


def _over_values(run):
  """``run`` vmapped over a leading value axis of ``hyper``'s leaves (a sweep)."""
  return jax.vmap(run, in_axes=(None,) * 7 + (0, None, None))


def _all_folds(test_masks, batches, valid, states, weights, X, y, hyper, keys, val_masks, *,
               program):
  fold = _vmapped(weights is not None and weights.ndim == 3, program)
  axis = lambda a: None if a is None else 0
  return jax.vmap(fold, in_axes=(0, 0, 0, 0, axis(weights), None, None, None, axis(keys),
                                 axis(val_masks)))(
      test_masks, batches, valid, states, weights, X, y, hyper, keys, val_masks)


@functools.partial(jax.jit, static_argnames=("program",))
def train_folds(test_masks, batches, valid, states, weights, X, y, hyper, keys=None,
                val_masks=None, *, program):
  """All folds (and members) as one program: ``train_fold`` vmapped over the folds.

  ``states`` leaves, ``weights`` (``(folds, n)`` or None; an ensemble:
  ``(folds, members, n)``), ``keys`` (``(folds,)``, an ensemble ``(folds,
  members)``, or None) and ``val_masks`` (``(folds, n)`` or None) carry the
  leading fold (and member) axes; the outputs have them too.
  """
  return _all_folds(test_masks, batches, valid, states, weights, X, y, hyper, keys,
                    val_masks, program=program)


@functools.partial(jax.jit, static_argnames=("program",))
def train_sweep(test_masks, batches, valid, states, weights, X, y, hyper, keys=None,
                val_masks=None, *, program):
  """:func:`train_folds` vmapped over a leading value axis of ``hyper``'s leaves.

  Candidates that differ only in traced numbers (a sweep such as
  ``focal:gamma=0|1|2``) train as ONE program; outputs get a leading value axis.
  """
  return _over_values(functools.partial(_all_folds, program=program))(
      test_masks, batches, valid, states, weights, X, y, hyper, keys, val_masks)


def _pad_folds(tree, pad: int):
  """Appends ``pad`` copies of fold 0 along every leaf's leading axis."""
  return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]), tree)


@functools.partial(jax.jit, static_argnames=("program", "mesh", "sweep", "gather"))
def _sharded(per_fold, X, y, hyper, *, program, mesh, sweep, gather):
  (axis,) = mesh.axis_names
  P = jax.sharding.PartitionSpec

  def local(per_fold, X, y, hyper):
    masks, batches, valid, states, weights, keys, val_masks = per_fold
    run = functools.partial(_all_folds, program=program)
    if sweep:
      run = _over_values(run)
    out = run(masks, batches, valid, states, weights, X, y, hyper, keys, val_masks)
    if gather:  # every process gets every fold's outputs (one collective per run)
      out = jax.tree.map(lambda a: jax.lax.all_gather(a, axis, axis=int(sweep), tiled=True),
                         out)
    return out

  out_spec = P() if gather else (P(None, axis) if sweep else P(axis))
  return jax.shard_map(local, mesh=mesh, in_specs=(P(axis), P(), P(), P()),
                       out_specs=out_spec, check_vma=False)(per_fold, X, y, hyper)


def _global(tree, sharding):
  """Arrays equal on every process (built from the same seed) as global arrays."""
  return jax.tree.map(lambda a: jax.make_array_from_callback(
      a.shape, sharding, lambda index, a=a: a[index]), tree)


def train_sharded(test_masks, batches, valid, states, weights, X, y, hyper, keys=None,
                  val_masks=None, *, program, mesh, sweep=False):
  """:func:`train_folds` (or :func:`train_sweep`) with the folds split over ``mesh``.

  The fold axis (repeats × folds) is padded to a multiple of the mesh's size
  with copies of fold 0 and split over its one axis with ``shard_map``: each
  device trains its folds with no communication (folds are independent), and
  the outputs of the real folds equal the unsharded ones. ``X``, ``y`` and
  ``hyper`` are replicated. A mesh over the devices of several processes
  (``lossreg_jax.distributed``) works the same: every process computes the
  same inputs from the same seed, they become global arrays, each process
  trains the folds of its devices, and the outputs are gathered so that every
  process returns all of them.
  """
  n = test_masks.shape[0]
  pad = -n % mesh.devices.size
  per_fold = (test_masks, batches, valid, states, weights, keys, val_masks)
  if pad:  # dummy folds: copies of fold 0, dropped below
    per_fold = _pad_folds(per_fold, pad)
  multi = len({d.process_index for d in mesh.devices.flat}) > 1
  if multi:
    P = jax.sharding.PartitionSpec
    per_fold = _global(per_fold, jax.sharding.NamedSharding(mesh, P(mesh.axis_names[0])))
    X, y, hyper = _global((X, y, hyper), jax.sharding.NamedSharding(mesh, P()))
  out = _sharded(per_fold, X, y, hyper, program=program, mesh=mesh, sweep=sweep,
                 gather=multi)
  if multi:  # replicated: read this process's copy
    out = jax.tree.map(lambda a: jnp.asarray(a.addressable_data(0)), out)
  return jax.tree.map(lambda a: a[:, :n] if sweep else a[:n], out)


@functools.partial(jax.jit, static_argnames=("program",))
def train_one_fold(test_mask, batches, valid, state, weights, X, y, hyper, key=None,
                   val_mask=None, *, program):
  """One fold (with its members), compiled alone: ``vmap_folds=False`` loops over it."""
  return _vmapped(weights is not None and weights.ndim == 2, program)(
      test_mask, batches, valid, state, weights, X, y, hyper, key, val_mask)


@functools.partial(jax.jit, static_argnames=("regression",))
def average_members(z, *, regression: bool):
  """Members' outputs ``(folds, M, n[, C])`` -> the ensemble's ``(folds, n[, C])``.

  Regression: the mean prediction. Classification: logits whose probabilities
  are the members' mean probabilities, so every metric treats the ensemble as
  a single model: one logit per row gives ``log p - log(1 - p)`` with ``p`` the
  mean of the members' sigmoids; ``C`` logits give ``log`` of the mean
  softmax. Both use ``logsumexp`` of log-probabilities (finite for finite
  logits).
  """
  if regression:
    return z.mean(axis=1)
  log_m = jnp.log(z.shape[1])
  if z.ndim == 3:  # one logit per row: P(y=1) = mean sigmoid
    log_p = jax.nn.logsumexp(jax.nn.log_sigmoid(z), axis=1) - log_m
    log_q = jax.nn.logsumexp(jax.nn.log_sigmoid(-z), axis=1) - log_m
    return log_p - log_q
  return jax.nn.logsumexp(jax.nn.log_softmax(z, axis=-1), axis=1) - log_m


def shuffles(n: int, epochs: int, seed) -> np.ndarray:
  """Host-side row orders: ``(epochs, n)``, one permutation of ``range(n)`` per epoch."""
  rng = np.random.default_rng(seed)
  return np.stack([rng.permutation(n) for _ in range(epochs)]).astype(np.int32)


def fold_batches(orders: np.ndarray, held_out: np.ndarray, batch_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Each fold's minibatches: its training rows in its repeat's order, padded.

  Args:
    orders: ``(epochs, n)`` row orders shared by the folds, or ``(folds,
      epochs, n)``, one per fold (its repeat's; shared by every candidate, so
      the comparison is paired).
    held_out: ``(folds, n)`` bool masks of the folds.
    batch_size: Rows per minibatch.

  Returns:
    ``(rows, valid)``, each ``(folds, epochs, n_batches, batch_size)``:
    ``n_batches = ceil(max_train / batch_size)``; padding entries repeat the
    fold's first training row with ``valid`` False (so that no held-out row
    sits in a minibatch, not even as padding: batch statistics and mixup
    partners come from training rows only).
  """
  folds = held_out.shape[0]
  orders = np.broadcast_to(orders, (folds,) + orders.shape[-2:])
  epochs = orders.shape[1]
  n_train = int((~held_out).sum(axis=1).max())
  n_batches = math.ceil(n_train / batch_size)
  rows = np.zeros((folds, epochs, n_batches * batch_size), np.int32)
  valid = np.zeros(rows.shape, bool)
  for f, (mask, fold_orders) in enumerate(zip(held_out, orders)):
    for e, order in enumerate(fold_orders):
      kept = order[~mask[order]]
      rows[f, e] = kept[0]
      rows[f, e, :kept.size], valid[f, e, :kept.size] = kept, True
  shape = (folds, epochs, n_batches, batch_size)
  return rows.reshape(shape), valid.reshape(shape)


class NotAModuleError(TypeError):
  """A model factory returned something other than an ``nnx.Module``."""


@functools.lru_cache(maxsize=64)
def _builder(model_fn: Callable[[nnx.Rngs], nnx.Module], tx):
  """``(graphdef, build)``: ``build(init_keys, dropout_keys)`` makes the states of a
  batch of models at once, compiled (cached per factory and optimizer)."""
  def pair(ik, dk):
    model = model_fn(nnx.Rngs(ik, dropout=dk))
    if not isinstance(model, nnx.Module):
      raise NotAModuleError(f"returned {type(model).__name__}.")
    return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

  key = jax.random.key(0)
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: pair(key, key)))
  build = jax.jit(jax.vmap(lambda ik, dk: nnx.state(pair(ik, dk))))
  return graphdef, build


def initial_states(model_fn: Callable[[nnx.Rngs], nnx.Module], tx, init_keys, dropout_keys,
                   *, folds: int, members: int = 1):
  """``(graphdef, states)``: one model and optimizer per repeat (and member).

  Model ``r`` (member ``m``) is built by ``model_fn(nnx.Rngs(key, dropout=dk))``
  with ``key = init_keys[r]`` and ``dk = dropout_keys[r]`` (member ``m > 0``:
  both folded in with ``m``); every fold of a repeat starts from its model. The
  models are built by one compiled, vmapped program. The states' leaves get a
  leading ``(R * folds,)`` axis, or ``(R * folds, members)`` when ``members > 1``.

  Raises:
    NotAModuleError: if ``model_fn`` returns something else than an ``nnx.Module``.
  """
  member = lambda k, m: k if m == 0 else jax.random.fold_in(k, m)
  graphdef, build = _builder(model_fn, tx)
  iks = jnp.stack([member(k, m) for k in init_keys for m in range(members)])
  dks = jnp.stack([member(k, m) for k in dropout_keys for m in range(members)])
  shape = (len(init_keys), members) if members > 1 else (len(init_keys),)
  states = jax.tree.map(lambda a: jnp.repeat(a.reshape(shape + a.shape[1:]), folds, axis=0),
                        build(iks, dks))
  return graphdef, states
