"""Random image augmentation with Keras ``ImageDataGenerator``'s meanings, on dm_pix.

Images are ``(batch, height, width, channels)``. The key is split into one key
per image, so every image gets its own transform, and each image is warped by a
single ``dm_pix.affine_transform`` call (flips, rotation, shear, zoom and shift
composed into one matrix about the image centre). Every function here is
``random_affine`` with the other ranges at zero, so for the same key
``random_rotation(key, x, rotation_range=r)`` equals
``random_affine(key, x, rotation_range=r)``. All defaults are the identity.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal, NamedTuple

import dm_pix
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    check_bool,
    check_choice,
    check_in_range,
    check_number,
    check_rank,
    is_static_number,
)

__all__ = [
    "random_flip",
    "random_rotation",
    "random_shift",
    "random_shear",
    "random_zoom",
    "random_affine",
]

FillMode = Literal["nearest", "constant", "reflect", "wrap"]
# Keras fill_mode -> dm_pix / jax.scipy.ndimage mode. "reflect" is scipy's
# half-sample reflection (d c b a | a b c d | d c b a), "wrap" is periodic
# (a b c d | a b c d | a b c d), both as Keras documents them.
_FILL_MODES = {"nearest": "nearest", "constant": "constant", "reflect": "reflect", "wrap": "wrap"}


class _AffineParams(NamedTuple):
  """One image's transform (or a batch of them, one row per image)."""
  theta: jax.Array  # rotation, radians, counter-clockwise as displayed
  shift_row: jax.Array  # pixels, content moves down for > 0
  shift_col: jax.Array  # pixels, content moves right for > 0
  shear: jax.Array  # radians
  zoom_row: jax.Array  # Keras zy: > 1 zooms out
  zoom_col: jax.Array  # Keras zx: > 1 zooms out
  flip_h: jax.Array  # bool, mirror left-right
  flip_v: jax.Array  # bool, mirror up-down


def _check_images(images: ArrayLike) -> jax.Array:
  images = jnp.asarray(images)
  check_rank("images", images, 4)
  if not (jnp.issubdtype(images.dtype, jnp.floating) or jnp.issubdtype(images.dtype, jnp.integer)):
    raise TypeError(
        f"images must have a floating or integer dtype, got {images.dtype} with shape "
        f"{images.shape}."
    )
  return images


def _zoom_bounds(zoom_range) -> tuple:
  if isinstance(zoom_range, Sequence) and not isinstance(zoom_range, str):
    if len(zoom_range) != 2:
      raise ValueError(f"zoom_range must be a float or a (lower, upper) pair, got {zoom_range!r}.")
    lower, upper = zoom_range
    check_in_range("zoom_range[0]", lower, 0.0, None, low_inclusive=False)
    check_in_range("zoom_range[1]", upper, 0.0, None, low_inclusive=False)
    if is_static_number(lower) and is_static_number(upper) and lower > upper:
      raise ValueError(f"zoom_range must have lower <= upper, got {zoom_range!r}.")
    return lower, upper
  check_in_range("zoom_range", zoom_range, 0.0, 1.0, high_inclusive=False)
  return 1.0 - zoom_range, 1.0 + zoom_range


def _is_zero(value) -> bool:
  return is_static_number(value) and value == 0


def _inverse_matrix(params: _AffineParams, height: int, width: int) -> jax.Array:
  """The ``(3, 4)`` pull matrix of one image for ``dm_pix.affine_transform``.

  Maps an output pixel ``(row, col, channel)`` to the input position it samples.
  With ``u`` the output position relative to the centre ``((H-1)/2, (W-1)/2)``
  in ``(x=col, y=row)`` order, the input is ``R @ Sh @ Z @ (D @ u - s)``: Keras'
  matrices (rotation ``R``, shear ``Sh``, zoom ``Z``) applied after the flip ``D``
  (Keras flips the warped array) and the shift ``s``.
  """
  c, s = jnp.cos(params.theta), jnp.sin(params.theta)
  rotation = jnp.array([[c, -s], [s, c]])
  shear = jnp.array([[1.0, -jnp.sin(params.shear)], [0.0, jnp.cos(params.shear)]])
  zoom = jnp.diag(jnp.stack([params.zoom_col, params.zoom_row]))
  flip = jnp.diag(jnp.where(jnp.stack([params.flip_h, params.flip_v]), -1.0, 1.0))
  linear = rotation @ shear @ zoom
  a_xy = linear @ flip
  b_xy = -linear @ jnp.stack([params.shift_col, params.shift_row])
  # (x, y) -> (row, col): swap both axes of the matrix and the offset.
  a_rc = a_xy[::-1, ::-1]
  b_rc = b_xy[::-1]
  centre = jnp.array([(height - 1) / 2.0, (width - 1) / 2.0], a_rc.dtype)
  offset = centre - a_rc @ centre + b_rc
  top = jnp.concatenate([a_rc, jnp.zeros((2, 1), a_rc.dtype), offset[:, None]], axis=1)
  channel_row = jnp.array([[0.0, 0.0, 1.0, 0.0]], a_rc.dtype)
  return jnp.concatenate([top, channel_row], axis=0)


