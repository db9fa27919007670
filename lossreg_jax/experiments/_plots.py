"""The report's figures: each built by a function that returns a matplotlib ``Figure``.

``write_report`` saves them with :func:`save_figure`. Every figure is a plain
``matplotlib.figure.Figure`` (no pyplot: no global figure registry, no backend
switch in the caller's process, safe to build in several threads), laid out
once with fixed margins (no ``tight_layout``, no ``bbox_inches="tight"``: one
draw per figure, in ``savefig``) and written by Agg at :data:`DPI`.

Margins that hold text (spec names, class names) are sized from the text's
length, so long names are not cut off and no layout pass is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from lossreg_jax.experiments._scoring import HIGHER_IS_BETTER
from lossreg_jax.experiments.result import ComparisonResult
from lossreg_jax.experiments.path import PathResult

DPI = 100  # every figure: at least 100 dpi, with a title
# Where a metric's values can lie: its axis never leaves this range.
RANGES = {m: (0.0, 1.0) for m in ("accuracy", "precision", "recall", "f1", "roc_auc",
                                  "brier", "ece", "under_rate")}
RANGES.update({m: (0.0, math.inf) for m in ("mse", "rmse", "mae", "pinball", "cost_default",
                                            "cost_derived", "cost_tuned")})
RANGES["r2"] = (-math.inf, 1.0)
# Colours of a paired difference: significantly better / worse than the
# baseline, significant for a metric without a better direction, not significant.
BETTER, WORSE, CHANGED, NOT_SIGNIFICANT = "#1a9850", "#d73027", "#4575b4", "#999999"
# ... and their markers, so the verdicts differ without colour too: plus, cross,
# diamond, circle.
MARKERS = {BETTER: "P", WORSE: "X", CHANGED: "D", NOT_SIGNIFICANT: "o"}
RELIABILITY_BINS = 10  # as ComparisonResult.curves()


def better_note(metric: str) -> str:
  """``" (higher is better)"``, ``" (lower is better)"`` or ``""`` for ``metric``."""
  return {True: " (higher is better)", False: " (lower is better)", None: ""}[
      HIGHER_IS_BETTER.get(metric)]


def folds_label(result: ComparisonResult) -> str:
  s = result.settings
  return f"{s['repeats']} x {s['folds']} folds" if s.get("repeats", 1) > 1 else (
      f"{s['folds']} folds")


def class_names(result: ComparisonResult) -> list[str]:
  """``settings["class_names"]`` when it names every class, else the class indices."""
  c = result.settings["num_classes"]
  names = result.settings.get("class_names")
  if names is not None and len(names) == c:
    return [str(n) for n in names]
  return [str(i) for i in range(c)]


def positive_label(result: ComparisonResult) -> str:
  """Binary: the positive class (1), by ``settings["positive_label"]`` or its name."""
  label = result.settings.get("positive_label")
  return str(label) if label is not None else class_names(result)[1]


def save_figure(fig, path: Path) -> None:
  """Writes ``fig`` as a PNG at :data:`DPI`: one draw, the figure's own layout.

  zlib level 1: about 3 times faster to encode than the default 6, files about
  7% larger.
  """
  fig.savefig(path, dpi=DPI, format="png", pil_kwargs={"compress_level": 1})


def _text_inches(texts, size: float) -> float:
  """A generous estimate of the widest of ``texts`` at font ``size`` (points), in inches."""
  return max((len(str(t)) for t in texts), default=0) * size * 0.62 / 72


def _figure(width: float, height: float, *, left: float, right: float, top: float,
            bottom: float, wspace: float = 0.2, hspace: float = 0.2):
  """A ``Figure`` of ``width x height`` inches with fixed margins (in inches)."""
  from matplotlib.figure import Figure
  fig = Figure(figsize=(width, height), dpi=DPI)
  fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                      bottom=bottom / height, wspace=wspace, hspace=hspace)
  return fig


def _ticks(axis, nbins: int = 4) -> None:
  """At most ``nbins + 1`` round ticks, never an offset ('+9.8e-1') or a 2.5 step."""
  from matplotlib.ticker import MaxNLocator, ScalarFormatter
  axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 5, 10]))
  formatter = ScalarFormatter(useOffset=False)
  formatter.set_powerlimits((-6, 6))  # 0.0005, not 5 with a clipped "1e-4" below
  axis.set_major_formatter(formatter)


def _log_ticks(ax) -> None:
  """A log y axis labelled in plain numbers (0.05, not 5 x 10^-2: no mathtext to lay out).

  Minor ticks at 2 and 5 times each power of ten, labelled when the axis
  spans less than two decades.
  """
  from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
  ax.set_yscale("log")
  plain = FuncFormatter(lambda v, _: f"{v:g}")
  ax.yaxis.set_major_formatter(plain)
  ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
  low, high = ax.get_ylim()
  ax.yaxis.set_minor_formatter(plain if high < 100 * low else NullFormatter())


def _metric_limits(metric: str, values: np.ndarray) -> tuple[float, float]:
  """An x range around ``values`` that stays inside the metric's :data:`RANGES`.

  Never zooms in on a 0.01 difference: a metric in ``[0, 1]`` spans at least
  0.1, others at least 10% of their magnitude.
  """
  low, high = RANGES.get(metric, (-math.inf, math.inf))
  values = values[np.isfinite(values)]
  lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
  pad = 0.08 * (hi - lo)
  lo, hi = lo - pad, hi + pad
  span = 0.1 if (low, high) == (0.0, 1.0) else max(0.1 * max(abs(lo), abs(hi)), 1e-12)
  if hi - lo < span:
    mid = (lo + hi) / 2
    lo, hi = mid - span / 2, mid + span / 2
  if lo < low:  # shift the window back inside, keeping its span where it fits
    lo, hi = low, min(high, hi + (low - lo))
  if hi > high:
    lo, hi = max(low, lo - (hi - high)), high
  return lo, hi


def _grid(metrics, row_labels, *, panel: float = 2.7):
  """One panel per metric, 4 per row; ``row_labels`` are the y tick labels (specs).

  Panels grow with the number of specs (at least 0.16 inch per spec name).
  """
  n = len(metrics)
  height = max(2.3, 0.16 * len(row_labels) + 0.9)
  cols = min(n, 4)
  rows = -(-n // cols)
  left = 0.25 + _text_inches(row_labels, 7)
  fig = _figure(left + cols * panel + 0.2, rows * height + 0.75, left=left, right=0.2,
                top=0.75, bottom=0.3, wspace=0.12, hspace=0.55)
  spec = fig.add_gridspec(rows, cols)
  axes = [fig.add_subplot(spec[i // cols, i % cols]) for i in range(n)]  # no hidden panels
  ys = np.arange(len(row_labels))[::-1]
  for i, ax in enumerate(axes):
    if i % cols == 0:  # spec names on the first panel of a row; no ticks elsewhere
      ax.set_yticks(ys, row_labels, fontsize=7)
    else:
      ax.set_yticks([])
    ax.set_ylim(-0.7, len(row_labels) - 0.3)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    _ticks(ax.xaxis)
  return fig, axes, ys


def metrics_figure(result: ComparisonResult):
  """Dot-and-interval per metric: every fold's score (grey), the mean and ± 1 std."""
  fig, axes, ys = _grid(result.metrics, result.specs)
  for ax, m in zip(axes, result.metrics):
    folds = [np.asarray(result.scores[spec][m], np.float64) for spec in result.specs]
    means, stds = np.array([v.mean() for v in folds]), np.array([v.std() for v in folds])
    ax.plot(np.concatenate(folds), np.concatenate(
        [y + np.linspace(-0.15, 0.15, len(v)) for y, v in zip(ys, folds)]), ".", color="0.6",
            ms=3)
    _intervals(ax, means, ys, means - stds, means + stds, "C0")
    ax.set_xlim(*_metric_limits(m, np.concatenate([*folds, means - stds, means + stds])))
    _title(ax, m + better_note(m))
  fig.suptitle(f"Held-out scores per fold (grey), mean ± std (blue), {folds_label(result)}",
               fontsize=10)
  return fig


