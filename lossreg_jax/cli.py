"""The ``lossreg-jax`` command: parses arguments, calls the library, prints.

The work behind each subcommand lives in the library (``experiments.compare_losses``,
``experiments.regularization_path``, ``experiments.write_report``,
``checks.check_loss``, ``benchmarks/run.py``); this module only parses, loads
data and reports; the parser is built in ``_cli_args``, ``compare --model`` and
``--loss-file`` are read and checked in ``_cli_compare``. Bad input ends with a
one-line message on stderr and exit code 2 (argparse's convention), never a
traceback: a parse error without argparse's usage block, an unknown option
with the closest known one, a missing optional package (scikit-learn) with
the ``pip install`` line that brings it; numeric options and
``--out`` are checked before any work starts. Ctrl-C at any moment after the
command starts ends with one line on stderr and exit code 130; reports are
written atomically (``experiments.write_report``), so an interrupted run
leaves the previous report in ``--out`` as it was.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from lossreg_jax import _cache
from lossreg_jax._cli_args import PROG, build_parser, subparser, suggest_option

__all__ = ["build_parser", "main"]

# What `pip install` line brings scikit-learn (pyproject.toml's test extra).
_SKLEARN_EXTRA = "pip install 'lossreg-jax[test]' (or: pip install scikit-learn)"


class UsageError(Exception):
  """Bad input found after parsing: reported on stderr with exit code 2."""


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
  # compare and path always write a report (default folder lossreg_out);
  # check and bench only when --out is given.
  args.out_given = hasattr(args, "out")
  for name, value in (("quiet", False), ("seed", 0), ("out", Path("lossreg_out")),
                      ("no_cache", False)):
    if not hasattr(args, name):
      setattr(args, name, value)
  return args


def _say(args, *lines: str) -> None:
  if not args.quiet:
    print(*lines, sep="\n", file=sys.stderr)


def _cache_line(args) -> str:
  if args.cache_dir is None:
    return "off"
  stats = _cache.cache_stats()
  # A snapshot before the report is drawn (its plots compile a few more programs).
  return f"{args.cache_dir} ({stats['hits']} hits, {stats['writes']} new entries)"


def _load_data(args, task: str | None = None):
  """The data of ``--dataset`` or ``--csv`` (read for ``task`` if given) and its name."""
  from lossreg_jax import datasets
  if args.csv is None:
    if args.target is not None and args.dataset != "macrodata":
      raise UsageError("--target needs --csv (or --dataset macrodata)")
    if _split_names(args.features) or _split_names(args.drop):
      raise UsageError("--features and --drop need --csv")
    if args.delimiter is not None:
      raise UsageError("--delimiter needs --csv")
    return datasets.load(args.dataset, target=args.target), args.dataset
  if args.target is None:
    raise UsageError("--csv needs --target COLUMN")
  features, drop = _split_names(args.features), _split_names(args.drop)
  return datasets.load_csv(args.csv, target=args.target, task=task,
                           drop_missing=args.drop_missing, delimiter=_delimiter(args),
                           features=features or None, drop=drop or None), str(args.csv)


def _delimiter(args) -> str | None:
  """``--delimiter``: one character, or tab / comma / semicolon by name; None: detect."""
  text = args.delimiter
  if text is None:
    return None
  named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(text.lower(), text)
  if len(named) != 1:
    raise UsageError(f"--delimiter must be one character (or tab, comma, semicolon), got "
                     f"{text!r}")
  return named


def _split_names(values) -> list[str]:
  """``--features a,b c`` -> ``["a", "b", "c"]``."""
  return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def _compare_command(args, specs, model, hidden: int) -> str:
  """The command line that reproduces this run (every effective option)."""
  import shlex
  parts = [PROG, "compare"]
  if args.csv is not None:
    parts += ["--csv", str(args.csv), "--target", args.target] + (
        ["--drop-missing"] if args.drop_missing else []) + (
        ["--delimiter", args.delimiter] if args.delimiter else [])
  else:
    parts += ["--dataset", args.dataset] + (["--target", args.target] if args.target else [])
  if args.task:
    parts += ["--task", args.task]
  if args.positive_label is not None:
    parts += ["--positive-label", args.positive_label]
  if args.loss_file is not None:
    parts += ["--loss-file", str(args.loss_file)]
  for spec in specs:
    parts += ["--loss", spec]
  parts += ["--model", model.text] if model is not None else ["--hidden", f"{hidden:g}"]
  for option in ("folds", "repeats", "epochs", "batch_size", "learning_rate", "confidence",
                 "target_recall", "seed"):
    parts += ["--" + option.replace("_", "-"), f"{getattr(args, option):g}"]
  if args.cost is not None:
    parts += ["--cost", args.cost]
  if args.cost_matrix is not None:
    parts += ["--cost-matrix", str(args.cost_matrix)] + (
        ["--allow-cost-diagonal"] if args.allow_cost_diagonal else [])
  return shlex.join(parts + ["--out", str(args.out)])


def _read_cost(args):
  """``--cost`` / ``--cost-matrix`` -> a DecisionCost, or None; bad input raises UsageError."""
  from lossreg_jax import experiments
  if args.allow_cost_diagonal and args.cost_matrix is None:
    raise UsageError("--allow-cost-diagonal only applies to --cost-matrix")
  try:
    if args.cost is not None:
      return experiments.parse_cost(args.cost)
    if args.cost_matrix is not None:
      return experiments.read_cost_matrix(args.cost_matrix,
                                          allow_diagonal=args.allow_cost_diagonal)
  except (ValueError, FileNotFoundError) as e:
    raise UsageError(f"--cost{'-matrix' if args.cost is None else ''}: {e}") from None
  return None


def _compare(args) -> int:
  import datetime
  from lossreg_jax import _cli_compare as user
  from lossreg_jax import experiments
  # Fail fast, before loading data: the model, the loss file, the specs, the costs.
  model = user.read_model(args.model)
  if model is not None and args.hidden is not None:
    raise UsageError(f"--hidden sets the default MLP; with --model, write the units in it "
                     f"(--model mlp:hidden={args.hidden})")
  # The hidden units compare_losses reports (and uses without --model).
  hidden = model.settings.get("hidden", 0) if model is not None else (
      16 if args.hidden is None else args.hidden)
  losses = {} if args.loss_file is None else user.load_loss_file(args.loss_file)
  _, parsed, used = user.parse_specs(args.specs or (), losses, args.loss_file)
  cost = _read_cost(args)
  if args.csv is None and args.dataset == "macrodata" and args.target is None:
    data, name = experiments.next_quarter_growth(), "macrodata (next-quarter real GDP growth)"
  else:  # --task decides how a CSV's target column is read
    data, name = _load_data(args, task=args.task if args.target is not None else None)
  task = args.task or data.task
  data, classes = _positive_label(args, data, task)
  X = user.model_inputs(model, data, name)
  specs = args.specs or _default_specs(task, cost)
  n_specs = len(user.parse_specs(specs, losses)[0])
  model_text = model.text if model is not None else (
      f"mlp:hidden={hidden},layers=1" if hidden else "linear")
  positive = f" (positive class {classes[1]!r})" if task == "binary" and classes else ""
  _say(args, f"{name}: {X.shape[0]} rows, {user.describe_rows(X)}, task {task}{positive}; "
             f"model {model_text}; {n_specs} specs x {args.repeats} x {args.folds} folds")
  user.check_user_losses(parsed, used, task, num_classes=len(data.target_names),
                         say=lambda line: _say(args, line))
  start = time.perf_counter()
  started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  result = experiments.compare_losses(
      X, data.y, specs, model=args.model, losses=used or None, task=task, folds=args.folds,
      repeats=args.repeats, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
      learning_rate=args.learning_rate, hidden=hidden, confidence=args.confidence,
      target_recall=args.target_recall, cost=cost, devices=args.devices,
      progress=not args.quiet)
  # For the report (read by experiments.report): class names by class id, the positive class.
  if classes:
    result.settings["class_names"] = list(classes)
    if task == "binary":
      result.settings["positive_label"] = classes[1]
  print(result.table())
  if cost is not None:
    spec, metric, value = result.best_decision()
    print(f"\ncosts: {cost.describe()}; lowest mean expected cost per row: {spec!r} at "
          f"its {metric.removeprefix('cost_')} decision ({value:.4g}); see report.md")
  context = {"data": name,
             ("target" if task == "regression" else "classes"): ", ".join(data.target_names),
             "command": _compare_command(args, specs, model, hidden),
             "started": started,
             "wall seconds": round(time.perf_counter() - start, 2),
             "compile cache": _cache_line(args)}
  written = experiments.write_report(result, args.out, context=context)
  _say(args, f"wrote {', '.join(p.name for p in written)} to {args.out}")
  return 0


def _default_specs(task: str, cost) -> list[str]:
  """The task's default specs; a regression cost puts the loss it implies third."""
  from lossreg_jax import experiments
  from lossreg_jax.experiments.cost import implied_loss_spec
  specs = list(experiments.default_specs(task))
  if task == "regression" and cost is not None and cost.regression:
    implied = implied_loss_spec(cost)
    specs = specs[:2] + [implied] if implied not in specs[:2] else specs[:2]
  return specs


