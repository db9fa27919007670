"""The argument parser of the ``lossreg-jax`` command (``cli.build_parser``).

Parse errors are one line on stderr with exit code 2 (no usage block): a bad
choice lists the choices, and an unknown option gets the closest known one
(``suggest_option``) when there is one.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

__all__ = ["build_parser", "subparser", "suggest_option"]

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
  on the training batches: noise:STDDEV   mixup:ALPHA   early_stopping:PATIENCE
                 augment:rotation=DEG,shift=F,zoom=F,flip=0|1 (images, --model cnn)
  your losses:   NAME[:KEY=VALUE,...] for a function NAME of --loss-file (keywords)
  A spec with regularizers only uses bce (binary), ce (multiclass) or mse (regression).
  Penalties apply to weight matrices, not biases. Values are plain numbers; one value
  may be swept as A|B|C (focal:gamma=0|1|2 is three specs).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
  """Shows defaults, except None (an option that is off unless given says so in its help)."""

  def _get_help_string(self, action):
    return action.help if action.default is None else super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
  """An ``ArgumentParser`` whose errors are one line: ``PROG: error: MESSAGE``.

  argparse prints the whole usage block first (15 lines for ``compare``);
  ``--help`` still shows it. Subparsers are of this class too.
  """

  def error(self, message: str):
    if message.startswith("the following arguments are required"):
      message += f" (see '{self.prog} --help')"
    self.exit(2, f"{self.prog}: error: {message}\n")


def suggest_option(parser: argparse.ArgumentParser, word: str) -> str | None:
  """The option string of ``parser`` closest to the unknown ``word``, or None.

  Examples:
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--learning-rate")
    >>> suggest_option(p, "--learning_rate=0.1"), suggest_option(p, "--zzz")
    ('--learning-rate', None)
  """
  options = [s for action in parser._actions for s in action.option_strings]
  word = word.split("=", 1)[0]
  close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
  return close[0] if close else None


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
  """The subparser of ``command`` in a parser made by :func:`build_parser`."""
  action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
  return action.choices[command]


def _common(parser: argparse.ArgumentParser, out: str = "compare") -> None:
  # SUPPRESS: an option given before the subcommand is not overwritten by the
  # subparser's default; defaults are filled in by _defaults().
  group = parser.add_argument_group("common options")
  group.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                     help="no progress bars or status lines (results are still printed)")
  group.add_argument("--seed", type=int, default=argparse.SUPPRESS,
                     help="random seed (default 0)")
  group.add_argument("--out", type=Path, default=argparse.SUPPRESS, help={
      "compare": "folder for report.md, results.json and plots (default lossreg_out); "
                 "replaced as a whole by each run, never left half-written",
      "optional": "also write report.md and results.json to this folder (default: none, "
                  "only print); replaced as a whole, never left half-written",
      "top": "report folder (compare and path: default lossreg_out; check and bench: "
             "none unless given)"}[out])
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
  group.add_argument("--delimiter", metavar="CHAR",
                     help="CSV cell separator: ',', ';', tab (or 'tab') or another character "
                          "(default: detected among comma, semicolon and tab)")


def build_parser() -> argparse.ArgumentParser:
  """Returns the ``argparse`` parser of the ``lossreg-jax`` command."""
  parser = _Parser(
      prog=PROG, formatter_class=_Formatter,
      description="Compare losses and regularizers on real data with JAX.",
      epilog="examples:\n  lossreg-jax compare --loss bce --loss 'bce:positive_weight=3'\n"
             "  lossreg-jax path --vs-sklearn\n  lossreg-jax check mylosses:my_loss --task binary\n"
             "  lossreg-jax bench --size small\n  lossreg-jax info\n\nRun 'lossreg-jax COMMAND --help' for details.")
  from lossreg_jax import __version__
  parser.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                      help="print the version and exit ('lossreg-jax info' also names the "
                           "compile cache, JAX and scikit-learn)")
  _common(parser, "top")
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
                  "ECE; multiclass: the same (macro; AUC one-vs-rest); regression: MSE, RMSE, "
                  "MAE, R², pinball loss, share under-predicted.",
      epilog=_SPEC_HELP + "\ndefault specs (the first is the baseline):\n"
             "  binary      bce, bce:positive_weight=3, focal:gamma=2\n"
             "  multiclass  ce, ce:label_smoothing=0.1, ce+l2:1e-3\n"
             "  regression  mse, huber:delta=1, asymmetric:under=1,over=0.1\n"
             "  with a regression --cost and no --loss, the third is the loss the cost implies:\n"
             "    under=U,over=O,squared -> asymmetric:under=U,over=O (minimized by the "
             "cost-optimal expectile)\n"
             "    under=U,over=O         -> quantile:q=U/(U+O) (the pinball loss, minimized by "
             "the cost-optimal quantile)\n"
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
             "  lossreg-jax compare --loss 'focal:gamma=0|1|2'   # three specs, one per gamma\n"
             "  lossreg-jax compare --dataset digits --model cnn:channels=8 --loss ce --loss 'ce+dropout:0.3'\n"
             "  lossreg-jax compare --loss-file my_losses.py --loss bce --loss 'poly1:epsilon=2'\n"
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
  p.add_argument("--model", metavar="MODEL",
                 help="the model every spec trains: linear, mlp:hidden=H,layers=L or "
                      "cnn:channels=C (images: --dataset digits as 8x8x1); default: the "
                      "MLP of --hidden")
  p.add_argument("--devices", type=int, metavar="N",
                 help="split the repeats x folds over the first N local devices (default: "
                      "all; each device trains its folds, results equal one device's)")
  p.add_argument("--hidden", type=int,
                 help="hidden ReLU units of the default MLP (default 16); 0 for a linear "
                      "model; with --model, write them in it (mlp:hidden=H)")
  p.add_argument("--loss-file", type=Path, metavar="FILE.py",
                 help="a Python file of your losses: each public function defined there, "
                      "loss(predictions, targets, *, weights=None, where=None, **numbers) -> "
                      "scalar, is a loss NAME for --loss, with KEY=VALUE numbers as keywords "
                      "(checked with lossreg_jax.checks.check_loss before training)")
  p.add_argument("--confidence", type=float, default=0.95,
                 help="coverage of the paired confidence intervals")
  p.add_argument("--target-recall", type=float, default=0.95,
                 help="binary: report each spec's threshold and precision at this recall")
  p.add_argument("--positive-label", metavar="LABEL",
                 help="binary: the class that is positive (class 1: what recall, fn and fp "
                      "refer to), a value of the target column or a class name (default: "
                      "the label that sorts second; breast_cancer: malignant)")
  costs = p.add_argument_group(
      "what mistakes cost (adds the expected cost at the default, cost-derived and "
      "training-tuned decisions, a cost table and cost.png)")
  costs = costs.add_mutually_exclusive_group()
  costs.add_argument("--cost", metavar="COSTS",
                     help="binary 'fn=5,fp=1' (a false negative costs 5, a false positive "
                          "1); regression 'under=3,over=1' (per unit of error; add "
                          "',squared' for per squared unit; without --loss, the loss it "
                          "implies replaces the third default spec, see below)")
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
  _common(p, "optional")

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
  _common(p, "optional")

  sub.add_parser(
      "info", formatter_class=_Formatter,
      help="versions, devices, the compile cache and optional packages",
      description="Print the version (as --version), Python, JAX and its backend, the "
                  "persistent compilation cache folder and its size, whether scikit-learn "
                  "(path --vs-sklearn, bench) is installed, and the bundled data sets.",
      epilog="examples:\n  lossreg-jax info")
  return parser