def _title(ax, text: str, size: float = 8) -> None:
  """A panel title at a fixed height (``y=1``: matplotlib skips its costly auto-placement)."""
  ax.set_title(text, fontsize=size, y=1.0)


def _intervals(ax, x, y, low, high, colours, *, ms: float = 4,
               markers=None) -> None:
  """Points ``(x, y)`` with horizontal whiskers from ``low`` to ``high``, capped.

  A few artists per call (whiskers, caps, one set of points per marker),
  whatever the number of points; a point set is labelled by its marker.
  """
  x, y, low, high = (np.asarray(a, np.float64) for a in (x, y, low, high))
  colours = np.broadcast_to(np.asarray(colours, object), x.shape)
  markers = np.broadcast_to(np.asarray("o" if markers is None else markers, object), x.shape)
  ok = np.isfinite(low) & np.isfinite(high)
  ax.hlines(y[ok], low[ok], high[ok], colors=list(colours[ok]), lw=1.5)
  ax.scatter(np.r_[low[ok], high[ok]], np.r_[y[ok], y[ok]], c=list(colours[ok]) * 2,
             marker="|", s=30, linewidths=1.2)
  for marker in dict.fromkeys(markers):
    mine = markers == marker
    ax.scatter(x[mine], y[mine], c=list(colours[mine]), marker=marker, s=ms ** 2, zorder=3,
               label=marker)


