"""``ComparisonResult``: what ``compare_losses`` measured, as tables, curves and JSON."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lossreg_jax.experiments._scoring import DESCRIPTIONS, HIGHER_IS_BETTER
from lossreg_jax.experiments.cost import COST_METRICS, DecisionCost, cost_curve

__all__ = ["ComparisonResult"]

PAIRED_KEYS = ("mean_diff", "ci_low", "ci_high", "t", "p_value")


def _num(x) -> float | None:
  """A JSON number: NaN and infinities become ``None`` (JSON has no NaN)."""
  x = float(x)
  return x if math.isfinite(x) else None


def _nums(a) -> list:
  return [_num(v) for v in np.ravel(np.asarray(a, np.float64))]


def fmt(value: float, *, sign: bool = False) -> str:
  """Three decimals, fewer for large magnitudes (an MSE of 3000 keeps 4-5 digits)."""
  size = abs(value) if math.isfinite(value) else 0.0
  digits = 3 if size < 10 else 2 if size < 100 else 1 if size < 1000 else 0
  return f"{value:{'+' if sign else ''}.{digits}f}"


@dataclasses.dataclass(frozen=True)
class ComparisonResult:
  """What :func:`compare_losses` measured.

  Attributes:
    specs: The spec strings, in order; the first is the baseline of the
      paired comparison.
    scores: ``{spec: {metric: per-fold values, shape (repeats * folds,)}}`` on
      held-out rows, folds of repeat 0 first; binary results also hold
      ``average_precision`` (shown in the report's precision-recall legend).
    train_loss: ``{spec: (repeats * folds, epochs)}``, each epoch's mean
      minibatch objective (loss plus penalty).
    seconds: ``{spec: wall seconds}`` (compilation included).
    task: ``"binary"``, ``"multiclass"`` (metrics are macro averages) or
      ``"regression"``.
    settings: The model, training and evaluation settings (``folds``,
      ``repeats``, ``seed``, ``data_sha256``, ...).
    predictions: ``{spec: (n,)}``, each row's prediction (class, or value for
      regression) by the model of the repeat-0 fold that held it out (as
      scikit-learn's ``cross_val_predict``).
    metrics: Metric names in display order.
    probabilities: ``{spec: held-out P(y=1) (n,) | (n, C) softmax | regression
      predictions (n,)}`` from repeat 0.
    labels: The targets ``y``, shape ``(n,)``.
    held_out_loss: ``{spec: (repeats * folds, epochs)}``, each epoch's data
      loss (no penalty, no dropout) on the fold's held-out rows.
    paired: ``{spec: {metric: {"mean_diff", "ci_low", "ci_high", "t",
      "p_value"}}}`` for every spec but the first: the corrected resampled
      t-test (:func:`corrected_resampled_ttest`) of the per-fold differences
      spec minus baseline.
    sweeps: One entry per swept spec (``focal:gamma=0|1|2``): ``{"spec": the
      spec as written, "values": the values as written, "specs": the
      expanded specs}``.
    examples: ``{spec: {"original", "augmented"}}``: for a spec with image
      augmentation, a few training images of the first fold, standardized,
      and the same images as its first minibatch augmented them, each
      ``(k, H, W, C)``.
  """

  specs: tuple[str, ...]
  scores: dict
  train_loss: dict
  seconds: dict
  task: str
  settings: dict
  predictions: dict = dataclasses.field(default_factory=dict)
  metrics: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")
  probabilities: dict = dataclasses.field(default_factory=dict)
  labels: np.ndarray | None = None
  held_out_loss: dict = dataclasses.field(default_factory=dict)
  paired: dict = dataclasses.field(default_factory=dict)
  cost: DecisionCost | None = None
  decisions: dict = dataclasses.field(default_factory=dict)
  sweeps: tuple = ()
  examples: dict = dataclasses.field(default_factory=dict)

  @property
  def baseline(self) -> str:
    """The first spec: every other spec is compared with it."""
    return self.specs[0]

  def summary(self) -> dict:
    """``{spec: {metric: (mean, std)}}`` over folds (``std`` with ``ddof=0``)."""
    return {s: {m: (float(np.mean(self.scores[s][m])), float(np.std(self.scores[s][m])))
                for m in self.metrics} for s in self.specs}

  def table(self) -> str:
    """Mean ± std per spec and metric, then the paired differences to the baseline.

    A difference reads ``+0.012 [-0.004, +0.028]``: the mean over folds of
    (spec − baseline) and its confidence interval from the corrected
    resampled t-test; ``*`` marks p < 0.05.
    """
    width = max(len("spec"), *(len(s) for s in self.specs))
    summary = self.summary()
    cells = {s: [f"{fmt(summary[s][m][0])} ± {fmt(summary[s][m][1])}" for m in self.metrics]
             for s in self.specs}
    cw = [max(len(m), *(len(cells[s][i]) for s in self.specs)) for i, m in
          enumerate(self.metrics)]
    head = f"{'spec':<{width}}  " + "  ".join(f"{m:>{w}}" for m, w in zip(self.metrics, cw))
    lines = [head, "-" * len(head)]
    lines += [f"{s:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells[s], cw))
              for s in self.specs]
    if self.paired:
      s = self.settings
      conf = s.get("confidence", 0.95)
      lines += ["", f"paired difference to {self.baseline!r} on the same "
                f"{s['repeats']} x {s['folds']} folds: mean [{conf:.0%} CI], corrected "
                f"resampled t-test (* p < 0.05)"]
      mw = max(len(m) for m in self.metrics)
      for spec in self.specs[1:]:
        for i, m in enumerate(self.metrics):
          p = self.paired[spec][m]
          diff = (f"{fmt(p['mean_diff'], sign=True)} [{fmt(p['ci_low'], sign=True)}, "
                  f"{fmt(p['ci_high'], sign=True)}]")
          star = "*" if p["p_value"] < 0.05 else " "
          better = {True: "higher is better", False: "lower is better", None: ""}[
              HIGHER_IS_BETTER.get(m)]
          label = spec if i == 0 else ""
          lines.append(f"{label:<{width}}  {m:<{mw}}  {diff:<28} p={p['p_value']:.3f}{star}  "
                       f"{better}".rstrip())
    return "\n".join(lines)

  def threshold_for_recall(self, recall: float) -> dict:
    """Binary only: per spec, the highest threshold on P(y=1) reaching ``recall``.

    From the held-out probabilities of repeat 0: the largest threshold ``t``
    such that predicting 1 where ``P(y=1) >= t`` recalls at least ``recall``
    of the positives, with the precision reached there. It answers "weight the
    false negatives, or move the threshold?" for a recall target.

    Args:
      recall: Target recall in ``(0, 1]``.

    Returns:
      ``{spec: {"threshold", "precision", "recall"}}``; empty for other tasks.
    """
    if self.task != "binary":
      return {}
    y = np.asarray(self.labels)
    out = {}
    for spec in self.specs:
      p = np.asarray(self.probabilities[spec], np.float64)
      order = np.argsort(-p, kind="stable")
      ps, ys = p[order], y[order]
      tp, fp = np.cumsum(ys), np.cumsum(1 - ys)
      last = np.r_[ps[1:] != ps[:-1], True]  # the last row of each tied threshold
      rec = tp / max(int(ys.sum()), 1)
      ok = np.flatnonzero(last & (rec >= recall - 1e-12))
      i = ok[0]
      out[spec] = {"threshold": float(ps[i]), "precision": float(tp[i] / (tp[i] + fp[i])),
                   "recall": float(rec[i])}
    return out

  def curves(self) -> dict:
    """The numbers behind the report's figures, from repeat 0's held-out outputs.

    Returns:
      ``{spec: {...}}`` with, for classification, ``"confusion"`` (rows: true
      class, columns: predicted); for binary also ``"roc"`` (``fpr``, ``tpr``,
      ``thresholds``), ``"pr"`` (``precision``, ``recall``, ``thresholds``) and
      ``"reliability"`` (``prob_true``, ``prob_pred`` per non-empty bin of 10
      equal-width bins of P(y=1)); for regression ``"predictions"``.
    """
    from lossreg_jax import metrics
    y = np.asarray(self.labels)
    out = {}
    for s in self.specs:
      entry = {}
      if self.task == "regression":
        entry["predictions"] = _nums(self.predictions[s])
      else:
        c = self.settings["num_classes"]
        cm = metrics.confusion_matrix(self.predictions[s], y, num_classes=c)
        entry["confusion"] = np.asarray(cm).astype(int).tolist()
      if self.task == "binary":
        prob = np.asarray(self.probabilities[s])
        fpr, tpr, thr = metrics.roc_curve(prob, y)
        entry["roc"] = {"fpr": _nums(fpr), "tpr": _nums(tpr), "thresholds": _nums(thr)}
        precision, recall, thr = metrics.precision_recall_curve(prob, y)
        entry["pr"] = {"precision": _nums(precision), "recall": _nums(recall),
                       "thresholds": _nums(thr)}
        prob_true, prob_pred = metrics.calibration_curve(prob, y, n_bins=10,
                                                         strategy="uniform")[:2]
        entry["reliability"] = {"prob_true": _nums(prob_true), "prob_pred": _nums(prob_pred)}
      out[s] = entry
    return out

  def cost_curves(self) -> dict:
    """``{spec: {"x", "cost"}}``: held-out expected cost (repeat 0) as the decision moves.

    Binary: against the threshold on P(y=1); multiclass: against the
    temperature of the Bayes decision; regression: against an offset added to
    the predictions (:func:`~lossreg_jax.experiments.cost.cost_curve`). Empty
    without a cost.
    """
    if self.cost is None or self.labels is None:
      return {}
    y, span = np.asarray(self.labels), None
    if self.task == "regression":  # one offset range for every spec: 1.5 x the largest RMS
      span = 1.5 * max(float(np.sqrt(np.mean((y - np.asarray(self.probabilities[s])) ** 2)))
                       for s in self.specs)
    return {s: cost_curve(self.probabilities[s], y, self.cost, self.task, span=span)
            for s in self.specs}

  def cost_table(self) -> list[dict]:
    """One row per spec and decision: the expected cost and its paired test.

    Each row: ``spec``, ``metric`` (one of ``cost_default``, ``cost_derived``,
    ``cost_tuned``), ``mean`` and ``std`` over folds, the decision's ``value``
    (mean over folds of the threshold, temperature or offset; None for the
    default decision) and ``vs_baseline_tuned``: the corrected resampled
    t-test of (this cost − the baseline's ``cost_tuned``) per fold, which asks
    "does this spec and decision beat the plain baseline with a tuned
    threshold?" (None for that row itself). Empty without a cost.
    """
    if self.cost is None:
      return []
    from lossreg_jax.experiments.stats import corrected_resampled_ttest
    reference = self.scores[self.baseline]["cost_tuned"]
    ratio = self.settings.get("test_train_ratio", 1 / (self.settings["folds"] - 1))
    cells = [(s, m, decision) for s in self.specs
             for m, decision in zip(COST_METRICS, (None, "derived", "tuned"))]
    # Every row's test at once: differences shaped (rows, folds).
    tests = [np.asarray(v) for v in corrected_resampled_ttest(
        np.stack([self.scores[s][m] - reference for s, m, _ in cells]),
        test_train_ratio=ratio, confidence=self.settings.get("confidence", 0.95))]
    rows = []
    for i, (s, m, decision) in enumerate(cells):
      v = np.asarray(self.scores[s][m], np.float64)
      chosen = None if decision is None else np.asarray(self.decisions[s][decision])
      rows.append({"spec": s, "metric": m, "mean": float(v.mean()), "std": float(v.std()),
                   "value": None if chosen is None else float(chosen.mean()),
                   "value_std": None if chosen is None else float(chosen.std()),
                   "vs_baseline_tuned": None if (s, m) == (self.baseline, "cost_tuned")
                   else {k: float(t[i]) for k, t in zip(PAIRED_KEYS, tests)}})
    return rows

  def best_decision(self) -> tuple[str, str, float]:
    """``(spec, cost metric, mean cost)`` of the lowest mean expected cost (needs ``cost``)."""
    if self.cost is None:
      raise ValueError("best_decision needs costs: run compare_losses(..., cost=...).")
    summary = self.summary()
    return min(((s, m, summary[s][m][0]) for s in self.specs for m in COST_METRICS),
               key=lambda row: row[2])

  def to_dict(self) -> dict:
    """A JSON-ready dictionary: settings, per-fold scores, paired tests, curves.

    Numbers are JSON numbers (NaN and infinities become ``null``).
    """
    from lossreg_jax import __version__
    results = []
    for s in self.specs:
      entry = {
          "spec": s, "seconds": _num(self.seconds[s]),
          "metrics": {m: {"mean": _num(np.mean(v)), "std": _num(np.std(v)), "folds": _nums(v)}
                      for m, v in ((m, self.scores[s][m]) for m in self.metrics)},
          "train_loss_mean": _nums(np.mean(self.train_loss[s], axis=0)),
          "train_loss_std": _nums(np.std(self.train_loss[s], axis=0)),
      }
      if s in self.held_out_loss:
        entry["held_out_loss_mean"] = _nums(np.mean(self.held_out_loss[s], axis=0))
        entry["held_out_loss_std"] = _nums(np.std(self.held_out_loss[s], axis=0))
      if s in self.paired:
        entry["paired"] = {m: {k: _num(v[k]) for k in PAIRED_KEYS}
                           for m, v in self.paired[s].items()}
      results.append(entry)
    out = {"lossreg_jax_version": __version__, "task": self.task, "baseline": self.baseline,
           "metrics": list(self.metrics),
           "higher_is_better": {m: HIGHER_IS_BETTER.get(m) for m in self.metrics},
           "metric_descriptions": {m: DESCRIPTIONS.get(m, "") for m in self.metrics},
           "settings": self.settings, "results": results}
    if self.sweeps:
      out["sweeps"] = [dict(sweep) for sweep in self.sweeps]
    if self.labels is not None and self.probabilities:
      out["curves"] = self.curves()
    if self.cost is not None:
      table = [{k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()}
               for r in self.cost_table()]
      for r in table:
        if r["vs_baseline_tuned"] is not None:
          r["vs_baseline_tuned"] = {k: _num(v) for k, v in r["vs_baseline_tuned"].items()}
      out["cost"] = {**self.cost.to_dict(), "metrics": list(COST_METRICS), "table": table,
                     "decisions": {s: {k: _nums(v) for k, v in self.decisions[s].items()}
                                   for s in self.specs}}
      if self.labels is not None and self.probabilities:
        out["cost"]["curves"] = {s: {k: _nums(v) for k, v in c.items()}
                                 for s, c in self.cost_curves().items()}
    recall = self.settings.get("target_recall")
    if self.task == "binary" and recall is not None and self.labels is not None:
      out["threshold_for_recall"] = {"target_recall": recall,
                                     "specs": self.threshold_for_recall(recall)}
    return out
