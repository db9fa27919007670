"""``lossreg-jax compare --model`` and ``--loss-file`` (in process via ``main``).

Most tests stop at ``experiments.compare_losses`` with a fake that records its
arguments; one trains a tiny CNN on the digits images end to end (slow).
"""

import json
import re

import numpy as np
import pytest

from lossreg_jax import experiments

# As tests/test_cli.py's FAST, without --hidden (it conflicts with --model).
FAST = ["--folds", "3", "--epochs", "2", "--learning-rate", "0.05"]


from test_cli import run  # noqa: E402  (tests/ is on sys.path)
from test_cli import _what_compare_gets as _compare_args  # noqa: E402


def _what_compare_gets(capsys, monkeypatch, *argv):
  """test_cli's helper with this file's FAST (no --hidden)."""
  return _compare_args(capsys, monkeypatch, *argv, fast=FAST)


def _never_trains(monkeypatch):
  monkeypatch.setattr(experiments, "compare_losses",
                      lambda *a, **k: pytest.fail("compare_losses ran despite bad input"))


def _one_error_line(code, out, err, pattern):
  assert code == 2 and out == "" and "Traceback" not in err, err
  assert len(err.splitlines()) == 1 and err.startswith("lossreg-jax compare: error: "), err
  assert re.search(pattern, err), (pattern, err)


def test_model_option_reaches_compare_losses(capsys, monkeypatch):
  # (argv, model=, hidden=, X's shape, the status line's model and rows)
  for argv, model, hidden, shape, status in [
      ([], None, 16, (569, 30), "30 features, task binary (positive class 'malignant'); "
                                "model mlp:hidden=16,layers=1;"),
      (["--hidden", "4"], None, 4, (569, 30), "model mlp:hidden=4,layers=1;"),
      (["--hidden", "0"], None, 0, (569, 30), "model linear;"),
      (["--model", "linear"], "linear", 0, (569, 30), "model linear;"),
      (["--model", "mlp:hidden=8,layers=2"], "mlp:hidden=8,layers=2", 8, (569, 30),
       "model mlp:hidden=8,layers=2;"),
      (["--dataset", "digits", "--model", "cnn:channels=2"], "cnn:channels=2", 0,
       (1797, 8, 8, 1), "1797 rows, 8x8x1 images, task multiclass; model cnn:channels=2; "
                        "3 specs x 1 x 3 folds"),
      (["--dataset", "digits", "--model", "mlp"], "mlp", 16, (1797, 64), "64 features"),
  ]:
    seen, err = _what_compare_gets(capsys, monkeypatch, *argv)
    assert seen["model"] == model and seen["hidden"] == hidden, argv
    assert np.shape(seen["X"]) == shape and status in err, (argv, err)
    assert seen["losses"] is None
    if len(shape) == 4:
      images = np.asarray(seen["X"])
  # The images are the pixels in order: scikit-learn's load_digits().images.
  sklearn_datasets = pytest.importorskip("sklearn.datasets")
  np.testing.assert_array_equal(images[..., 0], sklearn_datasets.load_digits().images)


def test_model_errors_are_one_line_and_write_nothing(capsys, monkeypatch, tmp_path):
  _never_trains(monkeypatch)
  table = tmp_path / "table.csv"
  table.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
  out = tmp_path / "out"
  for argv, pattern in [
      (["--model", "resnet"], r"--model: unknown model 'resnet'; valid models: linear, mlp, "
                              r"cnn"),
      (["--model", "mlp:hidden=0"], r"--model: model 'mlp': hidden must be an integer >= 1, "
                                    r"got '0'"),
      (["--model", "cnn:width=3"], r"--model: unknown setting 'width' for model 'cnn'"),
      (["--model", "cnn"], r"--model cnn:channels=8 needs images \(n, height, width, "
                           r"channels\), but breast_cancer is a table of 30 features; .*"
                           r"--dataset digits"),
      (["--model", "cnn:channels=4", "--csv", str(table), "--target", "label"],
       rf"--model cnn:channels=4 needs images .* but {re.escape(str(table))} is a table of 2 "
       rf"features"),
      (["--model", "linear", "--hidden", "8"], r"--hidden sets the default MLP; with --model, "
                                               r"write the units in it \(--model mlp:hidden=8\)"),
  ]:
    _one_error_line(*run(capsys, "compare", *argv, "--out", str(out)), pattern)
  assert not out.exists()


