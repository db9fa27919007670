"""What mistakes cost: ``DecisionCost`` and the held-out cost of three decisions.

A :class:`DecisionCost` prices errors: a classification cost matrix
``C[true, predicted]`` (binary ``fn=5,fp=1`` is ``[[0, 1], [5, 0]]``) or, for
regression, a price per unit (``linear``) or per squared unit (``squared``) of
under- and over-prediction. ``compare_losses(..., cost=...)`` scores every
fold's held-out rows at three decisions (issue 15):

- ``cost_default``: the model's own decision: P(y=1) > 0.5 / argmax / the
  prediction itself;
- ``cost_derived``: the decision the costs imply for a calibrated model:
  binary P(y=1) >= (C01 - C00) / ((C01 - C00) + (C10 - C11)) (Elkan 2001);
  multiclass the Bayes decision ``argmin_j Σ_i p_i C[i, j]``; regression the
  prediction shifted by ``σ·q``, ``σ`` the RMS residual of the fold's training
  rows and ``q`` the standard normal's τ-quantile (linear) or τ-expectile
  (squared), ``τ = under / (under + over)``;
- ``cost_tuned``: a decision tuned on the fold's TRAINING rows only, then
  applied to its held-out rows: binary the threshold on P(y=1) that minimizes
  the training cost (``metrics.best_threshold``); multiclass the temperature
  ``T`` of the Bayes decision on ``softmax(z / T)`` from :data:`TEMPERATURES`;
  regression the offset that minimizes the training cost (the τ-quantile,
  resp. τ-expectile, of the training residuals).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import statistics
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lossreg_jax import losses, metrics

__all__ = ["COST_METRICS", "TEMPERATURES", "DecisionCost", "implied_loss_spec", "parse_cost",
           "read_cost_matrix"]

COST_METRICS = ("cost_default", "cost_derived", "cost_tuned")
# Multiclass: the temperatures tried on the training rows, T = 1 (the Bayes
# decision itself) first so that it wins ties.
TEMPERATURES = tuple(sorted(np.geomspace(0.1, 10.0, 21).round(6).tolist(),
                            key=lambda t: abs(math.log(t))))


@dataclasses.dataclass(frozen=True)
class DecisionCost:
  """The price of each mistake.

  Attributes:
    matrix: Classification: ``(C, C)`` costs indexed ``[true, predicted]``,
      as nested tuples; None for regression.
    under: Regression: cost per unit (or squared unit) of under-prediction
      (prediction < target).
    over: Regression: cost per unit (or squared unit) of over-prediction.
    squared: Regression: the cost grows with the squared error, else linearly.
    text: How the user wrote it (``"fn=5,fp=1"``, a file name, ...).
  """

  matrix: tuple | None = None
  under: float | None = None
  over: float | None = None
  squared: bool = False
  text: str = ""

  @property
  def regression(self) -> bool:
    return self.matrix is None

  @property
  def label(self) -> str:
    """``text``, or for a cost made in code, what its fields say."""
    if self.text:
      return self.text
    if self.regression:
      return f"under={self.under},over={self.over}" + (",squared" if self.squared else "")
    return str(np.asarray(self.matrix).tolist())

  def describe(self) -> str:
    """One line saying what a row's mistake costs."""
    if self.regression:
      e = "²" if self.squared else ""
      return (f"{'squared' if self.squared else 'linear'} cost per row: "
              f"{self.under:g}·max(y − ŷ, 0){e} + {self.over:g}·max(ŷ − y, 0){e}")
    c = np.asarray(self.matrix)
    if c.shape == (2, 2) and c[0, 0] == c[1, 1] == 0:
      return f"a false negative costs {c[1, 0]:g}, a false positive {c[0, 1]:g}"
    return f"cost matrix [true, predicted] = {c.tolist()}"

  def binary_costs(self) -> tuple[float, float]:
    """Binary: ``(cost_fp, cost_fn)``, each relative to the correct decision."""
    c = np.asarray(self.matrix, np.float64)
    return float(c[0, 1] - c[0, 0]), float(c[1, 0] - c[1, 1])

  def check(self, task: str, num_classes: int) -> "DecisionCost":
    """Raises ValueError unless this cost fits ``task`` with ``num_classes`` classes."""
    if task == "regression" and not self.regression:
      raise ValueError(f"cost {self.label!r} prices classes, but the task is regression: use "
                       f"a cost like 'under=3,over=1' (add ',squared' for squared errors).")
    if task != "regression" and self.regression:
      raise ValueError(f"cost {self.label!r} prices under- and over-prediction, but the task "
                       f"is {task}: use 'fn=5,fp=1' (binary) or a cost matrix file.")
    if self.regression and not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0
                                   for v in (self.under, self.over)):
      raise ValueError(f"cost {self.label!r}: under and over must both be finite and > 0, got "
                       f"under={self.under}, over={self.over}.")
    if not self.regression:
      m = np.asarray(self.matrix, np.float64)
      if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"cost {self.label!r}: the cost matrix must be square, finite and "
                         f">= 0, got {m.tolist()}.")
    if task != "regression":
      size = np.asarray(self.matrix).shape[0]
      if size != num_classes:
        raise ValueError(f"cost matrix {self.label!r} is {size} x {size}, but the data have "
                         f"{num_classes} classes.")
      if task == "binary":
        fp, fn = self.binary_costs()
        if fp < 0 or fn < 0 or fp + fn <= 0:
          raise ValueError(f"cost matrix {self.label!r}: each error must cost at least as much "
                           f"as the correct decision, and one strictly more, got "
                           f"{np.asarray(self.matrix).tolist()}.")
    return self

  def to_dict(self) -> dict:
    out = {"text": self.label, "description": self.describe()}
    if self.regression:
      out.update(under=self.under, over=self.over, kind="squared" if self.squared else "linear")
    else:
      out["matrix"] = np.asarray(self.matrix).tolist()
    return out


