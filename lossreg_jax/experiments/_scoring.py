"""Held-out scores of ``compare_losses``: which metrics each task reports, and how.

Every metric is a ``lossreg_jax.metrics`` function (scikit-learn parity is
tested there), looked up by name from one table, applied to one fold's
held-out rows through ``where=``; all folds are scored by one ``vmap``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from lossreg_jax import metrics

# Display order per task; the first spec's scores are the paired baseline.
METRICS = {
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece"),
    "multiclass": ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece"),
    "regression": ("mse", "rmse", "mae", "r2", "pinball", "under_rate"),
}
# True: higher is better; False: lower is better; None: neither (a trade-off).
HIGHER_IS_BETTER = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True,
    "brier": False, "ece": False, "mse": False, "rmse": False, "mae": False, "r2": True,
    "pinball": False, "under_rate": None,
    "cost_default": False, "cost_derived": False, "cost_tuned": False,
}
DESCRIPTIONS = {
    "accuracy": "share of rows classified correctly",
    "precision": "tp / (tp + fp)", "recall": "tp / (tp + fn)", "f1": "harmonic mean of "
    "precision and recall", "roc_auc": "area under the ROC curve of P(y=1); multiclass: "
    "the macro mean of the one-vs-rest AUCs of the softmax probabilities",
    "brier": "Brier score (mean squared error of the predicted probabilities)",
    "ece": "expected calibration error: top-label confidence against accuracy in 10 "
           "equal-width bins (Guo et al. 2017)",
    "mse": "mean squared error", "rmse": "root mean squared error",
    "mae": "mean absolute error", "r2": "coefficient of determination",
    "pinball": "mean pinball loss at the pinball_alpha quantile",
    "under_rate": "share of targets under-predicted (prediction < target)",
    "cost_default": "expected cost per row of the model's own decision (P(y=1) > 0.5, "
                    "argmax, or the prediction)",
    "cost_derived": "expected cost per row of the decision the costs imply for a "
                    "calibrated model (binary: P(y=1) >= c_fp / (c_fp + c_fn); multiclass: "
                    "argmin_j sum_i p_i C[i, j]; regression: prediction + sigma * q, the "
                    "normal quantile or expectile)",
    "cost_tuned": "expected cost per row of the decision tuned on each fold's training "
                  "rows (binary: threshold; multiclass: temperature; regression: offset)",
}
ECE_BINS = 10


def decode(z: jax.Array, task: str) -> tuple[jax.Array, jax.Array]:
  """Model outputs -> ``(predictions, probabilities)``.

  Binary: class 0/1 and P(y=1) (sigmoid of the one logit, or the softmax of
  ``ce``'s two logits; for ``hinge`` the sigmoid of the margin, not a
  calibrated probability). Multiclass: argmax and the softmax ``(n, C)``.
  Regression: the predictions, twice.
  """
  if task == "regression":
    return z, z
  if z.ndim == 1:
    return (z > 0).astype(jnp.int32), jax.nn.sigmoid(z)
  probs = jax.nn.softmax(z, axis=-1)
  pred = jnp.argmax(z, axis=-1).astype(jnp.int32)
  return pred, probs[..., 1] if task == "binary" else probs


def _metric(name: str, pred, prob, y, where, *, task, num_classes, pinball_alpha):
  avg = (dict(average="binary") if task == "binary"
         else dict(average="macro", num_classes=num_classes))
  if name == "accuracy":
    return metrics.accuracy(pred, y, where=where)
  if name in ("precision", "recall"):
    return getattr(metrics, name)(pred, y, where=where, **avg)
  if name == "f1":
    return metrics.f1_score(pred, y, where=where, **avg)
  if name == "roc_auc":
    # Multiclass: scikit-learn's roc_auc_score(multi_class="ovr", average="macro")
    # of the softmax rows; a class absent from a fold's held-out rows counts 0.
    mode = dict(multi_class="ovr") if task == "multiclass" else {}
    return metrics.roc_auc(prob, y, where=where, **mode)
  if name == "brier":
    return metrics.brier_score(prob, y, where=where)
  if name == "ece":
    return metrics.expected_calibration_error(prob, y, n_bins=ECE_BINS, where=where)
  if name == "mse":
    return metrics.mean_squared_error(pred, y, where=where)
  if name == "rmse":
    return metrics.root_mean_squared_error(pred, y, where=where)
  if name == "mae":
    return metrics.mean_absolute_error(pred, y, where=where)
  if name == "r2":
    return metrics.r2_score(pred, y, where=where)
  if name == "pinball":
    return metrics.mean_pinball_loss(pred, y, alpha=pinball_alpha, where=where)
  if name == "under_rate":
    return metrics.underprediction_rate(pred, y, where=where)
  raise ValueError(f"unknown metric {name!r}")  # unreachable


@functools.partial(jax.jit, static_argnames=("task", "num_classes", "pinball_alpha"))
def fold_scores(z, y, test_masks, *, task, num_classes, pinball_alpha):
  """Held-out metrics per fold: ``{metric: (folds,)}`` for ``z`` shaped ``(folds, n, ...)``.

  Binary results also hold ``average_precision`` (not a table column: the
  report's precision-recall legend shows it with its spread over folds).
  """

  def one(z, where):
    pred, prob = decode(z, task)
    out = {m: _metric(m, pred, prob, y, where, task=task, num_classes=num_classes,
                      pinball_alpha=pinball_alpha) for m in METRICS[task]}
    if task == "binary":  # for the PR curves' legend (AP ± its spread over folds)
      out["average_precision"] = metrics.average_precision(prob, y, where=where)
    return out

  return jax.vmap(one)(z, test_masks)
