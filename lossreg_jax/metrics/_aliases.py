"""scikit-learn's keyword names for every metric, added when ``metrics`` exports it (private).

Our metrics take predictions first (optax's order); scikit-learn takes
``y_true`` first, so ``precision(y_true, y_pred)`` pasted positionally is
silently wrong. Called with scikit-learn's keywords, the call means what it
means in scikit-learn: ``y_true=`` is the true labels / targets, ``y_pred=``,
``y_score=``, ``y_prob=`` / ``y_proba=`` (``probas_pred=``, scikit-learn's
former name) the predictions, scores or probabilities, ``sample_weight=`` the
``weights``, and, together with ``y_true=``, ``labels=`` the list of classes
to score (our ``classes=``). Giving an alias and the argument it stands for
(positionally or by our name) is a ``TypeError`` naming both.

The definitions in the family modules stay as they are; :func:`sklearn_keywords`
wraps them (``functools.wraps`` keeps their name, signature and docstring, to
which it appends the aliases). The wrapper also gives the one-time warning
that float64 data is computed in float32 when x64 is off, as the linear models
do.
"""

from __future__ import annotations

import functools
import inspect
import textwrap

from lossreg_jax._validation import warn_float64_as_float32
from lossreg_jax.metrics._common import check_call

__all__ = ["sklearn_keywords"]

# Set once the float64-in-float32 warning has been shown by a metric (once per process).
_warned_float32 = False


def _warn_float64(name: str, arrays) -> None:
  global _warned_float32
  if not _warned_float32 and warn_float64_as_float32(
      f"lossreg_jax.metrics.{name}", *arrays, stacklevel=3):
    _warned_float32 = True


def sklearn_keywords(fn, aliases: dict[str, str], *, class_subset: str | None = None,
                     class_ids: tuple[str, ...] = ("labels",)):
  """Returns ``fn`` accepting scikit-learn's keywords ``aliases`` (alias -> our name).

  ``sample_weight`` -> ``weights`` is added when ``fn`` has ``weights``. With
  ``class_subset`` (our name for scikit-learn's ``labels=`` class list, e.g.
  ``"classes"``), ``labels=`` means that list whenever ``y_true=`` is given.
  ``class_ids`` name the arguments that hold class ids: float64 there loses
  nothing in float32, so they are left out of the float64 warning.
  """
  params = inspect.signature(fn).parameters
  aliases = {a: n for a, n in aliases.items() if n in params}  # only what fn has
  if "weights" in params:
    aliases["sample_weight"] = "weights"
  if class_subset is not None and class_subset not in params:
    class_subset = None  # the function has no class list (yet): labels= keeps our meaning
  positional = [n for n, p in params.items()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
  # The arrays whose float64 values would be rounded to float32.
  floats = {n for n in aliases.values() if n not in class_ids}
  name = fn.__name__

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    if class_subset is not None and "labels" in kwargs:
      if "y_true" in kwargs:
        if class_subset in kwargs:
          raise TypeError(f"{name} got labels= (scikit-learn's class list, as y_true= is "
                          f"given) and {class_subset}= (the same list); pass one of them.")
        kwargs[class_subset] = kwargs.pop("labels")
      elif len(args) > positional.index("labels"):
        raise TypeError(
            f"{name} got labels= and {len(args)} positional arrays: here the positional "
            f"order is ({', '.join(positional[:2])}) (optax's), so the second one is "
            f"already the labels. For scikit-learn's class list write "
            f"{name}(y_true=..., {_pred_alias(aliases)}=..., labels=[...]) or "
            f"{class_subset}=[...].")
    origin = {}
    for alias, native in aliases.items():
      if alias not in kwargs:
        continue
      value = kwargs.pop(alias)
      if native in positional and len(args) > positional.index(native):
        raise TypeError(
            f"{name} got {native} as positional argument {positional.index(native) + 1} and "
            f"{alias}= (scikit-learn's name for {native}); pass one of them. Positionally "
            f"the order is ({', '.join(positional[:2])}), not scikit-learn's "
            f"(y_true, ...).")
      if native in kwargs:
        raise TypeError(f"{name} got {origin.get(native, native)}= and {alias}=, both "
                        f"meaning {native}; pass one of them.")
      origin[native] = alias
      kwargs[native] = value
    _warn_float64(name, [a for n, a in zip(positional, args) if n in floats]
                  + [kwargs.get(n) for n in floats])
    first = args[0] if args else kwargs.get(positional[0]) if positional else None
    check_call(name, positional[0] if positional else "", first, kwargs.get("weights"))
    return fn(*args, **kwargs)

  table = ", ".join(f"``{a}=`` (``{n}``)" for a, n in aliases.items())
  if class_subset is not None:
    table += f", and with ``y_true=`` ``labels=`` (``{class_subset}``)"
  wrapper.__doc__ = _add_note(fn.__doc__ or "", (
      f"scikit-learn's keywords are accepted with scikit-learn's meaning: {table}; "
      f"an alias together with the argument it stands for is a ``TypeError``. "
      f"Positionally the order stays ours ({', '.join(positional[:2])})."))
  return wrapper


def _pred_alias(aliases) -> str:
  return next((a for a in aliases if a != "y_true" and a != "sample_weight"), "y_pred")


def _add_note(doc: str, note: str) -> str:
  """Inserts ``note`` as a paragraph before the docstring's ``Args:`` section."""
  text = textwrap.fill(note, width=78, initial_indent="  ", subsequent_indent="  ",
                       break_long_words=False, break_on_hyphens=False)
  head, marker, tail = doc.partition("\n  Args:\n")
  if not marker:
    return f"{doc.rstrip()}\n\n{text}\n"
  return f"{head.rstrip()}\n\n{text}\n{marker}{tail}"
