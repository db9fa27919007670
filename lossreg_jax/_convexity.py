"""The dense-line part of ``check_loss``'s convexity check (``checks.py``).

Random segments alone miss a local concavity: focal loss with gamma = 2 is
concave for logits in about [-6, -2], and 32 random segments never tested a
midpoint there. Along each coordinate axis of a few inputs, a grid of
``LINE_POINTS`` values (residuals or logits within 3 ``scale`` of the centre,
probabilities in [0.01, 0.99]) is compared point by point with the mean of its
neighbours 1, 2, 4, ..., 32 steps away: midpoint convexity on segments from a
tenth of a unit to the whole range.
"""

from __future__ import annotations

import numpy as np

LINE_POINTS = 121
_SPACINGS = (1, 2, 4, 8, 16, 32)


def worst_midpoint(fa, fb, fm, *, atol: float, rtol: float):
  """``(excess, index)`` of the midpoint furthest above its chord, or None if none is finite.

  The excess is ``f(mid) - (f(a) + f(b)) / 2`` less the tolerance
  ``atol + rtol |chord|``: positive means a violation.
  """
  chord = (fa + fb) / 2
  excess = fm - chord - atol - rtol * np.abs(chord)
  finite = np.isfinite(excess)
  if not np.any(finite):
    return None
  excess = np.where(finite, excess, -np.inf)  # non-finite: finite_gradients reports it
  i = int(np.argmax(excess))
  return float(excess[i]), i


def line_points(base, targets, *, kind: str, scale: float) -> np.ndarray:
  """Inputs along each coordinate axis of each ``base`` input.

  Args:
    base: Inputs, shape ``(n, *shape)``; each line keeps all coordinates but one.
    targets: Their targets, shape ``(n, *shape)`` (regression lines are centred
      on them).
    kind: ``"regression"``, ``"logits"`` or ``"probabilities"``.
    scale: Standard deviation of the random inputs; lines span 3 ``scale``.

  Returns:
    Shape ``(n, size, LINE_POINTS, size)``, ``size`` the number of coordinates:
    ``[i, j, k]`` is input ``i`` with coordinate ``j`` at grid point ``k``.
  """
  n, size = len(base), base[0].size
  s = np.linspace(-1.0, 1.0, LINE_POINTS, dtype=np.float32)
  if kind == "probabilities":
    values = np.broadcast_to(0.5 + 0.49 * s, (n, size, LINE_POINTS))
  elif kind == "regression":  # residuals within 3 scale of each target
    values = targets.reshape(n, size, 1) + 3 * scale * s
  else:  # logits within 3 scale of 0
    values = np.broadcast_to(3 * scale * s, (n, size, LINE_POINTS))
  points = np.repeat(base.reshape(n, 1, 1, size), size, 1).repeat(LINE_POINTS, 2)
  for j in range(size):  # line j moves coordinate j only
    points[:, j, :, j] = values[:, j, :]
  return points.astype(base.dtype)


def line_candidates(f, points, targets, *, atol: float, rtol: float):
  """Per spacing, the worst midpoint on the lines: ``[(excess, a, b, targets)]`` or None.

  Args:
    f: Loss per point, shape ``(n, size, LINE_POINTS)``.
    points: ``line_points``'s result.
    targets: Targets of the ``n`` inputs.
    atol: Absolute tolerance.
    rtol: Relative tolerance.
  """
  shape = targets.shape[1:]
  out = []
  for m in _SPACINGS:
    mid = f[..., m:-m]
    worst = worst_midpoint(f[..., :-2 * m].ravel(), f[..., 2 * m:].ravel(), mid.ravel(),
                           atol=atol, rtol=rtol)
    if worst is not None:
      i, j, k = np.unravel_index(worst[1], mid.shape)
      out.append((worst[0], points[i, j, k].reshape(shape),
                  points[i, j, k + 2 * m].reshape(shape), targets[i]))
  return out or None
