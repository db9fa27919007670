"""Tests for the bagged ensembles of lossreg_jax.training (lossreg_jax/_ensemble.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lossreg_jax import datasets, losses, training

M, N, D, C = 3, 40, 5, 3
TX = optax.adam(0.05)  # one transformation object: the compiled steps are reused


class MLP(nnx.Module):

  def __init__(self, rngs, d=D, hidden=8, classes=C, rate=0.2):
    self.hidden = nnx.Linear(d, hidden, rngs=rngs)
    self.drop = nnx.Dropout(rate, rngs=rngs)
    self.out = nnx.Linear(hidden, classes, rngs=rngs)

  def __call__(self, x):
    return self.out(self.drop(jax.nn.relu(self.hidden(x))))


def ce(logits, labels, **kw):
  return losses.softmax_cross_entropy_with_integer_labels(logits, labels, **kw)


def _data(seed=0, n=N):
  kx, ky = jax.random.split(jax.random.key(seed))
  X = jax.random.normal(kx, (n, D))
  y = jax.random.randint(ky, (n,), 0, C)
  return X, y


def test_bootstrap_weights_are_counts_summing_to_n():
  w = training.bootstrap_weights(jax.random.key(3), 1000, num_members=50)
  assert w.shape == (50, 1000) and w.dtype == jnp.float32
  np.testing.assert_array_equal(w.sum(axis=1), np.full(50, 1000.0))
  assert np.all(w >= 0) and np.all(w == np.round(w))
  # A row is out of bag with probability (1 - 1/n)^n -> 1/e = 0.368; over 50000
  # rows the observed share is within 0.01 of it (about 5 standard deviations).
  assert abs(float(jnp.mean(w == 0)) - (1 - 1 / 1000) ** 1000) < 0.01
  assert not np.array_equal(w[0], w[1])  # each member draws its own resample
  np.testing.assert_array_equal(w, training.bootstrap_weights(jax.random.key(3), 1000,
                                                              num_members=50))


def test_stacked_members_equal_models_built_alone():
  ens = training.make_ensemble(MLP, num_members=M, key=jax.random.key(7))
  keys = jax.random.split(jax.random.key(7), M)
  assert ens.hidden.kernel.shape == (M, D, 8)
  for m in range(M):
    alone = MLP(nnx.Rngs(keys[m]))
    got = nnx.state(training.ensemble_member(ens, m), nnx.Param)
    jax.tree.map(np.testing.assert_array_equal, got, nnx.state(alone, nnx.Param))


@pytest.mark.slow
def test_each_member_trains_as_it_would_alone():
  """The vmapped program's member m == fit() of member m alone with weights W[m].

  Dropout is on, the last minibatch is partial (40 rows, batch 16) and the
  weights are bootstrap counts, so the per-member dropout stream, the shared
  shuffling and the weighting must all line up.
  """
  X, y = _data()
  key = jax.random.key(11)
  W = training.bootstrap_weights(jax.random.key(5), N, num_members=M)
  ens = training.make_ensemble(MLP, num_members=M, key=key)
  opt = training.make_ensemble_optimizer(ens, TX)
  hist = training.fit_ensemble(ens, opt, (X, y), loss_fn=ce, epochs=2, batch_size=16,
                               key=key, member_weights=W, progress=False)
  np.testing.assert_array_equal(hist["member_weights"], W)
  member_keys = jax.random.split(key, M)
  for m in (0, M - 1):  # the first and last members (each alone fit compiles anew)
    member_key = member_keys[m]
    alone = MLP(nnx.Rngs(member_key))
    alone_opt = nnx.Optimizer(alone, TX, wrt=nnx.Param)
    alone_hist = training.fit(alone, alone_opt, (X, y, W[m]), loss_fn=ce, epochs=2,
                              batch_size=16, key=jax.random.split(key)[0], progress=False)
    np.testing.assert_allclose([row[m] for row in hist["train_loss"]],
                               alone_hist["train_loss"], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 nnx.state(training.ensemble_member(ens, m), nnx.Param),
                 nnx.state(alone, nnx.Param))


def test_zero_weight_member_does_not_move():
  X, y = _data()
  ens = training.make_ensemble(MLP, num_members=2, key=0)
  before = nnx.state(training.ensemble_member(ens, 1), nnx.Param)
  opt = training.make_ensemble_optimizer(ens, optax.sgd(0.5))
  W = jnp.stack([jnp.ones(N), jnp.zeros(N)])
  training.fit_ensemble(ens, opt, (X, y), loss_fn=ce, epochs=2, batch_size=N, key=0,
                        member_weights=W, progress=False)
  after = nnx.state(training.ensemble_member(ens, 1), nnx.Param)
  jax.tree.map(np.testing.assert_array_equal, after, before)
  moved = nnx.state(training.ensemble_member(ens, 0), nnx.Param)
  assert not np.allclose(moved["out"]["kernel"][...], before["out"]["kernel"][...])


def test_predict_averages_member_probabilities_under_jit():
  X, _ = _data()
  ens = training.make_ensemble(MLP, num_members=M, key=1)
  ens.eval()
  got = nnx.jit(lambda e, x: training.predict_ensemble(e, x))(ens, X)
  members = [jax.nn.softmax(training.ensemble_member(ens, m)(X)) for m in range(M)]
  np.testing.assert_allclose(got, np.mean(members, axis=0), rtol=1e-6, atol=1e-7)
  binary = training.predict_ensemble(ens, X, link=lambda z: jax.nn.sigmoid(z[:, 0]))
  assert binary.shape == (N,)


@pytest.mark.slow
def test_bagged_ensemble_on_wine_held_out_log_loss():
  data = datasets.load("wine")
  X = np.asarray(data.X)
  X = (X - X.mean(0)) / X.std(0)
  rng = np.random.default_rng(0)
  test = rng.permutation(len(X))[:60]
  train = np.setdiff1d(np.arange(len(X)), test)
  model_fn = lambda r: MLP(r, d=X.shape[1], hidden=16, classes=3, rate=0.0)
  ens = training.make_ensemble(model_fn, num_members=5, key=2)
  opt = training.make_ensemble_optimizer(ens, optax.adam(0.02))
  training.fit_ensemble(ens, opt, (X[train], np.asarray(data.y)[train]), loss_fn=ce, epochs=20,
                        batch_size=59, key=3, progress=False)
  Xt, yt = jnp.asarray(X[test]), jnp.asarray(data.y[test])
  nll = lambda p: float(-jnp.mean(jnp.log(p[jnp.arange(len(yt)), yt])))
  ensemble_nll = nll(training.predict_ensemble(ens, Xt))
  member_nll = [nll(jax.nn.softmax(training.ensemble_member(ens, m)(Xt))) for m in range(5)]
  # Jensen: -log is convex, so the NLL of averaged probabilities is at most the
  # mean of the members' NLLs (equality only if all members agree). The other
  # bound says the training worked (seen: ensemble 0.035, members 0.027-0.057).
  assert ensemble_nll <= np.mean(member_nll)
  assert ensemble_nll < 0.2
  accuracy = float(jnp.mean(jnp.argmax(training.predict_ensemble(ens, Xt), -1) == yt))
  assert accuracy > 0.9


def test_bad_arguments_name_themselves():
  with pytest.raises(ValueError, match="num_members"):
    training.make_ensemble(MLP, num_members=0, key=0)
  with pytest.raises(ValueError, match="n must"):
    training.bootstrap_weights(0, 0, num_members=2)
  X, y = _data()
  ens = training.make_ensemble(MLP, num_members=2, key=0)
  opt = training.make_ensemble_optimizer(ens, TX)
  with pytest.raises(ValueError, match=r"member_weights must be shaped .*\(2, 40\)"):
    training.fit_ensemble(ens, opt, (X, y), loss_fn=ce, epochs=1, batch_size=8, key=0,
                          member_weights=jnp.ones((3, N)), progress=False)
  step = training.make_ensemble_train_step(ce)
  with pytest.raises(ValueError, match=r"member_weights must be shaped .*got \(2, 5\)"):
    step(ens, opt, (X[:8], y[:8]), jnp.ones((2, 5)))