def _transform(images: jax.Array, params: _AffineParams, fill_mode: str, cval) -> jax.Array:
  """Warps each image by its own parameters (one affine_transform per image)."""
  height, width = images.shape[1], images.shape[2]
  dtype = images.dtype
  # Integer and half-precision images are resampled in float32, then cast back
  # (integers rounded to nearest and clipped to their dtype's range).
  full_precision = dtype in (jnp.dtype("float32"), jnp.dtype("float64"))
  work = images if full_precision else images.astype(jnp.float32)

  # jax.scipy.ndimage.map_coordinates (reflect, wrap) takes cval as a static
  # argument; it is unused there, so only "constant" gets the (traced) value.
  cval = cval if fill_mode == "constant" else 0.0

  def warp(image, p):
    matrix = _inverse_matrix(p, height, width).astype(work.dtype)
    return dm_pix.affine_transform(image, matrix, mode=_FILL_MODES[fill_mode], cval=cval)

  out = jax.vmap(warp)(work, params)
  if jnp.issubdtype(dtype, jnp.integer):
    info = jnp.iinfo(dtype)
    out = jnp.clip(jnp.round(out), info.min, info.max)
  return out.astype(dtype)


def _flip_only(images: jax.Array, params: _AffineParams) -> jax.Array:
  """Exact flips without resampling (the affine path would give the same values)."""
  h = params.flip_h[:, None, None, None]
  v = params.flip_v[:, None, None, None]
  images = jnp.where(h, images[:, :, ::-1], images)
  return jnp.where(v, images[:, ::-1], images)


def _sample_params(key, height, width, ranges) -> _AffineParams:
  """Draws one image's parameters as Keras ``ImageDataGenerator.get_random_transform``."""
  (rotation_range, width_shift_range, height_shift_range, shear_range, zoom_lower, zoom_upper,
   horizontal_flip, vertical_flip, flip_probability) = ranges
  k_rot, k_row, k_col, k_shear, k_zoom, k_h, k_v = jax.random.split(key, 7)

  def symmetric(k, r):
    return jax.random.uniform(k, (), minval=-r, maxval=r)

  def pixels(r, size):
    # Keras: a range below 1 is a fraction of the size, otherwise pixels.
    return jnp.where(r < 1, r * size, r)

  zoom = jax.random.uniform(k_zoom, (2,), minval=zoom_lower, maxval=zoom_upper)
  return _AffineParams(
      theta=jnp.deg2rad(symmetric(k_rot, rotation_range)),
      shift_row=symmetric(k_row, pixels(height_shift_range, height)),
      shift_col=symmetric(k_col, pixels(width_shift_range, width)),
      shear=jnp.deg2rad(symmetric(k_shear, shear_range)),
      zoom_row=zoom[1],
      zoom_col=zoom[0],
      flip_h=jax.random.bernoulli(k_h, flip_probability) & horizontal_flip,
      flip_v=jax.random.bernoulli(k_v, flip_probability) & vertical_flip,
  )


@functools.partial(jax.jit, static_argnames=("fill_mode", "warp", "flip"))
def _augment(key, images, ranges, cval, *, fill_mode: str, warp: bool, flip: bool) -> jax.Array:
  # One compiled program per shape / dtype / static flags; the ranges are traced.
  batch, height, width, _ = images.shape
  keys = jax.random.split(key, batch)  # one key per image
  params = jax.vmap(lambda k: _sample_params(k, height, width, ranges))(keys)
  if warp:
    return _transform(images, params, fill_mode, cval)
  return _flip_only(images, params) if flip else images


