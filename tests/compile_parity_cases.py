"""A panel of results that must not depend on how XLA compiles them.

``tests/test_compile_settings.py`` computes ``panel()`` in the test process (the
suite's fast-compile XLA flags, ``compile_settings.py``) and in a subprocess with
XLA's default pipeline, and compares. Run alone it prints the panel as JSON.
Every public loss (value and gradient, ordinary and extreme inputs, float32 and
float16), the metrics, a few Flax training steps and the linear solvers.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lossreg_jax import linear, losses, metrics, training

N, C = 16, 4


def _inputs():
  rng = np.random.default_rng(0)
  f = lambda *s, scale=1.0: (scale * rng.standard_normal(s)).astype(np.float32)
  xy = rng.uniform(0, 10, size=(N, 2)).astype(np.float32)
  boxes = np.concatenate([xy, xy + rng.uniform(0.5, 5, size=(N, 2))], -1).astype(np.float32)
  boxes[0] = boxes[0, [0, 1, 0, 1]]  # a degenerate (empty) box
  logits = f(N, 3, scale=3.0)
  logits[0] = [1e4, -1e4, 0.0]  # huge logits
  probs = np.array(jax.nn.sigmoid(f(N, 3)))
  probs[0] = [0.0, 1.0, 0.5]  # probabilities 0 and 1
  return dict(
      pred=f(N, 3, scale=2.0), target=f(N, 3), logits=logits, probs=probs,
      labels=rng.integers(0, 2, (N, 3)).astype(np.float32),
      class_logits=f(N, C, scale=2.0), int_labels=rng.integers(0, C, N).astype(np.int32),
      onehot=np.eye(C, dtype=np.float32)[rng.integers(0, C, N)],
      boxes=boxes, boxes2=(boxes + f(N, 4, scale=0.5)).astype(np.float32),
      hidden=f(N, 8), vocab=f(8, 24), vocab_labels=rng.integers(0, 24, N).astype(np.int32),
      weights=rng.uniform(0.1, 2.0, N).astype(np.float32), where=rng.uniform(size=N) > 0.3)


def _loss_cases(d):
  kw = dict(weights=d["weights"], where=d["where"])
  for name in ("squared_error", "absolute_error", "huber_loss", "smooth_l1_loss", "log_cosh",
               "quantile_loss", "asymmetric_squared_error"):
    yield name, getattr(losses, name), (d["pred"], d["target"]), kw
  yield "binary_cross_entropy", losses.binary_cross_entropy, (d["probs"], d["labels"]), dict(
      kw, positive_weight=3.0, label_smoothing=0.1)
  yield ("sigmoid_binary_cross_entropy", losses.sigmoid_binary_cross_entropy,
         (d["logits"], d["labels"]), dict(kw, positive_weight=3.0))
  yield "sigmoid_focal_loss", losses.sigmoid_focal_loss, (d["logits"], d["labels"]), dict(
      kw, gamma=2.0, alpha=0.25)
  yield "hinge_loss", losses.hinge_loss, (d["logits"], 2 * d["labels"] - 1), kw
  yield "softmax_cross_entropy", losses.softmax_cross_entropy, (d["class_logits"], d["onehot"]), dict(
      kw, label_smoothing=0.1)
  yield ("softmax_cross_entropy_with_integer_labels",
         losses.softmax_cross_entropy_with_integer_labels, (d["class_logits"], d["int_labels"]),
         dict(kw, class_weights=jnp.arange(1.0, C + 1.0)))
  yield ("categorical_cross_entropy", losses.categorical_cross_entropy,
         (jax.nn.softmax(d["class_logits"]), d["onehot"]), kw)
  for name in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss"):
    yield name, getattr(losses, name), (d["boxes2"], d["boxes"]), kw
  yield ("linear_softmax_cross_entropy", losses.linear_softmax_cross_entropy,
         (d["hidden"], d["vocab"], d["vocab_labels"]), dict(kw, chunk_size=8))


def _losses(d):
  out = {}
  for name, fn, args, kw in _loss_cases(d):
    floats = [jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) for a in args]

    @jax.jit  # one program per loss: float32 and float16 value and gradient, elementwise
    def results(*a, fn=fn, kw=kw, floats=floats):
      res = {"none": fn(*a, reduction="none")}
      for dtype in (jnp.float32, jnp.float16):
        cast = [x.astype(dtype) if f else x for x, f in zip(a, floats)]
        res[jnp.dtype(dtype).name] = jax.value_and_grad(lambda p, *r: fn(p, *r, **kw))(*cast)
      return res

    for key, value in results(*map(jnp.asarray, args)).items():
      out[f"{name}/{key}"] = np.concatenate(
          [np.asarray(v, np.float64).ravel() for v in jax.tree.leaves(value)]).tolist()
  return out


def _metrics(d):
  scores, y = d["logits"][1:, 1], d["labels"][1:, 1].astype(np.int32)
  probs = jax.nn.sigmoid(scores)
  pred = (scores > 0).astype(jnp.int32)
  kw = dict(weights=d["weights"][1:])
  jit = lambda f, *a, **k: np.asarray(jax.jit(lambda *x: f(*x, **k))(*a), np.float64).ravel().tolist()
  return {
      "roc_auc": jit(metrics.roc_auc, scores, y, **kw),
      "average_precision": jit(metrics.average_precision, scores, y, **kw),
      "brier_score": jit(metrics.brier_score, probs, y, **kw),
      "expected_calibration_error": jit(metrics.expected_calibration_error, probs, y),
      "f1_score": jit(metrics.f1_score, pred, y, **kw),
      "confusion_matrix": jit(metrics.confusion_matrix, pred, y, num_classes=2),
      "r2_score": jit(metrics.r2_score, d["pred"][:, 0], d["target"][:, 0], weights=d["weights"]),
      "mean_pinball_loss": jit(metrics.mean_pinball_loss, d["pred"][:, 0], d["target"][:, 0]),
  }


class _MLP(nnx.Module):
  def __init__(self, rngs):
    self.hidden = nnx.Linear(3, 8, rngs=rngs)
    self.dropout = nnx.Dropout(0.2, rngs=rngs)
    self.out = nnx.Linear(8, 1, rngs=rngs)

  def __call__(self, x):
    return self.out(self.dropout(nnx.relu(self.hidden(x))))[..., 0]


def _training(d):
  model = _MLP(nnx.Rngs(params=0, dropout=1))
  opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  step = training.make_train_step(lambda z, t, **k: losses.sigmoid_binary_cross_entropy(z, t, **k))
  curve = [float(step(model, opt, (d["pred"], d["labels"][:, 0]))[0]) for _ in range(5)]
  return {"train_step": curve + [float(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))[0].ravel()]}


def _linear():
  rng = np.random.default_rng(1)
  X = rng.standard_normal((40, 6)).astype(np.float32)
  y = (X @ rng.standard_normal(6) + 0.1 * rng.standard_normal(40)).astype(np.float32)
  out = {}
  for name, fit in (("ridge", linear.ridge(X, y, alpha=1.0)),
                    ("elastic_net", linear.elastic_net(X, y, alpha=0.05, l1_ratio=0.5))):
    out[name] = [float(fit.intercept), *np.asarray(fit.coef, np.float64).ravel()]
  return out


def panel() -> dict[str, list[float]]:
  """Every result of the panel as a flat list of floats (NaN / inf kept)."""
  d = _inputs()
  return {**_losses(d), **_metrics(d), **_training(d), **_linear()}


if __name__ == "__main__":
  print(json.dumps(panel()))