def difference_colour(metric: str, paired: dict, alpha: float) -> str:
  """:data:`BETTER`, :data:`WORSE`, :data:`CHANGED` or :data:`NOT_SIGNIFICANT`.

  Significant means ``p < alpha`` (the interval drawn excludes 0); better
  depends on the metric's direction (:data:`HIGHER_IS_BETTER`).
  """
  p, diff = paired["p_value"], paired["mean_diff"]
  if not (np.isfinite(p) and p < alpha and np.isfinite(diff) and diff != 0):
    return NOT_SIGNIFICANT
  higher = HIGHER_IS_BETTER.get(metric)
  if higher is None:
    return CHANGED
  return BETTER if (diff > 0) == higher else WORSE


def differences_figure(result: ComparisonResult):
  """Paired difference to the baseline per metric, coloured by verdict.

  Each spec's mean difference and interval are green (plus) where the spec is
  significantly better than the baseline, red (cross) where significantly
  worse (the metric's direction decides which), grey (circle) where the
  interval contains 0, blue (diamond) where a metric without a better
  direction changed significantly; a legend says which is which.
  """
  from matplotlib.lines import Line2D
  others = list(result.specs[1:])
  fig, axes, ys = _grid(result.metrics, others)
  conf = result.settings.get("confidence", 0.95)
  for ax, m in zip(axes, result.metrics):
    p = [result.paired[spec][m] for spec in others]
    mean, lo, hi = (np.array([q[key] for q in p], np.float64)
                    for key in ("mean_diff", "ci_low", "ci_high"))
    colours = [difference_colour(m, q, 1 - conf) for q in p]
    shown = np.isfinite(mean)
    colours = np.asarray(colours, object)[shown]
    _intervals(ax, mean[shown], ys[shown], lo[shown], hi[shown], colours, ms=7,
               markers=[MARKERS[c] for c in colours])
    ends = np.concatenate([[0.0], *(a[np.isfinite(a)] for a in (mean, lo, hi))])
    low, high = float(ends.min()), float(ends.max())
    pad = 0.08 * (high - low) if high > low else 0.01
    ax.set_xlim(low - pad, high + pad)
    ax.axvline(0.0, color="k", lw=0.8)
    _title(ax, f"Δ {m}{better_note(m)}")
  handles = [Line2D([], [], marker=MARKERS[c], color=c, ls="", label=t) for c, t in (
      (BETTER, "better than the baseline"), (WORSE, "worse than the baseline"),
      (NOT_SIGNIFICANT, f"not significant ({conf:.0%} CI contains 0)"))]
  if any(HIGHER_IS_BETTER.get(m) is None for m in result.metrics):
    handles.append(Line2D([], [], marker=MARKERS[CHANGED], color=CHANGED, ls="",
                          label="significant, no better direction"))
  fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=7,
             bbox_to_anchor=(0.5, 1 - 0.36 / fig.get_figheight()), frameon=False,
             handletextpad=0.2, columnspacing=1.2)
  fig.suptitle(f"Difference to {result.baseline!r} on the same {folds_label(result)}: "
               f"mean and {conf:.0%} CI (corrected resampled t-test)", fontsize=10)
  return fig


