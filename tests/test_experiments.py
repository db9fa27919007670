"""Tests for lossreg_jax.experiments: spec parser, compare_losses, regularization_path, reports."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import datasets, experiments, metrics, selection


def toy_binary(n=32, d=3, seed=0):
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, d)).astype(np.float32)
  y = (X @ np.array([1.5, -2.0, 0.5][:d]) > 0).astype(np.float32)
  return jnp.asarray(X), jnp.asarray(y)


# ------------------------------------------------------------- spec parser


@pytest.mark.parametrize("text, loss, params, penalties", [
    ("bce", "bce", {"positive_weight": 1.0, "label_smoothing": 0.0}, ()),
    ("bce:positive_weight=3", "bce", {"positive_weight": 3.0, "label_smoothing": 0.0}, ()),
    ("focal:gamma=2", "focal", {"gamma": 2.0}, ()),
    ("focal:alpha=0.25,gamma=2", "focal", {"alpha": 0.25, "gamma": 2.0}, ()),
    ("hinge", "hinge", {}, ()),
    ("mse", "mse", {}, ()),
    ("huber:delta=0.5+l2:1e-3", "huber", {"delta": 0.5}, (("l2", {"strength": 1e-3}),)),
    ("quantile:q=0.9", "quantile", {"q": 0.9}, ()),
    ("asymmetric:under=1,over=0.1", "asymmetric", {"under": 1.0, "over": 0.1}, ()),
    ("asymmetric", "asymmetric", {"under": 1.0, "over": 0.1}, ()),
    ("log_cosh+dropout:0.1", "log_cosh", {}, (("dropout", {"rate": 0.1}),)),
    ("l2:1e-3", None, {}, (("l2", {"strength": 1e-3}),)),
    ("l1:1e+2", None, {}, (("l1", {"strength": 100.0}),)),
    ("elastic:alpha=0.01,l1_ratio=0.2", None, {},
     (("elastic", {"alpha": 0.01, "l1_ratio": 0.2}),)),
    (" bce:positive_weight=3 + l2:1e-3+dropout:0.2 ", "bce",
     {"positive_weight": 3.0, "label_smoothing": 0.0},
     (("l2", {"strength": 1e-3}), ("dropout", {"rate": 0.2}))),
])
def test_parse_spec(text, loss, params, penalties):
  spec = experiments.parse_spec(text)
  assert (spec.text, spec.loss, spec.loss_params, spec.penalties) == (
      text.strip(), loss, params, penalties)


@pytest.mark.parametrize("text, message", [
    ("bce:positive_wieght=3", r"unknown parameter 'positive_wieght'.*positive_weight, "
                              r"label_smoothing"),
    ("mes", r"unknown term 'mes'.*valid losses: bce, focal, hinge, ce, mse, mae, huber, "
            r"log_cosh, quantile, asymmetric.*l2, l1, elastic, dropout"),
    ("quantile:q=1.5", r"'q' must be in \[0, 1\]"),
    ("asymmetric:under=1,over=-1", r"'over' must be in"),
    ("huber:delta=x", "must be a number"),
    ("focal:gamma=two", r"'gamma' must be a number, got 'two'"),
    ("focal:gamma=__import__('os')", "must be a number"),
    ("l2", "l2 needs strength"),
    ("bce+focal", "two losses"),
    ("l2:1+l2:2", "repeats"),
    ("focal:alpha=2", r"must be in \[0, 1\]"),
    ("hinge:3", "KEY=VALUE"),
    ("bce+", "valid"),
    ("", "non-empty"),
])
def test_parse_spec_errors(text, message):
  with pytest.raises(ValueError, match=message):
    experiments.parse_spec(text)


# ------------------------------------------------------------ compare_losses


@pytest.mark.slow
def test_compare_vmapped_folds_equal_loop():
  X, y = toy_binary(n=60, d=3, seed=1)
  y = y.astype(jnp.int32)
  kw = dict(folds=3, epochs=3, batch_size=16, seed=2)
  specs = ["bce:positive_weight=2+l2:1e-2+dropout:0.3"]
  fast = experiments.compare_losses(X, y, specs, **kw)
  slow = experiments.compare_losses(X, y, specs, vmap_folds=False, **kw)
  for m in ("accuracy", "precision", "recall", "f1"):
    np.testing.assert_allclose(fast.scores[specs[0]][m], slow.scores[specs[0]][m], atol=1e-6)
  np.testing.assert_allclose(fast.train_loss[specs[0]], slow.train_loss[specs[0]], rtol=1e-4)
  np.testing.assert_allclose(fast.held_out_loss[specs[0]], slow.held_out_loss[specs[0]],
                             rtol=1e-4)
  assert fast.train_loss[specs[0]].shape == (3, 3)


def test_compare_scores_and_summary():
  ds = datasets.load("breast_cancer")
  # The same settings as test_cli and the doctest: compiled programs are reused.
  res = experiments.compare_losses(ds.X, ds.y, ["bce", "hinge+l1:1e-3", "focal:alpha=0.25"],
                                folds=3, epochs=2, hidden=4, learning_rate=0.05)
  assert res.task == "binary" and res.specs == ("bce", "hinge+l1:1e-3", "focal:alpha=0.25")
  for spec in res.specs:
    acc = res.scores[spec]["accuracy"]
    assert acc.shape == (3,) and np.all(acc > 0.85)
  # F1 per fold is the harmonic mean of that fold's precision and recall.
  p, r, f = (res.scores["bce"][m] for m in ("precision", "recall", "f1"))
  np.testing.assert_allclose(f, 2 * p * r / (p + r), rtol=1e-5)
  summary = res.summary()
  assert summary["bce"]["f1"][0] == pytest.approx(float(np.mean(f)))
  assert "hinge+l1:1e-3" in res.table() and " ± " in res.table()
  json.dumps(res.to_dict())
  # Held-out predictions, checked fold by fold (the masks as compare_losses draws them).
  masks = np.asarray(selection.kfold_masks(len(ds.y), 3, key=jax.random.fold_in(
      jax.random.key(0), 1), stratify=jnp.asarray(ds.y)))
  for spec in res.specs:
    pred = res.predictions[spec]
    assert pred.shape == ds.y.shape and set(np.unique(pred)) <= {0, 1}
    per_fold = [np.mean(pred[m] == ds.y[m]) for m in masks]
    np.testing.assert_allclose(per_fold, res.scores[spec]["accuracy"], rtol=1e-6)


@pytest.mark.slow
def test_compare_multiclass_and_task_errors():
  ds = datasets.load("wine")
  res = experiments.compare_losses(ds.X, ds.y, ["ce", "ce:label_smoothing=0.1"], folds=3,
                                epochs=3, hidden=4, learning_rate=0.05)
  assert res.task == "multiclass" and float(res.scores["ce"]["accuracy"].mean()) > 0.85
  assert not np.array_equal(res.scores["ce"]["f1"], res.scores["ce:label_smoothing=0.1"]["f1"])
  with pytest.raises(ValueError, match="'bce'.*3 classes.*'ce'"):
    experiments.compare_losses(ds.X, ds.y, ["bce"], folds=3, epochs=1)
  with pytest.raises(ValueError, match="'ce'.*needs class labels.*regression.*use 'mse'"):
    experiments.compare_losses(ds.X, ds.y.astype(jnp.float32), ["ce"])
  with pytest.raises(ValueError, match="folds"):
    experiments.compare_losses(ds.X, ds.y, ["ce"], folds=1)


def test_kfold_masks_are_the_folds_used():
  # compare_losses holds every row out exactly once (via selection.kfold_masks).
  masks = selection.kfold_masks(30, 3, key=jax.random.key(0), stratify=jnp.arange(30) % 2)
  assert masks.shape == (3, 30) and np.all(np.asarray(masks).sum(0) == 1)


def test_regularization_path_and_report(tmp_path):
  ds = datasets.load("diabetes")
  res = experiments.regularization_path(ds.X, ds.y, n_alphas=12, cv=3,
                                     feature_names=ds.feature_names, vs_sklearn=True)
  from sklearn.linear_model import enet_path
  assert res.coefs.shape == (10, 12) and res.mse_path.shape == (12, 3)
  assert res.alpha in res.alphas and res.sklearn["alpha"] == pytest.approx(res.alpha, rel=1e-3)
  # Same grid as scikit-learn's enet_path (centred data, as with fit_intercept).
  Xc = np.asarray(ds.X, np.float64) - np.asarray(ds.X, np.float64).mean(0)
  sk_alphas, _, _ = enet_path(Xc, np.asarray(ds.y, np.float64) - float(ds.y.mean()),
                              l1_ratio=0.5, alphas=12)
  np.testing.assert_allclose(res.alphas, sk_alphas, rtol=1e-4)
  written = experiments.write_report(res, tmp_path / "out", context={"dataset": "diabetes"})
  assert {p.name for p in written} == {"report.md", "results.json", "coef_path.png",
                                       "cv_curve.png"}
  assert (tmp_path / "out" / "coef_path.png").read_bytes()[:4] == b"\x89PNG"
  data = json.loads((tmp_path / "out" / "results.json").read_text())
  assert data["alpha"] == pytest.approx(res.alpha) and "bmi" in data["coef"]
  assert "chosen alpha" in (tmp_path / "out" / "report.md").read_text()
  with pytest.raises(TypeError, match="ComparisonResult"):
    experiments.write_report({"a": 1}, tmp_path)


# --------------------------------------------- regression, repeats, paired statistics

# Small settings shared by these tests, the CLI tests and the doctests (compiled
# programs are reused within one process).
FAST = dict(folds=3, epochs=2, hidden=4, learning_rate=0.05)


def _masks(n, folds, repeats, y=None, seed=0):
  base = jax.random.fold_in(jax.random.key(seed), 1)
  keys = [base] + [jax.random.fold_in(base, r) for r in range(1, repeats)]
  return np.concatenate([np.asarray(selection.kfold_masks(
      n, folds, key=k, stratify=None if y is None else jnp.asarray(y))) for k in keys])


def test_regression_scores_equal_sklearn_on_held_out_predictions():
  from sklearn import metrics as skm
  ds = datasets.load("diabetes")
  specs = ["mse", "quantile:q=0.9", "asymmetric:under=1,over=0.1"]
  res = experiments.compare_losses(ds.X, ds.y, specs, **FAST)
  assert res.task == "regression" and res.metrics == (
      "mse", "rmse", "mae", "r2", "pinball", "under_rate")
  y = np.asarray(ds.y, np.float64)
  for spec in specs:
    pred = np.asarray(res.predictions[spec], np.float64)
    np.testing.assert_array_equal(res.probabilities[spec], res.predictions[spec])
    for i, m in enumerate(_masks(len(y), 3, 1)):
      want = {"mse": skm.mean_squared_error(y[m], pred[m]),
              "rmse": np.sqrt(skm.mean_squared_error(y[m], pred[m])),
              "mae": skm.mean_absolute_error(y[m], pred[m]),
              "r2": skm.r2_score(y[m], pred[m]),
              "pinball": skm.mean_pinball_loss(y[m], pred[m], alpha=0.9),
              "under_rate": np.mean(pred[m] < y[m])}
      for metric, value in want.items():
        np.testing.assert_allclose(res.scores[spec][metric][i], value, rtol=2e-4,
                                   err_msg=f"{spec} {metric}")
  # The asymmetric loss does what it is for: fewer under-predicted targets than MSE.
  under = {s: res.scores[s]["under_rate"].mean() for s in specs}
  assert under["asymmetric:under=1,over=0.1"] < under["mse"] - 0.1
  assert res.held_out_loss["mse"].shape == (3, 2)


def test_default_specs_follow_the_task():
  assert experiments.default_specs("binary")[0] == "bce"
  assert experiments.default_specs("multiclass") == ("ce", "ce:label_smoothing=0.1",
                                                     "ce+l2:1e-3")
  assert "asymmetric:under=1,over=0.1" in experiments.default_specs("regression")
  ds = experiments.next_quarter_growth()
  res = experiments.compare_losses(ds.X, ds.y, None, **FAST)
  assert res.specs == experiments.default_specs("regression")
  # Integer targets are classes unless task= says otherwise.
  y = np.round(np.asarray(ds.y)).astype(np.int32)  # same shapes: the program is reused
  assert experiments.compare_losses(ds.X, y, ["mse"], task="regression", **FAST).task == (
      "regression")


def test_next_quarter_growth_matches_notebook_definition():
  ds = experiments.next_quarter_growth()
  macro = datasets.load("macrodata", target="realgdp")
  g = 400 * np.diff(np.log(np.asarray(macro.y, np.float64)))
  np.testing.assert_allclose(ds.y, g[1:], rtol=1e-5)      # growth of quarter t + 1
  np.testing.assert_allclose(ds.X[:, 0], g[:-1], rtol=1e-5)  # ... from quarter t's growth
  assert np.all(np.isfinite(ds.X))


def test_repeated_folds_and_paired_interval_equal_scipy():
  from scipy import stats as sps
  ds = datasets.load("breast_cancer")
  specs = ["bce", "bce:positive_weight=3", "focal:gamma=2"]
  res = experiments.compare_losses(ds.X, ds.y, specs, repeats=3, **FAST)
  assert res.settings["repeats"] == 3 and res.scores["bce"]["f1"].shape == (9,)
  assert res.train_loss["bce"].shape == res.held_out_loss["bce"].shape == (9, 2)
  # The repeats are different splits, each holding every row out once.
  masks = _masks(len(ds.y), 3, 3, y=ds.y)
  assert np.all(masks.reshape(3, 3, -1).sum(1) == 1)
  assert not np.array_equal(masks[:3], masks[3:6])
  # Repeat 0's held-out predictions give that repeat's per-fold accuracy.
  for i, m in enumerate(masks[:3]):
    np.testing.assert_allclose(np.mean(res.predictions["bce"][m] == np.asarray(ds.y)[m]),
                               res.scores["bce"]["accuracy"][i], rtol=1e-6)
  assert set(res.paired) == {"bce:positive_weight=3", "focal:gamma=2"}
  for spec in specs[1:]:
    for metric in res.metrics:
      d = res.scores[spec][metric] - res.scores["bce"][metric]
      J = len(d)
      se = np.sqrt((1 / J + 1 / (3 - 1)) * np.var(d, ddof=1))  # Nadeau & Bengio (2003)
      q = sps.t.ppf(0.975, J - 1)
      got = res.paired[spec][metric]
      assert got["mean_diff"] == pytest.approx(d.mean(), abs=1e-7)
      if se == 0:
        assert got["ci_low"] == got["ci_high"] == pytest.approx(d.mean(), abs=1e-7)
        continue
      t = d.mean() / se
      assert got["ci_low"] == pytest.approx(d.mean() - q * se, rel=1e-4, abs=1e-6)
      assert got["ci_high"] == pytest.approx(d.mean() + q * se, rel=1e-4, abs=1e-6)
      assert got["t"] == pytest.approx(t, rel=1e-4, abs=1e-6)
      assert got["p_value"] == pytest.approx(2 * sps.t.sf(abs(t), J - 1), rel=1e-3, abs=1e-6)
  table = res.table()
  assert "paired difference to 'bce'" in table and re.search(r"[+-]\d\.\d{3} \[[+-]", table)
  json.dumps(res.to_dict(), allow_nan=False)


def test_binary_calibration_scores_equal_sklearn():
  from sklearn import metrics as skm
  ds = datasets.load("breast_cancer")
  res = experiments.compare_losses(ds.X, ds.y, ["bce", "hinge+l1:1e-3"], **FAST)
  y = np.asarray(ds.y)
  for spec in res.specs:
    prob = np.asarray(res.probabilities[spec], np.float64)
    assert prob.shape == y.shape and np.all((prob >= 0) & (prob <= 1))
    for i, m in enumerate(_masks(len(y), 3, 1, y=y)):
      np.testing.assert_allclose(res.scores[spec]["brier"][i],
                                 skm.brier_score_loss(y[m], prob[m]), rtol=1e-4)
      np.testing.assert_allclose(res.scores[spec]["roc_auc"][i],
                                 skm.roc_auc_score(y[m], prob[m]), rtol=1e-5)
      # Not a table column: the per-fold AP behind the report's PR legend.
      np.testing.assert_allclose(res.scores[spec]["average_precision"][i],
                                 skm.average_precision_score(y[m], prob[m]), rtol=1e-4)
      np.testing.assert_allclose(res.scores[spec]["precision"][i],
                                 skm.precision_score(y[m], prob[m] > 0.5), rtol=1e-5)
      # ECE through where= inside the vmapped scorer equals ECE on the fold's rows.
      np.testing.assert_allclose(res.scores[spec]["ece"][i], metrics.expected_calibration_error(
          jnp.asarray(prob[m], jnp.float32), jnp.asarray(y[m]), n_bins=10), rtol=1e-5)
  # Threshold at a target recall, checked against sklearn's precision-recall curve.
  got = res.threshold_for_recall(0.95)
  for spec in res.specs:
    precision, recall, thresholds = skm.precision_recall_curve(y, res.probabilities[spec])
    ok = np.flatnonzero(recall[:-1] >= 0.95)
    i = ok[np.argmax(thresholds[ok])]
    assert got[spec]["threshold"] == pytest.approx(thresholds[i])
    assert got[spec]["precision"] == pytest.approx(precision[i])
    assert got[spec]["recall"] == pytest.approx(recall[i]) and recall[i] >= 0.95


def test_multiclass_defaults_on_digits():
  ds = datasets.load("digits")
  res = experiments.compare_losses(ds.X, ds.y, None, folds=3, epochs=1, hidden=4,
                                   learning_rate=0.05)
  assert res.task == "multiclass" and res.specs == experiments.default_specs("multiclass")
  assert res.metrics == ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece")
  assert res.probabilities["ce"].shape == (len(ds.y), 10)
  np.testing.assert_allclose(res.probabilities["ce"].sum(1), 1.0, rtol=1e-5)
  from sklearn import metrics as skm
  y, prob = np.asarray(ds.y), np.asarray(res.probabilities["ce"], np.float64)
  raw = prob.copy()  # the scorer's own values: renormalizing could reorder near-ties
  prob /= prob.sum(1, keepdims=True)  # float32 softmax rows sum to 1 within 1e-7
  for i, m in enumerate(_masks(len(y), 3, 1, y=y)):
    # scikit-learn >= 1.7's multiclass Brier score: mean over rows of the sum over classes.
    np.testing.assert_allclose(res.scores["ce"]["brier"][i],
                               skm.brier_score_loss(y[m], prob[m], labels=np.arange(10)),
                               rtol=1e-4)
    np.testing.assert_allclose(res.scores["ce"]["f1"][i],
                               skm.f1_score(y[m], prob[m].argmax(1), average="macro"), rtol=1e-5)
    np.testing.assert_allclose(res.scores["ce"]["roc_auc"][i],
                               skm.roc_auc_score(y[m], raw[m], multi_class="ovr"), rtol=1e-5)
  assert float(res.scores["ce"]["accuracy"].mean()) > 0.5


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden=-1), r"hidden must be an int >= 0, got -1"),
    (dict(hidden=2.5), r"hidden must be an int >= 0, got 2.5"),
    (dict(learning_rate=0.0), r"learning_rate must be a finite number in \(0, inf\]"),
    (dict(learning_rate=float("nan")), r"learning_rate must be a finite number.*nan"),
    (dict(repeats=0), r"repeats must be an int >= 1"),
    (dict(folds=True), r"folds must be an int"),
    (dict(confidence=1.0), r"confidence must be"),
    (dict(task="ordinal"), r"task must be one of"),
    (dict(task="binary"), r"task='binary' but y has 347 classes"),
])
def test_compare_argument_errors_name_the_argument(kwargs, message):
  ds = datasets.load("diabetes")
  with pytest.raises(ValueError, match=message):
    experiments.compare_losses(ds.X, ds.y, ["mse"], **{**FAST, **kwargs})


def test_compare_rejects_non_finite_inputs():
  X, y = toy_binary(n=30)
  X = np.asarray(X).copy()
  X[4, 1] = np.nan
  with pytest.raises(ValueError, match=r"X must be finite.*row 4, column 1"):
    experiments.compare_losses(X, np.asarray(y, np.int32), ["bce"], **FAST)
  with pytest.raises(ValueError, match=r"y must be finite"):
    experiments.compare_losses(np.zeros((3, 2)), np.array([1.0, np.inf, 2.0]), ["mse"])


def test_divergence_names_spec_fold_and_epoch():
  ds = datasets.load("diabetes")
  with pytest.raises(experiments.TrainingDivergedError,
                     match=r"training diverged for spec 'mse' \(fold 1, epoch [12]\)"):
    experiments.compare_losses(ds.X, ds.y, ["mse"], **{**FAST, "learning_rate": 1e30})
  assert issubclass(experiments.TrainingDivergedError, ValueError)


# ----------------------------------------------------------------- stats


@pytest.mark.parametrize("df", [1.0, 2.0, 4.0, 14.0, 100.0])
def test_t_quantile_and_p_value_equal_scipy(df):
  from scipy import stats as sps
  q = np.array([0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.995])
  got = jax.jit(experiments.t_quantile)(q, df)
  np.testing.assert_allclose(got, sps.t.ppf(q, df), rtol=2e-5, atol=1e-6)
  t = np.array([0.0, 0.5, 2.0, 10.0, 1e4, np.inf])
  np.testing.assert_allclose(experiments.t_two_sided_p(t, df), 2 * sps.t.sf(t, df),
                             rtol=1e-4, atol=1e-7)


def test_corrected_ttest_edge_cases_and_vmap():
  zero = experiments.corrected_resampled_ttest(jnp.zeros(6), test_train_ratio=0.25)
  assert [float(v) for v in zero] == [0.0, 0.0, 0.0, 0.0, 1.0]
  same = experiments.corrected_resampled_ttest(jnp.full(6, 0.01), test_train_ratio=0.25)
  assert float(same.t) == np.inf and float(same.p_value) == 0.0
  d = jax.random.normal(jax.random.key(0), (4, 10))
  batched = experiments.corrected_resampled_ttest(d, test_train_ratio=0.25)
  one = experiments.corrected_resampled_ttest(d[2], test_train_ratio=0.25)
  np.testing.assert_allclose([v[2] for v in batched], list(one), rtol=1e-6)
  # The correction widens the interval over the naive paired t-test's.
  naive = experiments.corrected_resampled_ttest(d[2], test_train_ratio=0.0)
  assert float(one.ci_high - one.ci_low) > float(naive.ci_high - naive.ci_low)
  with pytest.raises(ValueError, match="at least 2"):
    experiments.corrected_resampled_ttest(jnp.ones(1), test_train_ratio=0.25)


# ---------------------------------------------------------------- reports


def test_binary_report_has_curves_and_numbers(tmp_path):
  ds = datasets.load("breast_cancer")
  res = experiments.compare_losses(ds.X, ds.y, ["bce", "hinge+l1:1e-3"], **FAST)
  written = experiments.write_report(res, tmp_path, context={"data": "breast_cancer",
                                                             "wall seconds": 1.5})
  names = {p.name for p in written}
  assert names == {"report.md", "results.json", "metrics.png", "train_loss.png",
                   "differences.png", "roc_pr.png", "reliability.png", "confusion.png"}
  for name in names - {"report.md", "results.json"}:
    assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
  data = json.loads((tmp_path / "results.json").read_text())
  assert data["lossreg_jax_version"] and data["written_at"].endswith("+00:00")
  assert data["context"]["wall seconds"] == 1.5  # numbers stay numbers
  assert len(data["settings"]["data_sha256"]) == 64
  entry = data["results"][1]
  assert len(entry["held_out_loss_std"]) == len(entry["train_loss_mean"]) == 2  # the curves' bands
  assert isinstance(entry["paired"]["f1"]["ci_low"], float)
  curves = data["curves"]["bce"]
  assert curves["roc"]["fpr"][0] == 0.0 and curves["roc"]["tpr"][-1] == 1.0
  assert np.sum(curves["confusion"]) == len(ds.y)
  assert set(data["threshold_for_recall"]["specs"]) == {"bce", "hinge+l1:1e-3"}
  md = (tmp_path / "report.md").read_text()
  assert "Is the difference real?" in md and "Threshold for recall" in md
  assert "![reliability diagram](reliability.png)" in md


def test_regression_report_has_predictions_plot(tmp_path):
  ds = datasets.load("diabetes")
  res = experiments.compare_losses(ds.X, ds.y, ["mse", "quantile:q=0.9",
                                                "asymmetric:under=1,over=0.1"], **FAST)
  names = {p.name for p in experiments.write_report(res, tmp_path)}
  assert {"predictions.png", "differences.png"} <= names and "roc_pr.png" not in names
  data = json.loads((tmp_path / "results.json").read_text())
  assert len(data["curves"]["mse"]["predictions"]) == len(ds.y)
  assert data["higher_is_better"]["r2"] is True and data["higher_is_better"]["mse"] is False


@pytest.mark.slow
def test_path_report_warns_when_alpha_is_at_the_grid_edge(tmp_path):
  ds = datasets.load("diabetes")
  res = experiments.regularization_path(ds.X, ds.y, n_alphas=3, eps=0.5, cv=3)
  assert res.alpha == pytest.approx(float(np.min(res.alphas)))
  experiments.write_report(res, tmp_path)
  assert "**Warning**: the chosen alpha" in (tmp_path / "report.md").read_text()
  assert "SMALLEST of the grid" in (tmp_path / "report.md").read_text()


# ------------------------------------------------------------ bagged ensembles


@pytest.mark.parametrize("text, loss, penalties, members", [
    ("bce", "bce", (), 1),
    ("bce+ensemble:5", "bce", (), 5),
    ("bce+l2:1e-3+ensemble:5", "bce", (("l2", {"strength": 1e-3}),), 5),
    ("ensemble:2", None, (), 2),
    (" Ensemble:members=64 + mse ", "mse", (), 64),
    ("ensemble:3+dropout:0.1", None, (("dropout", {"rate": 0.1}),), 3),
])
def test_parse_ensemble_term(text, loss, penalties, members):
  spec = experiments.parse_spec(text)
  assert (spec.loss, spec.penalties, spec.members) == (loss, penalties, members)


@pytest.mark.parametrize("text, message", [
    ("bce+ensemble:1", r"'ensemble:1' needs an integer number of members M in \[2, 64\].*"
                       r"got '1'"),
    ("bce+ensemble:2.5", r"'ensemble:2.5' needs an integer.*got '2.5'"),
    ("ensemble:65", r"'ensemble:65' needs an integer"),
    ("ensemble", r"'ensemble' needs an integer.*got ''"),
    ("ensemble:five", r"'ensemble:five' needs an integer"),
    ("ensemble:size=3", r"'ensemble:size=3' needs an integer"),
    ("bce+ensemble:3+ensemble:4", "repeats the term 'ensemble'"),
])
def test_parse_ensemble_term_errors(text, message):
  with pytest.raises(ValueError, match=message):
    experiments.parse_spec(text)


def _ensemble_data():
  X, y = toy_binary(n=60, d=3, seed=1)
  return X, y.astype(jnp.int32)


_ENS_KW = dict(folds=3, epochs=3, batch_size=16, seed=2, hidden=4, learning_rate=0.05)


def test_bootstrap_weights_of_training_rows_only():
  from flax import nnx
  from lossreg_jax.experiments import compare, engine, models
  masks = _masks(20, 2, 1)
  key = jax.random.key(0)
  w = np.asarray(compare._bootstrap(key, masks, 4))
  assert w.shape == (2, 4, 20)
  assert np.all(w[np.broadcast_to(masks[:, None], w.shape)] == 0)  # held-out rows: 0
  np.testing.assert_array_equal(w.sum(-1), np.full((2, 4), 10.0))  # n_train draws each
  np.testing.assert_array_equal(w, np.round(w))
  assert len({tuple(m) for m in w.reshape(8, 20)}) == 8  # every member draws its own
  # Member 0 starts where the single model does; the others elsewhere.
  make = models.mlp(hidden=4).factory((3,), 1)
  tx = compare._adam(0.01)
  _, members = engine.initial_states(make, tx, [key], [key], folds=2, members=4)
  _, single = engine.initial_states(make, tx, [key], [key], folds=2)
  kernel = lambda s: np.asarray(s[0]["hidden"][0]["kernel"][...])
  assert kernel(members).shape == (2, 4, 3, 4)
  np.testing.assert_array_equal(kernel(members)[1, 0], kernel(single)[1])
  assert not np.allclose(kernel(members)[1, 1], kernel(single)[1])
  model, optimizer = nnx.merge(*engine.initial_states(make, tx, [key], [key], folds=1))
  assert isinstance(model, nnx.Module) and isinstance(optimizer, nnx.Optimizer)


def _one_fold_program(hidden=4):
  from lossreg_jax.experiments import candidates, compare, engine, models, spec
  cand = candidates.from_spec(spec.parse_spec("bce:positive_weight=2+l2:1e-2"), "binary", 2)
  make = models.mlp(hidden=hidden).factory((3,), 1)
  key = jax.random.key(5)
  graphdef, states = engine.initial_states(make, compare._adam(0.05), [key],
                                           [jax.random.key(6)], folds=1)
  program = engine.Program(graphdef, cand.loss, None, False, True)
  hyper = {"loss": dict(cand.loss_params), "penalties": dict(cand.penalties)}
  return program, jax.tree.map(lambda a: a[0], states), hyper


def test_unit_weights_on_training_rows_equal_the_unweighted_run():
  # reduction="mean" with bootstrap counts: counts of 1 on every training row
  # must reproduce the single model exactly.
  from lossreg_jax.experiments import engine
  X, y = _ensemble_data()
  masks = _masks(60, 3, 1, y)
  rows, ok = engine.fold_batches(engine.shuffles(60, 3, 2), masks, 16)
  program, state, hyper = _one_fold_program()
  mask = jnp.asarray(masks[0])
  run = lambda w: engine.train_one_fold(mask, jnp.asarray(rows[0]), jnp.asarray(ok[0]), state,
                                        w, X, y, hyper, program=program)
  plain = run(None)
  ones = run((~mask).astype(jnp.float32))
  doubled = run(2 * (~mask).astype(jnp.float32))
  for a, b in zip(plain, ones):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert not np.allclose(plain[1], doubled[1])  # the weights do reach the loss


def test_average_members_is_the_mean_probability():
  import scipy.special
  from lossreg_jax.experiments import engine as _folds
  rng = np.random.default_rng(0)
  z = rng.normal(size=(2, 3, 5)).astype(np.float32) * 4
  z[0, :, 0] = [1e4, 1e4, -1e4]  # extreme but legal logits stay finite
  z[0, :, 1] = [-200.0, -300.0, -250.0]
  got = np.asarray(_folds.average_members(jnp.asarray(z), regression=False))
  assert np.all(np.isfinite(got))
  sig = lambda v: scipy.special.expit(np.float64(v))
  np.testing.assert_allclose(sig(got), sig(z).mean(axis=1), rtol=1e-5, atol=1e-30)
  assert got[0, 0] == pytest.approx(np.log(2))  # mean probability (1 + 1 + 0) / 3 -> log 2
  zc = rng.normal(size=(2, 3, 5, 4)).astype(np.float32) * 3
  got = np.asarray(_folds.average_members(jnp.asarray(zc), regression=False))
  soft = lambda v: np.exp(v - v.max(-1, keepdims=True)) / np.exp(
      v - v.max(-1, keepdims=True)).sum(-1, keepdims=True)
  np.testing.assert_allclose(soft(np.float64(got)), soft(np.float64(zc)).mean(axis=1),
                             rtol=1e-5)
  np.testing.assert_allclose(_folds.average_members(jnp.asarray(z), regression=True),
                             z.mean(axis=1), rtol=1e-6)


@pytest.mark.slow
def test_ensemble_predictions_are_the_average_of_its_members_run_one_by_one():
  from lossreg_jax.experiments import candidates, compare, engine, models, spec as specs
  X, y = _ensemble_data()
  spec = "bce:positive_weight=2+dropout:0.3+ensemble:3"
  res = experiments.compare_losses(X, y, ["bce", spec], **_ENS_KW)
  # Rebuild the members' inputs as compare_losses draws them (seed=2, repeats=1).
  key = jax.random.key(2)
  masks = np.asarray(selection.kfold_masks(60, 3, key=jax.random.fold_in(key, 1),
                                           stratify=y))
  init_key, drop_key = jax.random.fold_in(key, 2), jax.random.fold_in(key, 3)
  weights = compare._bootstrap(jax.random.fold_in(key, 4), masks, 3)
  graphdef, states = engine.initial_states(
      models.mlp(hidden=4).factory((3,), 1, dropout=0.3), compare._adam(0.05), [init_key],
      [drop_key], folds=3, members=3)
  rows, ok = engine.fold_batches(engine.shuffles(60, 3, 2), masks, 16)
  cand = candidates.from_spec(specs.parse_spec(spec), "binary", 2)
  program = engine.Program(graphdef, cand.loss, None, False, True)
  hyper = {"loss": dict(cand.loss_params), "penalties": dict(cand.penalties)}
  prob, curves = np.zeros(60), []
  for f in range(3):
    runs = [engine.train_one_fold(
        jnp.asarray(masks[f]), jnp.asarray(rows[f]), jnp.asarray(ok[f]),
        jax.tree.map(lambda a: a[f, m], states), weights[f, m], X, y, hyper,
        program=program) for m in range(3)]
    p = np.mean([1 / (1 + np.exp(-np.float64(r[0]))) for r in runs], axis=0)
    prob[masks[f]] = p[masks[f]]
    curves.append(np.mean([r[1] for r in runs], axis=0))
    acc = np.mean((p[masks[f]] > 0.5) == np.asarray(y)[masks[f]])
    assert res.scores[spec]["accuracy"][f] == pytest.approx(acc)
  np.testing.assert_allclose(res.probabilities[spec], prob, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(res.train_loss[spec], np.stack(curves), rtol=1e-4)
  # Members differ from one another, so the average is not one member's output.
  assert not np.allclose(runs[0][0], runs[1][0])
  # Shapes and the paired comparison with the single model.
  assert res.scores[spec]["accuracy"].shape == (3,) and res.train_loss[spec].shape == (3, 3)
  assert res.held_out_loss[spec].shape == (3, 3)
  assert sorted(res.paired[spec]["roc_auc"]) == ["ci_high", "ci_low", "mean_diff", "p_value",
                                                 "t"]
  diff = res.scores[spec]["brier"] - res.scores["bce"]["brier"]
  assert res.paired[spec]["brier"]["mean_diff"] == pytest.approx(diff.mean(), rel=1e-5)
  # The per-fold loop runs the same program fold by fold: same numbers.
  slow = experiments.compare_losses(X, y, [spec], vmap_folds=False, **_ENS_KW)
  np.testing.assert_allclose(slow.probabilities[spec], res.probabilities[spec], atol=1e-5)


@pytest.mark.slow
def test_regression_ensemble_averages_predictions():
  ds = datasets.load("diabetes")
  res = experiments.compare_losses(ds.X, ds.y, ["mse", "mse+ensemble:2"], **FAST)
  spec = "mse+ensemble:2"
  assert res.scores[spec]["r2"].shape == (3,) and np.all(np.isfinite(res.scores[spec]["mse"]))
  np.testing.assert_array_equal(res.probabilities[spec], res.predictions[spec])
  y = np.asarray(ds.y, np.float64)
  for i, m in enumerate(_masks(len(y), 3, 1)):
    mse = np.mean((res.predictions[spec][m] - y[m]) ** 2)
    np.testing.assert_allclose(res.scores[spec]["mse"][i], mse, rtol=2e-4)
  assert set(res.paired) == {spec}


@pytest.mark.slow
def test_multiclass_ensemble_averages_softmax():
  ds = datasets.load("wine")
  spec = "ce+ensemble:2"
  res = experiments.compare_losses(ds.X, ds.y, ["ce", spec], folds=3, epochs=3, hidden=4,
                                   learning_rate=0.05)
  prob = res.probabilities[spec]
  assert prob.shape == (len(ds.y), 3) and res.scores[spec]["f1"].shape == (3,)
  np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(res.predictions[spec], prob.argmax(axis=1))
  for i, m in enumerate(_masks(len(ds.y), 3, 1, ds.y)):
    np.testing.assert_allclose(res.scores[spec]["accuracy"][i],
                               np.mean(prob[m].argmax(1) == np.asarray(ds.y)[m]), rtol=1e-6)
  assert np.all(res.scores[spec]["accuracy"] > 0.8)


# ------------------------------------------------ the engine: leakage, user models and losses


def _fold_run(X, y, spec="bce+l2:1e-3", *, task="binary", model=None, folds=3, epochs=2):
  """Trains fold 0 as compare_losses prepares it; returns (held-out mask, run(X, y))."""
  from lossreg_jax.experiments import candidates, compare, engine
  num_classes = 0 if task == "regression" else int(np.max(y)) + 1
  _, (cand,), _, _ = candidates.resolve_candidates([spec], task, num_classes)
  layout = compare._fold_layout(X, y, task, folds=folds, repeats=1, epochs=epochs,
                                batch_size=16, seed=0)
  program, hyper, per_fold, extra = compare._prepare(
      spec, cand, layout, X, model=compare._resolve_model(model, 4)[0],
      optimizer=compare._adam(0.05), task=task, num_classes=num_classes, folds=folds)
  first = jax.tree.map(lambda a: a[0], (per_fold, extra))
  run = lambda X, y: engine.train_one_fold(*first[0], jnp.asarray(X), jnp.asarray(y), hyper,
                                           *first[1], program=program)
  return layout["masks"][0], run


@pytest.mark.slow
def test_held_out_rows_never_reach_the_training_of_their_fold():
  # Perturbing only a fold's held-out rows of X and y must leave its training
  # curve and its training rows' outputs bit-identical, for the default model
  # and every regularizer of a spec (penalty, dropout, bagging, noise, mixup,
  # early stopping; augmentation in the image test below) and for
  # regression's target standardization. The control (a training row
  # perturbed) shows the comparison can fail.
  rng = np.random.default_rng(0)
  X = rng.normal(size=(48, 3)).astype(np.float32)
  yb = (X[:, 0] + 0.3 * rng.normal(size=48) > 0).astype(np.int32)
  yr = (X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=48)).astype(np.float32)
  cases = [("bce+l2:1e-3", yb, "binary"), ("bce+dropout:0.3+ensemble:2", yb, "binary"),
           ("huber:delta=1+l1:1e-3", yr, "regression"), ("bce+noise:0.3", yb, "binary"),
           ("mse+mixup:0.2", yr, "regression"), ("bce+early_stopping:1+mixup:0.4", yb,
                                                 "binary")]
  for spec, y, task in cases:
    held_out, run = _fold_run(X, y, spec, task=task)
    z, curve, _ = run(X, y)
    X2, y2 = X.copy(), y.copy()
    X2[held_out] = 1e3 * rng.normal(size=X2[held_out].shape)
    y2[held_out] = (1 - y2[held_out]) if task == "binary" else 1e3
    z2, curve2, held2 = run(X2, y2)
    train = ~held_out
    np.testing.assert_array_equal(curve2, curve, err_msg=spec)
    np.testing.assert_array_equal(np.asarray(z2)[..., train], np.asarray(z)[..., train],
                                  err_msg=spec)
    X3 = X.copy()
    X3[np.flatnonzero(train)[0]] += 1.0  # control: one training row moved
    assert not np.array_equal(run(X3, y)[1], curve), spec


@pytest.mark.slow
def test_a_user_model_and_loss_compare_and_equal_one_fold_trained_by_hand():
  # A CNN factory and a loss callable, from Python; fold 0's held-out
  # predictions equal the same fold trained alone by training.make_train_step
  # (same initialization, minibatch order and standardization).
  import optax
  from flax import nnx
  from lossreg_jax import losses, training
  from lossreg_jax.experiments import engine

  class TinyCNN(nnx.Module):
    def __init__(self, rngs):
      self.conv = nnx.Conv(1, 2, kernel_size=(3, 3), rngs=rngs)
      self.out = nnx.Linear(2, 1, rngs=rngs)

    def __call__(self, x):
      return self.out(jnp.mean(jax.nn.relu(self.conv(x)), axis=(1, 2)))

  def weighted_bce(z, y, *, weights=None, where=None):
    return losses.sigmoid_binary_cross_entropy(z, y.astype(z.dtype), positive_weight=2.0,
                                               weights=weights, where=where)

  rng = np.random.default_rng(1)
  X = rng.normal(size=(36, 4, 4, 1)).astype(np.float32)
  y = (X[:, :2].mean(axis=(1, 2, 3)) > 0).astype(np.int32)
  kw = dict(folds=3, epochs=2, batch_size=8, seed=4)
  res = experiments.compare_losses(X, y, {"bce": "bce", "mine": weighted_bce},
                                   model=TinyCNN, **kw)
  assert res.settings["model"] == "TinyCNN" and res.specs == ("bce", "mine")
  masks = _masks(36, 3, 1, y, seed=4)
  model = TinyCNN(nnx.Rngs(jax.random.fold_in(jax.random.key(4), 2),
                           dropout=jax.random.fold_in(jax.random.key(4), 3)))
  optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
  step = training.make_train_step(lambda z, t, **k: weighted_bce(z[:, 0], t, **k))
  test = masks[0]
  Xs = np.asarray(engine.standardize(jnp.asarray(X), jnp.asarray(~test))[0])
  rows, ok = engine.fold_batches(engine.shuffles(36, 2, 4), masks, 8)
  for batch_rows, batch_ok in zip(rows[0].reshape(-1, 8), ok[0].reshape(-1, 8)):
    step(model, optimizer, {"inputs": Xs[batch_rows], "targets": y[batch_rows],
                            "where": jnp.asarray(batch_ok)})
  model.eval()
  prob = jax.nn.sigmoid(model(Xs)[:, 0])
  np.testing.assert_allclose(res.probabilities["mine"][test], prob[test], rtol=1e-5,
                             atol=1e-6)


def test_bad_models_and_losses_are_named():
  from flax import nnx
  rng = np.random.default_rng(2)
  X, y = rng.normal(size=(30, 3)).astype(np.float32), np.arange(30) % 2
  kw = dict(folds=3, epochs=1)

  def broken(rngs):
    raise RuntimeError("no weights file")

  cases = [
      (dict(model=broken), ValueError, r"model: the factory failed for 'bce': RuntimeError"),
      (dict(model=lambda rngs: 3), TypeError, "returned int"),
      (dict(model=lambda rngs: nnx.Linear(3, 1, rngs=rngs), specs={"m": lambda z: z}),
       TypeError, r"candidates\['m'\]: the loss must take"),
      (dict(specs={"m": lambda z, y: z.sum()}), TypeError, "where= and weights="),
      (dict(specs={"m": lambda z, y, **kw: z}), ValueError, "must return a scalar"),
      (dict(specs={"m": 3}), TypeError, r"candidates\['m'\] must be a spec string"),
      (dict(model="cnn"), ValueError, "model 'cnn' needs images"),
      (dict(model="rnn"), ValueError, "unknown model 'rnn'"),
      (dict(optimizer="adam"), TypeError, "optimizer must be an optax"),
  ]
  for extra, error, message in cases:
    specs = extra.pop("specs", ["bce"])
    with pytest.raises(error, match=message):
      experiments.compare_losses(X, y, specs, **extra, **kw)


@pytest.mark.slow
def test_augmentation_on_images_never_sees_held_out_rows():
  rng = np.random.default_rng(3)
  X = rng.normal(size=(36, 6, 6, 1)).astype(np.float32)
  y = (X[:, :3].mean(axis=(1, 2, 3)) > 0).astype(np.int32)
  held_out, run = _fold_run(X, y, "bce+augment:rotation=15,shift=0.1,zoom=0.1,flip=1",
                            model="cnn:channels=2")
  z, curve, _ = run(X, y)
  X2 = X.copy()
  X2[held_out] = 50.0
  z2, curve2, _ = run(X2, y)
  np.testing.assert_array_equal(curve2, curve)
  np.testing.assert_array_equal(np.asarray(z2)[~held_out], np.asarray(z)[~held_out])
  plain = _fold_run(X, y, "bce", model="cnn:channels=2")[1](X, y)[1]
  assert not np.array_equal(plain, curve)  # the augmentation does act


@pytest.mark.slow
def test_a_sweep_is_one_program_with_the_scores_of_separate_candidates(monkeypatch):
  from lossreg_jax.experiments import engine
  rng = np.random.default_rng(4)
  X = rng.normal(size=(48, 3)).astype(np.float32)
  y = (X[:, 0] + 0.5 * rng.normal(size=48) > 0).astype(np.int32)
  kw = dict(folds=3, epochs=2, hidden=4, learning_rate=0.05)
  calls = []
  sweep_fn = engine.train_sweep
  monkeypatch.setattr(engine, "train_sweep", lambda *a, **k: calls.append(1) or sweep_fn(*a, **k))
  res = experiments.compare_losses(X, y, ["bce", "focal:gamma=0|1|2+noise:0.1"], **kw)
  assert calls == [1] and res.specs == ("bce", "focal:gamma=0+noise:0.1",
                                        "focal:gamma=1+noise:0.1", "focal:gamma=2+noise:0.1")
  alone = experiments.compare_losses(X, y, ["bce", "focal:gamma=1+noise:0.1"], **kw)
  for m in res.metrics:
    np.testing.assert_allclose(res.scores["focal:gamma=1+noise:0.1"][m],
                               alone.scores["focal:gamma=1+noise:0.1"][m], rtol=1e-5, atol=1e-6)
  # Static differences (dropout rates build different models) still train, one by one.
  res = experiments.compare_losses(X, y, ["bce+dropout:0.1|0.3"], **kw)
  assert calls == [1] and len(res.specs) == 2
  with pytest.raises(ValueError, match="sweep exactly one parameter"):
    experiments.compare_losses(X, y, ["focal:gamma=0|1,alpha=0.2|0.3"], **kw)


@pytest.mark.slow
def test_early_stopping_freezes_each_fold_at_its_best_epoch():
  rng = np.random.default_rng(5)
  X = rng.normal(size=(60, 3)).astype(np.float32)
  y = (X[:, 0] + rng.normal(size=60) > 0).astype(np.int32)
  res = experiments.compare_losses(X, y, ["bce+early_stopping:patience=1,validation=0.3"],
                                   folds=3, epochs=25, hidden=8, learning_rate=0.3)
  curves = res.train_loss["bce+early_stopping:patience=1,validation=0.3"]
  stopped = [np.flatnonzero(np.diff(c) == 0) for c in curves]
  assert all(s.size for s in stopped), curves  # every fold stopped before epoch 25
  for c, s in zip(curves, stopped):  # ... and stayed stopped
    assert np.all(c[s[0]:] == c[s[0]])


@pytest.mark.slow
def test_folds_split_over_four_devices_equal_one_device():
  import os
  import pathlib
  import subprocess
  import sys
  from compile_settings import with_xla_flags
  env = dict(with_xla_flags(os.environ, "--xla_force_host_platform_device_count=4"),
             JAX_PLATFORMS="cpu")
  script = pathlib.Path(__file__).with_name("compare_sharding_cases.py")
  proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                        env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["devices"] == [2, 4]
  assert max(out["diff"]) < 1e-5, out
