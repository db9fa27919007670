"""Tests for lossreg_jax.checks.check_loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossreg_jax import checks, losses

N = 16  # random inputs per property: enough to find the counterexamples below


def squared_error(p, t):
  return (p - t) ** 2


def test_squared_error_passes_everything_and_prints_a_table():
  report = checks.check_loss(squared_error, num_samples=N)
  assert report.passed, str(report)
  assert report.failures == []
  assert [r.name for r in report.results] == list(checks.PROPERTIES)
  text = str(report)
  assert "squared_error" in text and "task='regression'" in text
  for name in checks.PROPERTIES:
    assert name in text
  assert text.count("PASS") == len(checks.PROPERTIES) and "FAIL" not in text
  assert "zero" in report["minimal_at_perfect"].detail
  with pytest.raises(KeyError, match="no property"):
    report["smooth"]


def test_non_convex_loss_fails_convexity_with_a_true_counterexample():
  def welsch(p, t):
    return 1 - jnp.exp(-(p - t) ** 2)

  report = checks.check_loss(welsch, num_samples=N)
  assert [r.name for r in report.failures] == ["convex"], str(report)
  ce = report["convex"].counterexample
  f = lambda p: float(jnp.sum(welsch(p, ce["targets"])))
  mid = (ce["a"] + ce["b"]) / 2
  assert f(mid) > (f(ce["a"]) + f(ce["b"])) / 2 + 1e-5
  np.testing.assert_allclose(ce["f_midpoint"], f(mid), rtol=1e-5)
  text = str(report)
  assert "FAIL" in text and "counterexample for convex" in text and "f_midpoint" in text


def test_negative_loss_fails_non_negativity():
  report = checks.check_loss(lambda p, t: (p - t) ** 2 - 1.0, num_samples=N)
  result = report["non_negative"]
  assert not result.passed and not report.passed
  ce = result.counterexample
  assert np.min((ce["predictions"] - ce["targets"]) ** 2 - 1.0) < 0
  assert np.min(ce["loss"]) < 0
  # A constant offset keeps the minimum at the perfect prediction, but not zero.
  assert report["minimal_at_perfect"].passed
  assert "not zero" in report["minimal_at_perfect"].detail


def test_nan_gradient_at_the_perfect_prediction_fails_finite_gradients():
  sqrt_abs = lambda p, t: jnp.sqrt(jnp.abs(p - t))
  report = checks.check_loss(sqrt_abs, num_samples=N)
  result = report["finite_gradients"]
  assert not result.passed, str(report)
  assert "perfect" in result.detail
  ce = result.counterexample
  np.testing.assert_array_equal(ce["predictions"], ce["targets"])
  grad = jax.grad(lambda p: jnp.sum(sqrt_abs(p, ce["targets"])))(ce["predictions"])
  assert not np.all(np.isfinite(grad))
  assert report["differentiable"].passed  # smooth away from p = t


def test_python_branching_on_values_fails_jit():
  def branchy(p, t):
    if float(jnp.sum(p - t)) > 0:
      return jnp.sum((p - t) ** 2)
    return jnp.sum(jnp.abs(p - t))

  report = checks.check_loss(branchy, num_samples=N)
  assert report["evaluates"].passed
  assert report["non_negative"].passed  # evaluated one by one when vmap fails
  assert not report["jit"].passed
  assert "raised" in report["jit"].detail and "Concretization" in report["jit"].detail
  assert not report["vmap"].passed and not report["grad"].passed


def test_wrong_custom_gradient_fails_differentiability():
  @jax.custom_jvp
  def square(x):
    return x**2

  @square.defjvp
  def _(primals, tangents):
    (x,), (dx,) = primals, tangents
    return x**2, 3 * x * dx  # wrong: should be 2x

  report = checks.check_loss(lambda p, t: square(p - t), num_samples=N)
  result = report["differentiable"]
  assert not result.passed
  ce = result.counterexample
  np.testing.assert_allclose(ce["autodiff"], 1.5 * ce["finite_difference"], rtol=1e-4)
  assert report["convex"].passed


def test_loss_minimal_away_from_the_target_fails():
  report = checks.check_loss(lambda p, t: (p - t - 1.0) ** 2, num_samples=N)
  result = report["minimal_at_perfect"]
  assert not result.passed
  ce = result.counterexample
  assert ce["loss_at_better"] < ce["loss_at_perfect"]


@pytest.mark.slow
def test_binary_and_multiclass_tasks():
  ok = checks.check_loss(optax.sigmoid_binary_cross_entropy, task="binary", num_samples=N)
  assert ok.passed, str(ok)
  naive = lambda x, y: -(y * jnp.log(jax.nn.sigmoid(x)) + (1 - y) * jnp.log(1 - jax.nn.sigmoid(x)))
  bad = checks.check_loss(naive, task="binary", num_samples=N)
  # log(1 - sigmoid(20)) = log(0) in float32: 0 * -inf = NaN already at perfect logits.
  assert not bad["finite_gradients"].passed and "non-finite" in bad["finite_gradients"].detail
  assert np.isnan(bad["finite_gradients"].counterexample["loss"])

  def clipped_bce(p, y):
    p = jnp.clip(p, 1e-7, 1 - 1e-7)
    return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

  probs = checks.check_loss(clipped_bce, task="binary", binary_inputs="probabilities",
                            num_samples=N)
  assert probs.passed, str(probs)
  multi = checks.check_loss(optax.softmax_cross_entropy, task="multiclass", num_samples=N,
                            num_classes=4)
  assert multi.passed, str(multi)
  assert multi["evaluates"].detail.startswith("returns shape (4,)")


def test_a_loss_that_cannot_run_fails_without_running_the_rest():
  def broken(p, t):
    raise RuntimeError("boom")

  report = checks.check_loss(broken, num_samples=N)
  assert not report["evaluates"].passed and "RuntimeError: boom" in report["evaluates"].detail
  assert all(not r.passed and r.detail.startswith("not run") for r in report.results[1:])
  assert "FAIL" in str(report)


def test_bad_arguments():
  with pytest.raises(ValueError, match="task"):
    checks.check_loss(squared_error, task="ranking")
  with pytest.raises(TypeError, match="fn"):
    checks.check_loss("squared_error")
  with pytest.raises(ValueError, match="num_samples"):
    checks.check_loss(squared_error, num_samples=1)
  with pytest.raises(ValueError, match="binary_inputs"):
    checks.check_loss(squared_error, task="binary", binary_inputs="odds")


def test_the_key_fixes_the_inputs():
  welsch = lambda p, t: 1 - jnp.exp(-(p - t) ** 2)
  typed = checks.check_loss(welsch, key=jax.random.key(3), num_samples=N)["convex"]
  raw = checks.check_loss(welsch, key=jax.random.PRNGKey(3), num_samples=N)["convex"]
  assert not typed.passed and not raw.passed
  for name in ("a", "b", "targets"):
    np.testing.assert_array_equal(typed.counterexample[name], raw.counterexample[name])
  other = checks.check_loss(welsch, key=jax.random.key(4), num_samples=N)["convex"]
  assert not np.array_equal(other.counterexample["a"], typed.counterexample["a"])


def test_report_as_json_and_markdown():
  # What `lossreg-jax check --out` writes: the same facts as str(report).
  import json
  welsch = lambda p, t: 1 - jnp.exp(-(p - t) ** 2)
  report = checks.check_loss(welsch, key=jax.random.key(3), num_samples=N)
  data = json.loads(json.dumps(report.to_dict()))
  assert data["passed"] is False and data["task"] == "regression"
  assert [p["name"] for p in data["properties"]] == list(checks.PROPERTIES)
  convex = next(p for p in data["properties"] if p["name"] == "convex")
  assert convex["passed"] is False
  np.testing.assert_array_equal(convex["counterexample"]["a"], report["convex"].counterexample["a"])
  text = report.markdown()
  assert "| convex | FAIL |" in text and "## counterexample for convex" in text
  assert text.count("| PASS |") == sum(r.passed for r in report.results)


def _tukey(p, t, c=4.685):
  e = jnp.clip((p - t) / c, -1, 1)
  return c**2 / 6 * (1 - (1 - e**2) ** 3)


# (name, loss, task, binary_inputs, convex?): convexity known analytically.
CONVEXITY_PANEL = [
    ("squared", losses.squared_error, "regression", "logits", True),
    ("absolute", losses.absolute_error, "regression", "logits", True),
    ("huber", losses.huber_loss, "regression", "logits", True),
    ("log_cosh", losses.log_cosh, "regression", "logits", True),
    ("quantile", lambda p, t: losses.quantile_loss(p, t, quantile=0.8), "regression", "logits",
     True),
    ("hinge", lambda z, y: losses.hinge_loss(z, 2 * y - 1), "binary", "logits", True),
    ("bce_logits", losses.sigmoid_binary_cross_entropy, "binary", "logits", True),
    ("bce_probabilities", losses.binary_cross_entropy, "binary", "probabilities", True),
    ("ce_logits", losses.softmax_cross_entropy, "multiclass", "logits", True),
    ("focal_gamma1", lambda z, y: losses.sigmoid_focal_loss(z, y, gamma=1.0), "binary", "logits",
     False),
    ("focal_gamma2", lambda z, y: losses.sigmoid_focal_loss(z, y, gamma=2.0), "binary", "logits",
     False),
    ("welsch", lambda p, t: 1 - jnp.exp(-(p - t) ** 2), "regression", "logits", False),
    ("cauchy", lambda p, t: jnp.log1p((p - t) ** 2), "regression", "logits", False),
    ("tukey", _tukey, "regression", "logits", False),
    ("squared_error_of_sigmoid", lambda z, y: (jax.nn.sigmoid(z) - y) ** 2, "binary", "logits",
     False),
    # LINEX b (exp(a e) - a e - 1) with its sign flipped by mistake: concave.
    ("linex_sign_error", lambda p, t: 1 + 0.5 * (p - t) - jnp.exp(0.5 * (p - t)), "regression",
     "logits", False),
]


@pytest.mark.slow
def test_convexity_verdicts_on_losses_with_known_answers():
  # Focal loss (gamma = 2, label 1) is concave for logits in about [-6, -2]:
  # f(-4) = 3.875 > (f(-6) + f(-2)) / 2 = 3.811. 32 random segments passed it.
  z = jnp.array([-6.0, -4.0, -2.0])
  f = losses.sigmoid_focal_loss(z, jnp.ones(3), gamma=2.0, alpha=None, reduction="none")
  assert float(f[1]) > float(f[0] + f[2]) / 2
  wrong = {}
  for name, fn, task, inputs, convex in CONVEXITY_PANEL:
    result = checks.check_loss(fn, task=task, binary_inputs=inputs)["convex"]
    if result.passed != convex:
      wrong[name] = result.detail
    if not result.passed:  # the counterexample reproduces when evaluated
      ce = result.counterexample
      g = lambda p, ce=ce, fn=fn: float(jnp.sum(fn(p, ce["targets"])))
      assert g((ce["a"] + ce["b"]) / 2) > (g(ce["a"]) + g(ce["b"])) / 2 + 1e-5, name
      np.testing.assert_allclose(ce["f_midpoint"], g((ce["a"] + ce["b"]) / 2), rtol=1e-5)
  assert not wrong, wrong