def loss_figure(result: ComparisonResult):
  """Training objective and held-out loss per epoch, mean ± std over folds."""
  fig = _figure(10.0, 4.0, left=0.75, right=0.2, top=0.65, bottom=0.55, wspace=0.25)
  axes = fig.subplots(1, 2)
  panels = ((axes[0], result.train_loss, "training objective (loss + penalty)"),
            (axes[1], result.held_out_loss, "held-out loss (no penalty)"))
  for ax, curves, title in panels:
    for spec in result.specs:
      if spec not in curves:
        continue
      curve = np.asarray(curves[spec], np.float64)
      mean, std = curve.mean(0), curve.std(0)
      epochs = np.arange(1, len(mean) + 1)
      ax.plot(epochs, mean, label=spec)
      ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("epoch")
    _ticks(ax.xaxis, 5)
    ax.set_ylabel(f"mean over {folds_label(result)}")
    if all(np.all(np.asarray(curves[s]) > 0) for s in result.specs if s in curves):
      _log_ticks(ax)
    _title(ax, title, 10)
  axes[0].legend(fontsize="small")
  fig.suptitle("Each spec's own loss: compare shapes (convergence, over-fitting), not "
               "levels across losses", fontsize=9)
  return fig


def average_precision_from_curve(precision, recall) -> float:
  """``Σ_k (R_k − R_{k−1}) P_k`` over a precision-recall curve in scikit-learn's order."""
  precision, recall = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
  return float(-np.sum(np.diff(recall) * precision[:-1]))


