"""lossreg_jax: loss functions and regularization for JAX, optax and Flax.

The namespaces load on first use (``lossreg_jax.losses``, ``from lossreg_jax
import metrics``), so ``import lossreg_jax`` is cheap and the ``lossreg-jax``
command installs its Ctrl-C handler before JAX is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # type checkers and IDEs see the namespaces eagerly
  from lossreg_jax import (checks, datasets, distributed, experiments, linear, losses, metrics,
                           regularizers, selection, training)


def __getattr__(name: str):
  if name in __all__:
    module = importlib.import_module(f"lossreg_jax.{name}")
    globals()[name] = module
    return module
  raise AttributeError(f"module 'lossreg_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted([*__all__, "__version__"])
