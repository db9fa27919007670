"""Private argument checks shared by every module.

Every check runs at trace time on static information (shapes, dtypes, Python
scalars) and raises an error that names the argument, the value or shape seen
and what was expected.
"""

from __future__ import annotations

import numbers
import operator
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def as_float_array(name: str, x: ArrayLike) -> jax.Array:
  """Returns ``x`` as a floating array; raises ``TypeError`` for other dtypes."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"{name} must have a floating dtype (float16, bfloat16, float32 or "
        f"float64), got {x.dtype} with shape {x.shape}; cast it with "
        f"{name}.astype(jnp.float32)."
    )
  return x


def check_same_shape(name_a: str, a: jax.Array, name_b: str, b: jax.Array) -> None:
  """Raises ``ValueError`` unless ``a`` and ``b`` have the same shape."""
  if a.shape != b.shape:
    raise ValueError(
        f"{name_a} and {name_b} must have the same shape, got {name_a}.shape="
        f"{a.shape} and {name_b}.shape={b.shape}."
    )


def check_rank(name: str, x: jax.Array, ranks: int | tuple[int, ...]) -> None:
  """Raises ``ValueError`` unless ``x.ndim`` is one of ``ranks``."""
  ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
  if x.ndim not in ranks:
    expected = " or ".join(str(r) for r in ranks)
    raise ValueError(
        f"{name} must have rank {expected}, got shape {x.shape} (rank {x.ndim})."
    )


def is_static_number(value: Any) -> bool:
  """True for a Python / NumPy scalar or a concrete array that can be checked now."""
  if isinstance(value, jax.core.Tracer):
    return False
  try:
    return jnp.ndim(value) == 0
  except TypeError:
    return False


def _brief_repr(value: Any, limit: int = 60) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[: limit - 3] + "..."


def _dtype_of(value: Any) -> np.dtype:
  """``value``'s dtype, as NumPy reads it; ``object`` for what NumPy cannot read."""
  dtype = getattr(value, "dtype", None)
  if dtype is not None:
    return dtype
  try:
    return np.asarray(value).dtype
  except Exception:  # noqa: BLE001 - any object numpy cannot read
    return np.dtype(object)


def check_number(name: str, value: Any, *, expected: str = "a number") -> None:
  """Raises ``TypeError`` unless ``value`` is a real number or a real-valued array.

  The one type check of every numeric hyperparameter: accepted are Python and
  NumPy ints and floats and arrays (concrete or traced) of an integer or
  floating dtype. Refused, with the argument and the value named, are strings
  (``delta='1'``, which NumPy would silently convert), ``True``/``False`` and
  boolean arrays (``bool`` is an ``int`` subclass, so ``rate=True`` would be
  read as 1), complex numbers and anything NumPy cannot read as numbers.
  A list or tuple is checked entry by entry (NumPy would read ``[True, 0.1]``
  as floats). ``expected`` words what was wanted in the message.
  """
  if isinstance(value, (bool, np.bool_, str, bytes)):
    raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {_brief_repr(value)}.")
  if isinstance(value, numbers.Real) and not isinstance(value, np.generic):
    return  # a Python int or float (or another real number type)
  if isinstance(value, (list, tuple)):
    for entry in value:
      check_number(name, entry, expected=expected)
    return
  dtype = _dtype_of(value)
  if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
    shape = getattr(value, "shape", None)
    seen = (f"{type(value).__name__} {_brief_repr(value)}" if shape is None or shape == ()
            else f"{type(value).__name__} of shape {shape}")
    raise TypeError(f"{name} must be {expected}, got {seen} with dtype {dtype}.")


def check_int(name: str, value: Any, low: int | None = None, *, optional: bool = False) -> Any:
  """Returns ``value`` as a Python int; raises unless it is a (static) integer ``>= low``.

  ``TypeError`` for anything but a Python or NumPy integer (a float such as
  ``2.0``, a string, ``True``, an array), ``ValueError`` below ``low``. With
  ``optional`` None is let through (and returned).
  """
  if value is None and optional:
    return None
  is_bool = isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == np.bool_
  if not is_bool and not isinstance(value, numbers.Integral):
    try:  # a concrete integer array of shape () (not a float, not a tracer)
      value = operator.index(value)
    except Exception:  # noqa: BLE001 - whatever cannot be an index is refused below
      pass
  if is_bool or not isinstance(value, numbers.Integral):
    wanted = "an int or None" if optional else "an int"
    raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {_brief_repr(value)}.")
  if low is not None and value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
  return int(value)


def check_bool(name: str, value: Any, *, optional: bool = False) -> Any:
  """Returns ``value`` as a Python bool; ``TypeError`` unless it is ``True``/``False``.

  A string flag (``deterministic='False'``, truthy) or a number is refused
  rather than read by its truthiness. With ``optional`` None is let through.
  """
  if value is None and optional:
    return None
  if not isinstance(value, (bool, np.bool_)):
    wanted = "True, False or None" if optional else "True or False"
    raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {_brief_repr(value)}.")
  return bool(value)


def _concrete_floats(value: Any) -> np.ndarray | None:
  """``value`` as a float64 NumPy array if its values are known now, else None."""
  if isinstance(value, jax.core.Tracer) or value is None or callable(value):
    return None
  if isinstance(value, jax.Array) and not value.is_fully_addressable:
    return None  # a global array of a multi-process job: other processes hold values
  try:
    return np.asarray(value).astype(np.float64)
  except (TypeError, ValueError):
    return None