def _number(name: str, text: str, source: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise ValueError(f"cost {source!r}: {name} must be a number, got {text!r}.") from None
  if not math.isfinite(value) or value < 0:
    raise ValueError(f"cost {source!r}: {name} must be finite and >= 0, got {text!r}.")
  return value


def parse_cost(text: str) -> DecisionCost:
  """Reads ``"fn=5,fp=1"`` (binary) or ``"under=3,over=1[,linear|squared]"`` (regression).

  Args:
    text: ``fn=A,fp=B`` (a false negative costs A, a false positive B, both
      ``>= 0``, not both 0), or ``under=U,over=O`` (per unit of under- and
      over-prediction, both ``> 0``) with an optional ``linear`` (the
      default) or ``squared`` (per squared unit).

  Returns:
    A :class:`DecisionCost`: binary costs as the matrix ``[[0, B], [A, 0]]``.

  Raises:
    ValueError: one line naming the part that is wrong.

  Examples:
    >>> parse_cost("fn=5,fp=1").matrix
    ((0.0, 1.0), (5.0, 0.0))
    >>> parse_cost("under=3,over=1,squared").describe()
    'squared cost per row: 3·max(y − ŷ, 0)² + 1·max(ŷ − y, 0)²'
  """
  if not isinstance(text, str) or not text.strip():
    raise ValueError(f"cost must be text such as 'fn=5,fp=1' or 'under=3,over=1', got "
                     f"{text!r}.")
  values, kinds = {}, []
  for part in (p.strip() for p in text.split(",")):
    if part.lower() in ("linear", "squared"):
      kinds.append(part.lower())
      continue
    key, eq, value = part.partition("=")
    key = key.strip().lower()
    if not eq or key not in ("fn", "fp", "under", "over"):
      raise ValueError(f"cost {text!r}: expected fn=..,fp=.. or under=..,over=..[,linear|"
                       f"squared], got {part!r}.")
    if key in values:
      raise ValueError(f"cost {text!r}: {key} is given twice.")
    values[key] = _number(key, value.strip(), text)
  binary = sorted(set(values) & {"fn", "fp"})
  regression = sorted(set(values) & {"under", "over"})
  if binary and regression:
    raise ValueError(f"cost {text!r}: mixes binary ({', '.join(binary)}) and regression "
                     f"({', '.join(regression)}) costs: give fn and fp, or under and over.")
  if len(kinds) > 1:
    raise ValueError(f"cost {text!r}: give at most one of linear or squared, got "
                     f"{', '.join(kinds)}.")
  for given, pair, kind in ((binary, ("fn", "fp"), "binary"),
                            (regression, ("under", "over"), "regression")):
    if len(given) == 1:
      missing = pair[1] if given == [pair[0]] else pair[0]
      raise ValueError(f"cost {text!r}: give both {pair[0]} and {pair[1]} ({kind}): "
                       f"{missing} is missing.")
  if binary:
    if kinds:
      raise ValueError(f"cost {text!r}: give both fn and fp (binary) without a kind: "
                       f"{kinds[0]!r} applies to regression costs (under=..,over=..).")
    if values["fn"] + values["fp"] <= 0:
      raise ValueError(f"cost {text!r}: fn + fp must be > 0.")
    return DecisionCost(matrix=((0.0, values["fp"]), (values["fn"], 0.0)), text=text)
  if regression:
    if values["under"] <= 0 or values["over"] <= 0:
      raise ValueError(f"cost {text!r}: under and over must both be > 0 (a free mistake "
                       f"makes the best forecast infinite).")
    return DecisionCost(under=values["under"], over=values["over"],
                        squared=kinds == ["squared"], text=text)
  raise ValueError(f"cost {text!r}: give both fn and fp (binary), or both under and over "
                   f"(regression, optionally ',linear' or ',squared').")


def read_cost_matrix(path: str | Path, *, allow_diagonal: bool = False) -> DecisionCost:
  """Reads a ``(C, C)`` cost matrix from a CSV file: rows true class, columns predicted.

  Cells are numbers; a first row and a first column of class names are
  allowed (and skipped): words, or the ids ``0..C-1`` (a file with one row,
  resp. one column, more than columns, resp. rows; a square file of numbers
  is always the matrix itself).

  Args:
    path: The CSV file.
    allow_diagonal: Accept non-zero costs for correct decisions.

  Returns:
    A :class:`DecisionCost` holding the matrix.

  Raises:
    ValueError: one line naming the file and what is wrong: not square,
      not a number, not finite, negative, or a non-zero diagonal.
    FileNotFoundError: if the file does not exist.

  Examples:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "costs.csv"
    >>> _ = path.write_text("true/predicted,cat,dog\\ncat,0,1\\ndog,4,0\\n")
    >>> read_cost_matrix(path).matrix
    ((0.0, 1.0), (4.0, 0.0))
  """
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"cost matrix file {str(path)!r} does not exist.")
  with open(path, newline="", encoding="utf-8-sig") as f:
    rows = [[c.strip() for c in row] for row in csv.reader(f) if any(c.strip() for c in row)]
  rows = _strip_class_names(rows)
  where = f"cost matrix {str(path)!r}"
  if not rows or any(len(r) != len(rows) for r in rows):
    hint = "; separate the cells with commas" if rows and all(len(r) == 1 for r in rows) else ""
    raise ValueError(f"{where} must be square (rows: true class, columns: predicted), got "
                     f"{len(rows)} rows of {sorted({len(r) for r in rows})} columns{hint}.")
  for i, r in enumerate(rows):
    for j, c in enumerate(r):
      v = _try_float(c)
      if v is None or not math.isfinite(v) or v < 0:
        raise ValueError(f"{where}: entry [{i}, {j}] must be a finite number >= 0, got {c!r}.")
  m = np.array([[float(c) for c in r] for r in rows])
  if len(m) < 2:
    raise ValueError(f"{where} must cover at least 2 classes, got {m.shape}.")
  if not allow_diagonal and np.any(np.diag(m) != 0):
    raise ValueError(f"{where}: the diagonal (correct decisions) must be 0, got "
                     f"{np.diag(m).tolist()}; pass allow_diagonal=True "
                     f"(--allow-cost-diagonal) if you mean it.")
  return DecisionCost(matrix=tuple(map(tuple, m.tolist())), text=str(path))


