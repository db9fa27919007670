"""The compiled training program behind ``compare_losses``: every fold at once.

One spec's R × k fold-models train in ONE compiled program: ``_train_folds``
``vmap``s the whole training run (a ``lax.scan`` over epochs, each a
``lax.scan`` over minibatches) over the folds' held-out masks, initial
parameters and shuffles. Held-out rows are excluded from every minibatch
through the losses' ``where=`` argument, so each fold trains on its own rows.

A bagged ensemble (spec term ``ensemble:M``) adds a member axis inside the
fold axis (``train_ensemble_folds``): member ``m`` of a fold trains on a
bootstrap resample of the fold's training rows, given as per-row counts used
as the loss's ``weights=``; ``average_members`` combines the members'
held-out outputs by averaging their probabilities.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossreg_jax import losses, regularizers


def init_params(key, n_features: int, n_outputs: int, hidden: int) -> dict:
  """Glorot-uniform MLP weights (zeros for the linear model ``hidden=0``)."""
  init = jax.nn.initializers.glorot_uniform()
  if hidden == 0:  # logistic / softmax / linear regression
    return {"w": jnp.zeros((n_features, n_outputs)), "b": jnp.zeros((n_outputs,))}
  k1, k2 = jax.random.split(key)
  return {"w1": init(k1, (n_features, hidden)), "b1": jnp.zeros((hidden,)),
          "w2": init(k2, (hidden, n_outputs)), "b2": jnp.zeros((n_outputs,))}


def _forward(params, X, *, key=None, dropout_rate=None):
  if "w" in params:
    out = X @ params["w"] + params["b"][None]
  else:
    h = jax.nn.relu(X @ params["w1"] + params["b1"][None])
    if key is not None and dropout_rate is not None:
      h = regularizers.dropout(key, h, rate=dropout_rate)
    out = h @ params["w2"] + params["b2"][None]
  return out[:, 0] if out.shape[1] == 1 else out


def _data_loss(name: str, z, y, where, hyper: dict, weights=None):
  """The spec's loss; regression targets ``y`` are already standardized.

  ``weights`` (per row, or None) are bootstrap counts; the reduction stays
  ``"mean"``: the weighted sum over the included rows divided by their number.
  """
  if weights is not None:
    hyper = {**hyper, "weights": weights}
  if name == "bce":
    return losses.sigmoid_binary_cross_entropy(z, y.astype(z.dtype), where=where, **hyper)
  if name == "focal":
    return losses.sigmoid_focal_loss(z, y.astype(z.dtype), where=where, **hyper)
  if name == "hinge":  # labels {0, 1} -> targets {-1, 1}
    return losses.hinge_loss(z, 2 * y.astype(z.dtype) - 1, where=where, **_w(hyper))
  if name == "ce":
    return losses.softmax_cross_entropy_with_integer_labels(z, y, where=where, **hyper)
  if name == "mse":
    return losses.squared_error(z, y, where=where, **_w(hyper))
  if name == "mae":
    return losses.absolute_error(z, y, where=where, **_w(hyper))
  if name == "huber":
    return losses.huber_loss(z, y, delta=hyper["delta"], where=where, **_w(hyper))
  if name == "log_cosh":
    return losses.log_cosh(z, y, where=where, **_w(hyper))
  if name == "quantile":
    return losses.quantile_loss(z, y, quantile=hyper["q"], where=where, **_w(hyper))
  if name == "asymmetric":
    return losses.asymmetric_squared_error(z, y, under_weight=hyper["under"],
                                           over_weight=hyper["over"], where=where,
                                           **_w(hyper))
  raise ValueError(f"unknown loss {name!r}")  # unreachable: specs are checked first


def _w(hyper: dict) -> dict:
  return {"weights": hyper["weights"]} if "weights" in hyper else {}


def _penalty(params, penalties: dict):
  mask = regularizers.decay_mask(params)  # weight matrices only, never biases
  total = jnp.zeros(())
  if "l2" in penalties:
    total += penalties["l2"]["strength"] * regularizers.l2_penalty(params, mask=mask)
  if "l1" in penalties:
    total += penalties["l1"]["strength"] * regularizers.l1_penalty(params, mask=mask)
  if "elastic" in penalties:
    total += regularizers.elastic_net_penalty(params, mask=mask, **penalties["elastic"])
  return total


def _standardize(X, train):
  # Statistics of the fold's training rows only, so nothing leaks from the
  # held-out rows into the scaling.
  w = train.astype(X.dtype)[:, None]
  count = jnp.sum(w)
  mean = jnp.sum(w * X, axis=0, keepdims=True) / count
  std = jnp.sqrt(jnp.sum(w * jnp.square(X - mean), axis=0, keepdims=True) / count)
  return (X - mean) / jnp.where(std > 0, std, 1), mean, std


def train_fold(test_mask, batches, valid, params, key, X, y, hyper, weights=None, *,
               loss_name, learning_rate, regression):
  """Trains on ``~test_mask``; returns outputs for all rows and two loss curves.

  ``weights`` (``(n,)`` or None) weight each training row's loss (an ensemble
  member's bootstrap counts); the minibatch loss stays ``reduction="mean"``,
  ``sum_i w_i l_i / (number of training rows in the minibatch)``. Weights of 1
  on every training row therefore give exactly the unweighted run, and an
  epoch's summed objective is that of the resampled data set (row ``i``
  repeated ``w_i`` times) at the single model's scale. (``"weighted_mean"``
  would instead divide each minibatch by its own drawn count, so the rows of a
  minibatch that happened to be drawn often would count less per draw.) The
  feature (and regression target) standardization uses the fold's training
  rows unweighted, shared by all members.

  ``hyper`` holds every numeric spec value as a traced scalar
  (``{"loss": {...}, "penalties": {name: {...}}}``), so specs that differ only
  in numbers (``bce`` and ``bce:positive_weight=3``) share one compiled program.
  ``batches`` / ``valid`` are ``(epochs, n_batches, batch_size)`` row indices
  and padding flags, shuffled on the host.

  Returns:
    ``(outputs, train_curve, held_out_curve)``: the logits (or, for
    regression, the predictions in target units) of every row, shape ``(n,)``
    or ``(n, C)``; each epoch's mean minibatch objective (loss plus penalty);
    each epoch's data loss on the held-out rows (no penalty, no dropout).
  """
  train = ~test_mask
  Xs = _standardize(X, train)[0]
  if regression:  # losses see the target standardized with the training rows
    _, y_mean, y_std = _standardize(y[:, None], train)
    y_mean, y_std = y_mean[0, 0], jnp.where(y_std[0, 0] > 0, y_std[0, 0], 1)
    y = (y - y_mean) / y_std
  tx = optax.adam(learning_rate)
  rate = hyper["penalties"].get("dropout", {}).get("rate")
  epochs, n_batches, batch_size = batches.shape

  def objective(p, rows, mask, k):
    z = _forward(p, Xs[rows], key=k, dropout_rate=rate)
    w = None if weights is None else weights[rows]
    return _data_loss(loss_name, z, y[rows], mask, hyper["loss"], w) + _penalty(
        p, hyper["penalties"])

  def step(carry, inputs):
    p, state = carry
    rows, ok, k = inputs
    value, grads = jax.value_and_grad(objective)(p, rows, ok & train[rows], k)
    updates, state = tx.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), value

  def epoch(carry, inputs):
    carry, values = jax.lax.scan(step, carry, inputs)
    held_out = _data_loss(loss_name, _forward(carry[0], Xs), y, test_mask, hyper["loss"])
    return carry, (values.mean(), held_out)

  # Random keys only with dropout: random bits are costly to compile on CPU.
  keys = None if rate is None else jax.random.split(key, (epochs, n_batches))
  (params, _), (train_curve, held_out_curve) = jax.lax.scan(
      epoch, (params, tx.init(params)), (batches, valid, keys))
  z = _forward(params, Xs)
  if regression:
    z = z * y_std + y_mean
  return z, train_curve, held_out_curve


_STATIC = ("loss_name", "learning_rate", "regression")
# Compiled once per process for each static configuration and shape.


@functools.partial(jax.jit, static_argnames=_STATIC)
def train_folds(test_masks, batches, valid, params, keys, *shared, **static):
  """All folds as one program: ``train_fold`` vmapped over masks, shuffles, inits, keys."""
  fold = functools.partial(train_fold, **static)
  return jax.vmap(fold, in_axes=(0,) * 5 + (None,) * len(shared))(
      test_masks, batches, valid, params, keys, *shared)


train_one_fold = jax.jit(train_fold, static_argnames=_STATIC)


def _ensemble_fold(test_mask, batches, valid, params, keys, weights, X, y, hyper, **static):
  """One fold's members: ``train_fold`` vmapped over inits, dropout keys and weights."""
  fold = functools.partial(train_fold, **static)
  return jax.vmap(fold, in_axes=(None, None, None, 0, 0, None, None, None, 0))(
      test_mask, batches, valid, params, keys, X, y, hyper, weights)