def _random_affine(key, images, *, rotation_range=0.0, width_shift_range=0.0,
                   height_shift_range=0.0, shear_range=0.0, zoom_range=0.0,
                   horizontal_flip=False, vertical_flip=False, flip_probability=0.5,
                   fill_mode="nearest", cval=0.0) -> jax.Array:
  images = _check_images(images)
  check_choice("fill_mode", fill_mode, tuple(_FILL_MODES))
  for name, value in (("rotation_range", rotation_range), ("width_shift_range", width_shift_range),
                      ("height_shift_range", height_shift_range), ("shear_range", shear_range)):
    check_in_range(name, value, 0.0, None)
  check_in_range("probability", flip_probability, 0.0, 1.0)
  horizontal_flip = check_bool("horizontal_flip", horizontal_flip)
  vertical_flip = check_bool("vertical_flip", vertical_flip)
  check_number("cval", cval)
  zoom_lower, zoom_upper = _zoom_bounds(zoom_range)
  warp = not (all(_is_zero(r) for r in (rotation_range, width_shift_range, height_shift_range,
                                         shear_range))
              and all(is_static_number(z) and z == 1 for z in (zoom_lower, zoom_upper)))
  flip = bool(horizontal_flip or vertical_flip)
  if not (warp or flip):
    return images
  ranges = tuple(jnp.asarray(r, jnp.float32) for r in (
      rotation_range, width_shift_range, height_shift_range, shear_range, zoom_lower,
      zoom_upper)) + (jnp.asarray(bool(horizontal_flip)), jnp.asarray(bool(vertical_flip)),
                      jnp.asarray(flip_probability, jnp.float32))
  # With a warp the flips are part of the matrix: `flip` only selects the
  # flip-only program, so all warps of one shape share a compiled program.
  return _augment(key, images, ranges, jnp.asarray(cval, jnp.float32), fill_mode=fill_mode,
                  warp=warp, flip=flip and not warp)


_FILL_DOC = """fill_mode: How points outside the input are filled, as Keras: ``"nearest"``
      (aaaa|abcd|dddd), ``"constant"`` (``cval``), ``"reflect"`` (dcba|abcd|dcba)
      or ``"wrap"`` (abcd|abcd|abcd). ``"nearest"`` and ``"constant"`` use dm_pix's
      fast interpolation; the others use ``jax.scipy.ndimage.map_coordinates``.
    cval: Fill value for ``fill_mode="constant"``."""


def random_affine(
    key: ArrayLike,
    images: ArrayLike,
    *,
    rotation_range: float = 0.0,
    width_shift_range: float = 0.0,
    height_shift_range: float = 0.0,
    shear_range: float = 0.0,
    zoom_range: float | tuple[float, float] = 0.0,
    horizontal_flip: bool = False,
    vertical_flip: bool = False,
    fill_mode: FillMode = "nearest",
    cval: float = 0.0,
) -> jax.Array:
  """Random rotation, shift, shear, zoom and flips in ONE warp per image (Keras).

  Parameters are drawn per image as ``keras.preprocessing.image.ImageDataGenerator``
  draws them: rotation uniform in ``[-rotation_range, rotation_range]`` degrees
  (positive is counter-clockwise as displayed); shifts uniform in ``[-r, r]``
  with ``r`` a fraction of the width / height when ``< 1``, else pixels; shear
  angle uniform in ``[-shear_range, shear_range]`` degrees (Keras' shear
  matrix); zoom factors for width and height drawn independently, uniform in
  ``[1 - zoom_range, 1 + zoom_range]`` (or in ``zoom_range = (lower, upper)``;
  factors above 1 zoom out, as in Keras); each flip with probability 0.5. The
  composition (rotation · shear · zoom about the centre, then the shift, then
  the flips) is one ``dm_pix.affine_transform`` with linear interpolation.

  Unlike Keras, the warp is centred at ``((H-1)/2, (W-1)/2)`` also for
  non-square images, and the width shift always moves columns. Integer images
  (e.g. uint8) are resampled in float32, rounded to the nearest integer and
  clipped to the dtype's range; float16 / bfloat16 are resampled in float32.
  Static zero ranges skip the warp: the defaults return ``images`` unchanged
  and flips alone are exact.

  Args:
    key: A ``jax.random`` key, split into one key per image.
    images: Shape ``(batch, height, width, channels)``, floating or integer.
    rotation_range: Degrees, ``>= 0``.
    width_shift_range: Fraction of the width if ``< 1``, else pixels; ``>= 0``.
    height_shift_range: Fraction of the height if ``< 1``, else pixels; ``>= 0``.
    shear_range: Shear angle in degrees, ``>= 0``.
    zoom_range: Float ``z`` in ``[0, 1)`` for ``[1 - z, 1 + z]``, or ``(lower, upper)``.
    horizontal_flip: Mirror left-right with probability 0.5.
    vertical_flip: Mirror up-down with probability 0.5.
    {fill}

  Returns:
    Array of the shape and dtype of ``images``.

  Raises:
    ValueError: if ``images`` is not rank 4, ``fill_mode`` is unknown or a static
      range is negative.
    TypeError: if ``images`` is neither floating nor integer, a range or ``cval``
      is not a number (a string, ``True``) or a flip flag is not a bool.

  Examples:
    >>> images = jnp.ones((2, 8, 8, 3))
    >>> out = random_affine(jax.random.key(0), images, rotation_range=20.0,
    ...                     zoom_range=0.1, horizontal_flip=True)
    >>> out.shape, out.dtype
    ((2, 8, 8, 3), dtype('float32'))
    >>> bool(jnp.all(random_affine(jax.random.key(0), images) == images))
    True

  References:
    ``keras.preprocessing.image.ImageDataGenerator`` and
    ``apply_affine_transform``; ``dm_pix.affine_transform``.
  """
  return _random_affine(
      key, images, rotation_range=rotation_range, width_shift_range=width_shift_range,
      height_shift_range=height_shift_range, shear_range=shear_range, zoom_range=zoom_range,
      horizontal_flip=horizontal_flip, vertical_flip=vertical_flip, fill_mode=fill_mode,
      cval=cval)