def _strip_class_names(rows: list[list[str]]) -> list[list[str]]:
  """Drops a header row and an index column of class names, if the file has them.

  Names are words, or the class ids ``0, 1, ..., C-1`` themselves when the
  shape says they are names (one row, resp. one column, more than a square
  matrix), so a square file of numbers is always read as the matrix. A first
  row such as ``0,x`` is a matrix row with a bad cell, reported as such
  later. One column is never a header or an index (it would leave no cells).
  """
  is_number = lambda s: _try_float(s) is not None
  ids = lambda cells: cells == [str(i) for i in range(len(cells))]
  if not rows or len(rows[0]) < 2:
    return rows
  head, body = rows[0], rows[1:]
  if (not any(is_number(c) for c in head)
      or (ids(head) and len(body) == len(head) and all(len(r) == len(head) for r in body))
      or (not is_number(head[0]) and ids(head[1:]) and len(body) == len(head) - 1
          and all(len(r) == len(head) for r in body))):
    rows = body  # a header of class names
  if rows and all(len(r) > 1 for r in rows) and (
      all(not is_number(r[0]) for r in rows)
      or (ids([r[0] for r in rows]) and all(len(r) == len(rows) + 1 for r in rows))):
    rows = [r[1:] for r in rows]  # an index column of class names
  return rows


