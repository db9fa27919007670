"""Regularizers: pytree penalties, optax transforms, stochastic layers, augmentation."""

from lossreg_jax.regularizers import augment
from lossreg_jax.regularizers import early_stopping as _early_stopping
from lossreg_jax.regularizers import penalties
from lossreg_jax.regularizers import stochastic
from lossreg_jax.regularizers import transforms
from lossreg_jax.regularizers.augment import *  # noqa: F403
from lossreg_jax.regularizers.early_stopping import *  # noqa: F403
from lossreg_jax.regularizers.penalties import *  # noqa: F403
from lossreg_jax.regularizers.stochastic import *  # noqa: F403
from lossreg_jax.regularizers.transforms import *  # noqa: F403

__all__ = [
    *penalties.__all__,
    *transforms.__all__,
    *stochastic.__all__,
    *augment.__all__,
    *_early_stopping.__all__,
]

del augment, penalties, stochastic, transforms, _early_stopping
