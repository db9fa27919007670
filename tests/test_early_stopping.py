"""Tests for regularizers.early_stopping against a pure-Python Keras reference."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import regularizers
from lossreg_jax.regularizers import early_stopping


def keras_reference(metrics, *, patience=0, min_delta=0.0, mode="min", baseline=None,
                    start_from_epoch=0):
  """Keras 3 ``EarlyStopping.on_train_begin`` / ``on_epoch_end``, in plain Python.

  Returns (stopped_epoch or None, best, best_epoch or None) after running until
  ``stop_training`` is set or the metrics run out.
  """
  less = mode == "min"
  signed_delta = -abs(min_delta) if less else abs(min_delta)
  op = (lambda a, b: a < b) if less else (lambda a, b: a > b)

  def is_improvement(value, reference):
    if reference is None:
      return True
    return op(value - signed_delta, reference)

  wait, best, best_epoch = 0, None, None
  for epoch, current in enumerate(metrics):
    if epoch < start_from_epoch:
      continue
    wait += 1
    if is_improvement(current, best):
      best, best_epoch = current, epoch
      if baseline is None or is_improvement(current, baseline):
        wait = 0
      continue
    if wait >= patience and epoch > 0:
      return epoch, best, best_epoch
  return None, best, best_epoch


SEQUENCES = {
    "down_then_flat": [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.05, 2.0, 2.5, 2.6, 2.7, 2.8],
    "noisy": [1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.80, 0.81, 0.82, 0.83, 0.84, 0.85],
    "rising": [0.1, 0.2, 0.3, 0.37, 0.34, 0.5, 0.49, 0.48, 0.47, 0.6, 0.59, 0.58],
    "with_nan": [2.0, 1.5, float("nan"), 1.6, 1.4, 1.45, 1.46, 1.47, 1.48, 1.3, 1.2, 1.1],
}

CASES = [
    ("down_then_flat", dict(patience=0)),
    ("down_then_flat", dict(patience=2)),
    ("down_then_flat", dict(patience=3, min_delta=0.5)),
    ("down_then_flat", dict(patience=1, baseline=3.5)),
    ("down_then_flat", dict(patience=2, baseline=2.5)),
    ("noisy", dict(patience=2, start_from_step=4)),
    ("noisy", dict(patience=1, min_delta=0.02)),
    ("rising", dict(patience=1, mode="max")),
    ("rising", dict(patience=2, mode="max", min_delta=0.05, baseline=0.22)),
    ("rising", dict(patience=0, mode="max", start_from_step=3)),
    ("with_nan", dict(patience=2)),
    ("down_then_flat", dict(patience=100)),  # never stops
]


def _scan(es, metrics):
  """Runs es.update through lax.scan with params that change every step."""
  metrics = jnp.asarray(metrics, jnp.float32)
  params0 = {"w": jnp.zeros(3), "b": jnp.asarray(0, jnp.int32)}

  def body(state, inputs):
    step, metric = inputs
    params = {"w": jnp.full(3, step, jnp.float32) + 1.0, "b": step + 1}
    return es.update(state, metric, params), state.should_stop

  steps = jnp.arange(metrics.shape[0], dtype=jnp.int32)
  return jax.jit(lambda m: jax.lax.scan(body, es.init(params0), (steps, m)))(metrics)


@pytest.mark.parametrize("name,kwargs", CASES)
def test_matches_keras_reference_in_scan(name, kwargs):
  metrics = SEQUENCES[name]
  ref_kwargs = dict(kwargs)
  ref_kwargs["start_from_epoch"] = ref_kwargs.pop("start_from_step", 0)
  # The reference sees float32-rounded values, as the state does.
  rounded = [float(np.float32(m)) for m in metrics]
  stop_epoch, best, best_epoch = keras_reference(rounded, **ref_kwargs)

  state, stopped_before = _scan(early_stopping(**kwargs), metrics)
  if stop_epoch is None:
    assert not bool(state.should_stop)
    assert int(state.stop_step) == -1
    assert int(state.step) == len(metrics)
  else:
    assert bool(state.should_stop)
    assert int(state.stop_step) == stop_epoch
    assert int(state.step) == stop_epoch + 1  # frozen after the stop
    # should_stop switches on once and stays on
    np.testing.assert_array_equal(stopped_before, np.arange(len(metrics)) > stop_epoch)
  assert int(state.best_step) == best_epoch
  if math.isnan(best):
    assert jnp.isnan(state.best_metric)
  else:
    assert float(state.best_metric) == best
  # best_params are the params passed at best_step
  np.testing.assert_array_equal(state.best_params["w"], np.full(3, best_epoch + 1.0))
  assert int(state.best_params["b"]) == best_epoch + 1
  assert state.best_params["b"].dtype == jnp.int32


def test_patience_zero_stops_at_first_non_improvement():
  es = early_stopping(patience=0)
  state, _ = _scan(es, [3.0, 2.0, 2.0, 1.0])
  assert int(state.stop_step) == 2 and int(state.best_step) == 1


def test_baseline_never_beaten_stops_after_patience_and_keeps_best_params():
  # Improving but never below the baseline: wait is never reset.
  es = early_stopping(patience=3, baseline=0.5)
  state, _ = _scan(es, [2.0, 1.9, 1.8, 1.85, 1.7, 1.75, 1.0, 0.2])
  ref = keras_reference([2.0, 1.9, 1.8, 1.85, 1.7, 1.75, 1.0, 0.2], patience=3, baseline=0.5)
  assert int(state.stop_step) == ref[0] == 3
  assert int(state.best_step) == 2
  np.testing.assert_array_equal(state.best_params["w"], np.full(3, 3.0))


def test_nothing_counted_before_start_from_step():
  es = early_stopping(patience=0, start_from_step=10)
  state, _ = _scan(es, [3.0, 4.0, 5.0])
  assert not bool(state.should_stop)
  assert int(state.best_step) == -1 and int(state.wait) == 0
  assert float(state.best_metric) == np.inf
  np.testing.assert_array_equal(state.best_params["w"], np.zeros(3))  # init params


def test_frozen_after_stop_and_jit_update():
  es = early_stopping(patience=0)
  update = jax.jit(es.update)
  state = es.init(jnp.zeros(2))
  for step, metric in enumerate([1.0, 2.0]):
    state = update(state, metric, jnp.full(2, float(step)))
  assert bool(state.should_stop)
  later = update(state, -100.0, jnp.full(2, 99.0))
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(later)):
    np.testing.assert_array_equal(a, b)


def test_structure_and_dtypes_are_stable():
  es = early_stopping(patience=2, baseline=1.0)
  params = {"w": jnp.ones((2, 2), jnp.bfloat16)}
  state = es.init(params)
  new = es.update(state, jnp.float16(0.5), {"w": jnp.zeros((2, 2), jnp.float32)})
  assert jax.tree.structure(new) == jax.tree.structure(state)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new)):
    assert a.dtype == b.dtype and a.shape == b.shape
  assert isinstance(state, regularizers.EarlyStoppingState)


def test_while_loop_stops_at_the_keras_epoch():
  metrics = jnp.asarray(SEQUENCES["noisy"])
  es = early_stopping(patience=2, min_delta=0.01)

  def cond(carry):
    state, i = carry
    return ~state.should_stop & (i < metrics.shape[0])

  def body(carry):
    state, i = carry
    return es.update(state, metrics[i], {"w": i.astype(jnp.float32)}), i + 1

  state, _ = jax.jit(lambda: jax.lax.while_loop(cond, body, (es.init({"w": jnp.zeros(())}),
                                                               jnp.asarray(0))))()
  rounded = [float(np.float32(m)) for m in SEQUENCES["noisy"]]
  stop_epoch, _, best_epoch = keras_reference(rounded, patience=2, min_delta=0.01)
  assert int(state.stop_step) == stop_epoch
  assert float(state.best_params["w"]) == best_epoch


def test_vmap_over_runs():
  es = early_stopping(patience=1)
  runs = jnp.asarray([[3.0, 2.0, 2.5, 2.6], [3.0, 2.0, 1.0, 0.5]])

  def run(metrics):
    state = es.init(jnp.zeros(()))
    for i in range(4):
      state = es.update(state, metrics[i], jnp.asarray(float(i)))
    return state

  states = jax.vmap(run)(runs)
  np.testing.assert_array_equal(states.should_stop, [True, False])
  np.testing.assert_array_equal(states.best_params, [1.0, 3.0])


def test_bad_arguments():
  with pytest.raises(ValueError, match="mode"):
    early_stopping(mode="auto")
  with pytest.raises(ValueError, match="patience"):
    early_stopping(patience=-1)
  with pytest.raises(TypeError, match="patience"):
    early_stopping(patience=1.5)
  with pytest.raises(ValueError, match="min_delta"):
    early_stopping(min_delta=-0.1)
  with pytest.raises(ValueError, match="start_from_step"):
    early_stopping(start_from_step=-2)
  es = early_stopping()
  state = es.init(jnp.zeros(3))
  with pytest.raises(ValueError, match="metric"):
    es.update(state, jnp.zeros(2), jnp.zeros(3))
  with pytest.raises(ValueError, match="params"):
    es.update(state, 1.0, jnp.zeros(4))
