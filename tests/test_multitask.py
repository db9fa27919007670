"""Tests for lossreg_jax.losses.multitask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossreg_jax import losses


def _seed_detector_losses(logits, labels, boxes, target_boxes):
  cls = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
  box = jnp.mean(optax.huber_loss(boxes, target_boxes))
  return cls, box


def test_weighted_sum_reproduces_the_seed_formula_with_gradients():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(8, 5)).astype(np.float32)
  labels = rng.integers(0, 5, size=8)
  boxes = rng.normal(size=(8, 4)).astype(np.float32)
  target_boxes = rng.normal(size=(8, 4)).astype(np.float32)
  w_cls, w_box = 1.0, 2.5

  def objective(logits, boxes):
    cls, box = _seed_detector_losses(logits, labels, boxes, target_boxes)
    total, terms = losses.weighted_sum({"cls": cls, "box": box}, {"cls": w_cls, "box": w_box})
    return total, terms

  (total, terms), grads = jax.jit(
      jax.value_and_grad(objective, argnums=(0, 1), has_aux=True))(logits, boxes)
  cls, box = jax.jit(_seed_detector_losses)(logits, labels, boxes, target_boxes)
  # The seed: total = w_cls * classification_loss + w_box * regression_loss.
  np.testing.assert_allclose(total, w_cls * cls + w_box * box, rtol=1e-6)
  assert set(terms) == {"cls", "box"}
  np.testing.assert_allclose(terms["box"], w_box * box, rtol=1e-6)
  g_cls, g_box = jax.jit(lambda l, b: (
      jax.grad(lambda l: _seed_detector_losses(l, labels, b, target_boxes)[0])(l),
      jax.grad(lambda b: _seed_detector_losses(l, labels, b, target_boxes)[1])(b)))(logits, boxes)
  np.testing.assert_allclose(grads[0], w_cls * g_cls, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(grads[1], w_box * g_box, rtol=1e-5, atol=1e-7)


def test_weighted_sum_defaults_and_learnable_weights():
  task_losses = {"a": jnp.array(0.5), "b": jnp.array(2.0), "c": jnp.array(3.0)}
  total, terms = losses.weighted_sum(task_losses, None)
  np.testing.assert_allclose(total, 5.5)
  assert set(terms) == {"a", "b", "c"}
  # Weights are a pytree: their gradient is the losses.
  weights = {"a": 1.0, "b": 0.5, "c": 2.0}
  grad = jax.grad(lambda w: losses.weighted_sum(task_losses, w)[0])(weights)
  for k in task_losses:
    np.testing.assert_allclose(grad[k], task_losses[k])
  # Elementwise losses of one shape sum elementwise; dtype is kept.
  half = {"a": jnp.ones(3, jnp.float16), "b": jnp.full(3, 2.0, jnp.float16)}
  total, _ = losses.weighted_sum(half, {"a": 2.0, "b": 0.5})
  assert total.dtype == jnp.float16
  np.testing.assert_allclose(np.asarray(total, np.float32), [3.0, 3.0, 3.0])


def test_weighted_sum_key_errors_name_the_keys():
  task_losses = {"cls": 1.0, "box": 2.0}
  with pytest.raises(ValueError, match="missing keys: \\['box'\\]"):
    losses.weighted_sum(task_losses, {"cls": 1.0})
  with pytest.raises(ValueError, match="extra keys: \\['mask'\\]"):
    losses.weighted_sum(task_losses, {"cls": 1.0, "box": 1.0, "mask": 1.0})
  with pytest.raises(ValueError, match="losses"):
    losses.weighted_sum({}, None)
  with pytest.raises(TypeError, match="weights"):
    losses.weighted_sum(task_losses, [1.0, 2.0])
  with pytest.raises(TypeError, match="losses"):
    losses.weighted_sum([1.0, 2.0], None)


def _np_uncertainty(task_losses, log_vars):
  return sum(np.exp(-log_vars[k]) * task_losses[k] + log_vars[k] for k in task_losses)


def test_uncertainty_weighted_matches_formula_under_jit():
  task_losses = {"depth": 2.3, "seg": 0.7, "inst": 1.9}
  log_vars = {"depth": 0.4, "seg": -1.2, "inst": 0.0}
  total, terms = jax.jit(losses.uncertainty_weighted)(
      {k: jnp.float32(v) for k, v in task_losses.items()}, log_vars)
  np.testing.assert_allclose(total, _np_uncertainty(task_losses, log_vars), rtol=1e-6)
  for k in task_losses:
    np.testing.assert_allclose(
        terms[k], np.exp(-log_vars[k]) * task_losses[k] + log_vars[k], rtol=1e-6)
  # Kendall et al.'s regression form L/(2σ²) + log σ with σ² = exp(s) is half of it.
  sigma = {k: np.exp(v / 2) for k, v in log_vars.items()}
  kendall = sum(task_losses[k] / (2 * sigma[k] ** 2) + np.log(sigma[k]) for k in task_losses)
  np.testing.assert_allclose(total / 2, kendall, rtol=1e-6)


def test_uncertainty_weighted_gradient_vanishes_at_log_of_the_loss():
  task_losses = {"a": jnp.array(2.0), "b": jnp.array(0.25)}
  grad_fn = jax.jit(jax.grad(lambda s: losses.uncertainty_weighted(task_losses, s)[0]))
  optimum = {k: jnp.log(v) for k, v in task_losses.items()}
  g = grad_fn(optimum)
  for k in task_losses:
    np.testing.assert_allclose(g[k], 0.0, atol=1e-6)
  # Elsewhere it is 1 - exp(-s) L (so the check above can fail).
  g0 = grad_fn({"a": jnp.array(0.0), "b": jnp.array(0.0)})
  np.testing.assert_allclose(g0["a"], 1 - 2.0, rtol=1e-6)
  np.testing.assert_allclose(g0["b"], 1 - 0.25, rtol=1e-6)


def test_uncertainty_weighted_learns_log_variances_with_optax():
  task_losses = {"a": jnp.array(4.0), "b": jnp.array(0.5)}
  tx = optax.adam(0.05)
  params = {"a": jnp.array(0.0), "b": jnp.array(0.0)}

  def step(carry, _):
    params, state = carry
    grads = jax.grad(lambda s: losses.uncertainty_weighted(task_losses, s)[0])(params)
    updates, state = tx.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=400)
  for k in task_losses:
    np.testing.assert_allclose(params[k], np.log(float(task_losses[k])), atol=2e-2)


def test_uncertainty_weighted_keys_and_types():
  with pytest.raises(ValueError, match="log_vars.*missing keys: \\['b'\\]"):
    losses.uncertainty_weighted({"a": 1.0, "b": 2.0}, {"a": 0.0})
  with pytest.raises(ValueError, match="extra keys: \\['c'\\]"):
    losses.uncertainty_weighted({"a": 1.0}, {"a": 0.0, "c": 0.0})
  with pytest.raises(TypeError, match="log_vars"):
    losses.uncertainty_weighted({"a": 1.0}, jnp.zeros(1))
  total, _ = losses.uncertainty_weighted({"a": jnp.float16(1.0)}, {"a": jnp.float32(0.5)})
  assert total.dtype == jnp.float32 and np.isfinite(total)
