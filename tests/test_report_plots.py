"""The report's figures, inspected as matplotlib objects (experiments/_plots.py).

The results are built directly (no training), once per module, with numbers
chosen to hit the edges: scores of exactly 0 and 1, differences that are
significantly better or worse for metrics of either direction, a class count
above 10.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score

from lossreg_jax.experiments import _plots, report
from lossreg_jax.experiments.result import ComparisonResult

FOLDS = 5
BINARY = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece")
MULTICLASS = ("accuracy", "precision", "recall", "f1", "brier", "ece")
REGRESSION = ("mse", "rmse", "mae", "r2", "pinball", "under_rate")
# Paired differences of the second spec: (mean_diff, p_value) -> expected colour.
PAIRED = {
    "accuracy": (0.0125, 0.01, _plots.BETTER), "precision": (-0.0125, 0.02, _plots.WORSE),
    "recall": (0.003, 0.4, _plots.NOT_SIGNIFICANT), "f1": (0.0, float("nan"),
                                                          _plots.NOT_SIGNIFICANT),
    "roc_auc": (-0.001, 0.5, _plots.NOT_SIGNIFICANT), "brier": (-0.02, 0.001, _plots.BETTER),
    "ece": (0.03, 0.01, _plots.WORSE), "mse": (250.0, 0.003, _plots.WORSE),
    "rmse": (-2.0, 0.04, _plots.BETTER), "mae": (1.0, 0.2, _plots.NOT_SIGNIFICANT),
    "r2": (0.05, 0.01, _plots.BETTER), "pinball": (0.5, 0.06, _plots.NOT_SIGNIFICANT),
    "under_rate": (-0.2, 0.001, _plots.CHANGED),
}
FLIP = {_plots.BETTER: _plots.WORSE, _plots.WORSE: _plots.BETTER}


def _paired(metrics, sign: float) -> dict:
  out = {}
  for m in metrics:
    diff, p, _ = PAIRED[m]
    half = 0.006 * max(abs(diff), 1.0)
    out[m] = {"mean_diff": sign * diff, "ci_low": sign * diff - half,
              "ci_high": sign * diff + half, "t": 3.0, "p_value": p}
  return out


def _scores(rng, metrics, base) -> dict:
  """Per-fold scores; bounded metrics include their exact bounds."""
  edge = {"accuracy": [1.0, 0.99], "precision": [1.0, 1.0], "roc_auc": [1.0, 0.999],
          "brier": [0.0, 0.004], "ece": [0.0, 0.01], "r2": [1.0, 0.97]}
  out = {}
  for m in metrics:
    if m in edge:
      v = np.r_[edge[m], np.clip(base[m] + rng.normal(0, 0.01, FOLDS - 2), 0, 1)]
    else:
      v = np.clip(base[m] * (1 + rng.normal(0, 0.05, FOLDS)), *_plots.RANGES[m])
    out[m] = v.astype(np.float64)
  return out


def _result(task: str, seed: int = 0, **settings) -> ComparisonResult:
  rng = np.random.default_rng(seed)
  n = {"binary": 160, "multiclass": 360, "regression": 200}[task]
  specs = {"binary": ("bce", "bce:positive_weight=3", "focal:gamma=2"),
           "multiclass": ("ce", "ce:label_smoothing=0.1", "ce+l2:1e-3"),
           "regression": ("mse", "huber:delta=1", "asymmetric:under=1,over=0.1")}[task]
  metrics = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}[task]
  base = {"accuracy": 0.97, "precision": 0.98, "recall": 0.95, "f1": 0.96, "roc_auc": 0.995,
          "brier": 0.02, "ece": 0.03, "mse": 3000.0, "rmse": 55.0, "mae": 44.0, "r2": 0.98,
          "pinball": 20.0, "under_rate": 0.45}
  num_classes = {"binary": 2, "multiclass": 12, "regression": 0}[task]
  if task == "regression":
    y = rng.normal(150, 60, n).astype(np.float32)
    probs = {s: (y + rng.normal(0, 50, n)).astype(np.float32) for s in specs}
    preds = probs
  elif task == "binary":
    y = (rng.random(n) < 0.4).astype(np.int32)
    probs = {s: (1 / (1 + np.exp(-((2 * y - 1) * (3.0 - 0.6 * i) + rng.normal(0, 1.2, n)))))
             .astype(np.float32) for i, s in enumerate(specs)}
    preds = {s: (p > 0.5).astype(np.int32) for s, p in probs.items()}
  else:
    y = rng.integers(0, num_classes, n).astype(np.int32)
    probs = {}
    for s in specs:
      z = rng.normal(0, 1, (n, num_classes)) + 3 * np.eye(num_classes)[y]
      probs[s] = (np.exp(z) / np.exp(z).sum(1, keepdims=True)).astype(np.float32)
    preds = {s: p.argmax(1).astype(np.int32) for s, p in probs.items()}
  curve = lambda scale: scale * np.exp(-np.linspace(0, 2, 6))[None, :] * (
      1 + 0.1 * rng.random((FOLDS, 6)))
  return ComparisonResult(
      specs=specs, scores={s: _scores(rng, metrics, base) for s in specs},
      train_loss={s: curve(0.5) for s in specs}, seconds={s: 1.0 for s in specs},
      task=task, settings=dict(folds=FOLDS, repeats=1, num_classes=num_classes,
                               confidence=0.95, target_recall=0.95, n_samples=n,
                               n_features=3, model="mlp", hidden=4, learning_rate=0.01,
                               epochs=6, batch_size=32, seed=seed, data_sha256="0" * 64,
                               **settings),
      predictions=preds, metrics=metrics, probabilities=probs, labels=y,
      held_out_loss={s: curve(0.6) for s in specs},
      paired={s: _paired(metrics, 1.0 if i == 1 else -1.0) for i, s in enumerate(specs[1:], 1)})


@pytest.fixture(scope="module")
def results():
  binary = _result("binary", class_names=["benign", "malignant"])
  multiclass = _result("multiclass", seed=1)
  regression = _result("regression", seed=2)
  return {"binary": (binary, binary.curves()), "multiclass": (multiclass, multiclass.curves()),
          "regression": (regression, None)}


def _texts(ax_or_fig) -> list[str]:
  return [t.get_text() for t in ax_or_fig.texts]


def _tick_overlaps(fig) -> list[tuple[str, str]]:
  """Pairs of visible tick labels (of any axes of ``fig``) whose drawn boxes overlap."""
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  renderer = canvas.get_renderer()
  boxes = []
  for ax in fig.axes:
    for axis in (ax.xaxis, ax.yaxis):
      lo, hi = sorted(axis.get_view_interval())
      for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if not lo - 1e-12 <= tick.get_loc() <= hi + 1e-12:
          continue
        for label in (tick.label1, tick.label2):
          if label.get_visible() and label.get_text():
            boxes.append((label.get_text(), label.get_window_extent(renderer)))
  return [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:]
          if box.overlaps(other)]


def test_confusion_names_every_class_and_counts_every_cell(results):
  result, curves = results["binary"]
  fig = _plots.confusion_figure(result, curves)
  assert len(fig.axes) == 3
  for i, (ax, spec) in enumerate(zip(fig.axes, result.specs)):
    np.testing.assert_array_equal(ax.get_xticks(), [0, 1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["benign", "malignant"]
    np.testing.assert_array_equal(ax.get_yticks(), [0, 1])
    if i == 0:
      assert [t.get_text() for t in ax.get_yticklabels()] == ["benign", "malignant"]
    cm = np.asarray(curves[spec]["confusion"])
    assert _texts(ax) == [str(v) for v in cm.ravel()]
    assert cm.sum() == len(result.labels)
  assert "positive class: malignant" in fig._suptitle.get_text()
  # The positive label of the settings wins; without class names, the indices.
  other = dataclasses.replace(result, settings={**result.settings, "positive_label": "M"})
  assert "positive class: M" in _plots.confusion_figure(other, curves)._suptitle.get_text()
  bare = dataclasses.replace(result, settings={k: v for k, v in result.settings.items()
                                               if k != "class_names"})
  ax = _plots.confusion_figure(bare, curves).axes[0]
  assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]

  result, curves = results["multiclass"]  # 12 classes: every one labelled, 144 counts
  fig = _plots.confusion_figure(result, curves)
  for i, ax in enumerate(fig.axes):
    np.testing.assert_array_equal(ax.get_xticks(), np.arange(12))
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in range(12)]
    assert len(_texts(ax)) == 144
  assert "positive" not in fig._suptitle.get_text()


def test_confusion_names_from_settings_and_colour_bar_beyond_20_classes(results):
  result, curves = results["multiclass"]
  names = [f"class {c}" for c in range(12)]
  named = dataclasses.replace(result, settings={**result.settings, "class_names": names})
  fig = _plots.confusion_figure(named, curves)
  assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == names
  assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == names
  assert _tick_overlaps(fig) == []
  many = {s: {"confusion": np.diag(np.arange(1, 26)).tolist()} for s in result.specs}
  wide = dataclasses.replace(result, settings={**result.settings, "num_classes": 25})
  fig = _plots.confusion_figure(wide, many)
  assert len(fig.axes) == 4 and fig.axes[-1].get_label() == "<colorbar>"  # no counts
  assert all(_texts(ax) == [] for ax in fig.axes[:3])


def test_roc_pr_legends_give_fold_spread_and_zoom_shows_every_curve(results):
  result, curves = results["binary"]
  fig = _plots.roc_pr_figure(result, curves)
  roc, roc_in, pr, pr_in = fig.axes
  roc_legend = [t.get_text() for t in roc.get_legend().get_texts()]
  pr_legend = [t.get_text() for t in pr.get_legend().get_texts()]
  for spec, roc_text, pr_text in zip(result.specs, roc_legend, pr_legend):
    auc = result.scores[spec]["roc_auc"]
    assert roc_text == f"{spec}: AUC {np.mean(auc):.3f} ± {np.std(auc):.3f}"
    # Without per-fold AP in the result: the AP of the pooled held-out rows.
    ap = average_precision_score(result.labels, result.probabilities[spec])
    assert pr_text == f"{spec}: AP {ap:.3f}"
    assert _plots.average_precision_from_curve(
        curves[spec]["pr"]["precision"], curves[spec]["pr"]["recall"]) == pytest.approx(ap)
  assert f"over {FOLDS} folds" in roc.get_legend().get_title().get_text()
  assert fig._suptitle.get_text() == "Positive class: malignant (class 1)"
  # The zoom is smaller than the full square, and every curve passes through it.
  (x0, x1), (y0, y1) = roc_in.get_xlim(), roc_in.get_ylim()
  assert x0 == 0 and x1 < 1 and 0 < y0 < 1
  (r0, r1), (p0, p1) = pr_in.get_xlim(), pr_in.get_ylim()
  assert 0 < r0 < 1 and 0 <= p0 < 1
  for spec in result.specs:
    fpr, tpr = (np.asarray(curves[spec]["roc"][k]) for k in ("fpr", "tpr"))
    assert np.any((fpr <= x1) & (tpr >= y0) & (tpr < 1))
    rec, prec = (np.asarray(curves[spec]["pr"][k]) for k in ("recall", "precision"))
    assert np.any((rec >= r0) & (prec >= p0) & (prec < 1))
  assert roc.get_xlim() == (0, 1) and pr.get_ylim() == (0, 1)
  # Per-fold AP in the result: its mean ± std.
  scores = {s: {**result.scores[s], "average_precision": np.array([0.9, 1.0, 0.95, 0.9, 1.0])}
            for s in result.specs}
  fig = _plots.roc_pr_figure(dataclasses.replace(result, scores=scores), curves)
  assert fig.axes[2].get_legend().get_texts()[0].get_text() == "bce: AP 0.950 ± 0.045"
  assert _tick_overlaps(fig) == []


def test_zoom_boxes_on_known_curves():
  perfect = (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0]))
  assert _plots.roc_zoom([perfect]) == (pytest.approx(0.005), pytest.approx(0.995))
  # Reaches TPR 0.9 at FPR 0 and TPR 1 at FPR 0.2: the box is [0, 0.215] x [0.89, 1].
  good = (np.array([0.0, 0.0, 0.1, 0.2, 1.0]), np.array([0.0, 0.9, 0.95, 1.0, 1.0]))
  assert _plots.roc_zoom([perfect, good]) == (pytest.approx(0.215), pytest.approx(0.89))
  # scikit-learn order (recall decreasing): precision 1 up to recall 0.8.
  pr = (np.array([1.0, 0.9, 0.8, 0.0]), np.array([0.5, 0.9, 1.0, 1.0]))
  left, low = _plots.pr_zoom([pr])
  assert left == pytest.approx(0.8 - 0.01 - 0.005) and low == pytest.approx(0.5 - 0.025 - 0.005)


def test_reliability_histogram_counts_every_row_in_calibration_bins(results):
  result, curves = results["binary"]
  fig = _plots.reliability_figure(result, curves)
  top, bottom = fig.axes
  bars = bottom.patches
  k = len(result.specs)
  assert len(bars) == k * _plots.RELIABILITY_BINS
  for i, spec in enumerate(result.specs):
    heights = np.array([b.get_height() for b in bars[i * 10:(i + 1) * 10]])
    assert heights.sum() == len(result.labels)
    # scikit-learn's binning (sklearn/calibration.py, calibration_curve:
    # binids = np.searchsorted(bins[1:-1], y_prob)): one point per non-empty bin.
    p = np.asarray(result.probabilities[spec], np.float64)
    expected = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
    np.testing.assert_array_equal(heights, expected)
    prob_true, _ = calibration_curve(result.labels, p, n_bins=10)
    assert np.count_nonzero(heights) == len(prob_true)
    centres = np.array([b.get_x() + b.get_width() / 2 for b in bars[i * 10:(i + 1) * 10]])
    assert np.all((centres > np.arange(10) / 10) & (centres < np.arange(1, 11) / 10))
  assert top.get_xlim() == bottom.get_xlim() == (0, 1)
  assert "ECE" in top.get_legend().get_texts()[1].get_text()
  assert _tick_overlaps(fig) == []


def test_metric_axes_stay_inside_their_range_and_ticks_do_not_overlap(results):
  for task in ("binary", "multiclass", "regression"):
    result = results[task][0]
    fig = _plots.metrics_figure(result)
    assert len(fig.axes) == len(result.metrics)  # no hidden panels
    for ax, m in zip(fig.axes, result.metrics):
      assert ax.get_title().startswith(m)
      lo, hi = ax.get_xlim()
      low, high = _plots.RANGES[m]
      assert low <= lo < hi <= high, (m, lo, hi)
      values = np.concatenate([result.scores[s][m] for s in result.specs])
      assert lo <= values.min() and values.max() <= hi  # every fold's score is shown
      if (low, high) == (0.0, 1.0):
        assert hi - lo >= 0.1 - 1e-12
    assert _tick_overlaps(fig) == []
    # Spec names label the first panel of each row only.
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(result.specs)
    assert len(fig.axes[1].get_yticks()) == 0


def test_differences_colour_better_worse_and_not_significant(results):
  for task in ("binary", "regression"):
    result = results[task][0]
    fig = _plots.differences_figure(result)
    for ax, m in zip(fig.axes, result.metrics):
      # The means, one per spec after the baseline, in one point set per marker.
      points = [c for c in ax.collections if c.get_label() in _plots.MARKERS.values()]
      found = {float(y): (float(x), tuple(colour), c.get_label()) for c in points
               for (x, y), colour in zip(c.get_offsets(), c.get_facecolors())}
      expected = PAIRED[m][2]
      colours = [expected, FLIP.get(expected, expected)]  # the third spec's signs are flipped
      for y, spec, colour in zip((1.0, 0.0), result.specs[1:], colours):
        assert found[y] == (pytest.approx(result.paired[spec][m]["mean_diff"]),
                            pytest.approx(to_rgba(colour)), _plots.MARKERS[colour])
      assert ax.get_xlim()[0] < 0 < ax.get_xlim()[1]
    legend = {t.get_text(): h.get_color() for t, h in zip(fig.legends[0].get_texts(),
                                                          fig.legends[0].legend_handles)}
    assert len(set(_plots.MARKERS.values())) == 4  # the verdicts differ in shape too
    assert legend["better than the baseline"] == _plots.BETTER
    assert legend["worse than the baseline"] == _plots.WORSE
    assert legend["not significant (95% CI contains 0)"] == _plots.NOT_SIGNIFICANT
    assert (_plots.CHANGED in legend.values()) == (task == "regression")  # under_rate
    assert _tick_overlaps(fig) == []


def test_loss_curves_use_plain_log_labels(results):
  result = results["binary"][0]
  fig = _plots.loss_figure(result)
  ax = fig.axes[1]
  assert ax.get_yscale() == "log"
  FigureCanvasAgg(fig).draw()
  labels = [t.get_text() for t in ax.get_yticklabels(which="both") if t.get_text()]
  assert labels and not any("$" in t or "times" in t for t in labels)
  assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == list(result.specs)


def test_each_figure_is_saved_once_with_a_fixed_layout(results, tmp_path, monkeypatch):
  from matplotlib.figure import Figure
  result = results["binary"][0]
  saved = []

  def savefig(fig, path, *args, **kwargs):  # records instead of drawing
    saved.append((path.name, fig.get_layout_engine(), kwargs.get("bbox_inches"),
                  kwargs.get("dpi")))

  monkeypatch.setattr(Figure, "savefig", savefig)
  paths = report._compare_plots(result, tmp_path)  # what write_report draws
  names = ["metrics.png", "train_loss.png", "differences.png", "roc_pr.png", "reliability.png",
           "confusion.png"]
  assert [p.name for p in paths] == [name for name, *_ in saved] == names
  assert all(engine is None and bbox is None and dpi == _plots.DPI
             for _, engine, bbox, dpi in saved)


def test_sweep_and_augmentation_figures():
  # A sweep's figure plots each metric's fold mean against the swept values,
  # with the corrected resampled interval of experiments.stats as its band;
  # the augmentation figure shows the stored images, top row as given.
  from lossreg_jax.experiments import _plots_sweep, corrected_resampled_ttest
  base = _result("binary", seed=3)
  sweep = {"spec": "bce:positive_weight=1|3", "values": ["1", "3"],
           "specs": ["bce", "bce:positive_weight=3"]}
  rng = np.random.default_rng(0)
  images = rng.normal(size=(2, 3, 4, 4, 1))
  result = dataclasses.replace(base, sweeps=(sweep,), examples={
      "bce": {"original": images[0], "augmented": images[1]}})
  fig = _plots_sweep.sweep_figure(result, sweep)
  axes = fig.axes
  assert len(axes) == len(result.metrics)
  for ax, m in zip(axes, result.metrics):
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]
    line = ax.lines[0]
    scores = np.stack([result.scores[s][m] for s in sweep["specs"]])
    np.testing.assert_allclose(line.get_ydata(), scores.mean(axis=1))
    test = corrected_resampled_ttest(scores, test_train_ratio=1 / (FOLDS - 1))
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([band.min(), band.max()],
                               [np.min(test.ci_low), np.max(test.ci_high)], rtol=1e-6)
  assert "positive_weight=1|3" in fig._suptitle.get_text()
  assert axes[-1].get_xlabel() == "swept value"
  fig = _plots_sweep.augment_figure(result, "bce")
  assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "training rows"
  np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), images[0, 0, ..., 0])
  np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), images[1, 0, ..., 0])
  assert fig.axes[3].get_ylabel() == "as augmented"


def test_small_differences_get_plain_tick_labels_without_an_offset():
  # A ROC AUC difference of 5e-4 once drew ticks "-5 0 5" with a "1e-4"
  # multiplier clipped below the panel; the labels must carry the numbers.
  base = _result("binary", seed=4)
  paired = {s: {m: dict(v) for m, v in p.items()} for s, p in base.paired.items()}
  for p in paired.values():
    p["roc_auc"].update(mean_diff=5e-4, ci_low=-2e-4, ci_high=9e-4)
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  fig = _plots.differences_figure(dataclasses.replace(base, paired=paired))
  FigureCanvasAgg(fig).draw()
  ax = fig.axes[base.metrics.index("roc_auc")]
  labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
  assert ax.xaxis.get_offset_text().get_text() == ""
  assert any("0.000" in label for label in labels), labels
