"""Input checks and sums shared by every metric (private).

Every metric is computed from weighted sums over samples, never from means of
chunks, so a batch sharded across devices gives the same value as the whole
batch. ``weights`` is scikit-learn's ``sample_weight``; ``where`` is a boolean
mask whose excluded samples contribute exactly nothing.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lossreg_jax._validation import as_float_array, check_same_shape
from lossreg_jax.losses._reduce import broadcast_where


def is_traced(*xs) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in xs)


def as_arrays(*xs):
  """``jnp.asarray`` for the jitted cores (lists become one array, None stays)."""
  return tuple(None if x is None else jnp.asarray(x) for x in xs)


def default_int() -> jnp.dtype:
  """JAX's default integer: int32, or int64 with x64 enabled (as ``jnp.asarray(0)``)."""
  return jnp.asarray(0).dtype


def check_call(fn: str, first_name: str, first, weights) -> None:
  """Checks every metric makes at its call, as scikit-learn's ``check_array`` does.

  An empty input (0 rows: a static shape, so under ``jit`` too) is a
  ``ValueError``, as in scikit-learn; rows left out by ``where`` are not empty
  input and give the documented values. Concrete ``weights`` must be finite and
  non-negative (scikit-learn's ``_check_sample_weight``).
  """
  shape = np.shape(first) if first is not None else None
  if shape is not None and len(shape) > 0 and shape[0] == 0:
    raise ValueError(f"{fn}: {first_name} is empty (shape {tuple(shape)}); scikit-learn "
                     f"refuses empty input. To leave rows out, pass where= instead.")
  if weights is None or is_traced(weights):
    return
  w = np.asarray(weights)
  if not (np.issubdtype(w.dtype, np.number) or w.dtype == np.bool_):
    return  # the metric's own check names a wrong type
  bad = ~np.isfinite(w) | (w < 0) if np.issubdtype(w.dtype, np.number) else np.zeros(w.shape, bool)
  if np.any(bad):
    i = np.argwhere(bad)[0]
    raise ValueError(f"{fn}: weights must be finite and non-negative (scikit-learn's "
                     f"sample_weight), got {w[tuple(i)]} at index {tuple(int(k) for k in i)} "
                     f"({int(bad.sum())} bad value(s)).")


def check_class_dtype(name: str, x) -> None:
  """Class ids are integers or booleans; concrete floats are allowed and checked by value.

  A floating array is accepted when concrete (its values are then checked by
  :func:`check_class_values`, as scikit-learn accepts ``[0., 1.]``); a traced
  floating array cannot be checked and is a ``TypeError``, as is any
  non-numeric dtype (strings).
  """
  dtype = x.dtype
  if jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
    return
  if jnp.issubdtype(dtype, jnp.floating) and not is_traced(x):
    return
  if jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(
        f"{name} must hold integer class indices (or booleans) under jax.jit / vmap, got "
        f"traced dtype {dtype} with shape {x.shape}: integral floats are accepted only "
        f"on concrete inputs, where they can be checked; cast with "
        f"{name}.astype(jnp.int32), or threshold probabilities / take an argmax first."
    )
  raise TypeError(
      f"{name} must hold integer class indices (or booleans), got dtype "
      f"{dtype} with shape {x.shape}; threshold probabilities or take an "
      f"argmax first, e.g. {name}.argmax(-1)."
  )


def check_class_values(name: str, v: np.ndarray | None) -> None:
  """Raises ``ValueError`` for concrete floating class ids that are NaN, inf or non-integral.

  scikit-learn raises ``ValueError`` for these too; integral floats (``1.0``)
  are valid class ids.
  """
  if v is None or not np.issubdtype(v.dtype, np.floating) or not v.size:
    return
  bad = ~np.isfinite(v)
  if bad.any():
    raise ValueError(
        f"{name} must hold finite class ids, got {v[bad][0]} ({int(bad.sum())} of "
        f"{v.size} included entries)."
    )
  bad = v != np.round(v)
  if bad.any():
    raise ValueError(
        f"{name} must hold integral class ids, got {v[bad][0]} ({int(bad.sum())} of "
        f"{v.size} included entries); threshold probabilities or take an argmax first."
    )


