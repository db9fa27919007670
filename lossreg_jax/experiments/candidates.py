"""What ``compare_losses`` compares: spec strings, loss callables, ``Candidate`` objects.

A candidate is a loss (any callable ``loss(predictions, targets, *, weights=None,
where=None) -> scalar`` that follows the loss contract), optionally a penalty on
the parameters, an optax transformation chained after the optimizer (e.g. a
proximal step), dropout for the built-in models and a bagged-ensemble size.
Spec strings (``"bce:positive_weight=3+l2:1e-3"``, :func:`parse_spec`) become
candidates whose loss is one of the library's losses and whose numbers are
traced values, so specs that differ only in numbers share one compiled program.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np
import optax

from lossreg_jax import losses
from lossreg_jax.experiments.spec import (BUILTIN_TERMS, DATA_SIDE, LossSpec, default_specs,
                                          expand_sweeps, parse_spec, resolve_loss)

__all__ = ["Candidate", "resolve_candidates"]


class Candidate(NamedTuple):
  """One entry of a comparison.

  Attributes:
    loss: ``loss(predictions, targets, *, weights=None, where=None, **loss_params)
      -> scalar``. ``predictions``: the model's outputs, ``(n,)`` for one output
      per row, else ``(n, C)``; ``targets``: int32 class labels, or regression
      targets standardized with the fold's training rows.
    penalty: Optional ``penalty(params) -> scalar`` on
      ``nnx.state(model, nnx.Param)``, added to the loss.
    transform: Optional ``optax.GradientTransformation`` chained after the
      optimizer (``optax.chain(optimizer, transform)``), e.g.
      ``regularizers.proximal_l1(learning_rate, 1e-3)``.
    dropout: Dropout rate after the hidden layers of a built-in model.
    members: Bagged-ensemble size (1: a single model).
    loss_params: Numeric keyword arguments of ``loss``, traced (not compiled in).
    penalties: Spec penalty terms ``((name, params), ...)`` (``l1``, ``l2``,
      ``elastic``) with traced parameters.
    outputs: Outputs per row the built-in model needs: ``"classes"`` (one logit
      per class) or ``"one"``; None: the task's default (binary and
      regression one, multiclass one per class).
    data: Data-side regularizers ``((name, params), ...)``, applied to the
      training minibatches only: ``("noise", {"stddev": s})``, ``("mixup",
      {"alpha": a})``, ``("augment", {"rotation": deg, "shift": f, "zoom": f,
      "flip": 0 or 1})``, ``("early_stopping", {"patience": p, "validation": f})``.
  """

  loss: Callable
  penalty: Callable | None = None
  transform: optax.GradientTransformation | None = None
  dropout: float | None = None
  members: int = 1
  loss_params: Mapping[str, float] = {}
  penalties: tuple = ()
  outputs: str | None = None
  data: tuple = ()


def _labels(y, z):
  return y.astype(z.dtype)


# Spec loss names -> the library's losses, as (predictions, targets, *, where,
# weights, **hyper); hyper are the spec's (traced) numbers.
def _bce(z, y, *, where=None, weights=None, **hyper):
  return losses.sigmoid_binary_cross_entropy(z, _labels(y, z), where=where, weights=weights,
                                             **hyper)


def _focal(z, y, *, where=None, weights=None, **hyper):
  return losses.sigmoid_focal_loss(z, _labels(y, z), where=where, weights=weights, **hyper)


def _hinge(z, y, *, where=None, weights=None):  # labels {0, 1} -> targets {-1, 1}
  return losses.hinge_loss(z, 2 * _labels(y, z) - 1, where=where, weights=weights)


def _ce(z, y, *, where=None, weights=None, **hyper):
  if jnp.issubdtype(y.dtype, jnp.floating):  # soft (mixup) targets, one row per example
    return losses.softmax_cross_entropy(z, y, where=where, weights=weights, **hyper)
  return losses.softmax_cross_entropy_with_integer_labels(z, y, where=where, weights=weights,
                                                          **hyper)


def _huber(z, y, *, delta, where=None, weights=None):
  return losses.huber_loss(z, y, delta=delta, where=where, weights=weights)


def _quantile(z, y, *, q, where=None, weights=None):
  return losses.quantile_loss(z, y, quantile=q, where=where, weights=weights)


def _asymmetric(z, y, *, under, over, where=None, weights=None):
  return losses.asymmetric_squared_error(z, y, under_weight=under, over_weight=over,
                                         where=where, weights=weights)


SPEC_LOSSES = {"bce": _bce, "focal": _focal, "hinge": _hinge, "ce": _ce,
               "mse": losses.squared_error, "mae": losses.absolute_error, "huber": _huber,
               "log_cosh": losses.log_cosh, "quantile": _quantile, "asymmetric": _asymmetric}


def from_spec(spec: LossSpec, task: str, num_classes: int,
              losses: Mapping[str, Callable] | None = None) -> Candidate:
  """The candidate of a parsed spec (raises ``ValueError`` if its loss misfits the task).

  ``losses`` are the user's losses by name (``compare_losses(losses=...)``).
  """
  name, params = resolve_loss(spec, task, num_classes)
  user = name in (losses or {})
  f32 = lambda d: {k: jnp.float32(v) for k, v in d.items() if v is not None}
  penalties = dict(spec.penalties)
  dropout = penalties.pop("dropout", {}).get("rate")
  data = {k: penalties.pop(k) for k in DATA_SIDE if k in penalties}
  return Candidate(losses[name] if user else SPEC_LOSSES[name], dropout=dropout,
                   members=spec.members, loss_params=f32(params),
                   penalties=tuple((k, f32(v)) for k, v in penalties.items()),
                   outputs=None if user else ("classes" if name == "ce" else "one"),
                   data=tuple((k, f32(v)) for k, v in data.items()))


def _check_loss_callable(name: str, loss: Any) -> None:
  if not callable(loss):
    raise TypeError(f"candidates[{name!r}].loss must be callable (predictions, targets, *, "
                    f"weights, where) -> scalar, got {type(loss).__name__}.")
  try:
    params = inspect.signature(loss).parameters
  except (TypeError, ValueError):  # builtins without a signature: tried at trace time
    return
  takes = lambda k: k in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
  positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY,
                                                         p.POSITIONAL_OR_KEYWORD)]
  if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params.values()):
    raise TypeError(f"candidates[{name!r}]: the loss must take (predictions, targets, *, "
                    f"weights, where), got the signature {inspect.signature(loss)}.")
  if not (takes("where") and takes("weights")):
    raise TypeError(f"candidates[{name!r}]: the loss must accept the keywords where= and "
                    f"weights= (the loss contract), got the signature "
                    f"{inspect.signature(loss)}.")


def _as_candidate(name: str, value: Any, task: str, num_classes: int,
                  losses: Mapping[str, Callable]) -> Candidate:
  if isinstance(value, (str, LossSpec)):
    spec = value if isinstance(value, LossSpec) else parse_spec(value, losses=losses)
    return from_spec(spec, task, num_classes, losses)
  if isinstance(value, Candidate):
    _check_loss_callable(name, value.loss)
    return value
  if callable(value):
    _check_loss_callable(name, value)
    return Candidate(value)
  raise TypeError(f"candidates[{name!r}] must be a spec string, a loss callable or an "
                  f"experiments.Candidate, got {type(value).__name__}.")


def check_losses(losses: Any) -> dict[str, Callable]:
  """The user's named losses, checked: identifiers, no built-in name, callables."""
  if losses is None:
    return {}
  if not isinstance(losses, Mapping):
    raise TypeError(f"losses must be a mapping name -> loss callable, got "
                    f"{type(losses).__name__}.")
  for name, fn in losses.items():
    if not isinstance(name, str) or not name.isidentifier():
      raise ValueError(f"losses: names must be identifiers, got {name!r}.")
    if name.lower() in BUILTIN_TERMS:
      raise ValueError(f"losses: {name!r} is a built-in spec term; rename your loss.")
    _check_loss_callable(name, fn)
  return dict(losses)


