"""Tests for regularizers.augment: Keras ImageDataGenerator meanings on dm_pix warps."""

from __future__ import annotations

from functools import partial

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax.regularizers import (
    random_affine,
    random_flip,
    random_rotation,
    random_shear,
    random_shift,
    random_zoom,
)
from lossreg_jax.regularizers.augment import _AffineParams, _transform

# Most warps use this shape (odd and square: the centre is pixel (4, 4)), so a
# handful of programs are compiled for the whole file.
B, S = 3, 9
CENTRE = (S - 1) / 2
_warp = jax.jit(_transform, static_argnames="fill_mode")


def _params(**kw) -> _AffineParams:
  """A batch of explicit (key-independent) transform parameters."""
  defaults = dict(theta=0.0, shift_row=0.0, shift_col=0.0, shear=0.0, zoom_row=1.0,
                  zoom_col=1.0, flip_h=False, flip_v=False)
  defaults.update(kw)
  return _AffineParams(**{
      k: jnp.broadcast_to(jnp.asarray(v, jnp.bool_ if k.startswith("flip") else jnp.float32),
                          (B,))
      for k, v in defaults.items()})


def _images(seed=0, dtype=jnp.float32):
  return jax.random.uniform(jax.random.key(seed), (B, S, S, 2)).astype(dtype)


def _point(row, col):
  return jnp.zeros((B, S, S, 2)).at[:, row, col, :].set(1.0)


def _centroid(image):
  """(row, col) intensity centroid of each image of the batch."""
  mass = np.asarray(image[..., 0], np.float64)
  rows, cols = np.mgrid[:S, :S]
  total = mass.sum((1, 2))
  return np.stack([(mass * rows).sum((1, 2)) / total, (mass * cols).sum((1, 2)) / total], 1)


# ----------------------------------------------------------------------------- identity


def test_defaults_and_zero_ranges_are_the_identity():
  images = _images()
  key = jax.random.key(0)
  for fn in (random_affine, random_flip, random_rotation, random_shift, random_shear,
             random_zoom):
    np.testing.assert_array_equal(fn(key, images), images)
  np.testing.assert_array_equal(
      random_affine(key, images, rotation_range=0.0, zoom_range=(1.0, 1.0)), images)
  # the warp itself is the identity for identity parameters, in every fill mode
  for mode in ("nearest", "constant", "reflect", "wrap"):
    np.testing.assert_allclose(_warp(images, _params(), mode, 0.0), images, atol=1e-6)


# ----------------------------------------------------------------------------- flips


def test_flip_with_probability_one_mirrors_exactly():
  images = _images()
  key = jax.random.key(1)
  np.testing.assert_array_equal(
      random_flip(key, images, horizontal=True, probability=1.0), images[:, :, ::-1])
  np.testing.assert_array_equal(
      random_flip(key, images, vertical=True, probability=1.0), images[:, ::-1])
  np.testing.assert_array_equal(
      random_flip(key, images, horizontal=True, vertical=True, probability=1.0),
      images[:, ::-1, ::-1])
  np.testing.assert_array_equal(
      random_flip(key, images, horizontal=True, probability=0.0), images)
  # the same flip through the warp matrix (as composed with other transforms)
  np.testing.assert_allclose(_warp(images, _params(flip_h=True), "nearest", 0.0),
                             images[:, :, ::-1], atol=1e-6)
  np.testing.assert_allclose(_warp(images, _params(flip_v=True), "nearest", 0.0),
                             images[:, ::-1], atol=1e-6)


def test_flips_are_per_image_and_match_random_affine():
  images = jnp.broadcast_to(_images()[:1], (16, S, S, 2))
  key = jax.random.key(2)
  out = random_flip(key, images, horizontal=True)
  flipped = np.asarray([bool(jnp.all(o == images[0, :, ::-1])) for o in out])
  unflipped = np.asarray([bool(jnp.all(o == images[0])) for o in out])
  assert np.all(flipped ^ unflipped) and 0 < flipped.sum() < 16
  np.testing.assert_array_equal(random_affine(key, images, horizontal_flip=True), out)