def as_class_ids(x):
  """A concrete floating class-id array (checked integral) as JAX's default integer."""
  if x is None or is_traced(x):
    return x
  x = np.asarray(x) if not isinstance(x, jax.Array) else x
  if jnp.issubdtype(x.dtype, jnp.floating):
    # NaN in excluded rows becomes an arbitrary id; those rows count for nothing.
    with np.errstate(invalid="ignore"):
      return jnp.asarray(np.nan_to_num(np.asarray(x, np.float64)).astype(default_int()))
  return x


def check_inputs(name_p, predictions, name_t, labels, where, *, classes=True):
  """Checks dtypes and shapes without computing anything.

  Returns the included values of both arrays as flat NumPy arrays for value
  checks, or ``(None, None)`` when anything is traced.
  """
  traced = is_traced(predictions, labels, where)
  p = predictions if is_traced(predictions) else np.asarray(predictions)
  t = labels if is_traced(labels) else np.asarray(labels)
  if classes:
    check_class_dtype(name_p, p)
    check_class_dtype(name_t, t)
  else:
    as_float_array(name_p, p)
  check_same_shape(name_p, p, name_t, t)
  if traced:
    return None, None
  p, t = p.reshape(-1), t.reshape(-1)
  if where is None:
    if classes:
      check_class_values(name_p, p)
      check_class_values(name_t, t)
    return p, t
  mask = np.asarray(where)
  if mask.dtype != np.bool_:
    raise TypeError(f"where must be a boolean mask, got dtype {mask.dtype}.")
  try:
    mask = np.broadcast_to(mask, np.shape(predictions))
  except ValueError:
    raise ValueError(
        f"where must be broadcastable to {name_t}.shape={np.shape(labels)}, got "
        f"where.shape={mask.shape}."
    ) from None
  mask = mask.reshape(-1)
  p, t = p[mask], t[mask]
  if classes:
    check_class_values(name_p, p)
    check_class_values(name_t, t)
  return p, t


def float_dtype(weights: jax.Array | None) -> jnp.dtype:
  # float32, or float64 with x64 enabled; low-precision weights accumulate in it.
  default = jnp.asarray(0.0).dtype
  if weights is None or not jnp.issubdtype(weights.dtype, jnp.floating):
    return default
  return jnp.promote_types(weights.dtype, default)


def prepare(predictions, labels, weights, where, *, name_t="labels"):
  """Flattens the (checked) inputs; returns ``(p, t, w, include, dtype)``.

  ``w`` is the per-sample weight with excluded samples set to 0: JAX's default
  integer (int32, int64 with x64) when ``weights`` is None, integer or boolean,
  so counts stay exact integers as scikit-learn's; else floating. ``include`` is
  the flat boolean mask or None.
  """
  p, t = jnp.asarray(predictions), jnp.asarray(labels)
  if not jnp.issubdtype(p.dtype, jnp.floating):
    p = p.astype(jnp.int32)  # class ids (bool or any integer width)
  if not jnp.issubdtype(t.dtype, jnp.floating):
    t = t.astype(jnp.int32)
  shape = p.shape
  include = broadcast_where(where, shape)
  include = None if include is None else include.reshape(-1)
  if weights is None:
    dtype = float_dtype(None)
    int_dtype = default_int()
    w = jnp.ones(p.size, int_dtype) if include is None else include.astype(int_dtype)
  else:
    weights = jnp.asarray(weights)
    dtype = float_dtype(weights)
    w_dtype = dtype if jnp.issubdtype(weights.dtype, jnp.floating) else default_int()
    try:
      w = jnp.broadcast_to(weights.astype(w_dtype), shape).reshape(-1)
    except ValueError:
      raise ValueError(
          f"weights must be broadcastable to {name_t}.shape={shape}, got "
          f"weights.shape={weights.shape}."
      ) from None
    if include is not None:
      w = jnp.where(include, w, jnp.zeros((), w_dtype))
  return p.reshape(-1), t.reshape(-1), w, include, dtype


