"""Report writer: ``report.md``, ``results.json`` and PNG plots for a result."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Mapping

import numpy as np

from lossreg_jax.experiments import _plots, _plots_sweep
from lossreg_jax.experiments._output import atomic_folder
from lossreg_jax.experiments._plots import better_note as _better
from lossreg_jax.experiments._scoring import DESCRIPTIONS
from lossreg_jax.experiments.compare import ComparisonResult
from lossreg_jax.experiments.cost import COST_METRICS
from lossreg_jax.experiments.result import fmt
from lossreg_jax.experiments.path import PathResult

__all__ = ["write_report"]


def _compare_plots(result: ComparisonResult, out: Path) -> list[Path]:
  """Draws every figure of a comparison, one at a time; returns the paths written."""
  curves = result.curves()
  paths = []
  figures = list(_plots.compare_figures(result, curves))
  for i, sweep in enumerate(result.sweeps, start=1):
    figures.append((f"sweep_{i}.png", lambda s=sweep: _plots_sweep.sweep_figure(result, s)))
  for spec in list(result.examples)[:1]:
    figures.append(("augment.png", lambda s=spec: _plots_sweep.augment_figure(result, s)))
  for name, build in figures:
    paths.append(out / name)
    _plots.save_figure(build(), paths[-1])
  return paths


def _path_plots(result: PathResult, coef_png: Path, cv_png: Path) -> None:
  coef, cv = _plots.path_figures(result)
  _plots.save_figure(coef, coef_png)
  _plots.save_figure(cv, cv_png)


def _context_lines(context: Mapping[str, object]) -> list[str]:
  return [f"- **{k}**: `{v}`" if k == "command" else f"- **{k}**: {v}"
          for k, v in context.items()]


def _compare_markdown(result: ComparisonResult, context, names: list[str]) -> str:
  s = result.settings
  if result.task == "regression":
    what = f"regression ({s['n_samples']} rows, {s['n_features']} features)"
  else:
    what = (f"{result.task} ({s['num_classes']} classes, {s['n_samples']} rows, "
            f"{s['n_features']} features)")
  folds = (f"{s['repeats']} x {s['folds']}-fold" if s["repeats"] > 1 else f"{s['folds']}-fold")
  strat = "" if result.task == "regression" else "stratified "
  lines = ["# Loss / regularizer comparison", ""] + _context_lines(context) + [
      f"- **task**: {what}",
      f"- **model**: {s['model']}" + (f" with {s['hidden']} hidden ReLU units"
                                       if s["hidden"] and s["model"] == "mlp" else "")
      + ", features standardized per fold"
      + (" (and the target, for training)" if result.task == "regression" else ""),
      (f"- **training**: Adam (learning rate {s['learning_rate']:g})"
       if s.get("optimizer", "adam") == "adam" else "- **training**: your optimizer")
      + f", {s['epochs']} epochs, "
      f"batch size {s['batch_size']}, seed {s['seed']}",
      f"- **evaluation**: {folds} {strat}cross-validation (each repeat reshuffled), all "
      f"folds of a spec trained as one vmapped program; every spec on the same folds, "
      f"initializations and minibatch order; scores on held-out rows, mean ± std over folds"
      + (" (macro averages)" if result.task == "multiclass" else ""),
      f"- **data sha256**: `{s['data_sha256'][:16]}…`", "",
      "## Scores", "",
      "| spec | " + " | ".join(result.metrics) + " | seconds |",
      "|---|" + "---|" * (len(result.metrics) + 1)]
  for spec, row in result.summary().items():
    cells = " | ".join(f"{fmt(row[m][0])} ± {fmt(row[m][1])}" for m in result.metrics)
    lines.append(f"| `{spec}` | {cells} | {result.seconds[spec]:.1f} |")
  lines += ["", "Metrics: " + "; ".join(f"**{m}** {DESCRIPTIONS.get(m, '')}"
                                        for m in result.metrics) + ".", ""]
  if result.paired:
    conf = s.get("confidence", 0.95)
    lines += [f"## Is the difference real? Paired comparison with `{result.baseline}`", "",
              f"Per fold, spec minus `{result.baseline}` on the same rows; mean and "
              f"{conf:.0%} confidence interval from the corrected resampled t-test (Nadeau "
              f"& Bengio 2003: variance (1/J + n_test/n_train)·S² over J = "
              f"{s['repeats'] * s['folds']} folds, {s['repeats'] * s['folds'] - 1} degrees "
              f"of freedom). An interval that contains 0 means the data do not show a "
              f"difference.", "",
              "| spec | metric | difference [CI] | t | p |", "|---|---|---|---|---|"]
    for spec in result.specs[1:]:
      for m in result.metrics:
        p = result.paired[spec][m]
        lines.append(f"| `{spec}` | {m}{_better(m)} | {fmt(p['mean_diff'], sign=True)} "
                     f"[{fmt(p['ci_low'], sign=True)}, {fmt(p['ci_high'], sign=True)}] | "
                     f"{p['t']:.2f} | {p['p_value']:.3f}{' *' if p['p_value'] < 0.05 else ''} |")
    lines += [""]
  if result.task == "binary" and s.get("target_recall") is not None:
    recall = s["target_recall"]
    lines += [f"## Threshold for recall ≥ {recall:g}", "",
              "Instead of re-weighting the loss, one can move the decision threshold on "
              "P(y=1): the highest threshold at which each spec recalls at least "
              f"{recall:g} of the positives (held-out probabilities, repeat 1), and the "
              "precision it keeps there.", "",
              "| spec | threshold | precision | recall |", "|---|---|---|---|"]
    for spec, r in result.threshold_for_recall(recall).items():
      lines.append(f"| `{spec}` | {r['threshold']:.3f} | {r['precision']:.3f} | "
                   f"{r['recall']:.3f} |")
    lines += [""]
  if result.cost is not None:
    lines += _cost_markdown(result)
  lines += ["## Figures", "", "Seconds include compilation; specs that differ only in their "
            "numbers (`bce` and `bce:positive_weight=3`) share one compiled program. Every "
            "figure's numbers are in `results.json`.", ""]
  captions = {"metrics.png": "held-out scores", "differences.png": "paired differences",
              "train_loss.png": "training and held-out loss", "roc_pr.png": "ROC and PR curves",
              "reliability.png": "reliability diagram", "confusion.png": "confusion matrices",
              "predictions.png": "predictions against targets",
              "cost.png": "expected cost against the decision",
              "augment.png": "training images and their augmentation"}
  captions.update({f"sweep_{i}.png": f"metrics against the values of {sweep['spec']}"
                   for i, sweep in enumerate(result.sweeps, start=1)})
  lines += [f"![{captions.get(n, n)}]({n})\n" for n in names]
  return "\n".join(lines)


_DECISIONS = {
    "binary": ("P(y=1) > 0.5", "P(y=1) >= {value}, the cost-derived threshold",
               "the threshold on P(y=1) with the lowest cost on the fold's training rows"),
    "multiclass": ("argmax", "the Bayes decision argmin_j Σ_i p_i·C[i, j]",
                   "the Bayes decision on softmax(z / T), T tuned on the fold's training rows"),
    "regression": ("the prediction", "the prediction + σ·q (σ: the training rows' RMS "
                   "residual, q: the standard normal's τ-{kind}, τ = {tau})",
                   "the prediction + the offset with the lowest cost on the fold's "
                   "training rows"),
}


def _cost_markdown(result: ComparisonResult) -> list[str]:
  """The cost section: each spec's expected cost at three decisions, and the best."""
  cost, task = result.cost, result.task
  default, derived, tuned = _DECISIONS[task]
  if task == "binary":
    fp, fn = cost.binary_costs()
    derived = derived.format(value=f"{fp / (fp + fn):.3g}")
  elif task == "regression":
    derived = derived.format(kind="expectile" if cost.squared else "quantile",
                             tau=f"{cost.under / (cost.under + cost.over):.3g}")
  unit = {"binary": "threshold", "multiclass": "T", "regression": "offset"}[task]
  lines = ["## What the mistakes cost", "",
           f"Costs: {cost.describe()} (`{cost.label}`). Expected cost per held-out row, mean "
           f"± std over folds, at three decisions: **default** = {default}; "
           f"**cost-derived** = {derived} (right for a calibrated model); **tuned** = "
           f"{tuned} (never its held-out rows), then applied to its held-out rows. A loss "
           f"that already weighs the errors (`positive_weight`, `asymmetric`) has moved its "
           f"outputs; the cost-derived decision moves them again, so its default decision "
           f"is the one to read.", "",
           f"The last column compares each row with the baseline `{result.baseline}` at its "
           f"tuned decision, fold by fold (mean difference [{result.settings.get('confidence', 0.95):.0%}"
           f" CI], corrected resampled t-test; negative = cheaper): does a different loss "
           f"beat the plain loss with a moved decision?", "",
           f"| spec | decision | expected cost | {unit} (mean ± std) | vs `{result.baseline}` "
           f"tuned |", "|---|---|---|---|---|"]
  names = dict(zip(COST_METRICS, ("default", "cost-derived", "tuned")))
  table = result.cost_table()
  for r in table:
    value = "" if r["value"] is None else f"{r['value']:.3g} ± {r['value_std']:.2g}"
    t = r["vs_baseline_tuned"]
    vs = "(reference)" if t is None else (
        f"{fmt(t['mean_diff'], sign=True)} [{fmt(t['ci_low'], sign=True)}, "
        f"{fmt(t['ci_high'], sign=True)}] p={t['p_value']:.3f}"
        f"{' *' if t['p_value'] < 0.05 else ''}")
    lines.append(f"| `{r['spec']}` | {names[r['metric']]} | {fmt(r['mean'])} ± "
                 f"{fmt(r['std'])} | {value} | {vs} |")
  spec, metric, value = result.best_decision()
  best = next(r for r in table if (r["spec"], r["metric"]) == (spec, metric))
  t = best["vs_baseline_tuned"]
  verdict = "" if t is None else (
      f"; its difference to `{result.baseline}` tuned is {fmt(t['mean_diff'], sign=True)} "
      f"[{fmt(t['ci_low'], sign=True)}, {fmt(t['ci_high'], sign=True)}]" + (
          ", an interval that contains 0: the data do not show it is cheaper"
          if t["ci_low"] <= 0 <= t["ci_high"] else ""))
  lines += ["", f"Lowest mean expected cost: `{spec}` at its {names[metric]} decision "
            f"({fmt(value)} per row){verdict}. `cost.png` shows the held-out cost as the "
            f"decision moves.", ""]
  return lines