def random_flip(
    key: ArrayLike,
    images: ArrayLike,
    *,
    horizontal: bool = False,
    vertical: bool = False,
    probability: float = 0.5,
) -> jax.Array:
  """Mirrors each image left-right and / or up-down with ``probability`` (Keras: 0.5).

  Flips are exact (no resampling); with ``probability=1`` the horizontal flip is
  ``images[:, :, ::-1]``. For the same key, ``horizontal=True`` flips the same
  images as ``random_affine(key, images, horizontal_flip=True)``.

  Args:
    key: A ``jax.random`` key, split into one key per image.
    images: Shape ``(batch, height, width, channels)``.
    horizontal: Whether to flip left-right.
    vertical: Whether to flip up-down (drawn independently of ``horizontal``).
    probability: Probability of each enabled flip, in ``[0, 1]``.

  Returns:
    Array of the shape and dtype of ``images``.

  Raises:
    ValueError: if ``images`` is not rank 4 or ``probability`` is outside ``[0, 1]``.
    TypeError: if an argument has the wrong type (a string or ``True`` for a
      number, a number for a flag).

  Examples:
    >>> images = jnp.arange(8.0).reshape(1, 2, 4, 1)
    >>> out = random_flip(jax.random.key(0), images, horizontal=True, probability=1.0)
    >>> out[0, :, :, 0]
    Array([[3., 2., 1., 0.],
           [7., 6., 5., 4.]], dtype=float32)
  """
  check_bool("horizontal", horizontal)
  check_bool("vertical", vertical)
  return _random_affine(key, images, horizontal_flip=horizontal, vertical_flip=vertical,
                        flip_probability=probability)


def random_rotation(
    key: ArrayLike,
    images: ArrayLike,
    *,
    rotation_range: float = 0.0,
    fill_mode: FillMode = "nearest",
    cval: float = 0.0,
) -> jax.Array:
  """Rotates each image by an angle uniform in ``[-rotation_range, rotation_range]`` degrees.

  Rotation is about the image centre, positive angles counter-clockwise as
  displayed (row 0 at the top), as Keras ``ImageDataGenerator(rotation_range=)``.

  Args:
    key: A ``jax.random`` key, split into one key per image.
    images: Shape ``(batch, height, width, channels)``.
    rotation_range: Degrees, ``>= 0``.
    {fill}

  Returns:
    Array of the shape and dtype of ``images``.

  Raises:
    ValueError: if ``images`` is not rank 4, ``fill_mode`` is unknown or
      ``rotation_range < 0``.
    TypeError: if an argument has the wrong type (a string or ``True`` for a
      number, a number for a flag).

  Examples:
    >>> images = jnp.zeros((3, 9, 9, 1)).at[:, 4, 4, 0].set(1.0)
    >>> out = random_rotation(jax.random.key(0), images, rotation_range=45.0)
    >>> out[:, 4, 4, 0]  # the centre stays in place
    Array([1., 1., 1.], dtype=float32)
  """
  return _random_affine(key, images, rotation_range=rotation_range, fill_mode=fill_mode,
                        cval=cval)


