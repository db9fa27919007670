"""Classification losses: binary and categorical cross-entropy, focal and hinge.

Every loss computes an elementwise (or per-example, for softmax losses) loss and
hands it to :func:`lossreg_jax.losses._reduce.reduce_loss`. Half-precision
inputs are computed in float32 and the loss is cast back to the input dtype.

Class weights multiply into the per-sample weight: ``class_weights[label]`` for
integer labels and ``Σ_c class_weights_c · labels_c`` for probability labels, so
``reduction="weighted_mean"`` divides by the total class weight as PyTorch does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import (
    as_float_array,
    check_in_range,
    check_int,
    concrete_values,
    is_static_number,
)
from lossreg_jax.losses._binary import clipped_bce, sigmoid_bce
from lossreg_jax.losses._focal import focal_core, static_integer_power
from lossreg_jax.losses._reduce import (
    Reduction,
    _broadcast_arg,
    align_leading,
    broadcast_where,
    check_pair,
    check_unit_interval,
    reduce_loss,
    sanitize,
)
from lossreg_jax.losses.regression import _upcast

__all__ = [
    "binary_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "categorical_cross_entropy",
    "hinge_loss",
]


def _is(value, constant: float) -> bool:
  """True if ``value`` is statically known to equal ``constant``."""
  return is_static_number(value) and float(value) == constant


def _smooth_binary(labels: jax.Array, label_smoothing) -> jax.Array:
  check_in_range("label_smoothing", label_smoothing, 0, 1)
  if _is(label_smoothing, 0.0):
    return labels
  ls = jnp.asarray(label_smoothing, labels.dtype)
  return labels * (1 - ls) + 0.5 * ls  # Keras / optax binary smoothing


def _smooth_binary_pair(labels: jax.Array, label_smoothing) -> tuple[jax.Array, jax.Array]:
  """``(y, 1 − y)`` of the smoothed labels, each formed without cancellation."""
  check_in_range("label_smoothing", label_smoothing, 0, 1)
  if _is(label_smoothing, 0.0):
    return labels, 1 - labels
  ls = jnp.asarray(label_smoothing, labels.dtype)
  # 1 − (y·(1 − ls) + ls/2) rounds to a few ulps of itself only when formed as
  # (1 − y)·(1 − ls) + ls/2: for y = 1, ls = 0.1, 1 − 0.95 keeps 0.95's rounding.
  return labels * (1 - ls) + 0.5 * ls, (1 - labels) * (1 - ls) + 0.5 * ls


def _positive_weight(positive_weight, like: jax.Array) -> jax.Array | None:
  """``positive_weight`` broadcast to ``like``; None when it is statically 1."""
  check_in_range("positive_weight", positive_weight, 0, None)
  if _is(positive_weight, 1.0):
    return None
  pw = jnp.asarray(positive_weight).astype(like.dtype)
  return _broadcast_arg("positive_weight", pw, like.shape)


def _check_axis(axis, ndim: int) -> int:
  axis = check_int("axis", axis)
  if not -ndim <= axis < ndim:
    raise ValueError(f"axis must be in [{-ndim}, {ndim}) for logits of rank {ndim}, got {axis}.")
  return axis % ndim


def _class_axis_mask(where, logits: jax.Array, axis: int):
  """(per-example loss shape, ``where`` broadcast to it and expanded along axis)."""
  loss_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
  mask = broadcast_where(where, loss_shape)
  return loss_shape, (None if mask is None else jnp.expand_dims(mask, axis))


def _check_class_weights(class_weights, num_classes: int, dtype) -> jax.Array:
  check_in_range("class_weights", class_weights, 0, None)  # numbers, none negative or NaN
  cw = jnp.asarray(class_weights)
  if cw.shape != (num_classes,):
    raise ValueError(
        f"class_weights must have shape ({num_classes},), one weight per class "
        f"(logits have {num_classes} classes along axis), got shape {cw.shape}."
    )
  return cw.astype(dtype)


def _check_label_range(labels, where, ignore_index, num_classes: int, loss_shape) -> None:
  """Raises for a concrete included label outside ``[0, num_classes)``.

  Only labels (and ``where``) known now can be checked; traced ones (under
  ``jit``) are not, and an out-of-range label then gives a NaN loss.
  """
  values = concrete_values(labels)
  if values is None:
    return
  include = np.ones(values.shape, bool)
  if where is not None:
    mask = concrete_values(where)
    if mask is None:
      return
    include = np.broadcast_to(np.asarray(align_leading("where", mask, loss_shape)), values.shape)
  if ignore_index is not None:
    include = include & (values != ignore_index)
  bad = include & ((values < 0) | (values >= num_classes))
  if np.any(bad):
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    ignore = "" if ignore_index is None else f" or ignore_index={ignore_index}"
    raise ValueError(
        f"labels must be class indices in [0, {num_classes}){ignore} (logits have "
        f"{num_classes} classes), got labels{list(index)}={values[bad].flat[0]} "
        f"({int(bad.sum())} out of range)."
    )


def _with_sample_weights(weights, sample_w, loss_shape):
  if sample_w is None:
    return weights
  if weights is None:
    return sample_w
  return align_leading("weights", weights, loss_shape).astype(sample_w.dtype) * sample_w


def binary_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    positive_weight: float | ArrayLike = 1.0,
    epsilon: float = 1e-7,
    label_smoothing: float = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Binary cross-entropy on probabilities, with a false-negative weight.

  ``−(positive_weight·y·log p + (1 − y)·log(1 − p))`` with ``p`` clipped to
  ``[epsilon, 1 − epsilon]`` as Keras does, so probabilities of exactly 0 and 1
  give a finite value and gradient (zero gradient outside the clip range). The
  clip is done in float32 for half-precision inputs, where ``1 − 1e-7`` would
  round to 1. Prefer :func:`sigmoid_binary_cross_entropy` on logits.

  Args:
    probs: Probabilities in ``[0, 1]`` (checked when concrete), shape ``[...]``.
    labels: Targets in ``[0, 1]``, same shape (checked when concrete).
    positive_weight: Non-negative weight of the positive term (missed positives
      cost more); the seed's ``tf.where(y_true == 1, w * bce, bce)``.
    epsilon: Clip margin in ``(0, 0.5)``.
    label_smoothing: In ``[0, 1]``; labels become ``y·(1 − ls) + ls/2`` (Keras).
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``probs`` is not floating or a hyperparameter is not a number.
    ValueError: for a shape mismatch, a hyperparameter out of range, or a
      concrete included probability or label outside ``[0, 1]`` (or NaN).

  Examples:
    >>> binary_cross_entropy(jnp.array([0.9, 0.2]), jnp.array([1.0, 0.0]))
    Array(0.1642..., dtype=float32)

  References:
    ``tf.keras.losses.binary_crossentropy``.
  """
  check_in_range("epsilon", epsilon, 0, 0.5, low_inclusive=False, high_inclusive=False)
  probs, labels = check_pair("probs", probs, "labels", labels)
  check_unit_interval("probs", probs, where)
  check_unit_interval("labels", labels, where)
  dtype = probs.dtype
  probs, labels = _upcast(sanitize(probs, where, 0.5), sanitize(labels, where, 0))
  labels = _smooth_binary(labels, label_smoothing)
  pw = _positive_weight(positive_weight, probs)
  pw = jnp.ones((), probs.dtype) if pw is None else pw
  loss = clipped_bce(probs, labels, pw, jnp.asarray(epsilon, probs.dtype))
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    positive_weight: float | ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Binary cross-entropy on logits, with a false-negative weight.

  Computed as ``(pw·y + ȳ)·l + (ȳ·x if x ≥ 0 else −pw·y·x)`` with ``ȳ = 1 − y``
  and ``l = log1p(exp(−|x|))``: one exp and one log1p per element, a sum of
  non-negative terms, so value and gradient are within a few float32 ulps of
  the exact ones for every logit (no cancellation where logit and label
  disagree in sign) and finite for any finite logit. An infinite logit gives 0
  (gradient 0) with the matching hard label and +inf otherwise, never NaN
  (value, ``jax.grad`` and ``jax.jvp`` alike). With label smoothing
  ``ȳ`` is formed as ``(1 − y)·(1 − ls) + ls/2``, not ``1 − y_smoothed``. The
  gradient ``r·(ȳ − pw·y·e)`` (``x ≥ 0``) or ``r·(ȳ·e − pw·y)`` (``x < 0``),
  ``e = exp(−|x|)``, ``r = 1/(1 + e)``, is a custom JVP built on a twin of that
  exp, so on a GPU the value and gradient of the mean are one kernel and one
  pass over memory. With
  ``reduction="none"`` it equals ``optax.losses.sigmoid_binary_cross_entropy``;
  the mean equals
  ``torch.nn.functional.binary_cross_entropy_with_logits(pos_weight=pw)``.

  Args:
    logits: Unnormalized log-odds, shape ``[...]``.
    labels: Targets in ``[0, 1]``, same shape (checked when concrete).
    positive_weight: Non-negative weight of the positive term, as
      ``torch.nn.BCEWithLogitsLoss(pos_weight=...)``.
    label_smoothing: In ``[0, 1]``; labels become ``y·(1 − ls) + ls/2``.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``logits`` is not floating or a hyperparameter is not a number.
    ValueError: for a shape mismatch, a hyperparameter out of range, or a
      concrete included label outside ``[0, 1]`` (or NaN).

  Examples:
    >>> sigmoid_binary_cross_entropy(jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]))
    Array(0.2201..., dtype=float32)
  """
  logits, labels = check_pair("logits", logits, "labels", labels)
  check_unit_interval("labels", labels, where)
  dtype = logits.dtype
  x, y = _upcast(sanitize(logits, where, 0), sanitize(labels, where, 0))
  y, ybar = _smooth_binary_pair(y, label_smoothing)
  pw = _positive_weight(positive_weight, y)
  unit = pw is None and _is(label_smoothing, 0.0)  # then pw·y + (1 − y) is 1
  pw = jnp.ones((), x.dtype) if pw is None else pw
  loss = sigmoid_bce(x, y, ybar, pw, unit)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float | ArrayLike = 2.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Focal loss: sigmoid cross-entropy scaled by ``(1 − p_t)^gamma``.

  ``p_t = p·y + (1 − p)·(1 − y)``; ``alpha`` (if given) scales positives by
  ``alpha`` and negatives by ``1 − alpha``. ``1 − p_t`` is formed from
  ``exp(−|x|)`` without cancellation, so logits of any magnitude give finite
  values and gradients; an infinite logit gives 0 (gradient 0) with the
  matching hard label and +inf (gradient ±α_t) otherwise. A whole-number ``gamma`` (a Python or concrete scalar,
  e.g. the default 2.0) is applied by multiplications rather than
  ``exp(γ·log(·))``, and the derivative (w.r.t. logits, labels and a traced
  ``gamma``) is a custom JVP that shares the value's exp, reciprocal and log1p,
  so on a GPU the value and gradient of the mean are one kernel and one pass
  over memory. Elementwise it equals ``optax.losses.sigmoid_focal_loss``; with
  ``alpha=0.25`` it equals ``torchvision.ops.sigmoid_focal_loss``.

  Args:
    logits: Unnormalized log-odds, shape ``[...]``.
    labels: Targets in ``[0, 1]``, same shape (checked when concrete).
    alpha: ``None`` (no class balancing) or a weight in ``[0, 1]``.
    gamma: Non-negative focusing exponent; 0 gives cross-entropy.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``logits`` is not floating or a hyperparameter is not a number.
    ValueError: for a shape mismatch, ``gamma < 0``, ``alpha`` outside [0, 1] or
      a concrete included label outside ``[0, 1]`` (or NaN).

  Examples:
    >>> sigmoid_focal_loss(jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]))
    Array(0.0122..., dtype=float32)

  References:
    Lin et al., "Focal Loss for Dense Object Detection", 2017.
  """
  check_in_range("gamma", gamma, 0, None)
  if alpha is not None:
    check_in_range("alpha", alpha, 0, 1)
  logits, labels = check_pair("logits", logits, "labels", labels)
  check_unit_interval("labels", labels, where)
  dtype = logits.dtype
  x, y = _upcast(sanitize(logits, where, 0), sanitize(labels, where, 0))
  a = None if alpha is None else jnp.asarray(alpha, x.dtype)
  loss = focal_core(x, y, jnp.asarray(gamma, x.dtype), a, static_integer_power(gamma))
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Softmax cross-entropy ``−Σ_c y_c·log_softmax(x)_c`` with probability labels.

  With ``reduction="none"`` it equals ``optax.losses.softmax_cross_entropy``; the
  mean equals ``torch.nn.functional.cross_entropy(logits, probs,
  label_smoothing=ls)``. ``class_weights`` multiplies the per-example weight by
  ``Σ_c class_weights_c·labels_c`` (of the unsmoothed labels). Unlike PyTorch,
  which weights each smoothed class term by its own class weight when both are
  given, the smoothing here is not class-weighted.

  Args:
    logits: Unnormalized log-probabilities, shape ``[..., C, ...]``.
    labels: Probability vectors along ``axis``, same shape as ``logits``.
    class_weights: Optional per-class weights, shape ``(C,)``.
    label_smoothing: In ``[0, 1]``; labels become ``y·(1 − ls) + ls/C``.
    axis: The class axis (a Python int).
    weights: Optional weights broadcastable to the per-example shape (``logits``
      without ``axis``).
    where: Optional boolean mask broadcastable to the per-example shape.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    ``logits.shape`` without ``axis`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``logits`` is not floating or ``axis`` is not an int.
    ValueError: for a shape mismatch, a bad ``axis``, ``class_weights`` of the
      wrong length or ``label_smoothing`` outside ``[0, 1]``.

  Examples:
    >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> softmax_cross_entropy(logits, labels, reduction="none")
    Array([0.2761..., 2.9518...], dtype=float32)
  """
  check_in_range("label_smoothing", label_smoothing, 0, 1)
  logits, labels = check_pair("logits", logits, "labels", labels)
  axis = _check_axis(axis, logits.ndim)
  dtype = logits.dtype
  loss_shape, mask = _class_axis_mask(where, logits, axis)
  x, y = _upcast(sanitize(logits, mask, 0), sanitize(labels, mask, 0))
  num_classes = x.shape[axis]
  sample_w = None
  if class_weights is not None:
    cw = _check_class_weights(class_weights, num_classes, y.dtype)
    cw = cw.reshape([num_classes if i == axis else 1 for i in range(y.ndim)])
    sample_w = jnp.sum(cw * y, axis=axis)
  if not _is(label_smoothing, 0.0):
    ls = jnp.asarray(label_smoothing, y.dtype)
    y = y * (1 - ls) + ls / num_classes
  loss = -jnp.sum(y * jax.nn.log_softmax(x, axis=axis), axis=axis)
  weights = _with_sample_weights(weights, sample_w, loss_shape)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Softmax cross-entropy ``logsumexp(x) − x_label`` with integer labels.

  With ``reduction="none"`` it equals
  ``optax.losses.softmax_cross_entropy_with_integer_labels``. ``class_weights``
  multiplies the per-example weight by ``class_weights[label]``, so
  ``reduction="weighted_mean"`` equals ``torch.nn.CrossEntropyLoss(weight=w)``
  (sum / Σ w[label]). Entries whose label is ``ignore_index`` are excluded (as
  ``where=False``), so ``ignore_index=-100`` reproduces PyTorch's default.
  Label smoothing mixes in ``ls·mean_c(logsumexp(x) − x_c)`` as PyTorch, but
  unlike PyTorch it is not class-weighted when ``class_weights`` is also given.
  Included labels outside ``[0, C)`` raise a ``ValueError`` when the labels
  (and ``where``) are concrete; traced labels (under ``jit``) cannot be
  checked, and such a label's loss is then NaN, so that it is not silent.

  Args:
    logits: Unnormalized log-probabilities, shape ``[..., C, ...]``.
    labels: Integer class indices, shape ``logits.shape`` without ``axis``.
    class_weights: Optional per-class weights, shape ``(C,)``.
    label_smoothing: In ``[0, 1]``.
    ignore_index: Optional label value (a Python int) to exclude.
    axis: The class axis (a Python int).
    weights: Optional weights: a prefix of ``labels.shape`` aligns with the
      leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``labels.shape``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    ``labels.shape`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``logits`` is not floating or ``labels`` not integer.
    ValueError: for a shape mismatch, a bad ``axis``, ``class_weights`` of the
      wrong length, ``label_smoothing`` outside ``[0, 1]`` or a concrete
      included label outside ``[0, C)``.

  Examples:
    >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    >>> softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1]),
    ...                                           reduction="none")
    Array([0.2761..., 2.9518...], dtype=float32)
    >>> softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, -100]),
    ...                                           ignore_index=-100)
    Array(0.2761..., dtype=float32)
  """
  check_in_range("label_smoothing", label_smoothing, 0, 1)
  ignore_index = check_int("ignore_index", ignore_index, optional=True)
  logits = as_float_array("logits", logits)
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(
        f"labels must have an integer dtype (class indices), got {labels.dtype}; "
        "use softmax_cross_entropy for probability labels."
    )
  axis = _check_axis(axis, logits.ndim)
  dtype = logits.dtype
  num_classes = logits.shape[axis]
  loss_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
  if labels.shape != loss_shape:
    raise ValueError(
        f"labels must have the shape of logits without axis {axis}, {loss_shape}, "
        f"got labels.shape={labels.shape} and logits.shape={logits.shape}."
    )
  _check_label_range(labels, where, ignore_index, num_classes, loss_shape)
  mask = broadcast_where(where, loss_shape)
  if ignore_index is not None:
    keep = labels != ignore_index
    mask = keep if mask is None else mask & keep
  if mask is not None:  # excluded labels (e.g. -100) become a class safe to gather
    labels = jnp.where(mask, labels, 0)
  expanded = None if mask is None else jnp.expand_dims(mask, axis)
  (x,) = _upcast(sanitize(logits, expanded, 0))
  lse = jax.nn.logsumexp(x, axis=axis)
  label_logit = jnp.take_along_axis(x, jnp.expand_dims(labels, axis), axis).squeeze(axis)
  if _is(label_smoothing, 0.0):
    loss = lse - label_logit
  else:
    ls = jnp.asarray(label_smoothing, x.dtype)
    loss = lse - (1 - ls) * label_logit - ls * jnp.mean(x, axis=axis)
  valid = (labels >= 0) & (labels < num_classes)
  loss = jnp.where(valid, loss, jnp.nan)  # out-of-range labels are loud
  sample_w = None
  if class_weights is not None:
    cw = _check_class_weights(class_weights, num_classes, x.dtype)
    sample_w = cw[jnp.clip(labels, 0, num_classes - 1)]
  weights = _with_sample_weights(weights, sample_w, loss_shape)
  return reduce_loss(loss, weights=weights, where=mask, reduction=reduction, dtype=dtype)


def categorical_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 1e-7,
    label_smoothing: float = 0.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Categorical cross-entropy on probabilities, as Keras' ``categorical_crossentropy``.

  ``probs`` is renormalized to sum to 1 along ``axis``, clipped to
  ``[epsilon, 1 − epsilon]`` (so probabilities of exactly 0 and 1 give finite
  values and gradients) and ``−Σ_c y_c·log p_c`` is returned. A row of zeros,
  which Keras turns into NaN (0/0), is left at zero and clipped: its loss is
  ``−log(epsilon)·Σ_c y_c``, finite, and its gradient is finite too. Prefer
  :func:`softmax_cross_entropy` on logits.

  Args:
    probs: Non-negative scores along ``axis`` (normally probabilities), shape
      ``[..., C, ...]``.
    labels: Probability vectors, same shape.
    epsilon: Clip margin in ``(0, 0.5)``.
    label_smoothing: In ``[0, 1]``; labels become ``y·(1 − ls) + ls/C``, as
      Keras' ``categorical_crossentropy(label_smoothing=ls)`` and
      :func:`softmax_cross_entropy`.
    axis: The class axis (a Python int).
    weights: Optional weights: a prefix of the per-example shape aligns with
      its leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to the per-example shape.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    ``probs.shape`` without ``axis`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``probs`` is not floating.
    ValueError: for a shape mismatch, a bad ``axis``, ``epsilon`` or
      ``label_smoothing``.

  Examples:
    >>> categorical_cross_entropy(jnp.array([[0.9, 0.1], [0.5, 0.5]]),
    ...                           jnp.array([[1.0, 0.0], [0.0, 1.0]]))
    Array(0.3992..., dtype=float32)

  References:
    ``tf.keras.losses.categorical_crossentropy``.
  """
  check_in_range("epsilon", epsilon, 0, 0.5, low_inclusive=False, high_inclusive=False)
  check_in_range("label_smoothing", label_smoothing, 0, 1)
  probs, labels = check_pair("probs", probs, "labels", labels)
  axis = _check_axis(axis, probs.ndim)
  dtype = probs.dtype
  _, mask = _class_axis_mask(where, probs, axis)
  p, y = _upcast(sanitize(probs, mask, 1), sanitize(labels, mask, 0))
  if not _is(label_smoothing, 0.0):
    ls = jnp.asarray(label_smoothing, y.dtype)
    y = y * (1 - ls) + ls / y.shape[axis]
  # A row summing to 0 would be 0/0: divide it by 1 instead (a double where, so
  # that the unused quotient's gradient is finite too); the clip does the rest.
  total = jnp.sum(p, axis=axis, keepdims=True)
  p = p / jnp.where(total > 0, total, 1)
  eps = jnp.asarray(epsilon, p.dtype)
  loss = -jnp.sum(y * jnp.log(jnp.clip(p, eps, 1 - eps)), axis=axis)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)


