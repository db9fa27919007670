"""Losses: elementwise computation, then the one weights / where / reduction contract."""

from lossreg_jax.losses import boxes
from lossreg_jax.losses import classification
from lossreg_jax.losses import large_vocab
from lossreg_jax.losses import multitask
from lossreg_jax.losses import regression
from lossreg_jax.losses import weighting
from lossreg_jax.losses.boxes import *  # noqa: F403
from lossreg_jax.losses.classification import *  # noqa: F403
from lossreg_jax.losses.large_vocab import *  # noqa: F403
from lossreg_jax.losses.multitask import *  # noqa: F403
from lossreg_jax.losses.regression import *  # noqa: F403
from lossreg_jax.losses.weighting import *  # noqa: F403

__all__ = [
    *regression.__all__,
    *classification.__all__,
    *boxes.__all__,
    *multitask.__all__,
    *weighting.__all__,
    *large_vocab.__all__,
]

del boxes, classification, large_vocab, multitask, regression, weighting