def resolve_num_classes(num_classes, pv, tv, fn: str) -> int:
  """Checks a given ``num_classes`` or infers it from concrete included values."""
  if num_classes is not None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
      raise TypeError(
          f"num_classes must be a static Python int, got {num_classes!r} "
          f"({type(num_classes).__name__})."
      )
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
  elif pv is None:
    raise ValueError(
        f"{fn} needs num_classes=<static int> when predictions, labels or where "
        f"are traced (under jax.jit / jax.vmap); got num_classes=None. Pass it as "
        f"a keyword and mark it static, e.g. jax.jit(partial({fn}, num_classes=3))."
    )
  for name, v in (("predictions", pv), ("labels", tv)):
    if v is not None and v.size and v.min() < 0:
      raise ValueError(f"{name} must be class indices >= 0, got {v.min()}.")
    if v is not None and v.size and num_classes is not None and v.max() >= num_classes:
      raise ValueError(
          f"{name} must be class indices < num_classes={num_classes}, got "
          f"{v.max()}."
      )
  if num_classes is None:
    num_classes = int(max(pv.max(initial=0), tv.max(initial=0))) + 1
  return int(num_classes)


def check_binary(name: str, v: np.ndarray | None, context: str) -> None:
  if v is not None and not np.isin(v, (0, 1)).all():
    raise ValueError(f"{context} needs 0/1 {name}, got values {np.unique(v).tolist()}.")


def check_zero_division(zero_division, *, allow_warn: bool = False):
  """Checks ``zero_division`` and returns its value as a float (or the tracer).

  With ``allow_warn``, scikit-learn's ``"warn"`` is accepted and gives 0.0 (the
  caller warns where it is used).
  """
  if is_traced(zero_division):
    return zero_division  # a traced value cannot be checked
  if allow_warn and isinstance(zero_division, str) and zero_division == "warn":
    return 0.0
  if isinstance(zero_division, str) or not np.isscalar(zero_division):
    allowed = "0.0, 1.0, nan or 'warn'" if allow_warn else "0.0, 1.0 or nan"
    raise TypeError(f"zero_division must be a Python float ({allowed}), got {zero_division!r}.")
  value = float(zero_division)
  if not (math.isnan(value) or 0.0 <= value <= 1.0):
    raise ValueError(f"zero_division must be in [0, 1] or nan, got {zero_division!r}.")
  return value


def divide(num: jax.Array, den: jax.Array, zero_division: float, dtype) -> jax.Array:
  # sklearn's _prf_divide: a zero denominator gives zero_division; the untaken
  # branch divides by 1 so no inf / NaN is ever produced.
  num, den = num.astype(dtype), den.astype(dtype)
  zero = den == 0
  return jnp.where(zero, jnp.asarray(zero_division, dtype), num / jnp.where(zero, 1, den))


def segment_sum(x: jax.Array, ids: jax.Array, n: int) -> jax.Array:
  # Ids outside [0, n) (masked padding) are dropped by segment_sum.
  return jax.ops.segment_sum(x, ids, num_segments=n)




def check_no_nan(name: str, values: np.ndarray | None, fn: str) -> None:
  """Raises ``ValueError`` if concrete included ``values`` hold a NaN."""
  if values is None or not np.issubdtype(values.dtype, np.floating):
    return
  bad = np.isnan(values)
  if bad.any():
    raise ValueError(
        f"{fn} got NaN in {name} ({int(bad.sum())} of {values.size} included "
        f"entries); drop those rows or exclude them with where=."
    )


