"""Tests for lossreg_jax.regularizers.transforms (optax, scikit-learn, numpy refs)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet

from lossreg_jax import regularizers as reg


def _tree(seed=0):
  rng = np.random.default_rng(seed)
  return {"kernel": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
          "bias": jnp.asarray(rng.normal(size=(3,)), jnp.float32)}


def _soft(z, t):
  return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def _assert_trees_close(a, b, **kw):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


def test_add_l1_decay_matches_formula_with_schedule_and_count():
  params, grads = _tree(0), _tree(1)
  schedule = optax.linear_schedule(0.5, 0.0, transition_steps=4)
  tx = reg.add_l1_decay(schedule)
  update = jax.jit(tx.update)
  state = tx.init(params)
  for step in range(3):
    out, state = update(grads, state, params)
    s = 0.5 * (1 - step / 4)
    _assert_trees_close(
        out, jax.tree.map(lambda g, p: g + s * np.sign(p), grads, params), rtol=1e-6)
  assert int(state.count) == 3
  assert isinstance(state, reg.AddL1DecayState)


def test_elastic_net_decay_with_l1_ratio_zero_is_add_decayed_weights():
  params, grads = _tree(2), _tree(3)
  for wd in (0.1, optax.exponential_decay(0.1, 1, 0.5)):
    ours, theirs = reg.add_elastic_net_decay(wd, 0.0), optax.add_decayed_weights(wd)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(2):  # the second step sees the decayed schedule value
      a, s_ours = ours.update(grads, s_ours, params)
      b, s_theirs = theirs.update(grads, s_theirs, params)
      _assert_trees_close(a, b, rtol=1e-7, atol=0)


def test_elastic_net_decay_matches_formula_and_l1_ratio_one_is_l1_decay():
  params, grads = _tree(4), _tree(5)
  alpha, rho = 0.3, 0.4
  tx = reg.add_elastic_net_decay(alpha, rho)
  out, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  _assert_trees_close(out, jax.tree.map(
      lambda g, p: g + alpha * rho * np.sign(p) + alpha * (1 - rho) * p,
      grads, params), rtol=1e-6)
  enet, l1 = reg.add_elastic_net_decay(alpha, 1.0), reg.add_l1_decay(alpha)
  a, _ = enet.update(grads, enet.init(params), params)
  b, _ = l1.update(grads, l1.init(params), params)
  _assert_trees_close(a, b, rtol=1e-7)


def test_decoupled_placement_equals_adamw_and_coupled_differs():
  lr, wd = 0.05, 0.1
  params = _tree(6)
  grads_seq = [_tree(10 + i) for i in range(3)]
  decoupled = optax.chain(optax.scale_by_adam(), reg.add_elastic_net_decay(wd, 0.0),
                          optax.scale(-lr))
  coupled = optax.chain(reg.add_elastic_net_decay(wd, 0.0), optax.scale_by_adam(),
                        optax.scale(-lr))
  adamw = optax.adamw(lr, weight_decay=wd)

  def run(tx):
    p, state = params, tx.init(params)
    for g in grads_seq:
      u, state = tx.update(g, state, p)
      p = optax.apply_updates(p, u)
    return p

  ref = run(adamw)
  _assert_trees_close(run(decoupled), ref, rtol=1e-6, atol=1e-7)
  diff = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(),
                      run(coupled), ref)
  assert max(jax.tree.leaves(diff)) > 1e-3


@pytest.mark.parametrize("l1_ratio", [0.0, 0.6, 1.0])
def test_proximal_elastic_net_matches_formula_with_exact_zeros(l1_ratio):
  lr, alpha = 0.5, 0.8
  params, grads = _tree(7), _tree(8)
  updates = jax.tree.map(lambda g: -lr * g, grads)
  tx = reg.proximal_elastic_net(lr, alpha, l1_ratio)
  out, state = jax.jit(tx.update)(updates, tx.init(params), params)
  new = optax.apply_updates(params, out)
  for p, u, w in zip(jax.tree.leaves(params), jax.tree.leaves(updates),
                     jax.tree.leaves(new), strict=True):
    z = np.asarray(p, np.float64) + np.asarray(u, np.float64)
    t = lr * alpha * l1_ratio
    expected = _soft(z, t) / (1 + lr * alpha * (1 - l1_ratio))
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
    # Exactly zero (not 1e-8) wherever the threshold bites, nonzero elsewhere.
    np.testing.assert_array_equal(np.asarray(w) == 0.0, np.abs(z) <= t)
  if l1_ratio > 0:
    assert any(bool(jnp.any(w == 0.0)) for w in jax.tree.leaves(new))
  assert int(state.count) == 1


def test_proximal_l1_exact_zeros_vs_subgradient_l1_decay():
  # Minimize ½||w − c||² + s·||w||₁: the solution is soft(c, s) = [0, 0, 2.9].
  c = jnp.array([0.05, -0.02, 3.0])
  lr, s = 0.05, 0.1
  grad_fn = lambda w: w - c

  def run(tx, steps=500):
    def step(carry, _):
      w, state = carry
      u, state = tx.update(grad_fn(w), state, w)
      return (optax.apply_updates(w, u), state), None
    w0 = jnp.ones(3)
    (w, _), _ = jax.lax.scan(step, (w0, tx.init(w0)), length=steps)
    return w

  prox = np.asarray(jax.jit(lambda: run(optax.chain(optax.sgd(lr),
                                                    reg.proximal_l1(lr, s))))())
  subgrad = np.asarray(jax.jit(lambda: run(optax.chain(reg.add_l1_decay(s),
                                                       optax.sgd(lr))))())
  np.testing.assert_array_equal(prox[:2], 0.0)  # exact zeros
  np.testing.assert_allclose(prox[2], 2.9, rtol=1e-4)
  # The subgradient method chatters around 0 with amplitude ~lr·s: small, not 0.
  assert np.all(subgrad[:2] != 0.0) and np.all(np.abs(subgrad[:2]) <= 2 * lr * s)
  np.testing.assert_allclose(subgrad[2], 2.9, rtol=1e-3)


def test_proximal_gradient_reaches_sklearn_elastic_net(x64):
  X, y = load_diabetes(return_X_y=True)
  X = (X - X.mean(0)) / X.std(0)
  y = y - y.mean()
  n = X.shape[0]
  alpha, l1_ratio = 5.0, 0.7
  ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-10,
                   max_iter=100_000).fit(X, y).coef_
  assert np.sum(ref == 0.0) >= 2 and np.sum(ref != 0.0) >= 5
  lr = 1.0 / np.linalg.eigvalsh(X.T @ X / n).max()
  tx = optax.chain(optax.sgd(lr), reg.proximal_elastic_net(lr, alpha, l1_ratio))
  Xj, yj = jnp.asarray(X), jnp.asarray(y)

  @jax.jit
  def fit(w0):
    def step(carry, _):
      w, state = carry
      grad = Xj.T @ (Xj @ w - yj) / n  # gradient of 1/(2n)||y − Xw||²
      u, state = tx.update(grad, state, w)
      return (optax.apply_updates(w, u), state), None
    (w, state), _ = jax.lax.scan(step, (w0, tx.init(w0)), length=2000)
    return w, state

  w, state = fit(jnp.zeros(X.shape[1]))
  assert w.dtype == jnp.float64
  np.testing.assert_allclose(w, ref, atol=1e-6 * np.abs(ref).max())
  np.testing.assert_array_equal(np.asarray(w) == 0.0, ref == 0.0)
  assert int(state[1].count) == 2000


def test_scan_with_schedules_keeps_state_structure():
  params = _tree(9)
  lr = optax.cosine_decay_schedule(0.1, 10)
  tx = optax.chain(
      optax.sgd(lr),
      reg.add_l1_decay(optax.constant_schedule(1e-3), mask=reg.decay_mask),
      reg.proximal_elastic_net(lr, optax.linear_schedule(0.1, 0.5, 5), 0.5,
                               mask=reg.decay_mask),
  )
  state0 = tx.init(params)

  def step(carry, g):
    p, state = carry
    u, state = tx.update(g, state, p)
    return (optax.apply_updates(p, u), state), None

  grads = jax.tree.map(lambda x: jnp.stack([x] * 5), _tree(10))
  (p, state), _ = jax.jit(lambda c: jax.lax.scan(step, c, grads))((params, state0))
  assert jax.tree.structure(state) == jax.tree.structure(state0)
  counts = [int(x) for x in jax.tree.leaves(state) if jnp.ndim(x) == 0]
  assert counts and all(c == 5 for c in counts)
  # The mask keeps biases out of both regularizers: plain SGD on them.
  expected_bias = params["bias"] - sum(lr(i) for i in range(5)) * _tree(10)["bias"]
  np.testing.assert_allclose(p["bias"], expected_bias, rtol=1e-5)


def test_inside_nnx_optimizer_one_step():
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  kernel0, bias0 = np.asarray(model.kernel[...]), np.asarray(model.bias[...])
  lr, alpha, rho = 0.1, 0.5, 0.5
  tx = optax.chain(optax.sgd(lr),
                   reg.proximal_elastic_net(lr, alpha, rho, mask=reg.decay_mask))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))

  @nnx.jit
  def train_step(model, optimizer):
    grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return grads

  grads = train_step(model, optimizer)
  z = kernel0 - lr * np.asarray(grads["kernel"][...])
  expected = _soft(z, lr * alpha * rho) / (1 + lr * alpha * (1 - rho))
  np.testing.assert_allclose(model.kernel[...], expected, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(model.bias[...], bias0 - lr * np.asarray(grads["bias"][...]),
                             rtol=1e-6)
  # A mask pytree built on nnx.state (with Param wrappers) works the same way.
  tx2 = reg.add_l1_decay(0.1, mask=reg.decay_mask(nnx.state(model, nnx.Param)))
  opt2 = nnx.Optimizer(model, tx2, wrt=nnx.Param)
  bias1 = np.asarray(model.bias[...])
  opt2.update(model, jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param)))
  np.testing.assert_array_equal(model.bias[...], bias1)


def test_decay_mask_on_dict_and_nnx_state():
  params = {"conv": jnp.ones((3, 3, 1, 4)), "dense": {"kernel": jnp.ones((4, 2)),
            "bias": jnp.ones(2)}, "norm_scale": jnp.ones(4), "temp": jnp.ones(())}
  assert reg.decay_mask(params) == {"conv": True, "dense": {"kernel": True, "bias": False},
                                    "norm_scale": False, "temp": False}

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.dense = nnx.Linear(3, 4, rngs=rngs)
      self.norm = nnx.LayerNorm(4, rngs=rngs)

  state = nnx.state(Net(nnx.Rngs(0)), nnx.Param)
  mask = reg.decay_mask(state)
  flat = {"/".join(map(str, k)): v for k, v in nnx.to_flat_state(mask)}
  values = {k: v.get_value() if isinstance(v, nnx.Variable) else v
            for k, v in flat.items()}
  assert values == {
      "dense/kernel": True, "dense/bias": False, "norm/scale": False, "norm/bias": False}


@pytest.mark.parametrize("make, name", [
    (lambda: reg.add_l1_decay(0.1), "add_l1_decay"),
    (lambda: reg.add_elastic_net_decay(0.1, 0.5), "add_elastic_net_decay"),
    (lambda: reg.proximal_l1(0.1, 0.1), "proximal_l1"),
    (lambda: reg.proximal_elastic_net(0.1, 0.1, 0.5, mask=reg.decay_mask),
     "proximal_elastic_net"),
])
def test_update_without_params_raises(make, name):
  tx, params = make(), _tree(0)
  with pytest.raises(ValueError, match=f"{name} needs the current params.*tx.update"):
    tx.update(params, tx.init(params))


def test_bad_mask_structure_raises():
  params = _tree(0)
  tx = reg.add_l1_decay(0.1, mask={"kernel": True, "weights": False})
  with pytest.raises(ValueError, match="mask.*structure"):
    tx.init(params)


@pytest.mark.parametrize("make, name", [
    (lambda: reg.add_l1_decay(-0.1), "strength"),
    (lambda: reg.add_elastic_net_decay(-1.0, 0.5), "alpha"),
    (lambda: reg.add_elastic_net_decay(1.0, 1.5), "l1_ratio"),
    (lambda: reg.proximal_l1(-0.1, 0.1), "learning_rate"),
    (lambda: reg.proximal_l1(0.1, -0.1), "strength"),
    (lambda: reg.proximal_elastic_net(0.1, 0.1, -0.5), "l1_ratio"),
    (lambda: reg.proximal_elastic_net(-0.1, 0.1, 0.5), "learning_rate"),
])
def test_bad_strengths_raise(make, name):
  with pytest.raises(ValueError, match=name):
    make()


def test_schedules_are_not_checked_at_construction():
  reg.proximal_elastic_net(lambda c: -1.0, lambda c: 2.0, lambda c: 3.0)
  reg.add_l1_decay(optax.constant_schedule(0.1))