def hinge_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
  """Hinge loss ``max(0, 1 − targets·predictions)`` for targets in {−1, 1}.

  With ``reduction="none"`` it equals ``optax.losses.hinge_loss``; at the kink
  (``targets·predictions == 1``) the gradient is 0 where optax's is halved.

  Args:
    predictions: Real-valued scores, shape ``[...]``.
    targets: Targets in ``{−1, 1}``, same shape.
    weights: Optional per-sample or per-element weights: a prefix of ``[...]``
      (e.g. ``(N,)``) aligns with the leading axes, other shapes broadcast.
    where: Optional boolean mask broadcastable to ``[...]``.
    reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

  Returns:
    Shape ``[...]`` with ``reduction="none"``, else a scalar.

  Raises:
    TypeError: if ``predictions`` is not floating.
    ValueError: if the shapes differ.

  Examples:
    >>> hinge_loss(jnp.array([0.5, -2.0]), jnp.array([1.0, -1.0]))
    Array(0.25, dtype=float32)
  """
  predictions, targets = check_pair("predictions", predictions, "targets", targets)
  dtype = predictions.dtype
  p, t = _upcast(sanitize(predictions, where, 0), sanitize(targets, where, 0))
  margin = p * t
  # A select rather than max(0, ·): same values, and at the kink (margin == 1)
  # the gradient is 0 (optax's max splits it in halves).
  loss = jnp.where(margin < 1, 1 - margin, 0)
  return reduce_loss(loss, weights=weights, where=where, reduction=reduction, dtype=dtype)