# ----------------------------------------------------------------------------- geometry


def test_rotation_by_90_degrees_is_rot90():
  images = _images()
  out = _warp(images, _params(theta=np.pi / 2), "nearest", 0.0)
  # counter-clockwise as displayed, like np.rot90
  np.testing.assert_allclose(out, np.rot90(np.asarray(images), 1, axes=(1, 2)), atol=1e-5)


def test_rotation_equals_dm_pix_rotate():
  images = _images(3)
  theta = 0.4
  expected = jax.vmap(lambda im: dm_pix.rotate(im, theta, mode="constant"))(images)
  np.testing.assert_allclose(_warp(images, _params(theta=theta), "constant", 0.0), expected,
                             atol=1e-5)


def test_rotation_moves_a_point_where_the_rotation_matrix_says():
  row, col = 2, 6
  theta = np.deg2rad(30.0)
  out = _warp(_point(row, col), _params(theta=theta), "constant", 0.0)
  # push direction in (x = col, y = row pointing down), counter-clockwise on screen
  x, y = col - CENTRE, row - CENTRE
  expected_col = CENTRE + x * np.cos(theta) + y * np.sin(theta)
  expected_row = CENTRE - x * np.sin(theta) + y * np.cos(theta)
  np.testing.assert_allclose(_centroid(out), [[expected_row, expected_col]] * B, atol=0.3)


def test_shift_zoom_and_shear_move_a_point_as_documented():
  point = _point(3, 5)
  # shift: content moves by +shift (down / right)
  out = _warp(point, _params(shift_row=-1.0, shift_col=2.0), "constant", 0.0)
  np.testing.assert_allclose(_centroid(out), [[2.0, 7.0]] * B, atol=1e-5)
  # zoom 0.5 (Keras' zoom in by 2): distances from the centre double
  out = _warp(_point(3, 5), _params(zoom_row=0.5, zoom_col=0.5), "constant", 0.0)
  np.testing.assert_allclose(_centroid(out), [[2.0, 6.0]] * B, atol=1e-5)
  # shear (Keras' matrix): x_out = x_in + tan(s) y_in, y_out = y_in / cos(s)
  s = np.deg2rad(20.0)
  out = _warp(_point(2, 4), _params(shear=s), "constant", 0.0)
  y_in, x_in = 2 - CENTRE, 4 - CENTRE
  expected = [CENTRE + y_in / np.cos(s), CENTRE + x_in + np.tan(s) * y_in]
  np.testing.assert_allclose(_centroid(out), [expected] * B, atol=0.3)


def test_random_shift_fraction_and_pixels():
  point = _point(4, 4)
  key = jax.random.key(4)
  # fraction of the width (< 1): shifts within +-0.25 * 9 pixels, different per image
  out = random_shift(key, point, width_shift_range=0.25, fill_mode="constant")
  c = _centroid(out)
  np.testing.assert_allclose(c[:, 0], 4.0, atol=1e-5)  # rows untouched
  assert np.all(np.abs(c[:, 1] - 4.0) <= 0.25 * S + 1e-5)
  assert np.ptp(c[:, 1]) > 0.1
  # pixels (>= 1): vertical shifts within +-2 pixels
  out = random_shift(key, point, height_shift_range=2.0, fill_mode="constant")
  c = _centroid(out)
  np.testing.assert_allclose(c[:, 1], 4.0, atol=1e-5)
  assert np.all(np.abs(c[:, 0] - 4.0) <= 2.0 + 1e-5) and np.ptp(c[:, 0]) > 0.1


@pytest.mark.parametrize("mode,pad_mode", [("nearest", "edge"), ("constant", "constant"),
                                           ("reflect", "symmetric"), ("wrap", "wrap")])
def test_fill_modes_match_keras_documentation(mode, pad_mode):
  # Shift content right by 2 pixels: the two new columns show the fill mode.
  images = jnp.broadcast_to(jnp.arange(1.0, S + 1)[None, None, :, None], (B, S, S, 2))
  out = _warp(images, _params(shift_col=2.0), mode, -5.0)
  row = np.arange(1.0, S + 1)
  kwargs = {"constant_values": -5.0} if pad_mode == "constant" else {}
  expected = np.pad(row, (2, 0), mode=pad_mode, **kwargs)[:S]
  np.testing.assert_allclose(out[0, 0, :, 0], expected, atol=1e-5)


