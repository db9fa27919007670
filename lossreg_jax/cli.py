"""The ``lossreg-jax`` command: parses arguments, calls the library, prints.

The work behind each subcommand lives in the library (``experiments.compare_losses``,
``experiments.regularization_path``, ``experiments.write_report``,
``checks.check_loss``, ``benchmarks/run.py``); this module only parses, loads
data and reports. Bad input ends with a one-line message on stderr and exit
code 2 (argparse's convention), never a traceback; numeric options and
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

__all__ = ["build_parser", "main"]

PROG = "lossreg-jax"
_SPEC_HELP = """\
loss / regularizer specs (--loss, repeatable):
  A spec is TERM(+TERM)* with at most one loss; TERM is NAME or NAME:ARGS, ARGS
  either KEY=VALUE pairs joined by commas or one value (l1, l2, dropout).
  classification: bce[:positive_weight=W,label_smoothing=S]   focal[:alpha=A,gamma=G]
                 hinge    ce[:label_smoothing=S] (softmax; the only loss for multiclass)
  regression:    mse   mae   huber[:delta=D]   log_cosh   quantile[:q=Q]
                 asymmetric[:under=U,over=O] (squared error; under-predictions weigh U)
                 (regression losses see the target standardized per fold: D is in stds)
  regularizers:  l2:STRENGTH   l1:STRENGTH   elastic:alpha=A,l1_ratio=R   dropout:RATE
                 ensemble:M (M bagged members per fold, probabilities averaged)
  A spec with regularizers only uses bce (binary), ce (multiclass) or mse (regression).
  Penalties apply to weight matrices, not biases. Values are plain numbers.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
  pass


class UsageError(Exception):
  """Bad input found after parsing: reported on stderr with exit code 2."""


def _common(parser: argparse.ArgumentParser) -> None:
  # SUPPRESS: an option given before the subcommand is not overwritten by the
  # subparser's default; defaults are filled in by _defaults().
  group = parser.add_argument_group("common options")
  group.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                     help="no progress bars or status lines (results are still printed)")
  group.add_argument("--seed", type=int, default=argparse.SUPPRESS,
                     help="random seed (default 0)")
  group.add_argument("--out", type=Path, default=argparse.SUPPRESS,
                     help="folder for report.md, results.json and plots (default lossreg_out); "
                          "replaced as a whole by each run, never left half-written")
  group.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS,
                     help="do not use the persistent compilation cache (default: "
                          "$LOSSREG_JAX_CACHE, else $XDG_CACHE_HOME/lossreg_jax/xla)")


def _data_options(parser: argparse.ArgumentParser, default: str) -> None:
  from lossreg_jax import datasets
  group = parser.add_argument_group("data (a bundled set, or your CSV file)")
  group.add_argument("--dataset", default=default, choices=datasets.list_datasets(),
                     help="bundled data set")
  group.add_argument("--csv", type=Path, metavar="FILE",
                     help="CSV file with a header row; every column but --target is a feature")
  group.add_argument("--target", metavar="COLUMN", help="target column of --csv")
  group.add_argument("--drop-missing", action="store_true",
                     help="drop CSV rows with empty or NaN cells instead of failing")
  group.add_argument("--features", nargs="+", metavar="COLUMN",
                     help="CSV feature columns to use (default: all but --target); text "
                          "columns are one-hot encoded")
  group.add_argument("--drop", nargs="+", metavar="COLUMN", help="CSV columns to leave out")


