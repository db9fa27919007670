"""Tests for lossreg_jax.training: NNX train step and fit."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lossreg_jax import losses, metrics, regularizers, training


class MLP(nnx.Module):

  def __init__(self, din, dout, *, rate=0.0, rngs):
    self.hidden = nnx.Linear(din, 8, rngs=rngs)
    self.drop = nnx.Dropout(rate, rngs=rngs)
    self.out = nnx.Linear(8, dout, rngs=rngs)

  def __call__(self, x):
    return self.out(self.drop(jax.nn.relu(self.hidden(x))))[:, 0]


def toy_binary(n=32, d=3, seed=0):
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, d)).astype(np.float32)
  y = (X @ np.array([1.5, -2.0, 0.5][:d]) > 0).astype(np.float32)
  return jnp.asarray(X), jnp.asarray(y)


def bce(z, y, **kw):
  return losses.sigmoid_binary_cross_entropy(z, y, **kw)


def functional_logits(state, x):
  """The MLP written by hand from its nnx state (an outside reference)."""
  h = jax.nn.relu(x @ state["hidden"]["kernel"] + state["hidden"]["bias"][None])
  return (h @ state["out"]["kernel"] + state["out"]["bias"][None])[:, 0]


def plain_params(model):
  return jax.tree.map(lambda v: jnp.asarray(v), nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_step_equals_optax_reference_and_decreases_loss():
  X, y = toy_binary()
  model = MLP(3, 1, rngs=nnx.Rngs(params=0, dropout=1))
  before = plain_params(model)
  opt = nnx.Optimizer(model, optax.sgd(0.5), wrt=nnx.Param)
  step = training.make_train_step(bce)
  loss0, aux = step(model, opt, {"inputs": X, "targets": y})
  # Reference: plain JAX gradient of the same function, one SGD step by hand.
  ref_loss, ref_grad = jax.value_and_grad(lambda p: bce(functional_logits(p, X), y))(before)
  np.testing.assert_allclose(loss0, ref_loss, rtol=1e-6)
  expected = jax.tree.map(lambda p, g: p - 0.5 * g, before, ref_grad)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               plain_params(model), expected)
  assert set(aux) == {"loss", "data_loss", "penalty"} and float(aux["penalty"]) == 0.0
  values = [float(step(model, opt, (X, y))[0]) for _ in range(30)]
  assert values[-1] < 0.5 * float(loss0)


def test_step_traced_once_and_fresh_dropout_masks():
  traces = []

  def counting_loss(z, t):
    traces.append(1)  # a Python side effect runs only while tracing
    return bce(z, t)

  X, y = toy_binary()
  model = MLP(3, 1, rate=0.5, rngs=nnx.Rngs(params=0, dropout=1))
  opt = nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param)  # lr 0: params stay put
  step = training.make_train_step(counting_loss)
  model.train()
  train_losses = [float(step(model, opt, (X, y))[0]) for _ in range(4)]
  assert len(traces) == 1
  assert len(set(train_losses)) == 4  # a fresh dropout mask every call
  model.eval()
  eval_losses = [float(step(model, opt, (X, y))[0]) for _ in range(3)]
  assert len(traces) == 2  # one more trace for the eval mode, then cached
  assert len(set(eval_losses)) == 1
  np.testing.assert_allclose(eval_losses[0], bce(functional_logits(plain_params(model), X), y),
                             rtol=1e-6)


def test_new_model_and_optimizer_reuse_the_step_when_tx_is_shared():
  traces = []

  def counting_loss(z, t):
    traces.append(1)
    return bce(z, t)

  X, y = toy_binary()
  step = training.make_train_step(counting_loss)
  tx = optax.adam(1e-2)
  for seed in range(3):  # same structure, other weights: no new trace
    model = MLP(3, 1, rngs=nnx.Rngs(params=seed, dropout=seed))
    step(model, nnx.Optimizer(model, tx, wrt=nnx.Param), (X, y))
  assert len(traces) == 1
  model = MLP(3, 1, rngs=nnx.Rngs(params=0, dropout=0))
  step(model, nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param), (X, y))
  assert len(traces) == 2  # a new optax object is new static data: as documented


def test_penalty_added_to_loss_and_gradient():
  X, y = toy_binary()
  model = MLP(3, 1, rngs=nnx.Rngs(0))
  before = plain_params(model)
  lr, strength = 0.1, 0.3
  penalty = lambda p: strength * regularizers.l2_penalty(p, mask=regularizers.decay_mask(p))
  opt = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
  zero_loss = lambda z, t: 0.0 * jnp.sum(z)
  loss, aux = training.make_train_step(zero_loss, penalty=penalty)(model, opt, (X, y))
  kernels = before["hidden"]["kernel"], before["out"]["kernel"]
  expected = strength * 0.5 * sum(float(jnp.sum(k ** 2)) for k in kernels)
  np.testing.assert_allclose([loss, aux["penalty"]], [expected, expected], rtol=1e-5)
  after = plain_params(model)
  # Gradient of ½·s·||W||² is s·W on kernels only: W <- (1 - lr·s)·W, biases fixed.
  np.testing.assert_allclose(after["hidden"]["kernel"], (1 - lr * strength) * kernels[0],
                             rtol=1e-6)
  np.testing.assert_array_equal(after["hidden"]["bias"], before["hidden"]["bias"])


def test_weights_honoured_and_metrics_in_aux():
  X, y = toy_binary(n=8)
  w = jnp.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
  keep = np.flatnonzero(np.asarray(w))
  loss_fn = lambda z, t, **kw: losses.sigmoid_binary_cross_entropy(
      z, t, reduction="weighted_mean", **kw)
  acc = lambda z, t: {"accuracy": metrics.accuracy((z > 0).astype(jnp.int32),
                                                   t.astype(jnp.int32))}
  results = []
  for batch in ({"inputs": X, "targets": y, "weights": w}, (X[keep], y[keep])):
    model = MLP(3, 1, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.sgd(0.3), wrt=nnx.Param)
    loss, aux = training.make_train_step(loss_fn, metrics_fn=acc)(model, opt, batch)
    results.append((loss, plain_params(model), aux))
  np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               results[0][1], results[1][1])
  assert 0.0 <= float(results[0][2]["accuracy"]) <= 1.0
  with pytest.raises(ValueError, match="batch"):
    training.make_train_step(loss_fn)(model, opt, {"x": X, "targets": y})


def test_fit_history_validation_and_early_stopping_restores_best():
  X, y = toy_binary(n=48)
  X_val, y_val = X[:16], 1.0 - y[:16]  # flipped labels: validation loss only rises

  def run(epochs, progress=False, **kw):
    model = MLP(3, 1, rate=0.1, rngs=nnx.Rngs(params=0, dropout=1))
    opt = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)
    acc = lambda z, t: {"accuracy": jnp.mean((z > 0) == (t > 0.5))}
    hist = training.fit(model, opt, (X, y), loss_fn=bce, epochs=epochs, batch_size=16,
                        key=jax.random.key(3), val_data=(X_val, y_val), metrics_fn=acc,
                        progress=progress, **kw)
    return model, hist

  one_model, one = run(1, progress=True)  # the tqdm bar runs too
  es = regularizers.early_stopping(patience=2)
  model, hist = run(20, early_stopping=es)
  assert hist["stopped_epoch"] is not None and hist["stopped_epoch"] < 19
  assert hist["epochs_run"] == hist["stopped_epoch"] + 1 == len(hist["val_loss"])
  assert len(hist["val_accuracy"]) == hist["epochs_run"]
  best = int(np.argmin(hist["val_loss"]))
  assert best == 0 and hist["best_epoch"] == best
  # Restored params are those after the best (first) epoch.
  jax.tree.map(np.testing.assert_array_equal, plain_params(model), plain_params(one_model))
  assert hist["train_loss"][0] == pytest.approx(one["train_loss"][0])
  assert model.drop.deterministic  # left in eval mode
  with pytest.raises(ValueError, match="epochs"):
    training.fit(model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param), (X, y),
                 loss_fn=bce, epochs=0, batch_size=4, key=0, progress=False)



class TwoHead(nnx.Module):
  """Class logits and box regression from a shared trunk; echoes the row ids."""

  def __init__(self, *, rngs):
    self.trunk = nnx.Linear(3, 16, rngs=rngs)
    self.cls = nnx.Linear(16, 3, rngs=rngs)
    self.box = nnx.Linear(16, 4, rngs=rngs)

  def __call__(self, inputs):
    h = jax.nn.relu(self.trunk(inputs["x"]))
    return {"cls": self.cls(h), "box": self.box(h), "id": inputs["id"]}


@pytest.mark.slow
def test_fit_pytree_inputs_and_dict_targets_two_heads():
  rng = np.random.default_rng(5)
  n = 40
  X = rng.normal(size=(n, 3)).astype(np.float32)
  labels = np.argmax(X @ rng.normal(size=(3, 3)), axis=1).astype(np.int32)
  boxes = (X @ rng.normal(size=(3, 4))).astype(np.float32)
  ids = np.arange(n, dtype=np.float32)
  inputs = {"x": X, "id": ids}
  targets = {"cls": labels, "box": boxes, "id": ids}

  def loss_fn(out, t):
    ce = optax.softmax_cross_entropy_with_integer_labels(out["cls"], t["cls"]).mean()
    box = jnp.mean(losses.squared_error(out["box"], t["box"]))
    # Rows of every leaf must be shuffled with the same indices: a mismatch costs 100.
    misaligned = 100.0 * jnp.mean(out["id"] != t["id"])
    return ce + box + misaligned

  model = TwoHead(rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, optax.adam(0.02), wrt=nnx.Param)
  hist = training.fit(model, opt, {"inputs": inputs, "targets": targets}, loss_fn=loss_fn,
                      epochs=15, batch_size=16, key=1, progress=False,
                      val_data=(inputs, targets))
  assert len(hist["train_loss"]) == 15 and np.all(np.isfinite(hist["train_loss"]))
  assert max(hist["train_loss"]) < 50  # leaves stayed aligned in every batch
  assert hist["train_loss"][-1] < 0.5 * hist["train_loss"][0]
  # The validation loss is the loss of the returned model on the whole data.
  expected = loss_fn(model(jax.tree.map(jnp.asarray, inputs)), jax.tree.map(jnp.asarray, targets))
  np.testing.assert_allclose(hist["val_loss"][-1], expected, rtol=1e-5)
  # Tuple targets work too; leaves with different row counts are rejected.
  model2 = TwoHead(rngs=nnx.Rngs(0))
  loss2 = lambda out, t: loss_fn(out, {"cls": t[0], "box": t[1], "id": t[2]})
  hist2 = training.fit(model2, nnx.Optimizer(model2, optax.adam(0.02), wrt=nnx.Param),
                       (inputs, (labels, boxes, ids)), loss_fn=loss2, epochs=2,
                       batch_size=16, key=1, progress=False)
  np.testing.assert_allclose(hist2["train_loss"], hist["train_loss"][:2], rtol=1e-5)
  with pytest.raises(ValueError, match="train_data"):
    training.fit(model, opt, (inputs, {"cls": labels, "box": boxes[:-1]}), loss_fn=loss_fn,
                 epochs=1, batch_size=16, key=1, progress=False)


def test_fit_stops_when_the_loss_diverges():
  # As compare_losses does: a NaN or infinite training loss stops training with
  # TrainingDivergedError (a ValueError) naming the epoch, not silently on.
  import optax
  from flax import nnx
  from lossreg_jax import training
  model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, optax.sgd(1e30), wrt=nnx.Param)  # the second step overflows
  X, y = jnp.ones((8, 2)), jnp.full(8, 3.0)
  mse = lambda z, t, **kw: losses.squared_error(z[:, 0], t, **kw)
  with pytest.raises(training.TrainingDivergedError,
                     match=r"training diverged: the training loss is (inf|nan) in epoch 0"):
    training.fit(model, opt, (X, y), loss_fn=mse, epochs=5, batch_size=4, key=0,
                 progress=False)
  assert issubclass(training.TrainingDivergedError, ValueError)