def _positive_label(args, data, task):
  """Applies ``--positive-label``; returns the data and its class names (None: regression)."""
  import numpy as np
  classes = None if task == "regression" else [str(n) for n in data.target_names]
  if classes is not None and len(classes) != int(np.max(np.asarray(data.y))) + 1:
    classes = None  # --task binary on a target whose names do not index its classes
  if args.positive_label is None:
    return data, classes
  if task != "binary":
    raise UsageError(f"--positive-label applies to a binary target, but the task is {task}")
  label = args.positive_label
  if label not in (classes or ()):  # a number matches as a number: 1.0 is class '1'
    as_number = {f"{float(c):g}": c for c in classes or () if _is_number(c)}
    label = as_number.get(f"{float(label):g}") if _is_number(label) else None
    if label is None:
      raise UsageError(f"--positive-label {args.positive_label!r} is not a class of the "
                       f"target; its classes: {', '.join(classes or ())}")
  if classes.index(label) == 0:  # make it class 1
    data = data._replace(y=1 - data.y, target_names=tuple(reversed(data.target_names)))
    classes = classes[::-1]
  return data, classes


def _is_number(text: str) -> bool:
  try:
    return math.isfinite(float(text))
  except ValueError:
    return False


def _need_sklearn(what: str, tail: str = "") -> None:
  """Raises UsageError (exit 2, one line) when scikit-learn cannot be imported."""
  try:
    import sklearn  # noqa: F401
  except ImportError:
    raise UsageError(f"{what} needs scikit-learn, which is not installed: "
                     f"{_SKLEARN_EXTRA}{tail}") from None


