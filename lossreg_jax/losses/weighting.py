"""Per-example losses lifted to batches, and class weights for imbalanced labels."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lossreg_jax._validation import check_choice, check_in_range, check_int, concrete_values
from lossreg_jax.losses._reduce import Reduction, broadcast_where, reduce_loss

__all__ = ["class_weights", "per_example"]

CLASS_WEIGHT_SCHEMES: tuple[str, ...] = ("balanced", "effective_number")


def _leading_size(name: str, tree) -> int:
  sizes = set()
  for leaf in jax.tree.leaves(tree):
    shape = jnp.shape(leaf)
    if not shape:
      raise ValueError(
          f"{name} must have a leading batch axis, got a scalar leaf (shape ())."
      )
    sizes.add(shape[0])
  if len(sizes) != 1:
    raise ValueError(
        f"every array of {name} must have the same leading (batch) size, got sizes "
        f"{sorted(sizes)}."
    )
  return sizes.pop()


def _zero_excluded(tree, mask: jax.Array):
  """``tree`` with the rows (leading index) where ``mask`` is False set to 0."""
  def leaf(x):
    x = jnp.asarray(x)
    keep = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
    return jnp.where(keep, x, jnp.zeros((), x.dtype))
  return jax.tree.map(leaf, tree)


def per_example(loss_fn: Callable[..., ArrayLike]) -> Callable[..., jax.Array]:
  """Lifts a one-example loss to a batch loss with ``jax.vmap``.

  ``loss_fn(prediction, target, **hyper)`` sees one example (no batch axis) and
  returns a scalar. The returned ``batch_fn(predictions, targets, *,
  weights=None, where=None, reduction="mean", **hyper)`` maps it over the
  leading axis of ``predictions`` and ``targets`` (arrays or pytrees of arrays),
  then applies the shared weights / where / reduction contract to the
  per-example losses. Keyword hyper-parameters are passed unchanged to every
  call (they are not mapped). ``batch_fn`` carries ``loss_fn``'s name and
  docstring, as ``functools.wraps`` would.

  Excluded examples (``where=False``) contribute exactly 0 to the value and
  their gradient is exactly 0, even where they hold NaN or inf: their rows of
  ``predictions`` and ``targets`` are replaced by zeros before ``loss_fn``
  sees them (the "double where" of the loss contract), so no NaN reaches the
  backward pass through them.

  Args:
    loss_fn: ``loss_fn(prediction, target, **hyper) -> scalar``.

  Returns:
    ``batch_fn``: returns shape ``(batch,)`` with ``reduction="none"``, else a
    scalar.

  Raises:
    TypeError: if ``loss_fn`` is not callable.

  Examples:
    >>> import jax.numpy as jnp
    >>> def sum_of_squares(prediction, target, *, scale=1.0):
    ...   return scale * jnp.sum((prediction - target) ** 2)
    >>> batch_loss = per_example(sum_of_squares)
    >>> predictions = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    >>> batch_loss(predictions, jnp.zeros((2, 2)), reduction="none")
    Array([5., 0.], dtype=float32)
    >>> batch_loss(predictions, jnp.zeros((2, 2)), scale=2.0)
    Array(5., dtype=float32)
  """
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}.")

  def batch_fn(
      predictions,
      targets,
      *,
      weights: ArrayLike | None = None,
      where: ArrayLike | None = None,
      reduction: Reduction = "mean",
      **hyper,
  ) -> jax.Array:
    n_pred = _leading_size("predictions", predictions)
    n_target = _leading_size("targets", targets)
    if n_pred != n_target:
      raise ValueError(
          f"predictions and targets must have the same batch size (leading axis), got "
          f"{n_pred} and {n_target}."
      )
    mask = broadcast_where(where, (n_pred,))
    if mask is not None:  # the double where: excluded rows never reach loss_fn
      predictions, targets = _zero_excluded(predictions, mask), _zero_excluded(targets, mask)
    losses = jax.vmap(lambda p, t: loss_fn(p, t, **hyper))(predictions, targets)
    losses = jnp.asarray(losses)
    if losses.shape != (n_pred,):
      raise ValueError(
          f"loss_fn must return a scalar per example, got per-example shape "
          f"{losses.shape[1:]} (batch shape {losses.shape})."
      )
    if not jnp.issubdtype(losses.dtype, jnp.floating):
      losses = losses.astype(float)
    return reduce_loss(losses, weights=weights, where=where, reduction=reduction)

  functools.update_wrapper(
      batch_fn, loss_fn, assigned=("__module__", "__name__", "__qualname__"), updated=())
  name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
  batch_fn.__doc__ = (
      f"Batched ``{name}`` (made by ``lossreg_jax.losses.per_example``).\n\n"
      "Call as ``batch_fn(predictions, targets, *, weights=None, where=None, "
      "reduction=\"mean\", **hyper)``: the one-example loss is mapped with ``jax.vmap`` "
      "over the leading axis, then reduced.\n\n"
      f"Docstring of ``{name}``:\n\n{getattr(loss_fn, '__doc__', None) or '(none)'}"
  )
  return batch_fn


def _check_labels(labels: jax.Array, num_classes: int) -> None:
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(
        f"labels must be integer class indices, got dtype {labels.dtype} with shape "
        f"{labels.shape}."
    )
  values = concrete_values(labels)
  if values is None or values.size == 0:
    return
  low, high = int(values.min()), int(values.max())
  if low < 0 or high >= num_classes:
    raise ValueError(
        f"labels must be in [0, num_classes={num_classes}), got values in [{low}, {high}]."
    )


def class_weights(
    labels: ArrayLike,
    num_classes: int,
    *,
    scheme: str = "balanced",
    beta: float = 0.999,
) -> jax.Array:
  """Per-class weights that counter label imbalance.

  * ``"balanced"``: ``w_c = n / (C · n_c)``, scikit-learn's
    ``compute_class_weight("balanced", ...)``.
  * ``"effective_number"`` (Cui et al. 2019): ``w_c = (1 - β) / (1 - β^{n_c})``
    (the inverse "effective number of samples"), normalized so that
    ``Σ_c w_c = C``. ``β = 0`` gives equal weights, ``β → 1`` approaches the
    inverse frequency. ``1 - β^{n_c}`` is computed as
    ``-expm1(n_c · log1p(-(1 - β)))``, accurate for ``β`` close to 1.

  Classes absent from ``labels`` (``n_c = 0``) get weight 0 (scikit-learn
  raises instead); the effective-number normalization then sums to ``C`` over
  the present classes. The result can be passed as ``class_weights=`` to the
  cross-entropy losses.

  Args:
    labels: Integer class indices in ``[0, num_classes)``, any shape (all
      entries count).
    num_classes: Static number of classes ``C``.
    scheme: ``"balanced"`` or ``"effective_number"``.
    beta: Static ``β`` in ``[0, 1)`` for ``"effective_number"``.

  Returns:
    Shape ``(num_classes,)``, the default floating dtype.

  Raises:
    ValueError: for an unknown ``scheme``, ``beta`` outside ``[0, 1)``,
      ``num_classes < 1`` or (when ``labels`` are concrete) labels out of range.
    TypeError: if ``labels`` is not an integer array.

  Examples:
    >>> import jax.numpy as jnp
    >>> labels = jnp.array([0, 0, 0, 1])
    >>> class_weights(labels, 3)
    Array([0.444..., 1.333..., 0. ], dtype=float32)
    >>> class_weights(labels, 2, scheme="effective_number", beta=0.5)
    Array([0.727..., 1.272...], dtype=float32)

  References:
    King & Zeng, "Logistic Regression in Rare Events Data", 2001 (balanced);
    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
    CVPR 2019.
  """
  check_choice("scheme", scheme, CLASS_WEIGHT_SCHEMES)
  num_classes = check_int("num_classes", num_classes, 1)
  check_in_range("beta", beta, 0.0, 1.0, high_inclusive=False)
  labels = jnp.asarray(labels)
  _check_labels(labels, num_classes)
  dtype = jnp.result_type(float)
  counts = jnp.bincount(labels.ravel(), length=num_classes).astype(dtype)
  present = counts > 0
  safe_counts = jnp.where(present, counts, 1)  # no 1 / 0 for absent classes
  if scheme == "balanced":
    w = labels.size / (num_classes * safe_counts)
  else:
    one_minus_beta = 1.0 - beta
    # log(β) = log1p(-(1 - β)): 1 - β is formed before rounding to float32, and
    # 1 - β^n = -expm1(n log β) keeps its digits when β^n is close to 1.
    # (β = 0 gives log β = -inf and 1 - β^n = 1: equal weights.)
    log_beta = jnp.log1p(jnp.asarray(-one_minus_beta, dtype))
    w = one_minus_beta / -jnp.expm1(safe_counts * log_beta)
  w = jnp.where(present, w, 0).astype(dtype)
  if scheme == "effective_number":
    total = jnp.sum(w)
    # No labels at all: every weight stays 0 instead of 0 / 0.
    w = jnp.where(total > 0, w * (num_classes / jnp.where(total > 0, total, 1)), 0)
  return w