def build_parser() -> argparse.ArgumentParser:
  """Returns the ``argparse`` parser of the ``lossreg-jax`` command."""
  parser = argparse.ArgumentParser(
      prog=PROG, formatter_class=_Formatter,
      description="Compare losses and regularizers on real data with JAX.",
      epilog="examples:\n  lossreg-jax compare --loss bce --loss 'bce:positive_weight=3'\n"
             "  lossreg-jax path --vs-sklearn\n  lossreg-jax check mylosses:my_loss --task binary\n"
             "  lossreg-jax bench --size small\n\nRun 'lossreg-jax COMMAND --help' for details.")
  from lossreg_jax import __version__
  parser.add_argument("--version", action="version",
                      version=f"{PROG} {__version__}\ncompile cache: {_cache.cache_dir() or 'off'}")
  _common(parser)
  sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

  p = sub.add_parser(
      "compare", formatter_class=_Formatter,
      help="compare losses/regularizers with repeated k-fold CV and paired tests",
      description="Train the same model under each loss / regularizer spec on the same "
                  "repeated k-fold cross-validation folds (all R x k folds of a spec as one "
                  "vmapped program), report held-out metrics (mean ± std over folds) and "
                  "compare every spec with the first: the paired difference per metric with "
                  "its confidence interval from the corrected resampled t-test (Nadeau & "
                  "Bengio 2003). Binary: accuracy, precision, recall, F1, ROC AUC, Brier, "
                  "ECE; multiclass: the same (macro) without AUC; regression: MSE, RMSE, "
                  "MAE, R², pinball loss, share under-predicted.",
      epilog=_SPEC_HELP + "\ndefault specs (the first is the baseline):\n"
             "  binary      bce, bce:positive_weight=3, focal:gamma=2\n"
             "  multiclass  ce, ce:label_smoothing=0.1, ce+l2:1e-3\n"
             "  regression  mse, huber:delta=1, asymmetric:under=1,over=0.1\n"
             "--dataset macrodata without --target forecasts next-quarter real GDP growth "
             "(experiments.next_quarter_growth).\n"
             "\nexamples:\n"
             "  lossreg-jax compare                       # breast cancer: bce, bce:positive_weight=3, focal:gamma=2\n"
             "  lossreg-jax compare --dataset breast_cancer --repeats 3   # paired intervals over 3 x 5 folds\n"
             "  lossreg-jax compare --dataset macrodata   # next-quarter GDP growth: mse, huber, asymmetric\n"
             "  lossreg-jax compare --dataset digits      # multiclass defaults\n"
             "  lossreg-jax compare --loss 'focal:alpha=0.25,gamma=2' --loss 'bce+l2:1e-3' --folds 3\n"
             "  lossreg-jax compare --loss bce --loss 'bce+ensemble:5'   # bagged ensemble of 5\n"
             "  lossreg-jax compare --dataset wine --loss ce --loss 'ce:label_smoothing=0.1+dropout:0.2'\n"
             "  lossreg-jax compare --dataset diabetes --loss mse --loss 'quantile:q=0.9'\n"
             "  lossreg-jax compare --cost fn=5,fp=1      # a missed positive costs 5x a false alarm\n"
             "  lossreg-jax compare --dataset diabetes --cost under=3,over=1,squared\n"
             "  lossreg-jax compare --csv data.csv --target label --out results/")
  _data_options(p, "breast_cancer")
  p.add_argument("--task", choices=("binary", "multiclass", "regression"),
                 help="override the task guessed from the target (e.g. integer-valued "
                      "counts as regression)")
  p.add_argument("--loss", action="append", metavar="SPEC", dest="specs",
                 help="a loss / regularizer spec (repeatable; the first is the baseline; "
                      "default: the task's default specs, listed below)")
  p.add_argument("--folds", type=int, default=5, help="cross-validation folds")
  p.add_argument("--repeats", type=int, default=1,
                 help="repetitions of k-fold CV (R x k paired folds; reshuffled each time)")
  p.add_argument("--epochs", type=int, default=30, help="training epochs per fold")
  p.add_argument("--batch-size", type=int, default=32, help="minibatch size")
  p.add_argument("--learning-rate", type=float, default=3e-3, help="Adam learning rate")
  p.add_argument("--hidden", type=int, default=16,
                 help="hidden ReLU units of the MLP; 0 for a linear model")
  p.add_argument("--confidence", type=float, default=0.95,
                 help="coverage of the paired confidence intervals")
  p.add_argument("--target-recall", type=float, default=0.95,
                 help="binary: report each spec's threshold and precision at this recall")
  costs = p.add_argument_group(
      "what mistakes cost (adds the expected cost at the default, cost-derived and "
      "training-tuned decisions, a cost table and cost.png)")
  costs = costs.add_mutually_exclusive_group()
  costs.add_argument("--cost", metavar="COSTS",
                     help="binary 'fn=5,fp=1' (a false negative costs 5, a false positive "
                          "1); regression 'under=3,over=1' (per unit of error; add "
                          "',squared' for per squared unit)")
  costs.add_argument("--cost-matrix", type=Path, metavar="FILE.csv",
                     help="a C x C cost matrix, rows = true class, columns = predicted "
                          "class (an optional header row / index column of class names)")
  p.add_argument("--allow-cost-diagonal", action="store_true",
                 help="accept non-zero costs for correct decisions in --cost-matrix")
  _common(p)

  p = sub.add_parser(
      "path", formatter_class=_Formatter, help="elastic-net path and CV curve",
      description="Elastic-net regularization path and cross-validated alpha "
                  "(lossreg_jax.linear), with coefficient-path and CV-curve plots.",
      epilog="examples:\n  lossreg-jax path                          # diabetes\n"
             "  lossreg-jax path --l1-ratio 0.9 --cv 10 --vs-sklearn\n"
             "  lossreg-jax path --dataset macrodata --standardize")
  _data_options(p, "diabetes")
  p.add_argument("--l1-ratio", type=float, default=0.5, help="elastic-net mix in (0, 1]")
  p.add_argument("--n-alphas", type=int, default=100, help="length of the alpha grid")
  p.add_argument("--eps", type=float, default=1e-3, help="alpha_min / alpha_max")
  p.add_argument("--cv", type=int, default=5, help="cross-validation folds (KFold)")
  p.add_argument("--standardize", action="store_true",
                 help="scale every feature to zero mean and unit variance first")
  p.add_argument("--vs-sklearn", action="store_true",
                 help="also time scikit-learn's ElasticNetCV on the same grid and folds")
  _common(p)

  p = sub.add_parser(
      "check", formatter_class=_Formatter, help="check the properties of your loss function",
      description="Import FUNCTION from MODULE (a module name, or a .py file) and run "
                  "lossreg_jax.checks.check_loss on it; the report (report.md, "
                  "results.json) goes to --out. Exit code 1 if a property fails.",
      epilog="examples:\n  lossreg-jax check mylosses:asymmetric_mse\n"
             "  lossreg-jax check ./losses.py:focal --task binary\n"
             "  lossreg-jax check lossreg_jax.losses:hinge_loss --task regression")
  p.add_argument("target_fn", metavar="MODULE:FUNCTION", help="the loss to check")
  p.add_argument("--task", choices=("regression", "binary", "multiclass"),
                 default="regression", help="kind of predictions and targets to test with")
  _common(p)

  p = sub.add_parser(
      "bench", formatter_class=_Formatter, help="run the benchmarks (source checkout only)",
      description="Run benchmarks/run.py from a source checkout and print its table "
                  "(sizes: small for CPUs, full for the GPU shapes); --out also gets the "
                  "table (report.md) and the results (results.json).",
      epilog="examples:\n  lossreg-jax bench --size small\n  lossreg-jax bench --only losses linear")
  p.add_argument("--size", default="small", help="problem size passed to benchmarks/run.py")
  p.add_argument("--only", nargs="+", metavar="NAME",
                 help="run only these sections (e.g. losses, large_vocab, linear)")
  p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
  _common(p)
  return parser


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