def _path(args) -> int:
  from lossreg_jax import experiments
  if args.vs_sklearn:
    _need_sklearn("--vs-sklearn")
  data, name = _load_data(args)
  X = data.X
  if args.standardize:
    std = X.std(axis=0, keepdims=True)
    X = (X - X.mean(axis=0, keepdims=True)) / (std + (std == 0))
  _say(args, f"{name}: {X.shape[0]} rows, {X.shape[1]} features; target "
             f"{data.target_names[0] if data.task == 'regression' else 'class index'}")
  result = experiments.regularization_path(
      X, data.y.astype("float32"), l1_ratio=args.l1_ratio, n_alphas=args.n_alphas,
      eps=args.eps, cv=args.cv, feature_names=data.feature_names, vs_sklearn=args.vs_sklearn)
  print(result.table())
  from lossreg_jax.experiments.report import _alpha_edge_warning
  warning = _alpha_edge_warning(result)
  if warning:  # also in report.md; shown even with --quiet
    print(f"{PROG} path: warning: {warning}", file=sys.stderr)
  written = experiments.write_report(result, args.out, context={
      "data": name, "standardized": args.standardize, "compile cache": _cache_line(args)})
  _say(args, f"wrote {', '.join(p.name for p in written)} to {args.out}")
  return 0


