"""Tests of ``experiments.cost``: reading costs, the three decisions, no leakage (issue 15).

Every decision and cost is checked against an independent NumPy / SciPy /
scikit-learn computation on hand-made fold outputs; ``metrics.expected_cost``,
``cost_threshold`` and ``best_threshold`` have their own tests in
``test_metrics_decisions.py``.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats
from sklearn.metrics import confusion_matrix

from lossreg_jax import datasets, experiments, metrics
from lossreg_jax.experiments import engine
from lossreg_jax.experiments import compare as compare_module
from lossreg_jax.experiments.cost import (COST_METRICS, TEMPERATURES, DecisionCost, cost_curve,
                                          fold_costs, normal_offset, parse_cost,
                                          read_cost_matrix, regression_cost)


def one_line_error(exc_info) -> str:
  message = str(exc_info.value)
  assert "\n" not in message, message
  return message


# ---------------------------------------------------------------------------- parse_cost


@pytest.mark.parametrize("text, fp, fn", [
    ("fn=5,fp=1", 1.0, 5.0),
    (" FN = 5 , Fp=1 ", 1.0, 5.0),
    ("fp=0.5,fn=2", 0.5, 2.0),
    ("fn=0,fp=3", 3.0, 0.0),
    ("fn=1e1,fp=2.5", 2.5, 10.0),
])
def test_parse_cost_binary(text, fp, fn):
  c = parse_cost(text)
  assert c.matrix == ((0.0, fp), (fn, 0.0)) and not c.regression and c.text == text
  assert c.binary_costs() == (fp, fn)
  assert experiments.parse_cost is parse_cost


def test_parse_cost_binary_matrix_layout():
  # [true, predicted]: a false negative (true 1, predicted 0) sits at [1][0].
  assert parse_cost("fn=5,fp=1").matrix == ((0, 1), (5, 0))


@pytest.mark.parametrize("text, under, over, squared", [
    ("under=3,over=1", 3.0, 1.0, False),
    ("under=3,over=1,linear", 3.0, 1.0, False),
    ("under=3,over=1,squared", 3.0, 1.0, True),
    (" Under = 0.5 , OVER=2 , Squared ", 0.5, 2.0, True),
    ("squared,over=1,under=3", 3.0, 1.0, True),
    ("LINEAR,under=1,over=4", 1.0, 4.0, False),
])
def test_parse_cost_regression(text, under, over, squared):
  c = parse_cost(text)
  assert c.regression and c.matrix is None
  assert (c.under, c.over, c.squared) == (under, over, squared)


@pytest.mark.parametrize("text, match", [
    ("fn=5,fp=1,cost=2", r"got 'cost=2'"),                      # unknown key
    ("fn5,fp=1", r"got 'fn5'"),                                 # no '='
    ("under=1,over=1,cubic", r"got 'cubic'"),                   # unknown kind
    ("fn=5,,fp=1", r"got ''"),                                  # empty part
    ("fn=5", r"fp is missing"),
    ("fp=1", r"fn is missing"),
    ("under=3", r"over is missing"),
    ("over=1,squared", r"under is missing"),
    ("fn=5,fp=1,FN=2", r"fn is given twice"),
    ("fn=five,fp=1", r"fn must be a number, got 'five'"),
    ("fn=5,fp=", r"fp must be a number, got ''"),
    ("fn=-1,fp=1", r"fn must be finite and >= 0, got '-1'"),
    ("under=3,over=-0.5", r"over must be finite and >= 0, got '-0.5'"),
    ("fn=inf,fp=1", r"fn must be finite and >= 0, got 'inf'"),
    ("fn=5,fp=nan", r"fp must be finite and >= 0, got 'nan'"),
    ("fn=0,fp=0", r"fn \+ fp must be > 0"),
    ("under=0,over=1", r"under and over must both be > 0"),
    ("under=2,over=0,squared", r"under and over must both be > 0"),
    ("fn=5,under=1", r"mixes binary \(fn\) and regression \(under\)"),
    ("fn=5,fp=1,under=1,over=2", r"mixes binary \(fn, fp\) and regression \(over, under\)"),
    ("under=3,over=1,linear,squared", r"at most one of linear or squared, got linear, squared"),
    ("fn=5,fp=1,squared", r"'squared' applies to regression costs"),
    ("squared", r"give both fn and fp \(binary\), or both under and over"),
    ("", r"cost must be text"),
    ("  ", r"cost must be text"),
])
def test_parse_cost_errors_name_the_bad_part(text, match):
  with pytest.raises(ValueError, match=match) as e:
    parse_cost(text)
  message = one_line_error(e)
  if text.strip():
    assert repr(text) in message  # the whole spec is quoted, then the bad part


@pytest.mark.parametrize("bad", [None, 5, b"fn=5,fp=1", ("fn=5", "fp=1")])
def test_parse_cost_rejects_non_text(bad):
  with pytest.raises(ValueError, match="cost must be text") as e:
    parse_cost(bad)
  assert repr(bad) in one_line_error(e)


# ---------------------------------------------------------------------- read_cost_matrix


@pytest.mark.parametrize("content", [
    "0,1\n5,0\n",
    "neg,pos\n0,1\n5,0\n",               # header of class names
    ",neg,pos\nneg,0,1\npos,5,0\n",      # header and index column
    "true/pred,neg,pos\nneg,0,1\npos,5,0\n",
    "neg,0,1\npos,5,0\n",                # index column only
    " 0 , 1 \r\n\r\n 5 , 0 \r\n",        # spaces, CRLF and a blank line
    "\ufeff0,1\n5,0\n",                  # a byte-order mark (Excel)
    "0,1\n0,1\n5,0\n",                    # the class ids as a header (one row too many)
    "0,0,1\n1,5,0\n",                     # the class ids as an index (one column too many)
    ",0,1\n0,0,1\n1,5,0\n",               # both, with an empty corner
    "true/pred,0,1\n0,0,1\n1,5,0\n",
])
def test_read_cost_matrix_layouts(tmp_path, content):
  path = tmp_path / "cost.csv"
  path.write_text(content, encoding="utf-8")
  c = read_cost_matrix(path)
  assert c.matrix == ((0.0, 1.0), (5.0, 0.0)) and c.text == str(path)
  assert experiments.read_cost_matrix is read_cost_matrix


def test_read_cost_matrix_multiclass(tmp_path):
  expected = np.array([[0, 1, 4], [2, 0, 1.5], [8, 3, 0]])
  path = tmp_path / "c3.csv"
  path.write_text("truth,a,b,c\n" + "".join(
      f"{n},{','.join(f'{v:g}' for v in row)}\n" for n, row in zip("abc", expected)))
  np.testing.assert_array_equal(read_cost_matrix(str(path)).matrix, expected)
  read_cost_matrix(path).check("multiclass", 3)


def test_read_cost_matrix_digit_class_ids_as_names(tmp_path):
  # Ten digit classes named by their ids: a header and an index of 0..9.
  expected = np.ones((10, 10)) - np.eye(10)
  expected[9, 4] = expected[4, 9] = 7.0
  path = tmp_path / "digits.csv"
  path.write_text("," + ",".join(map(str, range(10))) + "\n" + "".join(
      f"{i}," + ",".join(f"{v:g}" for v in row) + "\n" for i, row in enumerate(expected)))
  np.testing.assert_array_equal(read_cost_matrix(path).matrix, expected)
  # A square file of numbers is the matrix itself, even when its first row reads 0, 1, 2.
  path.write_text("0,1,2\n1,0,1\n2,1,0\n")
  np.testing.assert_array_equal(read_cost_matrix(path).matrix, [[0, 1, 2], [1, 0, 1], [2, 1, 0]])


@pytest.mark.parametrize("content, match", [
    ("0,1,2\n5,0,1\n", r"must be square .* got 2 rows of \[3\] columns"),
    ("0,1\n5\n", r"must be square .* got 2 rows of \[1, 2\] columns"),
    ("0;1\n5;0\n", r"must be square .*separate the cells with commas"),
    ("", r"must be square .* got 0 rows"),
    ("0,x\n5,0\n", r"entry \[0, 1\] must be a finite number >= 0, got 'x'"),
    ("0,1\n5,oops\n", r"entry \[1, 1\] must be a finite number >= 0, got 'oops'"),
    ("0,1\n,0\n", r"entry \[1, 0\] must be a finite number >= 0, got ''"),
    ("0,-1\n5,0\n", r"entry \[0, 1\] must be a finite number >= 0, got '-1'"),
    ("0,inf\n5,0\n", r"entry \[0, 1\] .* got 'inf'"),
    ("0,1\nnan,0\n", r"entry \[1, 0\] .* got 'nan'"),
    ("0\n", r"at least 2 classes, got \(1, 1\)"),
    ("1,1\n5,0\n", r"the diagonal \(correct decisions\) must be 0, got \[1.0, 0.0\]"),
])
def test_read_cost_matrix_errors_name_the_file(tmp_path, content, match):
  path = tmp_path / "bad_costs.csv"
  path.write_text(content)
  with pytest.raises(ValueError, match=match) as e:
    read_cost_matrix(path)
  assert repr(str(path)) in one_line_error(e)


def test_read_cost_matrix_allow_diagonal(tmp_path):
  path = tmp_path / "diag.csv"
  path.write_text("1,3\n6,0.5\n")
  with pytest.raises(ValueError, match="diagonal"):
    read_cost_matrix(path)
  c = read_cost_matrix(path, allow_diagonal=True)
  assert c.matrix == ((1.0, 3.0), (6.0, 0.5))
  assert c.binary_costs() == (2.0, 5.5)  # each relative to the correct decision
  c.check("binary", 2)


def test_read_cost_matrix_missing_file(tmp_path):
  missing = tmp_path / "nope.csv"
  with pytest.raises(FileNotFoundError, match="nope.csv") as e:
    read_cost_matrix(missing)
  one_line_error(e)


# -------------------------------------------------------------------- DecisionCost.check


@pytest.mark.parametrize("cost, task, num_classes, match", [
    (parse_cost("under=3,over=1"), "binary", 2, "prices under- and over-prediction, but the "
     "task is binary"),
    (parse_cost("under=3,over=1,squared"), "multiclass", 3, "task is multiclass"),
    (parse_cost("fn=5,fp=1"), "regression", 0, "prices classes, but the task is regression"),
    (parse_cost("fn=5,fp=1"), "multiclass", 3, r"is 2 x 2, but the data have 3 classes"),
    (DecisionCost(matrix=((0, 1, 1), (1, 0, 1), (1, 1, 0))), "binary", 2,
     r"is 3 x 3, but the data have 2 classes"),
    (DecisionCost(matrix=((0, 1, 1), (1, 0, 1), (1, 1, 0))), "multiclass", 4,
     r"is 3 x 3, but the data have 4 classes"),
    # A false positive that costs less (0) than the true negative (1).
    (DecisionCost(matrix=((1, 0), (5, 0))), "binary", 2, "each error must cost at least"),
    (DecisionCost(matrix=((0, 1), (0, 2))), "binary", 2, "each error must cost at least"),
    (DecisionCost(matrix=((0, 0), (0, 0))), "binary", 2, "one strictly more"),
    (DecisionCost(under=0.0, over=1.0), "regression", 0, r"must both be (finite and )?> 0"),
])
def test_check_rejects_costs_that_do_not_fit(cost, task, num_classes, match):
  with pytest.raises(ValueError, match=match) as e:
    cost.check(task, num_classes)
  one_line_error(e)


def test_check_accepts_and_returns_self():
  for cost, task, k in [(parse_cost("fn=5,fp=1"), "binary", 2),
                        (parse_cost("under=1,over=2"), "regression", 0),
                        (DecisionCost(matrix=((0, 1, 2), (1, 0, 1), (9, 1, 0))), "multiclass", 3)]:
    assert cost.check(task, k) is cost


def _toy(task, n=30, seed=0):
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, 3)).astype(np.float32)
  if task == "regression":
    return X, rng.normal(size=n).astype(np.float32)
  return X, np.arange(n) % (2 if task == "binary" else 3)


def _forbid_training(monkeypatch):
  def no_training(*args, **kwargs):
    raise AssertionError("compare_losses started training")
  for name in ("train_folds", "train_one_fold"):
    monkeypatch.setattr(engine, name, no_training)


def test_forbid_training_catches_training(monkeypatch):
  # The control for the test below: with a cost that fits, training starts.
  _forbid_training(monkeypatch)
  X, y = _toy("binary")
  with pytest.raises(AssertionError, match="started training"):
    experiments.compare_losses(X, y, ["bce"], folds=3, epochs=1, hidden=0, cost="fn=5,fp=1")


@pytest.mark.parametrize("task, cost, match", [
    ("binary", "under=3,over=1", "task is binary"),
    ("binary", "fn=5,fp=1,squared", "applies to regression"),
    ("regression", "fn=5,fp=1", "task is regression"),
    ("multiclass", "fn=5,fp=1", "2 x 2, but the data have 3 classes"),
    ("multiclass", np.ones(3), r"square \(C, C\) cost matrix, got shape \(3,\)"),
    ("binary", [[0.0, -1.0], [1.0, 0.0]], "finite and >= 0"),
    ("binary", [[1.0, 0.0], [5.0, 0.0]], "each error must cost at least"),
])
def test_compare_losses_rejects_bad_cost_before_training(monkeypatch, task, cost, match):
  _forbid_training(monkeypatch)
  X, y = _toy(task)
  spec = {"binary": "bce", "multiclass": "ce", "regression": "mse"}[task]
  with pytest.raises(ValueError, match=match) as e:
    experiments.compare_losses(X, y, [spec], folds=3, epochs=1, hidden=0, cost=cost)
  one_line_error(e)


# ------------------------------------------------------------------------- normal_offset


def expectile_of_standard_normal(tau):
  """argmin_e E[|tau - 1(Z < e)| (Z - e)²] by numerical integration, Z ~ N(0, 1)."""
  def risk(e):
    above = integrate.quad(lambda z: (z - e) ** 2 * stats.norm.pdf(z), e, np.inf)[0]
    below = integrate.quad(lambda z: (z - e) ** 2 * stats.norm.pdf(z), -np.inf, e)[0]
    return tau * above + (1 - tau) * below
  return optimize.minimize_scalar(risk, bounds=(-6, 6), method="bounded",
                                  options={"xatol": 1e-10}).x


@pytest.mark.parametrize("tau", [0.02, 0.2, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_normal_offset_quantile_and_expectile(tau):
  assert normal_offset(tau, False) == pytest.approx(stats.norm.ppf(tau), abs=1e-12)
  expectile = normal_offset(tau, True)
  assert expectile == pytest.approx(expectile_of_standard_normal(tau), abs=1e-7)
  # The expectile is the less extreme of the two, on the same side of 0.
  assert abs(expectile) <= abs(stats.norm.ppf(tau)) + 1e-12
  if tau != 0.5:
    assert np.sign(expectile) == np.sign(stats.norm.ppf(tau))


def test_normal_offset_median_is_zero():
  assert normal_offset(0.5, False) == 0.0
  assert abs(normal_offset(0.5, True)) < 1e-12


# ----------------------------------------------------------------- fold_costs: references
# The tests share n = 60 rows (multiclass 90) in 3 folds and a few costs, so
# that most fold_costs calls reuse a compiled program.


def held_out_masks(n, folds, seed):
  """``(folds, n)``: a random partition, each row held out once."""
  order = np.random.default_rng(seed).permutation(n)
  masks = np.zeros((folds, n), bool)
  for f in range(folds):
    masks[f, order[f::folds]] = True
  return masks


def binary_outputs(seed, *, n=60, folds=3, two_logits=False):
  """Hand-made fold outputs: one logit ``(folds, n)`` or two ``(folds, n, 2)``."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n).astype(np.int32)
  z = (1.5 * rng.normal(size=(folds, n)) + 1.2 * (2 * y - 1)).astype(np.float32)
  if two_logits:  # logits (a, a + z): softmax's P(y=1) = sigmoid(z) up to rounding
    a = rng.normal(size=(folds, n)).astype(np.float32)
    z = np.stack([a, a + z], axis=-1)
  return z, y, held_out_masks(n, folds, seed)