def random_shift(
    key: ArrayLike,
    images: ArrayLike,
    *,
    width_shift_range: float = 0.0,
    height_shift_range: float = 0.0,
    fill_mode: FillMode = "nearest",
    cval: float = 0.0,
) -> jax.Array:
  """Translates each image by a random offset, as Keras' ``width/height_shift_range``.

  Each offset is uniform in ``[-r, r]`` where ``r`` is the range times the width
  (height) when the range is below 1, else the range in pixels.

  Args:
    key: A ``jax.random`` key, split into one key per image.
    images: Shape ``(batch, height, width, channels)``.
    width_shift_range: Horizontal range, fraction of the width if ``< 1`` else pixels.
    height_shift_range: Vertical range, fraction of the height if ``< 1`` else pixels.
    {fill}

  Returns:
    Array of the shape and dtype of ``images``.

  Raises:
    ValueError: if ``images`` is not rank 4, ``fill_mode`` is unknown or a range is negative.
    TypeError: if an argument has the wrong type (a string or ``True`` for a
      number, a number for a flag).

  Examples:
    >>> images = jnp.ones((2, 8, 8, 1))
    >>> out = random_shift(jax.random.key(0), images, width_shift_range=0.25,
    ...                    fill_mode="constant")
    >>> out.shape
    (2, 8, 8, 1)
  """
  return _random_affine(key, images, width_shift_range=width_shift_range,
                        height_shift_range=height_shift_range, fill_mode=fill_mode, cval=cval)


def random_shear(
    key: ArrayLike,
    images: ArrayLike,
    *,
    shear_range: float = 0.0,
    fill_mode: FillMode = "nearest",
    cval: float = 0.0,
) -> jax.Array:
  """Shears each image by an angle uniform in ``[-shear_range, shear_range]`` degrees.

  Uses Keras' shear matrix ``[[1, -sin(s)], [0, cos(s)]]`` (in ``(x, y)`` order)
  about the image centre, as ``ImageDataGenerator(shear_range=)``.

  Args:
    key: A ``jax.random`` key, split into one key per image.
    images: Shape ``(batch, height, width, channels)``.
    shear_range: Degrees, ``>= 0``.
    {fill}

  Returns:
    Array of the shape and dtype of ``images``.

  Raises:
    ValueError: if ``images`` is not rank 4, ``fill_mode`` is unknown or
      ``shear_range < 0``.
    TypeError: if an argument has the wrong type (a string or ``True`` for a
      number, a number for a flag).

  Examples:
    >>> images = jnp.ones((2, 8, 8, 1), jnp.uint8)
    >>> random_shear(jax.random.key(0), images, shear_range=15.0).dtype
    dtype('uint8')
  """
  return _random_affine(key, images, shear_range=shear_range, fill_mode=fill_mode, cval=cval)


def random_zoom(
    key: ArrayLike,
    images: ArrayLike,
    *,
    zoom_range: float | tuple[float, float] = 0.0,
    fill_mode: FillMode = "nearest",
    cval: float = 0.0,
) -> jax.Array:
  """Zooms each image by factors drawn from ``[1 - zoom_range, 1 + zoom_range]`` (Keras).

  Width and height factors are drawn independently, as Keras
  ``ImageDataGenerator``; a factor above 1 samples a larger area (zooms out).

  Args:
    key: A ``jax.random`` key, split into one key per image.
    images: Shape ``(batch, height, width, channels)``.
    zoom_range: Float ``z`` in ``[0, 1)`` or a ``(lower, upper)`` pair of positive factors.
    {fill}

  Returns:
    Array of the shape and dtype of ``images``.

  Raises:
    ValueError: if ``images`` is not rank 4, ``fill_mode`` is unknown or
      ``zoom_range`` is invalid.
    TypeError: if an argument has the wrong type (a string or ``True`` for a
      number, a number for a flag).

  Examples:
    >>> images = jnp.ones((2, 8, 8, 1))
    >>> out = random_zoom(jax.random.key(0), images, zoom_range=(2.0, 2.0),
    ...                   fill_mode="constant")
    >>> float(out[0].mean())  # zoomed out by 2: a quarter of the area is left
    0.25
  """
  return _random_affine(key, images, zoom_range=zoom_range, fill_mode=fill_mode, cval=cval)


for _fn in (random_affine, random_rotation, random_shift, random_shear, random_zoom):
  _fn.__doc__ = _fn.__doc__.replace("{fill}", _FILL_DOC)
del _fn
