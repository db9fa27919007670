"""Property checker for custom losses: ``check_loss(fn, task=...)``.

It evaluates a user's loss ``fn(predictions, targets)`` on random inputs of the
task and reports, per property, whether it held and, when it did not, the inputs
that broke it. The CLI's ``lossreg-jax check MODULE:FUNCTION`` prints the report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

# Aliased: only check_loss and the report classes are public in this namespace.
from lossreg_jax import _convexity
from lossreg_jax._validation import check_choice as _check_choice
from lossreg_jax._validation import check_in_range as _check_in_range

__all__ = ["PROPERTIES", "LossReport", "PropertyResult", "check_loss"]

TASKS: tuple[str, ...] = ("regression", "binary", "multiclass")
BINARY_INPUTS: tuple[str, ...] = ("logits", "probabilities")
# The properties check_loss reports, in order.
PROPERTIES: tuple[str, ...] = (
    "evaluates", "non_negative", "minimal_at_perfect", "convex", "finite_gradients",
    "differentiable", "jit", "vmap", "grad",
)
_PERFECT_LOGIT = 20.0  # sigmoid(20) = 1 - 2e-9: a perfect logit in float32
_LINE_INPUTS = 8  # inputs whose coordinate axes the convexity check scans


@dataclasses.dataclass(frozen=True)
class PropertyResult:
  """The outcome of one property of a loss.

  Attributes:
    name: The property, one of ``lossreg_jax.checks.PROPERTIES``.
    passed: Whether it held on every input tried.
    detail: One line for people: what was measured, or why it failed.
    counterexample: On failure, the inputs (and values) that broke the
      property, as NumPy arrays by name; else ``None``.

  Examples:
    >>> PropertyResult("convex", True, "f(midpoint) <= mean of the ends").passed
    True
  """

  name: str
  passed: bool
  detail: str
  counterexample: Mapping[str, np.ndarray] | None = None


@dataclasses.dataclass(frozen=True)
class LossReport:
  """Result of ``check_loss``: one ``PropertyResult`` per property.

  ``str(report)`` is a table for the terminal followed by the counterexamples
  of the failed properties. ``report.passed`` is True when every property held;
  ``report.failures`` lists the others; ``report["convex"]`` looks one up.

  Attributes:
    loss_name: The name of the checked function.
    task: The task its inputs were drawn for.
    results: One ``PropertyResult`` per property, in ``PROPERTIES`` order.

  Examples:
    >>> report = LossReport("my_loss", "regression", (
    ...     PropertyResult("non_negative", True, "min loss 0"),
    ...     PropertyResult("convex", False, "f(midpoint) > mean of the ends")))
    >>> report.passed, [r.name for r in report.failures]
    (False, ['convex'])
    >>> print(report)  # doctest: +NORMALIZE_WHITESPACE
    check_loss(my_loss, task='regression'): 1/2 properties hold
    <BLANKLINE>
      property      result  detail
      ------------  ------  ----------------------------------------
      non_negative  PASS    min loss 0
      convex        FAIL    f(midpoint) > mean of the ends
  """

  loss_name: str
  task: str
  results: tuple[PropertyResult, ...]

  @property
  def passed(self) -> bool:
    """True when every property held."""
    return all(r.passed for r in self.results)

  @property
  def failures(self) -> list[PropertyResult]:
    """The results that did not hold, in order."""
    return [r for r in self.results if not r.passed]

  def __getitem__(self, name: str) -> PropertyResult:
    for r in self.results:
      if r.name == name:
        return r
    raise KeyError(f"no property {name!r}; the report has {[r.name for r in self.results]}")

  def to_dict(self) -> dict:
    """The report as JSON-ready Python values (counterexamples as nested lists).

    Returns:
      ``{"loss", "task", "passed", "properties": [{"name", "passed", "detail",
      "counterexample"}, ...]}``.

    Examples:
      >>> LossReport("f", "regression", (PropertyResult("jit", True, "ok"),)).to_dict()["passed"]
      True
    """
    return {
        "loss": self.loss_name, "task": self.task, "passed": self.passed,
        "properties": [
            {"name": r.name, "passed": r.passed, "detail": r.detail,
             "counterexample": None if r.counterexample is None else
             {k: np.asarray(v).tolist() for k, v in r.counterexample.items()}}
            for r in self.results]}

  def markdown(self) -> str:
    """The report as a Markdown page: a table, then the counterexamples.

    Returns:
      The page's text.

    Examples:
      >>> print(LossReport("f", "regression", (PropertyResult("jit", True, "ok"),)).markdown())
      # check_loss(f, task='regression'): 1/1 properties hold
      <BLANKLINE>
      | property | result | detail |
      |---|---|---|
      | jit | PASS | ok |
      <BLANKLINE>
    """
    n_pass = sum(r.passed for r in self.results)
    lines = [f"# check_loss({self.loss_name}, task={self.task!r}): "
             f"{n_pass}/{len(self.results)} properties hold", "",
             "| property | result | detail |", "|---|---|---|"]
    for r in self.results:
      detail = r.detail.replace("|", "\\|")
      lines.append(f"| {r.name} | {'PASS' if r.passed else 'FAIL'} | {detail} |")
    for r in self.failures:
      if r.counterexample:
        lines += ["", f"## counterexample for {r.name}", "", "```"]
        lines += [f"{k} = {np.array2string(np.asarray(v), precision=6, separator=', ')}"
                  for k, v in r.counterexample.items()]
        lines.append("```")
    return "\n".join(lines) + "\n"

  def __str__(self) -> str:
    width = max(len(r.name) for r in self.results)
    n_pass = sum(r.passed for r in self.results)
    lines = [f"check_loss({self.loss_name}, task={self.task!r}): "
             f"{n_pass}/{len(self.results)} properties hold",
             "", f"  {'property':<{width}}  result  detail",
             f"  {'-' * width}  ------  {'-' * 40}"]
    for r in self.results:
      lines.append(f"  {r.name:<{width}}  {'PASS' if r.passed else 'FAIL':<6}  {r.detail}")
    for r in self.failures:
      if not r.counterexample:
        continue
      lines += ["", f"counterexample for {r.name}:"]
      for key, value in r.counterexample.items():
        text = np.array2string(np.asarray(value), precision=6, separator=", ",
                               max_line_width=88, threshold=64)
        lines.append(f"  {key} = " + text.replace("\n", "\n  " + " " * (len(key) + 3)))
    return "\n".join(lines)


def _error(e: BaseException) -> str:
  msg = str(e).strip().splitlines()
  first = msg[0] if msg else ""
  if len(first) > 160:
    first = first[:157] + "..."
  return f"raised {type(e).__name__}: {first}"


def _close(a, b, rtol: float, atol: float) -> bool:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


@dataclasses.dataclass
class _Inputs:
  """Random inputs of one task, each with a leading sample axis."""

  targets: np.ndarray
  predictions: np.ndarray      # random predictions
  others: np.ndarray           # second random predictions (convexity segments)
  perfect: np.ndarray          # the perfect prediction of ``targets``
  perturbed: np.ndarray        # small moves away from ``perfect``
  extreme_predictions: np.ndarray
  extreme_targets: np.ndarray
  fd_predictions: np.ndarray   # smooth interior points for finite differences
  direction: np.ndarray        # unit directions for finite differences


def _numpy_rng(key) -> np.random.Generator:
  """A NumPy generator seeded by a ``jax.random`` key (typed or raw ``uint32``).

  Inputs are drawn with NumPy: eager ``jax.random`` calls would each compile.
  """
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())


def _make_inputs(key, task, binary_inputs, num_samples, shape, num_classes, scale,
                 extreme_scale) -> _Inputs:
  rng = _numpy_rng(key)
  s = (num_samples, *shape)
  normal = lambda sh=s: rng.standard_normal(sh).astype(np.float32)
  uniform = lambda lo, hi, sh=s: rng.uniform(lo, hi, sh).astype(np.float32)
  if task == "regression":
    t = scale * normal()
    p, q = scale * normal(), scale * normal()
    perfect = t
    perturbed = t + 0.1 * scale * normal()
    ext_p, ext_t = extreme_scale * normal(), extreme_scale * normal()
    fd = p
  elif task == "binary":
    t = (uniform(0, 1) < 0.5).astype(np.float32)
    sign = 2 * t - 1
    ext_t = (uniform(0, 1) < 0.5).astype(np.float32)
    if binary_inputs == "logits":
      p, q = scale * normal(), scale * normal()
      perfect = _PERFECT_LOGIT * sign
      perturbed = perfect - sign * uniform(0, 4)  # still confident, less so
      ext_p = extreme_scale * normal()
      fd = p
    else:
      p, q = uniform(0.02, 0.98), uniform(0.02, 0.98)
      perfect = t
      perturbed = t - sign * uniform(0, 0.1)
      ext_p = (uniform(0, 1) < 0.5).astype(np.float32)  # exactly 0 and 1
      fd = uniform(0.1, 0.9)
  else:  # multiclass: logits and one-hot targets on a last axis of num_classes
    sc = (*s, num_classes)
    eye = np.eye(num_classes, dtype=np.float32)
    t = eye[rng.integers(0, num_classes, s)]
    p, q = scale * normal(sc), scale * normal(sc)
    perfect = _PERFECT_LOGIT * t
    perturbed = perfect + normal(sc)
    ext_p = extreme_scale * normal(sc)
    ext_t = eye[rng.integers(0, num_classes, s)]
    fd = p
  direction = normal(fd.shape)
  norms = np.sqrt(np.sum(direction.reshape(num_samples, -1) ** 2, axis=1))
  direction = direction / norms.reshape((num_samples,) + (1,) * (direction.ndim - 1))
  return _Inputs(t, p, q, perfect, perturbed, ext_p, ext_t, fd, direction)


class _Batched:
  """``fn`` over the leading axis: one jitted vmap, else a Python loop.

  The jitted function is built once, so inputs of one shape compile once.
  """

  def __init__(self, fn: Callable):
    self.fn = fn
    self.fast = jax.jit(jax.vmap(fn))
    self.fast_works = True

  def __call__(self, *args: np.ndarray) -> np.ndarray:
    if self.fast_works:
      try:
        return np.asarray(self.fast(*args))
      except Exception:  # not vmap- or jit-able: evaluate one example at a time
        self.fast_works = False
    return np.stack([np.asarray(self.fn(*(a[i] for a in args))) for i in range(len(args[0]))])


def _per_sample(values: np.ndarray) -> np.ndarray:
  """Sums an elementwise loss per sample: shape ``(num_samples,)``, float64."""
  return values.reshape(values.shape[0], -1).astype(np.float64).sum(axis=1)


class _Checker:
  """Runs the properties of one loss on one set of inputs."""

  def __init__(self, fn, inputs: _Inputs, rtol: float, atol: float, num_transform: int,
               kind: str, scale: float):
    self.fn, self.x, self.rtol, self.atol = fn, inputs, rtol, atol
    self.kind, self.scale = kind, scale
    self.k = num_transform
    self.total = lambda p, t: jnp.sum(fn(p, t))
    self.values = _Batched(fn)
    self.grads = _Batched(jax.grad(self.total))

  def evaluates(self) -> PropertyResult:
    x = self.x
    out = jnp.asarray(self.fn(x.predictions[0], x.targets[0]))
    if not jnp.issubdtype(out.dtype, jnp.floating):
      return PropertyResult("evaluates", False, f"returned dtype {out.dtype}; expected floating")
    if not np.all(np.isfinite(np.asarray(out, np.float64))):
      return PropertyResult("evaluates", False, "returned a non-finite value on typical inputs",
                            dict(predictions=x.predictions[0], targets=x.targets[0], loss=out))
    kind = "a scalar" if out.ndim == 0 else f"shape {out.shape}"
    return PropertyResult("evaluates", True, f"returns {kind} of {out.dtype}")

  def non_negative(self) -> PropertyResult:
    x = self.x
    lowest = np.inf
    for preds in (x.predictions, x.perfect, x.perturbed):
      vals = self.values(preds, x.targets)
      flat = vals.reshape(len(vals), -1).astype(np.float64)
      # NaN is reported by finite_gradients; here it neither passes nor fails.
      worst = np.min(np.where(np.isnan(flat), np.inf, flat), axis=1)
      i = int(np.argmin(worst))
      if worst[i] < -self.atol:
        return PropertyResult("non_negative", False, f"loss {worst[i]:.6g} < 0",
                              dict(predictions=preds[i], targets=x.targets[i], loss=vals[i]))
      lowest = min(lowest, float(worst[i]))
    return PropertyResult("non_negative", True, f"min loss {lowest:.3g} over "
                          f"{3 * len(x.targets)} inputs")

  def minimal_at_perfect(self) -> PropertyResult:
    x = self.x
    at_perfect = _per_sample(self.values(x.perfect, x.targets))
    bad = np.flatnonzero(~np.isfinite(at_perfect))
    if bad.size:
      i = int(bad[0])
      return PropertyResult(
          "minimal_at_perfect", False,
          f"non-finite loss {at_perfect[i]} at the perfect prediction",
          dict(targets=x.targets[i], perfect_prediction=x.perfect[i]))
    for label, others in (("random", x.predictions), ("nearby", x.perturbed)):
      at_other = _per_sample(self.values(others, x.targets))
      excess = at_perfect - at_other - self.atol - self.rtol * np.abs(at_perfect)
      i = int(np.argmax(excess))
      if excess[i] > 0:
        return PropertyResult(
            "minimal_at_perfect", False,
            f"a {label} prediction has a lower loss ({at_other[i]:.6g}) than the perfect "
            f"one ({at_perfect[i]:.6g})",
            dict(targets=x.targets[i], perfect_prediction=x.perfect[i],
                 loss_at_perfect=at_perfect[i], better_prediction=others[i],
                 loss_at_better=at_other[i]))
    top = float(np.max(np.abs(at_perfect)))
    what = "zero" if top <= self.atol else f"minimal but not zero (up to {top:.3g})"
    return PropertyResult("minimal_at_perfect", True,
                          f"loss at the perfect prediction is {what}")

  def convex(self) -> PropertyResult:
    """Midpoint convexity on random segments and on dense lines, each coordinate in turn.

    Random segments alone miss a local concavity (focal loss at logits -6..-2);
    along each coordinate axis a grid of 121 points compares every grid point
    with the mean of its neighbours 1, 2, 4, ..., 32 steps away. The worst
    violation is re-evaluated at ``a``, ``b`` and ``(a + b) / 2`` before it is
    reported, so the counterexample reproduces.
    """
    x = self.x
    a, b, t = x.predictions, x.others, x.targets
    fa, fb, fm = (_per_sample(self.values(p, t)) for p in (a, b, (a + b) / 2))
    segment = self._worst(fa, fb, fm)
    lines = self._line_candidates()
    if segment is None and lines is None:
      return PropertyResult("convex", False, "no finite values on the random segments")
    candidates = ([(segment[0], a[segment[1]], b[segment[1]], t[segment[1]])]
                  if segment is not None else []) + (lines or [])
    for excess, ca, cb, ct in sorted(candidates, key=lambda c: -c[0])[:4]:
      if excess <= 0:
        break
      f = lambda p, ct=ct: float(np.sum(np.asarray(self.fn(p, ct), np.float64)))
      f_a, f_b, f_m = f(ca), f(cb), f((ca + cb) / 2)
      chord = (f_a + f_b) / 2
      if f_m - chord > self.atol + self.rtol * abs(chord):  # confirmed by direct evaluation
        return PropertyResult(
            "convex", False, f"f(midpoint) = {f_m:.6g} > {chord:.6g} = mean of the ends",
            dict(targets=ct, a=ca, b=cb, f_a=f_a, f_b=f_b, f_midpoint=f_m))
    num_lines = min(len(a), _LINE_INPUTS) * a[0].size
    return PropertyResult("convex", True, f"f(midpoint) <= mean of the ends on "
                          f"{len(a)} random segments and along {num_lines} lines "
                          f"of {_convexity.LINE_POINTS} points")

  def _worst(self, fa, fb, fm):
    return _convexity.worst_midpoint(fa, fb, fm, atol=self.atol, rtol=self.rtol)

  def _line_candidates(self):
    base, t = self.x.predictions[:_LINE_INPUTS], self.x.targets[:_LINE_INPUTS]
    points = _convexity.line_points(base, t, kind=self.kind, scale=self.scale)
    values = self.values(points.reshape(-1, *base.shape[1:]),
                         np.repeat(t, points.shape[1] * points.shape[2], 0))
    f = _per_sample(values).reshape(points.shape[:3])
    return _convexity.line_candidates(f, points, t, atol=self.atol, rtol=self.rtol)

  def finite_gradients(self) -> PropertyResult:
    x = self.x
    for label, p, t in (("random", x.predictions, x.targets),
                        ("perfect", x.perfect, x.targets),
                        ("extreme", x.extreme_predictions, x.extreme_targets)):
      vals = _per_sample(self.values(p, t))
      grads = self.grads(p, t)
      ok_v = np.isfinite(vals)
      ok_g = np.all(np.isfinite(grads.reshape(len(grads), -1)), axis=1)
      bad = np.flatnonzero(~(ok_v & ok_g))
      if bad.size:
        i = int(bad[0])
        what = "gradient" if ok_v[i] else "value"
        return PropertyResult(
            "finite_gradients", False,
            f"non-finite {what} at {label} inputs ({bad.size}/{len(vals)} samples)",
            dict(predictions=p[i], targets=t[i], loss=vals[i], gradient=grads[i]))
    return PropertyResult("finite_gradients", True,
                          "finite values and gradients at random, perfect and extreme inputs")

  def differentiable(self) -> PropertyResult:
    x = self.x
    with jax.enable_x64(True):
      p = x.fd_predictions.astype(np.float64)
      t = x.targets.astype(np.float64)
      v = x.direction.astype(np.float64)
      out_dtype = jax.eval_shape(self.fn, p[0], t[0]).dtype  # traces, compiles nothing
      if out_dtype == jnp.float64:
        h, rtol, atol = 1e-6, 1e-4, 1e-7
      else:  # the loss computes in float32 regardless: coarser differences
        h, rtol, atol = 1e-2, 5e-2, 1e-3
      grads = self.grads(p, t).astype(np.float64)
      autodiff = np.sum((grads * v).reshape(len(p), -1), axis=1)
      f_plus = _per_sample(self.values(p + h * v, t))
      f_minus = _per_sample(self.values(p - h * v, t))
    fd = (f_plus - f_minus) / (2 * h)
    err = np.abs(autodiff - fd) - atol - rtol * np.maximum(np.abs(autodiff), np.abs(fd))
    err = np.where(np.isnan(err), np.inf, err)
    i = int(np.argmax(err))
    if err[i] > 0:
      return PropertyResult(
          "differentiable", False,
          f"autodiff directional derivative {autodiff[i]:.6g} != central difference "
          f"{fd[i]:.6g} (h={h:g})",
          dict(predictions=p[i], targets=t[i], direction=v[i], autodiff=autodiff[i],
               finite_difference=fd[i]))
    return PropertyResult("differentiable", True,
                          f"autodiff matches central differences ({out_dtype}, h={h:g})")

  def _transformed(self, name: str, run: Callable[[], tuple[np.ndarray, np.ndarray]]):
    x, k = self.x, self.k
    try:
      got, expected = run()
    except Exception as e:  # any failure of the transformation is the finding
      return PropertyResult(name, False, _error(e),
                            dict(predictions=x.predictions[0], targets=x.targets[0]))
    for i in range(k):
      if not _close(got[i], expected[i], self.rtol, self.atol):
        return PropertyResult(
            name, False, f"value under {name} differs from the eager value",
            dict(predictions=x.predictions[i], targets=x.targets[i],
                 **{f"value_under_{name}": got[i], "eager_value": expected[i]}))
    return PropertyResult(name, True, f"same value as eager on {k} inputs")

  def _eager(self) -> list[np.ndarray]:
    x = self.x
    return [np.asarray(self.fn(x.predictions[i], x.targets[i])) for i in range(self.k)]

  def jit(self) -> PropertyResult:
    x = self.x
    def run():
      jitted = jax.jit(self.fn)
      return [np.asarray(jitted(x.predictions[i], x.targets[i])) for i in range(self.k)], \
          self._eager()
    return self._transformed("jit", run)

  def vmap(self) -> PropertyResult:
    x = self.x
    def run():
      out = np.asarray(jax.vmap(self.fn)(x.predictions[:self.k], x.targets[:self.k]))
      return list(out), self._eager()
    return self._transformed("vmap", run)

  def grad(self) -> PropertyResult:
    x = self.x
    def run():
      got = []
      for i in range(self.k):
        value, g = jax.value_and_grad(self.total)(x.predictions[i], x.targets[i])
        if g.shape != x.predictions[i].shape:
          raise ValueError(f"gradient shape {g.shape} != predictions shape "
                           f"{x.predictions[i].shape}")
        got.append(np.asarray(value))
      return got, [np.sum(e, dtype=np.float64) for e in self._eager()]
    return self._transformed("grad", run)


def check_loss(
    fn: Callable[[jax.Array, jax.Array], ArrayLike],
    *,
    task: str = "regression",
    key: ArrayLike | None = None,
    num_samples: int = 32,
    shape: tuple[int, ...] = (4,),
    num_classes: int = 3,
    binary_inputs: str = "logits",
    scale: float = 2.0,
    extreme_scale: float = 1e3,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> LossReport:
  """Checks the properties a loss usually should have, on random inputs.

  ``fn(predictions, targets)`` may return a scalar or an elementwise loss;
  non-negativity looks at every element, the other properties at its sum. Inputs per task, each of shape ``shape`` (for
  ``"multiclass"``, ``shape + (num_classes,)``):

  * ``"regression"``: real predictions and targets, ``N(0, scale²)``; the
    perfect prediction is the target.
  * ``"binary"``: 0/1 float targets; with ``binary_inputs="logits"`` (default)
    predictions are logits, the perfect prediction is ±20; with
    ``"probabilities"`` they lie in ``[0, 1]`` and the perfect one is the label.
  * ``"multiclass"``: one-hot float targets; predictions are logits, the
    perfect one is 20 at the true class and 0 elsewhere.

  Properties (``PROPERTIES``), each passing or failing with a counterexample:
  ``evaluates`` (returns finite floats), ``non_negative``,
  ``minimal_at_perfect`` (no random or nearby prediction scores lower than the
  perfect one; the detail says whether the minimum is zero), ``convex``
  (``f((a + b) / 2) <= (f(a) + f(b)) / 2`` along random segments of
  predictions), ``finite_gradients`` (values and gradients finite at random,
  perfect and extreme inputs, ``|x| ~ extreme_scale``; probabilities exactly 0
  and 1), ``differentiable`` (autodiff directional derivatives equal central
  finite differences, computed with float64 enabled), and ``jit``, ``vmap``,
  ``grad`` (each runs and gives the eager value). Comparisons allow
  ``atol + rtol·|value|``. If ``fn`` cannot even be evaluated, the other
  properties are reported as failed, not run.

  This function runs Python control flow on concrete values: it is not itself
  jit-able. It is meant for tests and the command line
  (``lossreg-jax check MODULE:FUNCTION``).

  Args:
    fn: The loss, ``fn(predictions, targets) -> scalar or elementwise``.
    task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
    key: ``jax.random`` key (typed or raw) that seeds the NumPy generator of
      the inputs; ``None`` uses ``jax.random.key(0)``. Same key, same inputs.
    num_samples: Number of random inputs per property (at least 2).
    shape: Shape of one input (without the class axis).
    num_classes: Classes of the ``"multiclass"`` task.
    binary_inputs: ``"logits"`` or ``"probabilities"`` for ``task="binary"``.
    scale: Standard deviation of random real inputs.
    extreme_scale: Standard deviation of the extreme real inputs.
    rtol: Relative tolerance of the comparisons.
    atol: Absolute tolerance of the comparisons.

  Returns:
    A ``LossReport`` with one ``PropertyResult`` per property; ``str()`` of it
    is a table for the terminal.

  Raises:
    TypeError: if ``fn`` is not callable, ``key`` is not a ``jax.random`` key,
      ``shape`` is not a tuple, or a tolerance or scale is not a number.
    ValueError: for an unknown ``task`` or ``binary_inputs``, or bad sizes.

  Examples:
    >>> import jax.numpy as jnp
    >>> report = check_loss(lambda p, t: (p - t) ** 2)
    >>> report.passed
    True
    >>> report = check_loss(lambda p, t: 1 - jnp.exp(-(p - t) ** 2))
    >>> [r.name for r in report.failures]
    ['convex']
  """
  if not callable(fn):
    raise TypeError(f"fn must be callable, got {type(fn).__name__}.")
  _check_choice("task", task, TASKS)
  _check_choice("binary_inputs", binary_inputs, BINARY_INPUTS)
  for name, value, low in (("num_samples", num_samples, 2), ("num_classes", num_classes, 2)):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
      raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
  if isinstance(shape, (int, np.integer)) or not isinstance(shape, (tuple, list)):
    raise TypeError(f"shape must be a tuple of positive ints, e.g. (4,), got "
                    f"{type(shape).__name__} {shape!r}.")
  shape = tuple(shape)
  if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
             for d in shape):
    raise ValueError(f"shape must be a tuple of positive ints, got {shape!r}.")
  if key is not None and not (
      isinstance(key, (jax.Array, np.ndarray)) and not isinstance(key, jax.core.Tracer)
      and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
           or (key.dtype == np.uint32 and key.shape == (2,)))):
    raise TypeError(f"key must be a jax.random key (jax.random.key(0) or PRNGKey(0)), got "
                    f"{type(key).__name__} {key!r:.60}.")
  for name, value in (("scale", scale), ("extreme_scale", extreme_scale)):
    _check_in_range(name, value, 0.0, low_inclusive=False)
  _check_in_range("rtol", rtol, 0.0)
  _check_in_range("atol", atol, 0.0)
  key = jax.random.key(0) if key is None else key
  inputs = _make_inputs(key, task, binary_inputs, num_samples, shape, num_classes,
                        float(scale), float(extreme_scale))
  kind = "probabilities" if task == "binary" and binary_inputs == "probabilities" else (
      "regression" if task == "regression" else "logits")
  checker = _Checker(fn, inputs, rtol, atol, num_transform=min(num_samples, 4), kind=kind,
                     scale=float(scale))
  loss_name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
  results = []
  for name in PROPERTIES:
    if results and not results[0].passed:
      results.append(PropertyResult(name, False, "not run: fn failed to evaluate"))
      continue
    try:
      results.append(getattr(checker, name)())
    except Exception as e:  # a crash inside a property is a failure of that property
      results.append(PropertyResult(
          name, False, _error(e),
          dict(predictions=inputs.predictions[0], targets=inputs.targets[0])))
  return LossReport(loss_name=loss_name, task=task, results=tuple(results))

