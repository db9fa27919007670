"""Metrics equal to scikit-learn's, as jit-able global weighted sums.

One namespace, ``lossreg_jax.metrics``, re-exports every metric:

- classification: ``accuracy``, ``precision``, ``recall``, ``f1_score``,
  ``fbeta_score``, ``confusion_matrix``;
- ranking: ``roc_auc``, ``roc_curve``, ``precision_recall_curve``,
  ``average_precision``;
- regression: ``mean_squared_error``, ``root_mean_squared_error``,
  ``mean_absolute_error``, ``r2_score``, ``mean_pinball_loss``,
  ``underprediction_rate``;
- calibration: ``brier_score``, ``calibration_curve``,
  ``expected_calibration_error``;
- decisions: ``expected_cost``, ``cost_threshold``, ``best_threshold``.

Every metric takes ``weights`` (scikit-learn's ``sample_weight``) and ``where``
(a boolean mask whose excluded rows count for nothing, as if removed) and is
computed from global weighted sums, never from means of chunks, so a batch
sharded across devices gives the value of the whole batch.

``UndefinedMetricWarning`` (a ``UserWarning``) is given, on concrete inputs,
where a metric is undefined and returns its fallback value; under ``jit``
nothing is warned.

Positionally the order is ours (optax's): predictions (scores,
probabilities) first, then the true labels (targets). scikit-learn's keywords
are accepted too, with scikit-learn's meaning, so pasted scikit-learn calls
are right: ``y_true=`` (our ``labels`` / ``targets``), ``y_pred=``
(``predictions``), ``y_score=`` (``scores``; also ``probas_pred=`` for
``precision_recall_curve``), ``y_prob=`` / ``y_proba=`` (``probabilities``),
``sample_weight=`` (``weights``) and, with ``y_true=``, ``labels=`` (the
class list, our ``classes=``). An alias given together with the argument it
stands for is a ``TypeError`` that names both.

Float64 inputs with x64 off are computed in float32, with a one-time
``UserWarning`` (as the linear models).

Examples:
  >>> precision(y_true=jnp.array([1, 0, 0, 1]), y_pred=jnp.array([1, 1, 0, 1]))
  Array(0.666..., dtype=float32)
  >>> f1_score(y_true=jnp.array([0, 1, 2, 2]), y_pred=jnp.array([0, 2, 1, 2]),
  ...          labels=[2, 0], average=None)
  Array([0.5, 1. ], dtype=float32)
"""

import jax.numpy as jnp

from lossreg_jax.metrics import calibration as _calibration
from lossreg_jax.metrics import classification as _classification
from lossreg_jax.metrics import decisions as _decisions
from lossreg_jax.metrics import ranking as _ranking
from lossreg_jax.metrics import regression as _regression
from lossreg_jax.metrics._aliases import sklearn_keywords as _sklearn_keywords
from lossreg_jax.metrics._warnings import UndefinedMetricWarning

# scikit-learn's keyword names, by the argument of ours each stands for
# (sample_weight -> weights is added to every metric that has weights).
_CLASSES = dict(y_pred="predictions", y_true="labels")
_SCORES = dict(y_score="scores", y_true="labels")
_TARGETS = dict(y_pred="predictions", y_true="targets")
_PROBABILITIES = dict(y_prob="probabilities", y_proba="probabilities", y_true="labels")

# Class-id arguments are left out of the float64 warning (nothing to round).
_IDS = ("predictions", "labels")

accuracy = _sklearn_keywords(_classification.accuracy, _CLASSES, class_ids=_IDS)
precision = _sklearn_keywords(_classification.precision, _CLASSES, class_subset="classes",
                              class_ids=_IDS)
recall = _sklearn_keywords(_classification.recall, _CLASSES, class_subset="classes",
                           class_ids=_IDS)
f1_score = _sklearn_keywords(_classification.f1_score, _CLASSES, class_subset="classes",
                             class_ids=_IDS)
fbeta_score = _sklearn_keywords(_classification.fbeta_score, _CLASSES, class_subset="classes",
                                class_ids=_IDS)
confusion_matrix = _sklearn_keywords(_classification.confusion_matrix, _CLASSES,
                                     class_subset="classes", class_ids=_IDS)
roc_auc = _sklearn_keywords(_ranking.roc_auc, _SCORES, class_subset="classes")
roc_curve = _sklearn_keywords(_ranking.roc_curve, _SCORES)
precision_recall_curve = _sklearn_keywords(_ranking.precision_recall_curve,
                                           dict(_SCORES, probas_pred="scores"))
average_precision = _sklearn_keywords(_ranking.average_precision, _SCORES,
                                      class_subset="classes")
mean_squared_error = _sklearn_keywords(_regression.mean_squared_error, _TARGETS)
root_mean_squared_error = _sklearn_keywords(_regression.root_mean_squared_error, _TARGETS)
mean_absolute_error = _sklearn_keywords(_regression.mean_absolute_error, _TARGETS)
r2_score = _sklearn_keywords(_regression.r2_score, _TARGETS)
mean_pinball_loss = _sklearn_keywords(_regression.mean_pinball_loss, _TARGETS)
underprediction_rate = _sklearn_keywords(_regression.underprediction_rate, _TARGETS)
brier_score = _sklearn_keywords(_calibration.brier_score, _PROBABILITIES)
calibration_curve = _sklearn_keywords(_calibration.calibration_curve, _PROBABILITIES)
expected_calibration_error = _sklearn_keywords(_calibration.expected_calibration_error,
                                               _PROBABILITIES)
expected_cost = _sklearn_keywords(_decisions.expected_cost, _CLASSES, class_ids=_IDS)
best_threshold = _sklearn_keywords(_decisions.best_threshold, _SCORES)
cost_threshold = _decisions.cost_threshold  # keyword-only costs: nothing to alias

__all__ = [
    "UndefinedMetricWarning",
    "accuracy",
    "average_precision",
    "best_threshold",
    "brier_score",
    "calibration_curve",
    "confusion_matrix",
    "cost_threshold",
    "expected_calibration_error",
    "expected_cost",
    "f1_score",
    "fbeta_score",
    "mean_absolute_error",
    "mean_pinball_loss",
    "mean_squared_error",
    "precision",
    "precision_recall_curve",
    "r2_score",
    "recall",
    "roc_auc",
    "roc_curve",
    "root_mean_squared_error",
    "underprediction_rate",
]
