"""Run in a subprocess with 4 simulated CPU devices by tests/test_sharding.py.

For every case it evaluates a loss or metric (and, for losses, its gradient) on a
batch sharded over a ("data",) mesh and on the same batch on one device, and
prints one JSON line per case with the largest difference seen.
"""

from __future__ import annotations

import json
import os
import sys

# Appended: the suite's compile flags (tests/compile_settings.py) come in XLA_FLAGS.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from lossreg_jax import losses, metrics  # noqa: E402

N, C = 64, 5


def _data():
  rng = np.random.default_rng(0)
  f = lambda *s: rng.normal(size=s).astype(np.float32)
  xy = rng.uniform(0, 10, size=(N, 2)).astype(np.float32)
  wh = rng.uniform(0.5, 5, size=(N, 2)).astype(np.float32)
  boxes_a = np.concatenate([xy, xy + wh], -1)
  boxes_b = boxes_a + rng.normal(scale=0.5, size=(N, 4)).astype(np.float32)
  return dict(
      pred=f(N, 3), target=f(N, 3), logits=f(N, C),
      probs=rng.uniform(0.01, 0.99, size=(N, 3)).astype(np.float32),
      bin_labels=rng.integers(0, 2, size=(N, 3)).astype(np.float32),
      int_labels=rng.integers(0, C, size=(N,)).astype(np.int32),
      onehot=np.eye(C, dtype=np.float32)[rng.integers(0, C, size=(N,))],
      weights=rng.uniform(0.1, 2.0, size=(N, 1)).astype(np.float32),
      weights1=rng.uniform(0.1, 2.0, size=(N,)).astype(np.float32),
      where=rng.uniform(size=(N, 1)) > 0.3,
      where1=rng.uniform(size=(N,)) > 0.3,
      boxes_a=boxes_a, boxes_b=boxes_b,
      hidden=f(N, 16), vocab_weight=f(16, 40),
      scores=f(N), bin_int=rng.integers(0, 2, size=(N,)).astype(np.int32),
      pred_int=rng.integers(0, C, size=(N,)).astype(np.int32),
  )


def _loss_cases():
  d = _data()
  ew = dict(weights=d["weights"], where=d["where"])
  ew1 = dict(weights=d["weights1"], where=d["where1"])
  reg = ["squared_error", "absolute_error", "huber_loss", "smooth_l1_loss", "log_cosh",
         "quantile_loss", "asymmetric_squared_error"]
  for name in reg:
    for red in ("mean", "weighted_mean", "sum"):
      yield f"{name}/{red}", getattr(losses, name), (d["pred"], d["target"]), dict(ew, reduction=red)
  for red in ("mean", "weighted_mean"):
    yield f"binary_cross_entropy/{red}", losses.binary_cross_entropy, (d["probs"], d["bin_labels"]), dict(ew, reduction=red, positive_weight=3.0)
    yield f"sigmoid_binary_cross_entropy/{red}", losses.sigmoid_binary_cross_entropy, (d["pred"], d["bin_labels"]), dict(ew, reduction=red, positive_weight=3.0)
    yield f"sigmoid_focal_loss/{red}", losses.sigmoid_focal_loss, (d["pred"], d["bin_labels"]), dict(ew, reduction=red, alpha=0.25)
    yield f"hinge_loss/{red}", losses.hinge_loss, (d["pred"], 2 * d["bin_labels"] - 1), dict(ew, reduction=red)
    yield f"softmax_cross_entropy/{red}", losses.softmax_cross_entropy, (d["logits"], d["onehot"]), dict(ew1, reduction=red, label_smoothing=0.1)
    yield f"categorical_cross_entropy/{red}", losses.categorical_cross_entropy, (jax.nn.softmax(d["logits"]), d["onehot"]), dict(ew1, reduction=red)
    yield (f"softmax_cross_entropy_with_integer_labels/{red}",
           losses.softmax_cross_entropy_with_integer_labels, (d["logits"], d["int_labels"]),
           dict(ew1, reduction=red, class_weights=jnp.arange(1.0, C + 1.0)))
    for box in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss"):
      yield f"{box}/{red}", getattr(losses, box), (d["boxes_a"], d["boxes_b"]), dict(ew1, reduction=red)
  yield ("linear_softmax_cross_entropy/mean", losses.linear_softmax_cross_entropy,
         (d["hidden"], d["vocab_weight"], d["int_labels"]), dict(ew1, chunk_size=16))


def _metric_cases():
  d = _data()
  kw = dict(weights=d["weights1"], where=d["where1"])
  yield "accuracy", metrics.accuracy, (d["pred_int"], d["int_labels"]), dict(kw)
  for avg in ("micro", "macro", "weighted"):
    for name in ("precision", "recall", "f1_score"):
      yield f"{name}/{avg}", getattr(metrics, name), (d["pred_int"], d["int_labels"]), dict(kw, num_classes=C, average=avg)
  yield "confusion_matrix", metrics.confusion_matrix, (d["pred_int"], d["int_labels"]), dict(kw, num_classes=C)
  yield "roc_auc", metrics.roc_auc, (d["scores"], d["bin_int"]), dict(kw)


def _shard(mesh, x):
  x = jnp.asarray(x)
  if x.ndim == 0 or x.shape[0] != N:
    return jax.device_put(x, NamedSharding(mesh, P()))
  return jax.device_put(x, NamedSharding(mesh, P("data")))


def _max_diff(a, b):
  diffs = jax.tree.map(lambda u, v: float(jnp.max(jnp.abs(jnp.asarray(u, jnp.float32) - jnp.asarray(v, jnp.float32)))), a, b)
  return max(jax.tree.leaves(diffs), default=0.0)


def main():
  assert jax.device_count() == 4, jax.devices()
  mesh = Mesh(np.array(jax.devices()), ("data",))
  for kind, cases in (("loss", _loss_cases()), ("metric", _metric_cases())):
    for name, fn, args, kwargs in cases:
      try:
        f = jax.jit(lambda *a, fn=fn, kwargs=kwargs: fn(*a, **{k: v for k, v in kwargs.items()}))
        plain = f(*args)
        sharded_args = tuple(_shard(mesh, a) for a in args)
        skw = {k: (_shard(mesh, v) if hasattr(v, "shape") else v) for k, v in kwargs.items()}
        g = jax.jit(lambda *a, fn=fn, skw=skw: fn(*a, **skw))
        sharded = g(*sharded_args)
        diff = _max_diff(plain, sharded)
        n_shards = len(sharded_args[0].sharding.device_set)
        if kind == "loss":
          floats = tuple(i for i, a in enumerate(args) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating))
          gp = jax.jit(jax.grad(lambda *a, fn=fn: fn(*a, **kwargs), argnums=floats))(*args)
          gs = jax.jit(jax.grad(lambda *a, fn=fn: fn(*a, **skw), argnums=floats))(*sharded_args)
          diff = max(diff, _max_diff(gp, gs))
        scale = max(1.0, float(jnp.max(jnp.abs(jnp.asarray(plain, jnp.float32)))))
        print(json.dumps(dict(case=name, kind=kind, diff=diff, scale=scale, shards=n_shards)))
      except Exception as e:  # reported, and the test fails on it
        print(json.dumps(dict(case=name, kind=kind, error=f"{type(e).__name__}: {e}")))
  sys.stdout.flush()


if __name__ == "__main__":
  main()