def positive_probability(z):
  # P(y=1) as experiments._scoring.decode computes it (jax.nn.sigmoid / softmax),
  # so that the candidate thresholds below are the very float32 numbers the
  # tuned threshold is chosen from; the decision logic is what is tested here.
  if z.ndim == 2:
    p = np.asarray(jax.nn.sigmoid(jnp.asarray(z)))
    np.testing.assert_allclose(p, special.expit(z.astype(np.float64)), atol=1e-6)
    return p
  p = np.asarray(jax.nn.softmax(jnp.asarray(z), axis=-1))[..., 1]
  np.testing.assert_allclose(p, special.softmax(z.astype(np.float64), axis=-1)[..., 1],
                             atol=1e-6)
  return p


def brute_force_threshold(prob, y, rows, matrix):
  """The training-cost-minimizing candidate among ``prob[rows]``, largest among ties."""
  candidates = np.unique(prob[rows])
  spent = np.array([matrix[y[rows], (prob[rows] >= t).astype(int)].sum() for t in candidates])
  return candidates[np.flatnonzero(spent == spent.min())[-1]]


def numpy_binary(z, y, masks, matrix):
  """Per fold: costs of the three decisions and the (derived, tuned) thresholds."""
  matrix = np.asarray(matrix, np.float64)
  fp, fn = matrix[0, 1] - matrix[0, 0], matrix[1, 0] - matrix[1, 1]
  prob = positive_probability(z)
  default = (z > 0) if z.ndim == 2 else np.argmax(z, axis=-1)
  derived = np.float32(fp / (fp + fn))
  out = {k: [] for k in COST_METRICS + ("derived", "tuned")}
  for f, test in enumerate(masks):
    tuned = brute_force_threshold(prob[f], y, ~test, matrix)
    for name, pred in (("cost_default", default[f]), ("cost_derived", prob[f] >= derived),
                       ("cost_tuned", prob[f] >= tuned)):
      pred = pred.astype(int)
      spent = matrix[y[test], pred[test]].mean()
      # scikit-learn's confusion matrix priced by the cost matrix, per held-out row.
      cm = confusion_matrix(y[test], pred[test], labels=range(2))
      assert (cm * matrix).sum() / test.sum() == pytest.approx(spent, rel=1e-12)
      out[name].append(spent)
    out["derived"].append(derived)
    out["tuned"].append(tuned)
  return {k: np.asarray(v) for k, v in out.items()}


