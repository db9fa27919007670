"""Report writer: ``report.md``, ``results.json`` and PNG plots for a result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from lossreg_jax.experiments._output import atomic_folder
from lossreg_jax.experiments.compare import METRICS, ComparisonResult
from lossreg_jax.experiments.path import PathResult

__all__ = ["write_report"]


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")  # files only, never a window
  import matplotlib.pyplot as plt
  return plt


def _metrics_plot(result: ComparisonResult, path: Path) -> None:
  plt = _pyplot()
  summary = result.summary()
  n = len(result.specs)
  width = 0.8 / n
  x = np.arange(len(METRICS))
  fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(METRICS) + 0.4 * n), 4.0))
  for i, spec in enumerate(result.specs):
    means = [summary[spec][m][0] for m in METRICS]
    stds = [summary[spec][m][1] for m in METRICS]
    ax.bar(x + (i - (n - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=spec)
  ax.set_xticks(x, METRICS)
  low = min(summary[s][m][0] - summary[s][m][1] for s in result.specs for m in METRICS)
  high = max(summary[s][m][0] + summary[s][m][1] for s in result.specs for m in METRICS)
  ax.set_ylim(max(0.0, low - 0.05), max(1.0, high) + 0.01)
  folds = result.settings["folds"]
  ax.set_ylabel(f"held-out score (mean ± std over {folds} folds)")
  ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.08),
            ncol=min(n, 3), frameon=False)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _loss_plot(result: ComparisonResult, path: Path) -> None:
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  for spec in result.specs:
    curve = np.asarray(result.train_loss[spec])
    mean, std = curve.mean(0), curve.std(0)
    epochs = np.arange(1, len(mean) + 1)
    ax.plot(epochs, mean, label=spec)
    ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
  ax.set_xlabel("epoch")
  ax.set_ylabel("training objective (mean over folds)")
  ax.set_yscale("log")
  ax.legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


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
  return [f"- **{k}**: {v}" for k, v in context.items()]


def _compare_markdown(result: ComparisonResult, context) -> str:
  s = result.settings
  lines = ["# Loss / regularizer comparison", ""] + _context_lines(context) + [
      f"- **task**: {result.task} ({s['num_classes']} classes, {s['n_samples']} rows, "
      f"{s['n_features']} features)",
      f"- **model**: {s['model']}" + (f" with {s['hidden']} hidden ReLU units" if s["hidden"]
                                       else "") + ", features standardized per fold",
      f"- **training**: Adam (learning rate {s['learning_rate']:g}), {s['epochs']} epochs, "
      f"batch size {s['batch_size']}, seed {s['seed']}",
      f"- **evaluation**: {s['folds']}-fold stratified cross-validation, all folds trained "
      f"as one vmapped program; scores on held-out rows, mean ± std over folds"
      + ("" if result.task == "binary" else " (macro averages)"), "",
      "| spec | " + " | ".join(METRICS) + " | seconds |",
      "|---|" + "---|" * (len(METRICS) + 1)]
  for spec, row in result.summary().items():
    cells = " | ".join(f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in METRICS)
    lines.append(f"| `{spec}` | {cells} | {result.seconds[spec]:.1f} |")
  lines += ["", "Seconds include compilation; specs that differ only in their numbers "
            "(`bce` and `bce:positive_weight=3`) share one compiled program.", "",
            "![metrics](metrics.png)", "", "![training loss](train_loss.png)", ""]
  return "\n".join(lines)


def _path_markdown(result: PathResult, context) -> str:
  lines = ["# Elastic-net regularization path", ""] + _context_lines(context) + [
      "", "```", result.table(), "```", "",
      "![coefficient paths](coef_path.png)", "", "![cross-validation](cv_curve.png)", ""]
  return "\n".join(lines)


def write_report(
    result: ComparisonResult | PathResult,
    out_dir: str | Path,
    *,
    context: Mapping[str, object] | None = None,
) -> list[Path]:
  """Writes ``report.md``, ``results.json`` and PNG plots for a result.

  For a :class:`ComparisonResult`: ``metrics.png`` (a bar per spec and metric,
  error bars = std over folds) and ``train_loss.png``. For a
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
      pngs = ["metrics.png", "train_loss.png"]
      _metrics_plot(result, tmp / pngs[0])
      _loss_plot(result, tmp / pngs[1])
      markdown = _compare_markdown(result, context)
    else:
      pngs = ["coef_path.png", "cv_curve.png"]
      _path_plots(result, *(tmp / name for name in pngs))
      markdown = _path_markdown(result, context)
    (tmp / "report.md").write_text(markdown)
    payload = {"context": {k: str(v) for k, v in context.items()}, **result.to_dict()}
    (tmp / "results.json").write_text(json.dumps(payload, indent=2))
  return [out / name for name in ("report.md", "results.json", *pngs)]
