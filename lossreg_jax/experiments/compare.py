"""``compare_losses``: one model, several loss / regularizer specs, k-fold CV.

The k fold-models of a spec train at once: one compiled program ``vmap``s the
whole training run (a ``lax.scan`` over minibatches) over the folds' held-out
masks from ``selection.kfold_masks``. Held-out rows are excluded from every
minibatch through the losses' ``where=`` argument, so each fold trains on its
own rows while all folds share the shuffling.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lossreg_jax import losses, metrics, regularizers, selection
from lossreg_jax.experiments.spec import LossSpec, parse_spec, resolve_loss

__all__ = ["ComparisonResult", "compare_losses"]

DEFAULT_SPECS = ("bce", "bce:positive_weight=3", "focal:gamma=2")
METRICS = ("accuracy", "precision", "recall", "f1")


@dataclasses.dataclass(frozen=True)
class ComparisonResult:
  """What :func:`compare_losses` measured.

  Attributes:
    specs: The spec strings, in order.
    scores: ``{spec: {metric: per-fold values, shape (folds,)}}`` for the
      metrics ``accuracy``, ``precision``, ``recall``, ``f1`` on held-out rows.
    train_loss: ``{spec: array (folds, epochs)}``, each epoch's mean minibatch
      objective (loss plus penalty).
    seconds: ``{spec: wall seconds}`` (compilation included).
    task: ``"binary"`` or ``"multiclass"`` (metrics are macro averages then).
    settings: The model and training settings, for the report.
    predictions: ``{spec: int array (n,)}``, each row's class as predicted by
      the model of the fold that held it out (as scikit-learn's
      ``cross_val_predict``).
  """

  specs: tuple[str, ...]
  scores: dict
  train_loss: dict
  seconds: dict
  task: str
  settings: dict
  predictions: dict = dataclasses.field(default_factory=dict)

  def summary(self) -> dict:
    """``{spec: {metric: (mean, std)}}`` over folds (``std`` with ``ddof=0``)."""
    return {s: {m: (float(np.mean(v)), float(np.std(v))) for m, v in self.scores[s].items()}
            for s in self.specs}

  def table(self) -> str:
    """The summary as a fixed-width text table, one row per spec."""
    width = max(len("spec"), *(len(s) for s in self.specs))
    head = f"{'spec':<{width}}  " + "  ".join(f"{m:>15}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for spec, row in self.summary().items():
      cells = "  ".join(f"{row[m][0]:>7.3f} ± {row[m][1]:.3f}" for m in METRICS)
      lines.append(f"{spec:<{width}}  {cells}")
    return "\n".join(lines)

  def to_dict(self) -> dict:
    """A JSON-ready dictionary with per-fold values, means and stds."""
    return {
        "task": self.task, "settings": self.settings,
        "results": [{
            "spec": s, "seconds": self.seconds[s],
            "metrics": {m: {"mean": float(np.mean(v)), "std": float(np.std(v)),
                            "folds": [float(x) for x in v]}
                        for m, v in self.scores[s].items()},
            "train_loss_mean": [float(x) for x in np.mean(self.train_loss[s], axis=0)],
        } for s in self.specs],
    }


def _init_params(key, n_features: int, n_outputs: int, hidden: int) -> dict:
  init = jax.nn.initializers.glorot_uniform()
  if hidden == 0:  # logistic / softmax regression
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


def _data_loss(name: str, z, y, where, hyper: dict):
  if name == "bce":
    return losses.sigmoid_binary_cross_entropy(z, y.astype(z.dtype), where=where, **hyper)
  if name == "focal":
    return losses.sigmoid_focal_loss(z, y.astype(z.dtype), where=where, **hyper)
  if name == "hinge":  # labels {0, 1} -> targets {-1, 1}
    return losses.hinge_loss(z, 2 * y.astype(z.dtype) - 1, where=where)
  return losses.softmax_cross_entropy_with_integer_labels(z, y, where=where, **hyper)


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
  return (X - mean) / jnp.where(std > 0, std, 1)


def _train_fold(test_mask, X, y, batches, valid, params, key, hyper, *, loss_name,
                learning_rate):
  """Trains on ``~test_mask``; returns held-out predictions and the loss curve.

  ``hyper`` holds every numeric spec value as a traced scalar
  (``{"loss": {...}, "penalties": {name: {...}}}``), so specs that differ only
  in numbers (``bce`` and ``bce:positive_weight=3``) share one compiled program.
  ``batches`` / ``valid`` are ``(epochs, n_batches, batch_size)`` row indices
  and padding flags, shuffled on the host; they, the initial ``params`` and the
  dropout ``key`` are shared by all folds.
  """
  train = ~test_mask
  Xs = _standardize(X, train)
  tx = optax.adam(learning_rate)
  rate = hyper["penalties"].get("dropout", {}).get("rate")
  epochs, n_batches, batch_size = batches.shape

  def objective(p, rows, mask, k):
    z = _forward(p, Xs[rows], key=k, dropout_rate=rate)
    return _data_loss(loss_name, z, y[rows], mask, hyper["loss"]) + _penalty(
        p, hyper["penalties"])

  def step(carry, inputs):
    p, state = carry
    rows, ok, k = inputs
    value, grads = jax.value_and_grad(objective)(p, rows, ok & train[rows], k)
    updates, state = tx.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), value

  # Random keys only with dropout: random bits are costly to compile on CPU.
  keys = None if rate is None else jax.random.split(key, epochs * n_batches)
  flat = (batches.reshape(-1, batch_size), valid.reshape(-1, batch_size), keys)
  (params, _), values = jax.lax.scan(step, (params, tx.init(params)), flat)
  z = _forward(params, Xs)
  pred = jnp.argmax(z, axis=-1) if z.ndim == 2 else (z > 0).astype(jnp.int32)
  return pred, values.reshape(epochs, n_batches).mean(axis=1)


_STATIC = ("loss_name", "learning_rate")
# Compiled once per process for each static configuration and shape.


@functools.partial(jax.jit, static_argnames=_STATIC)
def _train_folds(test_masks, *args, **static):
  """All folds as one program: ``_train_fold`` vmapped over the held-out masks."""
  fold = functools.partial(_train_fold, **static)
  return jax.vmap(fold, in_axes=(0,) + (None,) * len(args))(test_masks, *args)


_train_one_fold = jax.jit(_train_fold, static_argnames=_STATIC)

@functools.partial(jax.jit, static_argnames=("task", "num_classes"))
def _fold_scores(pred, y, test_masks, *, task, num_classes):
  """Held-out metrics per fold, shape ``(folds,)`` each."""
  avg = dict(average="binary") if task == "binary" else dict(average="macro",
                                                              num_classes=num_classes)

  def one(p, m):
    return {"accuracy": metrics.accuracy(p, y, where=m),
            "precision": metrics.precision(p, y, where=m, **avg),
            "recall": metrics.recall(p, y, where=m, **avg),
            "f1": metrics.f1_score(p, y, where=m, **avg)}

  return jax.vmap(one)(pred, test_masks)


def _batches(n: int, epochs: int, batch_size: int, seed: int) -> tuple[np.ndarray, ...]:
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


def _infer_task(y: np.ndarray, task: str | None) -> tuple[str, int]:
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f"y must be integer class labels of shape (n,), got dtype {y.dtype} "
                     f"and shape {y.shape}; compare_losses is for classification (for "
                     f"regression see regularization_path).")
  num_classes = int(y.max()) + 1 if y.size else 0
  if y.min() < 0 or len(np.unique(y)) < 2:
    raise ValueError(f"y must hold class indices 0..k-1 with at least two classes, got "
                     f"{np.unique(y).tolist()[:10]}.")
  inferred = "binary" if num_classes == 2 else "multiclass"
  if task is not None and task != inferred:
    raise ValueError(f"task={task!r} but y has {num_classes} classes ({inferred}).")
  return inferred, num_classes


def compare_losses(
    X: ArrayLike,
    y: ArrayLike,
    specs: Sequence[str | LossSpec],
    *,
    task: str | None = None,
    folds: int = 5,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    hidden: int = 16,
    vmap_folds: bool = True,
    progress: bool = False,
) -> ComparisonResult:
  """Trains one model under each loss / regularizer spec with k-fold CV.

  The model is a one-hidden-layer ReLU MLP (``hidden`` units; ``hidden=0``
  gives logistic / softmax regression) on features standardized with each
  fold's training statistics, trained by Adam on shuffled minibatches. The
  folds are stratified ``selection.kfold_masks``; all folds of a spec train
  in ONE compiled, ``vmap``-ed program (``vmap_folds=False`` runs the same
  per-fold program in a Python loop: same numbers, for checking). Metrics
  (``lossreg_jax.metrics``) are computed on each fold's held-out rows: for
  binary labels with class 1 as the positive class, for multiclass labels as
  macro averages.

  Args:
    X: Features, shape ``(n, d)``.
    y: Integer class labels, shape ``(n,)``.
    specs: Spec strings (see :func:`parse_spec`) or parsed specs; the CLI's
      default is ``["bce", "bce:positive_weight=3", "focal:gamma=2"]``.
    task: ``"binary"`` / ``"multiclass"`` to check against the labels, or None.
    folds: Number of CV folds ``k >= 2``.
    seed: Seeds the folds, the initialization, the shuffling and dropout.
    epochs: Passes over the training rows.
    batch_size: Rows per minibatch.
    learning_rate: Adam's learning rate.
    hidden: Hidden units; 0 for a linear model.
    vmap_folds: Train the folds as one vmapped program (default) or in a loop.
    progress: Show a tqdm bar over the specs.

  Returns:
    A :class:`ComparisonResult`; ``.table()`` prints mean ± std per metric.

  Raises:
    ValueError: for a bad spec, labels that are not classes, a loss that does
      not fit the task, or bad sizes.

  Examples:
    >>> from lossreg_jax import datasets
    >>> ds = datasets.load("breast_cancer")
    >>> res = compare_losses(ds.X, ds.y, ["bce", "hinge+l1:1e-3"], folds=3, epochs=2,
    ...                      hidden=4, learning_rate=0.05)
    >>> res.specs, sorted(res.scores["bce"]), res.scores["bce"]["f1"].shape
    (('bce', 'hinge+l1:1e-3'), ['accuracy', 'f1', 'precision', 'recall'], (3,))
    >>> float(res.scores["bce"]["accuracy"].mean()) > 0.9
    True
  """
  parsed = [s if isinstance(s, LossSpec) else parse_spec(s) for s in specs]
  if not parsed:
    raise ValueError("specs must name at least one spec, e.g. ['bce'].")
  texts = [s.text for s in parsed]
  if len(set(texts)) != len(texts):
    raise ValueError(f"specs must be distinct, got {texts}.")
  X = np.asarray(X, np.float32)
  y_np = np.asarray(y)
  if X.ndim != 2 or X.shape[0] != y_np.shape[0]:
    raise ValueError(f"X must have shape (n, d) with n = len(y) = {y_np.shape[0]}, got "
                     f"{X.shape}.")
  task, num_classes = _infer_task(y_np, task)
  for name, value in (("folds", folds), ("epochs", epochs), ("batch_size", batch_size)):
    if not isinstance(value, int) or value < (2 if name == "folds" else 1):
      raise ValueError(f"{name} must be an int >= {2 if name == 'folds' else 1}, got {value!r}.")
  if folds > np.bincount(y_np).min():
    raise ValueError(f"folds={folds} exceeds the size of the smallest class "
                     f"({np.bincount(y_np).min()} rows).")
  if hidden == 0 and any(n == "dropout" for s in parsed for n, _ in s.penalties):
    raise ValueError("dropout needs a hidden layer: use hidden > 0.")
  resolved = [resolve_loss(s, task, num_classes) for s in parsed]  # fail before training
  key = jax.random.key(seed)
  masks = selection.kfold_masks(X.shape[0], folds, key=jax.random.fold_in(key, 1),
                                stratify=jnp.asarray(y_np))
  Xj, yj = jnp.asarray(X), jnp.asarray(y_np.astype(np.int32))
  batches, valid = (jnp.asarray(a) for a in _batches(X.shape[0], epochs, batch_size, seed))
  init_key, dropout_key = jax.random.fold_in(key, 2), jax.random.fold_in(key, 3)
  settings = dict(folds=folds, seed=seed, epochs=epochs, batch_size=batch_size,
                  learning_rate=learning_rate, hidden=hidden, n_samples=int(X.shape[0]),
                  n_features=int(X.shape[1]), num_classes=num_classes,
                  model="mlp" if hidden else "linear", optimizer="adam")
  scores, curves, seconds, held_out = {}, {}, {}, {}
  bar = _progress(parsed, progress)
  for spec, (loss_name, loss_params) in zip(bar, resolved):
    as_f32 = lambda d: {k: jnp.float32(v) for k, v in d.items()}
    hyper = {"loss": as_f32(loss_params),
             "penalties": {name: as_f32(p) for name, p in spec.penalties}}
    static = dict(loss_name=loss_name, learning_rate=float(learning_rate))
    start = time.perf_counter()
    params = _init_params(init_key, X.shape[1], num_classes if loss_name == "ce" else 1, hidden)
    args = (Xj, yj, batches, valid, params, dropout_key, hyper)
    if vmap_folds:
      pred, curve = _train_folds(masks, *args, **static)
    else:
      runs = [_train_one_fold(m, *args, **static) for m in masks]
      pred, curve = jnp.stack([r[0] for r in runs]), jnp.stack([r[1] for r in runs])
    out = _fold_scores(pred, yj, masks, task=task, num_classes=num_classes)
    scores[spec.text] = {m: np.asarray(out[m]) for m in METRICS}
    held_out[spec.text] = np.asarray(jnp.sum(jnp.where(masks, pred, 0), axis=0))  # one fold each
    curves[spec.text] = np.asarray(curve)
    seconds[spec.text] = time.perf_counter() - start
  return ComparisonResult(tuple(texts), scores, curves, seconds, task, settings, held_out)


def _progress(items, enabled: bool):
  if not enabled:
    return items
  from tqdm.auto import tqdm
  return tqdm(items, desc="specs", unit="spec", leave=False)