BINARY_COSTS = [parse_cost("fn=5,fp=1"),
                DecisionCost(matrix=((1.0, 3.0), (6.0, 0.5)), text="diagonal")]


@pytest.mark.parametrize("cost, two_logits", [(BINARY_COSTS[0], False), (BINARY_COSTS[0], True),
                                              (BINARY_COSTS[1], False)],
                         ids=["fn=5,fp=1", "fn=5,fp=1-two-logits", "diagonal"])
def test_fold_costs_binary_matches_numpy(cost, two_logits):
  z, y, masks = binary_outputs(3, two_logits=two_logits)
  costs, decisions = fold_costs(jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks),
                                task="binary", cost=cost)
  ref = numpy_binary(z, y, masks, cost.matrix)
  for name in COST_METRICS:
    assert costs[name].shape == (3,)
    np.testing.assert_allclose(costs[name], ref[name], rtol=1e-6, err_msg=name)
  fp, fn = cost.binary_costs()
  np.testing.assert_allclose(decisions["derived"], fp / (fp + fn), rtol=1e-7)
  np.testing.assert_array_equal(decisions["tuned"], ref["tuned"])
  prob = positive_probability(z)
  for f, test in enumerate(masks):
    assert decisions["tuned"][f] == metrics.best_threshold(
        jnp.asarray(prob[f]), jnp.asarray(y), cost_fp=fp, cost_fn=fn, where=jnp.asarray(~test))
  # The data are not trivial: the tuned thresholds differ from the derived one.
  assert np.all(np.asarray(decisions["tuned"]) != np.asarray(decisions["derived"]))


