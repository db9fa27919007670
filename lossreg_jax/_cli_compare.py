"""``lossreg-jax compare``'s ``--model`` and ``--loss-file``: reading, checking, reporting.

Each function here raises ``ValueError`` with a one-line message that names the
option (``cli.main`` prints it with exit code 2), before any training:

* ``read_model``: ``--model`` -> an ``experiments.ModelSpec`` (or None).
* ``model_inputs``: the rows the model takes; ``cnn`` needs images, which only
  an image data set has (``datasets.Dataset.image_shape``: ``digits``).
* ``load_loss_file``: ``--loss-file FILE`` -> the public functions defined in
  FILE by name (the user's losses, ``compare_losses(losses=...)``).
* ``parse_specs``: every ``--loss`` spec read (swept values expanded) with the
  user's loss names, and the user losses they use.
* ``check_user_losses``: ``checks.check_loss`` on each user loss with each
  spec's numbers bound; a loss that fails ``evaluates``, ``finite_gradients``
  or ``jit`` stops the command with its property report on stderr.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

# A loss failing one of these stops the command before training: it would
# crash or train to NaN there.
REQUIRED = ("evaluates", "finite_gradients", "jit")


def read_model(text: str | None):
  """``--model TEXT`` -> ``experiments.ModelSpec``; None when not given.

  Examples:
    >>> read_model("cnn:channels=2").text
    'cnn:channels=2'
    >>> read_model("resnet")
    Traceback (most recent call last):
    ...
    ValueError: --model: unknown model 'resnet'; valid models: linear, mlp, cnn (e.g. 'mlp:hidden=16,layers=2', 'cnn:channels=8').
  """
  if text is None:
    return None
  from lossreg_jax import experiments
  try:
    return experiments.parse_model(text)
  except ValueError as e:
    raise ValueError(f"--model: {e}") from None


def model_inputs(model, data, name: str):
  """``data.X`` as the model takes it: images ``(n, H, W, C)`` for ``cnn``.

  Raises:
    ValueError: for ``cnn`` on a data set without an ``image_shape`` (a CSV,
      a table), naming the model and the data.
  """
  if model is None or model.name != "cnn":
    return data.X
  shape = getattr(data, "image_shape", None)
  if shape is None:
    from lossreg_jax import datasets
    images = list(datasets._IMAGE_SHAPES)
    raise ValueError(
        f"--model {model.text} needs images (n, height, width, channels), but {name} is a "
        f"table of {data.X.shape[1]} features; use --model mlp or linear, or an image data "
        f"set ({', '.join(f'--dataset {n}' for n in images)})")
  return data.X.reshape((data.X.shape[0], *shape))


def describe_rows(X) -> str:
  """``"30 features"`` or ``"8x8x1 images"`` for the status line."""
  if X.ndim > 2:
    return "x".join(str(d) for d in X.shape[1:]) + " images"
  return f"{X.shape[1]} features"


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def load_loss_file(path: Path) -> dict[str, Callable]:
  """Imports ``path``; its public functions (defined there, no leading ``_``) by name.

  The file's folder is on ``sys.path`` while it imports (it may import its
  neighbours).

  Raises:
    ValueError: if the file is missing or does not import (the message names
      the file and the error), defines no public function, or names one like
      a built-in spec term (``mse``, ``l2``, ...).
  """
  from lossreg_jax.experiments.spec import BUILTIN_TERMS
  path = Path(path)
  shown = str(path)
  if not path.is_file():
    raise ValueError(f"--loss-file {shown}: no such file")
  module_name = f"_lossreg_jax_loss_file_{path.stem}"
  spec = importlib.util.spec_from_file_location(module_name, path)
  if spec is None or spec.loader is None:
    raise ValueError(f"--loss-file {shown}: cannot import it (not a Python file?)")
  module = importlib.util.module_from_spec(spec)
  folder = str(path.resolve().parent)
  sys.modules[module_name] = module  # dataclasses and pickling look modules up there
  sys.path.insert(0, folder)
  try:
    spec.loader.exec_module(module)
  except SystemExit as e:  # a script's sys.exit() at import
    sys.modules.pop(module_name, None)
    raise ValueError(f"--loss-file {shown}: it called sys.exit({e.code!r}) while being "
                     f"imported (guard its script part with `if __name__ == "
                     f"'__main__':`)") from None
  except Exception as e:  # the user's file may raise anything while importing
    sys.modules.pop(module_name, None)
    raise ValueError(f"--loss-file {shown}: cannot import it: {_first_line(e)}") from None
  finally:
    if folder in sys.path:
      sys.path.remove(folder)
  functions = {name: value for name, value in vars(module).items()
               if not name.startswith("_") and callable(value) and not inspect.isclass(value)
               and getattr(value, "__module__", None) == module_name}
  if not functions:
    raise ValueError(f"--loss-file {shown}: it defines no public function (a loss "
                     f"loss(predictions, targets, *, weights=None, where=None, **numbers) "
                     f"whose name does not start with _)")
  taken = [name for name in functions if name.lower() in BUILTIN_TERMS]
  if taken:
    what = ("is the name of a built-in spec term; rename it" if len(taken) == 1 else
            "are names of built-in spec terms; rename them")
    raise ValueError(f"--loss-file {shown}: {', '.join(map(repr, taken))} {what} (or start "
                     f"the name with _ to keep a helper out of --loss)")
  return functions


def parse_specs(specs: Sequence[str], losses: Mapping[str, Callable], source=None):
  """``(spec texts with sweeps expanded, parsed specs, the user losses they use)``.

  ``losses`` are checked as ``compare_losses`` checks them (names, the loss
  contract's signature); a TypeError there becomes a ValueError.
  """
  from lossreg_jax import experiments
  from lossreg_jax.experiments.candidates import check_losses
  texts = [t for s in specs for t in experiments.expand_sweeps(s)[0]]
  parsed = [experiments.parse_spec(t, losses=tuple(losses)) for t in texts]
  used = {p.loss: losses[p.loss] for p in parsed if p.loss in losses}
  try:
    check_losses(used)
  except (TypeError, ValueError) as e:
    raise ValueError(f"--loss-file {source}: {e}") from None
  return texts, parsed, used


def _bound(fn: Callable, name: str, params: dict, task: str) -> Callable:
  """``fn`` with a spec's numbers bound, as ``check_loss`` calls it.

  ``check_loss`` draws one-hot targets for multiclass; ``compare_losses``
  passes class indices, so those are what the loss sees here too.
  """
  numbers = functools.partial(fn, **params)
  if task == "multiclass":
    import jax.numpy as jnp
    def loss(predictions, targets):
      return numbers(predictions, jnp.argmax(targets, axis=-1).astype(jnp.int32))
  else:
    def loss(predictions, targets):
      return numbers(predictions, targets)
  args = ",".join(f"{k}={v:g}" for k, v in params.items())
  loss.__name__ = loss.__qualname__ = f"{name}({args})" if args else name
  return loss


def check_user_losses(parsed, used: Mapping[str, Callable], task: str, *, num_classes: int,
                      say: Callable[..., None]) -> None:
  """Runs ``checks.check_loss`` on every user loss of ``parsed`` with its numbers.

  Prints one status line per loss through ``say``; a loss that fails a
  ``REQUIRED`` property prints its report on stderr and raises ValueError.
  """
  from lossreg_jax import checks
  seen = set()
  for spec in parsed:
    if spec.loss not in used:
      continue
    params = dict(spec.loss_params)
    key = (spec.loss, tuple(sorted(params.items())))
    if key in seen:
      continue
    seen.add(key)
    fn = _bound(used[spec.loss], spec.loss, params, task)
    try:
      # Training feeds standardized inputs and targets: an extreme scale of 30
      # (not check_loss's 1e3) is the range a comparison reaches, so a loss
      # built on exp (LINEX) is judged where it is used.
      report = checks.check_loss(fn, task=task, num_classes=max(num_classes, 2),
                                 extreme_scale=30.0)
    except SystemExit as e:  # the user's loss, called with test inputs, exited
      raise ValueError(f"--loss-file: {fn.__name__} called sys.exit({e.code!r}) while "
                       f"being checked; a loss must return a value") from None
    failed = [r.name for r in report.failures
              if r.name in REQUIRED and not r.detail.startswith("not run")]
    if failed:
      print(report, file=sys.stderr)
      raise ValueError(
          f"--loss-file: your loss {fn.__name__} (spec {spec.text!r}) fails "
          f"{', '.join(failed)} on {task} inputs (the report above); training needs "
          f"{', '.join(REQUIRED)}")
    _probe(used[spec.loss], params, task, num_classes, fn.__name__, spec.text)
    others = [r.name for r in report.failures]
    say(f"checked your loss {fn.__name__} on {task} inputs: {len(report.results) - len(others)}"
        f"/{len(report.results)} properties hold" +
        (f" (not: {', '.join(others)})" if others else ""))


def _probe(fn: Callable, params: dict, task: str, num_classes: int, label: str,
           spec: str) -> None:
  """Traces ``fn`` as ``compare_losses`` calls it; raises ValueError if that fails.

  ``check_loss`` binds the numbers as constants and draws float targets;
  training passes a minibatch ``(n,)`` or ``(n, C)`` of outputs, int32 labels
  (float32 regression targets), ``where=`` and the numbers as traced scalars,
  and needs a scalar back. Tracing compiles nothing.
  """
  import jax
  import jax.numpy as jnp
  n = 8
  z = jax.ShapeDtypeStruct((n, num_classes) if task == "multiclass" else (n,), jnp.float32)
  t = jax.ShapeDtypeStruct((n,), jnp.float32 if task == "regression" else jnp.int32)
  mask = jax.ShapeDtypeStruct((n,), jnp.bool_)
  numbers = {k: jax.ShapeDtypeStruct((), jnp.float32) for k in params}
  called = (f"as training calls it (predictions {z.shape}, {t.dtype} targets, where=, the "
            f"numbers as traced scalars)")
  try:
    out = jax.eval_shape(lambda z, t, w, kw: fn(z, t, where=w, **kw), z, t, mask, numbers)
  except SystemExit as e:
    raise ValueError(f"--loss-file: your loss {label} called sys.exit({e.code!r}) {called}"
                     ) from None
  except Exception as e:  # the user's loss may raise anything
    raise ValueError(f"--loss-file: your loss {label} (spec {spec!r}) fails {called}: "
                     f"{_first_line(e)}") from None
  if getattr(out, "shape", None) != ():
    raise ValueError(f"--loss-file: your loss {label} (spec {spec!r}) must return a scalar "
                     f"(the mean over the rows where= includes), got shape "
                     f"{getattr(out, 'shape', type(out).__name__)} for predictions {z.shape}")