def _try_float(s: str) -> float | None:
  try:
    return float(s)
  except ValueError:
    return None


def as_decision_cost(cost) -> DecisionCost:
  """``cost`` argument of ``compare_losses`` -> :class:`DecisionCost` (values: ``check``)."""
  if isinstance(cost, DecisionCost):
    return cost
  if isinstance(cost, str):
    return parse_cost(cost)
  m = np.asarray(cost, np.float64)
  if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
    raise ValueError(f"cost must be a spec string, a DecisionCost or a square (C, C) cost "
                     f"matrix, got shape {m.shape}.")
  return DecisionCost(matrix=tuple(map(tuple, m.tolist())))


def implied_loss_spec(cost: DecisionCost | str) -> str:
  """The loss spec whose minimizer is the decision a regression cost asks for.

  A squared cost ``U·max(y − ŷ, 0)² + O·max(ŷ − y, 0)²`` is itself the
  ``asymmetric`` loss (minimized by the τ-expectile, ``τ = U / (U + O)``); a
  linear cost ``U·max(y − ŷ, 0) + O·max(ŷ − y, 0)`` is ``U + O`` times the
  pinball loss at ``q = U / (U + O)``, minimized by the cost-optimal
  q-quantile. The CLI puts this spec among the default regression specs when
  ``--cost`` is given without ``--loss``.

  Args:
    cost: A regression :class:`DecisionCost`, or its text (``"under=3,over=1"``).

  Returns:
    A spec string for :func:`~lossreg_jax.experiments.parse_spec`: numbers
    written with up to 6 significant digits.

  Raises:
    ValueError: if ``cost`` prices classes (a cost matrix) or cannot be read.
    TypeError: if ``cost`` is neither a ``DecisionCost`` nor a string.

  Examples:
    >>> implied_loss_spec("under=3,over=1,squared")
    'asymmetric:under=3,over=1'
    >>> implied_loss_spec("under=3,over=1")
    'quantile:q=0.75'
    >>> implied_loss_spec("under=1,over=2")
    'quantile:q=0.333333'
  """
  if not isinstance(cost, (DecisionCost, str)):
    raise TypeError(f"cost must be a DecisionCost or a cost string such as 'under=3,over=1', "
                    f"got {type(cost).__name__} {cost!r:.60}.")
  cost = as_decision_cost(cost)
  if not cost.regression:
    raise ValueError(f"cost {cost.label!r} prices classes; implied_loss_spec needs a "
                     f"regression cost such as 'under=3,over=1'.")
  cost.check("regression", 0)
  if cost.squared:
    return f"asymmetric:under={cost.under:.6g},over={cost.over:.6g}"
  q = cost.under / (cost.under + cost.over)
  text = f"{q:.6g}"
  return f"quantile:q={text if 0 < float(text) < 1 else repr(q)}"  # 0.9999999 stays < 1


