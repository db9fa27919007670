"""Tests for regularizers.stochastic: dropout (vs flax.nnx.Dropout), noise, mixup, cutmix."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lossreg_jax.regularizers import (
    CutMix,
    GaussianNoise,
    MixUp,
    cutmix,
    dropout,
    gaussian_noise,
    mixup,
)


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("rate,broadcast_dims", [(0.1, ()), (0.5, (1,)), (0.75, (0, -1))])
def test_dropout_equals_flax_bit_for_bit(dtype, rate, broadcast_dims):
  x = jax.random.normal(jax.random.key(0), (4, 5, 6)).astype(dtype)
  layer = nnx.Dropout(rate, broadcast_dims=broadcast_dims)
  for seed in (0, 1, 7):
    key = jax.random.key(seed)
    expected = layer(x, deterministic=False, rngs=key)
    got = dropout(key, x, rate=rate, broadcast_dims=broadcast_dims)
    assert got.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(expected, np.float32))


def test_dropout_jit_and_traced_rate_equal_flax():
  x = jax.random.normal(jax.random.key(1), (8, 16))
  key = jax.random.key(3)
  expected = nnx.Dropout(0.4)(x, deterministic=False, rngs=key)
  got_static = jax.jit(partial(dropout, rate=0.4))(key, x)
  got_traced = jax.jit(lambda k, x, r: dropout(k, x, rate=r))(key, x, 0.4)
  np.testing.assert_array_equal(got_static, expected)
  np.testing.assert_array_equal(got_traced, expected)


def test_dropout_mask_statistics_and_broadcast():
  x = jnp.ones((64, 32, 8))
  out = dropout(jax.random.key(2), x, rate=0.25, broadcast_dims=(1,))
  kept = out != 0
  # kept entries are scaled by 1 / keep_prob; the mask is shared along axis 1
  np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
  assert bool(jnp.all(kept == kept[:, :1, :]))
  assert abs(float(kept.mean()) - 0.75) < 0.05


def test_dropout_edge_rates_and_grads():
  x = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
  key = jax.random.key(0)
  np.testing.assert_array_equal(dropout(key, x, rate=0.0), x)
  np.testing.assert_array_equal(dropout(key, x, rate=0.9, deterministic=True), x)
  np.testing.assert_array_equal(dropout(key, x, rate=1.0), jnp.zeros_like(x))
  for rate_fn in (lambda x: dropout(key, x, rate=1.0).sum(),
                  lambda x: jax.jit(lambda x, r: dropout(key, x, rate=r))(x, 1.0).sum()):
    value, grad = jax.value_and_grad(rate_fn)(x)
    assert float(value) == 0.0
    assert bool(jnp.all(jnp.isfinite(grad)))
  # gradient of kept entries is 1 / keep_prob
  grad = jax.grad(lambda x: dropout(key, x, rate=0.5).sum())(x)
  np.testing.assert_allclose(grad, jnp.where(dropout(key, x, rate=0.5) != 0, 2.0, 0.0))


def test_dropout_bad_input():
  with pytest.raises(ValueError, match="rate"):
    dropout(jax.random.key(0), jnp.ones(3), rate=1.5)
  with pytest.raises(ValueError, match="rate"):
    dropout(jax.random.key(0), jnp.ones(3), rate=-0.1)
  with pytest.raises(TypeError, match="x"):
    dropout(jax.random.key(0), jnp.ones(3, jnp.int32), rate=0.5)


# ----------------------------------------------------------------------------- noise


def test_gaussian_noise_formula_and_statistics():
  x = jnp.linspace(-2.0, 2.0, 4000).reshape(40, 100)
  key = jax.random.key(5)
  out = jax.jit(partial(gaussian_noise, stddev=0.3))(key, x)
  np.testing.assert_allclose(out, x + 0.3 * jax.random.normal(key, x.shape), rtol=1e-6,
                             atol=1e-6)
  noise = np.asarray(out - x)
  assert abs(noise.mean()) < 0.02 and abs(noise.std() - 0.3) < 0.02
  np.testing.assert_array_equal(gaussian_noise(key, x, stddev=0.3, deterministic=True), x)
  np.testing.assert_array_equal(gaussian_noise(key, x, stddev=0.0), x)
  assert gaussian_noise(key, x.astype(jnp.bfloat16), stddev=0.1).dtype == jnp.bfloat16
  grad = jax.grad(lambda x: gaussian_noise(key, x, stddev=0.3).sum())(x)
  np.testing.assert_array_equal(grad, jnp.ones_like(x))


def test_gaussian_noise_bad_stddev():
  with pytest.raises(ValueError, match="stddev"):
    gaussian_noise(jax.random.key(0), jnp.ones(3), stddev=-1.0)
  with pytest.raises(ValueError, match="stddev"):
    GaussianNoise(-0.5, rngs=nnx.Rngs(0))


# ----------------------------------------------------------------------------- mixup

# Every mixup / cutmix call below (and the modules) uses these shapes, so the
# Beta sampler is compiled once per function.
N, H, W = 4, 12, 10


def _pattern_images():
  """Image i has a single 1 at pixel (0, i): mixing reveals lam and the partner."""
  return jnp.zeros((N, H, W, 1)).at[jnp.arange(N), 0, jnp.arange(N), 0].set(1.0)


def _labels(seed=9):
  return jax.random.uniform(jax.random.key(seed), (N, N))


def _recover_mixup(x_mixed):
  """lam (the same for all rows) and the permutation, from mixed pattern images."""
  xm = np.asarray(x_mixed[:, 0, :N, 0], np.float64)
  perm, lams = [], []
  for i in range(N):
    off = xm[i].copy()
    off[i] = -1.0
    j = int(np.argmax(off))
    if xm[i, j] > 1e-6:
      perm.append(j)
      lams.append(xm[i, i])
    else:  # paired with itself (or lam == 1)
      perm.append(i)
  if lams:
    np.testing.assert_allclose(lams, lams[0], atol=1e-6)
  return (lams[0] if lams else 1.0), np.asarray(perm)


def test_mixup_mixes_labels_with_the_same_lambda():
  x, y = _pattern_images(), _labels()
  seen_lams = []
  for alpha in (0.2, 1.0):
    for seed in range(4):
      xm, ym = mixup(jax.random.key(seed), x, y, alpha=alpha)
      lam, perm = _recover_mixup(xm)
      seen_lams.append(lam)
      np.testing.assert_allclose(xm, lam * x + (1 - lam) * x[perm], atol=1e-6)
      np.testing.assert_allclose(ym, lam * y + (1 - lam) * y[perm], atol=1e-5)
  assert len(set(np.round(seen_lams, 6))) > 4  # lam really varies with the key


def test_mixup_lambda_follows_beta():
  # lam = x_mixed[0, 0, 0] when image 0 is paired with another one. Beta(a, a)
  # has mean 1/2 and variance 1 / (4 (2 a + 1)). Same shapes as above: the
  # compiled program is reused, only the key and alpha change.
  x, y = _pattern_images(), _labels()
  keys = jax.random.split(jax.random.key(0), 400)
  for alpha in (0.2, 2.0):
    rows = np.stack([np.asarray(mixup(k, x, y, alpha=alpha)[0])[0, 0, :N, 0] for k in keys])
    paired = (rows[:, 1:] > 0).any(1) | (rows[:, 0] < 1)
    lam = rows[paired, 0]
    assert len(lam) > 250
    assert abs(lam.mean() - 0.5) < 0.05
    np.testing.assert_allclose(lam.var(), 1 / (4 * (2 * alpha + 1)), rtol=0.15)


def test_mixup_and_cutmix_trace_under_an_outer_jit():
  # Lowering under jit checks tracing (no concretization of traced values); the
  # eager calls above already run the compiled programs.
  x = jnp.ones((N, H, W, 1), jnp.bfloat16)
  y = _labels()

  def both(key, x, y, alpha):
    return cutmix(key, *mixup(key, x, y, alpha=alpha), alpha=alpha)

  out = jax.jit(both).lower(jax.random.key(0), x, y, 0.5).out_info
  assert (out[0].shape, out[0].dtype) == (x.shape, jnp.bfloat16)
  assert (out[1].shape, out[1].dtype) == (y.shape, jnp.float32)
  xm, ym = mixup(jax.random.key(0), x.astype(jnp.float32), y, alpha=0.4)
  np.testing.assert_allclose(ym.sum(), y.sum(), rtol=1e-5)  # a permutation keeps the total


def test_mixup_cutmix_bad_input():
  x, y = jnp.ones((N, H, W, 1)), _labels()
  with pytest.raises(ValueError, match="alpha"):
    mixup(jax.random.key(0), x, y, alpha=0.0)
  with pytest.raises(ValueError, match="alpha"):
    cutmix(jax.random.key(0), x, y, alpha=-1.0)
  with pytest.raises(TypeError, match="one_hot"):
    mixup(jax.random.key(0), x, jnp.arange(N), alpha=0.4)
  with pytest.raises(ValueError, match="batch"):
    mixup(jax.random.key(0), x, jnp.ones((N + 1, 3)), alpha=0.4)
  with pytest.raises(ValueError, match="x"):
    cutmix(jax.random.key(0), jnp.ones((N, H, W)), y, alpha=1.0)
  with pytest.raises(TypeError, match="x"):
    mixup(jax.random.key(0), jnp.ones((N, 3), jnp.uint8), y, alpha=1.0)


# ----------------------------------------------------------------------------- cutmix


def test_cutmix_labels_use_the_pasted_area():
  # Image i is constant i + 1, so the pasted pixels reveal perm(i) and the area.
  x = jnp.broadcast_to((jnp.arange(N, dtype=jnp.float32) + 1)[:, None, None, None],
                       (N, H, W, 1))
  y = _labels(1)
  fractions = []
  for seed in range(12):
    xm, ym = cutmix(jax.random.key(seed), x, y, alpha=1.0)
    assert xm.shape == x.shape and xm.dtype == x.dtype and ym.shape == y.shape
    xm = np.asarray(xm)
    box = None
    for i in range(N):
      pasted = xm[i, :, :, 0] != i + 1
      others = np.unique(xm[i][xm[i] != i + 1])
      assert len(others) <= 1
      if len(others):
        j = int(others[0]) - 1
        rows, cols = pasted.any(1), pasted.any(0)
        np.testing.assert_array_equal(pasted, rows[:, None] & cols[None, :])  # a rectangle
        box = pasted if box is None else box
        np.testing.assert_array_equal(pasted, box)  # one box for the batch
        lam = 1.0 - pasted.mean()
        fractions.append(pasted.mean())
        np.testing.assert_allclose(ym[i], lam * y[i] + (1 - lam) * y[j], atol=1e-6)
  assert len(fractions) > 10 and max(fractions) > 0.2


# ----------------------------------------------------------------------------- modules


class _Net(nnx.Module):

  def __init__(self, rngs):
    self.noise = GaussianNoise(0.5, rngs=rngs)
    self.mix = MixUp(0.4, rngs=rngs)
    self.cut = CutMix(1.0, rngs=rngs)

  def __call__(self, x, y):
    x, y = self.cut(x, y)
    x, y = self.mix(x, y)
    return self.noise(x), y


def test_modules_follow_train_and_eval():
  net = _Net(nnx.Rngs(params=0, dropout=1))
  x = jax.random.normal(jax.random.key(0), (N, H, W, 1))
  y = _labels()
  xa, ya = net(x, y)
  xb, _ = net(x, y)
  assert not np.array_equal(xa, x) and not np.array_equal(xa, xb)  # stream advances
  assert xa.shape == x.shape and ya.shape == y.shape
  net.eval()
  assert net.noise.deterministic and net.mix.deterministic and net.cut.deterministic
  xe, ye = net(x, y)
  np.testing.assert_array_equal(xe, x)
  np.testing.assert_array_equal(ye, y)
  net.train()
  assert not net.noise.deterministic
  assert not np.array_equal(net(x, y)[0], x)
  # nnx.view uses set_view
  view = nnx.view(net, deterministic=True)
  np.testing.assert_array_equal(view(x, y)[0], x)


def test_modules_use_the_functional_forms_and_work_under_nnx_jit():
  key = jax.random.key(3)
  x = jnp.ones((N, H, W, 1))
  np.testing.assert_array_equal(
      GaussianNoise(0.2)(x, rngs=key), gaussian_noise(key, x, stddev=0.2))
  y = _labels()
  for got, expected in zip(MixUp(0.4)(x, y, rngs=key), mixup(key, x, y, alpha=0.4)):
    np.testing.assert_array_equal(got, expected)
  layer = GaussianNoise(0.2, rngs=nnx.Rngs(dropout=0))
  out1 = nnx.jit(lambda m, x: m(x))(layer, x)
  out2 = nnx.jit(lambda m, x: m(x))(layer, x)
  assert not np.array_equal(out1, out2)
  with pytest.raises(TypeError, match="rngs"):
    GaussianNoise(0.2)(x)
  np.testing.assert_array_equal(GaussianNoise(0.2)(x, deterministic=True), x)