def check_in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
  """Raises ``ValueError`` if a concrete ``value`` has an entry outside the interval.

  ``value`` may be a Python or NumPy scalar or a concrete array of any shape
  (every entry is checked, NaN is out of range); anything else (a string,
  ``True``, a boolean array) is a ``TypeError`` (see :func:`check_number`).
  ``None`` and callables (schedules) are let through. Traced values (arguments
  of a ``jit``-ed or differentiated function) cannot be inspected and are let
  through: the check guards the values a user writes, not computed ones.
  """
  if value is None or callable(value):
    return  # absent, or a schedule: nothing to check now
  check_number(name, value)  # before any conversion: '1' and True are not numbers
  v = _concrete_floats(value)
  if v is None:
    return
  with np.errstate(invalid="ignore"):
    too_low = np.zeros(v.shape, bool) if low is None else (v < low if low_inclusive else v <= low)
    too_high = (np.zeros(v.shape, bool) if high is None
                else (v > high if high_inclusive else v >= high))
  bad = too_low | too_high | np.isnan(v)
  if np.any(bad):
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    seen = (f"{value!r}" if v.ndim == 0 else
            f"an array of shape {v.shape} holding {v[bad].flat[0]:g}")
    raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {seen}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
  """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
  if value not in choices:
    raise ValueError(
        f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}."
    )


def standard_result_type(*args: Any) -> jnp.dtype:
  """The dtype JAX's standard promotion gives ``args``, whatever the mode in force.

  Callers cast every operand to it explicitly, so their code also runs (with the
  same dtypes) under ``jax_numpy_dtype_promotion="strict"``.
  """
  with jax.numpy_dtype_promotion("standard"):
    return jnp.result_type(*args)


def compute_dtype(dtype: Any) -> jnp.dtype:
  """float32 for half-precision floats (they overflow in sums and squares), else ``dtype``."""
  dtype = jnp.dtype(dtype)
  return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def concrete_values(x: Any) -> np.ndarray | None:
  """``x`` as a NumPy array when its values are known here, else None.

  None for a tracer and for a global array that spans other processes' devices.

  Checks of values use NumPy on the result: a ``jnp`` op on an array captured
  from outside a jitted function is traced too, and cannot become a bool.
  """
  if isinstance(x, jax.core.Tracer):
    return None
  # A global array of a multi-process job spans other processes' devices: its
  # values cannot be fetched here, so it is checked like a traced one (not at all).
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return None
  return np.asarray(x)


def check_callable(name: str, value: Any, *, optional: bool = False) -> None:
  """Raises ``TypeError`` unless ``value`` is callable (or None when ``optional``)."""
  if value is None and optional:
    return
  if not callable(value):
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    raise TypeError(f"{name} must be a callable{' or None' if optional else ''}, got "
                    f"{type(value).__name__} {text}.")


def check_array_tree(name: str, tree: Any, *, floating: bool = True) -> None:
  """Raises ``TypeError`` unless every leaf of ``tree`` is a (floating) array.

  The message names the leaf by its path (``params['w']``) and its dtype, so
  a wrong pytree fails here rather than deep inside a ``jnp`` operation.
  """
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    dtype = _dtype_of(leaf)
    where = f"{name}{jax.tree_util.keystr(path)}"
    ok = (jnp.issubdtype(dtype, jnp.floating) if floating else
          jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_))
    if not ok:
      kind = "floating arrays" if floating else "numeric arrays"
      raise TypeError(f"{name} must be a pytree (dict, list, tuple, nnx.State) of {kind}; "
                      f"{where} is {type(leaf).__name__} with dtype {dtype}.")


def check_same_structure(name_a: str, a: Any, name_b: str, b: Any) -> None:
  """Raises ``ValueError`` unless pytrees ``a`` and ``b`` have one structure."""
  sa, sb = jax.tree.structure(a), jax.tree.structure(b)
  if sa != sb:
    brief = lambda t: (lambda x: x if len(x) <= 200 else x[:197] + "...")(str(t))
    raise ValueError(f"{name_a} and {name_b} must have the same tree structure; got "
                     f"{name_a} {brief(sa)} and {name_b} {brief(sb)}.")


def warn_float64_as_float32(caller: str, *arrays: Any, stacklevel: int = 2) -> bool:
  """Warns when float64 data will be computed in float32 (x64 off); True if it warned.

  scikit-learn computes in float64 and users compare its results with ours
  digit by digit; without ``jax_enable_x64`` JAX silently rounds float64
  inputs to float32 (about 7 significant digits), which shows from the 6th
  digit on. JAX arrays are left alone: they are float32 already. ``caller``
  is the qualified name the message starts with (``lossreg_jax.linear.ridge``);
  callers keep their own once-per-process flag.
  """
  if jax.dtypes.canonicalize_dtype(np.float64) == np.float64:
    return False
  for a in arrays:
    if a is None or isinstance(a, (jax.Array, str, bytes)) or callable(a):
      continue
    if np.dtype(_dtype_of(a)) == np.float64:
      warnings.warn(
          f"{caller} received float64 data but jax_enable_x64 is off, so it computes in "
          "float32 (about 7 significant digits): results match scikit-learn's float64 only to "
          "~1e-6 relative. For float64 parity run jax.config.update('jax_enable_x64', True) "
          "(or use `with jax.enable_x64(True):`). This warning is shown once.",
          UserWarning, stacklevel=stacklevel + 1)
      return True
  return False