def multiclass_outputs(seed, *, n=90, folds=3, k=3):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, k, n).astype(np.int32)
  z = (2.5 * rng.normal(size=(folds, n, k)) + 2.0 * np.eye(k)[y]).astype(np.float32)
  return z, y, held_out_masks(n, folds, seed)


MULTICLASS_COST = DecisionCost(matrix=((0.0, 1.0, 4.0), (2.0, 0.0, 1.0), (8.0, 3.0, 0.0)),
                               text="3x3")


def numpy_bayes(z, temperature, matrix):
  return np.argmin(special.softmax(z.astype(np.float64) / temperature, axis=-1) @ matrix, -1)


def numpy_multiclass(z, y, masks, matrix):
  matrix = np.asarray(matrix, np.float64)
  out = {k: [] for k in COST_METRICS + ("tuned",)}
  for f, test in enumerate(masks):
    train = ~test
    spent = [matrix[y[train], numpy_bayes(z[f], t, matrix)[train]].mean() for t in TEMPERATURES]
    tuned = TEMPERATURES[int(np.argmin(spent))]  # the first minimum, T = 1 first
    for name, pred in (("cost_default", np.argmax(z[f], axis=-1)),
                       ("cost_derived", numpy_bayes(z[f], 1.0, matrix)),
                       ("cost_tuned", numpy_bayes(z[f], tuned, matrix))):
      out[name].append(matrix[y[test], pred[test]].mean())
    out["tuned"].append(tuned)
  return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_fold_costs_multiclass_matches_numpy(seed):
  z, y, masks = multiclass_outputs(seed)
  costs, decisions = fold_costs(jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks),
                                task="multiclass", cost=MULTICLASS_COST)
  ref = numpy_multiclass(z, y, masks, MULTICLASS_COST.matrix)
  for name in COST_METRICS:
    np.testing.assert_allclose(costs[name], ref[name], rtol=1e-6, err_msg=name)
  np.testing.assert_array_equal(decisions["derived"], 1.0)
  np.testing.assert_allclose(decisions["tuned"], ref["tuned"], rtol=1e-6)
  # Not trivial: the Bayes decision is not argmax, and some fold tunes T != 1.
  assert np.any(numpy_bayes(z, 1.0, np.asarray(MULTICLASS_COST.matrix)) != np.argmax(z, -1))
  assert np.any(ref["tuned"] != 1.0)