def resolve_candidates(candidates: Sequence[str | LossSpec] | Mapping[str, Any] | None,
                       task: str, num_classes: int, losses: Mapping[str, Callable] | None = None
                       ) -> tuple[list[str], list[Candidate], list[list[int]], list[dict]]:
  """Names, candidates (in order; the first is the baseline), groups and sweeps.

  Each group lists the indices of one sweep's candidates (``focal:gamma=0|1``),
  or of one other candidate alone; the training runs a sweep's candidates as
  one vmapped program when they differ only in numbers. Each sweep is
  ``{"spec": as written, "values": the values, "specs": the expanded specs}``.

  ``candidates`` is a sequence of spec strings / :class:`LossSpec` (named by
  their text), a mapping ``name -> spec string | loss callable | Candidate``,
  or None for :func:`default_specs` of the task. A spec string with a swept
  value (``focal:gamma=0|1|2``) expands into one candidate per value.

  Raises:
    ValueError: for no candidate, repeated names, a bad spec or a spec loss
      that does not fit the task.
    TypeError: for an entry that is neither a spec, a callable nor a
      ``Candidate``, or a loss whose signature cannot take ``(predictions,
      targets, *, weights, where)``.
  """
  losses = check_losses(losses)
  if candidates is None:
    candidates = default_specs(task)
  sweeps, swept = [], []
  if isinstance(candidates, Mapping):
    items = list(candidates.items())
    for name, _ in items:
      if not isinstance(name, str) or not name.strip():
        raise TypeError(f"candidates' names must be non-empty strings, got {name!r}.")
  elif isinstance(candidates, (str, LossSpec)) or not isinstance(candidates, Sequence):
    raise TypeError(f"candidates must be a list of spec strings or a mapping name -> "
                    f"candidate, got {type(candidates).__name__}; e.g. ['bce', "
                    f"'focal:gamma=2'].")
  else:
    expanded = [((s,), ()) if isinstance(s, LossSpec) else expand_sweeps(s) for s in candidates]
    sweeps = [texts for texts, _ in expanded]
    swept = [{"spec": s, "values": list(values), "specs": list(texts)}
             for s, (texts, values) in zip(candidates, expanded) if values]
    texts = [t for sweep in sweeps for t in sweep]
    parsed = [s if isinstance(s, LossSpec) else parse_spec(s, losses=losses) for s in texts]
    items = [(s.text, s) for s in parsed]
  if not items:
    raise ValueError("specs must name at least one spec, e.g. ['bce'].")
  names = [name for name, _ in items]
  if len(set(names)) != len(names):
    raise ValueError(f"specs must be distinct, got {names}.")
  sizes = [len(sweep) for sweep in sweeps] or [1] * len(items)
  bounds = np.cumsum([0] + sizes)
  groups = [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
  return names, [_as_candidate(name, value, task, num_classes, losses)
                 for name, value in items], groups, swept
