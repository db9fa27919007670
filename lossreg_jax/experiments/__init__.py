"""The work behind the ``lossreg-jax`` command, callable from notebooks.

``compare_losses`` trains one model under several loss / regularizer specs with
cross-validation folds run as one vmapped program; ``regularization_path``
computes the elastic-net path and its CV curve; ``write_report`` renders either
result as Markdown, JSON and plots; ``parse_spec`` reads a spec string.
``compare_multitask`` does for classify-and-localize models (class + box, on
``make_shapes`` data) what ``compare_losses`` does for classifiers.
"""

from lossreg_jax.experiments.compare import ComparisonResult, compare_losses
from lossreg_jax.experiments.multitask import (MultitaskResult, MultitaskSpec, compare_multitask,
                                               make_shapes, parse_multitask_spec)
from lossreg_jax.experiments.path import PathResult, regularization_path
from lossreg_jax.experiments.report import write_report
from lossreg_jax.experiments.spec import LossSpec, parse_spec

__all__ = [
    "ComparisonResult",
    "LossSpec",
    "MultitaskResult",
    "MultitaskSpec",
    "PathResult",
    "compare_losses",
    "compare_multitask",
    "make_shapes",
    "parse_multitask_spec",
    "parse_spec",
    "regularization_path",
    "write_report",
]