def _alpha_edge_warning(result: PathResult) -> str | None:
  """A warning when the CV-chosen alpha is the first or last alpha of the grid."""
  alphas = np.asarray(result.alphas)
  if np.isclose(result.alpha, alphas.max()):
    return (f"the chosen alpha {result.alpha:.4g} is the LARGEST of the grid (every "
            f"coefficient zero there): the best alpha may lie outside it.")
  if np.isclose(result.alpha, alphas.min()):
    return (f"the chosen alpha {result.alpha:.4g} is the SMALLEST of the grid: the best "
            f"alpha may be smaller; extend the grid (a smaller --eps or more --n-alphas).")
  return None


def _path_markdown(result: PathResult, context) -> str:
  warning = _alpha_edge_warning(result)
  lines = ["# Elastic-net regularization path", ""] + _context_lines(context) + [
      "", *([f"> **Warning**: {warning}", ""] if warning else []),
      "```", result.table(), "```", "",
      "![coefficient paths](coef_path.png)", "", "![cross-validation](cv_curve.png)", ""]
  return "\n".join(lines)


def write_report(
    result: ComparisonResult | PathResult,
    out_dir: str | Path,
    *,
    context: Mapping[str, object] | None = None,
) -> list[Path]:
  """Writes ``report.md``, ``results.json`` and PNG plots for a result.

  For a :class:`ComparisonResult`: ``metrics.png`` (dot-and-interval per
  metric: every fold's score, mean ± std; a bounded metric's axis stays in
  its range), ``train_loss.png`` (training objective next to the held-out
  loss), ``differences.png`` (paired differences to the first spec with their
  corrected intervals: green better, red worse, grey not significant, by the
  metric's direction), for binary tasks ``roc_pr.png`` (ROC and PR curves,
  each with a zoom on the corner where they differ; AUC mean ± std over
  folds in the legend) and ``reliability.png`` (with the rows per bin
  beneath), for classification ``confusion.png`` (counts per cell, classes
  named from ``settings["class_names"]`` when present), for regression
  ``predictions.png``, with a cost ``cost.png``. The
  Markdown holds the score table, the paired-difference table and (binary)
  each spec's threshold and precision at the target recall, and with a cost
  the expected cost of every spec at three decisions; ``results.json``
  holds every figure's numbers, the settings (with the data's sha256), the
  package version and the time written. For a
  :class:`PathResult`: ``coef_path.png`` (coefficients against alpha, the
  chosen alpha marked) and ``cv_curve.png`` (held-out MSE per fold and mean ±
  std). Each figure is a ``matplotlib.figure.Figure`` with a fixed layout,
  drawn once by Agg at 100 dpi (pyplot and the process's backend are left
  alone); the folder is created if needed.

  The report appears whole or not at all: the files are written into a hidden
  sibling folder that replaces ``out_dir`` once everything is written, so an
  error or an interrupt leaves a previous report in ``out_dir`` untouched,
  and a finished report replaces all the files of the previous one. A folder
  holding other files is never overwritten.

  Args:
    result: What :func:`compare_losses` or :func:`regularization_path` returned.
    out_dir: The folder to write into.
    context: Extra ``{label: value}`` lines for the report (data set, ...).

  Returns:
    The paths written.

  Raises:
    TypeError: for another kind of result.
    ValueError: naming ``out_dir`` if it is a file, lies under a file, or holds
      files that are not a report's (nothing is written then).

  Examples:
    >>> import tempfile
    >>> from lossreg_jax import datasets
    >>> from lossreg_jax.experiments import regularization_path
    >>> ds = datasets.load("diabetes")
    >>> res = regularization_path(ds.X, ds.y, n_alphas=12, cv=3)
    >>> sorted(p.name for p in write_report(res, tempfile.mkdtemp()))
    ['coef_path.png', 'cv_curve.png', 'report.md', 'results.json']
  """
  context = dict(context or {})
  if not isinstance(result, (ComparisonResult, PathResult)):
    raise TypeError(f"result must be a ComparisonResult or a PathResult, got "
                    f"{type(result).__name__}.")
  out = Path(out_dir)
  with atomic_folder(out) as tmp:
    if isinstance(result, ComparisonResult):
      pngs = [p.name for p in _compare_plots(result, tmp)]
      markdown = _compare_markdown(result, context, pngs)
    else:
      pngs = ["coef_path.png", "cv_curve.png"]
      _path_plots(result, *(tmp / name for name in pngs))
      markdown = _path_markdown(result, context)
    (tmp / "report.md").write_text(markdown)
    payload = {"context": {k: v if isinstance(v, (int, float, bool)) else str(v)
                           for k, v in context.items()},
               "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds"), **result.to_dict()}
    (tmp / "results.json").write_text(json.dumps(payload, indent=2))
  return [out / name for name in ("report.md", "results.json", *pngs)]
