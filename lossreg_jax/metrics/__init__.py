"""Metrics equal to scikit-learn's, as jit-able global weighted sums.

One namespace, ``lossreg_jax.metrics``, re-exports every metric:

- classification: ``accuracy``, ``precision``, ``recall``, ``f1_score``,
  ``fbeta_score``, ``confusion_matrix``;
- ranking: ``roc_auc``, ``roc_curve``, ``precision_recall_curve``,
  ``average_precision``;

Every metric takes ``weights`` (scikit-learn's ``sample_weight``) and ``where``
(a boolean mask whose excluded rows count for nothing, as if removed) and is
computed from global weighted sums, never from means of chunks, so a batch
sharded across devices gives the value of the whole batch.
"""

from lossreg_jax.metrics.classification import accuracy
from lossreg_jax.metrics.classification import confusion_matrix
from lossreg_jax.metrics.classification import f1_score
from lossreg_jax.metrics.classification import fbeta_score
from lossreg_jax.metrics.classification import precision
from lossreg_jax.metrics.classification import recall
from lossreg_jax.metrics.ranking import average_precision
from lossreg_jax.metrics.ranking import precision_recall_curve
from lossreg_jax.metrics.ranking import roc_auc
from lossreg_jax.metrics.ranking import roc_curve

__all__ = [
    "accuracy",
    "average_precision",
    "confusion_matrix",
    "f1_score",
    "fbeta_score",
    "precision",
    "recall",
    "precision_recall_curve",
    "roc_auc",
    "roc_curve",
]
