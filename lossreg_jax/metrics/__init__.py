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
where a metric is undefined and returns its fallback value.
"""

from lossreg_jax.metrics.calibration import brier_score
from lossreg_jax.metrics.calibration import calibration_curve
from lossreg_jax.metrics.calibration import expected_calibration_error
from lossreg_jax.metrics.classification import accuracy
from lossreg_jax.metrics.classification import confusion_matrix
from lossreg_jax.metrics.classification import f1_score
from lossreg_jax.metrics.classification import fbeta_score
from lossreg_jax.metrics.classification import precision
from lossreg_jax.metrics.classification import recall
from lossreg_jax.metrics.decisions import best_threshold
from lossreg_jax.metrics.decisions import cost_threshold
from lossreg_jax.metrics.decisions import expected_cost
from lossreg_jax.metrics.ranking import average_precision
from lossreg_jax.metrics.ranking import precision_recall_curve
from lossreg_jax.metrics.ranking import roc_auc
from lossreg_jax.metrics.ranking import roc_curve
from lossreg_jax.metrics.regression import mean_absolute_error
from lossreg_jax.metrics.regression import mean_pinball_loss
from lossreg_jax.metrics.regression import mean_squared_error
from lossreg_jax.metrics.regression import r2_score
from lossreg_jax.metrics.regression import root_mean_squared_error
from lossreg_jax.metrics.regression import underprediction_rate
from lossreg_jax.metrics._warnings import UndefinedMetricWarning

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