def _load_data(args):
  from lossreg_jax import datasets
  columns = [c for option in ("features", "drop")
             for c in _split_names(getattr(args, option))] if args.csv is None else []
  if args.csv is None:
    if args.target is not None and args.dataset != "macrodata":
      raise UsageError("--target needs --csv (or --dataset macrodata)")
    if columns:
      raise UsageError("--features and --drop need --csv")
    return datasets.load(args.dataset, target=args.target), args.dataset
  if args.target is None:
    raise UsageError("--csv needs --target COLUMN")
  features, drop = _split_names(args.features), _split_names(args.drop)
  return datasets.load_csv(args.csv, target=args.target, drop_missing=args.drop_missing,
                           features=features or None, drop=drop or None), str(args.csv)


def _split_names(values) -> list[str]:
  """``--features a,b c`` -> ``["a", "b", "c"]``."""
  return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def _compare_command(args, specs) -> str:
  """The command line that reproduces this run (every effective option)."""
  import shlex
  parts = [PROG, "compare"]
  if args.csv is not None:
    parts += ["--csv", str(args.csv), "--target", args.target] + (
        ["--drop-missing"] if args.drop_missing else [])
  else:
    parts += ["--dataset", args.dataset] + (["--target", args.target] if args.target else [])
  if args.task:
    parts += ["--task", args.task]
  for spec in specs:
    parts += ["--loss", spec]
  for option in ("folds", "repeats", "epochs", "batch_size", "learning_rate", "hidden",
                 "confidence", "target_recall", "seed"):
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
  from lossreg_jax import experiments
  if args.specs:
    for s in args.specs:  # fail fast, before loading data
      experiments.parse_spec(s)
  cost = _read_cost(args)
  if args.csv is None and args.dataset == "macrodata" and args.target is None:
    data, name = experiments.next_quarter_growth(), "macrodata (next-quarter real GDP growth)"
  elif args.csv is not None and args.task is not None and args.target is not None:
    from lossreg_jax import datasets  # --task decides how the CSV's target column is read
    features, drop = _split_names(args.features), _split_names(args.drop)
    data, name = datasets.load_csv(args.csv, target=args.target, task=args.task,
                                   drop_missing=args.drop_missing, features=features or None,
                                   drop=drop or None), str(args.csv)
  else:
    data, name = _load_data(args)
  task = args.task or data.task
  specs = args.specs or list(experiments.default_specs(task))
  _say(args, f"{name}: {data.X.shape[0]} rows, {data.X.shape[1]} features, task {task}; "
             f"{len(specs)} specs x {args.repeats} x {args.folds} folds")
  start = time.perf_counter()
  started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  result = experiments.compare_losses(
      data.X, data.y, specs, task=task, folds=args.folds, repeats=args.repeats,
      seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
      learning_rate=args.learning_rate, hidden=args.hidden, confidence=args.confidence,
      target_recall=args.target_recall, cost=cost, progress=not args.quiet)
  print(result.table())
  if cost is not None:
    spec, metric, value = result.best_decision()
    print(f"\ncosts: {cost.describe()}; lowest mean expected cost per row: {spec!r} at "
          f"its {metric.removeprefix('cost_')} decision ({value:.4g}); see report.md")
  context = {"data": name,
             ("target" if task == "regression" else "classes"): ", ".join(data.target_names),
             "command": _compare_command(args, specs),
             "started": started,
             "wall seconds": round(time.perf_counter() - start, 2),
             "compile cache": _cache_line(args)}
  written = experiments.write_report(result, args.out, context=context)
  _say(args, f"wrote {', '.join(p.name for p in written)} to {args.out}")
  return 0


def _path(args) -> int:
  from lossreg_jax import experiments
  if args.vs_sklearn and importlib.util.find_spec("sklearn") is None:
    print(f"{PROG} path: --vs-sklearn needs scikit-learn, which is not installed (it is a "
          f"test extra only): pip install scikit-learn", file=sys.stderr)
    return 1
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


_COMMANDS = {"compare": _compare, "path": _path, "check": _check, "bench": _bench}


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
      args = _defaults(parser.parse_args(words))
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
      return int(e.code or 0)
    interrupt.command = args.command
    try:
      _check_options(args)
      # Before any compilation; bench times compilation itself, so it runs uncached.
      args.cache_dir = _cache.configure_compilation_cache(
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