LOSS_FILE = '''\
"""Losses for the tests: one public loss, a private helper, imported names."""
import math
from math import exp
import jax.numpy as jnp
from lossreg_jax.losses import squared_error


def _mean(values, weights, where):
  w = jnp.ones_like(values) if weights is None else weights
  w = w if where is None else jnp.where(where, w, 0.0)
  return jnp.sum(w * values) / jnp.maximum(jnp.sum(w), 1e-12)


def pseudo_huber(predictions, targets, *, delta=1.0, weights=None, where=None):
  r = (predictions - targets) / delta
  return _mean(delta ** 2 * (jnp.sqrt(1 + r ** 2) - 1), weights, where)


def log_error(predictions, targets, *, weights=None, where=None):  # NaN below 0
  return _mean(jnp.log(predictions - targets), weights, where)


def data_dependent(predictions, targets, *, weights=None, where=None):  # not jit-able
  if float(jnp.sum(predictions)) > 1e9:
    return jnp.mean(predictions)
  return _mean((predictions - targets) ** 2, weights, where)


def no_keywords(predictions, targets):
  return jnp.mean((predictions - targets) ** 2)
'''


def test_loss_file_losses_reach_compare_losses(capsys, monkeypatch, tmp_path):
  path = tmp_path / "my_losses.py"
  path.write_text(LOSS_FILE)
  seen, err = _what_compare_gets(capsys, monkeypatch, "--dataset", "diabetes", "--loss-file",
                                 str(path), "--loss", "mse", "--loss",
                                 "pseudo_huber:delta=0.5+l2:1e-3")
  # Only the losses the specs use go to compare_losses: a helper that does not follow
  # the loss contract may sit in the file.
  assert seen["specs"] == ["mse", "pseudo_huber:delta=0.5+l2:1e-3"]
  assert list(seen["losses"]) == ["pseudo_huber"]
  assert seen["losses"]["pseudo_huber"].__module__.endswith("my_losses")
  assert "checked your loss pseudo_huber(delta=0.5) on regression inputs: 9/9 properties " \
         "hold" in err
  # The functions it uses are those defined in the file, public: not _mean, exp, jnp.
  code, out, err = run(capsys, "compare", "--loss-file", str(path), "--loss", "exp")
  _one_error_line(code, out, err, r"unknown term 'exp' in spec 'exp'; .*your losses: "
                                  r"data_dependent, log_error, no_keywords, pseudo_huber\.$")


def test_loss_file_faults_are_one_line_and_write_nothing(capsys, monkeypatch, tmp_path):
  _never_trains(monkeypatch)
  files = {"syntax.py": "def f(p, t:\n  pass\n",
           "imports.py": "import no_such_module_for_lossreg_tests\n",
           "raises.py": "raise RuntimeError('no GPU here\\nsecond line')\n",
           "exits.py": "import sys\nsys.exit(3)\n",
           "empty.py": "import math\nfrom math import exp\n_x = 1\n",
           "taken.py": "def mse(p, t, *, weights=None, where=None):\n  return p\n"
                       "def L2(p, t, *, weights=None, where=None):\n  return p\n",
           "mine.py": LOSS_FILE}
  for name, text in files.items():
    (tmp_path / name).write_text(text)
  f = lambda name: str(tmp_path / name)
  out = tmp_path / "out"
  for argv, pattern in [
      (["--loss-file", f("missing.py")], r"--loss-file .*missing\.py: no such file$"),
      (["--loss-file", f("syntax.py")], r"--loss-file .*syntax\.py: cannot import it: "
                                        r"SyntaxError: '\(' was never closed \(syntax\.py, "
                                        r"line 1\)$"),
      (["--loss-file", f("imports.py")], r"--loss-file .*imports\.py: cannot import it: "
                                         r"ModuleNotFoundError: No module named "
                                         r"'no_such_module_for_lossreg_tests'$"),
      (["--loss-file", f("raises.py")], r"cannot import it: RuntimeError: no GPU here$"),
      (["--loss-file", f("exits.py")], r"exits\.py: it called sys\.exit\(3\) while being "
                                       r"imported"),
      (["--loss-file", f("empty.py")], r"empty\.py: it defines no public function"),
      (["--loss-file", f("taken.py")], r"taken\.py: 'mse', 'L2' are names of built-in spec "
                                       r"terms; rename them \(or start the name with _"),
      (["--loss-file", f("mine.py"), "--loss", "no_keywords"],
       r"--loss-file .*mine\.py: candidates\['no_keywords'\]: the loss must accept the "
       r"keywords where= and weights="),
      (["--loss-file", f("mine.py"), "--loss", "pseudo_huber:delta"],
       r"pseudo_huber takes KEY=VALUE keyword arguments, got 'delta'"),
      (["--loss", "pseudo_huber"], r"unknown term 'pseudo_huber'"),  # without --loss-file
  ]:
    _one_error_line(*run(capsys, "compare", *argv, "--out", str(out)), pattern)
  assert not out.exists()