def compact(keep: jax.Array, *arrays: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
  """Moves the entries where ``keep`` holds to the front, keeping their order.

  The fixed-shape form of boolean indexing (``x[keep]``) that ``jit`` accepts:
  the first ``count`` entries of each output are ``x[keep]``, the remaining ones
  repeat the last kept entry (entry 0 when nothing is kept).

  Returns:
    ``(count, outputs)``: an int32 scalar and one array per input, each of
    ``keep``'s length.
  """
  n = keep.shape[0]
  count = jnp.sum(keep, dtype=jnp.int32)
  dest = jnp.where(keep, jnp.cumsum(keep, dtype=jnp.int32) - 1, n)
  source = jnp.zeros(n, jnp.int32).at[dest].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
  source = source[jnp.minimum(jnp.arange(n, dtype=jnp.int32), jnp.maximum(count - 1, 0))]
  return count, tuple(x[source] for x in arrays)


def has_nan(s, y, include):
  """True where an included score or (floating) label is NaN: the result is NaN."""
  bad = jnp.isnan(s)
  if jnp.issubdtype(y.dtype, jnp.floating):
    bad = bad | jnp.isnan(y)
  if include is not None:
    bad = bad & include
  return jnp.any(bad)


def threshold_points(scores, labels, weights, where):
  """Cumulative false / true positive weight at each distinct score, descending.

  The fixed-shape form of scikit-learn's ``confusion_matrix_at_thresholds``:
  rows with zero weight (and excluded rows) are dropped as scikit-learn drops
  zero-weight samples; the first ``count`` entries of ``fps``, ``tps`` and
  ``thresholds`` are scikit-learn's, the rest repeat the last of them.

  Returns:
    ``(count, fps, tps, thresholds, nan_found, dtype)``, arrays of length n.
  """
  s, y, w, include, dtype = prepare(scores, labels, weights, where)
  nan_found = has_nan(s, y, include)
  if s.shape[0] == 0:  # no rows: one zero-weight row keeps x[-1] defined
    s, y, w = jnp.zeros(1, s.dtype), jnp.zeros(1, y.dtype), jnp.zeros(1, w.dtype)
  n = s.shape[0]
  valid = w != 0
  # Included rows first, by descending score; stable as scikit-learn's sort.
  _, _, order = jax.lax.sort(
      ((~valid).astype(jnp.int32), -s, jnp.arange(n, dtype=jnp.int32)), num_keys=2,
      is_stable=True)
  s, w, valid, positive = s[order], w[order], valid[order], (y == 1)[order]
  zero = jnp.zeros((), w.dtype)
  # Unweighted (or integer weights), w is an integer count: the cumulative sums are exact.
  tps = jnp.cumsum(jnp.where(positive, w, zero)).astype(dtype)
  fps = jnp.cumsum(jnp.where(positive, zero, w)).astype(dtype)
  last = jnp.ones(1, bool)
  # A threshold closes each tie group: the next score differs or is excluded.
  end = valid & jnp.concatenate([(s[1:] != s[:-1]) | ~valid[1:], last])
  count, (fps, tps, thresholds) = compact(end, fps, tps, s)
  return count, fps, tps, thresholds, nan_found, dtype


def row_array(name: str, x, n: int) -> jax.Array:
  """``weights`` / ``where`` given per row: shape ``(n,)`` (or a scalar / ``(1,)``)."""
  x = jnp.asarray(x)
  if x.ndim > 1 or (x.ndim == 1 and x.shape[0] not in (1, n)):
    raise ValueError(
        f"{name} must hold one value per row, shape ({n},) (or a scalar), got "
        f"{name}.shape={x.shape}."
    )
  return jnp.broadcast_to(x, (n,))


def row_mask(where, n: int) -> jax.Array | None:
  """Checks a per-row boolean ``where`` and returns it with shape ``(n,)``."""
  if where is None:
    return None
  where = row_array("where", where, n)
  if where.dtype != jnp.bool_:
    raise TypeError(f"where must be a boolean mask, got dtype {where.dtype}.")
  return where


def row_weights(weights, where, n: int, dtype) -> tuple[jax.Array, jax.Array | None]:
  """Per-row weights in ``dtype`` with excluded rows at 0, and the mask (or None)."""
  include = row_mask(where, n)
  w = jnp.ones((n,), dtype) if weights is None else row_array("weights", weights, n).astype(dtype)
  if include is not None:
    w = jnp.where(include, w, jnp.zeros((), dtype))
  return w, include


def concrete_included(x, where, n: int) -> np.ndarray | None:
  """The rows of ``x`` that ``where`` includes, as NumPy, or None when traced.

  NumPy only: inside a ``jit`` that captures concrete arrays, any ``jnp`` op on
  them would return a tracer.
  """
  if is_traced(x, where):
    return None
  x = np.asarray(x)
  if where is None:
    return x
  mask = np.asarray(where)
  if mask.dtype != np.bool_:
    raise TypeError(f"where must be a boolean mask, got dtype {mask.dtype}.")
  if mask.ndim > 1 or (mask.ndim == 1 and mask.shape[0] not in (1, n)):
    raise ValueError(
        f"where must hold one value per row, shape ({n},) (or a scalar), got "
        f"where.shape={mask.shape}."
    )
  return x[np.broadcast_to(mask, (n,))]
