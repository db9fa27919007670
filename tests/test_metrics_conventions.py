"""Conventions over the regression, ranking, calibration and decision metrics.

* Strict dtype promotion: every metric runs inside
  ``jax.numpy_dtype_promotion("strict")`` for float32, float16 and bfloat16
  inputs (its jitted core is traced under it) and returns float32 (computed in
  float32; thresholds keep the scores' dtype).
* ``jit`` of a function that closes over concrete arrays: the value checks
  still run and the curves take their fixed-length (padded) form.
* Sharding: on 4 simulated devices (own process, as tests/test_sharding.py),
  a batch sharded over a ("data",) mesh gives the unsharded values.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import metrics
from compile_settings import with_xla_flags

N = 16


def _inputs(dtype, seed=0):
  rng = np.random.default_rng(seed)
  return dict(
      p=jnp.asarray(rng.random(N), dtype),
      t=jnp.asarray(rng.random(N), dtype),
      pm=jnp.asarray(jax.nn.softmax(jnp.asarray(rng.normal(size=(N, 3)), jnp.float32)), dtype),
      yb=jnp.asarray(rng.integers(0, 2, N)),
      yc=jnp.asarray(rng.integers(0, 3, N)),
      w=jnp.asarray(rng.uniform(0.1, 2.0, N), jnp.float32),
      m=jnp.asarray(rng.random(N) < 0.8),
      cost=jnp.asarray(rng.random((3, 3)), jnp.float32),
  )


def _cases(d):
  kw = dict(weights=d["w"], where=d["m"])
  return {
      "mean_squared_error": lambda: metrics.mean_squared_error(d["p"], d["t"], **kw),
      "root_mean_squared_error": lambda: metrics.root_mean_squared_error(d["p"], d["t"], **kw),
      "mean_absolute_error": lambda: metrics.mean_absolute_error(d["p"], d["t"], **kw),
      "r2_score": lambda: metrics.r2_score(d["p"], d["t"], **kw),
      "r2_score/int_targets": lambda: metrics.r2_score(d["p"], d["yc"], **kw),
      "mean_pinball_loss": lambda: metrics.mean_pinball_loss(d["p"], d["t"], alpha=0.3, **kw),
      "underprediction_rate": lambda: metrics.underprediction_rate(d["p"], d["t"], **kw),
      "roc_auc": lambda: metrics.roc_auc(d["p"], d["yb"], **kw),
      "roc_curve": lambda: metrics.roc_curve(d["p"], d["yb"], **kw),
      "precision_recall_curve": lambda: metrics.precision_recall_curve(d["p"], d["yb"], **kw),
      "average_precision": lambda: metrics.average_precision(d["p"], d["yb"], **kw),
      "brier_score": lambda: metrics.brier_score(d["p"], d["yb"], **kw),
      "brier_score/multiclass": lambda: metrics.brier_score(d["pm"], d["yc"], **kw),
      "calibration_curve": lambda: metrics.calibration_curve(d["p"], d["yb"], where=d["m"]),
      "calibration_curve/quantile": lambda: metrics.calibration_curve(
          d["p"], d["yb"], strategy="quantile", where=d["m"]),
      "expected_calibration_error": lambda: metrics.expected_calibration_error(
          d["p"], d["yb"], **kw),
      "expected_calibration_error/multiclass": lambda: metrics.expected_calibration_error(
          d["pm"], d["yc"], **kw),
      "expected_cost": lambda: metrics.expected_cost(d["yc"], d["yc"], cost_matrix=d["cost"],
                                                     **kw),
      "cost_threshold": lambda: metrics.cost_threshold(cost_fp=1.0, cost_fn=2.0),
      "best_threshold": lambda: metrics.best_threshold(d["p"], d["yb"], cost_fp=1.0,
                                                       cost_fn=2.0, **kw),
  }


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
def test_strict_dtype_promotion_and_closed_over_jit(dtype):
  d = _inputs(dtype)
  with jax.numpy_dtype_promotion("strict"):
    for name, fn in _cases(d).items():
      eager = fn()
      # jit closing over concrete arrays (float32 only, to keep compiles few).
      traced = jax.jit(fn)() if dtype == jnp.float32 else eager
      for e, t in zip(jax.tree.leaves(eager), jax.tree.leaves(traced)):
        expected_dtype = dtype if name.endswith("best_threshold") else jnp.float32
        if name.startswith(("roc_curve", "precision_recall_curve")):
          # The curves: fixed-length padded arrays under jit, with the same first points.
          np.testing.assert_allclose(np.asarray(t[:len(e)], np.float32),
                                     np.asarray(e, np.float32), rtol=1e-6, err_msg=name)
          continue
        if name.startswith("calibration_curve"):  # one entry per bin, NaN when empty
          t = t[~jnp.isnan(t)]
        assert t.dtype == e.dtype, name
        if e.dtype != dtype:  # thresholds keep the scores' dtype
          assert e.dtype == expected_dtype, (name, e.dtype)
        np.testing.assert_allclose(np.asarray(t, np.float32), np.asarray(e, np.float32),
                                   rtol=1e-6, err_msg=name)


def test_value_checks_run_inside_jit_on_closed_over_arrays():
  d = _inputs(jnp.float32)
  labels, too_big = d["yb"] + 1, d["p"] * 3
  with pytest.raises(ValueError, match="labels"):
    jax.jit(lambda: metrics.average_precision(d["p"], labels))()
  with pytest.raises(ValueError, match="probabilities"):
    jax.jit(lambda: metrics.expected_calibration_error(too_big, d["yb"]))()
  fpr, _, _ = jax.jit(lambda: metrics.roc_curve(d["p"], d["yb"]))()
  assert fpr.shape == (N + 1,)


SCRIPT = textwrap.dedent("""
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from lossreg_jax import metrics

    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    n = 64
    rng = np.random.default_rng(0)
    d = dict(
        p=rng.random(n).astype(np.float32), t=rng.normal(size=(n, 2)).astype(np.float32),
        s=np.round(rng.random(n), 1).astype(np.float32), yb=rng.integers(0, 2, n),
        yc=rng.integers(0, 3, n), w=rng.uniform(0.1, 2.0, n).astype(np.float32),
        m=rng.random(n) < 0.7,
        pm=np.asarray(jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 3)), jnp.float32))))
    pred2 = (d["t"] + rng.normal(size=(n, 2))).astype(np.float32)
    cost = np.array([[0, 1, 2], [3, 0, 1], [1, 4, 0]], np.float32)
    cases = [
        ("mean_squared_error", metrics.mean_squared_error, (pred2, d["t"]), {}),
        ("root_mean_squared_error", metrics.root_mean_squared_error, (pred2, d["t"]), {}),
        ("mean_absolute_error", metrics.mean_absolute_error, (pred2, d["t"]), {}),
        ("r2_score", metrics.r2_score, (pred2, d["t"]), {}),
        ("mean_pinball_loss", metrics.mean_pinball_loss, (pred2, d["t"]), {"alpha": 0.8}),
        ("underprediction_rate", metrics.underprediction_rate, (pred2, d["t"]), {}),
        ("roc_curve", metrics.roc_curve, (d["s"], d["yb"]), {}),
        ("precision_recall_curve", metrics.precision_recall_curve, (d["s"], d["yb"]), {}),
        ("average_precision", metrics.average_precision, (d["s"], d["yb"]), {}),
        ("brier_score", metrics.brier_score, (d["pm"], d["yc"]), {}),
        ("expected_calibration_error", metrics.expected_calibration_error, (d["pm"], d["yc"]), {}),
        ("expected_cost", metrics.expected_cost, (d["yb"] + d["yc"] % 2, d["yc"]),
         {"cost_matrix": cost}),
        ("best_threshold", metrics.best_threshold, (d["s"], d["yb"]),
         {"cost_fp": 1.0, "cost_fn": 3.0}),
    ]
    def shard(x):
      return jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data")))
    for name, fn, args, kw in cases:
      kw = dict(kw, weights=d["w"], where=d["m"])
      f = jax.jit(lambda *a, **k: fn(*a, **k, **{o: v for o, v in kw.items()
                                                 if o not in k}))
      plain = f(*args)
      sharded = f(*map(shard, args), weights=shard(d["w"]), where=shard(d["m"]))
      diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                 zip(jax.tree.leaves(plain), jax.tree.leaves(sharded)))
      print(json.dumps(dict(case=name, diff=diff,
                            shards=len(shard(args[0]).sharding.device_set))))
