"""Tests for lossreg_jax.experiments: spec parser, compare_losses, regularization_path, reports."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossreg_jax import datasets, experiments, selection


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
    ("mse", r"unknown term 'mse'.*valid losses: bce, focal, hinge, ce.*l2, l1, elastic, dropout"),
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


def test_compare_multiclass_and_task_errors():
  ds = datasets.load("wine")
  res = experiments.compare_losses(ds.X, ds.y, ["ce", "ce:label_smoothing=0.1"], folds=3,
                                epochs=3, hidden=4, learning_rate=0.05)
  assert res.task == "multiclass" and float(res.scores["ce"]["accuracy"].mean()) > 0.85
  assert not np.array_equal(res.scores["ce"]["f1"], res.scores["ce:label_smoothing=0.1"]["f1"])
  with pytest.raises(ValueError, match="'bce'.*3 classes.*'ce'"):
    experiments.compare_losses(ds.X, ds.y, ["bce"], folds=3, epochs=1)
  with pytest.raises(ValueError, match="class labels"):
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
