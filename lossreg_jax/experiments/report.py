"""Report writer: ``report.md``, ``results.json`` and PNG plots for a result."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Mapping

import numpy as np

from lossreg_jax.experiments._output import atomic_folder
from lossreg_jax.experiments._scoring import DESCRIPTIONS, HIGHER_IS_BETTER
from lossreg_jax.experiments.compare import ComparisonResult
from lossreg_jax.experiments.cost import COST_METRICS
from lossreg_jax.experiments.result import fmt
from lossreg_jax.experiments.path import PathResult

__all__ = ["write_report"]


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")  # files only, never a window
  import matplotlib.pyplot as plt
  return plt


DPI = 120  # every figure: at least 100 dpi, with a title


def _save(fig, path: Path) -> None:
  plt = _pyplot()
  fig.tight_layout()
  fig.savefig(path, dpi=DPI)
  plt.close(fig)


def _grid(n: int, *, width: float = 3.2, height: float = 2.6):
  plt = _pyplot()
  cols = min(n, 4)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.4),
                           squeeze=False)
  for ax in axes.flat[n:]:
    ax.set_visible(False)
  return fig, list(axes.flat[:n])


def _better(metric: str) -> str:
  return {True: " (higher is better)", False: " (lower is better)", None: ""}[
      HIGHER_IS_BETTER.get(metric)]


def _folds_label(result: ComparisonResult) -> str:
  s = result.settings
  return f"{s['repeats']} x {s['folds']} folds" if s.get("repeats", 1) > 1 else (
      f"{s['folds']} folds")


def _metrics_plot(result: ComparisonResult, path: Path) -> None:
  """Dot-and-interval per metric: every fold's score, the mean and ± 1 std."""
  fig, axes = _grid(len(result.metrics))
  ys = np.arange(len(result.specs))[::-1]
  for ax, m in zip(axes, result.metrics):
    for y, spec in zip(ys, result.specs):
      v = np.asarray(result.scores[spec][m], np.float64)
      ax.plot(v, np.full_like(v, y) + np.linspace(-0.15, 0.15, len(v)), ".", color="0.6",
              ms=3)
      ax.errorbar([v.mean()], [y], xerr=[[v.std()]], fmt="o", color="C0", capsize=3)
    lo, hi = ax.get_xlim()
    # Never let an axis zoom in on a 0.01 difference: scores in [0, 1] span at
    # least 0.1, others at least 10% of their magnitude.
    span = 0.1 if m not in ("mse", "rmse", "mae", "pinball") else 0.1 * abs(hi)
    if hi - lo < span:
      mid = (lo + hi) / 2
      ax.set_xlim(mid - span / 2, mid + span / 2)
    ax.set_yticks(ys, result.specs if axes.index(ax) % 4 == 0 else [""] * len(ys), fontsize=7)
    ax.set_ylim(-0.7, len(ys) - 0.3)
    ax.set_title(m + _better(m), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
  fig.suptitle(f"Held-out scores per fold (grey), mean ± std (blue), {_folds_label(result)}",
               fontsize=10)
  _save(fig, path)


def _differences_plot(result: ComparisonResult, path: Path) -> None:
  """Paired difference to the baseline per metric, with its corrected interval."""
  others = result.specs[1:]
  fig, axes = _grid(len(result.metrics))
  ys = np.arange(len(others))[::-1]
  conf = result.settings.get("confidence", 0.95)
  for i, (ax, m) in enumerate(zip(axes, result.metrics)):
    for y, spec in zip(ys, others):
      p = result.paired[spec][m]
      color = "C3" if p["p_value"] < 0.05 else "C0"
      ax.errorbar([p["mean_diff"]], [y], xerr=[[p["mean_diff"] - p["ci_low"]],
                                               [p["ci_high"] - p["mean_diff"]]],
                  fmt="o", color=color, capsize=3)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(ys, others if i % 4 == 0 else [""] * len(ys), fontsize=7)
    ax.set_ylim(-0.7, len(others) - 0.3)
    ax.set_title(f"Δ {m}{_better(m)}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
  fig.suptitle(f"Difference to {result.baseline!r} on the same {_folds_label(result)}: "
               f"mean and {conf:.0%} CI (corrected resampled t-test; red: p < 0.05)",
               fontsize=10)
  _save(fig, path)


def _loss_plot(result: ComparisonResult, path: Path) -> None:
  """Training objective and held-out loss per epoch, mean ± std over folds."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0))
  panels = ((axes[0], result.train_loss, "training objective (loss + penalty)"),
            (axes[1], result.held_out_loss, "held-out loss (no penalty)"))
  for ax, curves, title in panels:
    for spec in result.specs:
      curve = np.asarray(curves[spec], np.float64)
      mean, std = curve.mean(0), curve.std(0)
      epochs = np.arange(1, len(mean) + 1)
      ax.plot(epochs, mean, label=spec)
      ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"mean over {_folds_label(result)}")
    if all(np.all(np.asarray(curves[s]) > 0) for s in result.specs):
      ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
  axes[0].legend(fontsize="small")
  fig.suptitle("Each spec's own loss: compare shapes (convergence, over-fitting), not "
               "levels across losses", fontsize=9)
  _save(fig, path)


def _roc_pr_plot(result: ComparisonResult, curves: dict, path: Path) -> None:
  plt = _pyplot()
  fig, (roc, pr) = plt.subplots(1, 2, figsize=(10.0, 4.2))
  auc = result.summary()
  for spec in result.specs:
    c = curves[spec]
    roc.plot(c["roc"]["fpr"], c["roc"]["tpr"],
             label=f"{spec} (fold-mean AUC {auc[spec]['roc_auc'][0]:.3f})")
    pr.plot(c["pr"]["recall"], c["pr"]["precision"], label=spec)
  roc.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8)
  roc.set(xlabel="false positive rate", ylabel="true positive rate (recall)",
          title="ROC curve (held-out, repeat 1)")
  pr.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (held-out)")
  recall = result.settings.get("target_recall")
  if recall is not None:
    pr.axvline(recall, color="0.5", ls=":", lw=1, label=f"target recall {recall:g}")
  roc.legend(fontsize="small")
  pr.legend(fontsize="small")
  _save(fig, path)


def _reliability_plot(result: ComparisonResult, curves: dict, path: Path) -> None:
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.2, 4.6))
  ece = result.summary()
  ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
  for spec in result.specs:
    r = curves[spec]["reliability"]
    ax.plot(r["prob_pred"], r["prob_true"], "o-", ms=4,
            label=f"{spec} (fold-mean ECE {ece[spec]['ece'][0]:.3f})")
  ax.set(xlabel="mean predicted P(y=1) in bin", ylabel="observed share of positives",
         title="Reliability diagram (held-out, 10 bins)", xlim=(0, 1), ylim=(0, 1))
  ax.legend(fontsize="small")
  _save(fig, path)


def _confusion_plot(result: ComparisonResult, curves: dict, path: Path) -> None:
  plt = _pyplot()
  n = len(result.specs)
  fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.4), squeeze=False)
  for ax, spec in zip(axes[0], result.specs):
    cm = np.asarray(curves[spec]["confusion"])
    ax.imshow(cm, cmap="Blues")
    if cm.shape[0] <= 10:
      for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7 if cm.shape[0] > 3 else 10,
                color="white" if v > cm.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=spec)
    ax.title.set_fontsize(9)
  fig.suptitle("Confusion matrices (held-out predictions, repeat 1)", fontsize=10)
  _save(fig, path)


def _predictions_plot(result: ComparisonResult, path: Path) -> None:
  plt = _pyplot()
  n = len(result.specs)
  fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), squeeze=False)
  y = np.asarray(result.labels, np.float64)
  lo, hi = float(y.min()), float(y.max())
  for ax, spec in zip(axes[0], result.specs):
    p = np.asarray(result.predictions[spec], np.float64)
    under = p < y
    ax.plot(y[~under], p[~under], ".", ms=4, color="C0", label="over-predicted")
    ax.plot(y[under], p[under], ".", ms=4, color="C3", label=f"under ({under.mean():.0%})")
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8)
    ax.set(xlabel="actual", ylabel="predicted (held-out)", title=spec)
    ax.title.set_fontsize(9)
    ax.legend(fontsize="x-small")
  fig.suptitle("Held-out predictions against targets (repeat 1)", fontsize=10)
  _save(fig, path)


_DECISION_AXIS = {"binary": "threshold on P(y=1)",
                  "multiclass": "temperature T of the Bayes decision on softmax(z / T)",
                  "regression": "offset added to the predictions (target units)"}


def _cost_plot(result: ComparisonResult, path: Path) -> None:
  """Held-out expected cost against the decision, one line per spec."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.8, 4.4))
  for i, (spec, c) in enumerate(result.cost_curves().items()):
    color = f"C{i % 10}"
    ax.plot(c["x"], c["cost"], color=color, label=spec)
    tuned = float(np.mean(result.decisions[spec]["tuned"]))
    ax.plot([tuned], [np.interp(tuned, c["x"], c["cost"])], "o", color=color, ms=6,
            mec="k", mew=0.6)
  derived = float(np.mean(result.decisions[result.baseline]["derived"]))
  whose = f" of {result.baseline}" if result.task == "regression" else ""  # σ is per spec
  ax.axvline(derived, color="0.3", ls="--", lw=1,
             label=f"cost-derived decision{whose} ({derived:.3g})")
  ax.plot([], [], "o", color="0.6", mec="k", mew=0.6,
          label="tuned on training rows (mean over folds)")
  if result.task == "multiclass":
    ax.set_xscale("log")
  ax.set_xlabel(_DECISION_AXIS[result.task])
  ax.set_ylabel("expected cost per held-out row")
  ax.set_title(f"Cost against the decision (held-out rows, repeat 1)\n"
               f"{result.cost.describe()}", fontsize=9)
  ax.legend(fontsize="x-small")
  _save(fig, path)


def _compare_plots(result: ComparisonResult, out: Path) -> list[Path]:
  """Draws every figure of a comparison; returns the paths written."""
  paths = [out / "metrics.png", out / "train_loss.png"]
  _metrics_plot(result, paths[0])
  _loss_plot(result, paths[1])
  if result.paired:
    paths.append(out / "differences.png")
    _differences_plot(result, paths[-1])
  curves = result.curves()
  if result.task == "binary":
    paths += [out / "roc_pr.png", out / "reliability.png"]
    _roc_pr_plot(result, curves, paths[-2])
    _reliability_plot(result, curves, paths[-1])
  if result.task == "regression":
    paths.append(out / "predictions.png")
    _predictions_plot(result, paths[-1])
  else:
    paths.append(out / "confusion.png")
    _confusion_plot(result, curves, paths[-1])
  if result.cost is not None:
    paths.append(out / "cost.png")
    _cost_plot(result, paths[-1])
  return paths


def _path_plots(result: PathResult, coef_png: Path, cv_png: Path) -> None:
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for name, row in zip(result.feature_names, result.coefs):
    ax.plot(result.alphas, row, label=name)
  ax.axvline(result.alpha, color="k", ls="--", lw=1, label=f"CV alpha = {result.alpha:.3g}")
  ax.set_xscale("log")
  ax.invert_xaxis()
  ax.set_xlabel("alpha (log scale, decreasing)")
  ax.set_ylabel("coefficient")
  ax.set_title(f"Elastic-net path (l1_ratio = {result.l1_ratio:g})")
  ax.legend(fontsize="x-small", ncol=2)
  fig.tight_layout()
  fig.savefig(coef_png, dpi=120)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  mean, std = result.mse_path.mean(1), result.mse_path.std(1)
  ax.plot(result.alphas, result.mse_path, color="0.75", lw=0.8)
  ax.plot(result.alphas, mean, color="C0", lw=2, label="mean over folds")
  ax.fill_between(result.alphas, mean - std, mean + std, color="C0", alpha=0.2)
  ax.axvline(result.alpha, color="k", ls="--", lw=1, label=f"chosen alpha = {result.alpha:.3g}")
  ax.set_xscale("log")
  ax.invert_xaxis()
  ax.set_xlabel("alpha (log scale, decreasing)")
  ax.set_ylabel("held-out MSE")
  ax.set_title(f"{result.mse_path.shape[1]}-fold cross-validation")
  ax.legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(cv_png, dpi=120)
  plt.close(fig)


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
      f"- **model**: {s['model']}" + (f" with {s['hidden']} hidden ReLU units" if s["hidden"]
                                       else "") + ", features standardized per fold"
      + (" (and the target, for training)" if result.task == "regression" else ""),
      f"- **training**: Adam (learning rate {s['learning_rate']:g}), {s['epochs']} epochs, "
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
              "cost.png": "expected cost against the decision"}
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
  metric: every fold's score, mean ± std), ``train_loss.png`` (training
  objective next to the held-out loss), ``differences.png`` (paired
  differences to the first spec with their corrected intervals), for binary
  tasks ``roc_pr.png`` and ``reliability.png`` (one line per spec), for
  classification ``confusion.png``, for regression ``predictions.png``. The
  Markdown holds the score table, the paired-difference table and (binary)
  each spec's threshold and precision at the target recall, and with a cost
  the expected cost of every spec at three decisions; ``results.json``
  holds every figure's numbers, the settings (with the data's sha256), the
  package version and the time written. For a
  :class:`PathResult`: ``coef_path.png`` (coefficients against alpha, the
  chosen alpha marked) and ``cv_curve.png`` (held-out MSE per fold and mean ±
  std). Plots use matplotlib's Agg backend; the folder is created if needed.

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