def roc_zoom(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
  """``(fpr_high, tpr_low)``: the top-left box of ROC space where the curves differ.

  ``curves`` are ``(fpr, tpr)`` per spec. The box starts below the lowest
  TPR any curve has reached at FPR 0.02 and ends at the FPR where the last
  curve reaches TPR 1, with 5% margins.
  """
  low = min(float(np.max(tpr[fpr <= 0.02], initial=0.0)) for fpr, tpr in curves)
  high = max(float(np.min(fpr[tpr >= 1.0], initial=1.0)) for fpr, tpr in curves)
  return min(1.0, 1.05 * high + 0.005), max(0.0, low - 0.05 * (1 - low) - 0.005)


def pr_zoom(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
  """``(recall_low, precision_low)``: the top-right box of PR space where the curves differ.

  ``curves`` are ``(recall, precision)`` per spec. The box starts left of the
  smallest of the curves' last recalls with precision at least 0.98, and below
  the lowest precision of any curve in that recall range, with 5% margins.
  """
  left = min(float(np.max(recall[precision >= 0.98], initial=0.0)) for recall, precision in curves)
  left = max(0.0, left - 0.05 * (1 - left) - 0.005)
  low = min(float(np.min(precision[recall >= left], initial=1.0)) for recall, precision in curves)
  return left, max(0.0, low - 0.05 * (1 - low) - 0.005)


def _fold_spread(result: ComparisonResult, spec: str, metric: str) -> str:
  v = np.asarray(result.scores[spec][metric], np.float64)
  return f"{np.mean(v):.3f} ± {np.std(v):.3f}"


def roc_pr_figure(result: ComparisonResult, curves: dict):
  """ROC and precision-recall curves, each beside a zoom on its top corner.

  Legends give each spec's ROC AUC (and AP, where the result scored it per
  fold) as mean ± std over folds; without per-fold AP, the AP of the pooled
  held-out rows of repeat 1.
  """
  from matplotlib.patches import Rectangle
  fig = _figure(10.0, 8.6, left=0.65, right=0.25, top=0.6, bottom=0.55, wspace=0.22,
                hspace=0.32)
  (roc, roc_in), (pr, pr_in) = fig.subplots(2, 2)
  k = len(np.asarray(result.scores[result.baseline]["roc_auc"]))
  per_fold_ap = all("average_precision" in result.scores[s] for s in result.specs)
  for i, spec in enumerate(result.specs):
    c, colour = curves[spec], f"C{i % 10}"
    fpr, tpr = np.asarray(c["roc"]["fpr"], float), np.asarray(c["roc"]["tpr"], float)
    rec, prec = np.asarray(c["pr"]["recall"], float), np.asarray(c["pr"]["precision"], float)
    ap = (_fold_spread(result, spec, "average_precision") if per_fold_ap else
          f"{average_precision_from_curve(prec, rec):.3f}")
    roc.plot(fpr, tpr, color=colour, clip_on=False,
             label=f"{spec}: AUC {_fold_spread(result, spec, 'roc_auc')}")
    pr.plot(rec, prec, color=colour, clip_on=False, label=f"{spec}: AP {ap}")
    roc_in.plot(fpr, tpr, color=colour)
    pr_in.plot(rec, prec, color=colour)
  fpr_high, tpr_low = roc_zoom([(np.asarray(curves[s]["roc"]["fpr"], float),
                                  np.asarray(curves[s]["roc"]["tpr"], float))
                                 for s in result.specs])
  recall_low, precision_low = pr_zoom([(np.asarray(curves[s]["pr"]["recall"], float),
                                        np.asarray(curves[s]["pr"]["precision"], float))
                                       for s in result.specs])
  y = np.asarray(result.labels)
  prevalence = float(np.mean(y == 1))
  roc.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8)
  pr.axhline(prevalence, color="0.7", ls="--", lw=0.8)
  roc.add_patch(Rectangle((0, tpr_low), fpr_high, 1 - tpr_low, fill=False, ls=":", ec="0.3"))
  pr.add_patch(Rectangle((recall_low, precision_low), 1 - recall_low, 1 - precision_low,
                         fill=False, ls=":", ec="0.3"))
  positive = positive_label(result)
  roc.set(xlim=(0, 1), ylim=(0, 1), xlabel="false positive rate",
          ylabel="true positive rate (recall)")
  _title(roc, "ROC curve (held-out rows, repeat 1)", 10)
  roc_in.set(xlim=(0, fpr_high), ylim=(tpr_low, 1 + 0.01 * (1 - tpr_low)),
               xlabel="false positive rate", ylabel="true positive rate")
  _title(roc_in, "ROC: zoom on the dotted box", 10)
  pr.set(xlim=(0, 1), ylim=(0, 1), xlabel="recall", ylabel="precision")
  _title(pr, "Precision-recall curve (held-out rows, repeat 1)", 10)
  pr_in.set(xlim=(recall_low, 1 + 0.01 * (1 - recall_low)),
              ylim=(precision_low, 1 + 0.01 * (1 - precision_low)),
              xlabel="recall", ylabel="precision")
  _title(pr_in, "Precision-recall: zoom on the dotted box", 10)
  recall = result.settings.get("target_recall")
  if recall is not None:
    pr.axvline(recall, color="0.5", ls=":", lw=1, label=f"target recall {recall:g}")
    if recall >= recall_low:
      pr_in.axvline(recall, color="0.5", ls=":", lw=1)
  roc.legend(fontsize="small", loc="lower right",
             title=f"ROC AUC: mean ± std over {k} folds", title_fontsize="small")
  pr.legend(fontsize="small", loc="lower left",
            title=(f"AP: mean ± std over {k} folds" if per_fold_ap else
                   "AP: pooled held-out rows"), title_fontsize="small")
  for ax in (roc, roc_in, pr, pr_in):
    ax.tick_params(labelsize=8)
    _ticks(ax.xaxis, 5)
    _ticks(ax.yaxis, 5)
  fig.suptitle(f"Positive class: {positive} (class 1)", fontsize=11)
  return fig


def reliability_counts(probabilities) -> np.ndarray:
  """Rows per equal-width bin of P(y=1), binned as ``metrics.calibration_curve``."""
  from lossreg_jax.metrics.calibration import _inner_edges
  p = np.asarray(probabilities)
  edges = np.asarray(_inner_edges(RELIABILITY_BINS, p.dtype))
  return np.bincount(np.searchsorted(edges, p, side="left"), minlength=RELIABILITY_BINS)


def reliability_figure(result: ComparisonResult, curves: dict):
  """Reliability diagram, over a histogram of the rows in each bin per spec."""
  fig = _figure(5.6, 6.4, left=0.7, right=0.2, top=0.5, bottom=0.55, hspace=0.08)
  top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1.3)})
  top.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
  k = len(result.specs)
  width = 0.8 / RELIABILITY_BINS / k
  centres = (np.arange(RELIABILITY_BINS) + 0.5) / RELIABILITY_BINS
  for i, spec in enumerate(result.specs):
    colour = f"C{i % 10}"
    r = curves[spec]["reliability"]
    top.plot(r["prob_pred"], r["prob_true"], "o-", ms=4, color=colour,
             label=f"{spec} (ECE {_fold_spread(result, spec, 'ece')})")
    counts = reliability_counts(result.probabilities[spec])
    bottom.bar(centres + (i - (k - 1) / 2) * width, counts, width=width, color=colour)
  top.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed share of positives")
  _title(top, f"Reliability diagram (held-out rows, repeat 1, {RELIABILITY_BINS} bins)", 10)
  top.tick_params(labelbottom=False)
  top.legend(fontsize="small", loc="upper left")
  bottom.set(xlabel=f"mean predicted P(y=1) in bin (positive class: {positive_label(result)})",
             ylabel="rows in bin")
  bottom.set_xticks(np.linspace(0, 1, 6))
  _ticks(bottom.yaxis, 3)
  bottom.grid(axis="y", alpha=0.3)
  return fig