# ----------------------------------------------------------------------------- API


# All public warps below use fill_mode="constant" on (B, S, S, 2) float32 images,
# so they share one compiled program (the ranges are traced arguments).
AFFINE = dict(rotation_range=30.0, width_shift_range=0.1, height_shift_range=0.1,
              shear_range=10.0, zoom_range=0.2, horizontal_flip=True, vertical_flip=True,
              fill_mode="constant", cval=300.0)


def test_random_affine_per_image_jit_vmap():
  images = jnp.broadcast_to(_images()[:1], (B, S, S, 2))
  key = jax.random.key(5)
  out = random_affine(key, images, **AFFINE)
  assert out.shape == images.shape and out.dtype == jnp.float32
  # one key per image: identical inputs get different transforms
  assert not np.allclose(out[0], out[1]) and not np.allclose(out[1], out[2])
  # under an outer jit with a traced range (lowering checks tracing; the inner,
  # always-jitted program with traced ranges is what ran above)
  jitted = jax.jit(lambda k, x, r: random_affine(k, x, **{**AFFINE, "rotation_range": r}))
  info = jitted.lower(key, images, 30.0).out_info
  assert (info.shape, info.dtype) == (images.shape, jnp.float32)
  # vmap over several batches
  keys = jax.random.split(key, 2)
  stacked = jax.vmap(partial(random_affine, **AFFINE))(keys, jnp.stack([images, images]))
  np.testing.assert_allclose(stacked[0], random_affine(keys[0], images, **AFFINE), atol=1e-5)
  assert not np.allclose(stacked[0], stacked[1])
  # same key: a single-transform helper equals random_affine with the other ranges at 0
  np.testing.assert_array_equal(
      random_rotation(key, images, rotation_range=30.0, fill_mode="constant"),
      random_affine(key, images, rotation_range=30.0, fill_mode="constant"))


def test_uint8_and_bfloat16_keep_their_dtype():
  images = _images(6) * 255
  key = jax.random.key(7)
  out = random_affine(key, images.astype(jnp.uint8), **AFFINE)
  assert out.dtype == jnp.uint8 and out.shape == images.shape
  # resampled in float32, then rounded to nearest and clipped to [0, 255]
  as_float = random_affine(key, jnp.floor(images), **AFFINE)
  np.testing.assert_array_equal(out, np.clip(np.round(np.asarray(as_float)), 0, 255))
  assert int(out.max()) == 255  # cval=300 is clipped to the uint8 range
  bf16 = jax.eval_shape(partial(random_affine, **AFFINE), key, images.astype(jnp.bfloat16))
  assert bf16.dtype == jnp.bfloat16 and bf16.shape == images.shape


def test_bad_input():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match=r"images.*\(9, 9, 2\)"):
    random_affine(key, jnp.ones((9, 9, 2)), rotation_range=10.0)
  with pytest.raises(ValueError, match="fill_mode"):
    random_rotation(key, _images(), rotation_range=10.0, fill_mode="mirror")
  with pytest.raises(ValueError, match="rotation_range"):
    random_rotation(key, _images(), rotation_range=-1.0)
  with pytest.raises(ValueError, match="width_shift_range"):
    random_shift(key, _images(), width_shift_range=-0.1)
  with pytest.raises(ValueError, match="shear_range"):
    random_shear(key, _images(), shear_range=-3.0)
  with pytest.raises(ValueError, match="zoom_range"):
    random_zoom(key, _images(), zoom_range=1.5)
  with pytest.raises(ValueError, match="zoom_range"):
    random_zoom(key, _images(), zoom_range=(1.2, 0.8))
  with pytest.raises(ValueError, match="probability"):
    random_flip(key, _images(), horizontal=True, probability=1.5)
  with pytest.raises(TypeError, match="images"):
    random_flip(key, jnp.ones((1, 4, 4, 1), jnp.bool_), horizontal=True)