def regression_outputs(seed, *, n=60, folds=3):
  rng = np.random.default_rng(seed)
  y = (2.0 * rng.normal(size=n) + 1.0).astype(np.float32)
  bias = rng.normal(size=(folds, 1))
  z = (y + 0.8 * rng.standard_t(4, size=(folds, n)) + bias).astype(np.float32)
  return z, y, held_out_masks(n, folds, seed)


def numpy_regression_cost(residuals, offset, cost):
  e = residuals - offset  # > 0: under-predicted
  power = 2 if cost.squared else 1
  return np.mean(np.where(e > 0, cost.under * np.abs(e) ** power, cost.over * np.abs(e) ** power))


REGRESSION_COSTS = [parse_cost("under=3,over=1"), parse_cost("under=1,over=4,squared")]


# With 40 training rows, τ = 2/3 puts the τ-quantile strictly inside the
# order statistics (τ·n = 26.7): an off-by-one rank is no longer a minimizer.
@pytest.mark.parametrize("cost", REGRESSION_COSTS + [parse_cost("under=2,over=1")],
                         ids=lambda c: c.text)
def test_fold_costs_regression_matches_numpy(cost):
  z, y, masks = regression_outputs(5)
  costs, decisions = fold_costs(jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks),
                                task="regression", cost=cost)
  tau = cost.under / (cost.under + cost.over)
  q = expectile_of_standard_normal(tau) if cost.squared else stats.norm.ppf(tau)
  for f, test in enumerate(masks):
    train = ~test
    r = y.astype(np.float64) - z[f]
    sigma = np.sqrt(np.mean(r[train] ** 2))
    assert decisions["derived"][f] == pytest.approx(sigma * q, rel=1e-5)
    tuned = float(decisions["tuned"][f])
    if cost.squared:  # the τ-expectile of the training residuals
      best = optimize.minimize_scalar(lambda b: numpy_regression_cost(r[train], b, cost),
                                      bounds=(r.min(), r.max()), method="bounded",
                                      options={"xatol": 1e-9}).x
      assert tuned == pytest.approx(best, rel=1e-4, abs=1e-5)
    else:  # a minimizer of the pinball sum: the best of the training residuals
      floor = min(numpy_regression_cost(r[train], b, cost) for b in r[train])
      assert numpy_regression_cost(r[train], tuned, cost) == pytest.approx(floor, rel=1e-6)
      assert np.min(np.abs(r[train] - tuned)) <= 1e-6 * (1 + abs(tuned))
    expected = {"cost_default": 0.0, "cost_derived": sigma * q, "cost_tuned": tuned}
    for name, offset in expected.items():
      assert costs[name][f] == pytest.approx(numpy_regression_cost(r[test], offset, cost),
                                             rel=1e-5), name
    # Not trivial: on its training rows the tuned offset beats the other two.
    on_train = [numpy_regression_cost(r[train], b, cost) for b in expected.values()]
    assert on_train[2] < min(on_train[:2])


# ------------------------------------------------------------------------------ leakage


def _threshold_leakage_data():
  """Fold 0 holds out 60% of the rows (A); folds 1 and 2 split the rest (B).

  Every fold has the same outputs P(y=1) = p, evenly spread in (0, 1). Rows
  of A are positive iff p > 0.3, rows of B iff p > 0.8: trained on B, fold 0's
  best threshold is near 0.8, while its held-out rows' own best is near 0.3,
  and so is that of all rows together (A's 5-fold missed positives dominate).
  """
  n = 60
  p = np.linspace(0.02, 0.98, n)
  order = np.random.default_rng(0).permutation(n)
  masks = np.zeros((3, n), bool)
  masks[0, order[:36]] = True
  masks[1, order[36:48]] = True
  masks[2, order[48:]] = True
  y = np.where(masks[0], p > 0.3, p > 0.8).astype(np.int32)
  z = np.tile(special.logit(p).astype(np.float32), (3, 1))
  return z, y, masks


def test_tuned_threshold_uses_training_rows_only():
  z, y, masks = _threshold_leakage_data()
  cost = BINARY_COSTS[0]
  matrix = np.asarray(cost.matrix)
  prob = positive_probability(z)
  run = lambda labels: fold_costs(jnp.asarray(z), jnp.asarray(labels), jnp.asarray(masks),
                                  task="binary", cost=cost)
  costs, decisions = run(y)
  for f, test in enumerate(masks):
    assert decisions["tuned"][f] == brute_force_threshold(prob[f], y, ~test, matrix)
  # A threshold tuned on fold 0's held-out rows, or on all rows, would be another one.
  on_train = brute_force_threshold(prob[0], y, ~masks[0], matrix)
  on_test = brute_force_threshold(prob[0], y, masks[0], matrix)
  on_all = brute_force_threshold(prob[0], y, np.ones(len(y), bool), matrix)
  assert on_train > 0.75 and on_test < 0.35 and on_all < 0.35
  # Changing fold 0's held-out labels (flipped, or shuffled among themselves)
  # leaves its tuned threshold alone but changes its held-out cost; folds 1
  # and 2, which train on those rows, move their thresholds.
  test = masks[0]
  flipped = y.copy()
  flipped[test] = 1 - y[test]
  shuffled = y.copy()
  shuffled[test] = np.random.default_rng(1).permutation(y[test])
  for labels in (flipped, shuffled):
    new_costs, new_decisions = run(labels)
    assert new_decisions["tuned"][0] == decisions["tuned"][0]
    assert new_costs["cost_tuned"][0] != costs["cost_tuned"][0]
    assert np.all(new_decisions["tuned"][1:] != decisions["tuned"][1:])
    np.testing.assert_array_equal(new_decisions["derived"], decisions["derived"])


