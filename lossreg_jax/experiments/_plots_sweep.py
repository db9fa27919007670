"""Figures of swept specs and of image augmentation (private; ``report`` saves them).

``sweep_figure``: each metric against the swept value, the mean over folds with
its corrected resampled interval (the folds' scores are not independent, so the
naive t-interval would be too narrow). ``augment_figure``: a few training
images of the first fold next to the same images as its first minibatch
augmented them.
"""

from __future__ import annotations

import numpy as np

from lossreg_jax.experiments._plots import _figure, _ticks, _title, better_note, folds_label
from lossreg_jax.experiments.result import ComparisonResult
from lossreg_jax.experiments.stats import corrected_resampled_ttest

__all__ = ["augment_figure", "sweep_figure"]


def sweep_intervals(result: ComparisonResult, sweep: dict, metric: str):
  """``(means, low, high)`` over the swept specs: the corrected resampled interval."""
  folds = result.settings["folds"]
  scores = np.stack([np.asarray(result.scores[s][metric], np.float64) for s in sweep["specs"]])
  test = corrected_resampled_ttest(scores, test_train_ratio=1 / (folds - 1),
                                   confidence=result.settings.get("confidence", 0.95))
  return scores.mean(axis=1), np.asarray(test.ci_low), np.asarray(test.ci_high)


def sweep_figure(result: ComparisonResult, sweep: dict):
  """One panel per metric: the mean over folds against the swept value, with intervals."""
  metrics = result.metrics
  cols = min(len(metrics), 4)
  rows = -(-len(metrics) // cols)
  fig = _figure(cols * 2.6 + 0.6, rows * 2.1 + 0.8, left=0.5, right=0.15, top=0.75,
                bottom=0.45, wspace=0.35, hspace=0.6)
  x = np.arange(len(sweep["values"]))
  conf = result.settings.get("confidence", 0.95)
  for i, metric in enumerate(metrics):
    ax = fig.add_subplot(rows, cols, i + 1)
    means, low, high = sweep_intervals(result, sweep, metric)
    ax.fill_between(x, low, high, color="C0", alpha=0.2, lw=0)
    ax.plot(x, means, "o-", color="C0", ms=3, lw=1)
    if result.baseline not in sweep["specs"]:  # the baseline's mean, for reference
      ax.axhline(np.mean(result.scores[result.baseline][metric]), color="0.5", lw=0.8,
                 ls="--")
    ax.set_xticks(x, sweep["values"], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3)
    _ticks(ax.yaxis)
    if i >= len(metrics) - cols:  # the bottom panel of each column
      ax.set_xlabel("swept value", fontsize=7)
    _title(ax, metric + better_note(metric))
  fig.suptitle(f"{sweep['spec']}: mean over {folds_label(result)} (line) and its "
               f"{conf:.0%} corrected resampled interval (band); dashed: {result.baseline!r}",
               fontsize=9)
  return fig


def augment_figure(result: ComparisonResult, spec: str):
  """Two rows of images: fold 0's training images (top) and as augmented (bottom)."""
  examples = result.examples[spec]
  original, augmented = examples["original"], examples["augmented"]
  k = original.shape[0]
  fig = _figure(1.1 * k + 0.3, 2.7, left=0.15, right=0.15, top=0.55, bottom=0.1,
                wspace=0.08, hspace=0.25)
  low = min(original.min(), augmented.min())
  high = max(original.max(), augmented.max())
  for row, (images, label) in enumerate(((original, "training rows"),
                                         (augmented, "as augmented"))):
    for j in range(k):
      ax = fig.add_subplot(2, k, row * k + j + 1)
      image = images[j]
      ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=low,
                vmax=high, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if j == 0:
        ax.set_ylabel(label, fontsize=7)
  fig.suptitle(f"{spec}: fold 1's first minibatch, standardized (one grey scale)", fontsize=9)
  return fig