def confusion_figure(result: ComparisonResult, curves: dict):
  """Confusion matrix per spec: every class named on both axes, the count in each cell.

  Up to 20 classes every cell holds its count; more classes get a colour bar
  instead. One colour scale for all specs. Binary: the title names the
  positive class.
  """
  names = class_names(result)
  c, k = len(names), len(result.specs)
  counts = c <= 20
  cell = 0.42 if c <= 4 else 0.3 if c <= 12 else 0.2
  side = max(2.2, cell * c)
  label_in = _text_inches(names, 7)
  rotate = label_in > 0.9 * side / c  # vertical names where they would not fit side by side
  left = 0.55 + label_in
  bottom = 0.55 + (label_in if rotate else 0.12)
  wgap = 0.35
  right = 0.25 + (0.8 if not counts else 0)
  fig = _figure(left + k * side + (k - 1) * wgap + right, side + bottom + 0.95, left=left,
                right=right, top=0.95, bottom=bottom, wspace=wgap / side)
  axes = fig.subplots(1, k, squeeze=False)[0]
  matrices = [np.asarray(curves[s]["confusion"]) for s in result.specs]
  vmax = max(1, *(int(m.max()) for m in matrices))
  font = 10 if c <= 3 else 8 if c <= 6 else 6 if c <= 12 else 5
  for i, (ax, spec, cm) in enumerate(zip(axes, result.specs, matrices)):
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=vmax)
    if counts:
      for (r, col), v in np.ndenumerate(cm):
        ax.text(col, r, str(v), ha="center", va="center", fontsize=font,
                color="white" if v > vmax / 2 else "black")
    ax.set_xticks(np.arange(c), names, fontsize=7, rotation=90 if rotate else 0,
                  ha="right" if rotate else "center", va="center" if rotate else "top",
                  rotation_mode="anchor")
    ax.set_yticks(np.arange(c), names if i == 0 else [], fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    if i == 0:
      ax.set_ylabel("true", fontsize=8)
    _title(ax, spec, 9)
  if not counts:
    fig.colorbar(image, ax=list(axes), fraction=0.04, pad=0.02, label="rows")
  title = "Confusion matrices (held-out predictions, repeat 1)"
  if result.task == "binary":
    title += f"; positive class: {positive_label(result)}"
  fig.suptitle(title, fontsize=10)
  return fig


def predictions_figure(result: ComparisonResult):
  """Held-out predictions against targets, one panel per spec."""
  n = len(result.specs)
  fig = _figure(3.6 * n, 3.8, left=0.6, right=0.15, top=0.55, bottom=0.5,
                wspace=0.3 * n / max(n, 1))
  axes = fig.subplots(1, n, squeeze=False)[0]
  y = np.asarray(result.labels, np.float64)
  lo, hi = float(y.min()), float(y.max())
  for ax, spec in zip(axes, result.specs):
    p = np.asarray(result.predictions[spec], np.float64)
    under = p < y
    ax.plot(y[~under], p[~under], ".", ms=4, color="C0", label="over-predicted")
    ax.plot(y[under], p[under], ".", ms=4, color="C3", label=f"under ({under.mean():.0%})")
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8)
    ax.set(xlabel="actual", ylabel="predicted (held-out)")
    _title(ax, spec, 9)
    ax.tick_params(labelsize=8)
    _ticks(ax.xaxis, 4)
    ax.legend(fontsize="x-small")
  fig.suptitle("Held-out predictions against targets (repeat 1)", fontsize=10)
  return fig


