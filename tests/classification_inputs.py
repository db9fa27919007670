"""Inputs shared by the classification and focal-loss tests (seeded, small)."""

from __future__ import annotations

import jax
import numpy as np
import torch

__all__ = ["N", "C", "binary_inputs", "probability_inputs", "categorical_inputs",
           "integer_label_inputs", "to_torch"]

N, C = 8, 5


def binary_inputs(seed=0, shape=(N, 3), scale=3.0, soft=False):
  rng = np.random.default_rng(seed)
  x = (scale * rng.standard_normal(shape)).astype(np.float32)
  y = rng.uniform(size=shape) if soft else rng.integers(0, 2, shape)
  return x, y.astype(np.float32)


def probability_inputs(seed=0, shape=(N, 3)):
  x, y = binary_inputs(seed, shape)
  return np.array(jax.nn.sigmoid(x / 3)), y


def categorical_inputs(seed=0, shape=(N, C), axis=-1):
  rng = np.random.default_rng(seed)
  x = (2 * rng.standard_normal(shape)).astype(np.float32)
  y = rng.dirichlet(np.ones(shape[axis]), size=x.size // shape[axis]).astype(np.float32)
  y = np.moveaxis(y.reshape(*np.delete(shape, axis % len(shape)), shape[axis]), -1, axis)
  return x, y


def integer_label_inputs(seed=0, shape=(N, C)):
  rng = np.random.default_rng(seed)
  x = (2 * rng.standard_normal(shape)).astype(np.float32)
  return x, rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)


def to_torch(a):
  return torch.tensor(np.asarray(a))
