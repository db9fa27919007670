"""Model factories for ``compare_losses``: ``linear``, ``mlp``, ``cnn``.

A comparison trains any Flax NNX model given as a factory ``rngs -> nnx.Module``
(:func:`~lossreg_jax.experiments.compare_losses`'s ``model=``). The built-in
models are described by a :class:`ModelSpec` (``parse_model("mlp:hidden=16")``)
that knows the input shape and output count only once the data and the loss are
known: ``spec.factory(input_shape, num_outputs, dropout=...)`` returns the
``rngs -> nnx.Module`` factory.

Initialization: Glorot-uniform kernels and zero biases for ``mlp`` and ``cnn``
(Keras' defaults), all zeros for ``linear`` (logistic / softmax / linear
regression start at the zero model). The initializers are module constants, so
two factories of the same settings build models with equal graph definitions
and share one compiled training program.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
from flax import nnx

__all__ = ["Factory", "ModelSpec", "cnn", "linear", "mlp", "parse_model"]

_GLOROT = nnx.initializers.glorot_uniform()
_ZEROS = nnx.initializers.zeros_init()
_MODELS = {"linear": {}, "mlp": {"hidden": 16, "layers": 1}, "cnn": {"channels": 8}}


class Linear(nnx.Module):
  """``x.reshape(n, -1) @ W + b`` from zeros."""

  def __init__(self, num_inputs: int, num_outputs: int, rngs: nnx.Rngs):
    self.dense = nnx.Linear(num_inputs, num_outputs, kernel_init=_ZEROS, rngs=rngs)

  def __call__(self, x):
    return self.dense(x.reshape(x.shape[0], -1))


class MLP(nnx.Module):
  """``layers`` ReLU hidden layers of ``hidden`` units, dropout after each if given."""

  def __init__(self, num_inputs: int, num_outputs: int, rngs: nnx.Rngs, *, hidden: int,
               layers: int, dropout: float | None):
    sizes = [num_inputs] + [hidden] * layers
    self.hidden = nnx.List([nnx.Linear(a, b, kernel_init=_GLOROT, rngs=rngs)
                            for a, b in zip(sizes[:-1], sizes[1:])])
    self.dropout = None if dropout is None else nnx.Dropout(dropout, rngs=rngs)
    self.out = nnx.Linear(hidden, num_outputs, kernel_init=_GLOROT, rngs=rngs)

  def __call__(self, x):
    h = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      h = jax.nn.relu(layer(h))
      if self.dropout is not None:
        h = self.dropout(h)
    return self.out(h)


class CNN(nnx.Module):
  """Two 3×3 ReLU convolutions (``channels``, ``2 * channels``), each followed by 2×2
  average pooling, then dropout (if given) and a dense layer on the flattened maps."""

  def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, rngs: nnx.Rngs, *,
               channels: int, dropout: float | None):
    height, width, in_channels = input_shape
    conv = functools.partial(nnx.Conv, kernel_size=(3, 3), kernel_init=_GLOROT, rngs=rngs)
    self.conv1 = conv(in_channels, channels)
    self.conv2 = conv(channels, 2 * channels)
    self.dropout = None if dropout is None else nnx.Dropout(dropout, rngs=rngs)
    pooled = math.ceil(math.ceil(height / 2) / 2) * math.ceil(math.ceil(width / 2) / 2)
    self.out = nnx.Linear(pooled * 2 * channels, num_outputs, kernel_init=_GLOROT, rngs=rngs)

  def __call__(self, x):
    pool = functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2),
                             padding="SAME")
    h = pool(jax.nn.relu(self.conv1(x)))
    h = pool(jax.nn.relu(self.conv2(h)))
    h = h.reshape(h.shape[0], -1)
    if self.dropout is not None:
      h = self.dropout(h)
    return self.out(h)


class Factory(NamedTuple):
  """``rngs -> cls(*args, rngs, **kwargs)``; equal (and hashing equal) by value, so
  that repeated comparisons find their compiled programs in the caches."""

  cls: type
  args: tuple
  kwargs: tuple

  def __call__(self, rngs: nnx.Rngs) -> nnx.Module:
    return self.cls(*self.args, rngs, **dict(self.kwargs))

  @property
  def __name__(self) -> str:
    return self.cls.__name__


def _factory(cls, *args, **kwargs) -> Factory:
  return Factory(cls, args, tuple(sorted(kwargs.items())))


class ModelSpec(NamedTuple):
  """A built-in model: ``name`` (``linear``, ``mlp``, ``cnn``) and its settings."""

  name: str
  settings: dict

  @property
  def text(self) -> str:
    args = ",".join(f"{k}={v}" for k, v in self.settings.items())
    return self.name + (f":{args}" if args else "")

  def factory(self, input_shape: tuple[int, ...], num_outputs: int, *,
              dropout: float | None = None) -> Callable[[nnx.Rngs], nnx.Module]:
    """The ``rngs -> nnx.Module`` factory for inputs of ``input_shape`` (no row axis)."""
    if self.name == "linear":
      if dropout is not None:
        raise ValueError("dropout needs a hidden layer: use the model 'mlp' or 'cnn', not "
                         "'linear'.")
      return _factory(Linear, math.prod(input_shape), num_outputs)
    if self.name == "mlp":
      return _factory(MLP, math.prod(input_shape), num_outputs, dropout=dropout,
                      **self.settings)
    if len(input_shape) != 3:
      raise ValueError(f"model 'cnn' needs images shaped (n, height, width, channels), got "
                       f"rows of shape {tuple(input_shape)}.")
    return _factory(CNN, tuple(input_shape), num_outputs, dropout=dropout, **self.settings)


def linear() -> ModelSpec:
  """Logistic / softmax / linear regression on the flattened inputs."""
  return ModelSpec("linear", {})


def mlp(*, hidden: int = 16, layers: int = 1) -> ModelSpec:
  """A ReLU MLP with ``layers`` hidden layers of ``hidden`` units."""
  return parse_model(f"mlp:hidden={hidden},layers={layers}")


def cnn(*, channels: int = 8) -> ModelSpec:
  """A two-convolution CNN (each with 2×2 average pooling) for images ``(n, H, W, C)``."""
  return parse_model(f"cnn:channels={channels}")


def parse_model(text: str) -> ModelSpec:
  """Reads ``linear``, ``mlp:hidden=H,layers=L`` or ``cnn:channels=C``.

  Args:
    text: The model string; omitted settings take their defaults (``mlp``:
      ``hidden=16, layers=1``; ``cnn``: ``channels=8``).

  Returns:
    A :class:`ModelSpec`.

  Raises:
    ValueError: for an unknown model or setting, or a value that is not an
      integer ``>= 1``.

  Examples:
    >>> parse_model("mlp:hidden=32").settings
    {'hidden': 32, 'layers': 1}
  """
  if not isinstance(text, str):
    raise TypeError(f"model must be a string such as 'mlp:hidden=16' or a factory "
                    f"rngs -> nnx.Module, got {type(text).__name__}.")
  name, _, args = text.strip().partition(":")
  name = name.strip().lower()
  if name not in _MODELS:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(_MODELS)} (e.g. "
                     f"'mlp:hidden=16,layers=2', 'cnn:channels=8').")
  settings = dict(_MODELS[name])
  for item in filter(None, (a.strip() for a in args.split(","))):
    key, _, value = (s.strip() for s in item.partition("="))
    if key not in settings:
      raise ValueError(f"unknown setting {key!r} for model {name!r}; valid settings: "
                       f"{', '.join(settings) or 'none'}.")
    if not value.isdigit() or int(value) < 1:
      raise ValueError(f"model {name!r}: {key} must be an integer >= 1, got {value!r}.")
    settings[key] = int(value)
  return ModelSpec(name, settings)