@functools.partial(jax.jit, static_argnames=_STATIC)
def train_ensemble_folds(test_masks, batches, valid, params, keys, weights, X, y, hyper,
                         **static):
  """All folds of a bagged ensemble as one program: members vmapped inside folds.

  ``params`` leaves, ``keys`` and ``weights`` carry ``(folds, members)``
  leading axes (``weights``: ``(folds, members, n)`` bootstrap counts, 0 on
  the held-out rows); masks and shuffles ``(folds, ...)`` are shared by a
  fold's members. Returns ``train_fold``'s outputs with the axes
  ``(folds, members, ...)``.
  """
  fold = functools.partial(_ensemble_fold, **static)
  return jax.vmap(fold, in_axes=(0,) * 6 + (None,) * 3)(
      test_masks, batches, valid, params, keys, weights, X, y, hyper)


train_one_fold_ensemble = jax.jit(_ensemble_fold, static_argnames=_STATIC)


@functools.partial(jax.jit, static_argnames=("regression",))
def average_members(z, *, regression: bool):
  """Members' outputs ``(folds, M, n[, C])`` -> the ensemble's ``(folds, n[, C])``.

  Regression: the mean prediction. Classification: the returned outputs are
  logits whose probabilities are the members' mean probabilities, so that
  ``_scoring.decode`` and every metric treat the ensemble exactly as a single
  model: one logit per row gives ``log p - log(1 - p)`` with ``p`` the mean
  of the members' sigmoids; ``C`` logits give ``log`` of the mean softmax.
  Both are computed with ``logsumexp`` of log-probabilities, finite for finite
  logits, with ``sigmoid`` / ``softmax`` of the result equal to the mean
  probability up to rounding.
  """
  if regression:
    return z.mean(axis=1)
  log_m = jnp.log(z.shape[1])
  if z.ndim == 3:  # one logit per row: P(y=1) = mean sigmoid
    log_p = jax.nn.logsumexp(jax.nn.log_sigmoid(z), axis=1) - log_m
    log_q = jax.nn.logsumexp(jax.nn.log_sigmoid(-z), axis=1) - log_m
    return log_p - log_q
  return jax.nn.logsumexp(jax.nn.log_softmax(z, axis=-1), axis=1) - log_m


def shuffles(n: int, epochs: int, batch_size: int, seed: int) -> tuple[np.ndarray, ...]:
  """Host-side shuffles: ``(epochs, n_batches, batch_size)`` rows and validity flags."""
  rng = np.random.default_rng(seed)
  n_batches = math.ceil(n / batch_size)
  rows = np.zeros((epochs, n_batches * batch_size), np.int32)
  valid = np.zeros((epochs, n_batches * batch_size), bool)
  for e in range(epochs):
    rows[e, :n] = rng.permutation(n)
    valid[e, :n] = True  # the padding of the last batch is excluded via where=
  shape = (epochs, n_batches, batch_size)
  return rows.reshape(shape), valid.reshape(shape)