def test_failing_user_loss_stops_with_its_report(capsys, monkeypatch, tmp_path):
  _never_trains(monkeypatch)
  path = tmp_path / "mine.py"
  path.write_text(LOSS_FILE)
  out = tmp_path / "out"
  for spec, failed in [("log_error", "evaluates"),
                       ("data_dependent", "finite_gradients, jit")]:
    code, stdout, err = run(capsys, "compare", "--dataset", "diabetes", "--loss-file",
                            str(path), "--loss", "mse", "--loss", spec, "--out", str(out), "-q")
    assert code == 2 and stdout == "" and "Traceback" not in err
    lines = err.rstrip().splitlines()
    assert lines[0].startswith(f"check_loss({spec}, task='regression'): ")  # the report
    assert re.search(r"evaluates +(PASS|FAIL)", err) and re.search(r"jit +FAIL", err)
    assert lines[-1] == (f"lossreg-jax compare: error: --loss-file: your loss {spec} (spec "
                         f"{spec!r}) fails {failed} on regression inputs (the report above); "
                         f"training needs evaluates, finite_gradients, jit")
  assert not out.exists()


def test_swept_specs_pass_the_early_check(capsys, monkeypatch):
  seen, err = _what_compare_gets(capsys, monkeypatch, "--loss", "focal:gamma=0|2",
                                 "--loss", "bce+l2:1e-4|1e-3")
  assert seen["specs"] == ["focal:gamma=0|2", "bce+l2:1e-4|1e-3"]  # compare_losses expands
  assert "; 4 specs x 1 x 3 folds" in err
  code, out, err = run(capsys, "compare", "--loss", "focal:gamma=0|1|1")
  _one_error_line(code, out, err, r"the swept values must be distinct")


@pytest.mark.slow
def test_cnn_on_digits_images_end_to_end(capsys, tmp_path):
  code, out, err = run(capsys, "compare", "--dataset", "digits", "--model", "cnn:channels=2",
                       "--loss", "ce", "--folds", "2", "--epochs", "2", "--learning-rate",
                       "0.03", "--out", str(tmp_path), "--quiet")
  assert code == 0, err
  data = json.loads((tmp_path / "results.json").read_text())
  assert data["settings"]["model"] == "cnn:channels=2"
  assert data["settings"]["n_features"] == 64 and data["settings"]["num_classes"] == 10
  assert "--model cnn:channels=2" in data["context"]["command"]
  assert "--hidden" not in data["context"]["command"]
  assert "- **model**: cnn:channels=2," in (tmp_path / "report.md").read_text()
  # Two epochs of a 2-channel CNN learn something: 0.26 accuracy, chance is 0.1.
  assert np.mean(data["results"][0]["metrics"]["accuracy"]["folds"]) > 0.2


def test_user_loss_is_traced_as_training_calls_it():
  # check_loss binds a spec's numbers as constants; training passes them traced (one
  # compiled program for every value), with where= and int32 labels, and needs a scalar.
  import jax.numpy as jnp
  from lossreg_jax import _cli_compare

  def branchy(p, t, *, a=1.0, weights=None, where=None):
    return jnp.mean((p - t) ** 2) if a > 0 else jnp.mean(jnp.abs(p - t))

  def elementwise(p, t, *, weights=None, where=None):
    return (p - t) ** 2

  def float_labels_only(p, t, *, weights=None, where=None):
    return jnp.mean(jnp.where(where, jnp.logaddexp(0.0, -p) + (1 - t) * p, 0.0))

  for fn, params, task, pattern in [
      (branchy, {"a": 1.0}, "regression", r"your loss branchy\(a=1\) \(spec 'branchy:a=1'\) "
                                          r"fails as training calls it .*"
                                          r"TracerBoolConversionError"),
      (elementwise, {}, "binary", r"must return a scalar .* got shape \(8,\)"),
  ]:
    label = "branchy(a=1)" if params else fn.__name__
    with pytest.raises(ValueError, match=pattern):
      _cli_compare._probe(fn, params, task, 2, label, "branchy:a=1" if params else label)
  _cli_compare._probe(float_labels_only, {}, "binary", 2, "f", "f")  # int32 labels work
  _cli_compare._probe(lambda p, t, *, where=None, weights=None, q=0.5: jnp.mean(
      jnp.take_along_axis(p, t[:, None], axis=1)) * q, {"q": 0.5}, "multiclass", 10, "g", "g")


def test_multiclass_user_loss_is_checked_with_class_indices():
  # check_loss draws one-hot targets; training passes class indices: the loss sees those.
  import jax.numpy as jnp
  from lossreg_jax import _cli_compare
  seen = []

  def pick(p, t, *, scale=1.0, weights=None, where=None):
    seen.append(t)
    return -scale * jnp.mean(jnp.take_along_axis(p, t[..., None], axis=-1))

  bound = _cli_compare._bound(pick, "pick", {"scale": 2.0}, "multiclass")
  logits = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  value = bound(logits, jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
  assert bound.__name__ == "pick(scale=2)" and seen[0].dtype == jnp.int32
  np.testing.assert_array_equal(seen[0], [2, 0])
  assert float(value) == -2.0 * (3.0 + 4.0) / 2