@pytest.mark.parametrize("cost", REGRESSION_COSTS, ids=lambda c: c.text)
def test_tuned_offset_uses_training_rows_only(cost):
  z, y, masks = regression_outputs(7)
  run = lambda labels: fold_costs(jnp.asarray(z), jnp.asarray(labels), jnp.asarray(masks),
                                  task="regression", cost=cost)
  costs, decisions = run(y)
  moved = y.copy()
  moved[masks[0]] += 5.0  # fold 0's held-out targets: far above every forecast
  new_costs, new_decisions = run(moved)
  for k in ("derived", "tuned"):  # fold 0: unchanged; folds 1, 2 train on the moved rows
    assert new_decisions[k][0] == decisions[k][0]
    assert np.all(new_decisions[k][1:] != decisions[k][1:])
  for name in COST_METRICS:
    assert new_costs[name][0] > costs[name][0] + 1.0


def test_tuned_temperature_uses_training_rows_only():
  z, y, masks = multiclass_outputs(1)
  matrix = np.asarray(MULTICLASS_COST.matrix)
  run = lambda labels: fold_costs(jnp.asarray(z), jnp.asarray(labels), jnp.asarray(masks),
                                  task="multiclass", cost=MULTICLASS_COST)
  costs, decisions = run(y)
  test = masks[0]

  def best_temperature(labels, rows):
    spent = [matrix[labels[rows], numpy_bayes(z[0], t, matrix)[rows]].mean()
             for t in TEMPERATURES]
    return TEMPERATURES[int(np.argmin(spent))]
  assert decisions["tuned"][0] == pytest.approx(best_temperature(y, ~test), rel=1e-6)
  # Held-out labels that reward another temperature than the training rows do
  # (the model's own argmax: the sharpest decision) change nothing in fold 0
  # but its held-out cost.
  sharp = y.copy()
  sharp[test] = np.argmax(z[0], axis=-1)[test]
  assert best_temperature(sharp, test) != best_temperature(y, ~test)
  new_costs, new_decisions = run(sharp)
  assert new_decisions["tuned"][0] == decisions["tuned"][0]
  assert new_costs["cost_tuned"][0] != costs["cost_tuned"][0]


@pytest.fixture(scope="module")
def breast_cancer_with_cost():
  """compare_losses with fn=5,fp=1, recording what it hands to fold_costs."""
  seen = []
  real = compare_module.fold_costs

  def recording(z, y, masks, **kwargs):
    seen.append((np.asarray(z), np.asarray(y), np.asarray(masks), kwargs))
    return real(z, y, masks, **kwargs)
  ds = datasets.load("breast_cancer")
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(compare_module, "fold_costs", recording)
    res = experiments.compare_losses(ds.X, ds.y, ["bce"], folds=3, epochs=2, hidden=0,
                                     learning_rate=0.05, cost="fn=5,fp=1")
  return res, seen


def test_compare_losses_tuned_threshold_from_training_rows(breast_cancer_with_cost):
  res, seen = breast_cancer_with_cost
  (z, y, masks, kwargs), = seen
  assert kwargs == {"task": "binary", "cost": res.cost} and z.shape == masks.shape == (3, len(y))
  np.testing.assert_array_equal(masks.sum(axis=0), 1)  # each row held out once
  np.testing.assert_array_equal(y, res.labels)
  prob = positive_probability(z)
  holder = np.argmax(masks, axis=0)
  # The recorded outputs are the fold models' own: the result's held-out
  # probabilities and predictions come from them.
  np.testing.assert_array_equal(res.probabilities["bce"], prob[holder, np.arange(len(y))])
  matrix = np.asarray(res.cost.matrix)
  decisions, scores = res.decisions["bce"], res.scores["bce"]
  for f, test in enumerate(masks):
    tuned = brute_force_threshold(prob[f], y, ~test, matrix)
    assert decisions["tuned"][f] == pytest.approx(tuned, rel=1e-7)
    assert scores["cost_tuned"][f] == pytest.approx(
        matrix[y[test], (prob[f][test] >= tuned).astype(int)].mean(), rel=1e-6)
    assert scores["cost_default"][f] == pytest.approx(
        matrix[y[test], res.predictions["bce"][test]].mean(), rel=1e-6)
    assert scores["cost_derived"][f] == pytest.approx(
        matrix[y[test], (prob[f][test] >= np.float32(1 / 6)).astype(int)].mean(), rel=1e-6)
  np.testing.assert_allclose(decisions["derived"], 1 / 6, rtol=1e-7)
  # A false negative costs 5 times a false positive: both decisions predict
  # the positive class more readily than P(y=1) >= 0.5 (the tuned one on
  # average: on a fold whose training rows are separated, a wide range of
  # thresholds costs the same and the search keeps the lowest-cost one).
  assert np.mean(decisions["tuned"]) < 0.5


# --------------------------------------------------------------------------- cost_curve


@pytest.mark.parametrize("cost", BINARY_COSTS, ids=lambda c: c.text)
def test_cost_curve_binary_matches_loop(cost):
  z, y, _ = binary_outputs(11, n=90, folds=1)
  prob = positive_probability(z)[0]
  curve = cost_curve(prob, y, cost, "binary")
  x = np.linspace(0, 1, 101)
  matrix = np.asarray(cost.matrix)
  expected = [np.mean([matrix[t, int(p >= s)] for p, t in zip(prob, y)]) for s in x]
  np.testing.assert_array_equal(curve["x"], x)
  np.testing.assert_allclose(curve["cost"], expected, rtol=1e-12)