""")


@pytest.mark.slow
def test_sharded_batch_gives_the_unsharded_values():
  env = dict(with_xla_flags(os.environ, "--xla_force_host_platform_device_count=4"),
             JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(sys.path))
  proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                        env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
  assert len(rows) == 13, proc.stdout
  assert all(r["shards"] == 4 for r in rows)
  bad = [r for r in rows if not r["diff"] <= 1e-5]
  assert not bad, bad


def test_empty_inputs_are_refused_and_empty_selections_give_the_documented_values():
  # scikit-learn refuses arrays of 0 rows (check_array: "Found array with 0
  # sample(s)"); so do we, naming the argument. Rows left out by where= are a
  # selection, not empty input: they give the documented values.
  empty_e, empty_z = np.zeros(0, np.float32), np.zeros(0, int)
  e, z, none = np.zeros(1, np.float32), np.zeros(1, int), np.zeros(1, bool)
  regression = (metrics.mean_squared_error, metrics.root_mean_squared_error,
                metrics.mean_absolute_error, metrics.mean_pinball_loss,
                metrics.underprediction_rate)
  for fn in regression + (metrics.r2_score,):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: predictions is empty"):
      fn(empty_e, empty_e)
  for fn in (metrics.average_precision, metrics.brier_score, metrics.roc_auc,
             metrics.expected_calibration_error, metrics.roc_curve, metrics.accuracy):
    with pytest.raises(ValueError, match="is empty"):
      fn(empty_e if fn is not metrics.accuracy else empty_z, empty_z)
  for fn in regression:
    assert fn(e, e, where=none) == 0.0
  with pytest.warns(metrics.UndefinedMetricWarning, match="less than two samples"):
    assert np.isnan(metrics.r2_score(e, e, where=none))
  assert metrics.average_precision(e, z, where=none) == 0.0
  assert metrics.brier_score(e, z, where=none) == 0.0
  assert metrics.expected_calibration_error(e, z, where=none) == 0.0
  assert np.isnan(metrics.best_threshold(e, z, cost_fp=1.0, cost_fn=1.0, where=none))
  fpr, tpr, thresholds = metrics.roc_curve(e, z, where=none)
  assert fpr.shape == (1,) and thresholds[0] == np.inf
  precision, recall, thresholds = metrics.precision_recall_curve(e, z, where=none)
  assert precision.tolist() == [1.0] and recall.tolist() == [0.0] and thresholds.shape == (0,)
  assert metrics.calibration_curve(e, z, where=none)[0].shape == (0,)


def test_weights_must_be_finite_and_non_negative():
  # scikit-learn's _check_sample_weight refuses these; concrete weights are checked.
  p, y = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
  for bad in (-1.0, np.nan, np.inf):
    w = np.array([bad, 1.0, 1.0, 1.0])
    for fn, args in ((metrics.accuracy, (p, y)), (metrics.mean_squared_error, (p * 1.0, y * 1.0)),
                     (metrics.roc_auc, (p * 1.0, y)), (metrics.brier_score, (p * 1.0, y))):
      with pytest.raises(ValueError, match=r"weights must be finite and non-negative"):
        fn(*args, weights=w)
      with pytest.raises(ValueError, match=r"weights must be finite and non-negative"):
        fn(*args, sample_weight=w)
  assert float(jax.jit(lambda w: metrics.accuracy(p, y, weights=w))(np.ones(4))) == 0.75