def _import_function(text: str):
  module_name, sep, fn_name = text.rpartition(":")
  if not sep or not module_name or not fn_name:
    raise UsageError(f"expected MODULE:FUNCTION (e.g. mylosses:my_loss), got {text!r}")
  try:
    if module_name.endswith(".py") or os.sep in module_name:
      path = Path(module_name)
      if not path.is_file():
        raise UsageError(f"file not found: {module_name!r}")
      spec = importlib.util.spec_from_file_location(path.stem, path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
    else:
      if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: local modules import
      module = importlib.import_module(module_name)
  except UsageError:
    raise
  except SystemExit as e:  # the module ran a script's sys.exit() at import
    raise UsageError(f"cannot import {module_name!r}: it called sys.exit({e.code!r}) while "
                     f"being imported (guard its script part with "
                     f"`if __name__ == '__main__':`)") from None
  except Exception as e:  # the user's module may raise anything while importing
    raise UsageError(f"cannot import {module_name!r}: {type(e).__name__}: {e}") from None
  fn = getattr(module, fn_name, None)
  if fn is None:
    raise UsageError(f"module {module_name!r} has no attribute {fn_name!r}")
  if not callable(fn):
    raise UsageError(f"{text!r} is not callable")
  return fn


def _check(args) -> int:
  from lossreg_jax import checks
  fn = _import_function(args.target_fn)
  try:
    report = checks.check_loss(fn, task=args.task)
  except SystemExit as e:  # the user's function, called with test inputs, exited
    raise UsageError(f"{args.target_fn} called sys.exit({e.code!r}) while being checked; a "
                     f"loss must return a value") from None
  print(report)
  if not args.out_given:
    return 0 if report.passed else 1
  from lossreg_jax.experiments._output import atomic_folder
  with atomic_folder(args.out) as tmp:
    (tmp / "report.md").write_text(report.markdown())
    (tmp / "results.json").write_text(json.dumps(report.to_dict(), indent=2))
  _say(args, f"wrote report.md, results.json to {args.out}")
  return 0 if report.passed else 1


def _bench_module():
  try:
    return importlib.import_module("benchmarks.run")
  except ImportError:
    pass
  import lossreg_jax
  script = Path(lossreg_jax.__file__).resolve().parent.parent / "benchmarks" / "run.py"
  if not script.is_file():
    return None
  sys.path.insert(0, str(script.parent.parent))  # benchmarks may import each other
  spec = importlib.util.spec_from_file_location("benchmarks.run", script)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _bench(args) -> int:
  module = _bench_module()
  if module is None or not hasattr(module, "main"):
    print(f"{PROG} bench: benchmarks/run.py was not found. The benchmarks live in the "
          f"source repository, not in the installed package: run this command from a "
          f"source checkout (pip install -e .).", file=sys.stderr)
    return 1
  argv = ["--size", args.size]
  if args.only:
    argv += ["--only", *args.only]
  if args.json:
    argv += ["--json", str(args.json)]
  sizes, sections = getattr(module, "SIZES", None), getattr(module, "SECTIONS", None)
  if sizes is not None and args.size not in sizes:
    raise UsageError(f"--size must be one of {', '.join(sizes)}, got {args.size!r}")
  if sections is not None and args.only:
    known = (*sections, "copy")
    unknown = [s for item in args.only for s in item.split(",") if s and s not in known]
    if unknown:
      raise UsageError(f"--only must name sections among {', '.join(sections)}, got "
                       f"{', '.join(map(repr, unknown))}")
  chosen = [s for item in args.only or sections or () for s in item.split(",") if s]
  if "linear" in chosen:  # it times scikit-learn's ElasticNetCV
    others = " ".join(s for s in sections or () if s != "linear")
    _need_sklearn("the linear benchmark", f"; or skip it: --only {others}" if others else "")
  try:
    if not args.out_given:
      return int(module.main(argv) or 0)
    from lossreg_jax.experiments._output import atomic_folder
    with atomic_folder(args.out) as tmp:
      # benchmarks/run.py rewrites its JSON after every section; the --out
      # folder only appears once the run is complete.
      json_path = args.json or tmp / "results.json"
      if not args.json:
        argv += ["--json", str(json_path)]
      code = int(module.main(argv) or 0)
      if args.json:
        shutil.copyfile(args.json, tmp / "results.json")
      results = json.loads((tmp / "results.json").read_text())
      (tmp / "report.md").write_text(
          f"# lossreg_jax benchmarks (--size {args.size})\n\n```\n"
          f"{module.format_report(results)}\n```\n")
  except SystemExit as e:  # benchmarks/run.py's own argparse error, already printed
    return int(e.code or 0) if isinstance(e.code, int) else 2
  _say(args, f"wrote report.md, results.json to {args.out}")
  return code


def _info(args) -> int:
  """Versions, the backend, the compile cache and the optional packages, one per line."""
  import platform
  import jax
  from lossreg_jax import __version__, datasets
  folder = _cache.cache_dir()
  if folder is None:
    cache = "off ($LOSSREG_JAX_CACHE)"
  elif not folder.is_dir():
    cache = f"{folder} (not created yet)"
  else:
    files = [f for f in folder.rglob("*") if f.is_file()]
    cache = f"{folder} ({len(files)} files, {sum(f.stat().st_size for f in files) / 2**20:.1f} MiB)"
  try:
    import sklearn
    sk = sklearn.__version__
  except ImportError:
    sk = f"not installed (path --vs-sklearn and bench need it: {_SKLEARN_EXTRA})"
  devices = jax.devices()
  print(f"{PROG} {__version__}",
        f"python {platform.python_version()}, jax {jax.__version__}, backend "
        f"{jax.default_backend()} ({len(devices)} device{'s' * (len(devices) != 1)}: "
        f"{devices[0].device_kind})",
        f"compile cache: {cache}", f"scikit-learn: {sk}",
        f"data sets: {', '.join(datasets.list_datasets())}", sep="\n")
  return 0


_COMMANDS = {"compare": _compare, "path": _path, "check": _check, "bench": _bench,
             "info": _info}


# Numeric options, checked before any work: dest -> (holds, requirement).
_RANGES = {
    "seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "folds": (lambda v: v >= 2, "an integer >= 2"),
    "repeats": (lambda v: v >= 1, "an integer >= 1"),
    "confidence": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "target_recall": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "learning_rate": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "hidden": (lambda v: v >= 0, "an integer >= 0 (0: logistic regression)"),
    "l1_ratio": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "n_alphas": (lambda v: v >= 1, "an integer >= 1"),
    "eps": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "cv": (lambda v: v >= 2, "an integer >= 2"),
}
_WRITES = ("compare", "path")  # commands that always write a report to --out


def _check_options(args: argparse.Namespace) -> None:
  """Raises UsageError for a numeric option out of range or an unusable --out."""
  for dest, (holds, requirement) in _RANGES.items():
    value = getattr(args, dest, None)
    if value is not None and not holds(value):
      raise UsageError(f"--{dest.replace('_', '-')} must be {requirement}, got {value!r}")
  if args.command in _WRITES or args.out_given:
    from lossreg_jax.experiments._output import check_out_dir
    try:
      check_out_dir(args.out)
    except ValueError as e:
      raise UsageError(str(e).replace("out_dir", "--out", 1)) from None


class _Interrupt:
  """SIGINT handler of ``main``: one line on stderr, then exit code 130.

  The handler ends the process with ``os._exit`` at once, from wherever the
  main thread is (inside a JAX callback, a destructor run by the garbage
  collector, ...): raising ``KeyboardInterrupt`` there can be swallowed
  ("Exception ignored in ...") or leave XLA's threads running into interpreter
  teardown, which crashed (exit -11). The temporary folder of an unfinished
  report is removed first; the report swap itself holds SIGINT back, so the
  previous report is either intact or fully replaced.
  """

  def __init__(self, command: str | None = None):
    self.command = command  # set once the arguments are parsed
    self.previous = None

  def __call__(self, signum, frame) -> None:
    output = sys.modules.get("lossreg_jax.experiments._output")
    if output is not None:
      output.discard_pending()
    for stream in (sys.stdout, sys.stderr):
      try:
        stream.flush()
      except Exception:  # noqa: BLE001 - a closed pipe must not stop the exit
        pass
    who = PROG if self.command is None else f"{PROG} {self.command}"
    os.write(2, f"{chr(10) if _mid_line() else ''}{who}: interrupted\n".encode())
    os._exit(130)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self.previous = signal.signal(signal.SIGINT, self)
    return self

  def __exit__(self, *exc) -> None:
    if self.previous is not None:
      signal.signal(signal.SIGINT, self.previous)


def _mid_line() -> bool:
  """Whether a progress bar may have left stderr mid-line.

  True on a terminal, and wherever a tqdm bar is open: a bar written to a pipe
  ends its line with ``\r``, not a newline, so the message would join it.
  """
  tqdm = sys.modules.get("tqdm")
  try:
    return sys.stderr.isatty() or bool(tqdm is not None and tqdm.tqdm._instances)
  except Exception:  # noqa: BLE001
    return False


def _unknown_options(parser, unknown: list[str]) -> None:
  """Exits 2 with one line naming the first unknown option and its closest match."""
  word = next((w for w in unknown if w.startswith("-") and not _is_number(w)), None)
  close = suggest_option(parser, word) if word else None
  if close:
    parser.error(f"unrecognized option {word.split('=', 1)[0]!r}; did you mean {close!r}?")
  parser.error(f"unrecognized arguments: {' '.join(unknown)} (see '{parser.prog} --help')")


def main(argv: Sequence[str] | None = None) -> int:
  """Runs the command with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

  Examples:
    >>> main(["compare", "--loss", "focal:gama=2"])
    2
  """
  words = list(sys.argv[1:] if argv is None else argv)
  # The handler goes first, so Ctrl-C while JAX imports or the arguments parse
  # is handled too; it names the command as soon as one can be seen.
  with _Interrupt(next((w for w in words if w in _COMMANDS), None)) as interrupt:
    parser = build_parser()
    try:
      args, unknown = parser.parse_known_args(words)
      if unknown:  # one line, with the closest option of the subcommand
        _unknown_options(subparser(parser, args.command), unknown)
      args = _defaults(args)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
      return int(e.code or 0)
    interrupt.command = args.command
    try:
      _check_options(args)
      # Before any compilation; bench times compilation itself, so it runs uncached.
      args.cache_dir = None if args.command == "info" else _cache.configure_compilation_cache(
          enabled=not args.no_cache and args.command != "bench", prog=PROG)
      return _COMMANDS[args.command](args)
    except (UsageError, ValueError, FileNotFoundError) as e:
      print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
      return 2
    except OSError as e:  # a full disk, a permission denied while writing
      print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
      return 1
    except KeyboardInterrupt:  # raised without our handler (not the main thread)
      print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
      return 130
