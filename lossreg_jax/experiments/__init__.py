"""The work behind the ``lossreg-jax`` command, callable from notebooks.

``compare_losses`` trains one model (the built-in MLP, ``linear``, ``cnn``, or
any Flax NNX model factory) under several loss / regularizer candidates (spec
strings, loss callables, ``Candidate`` objects) with repeated cross-validation
folds run as one vmapped program and compares every candidate with the first
(paired differences, corrected resampled t-test);
``regularization_path`` computes the elastic-net path and its CV curve;
``write_report`` renders either result as Markdown, JSON and plots;
``parse_spec`` reads a spec string; ``parse_cost`` / ``read_cost_matrix`` read
what mistakes cost, for ``compare_losses(..., cost=...)``. ``compare_multitask`` does for
classify-and-localize models (class + box, on ``make_shapes`` data) what
``compare_losses`` does for classifiers.
"""

from lossreg_jax.experiments.candidates import Candidate
from lossreg_jax.experiments.compare import (
    ComparisonResult, TrainingDivergedError, compare_losses)
from lossreg_jax.experiments.models import ModelSpec, parse_model
from lossreg_jax.experiments.cost import (DecisionCost, implied_loss_spec, parse_cost,
                                          read_cost_matrix)
from lossreg_jax.experiments.forecast import next_quarter_growth
from lossreg_jax.experiments.multitask import (MultitaskResult, MultitaskSpec, compare_multitask,
                                               make_shapes, parse_multitask_spec)
from lossreg_jax.experiments.path import PathResult, regularization_path
from lossreg_jax.experiments.report import write_report
from lossreg_jax.experiments.spec import LossSpec, default_specs, expand_sweeps, parse_spec
from lossreg_jax.experiments.stats import (
    PairedTest, corrected_resampled_ttest, t_quantile, t_two_sided_p)

__all__ = [
    "Candidate",
    "ComparisonResult",
    "DecisionCost",
    "LossSpec",
    "MultitaskResult",
    "ModelSpec",
    "MultitaskSpec",
    "PairedTest",
    "PathResult",
    "TrainingDivergedError",
    "compare_losses",
    "compare_multitask",
    "corrected_resampled_ttest",
    "default_specs",
    "expand_sweeps",
    "implied_loss_spec",
    "make_shapes",
    "next_quarter_growth",
    "parse_cost",
    "parse_model",
    "parse_multitask_spec",
    "parse_spec",
    "read_cost_matrix",
    "regularization_path",
    "t_quantile",
    "t_two_sided_p",
    "write_report",
]