def test_cost_curve_multiclass_matches_loop():
  z, y, _ = multiclass_outputs(2, folds=1)
  matrix = np.asarray(MULTICLASS_COST.matrix)
  softmax = special.softmax(z[0].astype(np.float64), axis=-1)
  curve = cost_curve(softmax, y, MULTICLASS_COST, "multiclass", points=31)
  x = np.geomspace(0.1, 10, 31)
  # The reference re-tempers the logits themselves, not the softmax.
  expected = [np.mean(matrix[y, numpy_bayes(z[0], t, matrix)]) for t in x]
  np.testing.assert_allclose(curve["x"], x, rtol=1e-15)
  np.testing.assert_allclose(curve["cost"], expected, rtol=1e-12)
  assert len(set(curve["cost"])) > 3  # the temperature matters on these data


@pytest.mark.parametrize("cost", REGRESSION_COSTS, ids=lambda c: c.text)
def test_cost_curve_regression_matches_loop(cost):
  z, y, _ = regression_outputs(3, folds=1)
  curve = cost_curve(z[0], y, cost, "regression", points=41)
  # Offsets: 41 evenly spaced, symmetric about 0 (the span is the plot's choice).
  span = curve["x"][-1]
  assert span > 0
  np.testing.assert_allclose(curve["x"], np.linspace(-span, span, 41), rtol=1e-12, atol=1e-12)
  r = y.astype(np.float64) - z[0]
  np.testing.assert_allclose(curve["cost"], [numpy_regression_cost(r, b, cost) for b in curve["x"]],
                             rtol=1e-6)


def test_cost_curve_agrees_with_fold_costs_at_the_decisions():
  # Binary fn=5,fp=1: the derived threshold 1/6 is x[1] of a 7-point curve.
  z, y, masks = binary_outputs(4)
  cost = BINARY_COSTS[0]
  costs, _ = fold_costs(jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks), task="binary",
                        cost=cost)
  prob = positive_probability(z)
  for f, test in enumerate(masks):
    curve = cost_curve(prob[f][test], y[test], cost, "binary", points=7)
    assert curve["x"][1] == pytest.approx(1 / 6, rel=1e-15)
    assert curve["cost"][1] == pytest.approx(float(costs["cost_derived"][f]), rel=1e-6)
  # Multiclass: T = 1 (x[50]) is the Bayes decision.
  z, y, masks = multiclass_outputs(0)
  costs, _ = fold_costs(jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks), task="multiclass",
                        cost=MULTICLASS_COST)
  for f, test in enumerate(masks):
    softmax = special.softmax(z[f][test].astype(np.float64), axis=-1)
    curve = cost_curve(softmax, y[test], MULTICLASS_COST, "multiclass")
    assert curve["x"][50] == 1.0
    assert curve["cost"][50] == pytest.approx(float(costs["cost_derived"][f]), rel=1e-6)
  # Regression: offset 0 (x[50]) is the model's own forecast.
  z, y, masks = regression_outputs(0)
  costs, _ = fold_costs(jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks), task="regression",
                        cost=REGRESSION_COSTS[1])
  for f, test in enumerate(masks):
    curve = cost_curve(z[f][test], y[test], REGRESSION_COSTS[1], "regression")
    assert abs(curve["x"][50]) <= 1e-12 * curve["x"][-1]
    assert curve["cost"][50] == pytest.approx(float(costs["cost_default"][f]), rel=1e-5)


# ------------------------------------------------------------------- jit and extremes


@pytest.mark.parametrize("squared", [False, True])
def test_regression_cost_under_jit_matches_numpy(squared):
  rng = np.random.default_rng(0)
  pred, y = rng.normal(size=(2, 25)).astype(np.float32)
  where = rng.random(25) < 0.6
  cost = DecisionCost(under=2.5, over=0.5, squared=squared)
  f = jax.jit(lambda p, t, w: regression_cost(p, t, under=2.5, over=0.5, squared=squared,
                                               where=w))
  r = y.astype(np.float64) - pred
  np.testing.assert_allclose(f(pred, y, where), numpy_regression_cost(r[where], 0.0, cost),
                             rtol=1e-6)
  np.testing.assert_allclose(f(pred, y, np.ones(25, bool)), numpy_regression_cost(r, 0.0, cost),
                             rtol=1e-6)
  assert float(f(pred, y, np.zeros(25, bool))) == 0.0  # nothing included: 0, not NaN


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_fold_costs_under_jit_is_float32(task):
  z, y, masks, cost = {
      "binary": lambda: binary_outputs(0) + (BINARY_COSTS[0],),
      "multiclass": lambda: multiclass_outputs(0) + (MULTICLASS_COST,),
      "regression": lambda: regression_outputs(0) + (REGRESSION_COSTS[1],)}[task]()
  args = jnp.asarray(z), jnp.asarray(y), jnp.asarray(masks)
  eager = fold_costs(*args, task=task, cost=cost)
  jitted = jax.jit(lambda *a: fold_costs(*a, task=task, cost=cost))(*args)
  for got, want in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager)):
    assert got.dtype == jnp.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("case", ["binary", "binary-two-logits", "multiclass", "regression"])