def normal_offset(tau: float, squared: bool) -> float:
  """The standard normal's τ-quantile (linear) or τ-expectile (squared cost)."""
  if not squared:
    return statistics.NormalDist().inv_cdf(tau)
  pdf = lambda e: math.exp(-0.5 * e * e) / math.sqrt(2 * math.pi)
  cdf = lambda e: 0.5 * (1 + math.erf(e / math.sqrt(2)))
  # The τ-expectile solves τ·E[(Z − e)⁺] = (1 − τ)·E[(e − Z)⁺]; the left side
  # minus the right decreases in e, so bisection finds it.
  gap = lambda e: tau * (pdf(e) - e * (1 - cdf(e))) - (1 - tau) * (pdf(e) + e * cdf(e))
  lo, hi = -40.0, 40.0
  for _ in range(200):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
  return 0.5 * (lo + hi)


def regression_cost(pred, y, *, under, over, squared, where=None):
  """Mean cost per included row of predictions ``pred`` for targets ``y``; 0 for none.

  The squared cost is ``losses.asymmetric_squared_error``; the linear one is
  ``(under + over)`` times the pinball loss at ``τ = under / (under + over)``.
  """
  if squared:
    return losses.asymmetric_squared_error(pred, y, under_weight=under, over_weight=over,
                                           where=where)
  return (under + over) * losses.quantile_loss(pred, y, quantile=under / (under + over),
                                               where=where)


def _train_offset(r, train, tau, squared):
  """The offset ``b`` minimizing the training rows' cost of ``pred + b``."""
  n = jnp.sum(train)
  if not squared:  # the τ-quantile of the training residuals (a minimizer of the pinball sum)
    ordered = jnp.sort(jnp.where(train, r, jnp.inf))
    k = jnp.clip(jnp.ceil(tau * n).astype(jnp.int32) - 1, 0, r.shape[0] - 1)
    return ordered[k]
  # The τ-expectile: iteratively reweighted means (Newton on a piecewise
  # quadratic, which ends in finitely many steps; 64 is ample for float32).
  def step(_, b):
    w = jnp.where(train, jnp.where(r > b, tau, 1 - tau), 0.0)
    return jnp.sum(w * r) / jnp.sum(w)
  return jax.lax.fori_loop(0, 64, step, jnp.sum(jnp.where(train, r, 0.0)) / n)


def fold_costs(z, y, test_masks, *, task: str, cost: DecisionCost):
  """Held-out cost of the three decisions per fold, and the decisions.

  One compiled program per task and cost kind: the prices are traced, so a
  sweep over cost ratios compiles once.

  Args:
    z: Model outputs per fold ``(folds, n, ...)``, as ``compare_losses`` has them
      (regression: predictions in target units).
    y: Targets ``(n,)``.
    test_masks: ``(folds, n)`` held-out masks; the complement is the training rows.
    task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
    cost: The :class:`DecisionCost`.

  Returns:
    ``(costs, decisions)``: ``costs`` maps each of :data:`COST_METRICS` to
    ``(folds,)``; ``decisions`` maps ``"derived"`` and ``"tuned"`` to
    ``(folds,)``: binary thresholds on P(y=1), multiclass temperatures
    (derived: 1), regression offsets in target units.
  """
  if task == "regression":
    tau = cost.under / (cost.under + cost.over)
    matrix = jnp.zeros((0, 0), jnp.float32)
    prices = jnp.asarray([cost.under, cost.over, tau, normal_offset(tau, cost.squared)],
                         jnp.float32)
  else:
    matrix = jnp.asarray(cost.matrix, jnp.float32)
    prices = jnp.asarray(cost.binary_costs() if task == "binary" else (0.0, 0.0), jnp.float32)
  costs, decisions = _fold_costs(z, y, test_masks, matrix, prices, task=task,
                                 squared=cost.squared)
  return dict(zip(COST_METRICS, costs)), dict(zip(("derived", "tuned"), decisions))


