"""lossreg_jax: loss functions and regularization for JAX, optax and Flax."""

from lossreg_jax import checks
from lossreg_jax import datasets
from lossreg_jax import distributed
from lossreg_jax import experiments
from lossreg_jax import linear
from lossreg_jax import losses
from lossreg_jax import metrics
from lossreg_jax import regularizers
from lossreg_jax import selection
from lossreg_jax import training

__version__ = "0.1.0"

__all__ = [
    "checks",
    "datasets",
    "distributed",
    "experiments",
    "linear",
    "losses",
    "metrics",
    "regularizers",
    "selection",
    "training",
]