def test_fold_costs_extreme_outputs_are_finite(case):
  # Logits of ±1e4 (probabilities exactly 0 and 1 in float32), forecasts 1e4 off.
  if case == "multiclass":
    z, y, masks = multiclass_outputs(0)
    z, task, cost = 1e4 * np.sign(z), "multiclass", MULTICLASS_COST
  elif case == "regression":
    z, y, masks = regression_outputs(0)
    z, task, cost = y + 1e4 * np.sign(z - y), "regression", REGRESSION_COSTS[1]
  else:
    z, y, masks = binary_outputs(0, two_logits=case == "binary-two-logits")
    z, task, cost = 1e4 * np.sign(z), "binary", BINARY_COSTS[0]
  costs, decisions = fold_costs(jnp.asarray(z, jnp.float32), jnp.asarray(y),
                                jnp.asarray(masks), task=task, cost=cost)
  for name, v in list(costs.items()) + list(decisions.items()):
    assert np.all(np.isfinite(v)), (name, v)
  if task != "regression":  # a cost per row lies within the matrix's range
    assert np.all(np.stack(list(costs.values())) <= np.max(cost.matrix))


# ---------------------------------------------------------------- ComparisonResult.to_dict


def _check_cost_block(res, block, folds):
  assert block["text"] == res.cost.text and block["description"] == res.cost.describe()
  assert block["metrics"] == list(COST_METRICS)
  assert set(block["decisions"]) == set(block["curves"]) == set(res.specs)
  for spec in res.specs:
    assert set(block["decisions"][spec]) == {"derived", "tuned"}
    for k, values in block["decisions"][spec].items():
      assert len(values) == folds and all(isinstance(v, float) for v in values)
      np.testing.assert_allclose(values, res.decisions[spec][k])
    curve = block["curves"][spec]
    assert set(curve) == {"x", "cost"} and len(curve["x"]) == len(curve["cost"]) == 101
    assert all(math.isfinite(v) for v in curve["cost"])


def test_to_dict_cost_block_binary(breast_cancer_with_cost):
  res = breast_cancer_with_cost[0]
  out = res.to_dict()
  text = json.dumps(out, allow_nan=False)
  assert json.loads(text) == json.loads(json.dumps(json.loads(text), allow_nan=False))
  block = json.loads(text)["cost"]
  _check_cost_block(res, block, 3)
  assert block["matrix"] == [[0.0, 1.0], [5.0, 0.0]]
  assert "under" not in block and "kind" not in block
  assert block["description"] == "a false negative costs 5, a false positive 1"
  assert out["settings"]["cost"]["matrix"] == block["matrix"]
  for m in COST_METRICS:  # scored, summarized and reported like any metric
    assert m in out["metrics"] and out["higher_is_better"][m] is False
    folds = out["results"][0]["metrics"][m]["folds"]
    np.testing.assert_allclose(folds, res.scores["bce"][m])
  spec, metric, value = res.best_decision()
  assert spec == "bce" and metric in COST_METRICS
  assert value == min(np.mean(res.scores["bce"][m]) for m in COST_METRICS)


def test_to_dict_cost_block_regression():
  ds = datasets.load("diabetes")
  res = experiments.compare_losses(ds.X, ds.y, ["mse"], folds=3, epochs=2, hidden=0,
                                   learning_rate=0.05, cost="under=3,over=1,squared")
  assert res.cost.squared and res.task == "regression"
  block = json.loads(json.dumps(res.to_dict(), allow_nan=False))["cost"]
  _check_cost_block(res, block, 3)
  assert (block["under"], block["over"], block["kind"]) == (3.0, 1.0, "squared")
  assert "matrix" not in block
  # The tuned offset pushes the forecast up where under-forecasts cost more.
  assert np.all(res.decisions["mse"]["tuned"] > 0) and np.all(res.decisions["mse"]["derived"] > 0)


def test_cost_table_pairs_every_decision_with_the_baseline_tuned(breast_cancer_with_cost):
  # The corrected resampled t-test (Nadeau & Bengio 2003) written out with scipy.
  res = breast_cancer_with_cost[0]
  rows = res.cost_table()
  assert [(r["spec"], r["metric"]) for r in rows] == [("bce", m) for m in COST_METRICS]
  reference = res.scores["bce"]["cost_tuned"]
  for r in rows:
    v = res.scores["bce"][r["metric"]]
    assert r["mean"] == pytest.approx(v.mean()) and r["std"] == pytest.approx(v.std())
    if r["metric"] == "cost_tuned":
      assert r["vs_baseline_tuned"] is None
      np.testing.assert_allclose(r["value"], res.decisions["bce"]["tuned"].mean())
      continue
    d = v - reference
    se = math.sqrt((1 / d.size + 1 / 2) * d.var(ddof=1))  # 3 folds: n_test/n_train = 1/2
    t = d.mean() / se
    test = r["vs_baseline_tuned"]
    assert test["mean_diff"] == pytest.approx(d.mean(), abs=1e-7)
    assert test["t"] == pytest.approx(t, rel=1e-4)
    assert test["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), d.size - 1), rel=1e-4)
    half = stats.t.ppf(0.975, d.size - 1) * se
    assert test["ci_low"] == pytest.approx(d.mean() - half, rel=1e-4, abs=1e-7)
    assert test["ci_high"] == pytest.approx(d.mean() + half, rel=1e-4, abs=1e-7)


def test_best_decision_without_a_cost_says_what_is_missing():
  ds = datasets.load("breast_cancer")
  res = experiments.compare_losses(ds.X, ds.y, ["bce"], folds=3, epochs=2, hidden=0,
                                   learning_rate=0.05)
  assert res.cost is None and res.cost_table() == [] and "cost" not in res.to_dict()
  with pytest.raises(ValueError, match=r"best_decision needs costs.*cost="):
    res.best_decision()
