"""Tests for experiments.compare_multitask, its spec grammar and make_shapes."""

import json

import numpy as np
import pytest

from lossreg_jax import experiments

# The two weighted specs differ only in weights: they share one compiled program.
SPECS = ["ce+smooth_l1+giou", "ce+5*smooth_l1+giou", "ce+smooth_l1+giou:uncertainty"]


def _numpy_iou_cxcywh(a, b):
  """IoU of matched cxcywh boxes, written out in NumPy (the reference)."""
  a0, a1 = a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2
  b0, b1 = b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
  wh = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)
  inter = wh[:, 0] * wh[:, 1]
  union = np.prod(a[:, 2:], 1) + np.prod(b[:, 2:], 1) - inter
  return inter / union


@pytest.fixture(scope="module")
def shapes():
  images, classes, boxes = experiments.make_shapes(0, 240)
  return np.asarray(images), np.asarray(classes), np.asarray(boxes)


@pytest.fixture(scope="module")
def result(shapes):
  # 8 epochs of the 160 training rows of a fold (3 minibatches each: a fold's
  # minibatches hold its training rows only) are 24 Adam steps.
  return experiments.compare_multitask(*shapes, SPECS, folds=3, epochs=8, batch_size=60,
                                       hidden=32, learning_rate=3e-3, seed=1)


def test_make_shapes_draws_the_boxes_it_reports():
  images, classes, boxes = (np.asarray(a) for a in experiments.make_shapes(3, 64, noise=0.0))
  assert set(np.unique(classes)) == {0, 1}
  assert np.all(boxes[:, 2:] > 0) and np.all(boxes[:, :2] - boxes[:, 2:] / 2 >= 0)
  assert np.all(boxes[:, :2] + boxes[:, 2:] / 2 <= 1 + 1e-6)
  for img, cls, box in zip(images, classes, boxes):
    rows, cols = np.nonzero(img > 0.5)
    xyxy = np.concatenate([box[:2] - box[2:] / 2, box[:2] + box[2:] / 2])
    if cls == 0:  # a rectangle with integer corners fills exactly its box (pixel edges)
      edges = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / 16
      np.testing.assert_allclose(edges, xyxy, atol=1e-6)
    else:  # a disc's pixel centres lie inside its box, and near each side: within
      # 1 px of the grid step plus r - sqrt(r^2 - 0.5^2) <= 0.05 px for r >= 2.5
      centres = (np.array([cols.min(), rows.min(), cols.max(), rows.max()]) + 0.5) / 16
      assert np.all(centres[:2] >= xyxy[:2]) and np.all(centres[2:] <= xyxy[2:])
      assert np.all(np.abs(centres - xyxy) < 1.06 / 16)


@pytest.mark.parametrize("spec, message", [
    ("smooth_l1+giou", "'ce' once"), ("ce+ce+giou", "'ce' once"), ("ce", "at least one box"),
    ("ce+box", "bad term 'box'"), ("ce+2*giou:uncertainty", "drop '2\\*giou'"),
    ("ce+giou:learned", "unknown combination"), ("ce+0*giou", "positive"),
    ("ce+x*giou", "bad term")])
def test_spec_errors_name_the_problem(spec, message):
  with pytest.raises(ValueError, match=message):
    experiments.parse_multitask_spec(spec)


@pytest.mark.slow
def test_per_fold_metrics_equal_a_recomputation_from_held_out_predictions(shapes, result):
  _, classes, boxes = shapes
  masks = result.test_masks
  assert masks.shape == (3, 240)
  np.testing.assert_array_equal(masks.sum(axis=0), np.ones(240))  # each row held out once
  for spec in SPECS:
    pred = result.predictions[spec]
    iou = _numpy_iou_cxcywh(pred["boxes"], boxes)
    for f, mask in enumerate(masks):
      np.testing.assert_allclose(result.scores[spec]["accuracy"][f],
                                 np.mean(pred["classes"][mask] == classes[mask]), rtol=1e-6)
      np.testing.assert_allclose(result.scores[spec]["mean_iou"][f], np.mean(iou[mask]),
                                 rtol=1e-5)
    assert result.train_loss[spec].shape == (3, 8)
    assert np.all(np.isfinite(result.train_loss[spec]))


@pytest.mark.slow
def test_training_beats_the_mean_box_and_learns_log_variances(shapes, result):
  _, _, boxes = shapes
  baseline = np.mean(_numpy_iou_cxcywh(np.broadcast_to(boxes.mean(0), boxes.shape), boxes))
  for spec in SPECS:
    assert result.summary()[spec]["mean_iou"][0] > baseline, spec
  learned = result.log_vars["ce+smooth_l1+giou:uncertainty"]
  assert sorted(learned) == ["ce", "giou", "smooth_l1"]
  assert all(v.shape == (3,) and np.all(v != 0) for v in learned.values())
  assert result.log_vars["ce+smooth_l1+giou"] == {}


@pytest.mark.slow
def test_result_renders(result):
  table = result.table()
  assert "accuracy" in table and "mean_iou" in table and " ± " in table
  for spec in SPECS:
    assert spec in table
  data = json.loads(json.dumps(result.to_dict()))
  assert [r["spec"] for r in data["results"]] == SPECS
  assert len(data["results"][2]["log_vars"]["giou"]) == 3
  assert data["results"][0]["metrics"]["mean_iou"]["folds"] == [
      pytest.approx(float(x)) for x in result.scores[SPECS[0]]["mean_iou"]]


def test_bad_inputs_name_themselves(shapes):
  images, classes, boxes = shapes
  with pytest.raises(ValueError, match=r"boxes \(n, 4\)"):
    experiments.compare_multitask(images, classes, boxes[:, :3], ["ce+giou"])
  with pytest.raises(ValueError, match="folds must be an int >= 2"):
    experiments.compare_multitask(images, classes, boxes, ["ce+giou"], folds=1)
  with pytest.raises(ValueError, match="distinct"):
    experiments.compare_multitask(images, classes, boxes, ["ce+giou", "ce+giou"])