_DECISION_AXIS = {"binary": "threshold on P(y=1)",
                  "multiclass": "temperature T of the Bayes decision on softmax(z / T)",
                  "regression": "offset added to the predictions (target units)"}


def cost_figure(result: ComparisonResult):
  """Held-out expected cost against the decision, one line per spec."""
  fig = _figure(6.8, 4.6, left=0.75, right=0.2, top=0.65, bottom=0.55)
  ax = fig.subplots()
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
  _title(ax, f"Cost against the decision (held-out rows, repeat 1)\n"
         f"{result.cost.describe()}", 9)
  ax.legend(fontsize="x-small")
  return fig


def compare_figures(result: ComparisonResult,
                    curves: dict) -> Iterator[tuple[str, Callable[[], object]]]:
  """``(file name, builder)`` per figure of a comparison, in report order.

  ``curves`` is ``result.curves()``. Builders are called one at a time, so
  only one figure is alive while the report is written.
  """
  yield "metrics.png", lambda: metrics_figure(result)
  yield "train_loss.png", lambda: loss_figure(result)
  if result.paired:
    yield "differences.png", lambda: differences_figure(result)
  if result.task == "binary":
    yield "roc_pr.png", lambda: roc_pr_figure(result, curves)
    yield "reliability.png", lambda: reliability_figure(result, curves)
  if result.task == "regression":
    yield "predictions.png", lambda: predictions_figure(result)
  else:
    yield "confusion.png", lambda: confusion_figure(result, curves)
  if result.cost is not None:
    yield "cost.png", lambda: cost_figure(result)


def path_figures(result: PathResult):
  """``(coefficient paths, cross-validation curve)`` of a regularization path."""
  coef = _figure(6.5, 4.2, left=0.75, right=0.2, top=0.4, bottom=0.55)
  ax = coef.subplots()
  for name, row in zip(result.feature_names, result.coefs):
    ax.plot(result.alphas, row, label=name)
  ax.axvline(result.alpha, color="k", ls="--", lw=1, label=f"CV alpha = {result.alpha:.3g}")
  ax.set_xscale("log")
  ax.invert_xaxis()
  ax.set_xlabel("alpha (log scale, decreasing)")
  ax.set_ylabel("coefficient")
  _title(ax, f"Elastic-net path (l1_ratio = {result.l1_ratio:g})", 12)
  ax.legend(fontsize="x-small", ncol=2)

  cv = _figure(6.5, 4.2, left=0.75, right=0.2, top=0.4, bottom=0.55)
  ax = cv.subplots()
  mean, std = result.mse_path.mean(1), result.mse_path.std(1)
  ax.plot(result.alphas, result.mse_path, color="0.75", lw=0.8)
  ax.plot(result.alphas, mean, color="C0", lw=2, label="mean over folds")
  ax.fill_between(result.alphas, mean - std, mean + std, color="C0", alpha=0.2)
  ax.axvline(result.alpha, color="k", ls="--", lw=1, label=f"chosen alpha = {result.alpha:.3g}")
  ax.set_xscale("log")
  ax.invert_xaxis()
  ax.set_xlabel("alpha (log scale, decreasing)")
  ax.set_ylabel("held-out MSE")
  _title(ax, f"{result.mse_path.shape[1]}-fold cross-validation", 12)
  ax.legend(fontsize="small")
  return coef, cv
