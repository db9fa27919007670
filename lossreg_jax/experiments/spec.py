"""The loss / regularizer spec strings of ``compare_losses`` and the CLI.

Grammar (no ``eval``: every value is read with ``float()``)::

  SPEC  := TERM ('+' TERM)*          at most one loss term
  TERM  := NAME [':' ARGS]
  ARGS  := VALUE                     only for l1, l2, dropout and ensemble
         | KEY=VALUE (',' KEY=VALUE)*

e.g. ``bce``, ``bce:positive_weight=3``, ``focal:alpha=0.25,gamma=2``,
``hinge``, ``ce:label_smoothing=0.1``, ``l2:1e-3``, ``elastic:alpha=1e-3,l1_ratio=0.5``,
``bce:positive_weight=3+l2:1e-3``, ``dropout:0.2``, ``bce+l2:1e-3+ensemble:5``
(a bagged ensemble of 5 members, an integer in [2, 64]); for regression ``mse``, ``mae``,
``huber:delta=1``, ``log_cosh``, ``quantile:q=0.9``, ``asymmetric:under=1,over=0.1``.
A spec without a loss term uses ``bce`` for binary, ``ce`` for multiclass labels
and ``mse`` for regression. A ``+`` that belongs to a number (``1e+3``) is not a
separator.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, NamedTuple

__all__ = ["BUILTIN_TERMS", "DATA_SIDE", "LossSpec", "default_specs", "expand_sweeps",
           "parse_spec"]

# name -> (parameters with defaults (None: required), tasks, positional parameter)
_LOSSES = {
    "bce": ({"positive_weight": 1.0, "label_smoothing": 0.0}, ("binary",), None),
    "focal": ({"alpha": None, "gamma": 2.0}, ("binary",), None),
    "hinge": ({}, ("binary",), None),
    "ce": ({"label_smoothing": 0.0}, ("binary", "multiclass"), None),
    # Regression losses act on targets standardized with each fold's training
    # mean and std, so ``delta`` is in units of the target's std.
    "mse": ({}, ("regression",), None),
    "mae": ({}, ("regression",), None),
    "huber": ({"delta": 1.0}, ("regression",), None),
    "log_cosh": ({}, ("regression",), None),
    "quantile": ({"q": 0.5}, ("regression",), None),
    "asymmetric": ({"under": 1.0, "over": 0.1}, ("regression",), None),
}
_DEFAULT_LOSS = {"binary": "bce", "multiclass": "ce", "regression": "mse"}
_DEFAULT_SPECS = {
    "binary": ("bce", "bce:positive_weight=3", "focal:gamma=2"),
    "multiclass": ("ce", "ce:label_smoothing=0.1", "ce+l2:1e-3"),
    "regression": ("mse", "huber:delta=1", "asymmetric:under=1,over=0.1"),
}
_ALPHA_DEFAULT_NONE = {("focal", "alpha")}  # optional parameter whose default is None
_PENALTIES = {
    "l2": ({"strength": None}, "strength"),
    "l1": ({"strength": None}, "strength"),
    "elastic": ({"alpha": None, "l1_ratio": 0.5}, None),
    "dropout": ({"rate": None}, "rate"),
    # Data-side regularizers: applied to each fold's training minibatches only.
    "noise": ({"stddev": None}, "stddev"),
    "mixup": ({"alpha": None}, "alpha"),
    "augment": ({"rotation": 0.0, "shift": 0.0, "zoom": 0.0, "flip": 0.0}, None),
    "early_stopping": ({"patience": None, "validation": 0.2}, "patience"),
}
DATA_SIDE = ("noise", "mixup", "augment", "early_stopping")
# parameter -> (low, high, high inclusive)
_RANGES = {
    "positive_weight": (0.0, math.inf, False), "label_smoothing": (0.0, 1.0, True),
    "alpha": (0.0, math.inf, False), "gamma": (0.0, math.inf, False),
    "strength": (0.0, math.inf, False), "l1_ratio": (0.0, 1.0, True),
    "rate": (0.0, 1.0, False), "delta": (0.0, math.inf, False), "q": (0.0, 1.0, True),
    "under": (0.0, math.inf, False), "over": (0.0, math.inf, False),
    "stddev": (0.0, math.inf, False), "rotation": (0.0, 180.0, True),
    "shift": (0.0, 1.0, False), "zoom": (0.0, 1.0, False), "flip": (0.0, 1.0, True),
    "patience": (1.0, 10_000.0, True), "validation": (0.0, 1.0, False),
}
_INTEGRAL = ("patience", "flip")
MAX_MEMBERS = 64  # ensemble:M takes 2 <= M <= MAX_MEMBERS
_SPLIT = re.compile(r"\+(?=\s*[A-Za-z_])")


class LossSpec(NamedTuple):
  """A parsed spec: one loss (or ``None`` for the task's default) and penalties.

  Attributes:
    text: The spec as written (stripped); used as its label.
    loss: ``"bce"``, ``"focal"``, ``"hinge"``, ``"ce"``, ``"mse"``, ``"mae"``,
      ``"huber"``, ``"log_cosh"``, ``"quantile"``, ``"asymmetric"`` or ``None``.
    loss_params: Keyword arguments of the loss, e.g. ``{"positive_weight": 3.0}``.
    penalties: ``((name, params), ...)`` with names ``"l1"``, ``"l2"``,
      ``"elastic"``, ``"dropout"``.
    members: The ensemble size ``M`` of an ``ensemble:M`` term (a bagged
      ensemble of ``M`` models); 1 without one (a single model).
  """

  text: str
  loss: str | None
  loss_params: dict
  penalties: tuple
  members: int = 1


def _valid_names() -> str:
  return (f"valid losses: {', '.join(_LOSSES)}; valid regularizers: "
          f"{', '.join(_PENALTIES)}, ensemble")


def _members(spec: str, term: str) -> int:
  """The ``M`` of an ``ensemble:M`` (or ``ensemble:members=M``) term."""
  _, _, args = term.partition(":")
  value = args.strip()
  if value.partition("=")[0].strip() == "members" and "=" in value:
    value = value.partition("=")[2].strip()
  try:
    members = int(value)
  except ValueError:
    members = None
  if members is None or not 2 <= members <= MAX_MEMBERS:
    raise ValueError(f"in spec {spec!r}: the term {term.strip()!r} needs an integer number "
                     f"of members M in [2, {MAX_MEMBERS}] (ensemble:M, e.g. 'ensemble:5'), "
                     f"got {args.strip()!r}.")
  return members


def _number(spec: str, name: str, key: str, text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise ValueError(f"in spec {spec!r}: {name} parameter {key!r} must be a number, "
                     f"got {text!r}.") from None
  low, high, high_inclusive = _RANGES[key]
  if key == "alpha" and name == "focal":
    high, high_inclusive = 1.0, True
  if not (low <= value and (value <= high if high_inclusive else value < high)):
    right = "]" if high_inclusive else ")"
    raise ValueError(f"in spec {spec!r}: {name} parameter {key!r} must be in "
                     f"[{low:g}, {high:g}{right}, got {value:g}.")
  if key in _INTEGRAL and value != int(value):
    raise ValueError(f"in spec {spec!r}: {name} parameter {key!r} must be an integer, got "
                     f"{value:g}.")
  return value


def _user_term(spec: str, name: str, args: str) -> tuple[str, dict]:
  """A loss of the user's (``losses=``): any ``KEY=VALUE`` numbers, passed as keywords."""
  params: dict = {}
  for item in filter(None, (a.strip() for a in args.split(","))):
    key, eq, value = (s.strip() for s in item.partition("="))
    if not eq or not key.isidentifier():
      raise ValueError(f"in spec {spec!r}: {name} takes KEY=VALUE keyword arguments, got "
                       f"{item!r}.")
    if key in params:
      raise ValueError(f"in spec {spec!r}: parameter {key!r} of {name} is given twice.")
    try:
      params[key] = float(value)
    except ValueError:
      raise ValueError(f"in spec {spec!r}: {name} parameter {key!r} must be a number, "
                       f"got {value!r}.") from None
  return name, params


def _parse_term(spec: str, term: str, user: frozenset = frozenset()) -> tuple[str, dict]:
  name, _, args = term.partition(":")
  if name.strip() in user:
    return _user_term(spec, name.strip(), args)
  name = name.strip().lower()
  if name in _LOSSES:
    defaults, _, positional = _LOSSES[name]
  elif name in _PENALTIES:
    defaults, positional = _PENALTIES[name]
  else:
    extra = f"; your losses: {', '.join(sorted(user))}" if user else ""
    raise ValueError(f"unknown term {name!r} in spec {spec!r}; {_valid_names()}{extra}.")
  params: dict = {}
  items = [a.strip() for a in args.split(",")] if args.strip() else []
  for item in items:
    if "=" not in item:
      if positional is None or params or len(items) > 1:
        want = (f"a single value ({name}:VALUE) or {positional}=VALUE" if positional
                else f"KEY=VALUE with KEY in: {', '.join(defaults) or '(none)'}")
        raise ValueError(f"in spec {spec!r}: {name} takes {want}; got {item!r}.")
      params[positional] = _number(spec, name, positional, item)
      continue
    key, _, value = (s.strip() for s in item.partition("="))
    if key not in defaults:
      valid = ", ".join(defaults) if defaults else "none"
      raise ValueError(f"unknown parameter {key!r} for {name!r} in spec {spec!r}; valid "
                       f"parameters: {valid}.")
    if key in params:
      raise ValueError(f"in spec {spec!r}: parameter {key!r} of {name} is given twice.")
    params[key] = _number(spec, name, key, value)
  for key, default in defaults.items():
    if key in params:
      continue
    if default is None and (name, key) not in _ALPHA_DEFAULT_NONE:
      raise ValueError(f"in spec {spec!r}: {name} needs {key}=VALUE (e.g. '{name}:"
                       f"{key}=1e-3').")
    if default is not None:
      params[key] = default
  return name, params


def parse_spec(spec: str, *, losses: Iterable[str] = ()) -> LossSpec:
  """Parses a loss / regularizer spec such as ``"bce:positive_weight=3+l2:1e-3"``.

  Terms are joined by ``+``; each is ``NAME`` or ``NAME:ARGS`` with ``ARGS``
  either ``KEY=VALUE`` pairs separated by commas or, for ``l1``, ``l2`` and
  ``dropout``, a single value. Values are read with ``float()`` (never
  evaluated). Losses (at most one per spec): ``bce`` (``positive_weight``,
  ``label_smoothing``), ``focal`` (``alpha``, ``gamma``), ``hinge``, ``ce``
  (``label_smoothing``; softmax over one logit per class); for regression
  ``mse``, ``mae``, ``huber`` (``delta``), ``log_cosh``, ``quantile`` (``q``,
  the pinball loss) and ``asymmetric`` (``under``, ``over``: the weights of
  under- and over-predictions in ``asymmetric_squared_error``). Regularizers:
  ``l2:STRENGTH`` (adds ``strength * l2_penalty``), ``l1:STRENGTH``,
  ``elastic:alpha=A,l1_ratio=R`` (``elastic_net_penalty``), ``dropout:RATE``
  (on the hidden layer). Penalties apply to weight matrices only, not biases.
  ``ensemble:M`` (an integer ``2 <= M <= 64``) trains a bagged ensemble of
  ``M`` such models (each on a bootstrap resample of the training rows) and
  predicts the average of their probabilities (``compare_losses``).
  Data-side regularizers act on each fold's training minibatches only:
  ``noise:STDDEV`` (Gaussian input noise, in units of the standardized
  inputs), ``mixup:ALPHA`` (mixup with ``Beta(ALPHA, ALPHA)``),
  ``augment:rotation=DEG,shift=FRAC,zoom=FRAC,flip=0|1`` (images: Keras
  ImageDataGenerator's random rotation, shifts, zoom and horizontal flip),
  ``early_stopping:patience=P[,validation=F]`` (a share ``F``, default 0.2,
  of each fold's training rows monitors the loss; the fold keeps its best
  epoch's model). A name in ``losses`` (the user's losses) is a loss taking
  any ``KEY=VALUE`` numbers as keyword arguments (``linex:a=0.5``).

  Args:
    spec: The spec string.
    losses: Names of the user's losses allowed as loss terms (case-sensitive).

  Returns:
    A :class:`LossSpec`.

  Raises:
    ValueError: for an empty spec, an unknown name or parameter (the message
      lists the valid ones), a value that is not a number or out of range, a
      missing required value, two losses, a repeated regularizer or
      ensemble term, or an ``ensemble:M`` whose ``M`` is not an integer in
      ``[2, 64]``.

  Examples:
    >>> parse_spec("bce:positive_weight=3+l2:1e-3")
    LossSpec(text='bce:positive_weight=3+l2:1e-3', loss='bce', loss_params={'positive_weight': 3.0, 'label_smoothing': 0.0}, penalties=(('l2', {'strength': 0.001}),), members=1)
    >>> parse_spec("bce+ensemble:5").members
    5
    >>> parse_spec("focal:gama=2")
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter 'gama' for 'focal' in spec 'focal:gama=2'; valid parameters: alpha, gamma.
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(f"spec must be a non-empty string such as 'bce' or 'focal:gamma=2', "
                     f"got {spec!r}; {_valid_names()}.")
  text = spec.strip()
  user = frozenset(losses)
  loss, loss_params, penalties, members = None, {}, [], None
  for term in _SPLIT.split(text):
    if not term.strip():
      raise ValueError(f"empty term in spec {text!r} (a stray '+'?).")
    if term.partition(":")[0].strip().lower() == "ensemble":
      if members is not None:
        raise ValueError(f"spec {text!r} repeats the term 'ensemble'.")
      members = _members(text, term)
      continue
    name, params = _parse_term(text, term, user)
    if name in _LOSSES or name in user:
      if loss is not None:
        raise ValueError(f"spec {text!r} has two losses ({loss!r} and {name!r}); combine "
                         f"one loss with regularizers, e.g. 'bce+l2:1e-3'.")
      loss, loss_params = name, params
    else:
      if any(name == n for n, _ in penalties):
        raise ValueError(f"spec {text!r} repeats the regularizer {name!r}.")
      penalties.append((name, params))
  return LossSpec(text, loss, loss_params, tuple(penalties), members or 1)


def default_specs(task: str) -> tuple[str, ...]:
  """The specs ``compare_losses`` and the CLI use when none are given.

  Args:
    task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

  Returns:
    A tuple of spec strings; the first is the baseline of the paired comparison.

  Raises:
    ValueError: for another task.

  Examples:
    >>> default_specs("regression")
    ('mse', 'huber:delta=1', 'asymmetric:under=1,over=0.1')
  """
  if task not in _DEFAULT_SPECS:
    raise ValueError(f"task must be one of {', '.join(_DEFAULT_SPECS)}, got {task!r}.")
  return _DEFAULT_SPECS[task]


def resolve_loss(spec: LossSpec, task: str, num_classes: int) -> tuple[str, dict]:
  """Returns the loss name and parameters for ``task``, or raises ``ValueError``.

  A user's loss (a name not among the built-in losses) is returned as parsed.
  """
  if spec.loss is not None and spec.loss not in _LOSSES:
    return spec.loss, dict(spec.loss_params)
  if spec.loss is None:
    name = _DEFAULT_LOSS[task]
    return name, dict(_LOSSES[name][0])
  tasks = _LOSSES[spec.loss][1]
  if task not in tasks:
    fits = ", ".join(repr(n) for n, (_, t, _) in _LOSSES.items() if task in t)
    need = {("regression",): "a regression target", ("binary",): "binary labels"}.get(
        tasks, "class labels")
    seen = ("the target is continuous (regression)" if task == "regression"
            else f"the data have {num_classes} classes ({task})")
    raise ValueError(f"loss {spec.loss!r} in spec {spec.text!r} needs {need}; {seen}: use "
                     f"{fits}.")
  return spec.loss, dict(spec.loss_params)


BUILTIN_TERMS = frozenset(_LOSSES) | frozenset(_PENALTIES) | {"ensemble"}
_SWEPT = re.compile(r"(?<=[=:,])\s*([^=:,+|]+(?:\|[^=:,+|]+)+)\s*(?=,|\+|$)")


def expand_sweeps(spec: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
  """Expands one swept value ``a|b|c`` into one spec per value.

  Args:
    spec: A spec string; at most one parameter may be swept, e.g.
      ``"focal:gamma=0|0.5|1|2"`` or ``"bce+l2:1e-4|1e-3|1e-2"``.

  Returns:
    ``(specs, values)``: the expanded spec texts and the swept values as
    written (``(spec,), ()`` without a sweep).

  Raises:
    ValueError: for more than one swept parameter, an empty value, or a
      repeated value.

  Examples:
    >>> expand_sweeps("focal:gamma=0|2")
    (('focal:gamma=0', 'focal:gamma=2'), ('0', '2'))
  """
  if not isinstance(spec, str) or "|" not in spec:
    return (spec,), ()
  found = list(_SWEPT.finditer(spec))
  if len(found) != 1 or spec.count("|") != found[0].group(1).count("|"):
    raise ValueError(f"in spec {spec!r}: sweep exactly one parameter, as VALUE|VALUE|... "
                     f"(e.g. 'focal:gamma=0|1|2'), with no empty value.")
  values = tuple(v.strip() for v in found[0].group(1).split("|"))
  if any(not v for v in values) or len(set(values)) != len(values):
    raise ValueError(f"in spec {spec!r}: the swept values must be distinct and non-empty, "
                     f"got {list(values)}.")
  start, end = found[0].span(1)
  return tuple(spec[:start] + v + spec[end:] for v in values), values