@functools.partial(jax.jit, static_argnames=("task", "squared"))
def _fold_costs(z, y, test_masks, c, prices, *, task, squared):
  from lossreg_jax.experiments._scoring import decode

  def binary(z, test):
    pred, prob = decode(z, task)
    fp, fn = prices[0], prices[1]
    derived = fp / (fp + fn)
    tuned = metrics.best_threshold(prob, y, cost_fp=fp, cost_fn=fn, where=~test)
    at = lambda t: metrics.expected_cost((prob >= t).astype(jnp.int32), y, cost_matrix=c,
                                         where=test)
    return (metrics.expected_cost(pred, y, cost_matrix=c, where=test), at(derived),
            at(tuned)), (derived, tuned)

  def multiclass(z, test):
    bayes = lambda t: jnp.argmin(jax.nn.softmax(z / t, axis=-1) @ c, axis=-1).astype(jnp.int32)
    spent = lambda pred, where: metrics.expected_cost(pred, y, cost_matrix=c, where=where)
    temps = jnp.asarray(TEMPERATURES, jnp.float32)
    train_cost = jax.vmap(lambda t: spent(bayes(t), ~test))(temps)
    tuned = temps[jnp.argmin(train_cost)]
    default = jnp.argmax(z, axis=-1).astype(jnp.int32)
    return (spent(default, test), spent(bayes(1.0), test), spent(bayes(tuned), test)), (
        jnp.float32(1.0), tuned)

  def regression(z, test):
    under, over, tau, q = prices
    r, train = y - z, ~test
    sigma = jnp.sqrt(jnp.sum(jnp.where(train, r * r, 0.0)) / jnp.sum(train))
    derived = sigma * q
    tuned = _train_offset(r, train, tau, squared)
    spent = lambda b: regression_cost(z + b, y, under=under, over=over, squared=squared,
                                      where=test)
    return (spent(0.0), spent(derived), spent(tuned)), (derived, tuned)

  one = {"binary": binary, "multiclass": multiclass, "regression": regression}[task]
  return jax.vmap(one)(z, test_masks)


def cost_curve(outputs: np.ndarray, y: np.ndarray, cost: DecisionCost, task: str,
               points: int = 101, span: float | None = None) -> dict:
  """Held-out cost as the decision moves, for the report's cost plot.

  ``outputs`` are held-out P(y=1) ``(n,)`` (binary), softmax ``(n, C)``
  (multiclass) or predictions ``(n,)`` (regression). Returns ``{"x", "cost"}``:
  binary thresholds on P(y=1) in [0, 1]; multiclass the temperatures of the
  Bayes decision (from 0.1 to 10, log-spaced; the softmax is re-tempered
  through its logarithm); regression offsets added to the predictions, from
  ``-span`` to ``span`` (default: 1.5 times the RMS residual ``y - outputs``).
  """
  outputs, y = np.asarray(outputs, np.float64), np.asarray(y)
  if task == "binary":
    fp, fn = cost.binary_costs()
    c = np.asarray(cost.matrix)
    x = np.linspace(0.0, 1.0, points)
    decide = lambda t: (outputs >= t).astype(int)
  elif task == "multiclass":
    c = np.asarray(cost.matrix)
    x = np.geomspace(0.1, 10.0, points)
    logp = np.log(np.maximum(outputs, np.finfo(np.float64).tiny))

    def decide(t):
      p = np.exp((logp - logp.max(-1, keepdims=True)) / t)
      return np.argmin(p @ c, axis=-1)  # normalizing p does not change the argmin
  else:
    if span is None:
      span = 1.5 * float(np.sqrt(np.mean((y - outputs) ** 2)))
    x = np.linspace(-span, span, points)
    r = lambda b: y - (outputs + b)
    under, over, p = cost.under, cost.over, 2 if cost.squared else 1
    spent = [float(np.mean(np.where(r(b) > 0, under * r(b) ** p, over * (-r(b)) ** p)))
             for b in x]
    return {"x": x.tolist(), "cost": spent}
  spent = [float(np.mean(c[y, decide(t)])) for t in x]
  return {"x": x.tolist(), "cost": spent}
