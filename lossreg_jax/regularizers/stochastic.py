"""Stochastic regularizers: dropout, Gaussian noise, mixup and cutmix.

Functional forms take ``key`` first, as ``jax.random``; the ``nnx`` modules
(``GaussianNoise``, ``MixUp``, ``CutMix``) hold an RNG stream and follow
``model.train()`` / ``model.eval()`` through their ``deterministic`` attribute,
exactly as ``flax.nnx.Dropout``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array,
    check_bool,
    check_in_range,
    check_int,
    check_rank,
    is_static_number,
)

__all__ = ["dropout", "gaussian_noise", "mixup", "cutmix", "GaussianNoise", "MixUp", "CutMix"]


def dropout(
    key: ArrayLike,
    x: ArrayLike,
    *,
    rate: float | ArrayLike,
    broadcast_dims: Sequence[int] = (),
    deterministic: bool = False,
) -> jax.Array:
  """Zeroes entries with probability ``rate`` and scales the rest by ``1/(1 - rate)``.

  The mask is drawn exactly as ``flax.nnx.Dropout`` draws it
  (``jax.random.bernoulli(key, 1 - rate, shape)`` with the ``broadcast_dims``
  set to 1), so for the same key the output equals
  ``nnx.Dropout(rate, broadcast_dims=...)(x, deterministic=False, rngs=key)``
  bit for bit. ``rate=1`` returns zeros (with zero, finite gradients) instead of
  dividing by ``1 - rate = 0``; a traced ``rate`` equal to 1 gives the same.

  Args:
    key: A ``jax.random`` key.
    x: Floating array of any shape.
    rate: Probability of dropping an entry (not the keep rate), in ``[0, 1]``.
    broadcast_dims: Axes of ``x`` that share one mask value (e.g. ``(1, 2)`` on
      ``(batch, height, width, channels)`` drops whole channels).
    deterministic: If True, return ``x`` unchanged (evaluation mode).

  Returns:
    Array of the shape and dtype of ``x``.

  Raises:
    ValueError: if a static ``rate`` is outside ``[0, 1]``.
    TypeError: if ``x`` is not floating or an argument has the wrong type (a
      string or ``True`` for a number, a number for a flag).

  Examples:
    >>> x = jnp.ones((2, 4))
    >>> dropout(jax.random.key(0), x, rate=0.5).shape
    (2, 4)
    >>> bool(jnp.all(dropout(jax.random.key(0), x, rate=0.5, deterministic=True) == x))
    True

  References:
    Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
    Overfitting", JMLR 2014.
  """
  check_in_range("rate", rate, 0.0, 1.0)
  deterministic = check_bool("deterministic", deterministic)
  x = as_float_array("x", x)
  if isinstance(broadcast_dims, (str, bytes)) or not hasattr(broadcast_dims, "__iter__"):
    raise TypeError(f"broadcast_dims must be a sequence of ints, got {broadcast_dims!r}.")
  for i, dim in enumerate(broadcast_dims):
    dim = check_int(f"broadcast_dims[{i}]", dim)
    if not -x.ndim <= dim < x.ndim:
      raise ValueError(f"broadcast_dims[{i}] must be an axis of x (rank {x.ndim}), got {dim}.")
  static_rate = is_static_number(rate)
  if deterministic or (static_rate and rate == 0.0):
    return x
  # Same shortcut as flax: x / 0 would put NaN into the gradient.
  if static_rate and rate == 1.0:
    return jnp.zeros_like(x)

  keep_prob = 1.0 - rate
  broadcast_shape = list(x.shape)
  for dim in broadcast_dims:
    broadcast_shape[dim] = 1
  mask = jax.random.bernoulli(
      key, p=keep_prob, shape=broadcast_shape, out_sharding=jax.typeof(x).sharding)
  mask = jnp.broadcast_to(mask, x.shape)
  if static_rate:
    scaled = x / keep_prob
  else:
    # A traced rate may be 1: divide by a safe 1 there (the mask is all False).
    keep_prob = jnp.asarray(keep_prob)
    scaled = x / jnp.where(keep_prob > 0, keep_prob, 1).astype(x.dtype)
  return lax.select(mask, scaled, jnp.zeros_like(x))


def gaussian_noise(
    key: ArrayLike,
    x: ArrayLike,
    *,
    stddev: float | ArrayLike,
    deterministic: bool = False,
) -> jax.Array:
  """Adds zero-mean Gaussian noise, ``x + stddev * N(0, 1)``, as Keras ``GaussianNoise``.

  Args:
    key: A ``jax.random`` key.
    x: Floating array of any shape.
    stddev: Standard deviation of the noise, ``>= 0``.
    deterministic: If True, return ``x`` unchanged (evaluation mode).

  Returns:
    Array of the shape and dtype of ``x``; the noise is drawn in ``x.dtype``.

  Raises:
    ValueError: if a static ``stddev`` is negative.
    TypeError: if ``x`` is not floating or an argument has the wrong type (a
      string or ``True`` for a number, a number for a flag).

  Examples:
    >>> x = jnp.zeros((1000,))
    >>> noisy = gaussian_noise(jax.random.key(0), x, stddev=0.5)
    >>> round(float(noisy.std()), 1)
    0.5

  References:
    ``keras.layers.GaussianNoise``.
  """
  check_in_range("stddev", stddev, 0.0, None)
  deterministic = check_bool("deterministic", deterministic)
  x = as_float_array("x", x)
  if deterministic or (is_static_number(stddev) and stddev == 0.0):
    return x
  noise = jax.random.normal(key, x.shape, x.dtype)
  return (x + stddev * noise).astype(x.dtype)


def _check_mix_inputs(x: ArrayLike, y: ArrayLike, alpha) -> tuple[jax.Array, jax.Array]:
  check_in_range("alpha", alpha, 0.0, None, low_inclusive=False)
  x = as_float_array("x", x)
  y = jnp.asarray(y)
  if not jnp.issubdtype(y.dtype, jnp.floating):
    raise TypeError(
        f"y must be floating one-hot or soft labels, got dtype {y.dtype} with shape "
        f"{y.shape}; one-hot encode integer labels with jax.nn.one_hot(y, num_classes)."
    )
  if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
    raise ValueError(
        "x and y must share a leading batch axis, got x.shape="
        f"{x.shape} and y.shape={y.shape}."
    )
  return x, y


def _mix(lam: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  lam = lam.astype(a.dtype)
  return lam * a + (1 - lam) * b


def mixup(
    key: ArrayLike,
    x: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float | ArrayLike,
) -> tuple[jax.Array, jax.Array]:
  """Mixes each example with another one of the batch (mixup).

  One ``lam ~ Beta(alpha, alpha)`` is drawn for the batch and a random
  permutation ``perm`` of the batch; then ``x_mixed = lam * x + (1 - lam) *
  x[perm]`` and the labels are mixed by the SAME ``lam``. Only the mixed pair is
  returned: ``lam`` and ``perm`` are fixed by ``key`` and, since labels are
  mixed too, an ordinary cross-entropy on ``y_mixed`` is the mixup loss.

  Args:
    key: A ``jax.random`` key.
    x: Floating inputs, shape ``(batch, ...)``.
    y: Floating one-hot or soft labels, shape ``(batch, ...)``.
    alpha: Beta concentration, ``> 0``; small values keep ``lam`` near 0 or 1.

  Returns:
    ``(x_mixed, y_mixed)`` with the shapes and dtypes of ``x`` and ``y``.

  Raises:
    ValueError: if a static ``alpha <= 0`` or the batch sizes differ.
    TypeError: if ``x`` or ``y`` is not floating (one-hot encode integer labels).

  Examples:
    >>> x = jnp.arange(8.0).reshape(4, 2)
    >>> y = jax.nn.one_hot(jnp.array([0, 1, 2, 0]), 3)
    >>> xm, ym = mixup(jax.random.key(0), x, y, alpha=0.4)
    >>> xm.shape, ym.shape
    ((4, 2), (4, 3))
    >>> bool(jnp.allclose(ym.sum(-1), 1.0))
    True

  References:
    Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
  """
  x, y = _check_mix_inputs(x, y, alpha)
  lam, perm_key = _beta_and_key(key, alpha)
  return _mixup(lam, perm_key, x, y)


@jax.jit
def _beta_and_key(key, alpha):
  # Its own program, compiled once for every input shape: the Beta (Gamma
  # rejection) sampler is by far the slowest part of mixup / cutmix to compile.
  lam_key, key = jax.random.split(key)
  return jax.random.beta(lam_key, alpha, alpha), key


@jax.jit
def _mixup(lam, perm_key, x, y):
  perm = jax.random.permutation(perm_key, x.shape[0])
  return _mix(lam, x, x[perm]), _mix(lam, y, y[perm])


def cutmix(
    key: ArrayLike,
    x: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float | ArrayLike,
) -> tuple[jax.Array, jax.Array]:
  """Pastes a box from another image of the batch into each image (CutMix).

  As the reference CutMix code and ``timm``: ``lam ~ Beta(alpha, alpha)``; a box
  of ``int(H * sqrt(1 - lam))`` by ``int(W * sqrt(1 - lam))`` pixels centred at a
  uniform random pixel is clipped to the image, and that region of every image is
  replaced by the same region of ``x[perm]`` (one box and one permutation for
  the batch). Labels are mixed with ``lam`` ADJUSTED to the pasted area,
  ``lam_adj = 1 - box_area / (H * W)``, so they match the pixels exactly:
  ``y_mixed = lam_adj * y + (1 - lam_adj) * y[perm]``.

  Args:
    key: A ``jax.random`` key.
    x: Floating images, shape ``(batch, height, width, channels)``.
    y: Floating one-hot or soft labels, shape ``(batch, ...)``.
    alpha: Beta concentration, ``> 0``.

  Returns:
    ``(x_mixed, y_mixed)`` with the shapes and dtypes of ``x`` and ``y``.

  Raises:
    ValueError: if a static ``alpha <= 0``, ``x`` is not rank 4 or the batch
      sizes differ.
    TypeError: if ``x`` or ``y`` is not floating.

  Examples:
    >>> x = jnp.stack([jnp.zeros((8, 8, 1)), jnp.ones((8, 8, 1))])
    >>> y = jnp.eye(2)
    >>> xm, ym = cutmix(jax.random.key(1), x, y, alpha=1.0)
    >>> # each label keeps the fraction of its own pixels
    >>> bool(jnp.allclose(ym[:, 1], xm.mean(axis=(1, 2, 3))))
    True

  References:
    Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers
    with Localizable Features", ICCV 2019.
  """
  x, y = _check_mix_inputs(x, y, alpha)
  check_rank("x", x, 4)
  lam, box_key = _beta_and_key(key, alpha)
  return _cutmix(lam, box_key, x, y)


@jax.jit
def _cutmix(lam, key, x, y):
  _, height, width, _ = x.shape
  perm_key, row_key, col_key = jax.random.split(key, 3)
  perm = jax.random.permutation(perm_key, x.shape[0])

  ratio = jnp.sqrt(1.0 - lam)
  cut_h = jnp.floor(height * ratio).astype(jnp.int32)
  cut_w = jnp.floor(width * ratio).astype(jnp.int32)
  cy = jax.random.randint(row_key, (), 0, height)
  cx = jax.random.randint(col_key, (), 0, width)
  top, bottom = jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cy + cut_h // 2, 0, height)
  left, right = jnp.clip(cx - cut_w // 2, 0, width), jnp.clip(cx + cut_w // 2, 0, width)
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  box = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
  x_mixed = jnp.where(box[None, :, :, None], x[perm], x)
  # The clipped box may be smaller than asked: mix labels by the pasted area.
  lam_adj = 1.0 - ((bottom - top) * (right - left)) / (height * width)
  return x_mixed, _mix(lam_adj, y, y[perm])


def _fork_stream(rngs, rng_collection: str):
  # Mirrors flax.nnx.Dropout: the module owns a forked stream of the collection.
  if isinstance(rngs, nnx.Rngs):
    return rngs[rng_collection].fork()
  if isinstance(rngs, nnx.RngStream):
    return rngs.fork()
  if rngs is None:
    return nnx.data(None)
  raise TypeError(f"rngs must be an nnx.Rngs, nnx.RngStream or None, got {type(rngs)}.")


class _StochasticModule(nnx.Module):
  """Shared RNG and ``deterministic`` handling, as ``flax.nnx.Dropout``."""

  def _is_deterministic(self, deterministic: bool | None) -> bool:
    check_bool("deterministic", deterministic, optional=True)
    value = self.deterministic if deterministic is None else deterministic
    if value is None:
      raise ValueError(
          f"{type(self).__name__} needs deterministic: pass it to the constructor, "
          "the call, or use model.train() / model.eval()."
      )
    return bool(value)

  def _next_key(self, rngs) -> jax.Array:
    rngs = self.rngs if rngs is None else rngs
    if isinstance(rngs, nnx.Rngs):
      return rngs[self.rng_collection]()
    if isinstance(rngs, nnx.RngStream):
      return rngs()
    if isinstance(rngs, jax.Array):
      return rngs
    raise TypeError(
        f"{type(self).__name__} is not deterministic but has no rngs: pass rngs= to the "
        f"constructor or the call (nnx.Rngs, nnx.RngStream or a key), got {type(rngs)}."
    )

  def set_view(self, deterministic: bool | None = None):
    """Used by ``nnx.view``: ``deterministic=True`` turns the layer off."""
    if deterministic is not None:
      self.deterministic = deterministic


class GaussianNoise(_StochasticModule):
  """Adds ``stddev * N(0, 1)`` noise in training, identity in evaluation (Keras layer).

  Follows ``flax.nnx.Dropout``: ``model.eval()`` sets ``deterministic=True``
  (identity), ``model.train()`` sets it back to False; keys come from the
  ``rng_collection`` stream of the ``rngs`` given (``"dropout"`` by default, so
  ``nnx.Rngs(params=0, dropout=1)`` serves both layers).

  Args:
    stddev: Standard deviation of the noise, ``>= 0``.
    deterministic: Initial mode; True is evaluation (no noise).
    rng_collection: Name of the RNG stream to draw keys from.
    rngs: ``nnx.Rngs`` or ``nnx.RngStream`` (or None and pass ``rngs`` at call time).

  Examples:
    >>> layer = GaussianNoise(0.1, rngs=nnx.Rngs(0))
    >>> x = jnp.ones((2, 3))
    >>> bool(jnp.any(layer(x) != x))
    True
    >>> layer.eval()
    >>> bool(jnp.all(layer(x) == x))
    True
  """

  def __init__(
      self,
      stddev: float,
      *,
      deterministic: bool | None = False,
      rng_collection: str = "dropout",
      rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    check_in_range("stddev", stddev, 0.0, None)
    check_bool("deterministic", deterministic, optional=True)
    self.stddev = stddev
    self.deterministic = deterministic
    self.rng_collection = rng_collection
    self.rngs = _fork_stream(rngs, rng_collection)

  def __call__(
      self,
      x: ArrayLike,
      *,
      deterministic: bool | None = None,
      rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
  ) -> jax.Array:
    """Returns ``x`` plus noise, or ``x`` itself when deterministic."""
    if self._is_deterministic(deterministic) or self.stddev == 0.0:
      return jnp.asarray(x)
    return gaussian_noise(self._next_key(rngs), x, stddev=self.stddev)


class MixUp(_StochasticModule):
  """``mixup`` as a layer of a train step: ``(x, y) -> (x_mixed, y_mixed)``.

  Identity in evaluation mode (``model.eval()``), like ``nnx.Dropout``. Keys come
  from the ``rng_collection`` stream (``"dropout"`` by default).

  Args:
    alpha: Beta concentration, ``> 0``.
    deterministic: Initial mode; True is evaluation (no mixing).
    rng_collection: Name of the RNG stream to draw keys from.
    rngs: ``nnx.Rngs`` or ``nnx.RngStream`` (or None and pass ``rngs`` at call time).

  Examples:
    >>> mix = MixUp(0.4, rngs=nnx.Rngs(0))
    >>> x = jnp.arange(8.0).reshape(4, 2)
    >>> y = jax.nn.one_hot(jnp.array([0, 1, 2, 0]), 3)
    >>> xm, ym = mix(x, y)
    >>> xm.shape, ym.shape
    ((4, 2), (4, 3))
    >>> mix.eval()
    >>> bool(jnp.all(mix(x, y)[0] == x))
    True
  """

  _mix_fn = staticmethod(mixup)

  def __init__(
      self,
      alpha: float,
      *,
      deterministic: bool | None = False,
      rng_collection: str = "dropout",
      rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    check_in_range("alpha", alpha, 0.0, None, low_inclusive=False)
    check_bool("deterministic", deterministic, optional=True)
    self.alpha = alpha
    self.deterministic = deterministic
    self.rng_collection = rng_collection
    self.rngs = _fork_stream(rngs, rng_collection)

  def __call__(
      self,
      x: ArrayLike,
      y: ArrayLike,
      *,
      deterministic: bool | None = None,
      rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
  ) -> tuple[jax.Array, jax.Array]:
    """Returns the mixed ``(x, y)``, or the inputs unchanged when deterministic."""
    if self._is_deterministic(deterministic):
      return jnp.asarray(x), jnp.asarray(y)
    return type(self)._mix_fn(self._next_key(rngs), x, y, alpha=self.alpha)


class CutMix(MixUp):
  """``cutmix`` as a layer of a train step: ``(images, y) -> (images_mixed, y_mixed)``.

  Same arguments and train/eval behaviour as ``MixUp``; images are
  ``(batch, height, width, channels)``.

  Examples:
    >>> mix = CutMix(1.0, rngs=nnx.Rngs(0))
    >>> x, y = jnp.ones((2, 8, 8, 1)), jnp.eye(2)
    >>> mix(x, y)[0].shape
    (2, 8, 8, 1)
  """

  _mix_fn = staticmethod(cutmix)
