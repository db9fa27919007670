"""Flax NNX training: the train step, the fit loop and vmapped bagged ensembles.

- ``step``: ``train_step`` (one optimizer step, uncompiled, usable inside any
  transformation), ``make_train_step`` / ``make_eval_step`` (``nnx.jit``-ed);
- ``fit``: ``fit`` (epochs of shuffled minibatches, validation, early
  stopping; ``TrainingDivergedError`` when the loss turns NaN or infinite);
- ``ensemble``: bagged ensembles as one ``nnx.vmap`` axis of members.

Every name is reached as ``lossreg_jax.training.<name>``; the modules import
downward only (ensemble -> fit -> step), never in a circle.
"""

from lossreg_jax.training.ensemble import bootstrap_weights
from lossreg_jax.training.ensemble import ensemble_member
from lossreg_jax.training.ensemble import fit_ensemble
from lossreg_jax.training.ensemble import make_ensemble
from lossreg_jax.training.ensemble import make_ensemble_optimizer
from lossreg_jax.training.ensemble import make_ensemble_train_step
from lossreg_jax.training.ensemble import predict_ensemble
from lossreg_jax.training.fit import TrainingDivergedError
from lossreg_jax.training.fit import fit
from lossreg_jax.training.step import make_eval_step
from lossreg_jax.training.step import make_train_step
from lossreg_jax.training.step import train_step

__all__ = [
    "TrainingDivergedError",
    "bootstrap_weights",
    "ensemble_member",
    "fit",
    "fit_ensemble",
    "make_ensemble",
    "make_ensemble_optimizer",
    "make_ensemble_train_step",
    "make_eval_step",
    "make_train_step",
    "predict_ensemble",
    "train_step",
]
