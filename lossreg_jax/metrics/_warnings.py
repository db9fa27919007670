"""The warning a metric gives when its value is undefined on the input it got.

scikit-learn warns with ``UndefinedMetricWarning`` when, e.g., precision has
no predicted positives and the ``zero_division`` value is returned; users
filter it by class. Ours is the same idea: a ``UserWarning`` subclass, given
eagerly (on concrete inputs, once per call); under ``jit`` the values are
tracers, nothing can be inspected and no warning is given (each metric's
docstring says what it returns then).
"""

from __future__ import annotations

import warnings

__all__ = ["UndefinedMetricWarning", "warn_undefined"]


class UndefinedMetricWarning(UserWarning):
  """A metric is undefined on its input and returns its documented fallback value."""


def warn_undefined(message: str, *, stacklevel: int = 3) -> None:
  """Warns with :class:`UndefinedMetricWarning` (``stacklevel`` 3: the metric's caller)."""
  warnings.warn(message, UndefinedMetricWarning, stacklevel=stacklevel)
