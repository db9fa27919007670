"""Tests for the ``lossreg-jax`` command (in process via ``main``, once as a subprocess)."""

import json
import re
import subprocess
import sys

import pytest

from lossreg_jax import cli

# The settings of test_training and the doctest, so compiled programs are reused.
FAST = ["--folds", "3", "--epochs", "2", "--hidden", "4", "--learning-rate", "0.05"]


def run(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


@pytest.mark.slow
def test_module_help_in_a_subprocess():
  proc = subprocess.run([sys.executable, "-m", "lossreg_jax", "--help"], capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0
  for word in ("compare", "path", "check", "bench", "examples:"):
    assert word in proc.stdout


@pytest.mark.parametrize("command", ["compare", "path", "check", "bench"])
def test_every_subcommand_help_has_an_example(capsys, command):
  code, out, _ = run(capsys, command, "--help")
  assert code == 0 and "examples:" in out and f"lossreg-jax {command}" in out


@pytest.mark.slow
def test_compare_writes_report(capsys, tmp_path):
  out_dir = tmp_path / "report"
  code, out, err = run(capsys, "compare", "--loss", "bce", "--loss", "hinge+l1:1e-3",
                       *FAST, "--out", str(out_dir), "--quiet")
  assert code == 0, err
  assert "accuracy" in out and "hinge+l1:1e-3" in out and " ± " in out
  assert err == ""  # --quiet: no progress bar, no status lines
  for name in ("report.md", "results.json", "metrics.png", "train_loss.png", "roc_pr.png",
               "reliability.png", "differences.png", "confusion.png"):
    assert (out_dir / name).is_file()
  assert (out_dir / "metrics.png").read_bytes()[:4] == b"\x89PNG"
  data = json.loads((out_dir / "results.json").read_text())
  assert [r["spec"] for r in data["results"]] == ["bce", "hinge+l1:1e-3"]
  assert len(data["results"][0]["metrics"]["f1"]["folds"]) == 3
  assert data["context"]["data"] == "breast_cancer"
  assert data["settings"]["class_names"] == ["benign", "malignant"]  # for the report (issue 21)
  assert data["settings"]["positive_label"] == "malignant"
  assert "| `bce` |" in (out_dir / "report.md").read_text()


@pytest.mark.slow
def test_compare_macrodata_regression_defaults(capsys, tmp_path):
  # The financial case from the command line: next-quarter GDP growth, MSE vs asymmetric.
  code, out, err = run(capsys, "compare", "--dataset", "macrodata", *FAST, "--out",
                       str(tmp_path), "--quiet")
  assert code == 0, err
  for word in ("mse", "huber:delta=1", "asymmetric:under=1,over=0.1", "under_rate", "r2",
               "paired difference to 'mse'"):
    assert word in out
  data = json.loads((tmp_path / "results.json").read_text())
  assert data["task"] == "regression" and (tmp_path / "predictions.png").is_file()
  assert data["context"]["data"].startswith("macrodata (next-quarter real GDP growth)")
  assert "class_names" not in data["settings"] and "positive_label" not in data["settings"]
  assert "--dataset macrodata" in data["context"]["command"]


@pytest.mark.slow
def test_compare_digits_multiclass_defaults(capsys, tmp_path):
  code, out, err = run(capsys, "compare", "--dataset", "digits", "--folds", "3", "--epochs",
                       "1", "--hidden", "4", "--learning-rate", "0.05", "--out", str(tmp_path),
                       "--quiet")
  assert code == 0, err
  assert "ce:label_smoothing=0.1" in out and "ece" in out and "brier" in out
  assert (tmp_path / "confusion.png").is_file() and not (tmp_path / "roc_pr.png").exists()


@pytest.mark.slow
def test_compare_repeats_paired_intervals(capsys, tmp_path):
  code, out, err = run(capsys, "compare", "--dataset", "breast_cancer", "--repeats", "3",
                       *FAST, "--out", str(tmp_path), "--quiet")
  assert code == 0, err
  assert "paired difference to 'bce' on the same 3 x 3 folds" in out
  assert re.search(r"bce:positive_weight=3\s+accuracy\s+[+-]\d\.\d{3} \[[+-]\d\.\d{3}, "
                   r"[+-]\d\.\d{3}\]", out)
  data = json.loads((tmp_path / "results.json").read_text())
  assert data["settings"]["repeats"] == 3
  assert len(data["results"][0]["metrics"]["brier"]["folds"]) == 9
  assert set(data["results"][2]["paired"]["ece"]) == {"mean_diff", "ci_low", "ci_high", "t",
                                                      "p_value"}
  md = (tmp_path / "report.md").read_text()
  assert "3 x 3-fold stratified cross-validation" in md


def test_compare_divergence_is_one_line(capsys, tmp_path):
  code, out, err = run(capsys, "compare", "--dataset", "diabetes", "--loss", "mse", *FAST[:-2],
                       "--learning-rate", "1e30", "--out", str(tmp_path / "o"), "--quiet")
  assert code == 2 and out == "" and "Traceback" not in err
  assert re.match(r"lossreg-jax compare: error: training diverged for spec 'mse' \(fold 1, "
                  r"epoch \d\)", err)
  assert not (tmp_path / "o").exists()  # no report


def test_global_options_before_the_subcommand():
  args = cli._defaults(cli.build_parser().parse_args(["--seed", "7", "--quiet", "compare"]))
  assert args.seed == 7 and args.quiet and str(args.out) == "lossreg_out"
  args = cli._defaults(cli.build_parser().parse_args(["compare", "--seed", "3"]))
  assert args.seed == 3 and not args.quiet and args.specs is None


@pytest.mark.parametrize("spec, message", [
    ("focal:gama=2", "unknown parameter 'gama'.*valid parameters: alpha, gamma"),
    ("mes", "unknown term 'mes'.*valid losses"),
    ("bce:positive_weight=lots", "must be a number"),
])
def test_compare_spec_errors(capsys, spec, message):
  code, out, err = run(capsys, "compare", "--loss", spec)
  assert code == 2 and out == ""
  assert "Traceback" not in err
  assert err.startswith("lossreg-jax compare: error:")
  assert re.search(message, err)


def test_usage_errors(capsys):
  assert run(capsys, "frobnicate")[0] == 2
  assert run(capsys, "compare", "--folds", "many")[0] == 2
  code, _, err = run(capsys, "compare", "--dataset", "diabetes", "--loss", "bce", *FAST)
  assert code == 2 and "regression" in err and "use 'mse'" in err
  code, _, err = run(capsys, "compare", "--csv", "x.csv")
  assert code == 2 and "--target" in err
  code, _, err = run(capsys, "compare", "--dataset", "wine", "--loss", "bce", *FAST)
  assert code == 2 and "'ce'" in err


BAD_CSVS = {
    "missing_file": (None, "not found"),
    "missing_target": ("a,b,y\n1,2,0\n3,4,1\n", r"'label' not found.*available columns: a, b, y"),
    "non_numeric": ("a,b,label\n1,2,0\n3,x7,1\n", r"line 3, column 'b'.*'x7'"),
    "nan_rows": ("a,b,label\n1,2,0\n3,,1\n5,NaN,0\n", r"line\(s\) 3, 4.*--drop-missing"),
    "single_class": ("a,b,label\n1,2,1\n3,4,1\n", "single class"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_exits_nonzero_with_message(capsys, tmp_path, case):
  text, message = BAD_CSVS[case]
  path = tmp_path / "data.csv"
  if text is not None:
    path.write_text(text)
  code, out, err = run(capsys, "compare", "--csv", str(path), "--target", "label", *FAST)
  assert code == 2 and "Traceback" not in err
  assert re.search(message, err), err


@pytest.mark.slow
def test_csv_compare_and_drop_missing(capsys, tmp_path):
  # Semicolon-separated (detected), labels 'no' / 'yes', the positive class chosen.
  rows = ["a;b;label"] + [f"{i % 7};{(i * 3) % 5};{('no', 'yes')[i % 7 > 3]}"
                          for i in range(40)]
  rows[5] = "1;;no"
  path = tmp_path / "data.csv"
  path.write_text("\n".join(rows) + "\n")
  code, out, err = run(capsys, "compare", "--csv", str(path), "--target", "label",
                       "--drop-missing", "--loss", "bce:positive_weight=2", *FAST,
                       "--positive-label", "no", "--out", str(tmp_path / "o"))
  assert code == 0, err
  assert "39 rows" in err and "(positive class 'no')" in err and "bce:positive_weight=2" in out
  data = json.loads((tmp_path / "o" / "results.json").read_text())
  assert data["settings"]["class_names"] == ["yes", "no"]
  assert data["settings"]["positive_label"] == "no"
  assert "--positive-label no" in data["context"]["command"]


@pytest.mark.slow
def test_path_writes_plots_and_compares_with_sklearn(capsys, tmp_path):
  code, out, err = run(capsys, "path", "--n-alphas", "12", "--cv", "3", "--vs-sklearn",
                       "--out", str(tmp_path), "--quiet")
  assert code == 0, err
  assert "chosen alpha" in out and "time ratio" in out and "bmi" in out
  for name in ("report.md", "results.json", "coef_path.png", "cv_curve.png"):
    assert (tmp_path / name).is_file()
  data = json.loads((tmp_path / "results.json").read_text())
  assert data["sklearn"]["alpha"] == pytest.approx(data["alpha"], rel=1e-3)


def test_without_sklearn_path_and_bench_say_which_extra(capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` raises ImportError
  code, out, err = run(capsys, "path", "--vs-sklearn", "--n-alphas", "5")
  assert code == 2 and out == "" and err == (
      "lossreg-jax path: error: --vs-sklearn needs scikit-learn, which is not installed: "
      "pip install 'lossreg-jax[test]' (or: pip install scikit-learn)\n")

  class FakeRun:
    SECTIONS = ("losses", "large_vocab", "linear")

    @staticmethod
    def main(argv):
      pytest.fail("ran without scikit-learn")

  monkeypatch.setattr(cli, "_bench_module", lambda: FakeRun)
  for argv in ([], ["--only", "linear"], ["--only", "losses,linear"]):
    code, out, err = run(capsys, "bench", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("lossreg-jax bench: error: the linear benchmark needs scikit-learn")
    assert "lossreg-jax[test]" in err and err.endswith("; or skip it: --only losses large_vocab\n")
  FakeRun.main = staticmethod(lambda argv: 0)  # the other sections run without it
  assert run(capsys, "bench", "--only", "losses", "large_vocab")[0] == 0


def test_check_good_and_bad_losses(capsys, tmp_path, monkeypatch):
  (tmp_path / "my_losses.py").write_text(
      "import jax.numpy as jnp\n"
      "def mse(p, t):\n  return jnp.mean((p - t) ** 2)\n"
      "def signed(p, t):\n  return jnp.mean(p - t)\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  code, out, _ = run(capsys, "check", "my_losses:mse")
  assert code == 0 and "non_negative" in out
  code, out, _ = run(capsys, "check", f"{tmp_path / 'my_losses.py'}:signed")
  assert code == 1 and "non_negative" in out
  code, _, err = run(capsys, "check", "my_losses:nothing")
  assert code == 2 and "no attribute 'nothing'" in err
  code, _, err = run(capsys, "check", "no_such_module_xyz:f")
  assert code == 2 and "cannot import" in err
  code, _, err = run(capsys, "check", "just_a_name")
  assert code == 2 and "MODULE:FUNCTION" in err


def test_bench_without_a_source_checkout(capsys, monkeypatch):
  monkeypatch.setattr(cli, "_bench_module", lambda: None)
  code, _, err = run(capsys, "bench")
  assert code == 1 and "source checkout" in err


def test_bench_forwards_its_options(capsys, monkeypatch):
  calls = []

  class FakeRun:
    @staticmethod
    def main(argv):
      calls.append(argv)
      print("TABLE")
      return 0

  monkeypatch.setattr(cli, "_bench_module", lambda: FakeRun)
  code, out, _ = run(capsys, "bench", "--size", "small", "--only", "losses", "linear")
  assert code == 0 and "TABLE" in out
  assert calls == [["--size", "small", "--only", "losses", "linear"]]


def test_bench_finds_the_source_checkout():
  module = cli._bench_module()
  assert module is not None and callable(module.main)


@pytest.mark.slow
def test_compare_csv_task_override_reads_the_target_as_numbers(capsys, tmp_path):
  # An integer-valued target read as classes by default; --task regression keeps its values.
  rows = ["a,b,score"] + [f"{i % 7},{(i * 3) % 5},{10 * (i % 4) + 5}" for i in range(40)]
  path = tmp_path / "data.csv"
  path.write_text("\n".join(rows) + "\n")
  code, out, err = run(capsys, "compare", "--csv", str(path), "--target", "score", "--task",
                       "regression", "--loss", "mse", "--loss", "mae", *FAST, "--out",
                       str(tmp_path / "o"), "--quiet")
  assert code == 0, err
  data = json.loads((tmp_path / "o" / "results.json").read_text())
  assert data["task"] == "regression"
  assert sorted(set(data["curves"]["mse"]["predictions"])) != [0.0, 1.0, 2.0, 3.0]
  assert max(data["results"][0]["metrics"]["mse"]["folds"]) > 1.0  # errors in target units


# ------------------------------------------------------------ issue 21


class _Stop(ValueError):
  pass


def _what_compare_gets(capsys, monkeypatch, *argv, fast=FAST):
  """Runs ``compare ARGV`` up to ``compare_losses``; returns (its arguments, stderr)."""
  from lossreg_jax import experiments
  seen = {}

  def fake(X, y, specs, **kwargs):
    seen.update(X=X, y=y, specs=list(specs), **kwargs)
    raise _Stop("stopped by the test")

  monkeypatch.setattr(experiments, "compare_losses", fake)
  code, out, err = run(capsys, "compare", *argv, *fast)
  assert code == 2 and err.rstrip().endswith("error: stopped by the test"), err
  return seen, err


def test_csv_delimiter_detected_or_given(capsys, monkeypatch, tmp_path):
  semi = tmp_path / "semi.csv"  # failed before with "Expected 1 fields in line 4, saw 2"
  semi.write_text("a;b;label\n1;2;no\n3;4;yes\n5;6;no\n7;8;yes\n")
  tab = tmp_path / "tab.tsv"
  tab.write_text(semi.read_text().replace(";", "\t"))
  for path, extra in ((semi, []), (semi, ["--delimiter", ";"]), (tab, []),
                      (tab, ["--delimiter", "tab"])):
    seen, err = _what_compare_gets(capsys, monkeypatch, "--csv", str(path), "--target",
                                   "label", *extra)
    assert seen["X"].shape == (4, 2) and seen["y"].tolist() == [0, 1, 0, 1]
    assert err.startswith(f"{path}: 4 rows, 2 features, task binary (positive class 'yes')")
  code, _, err = run(capsys, "compare", "--csv", str(semi), "--target", "label",
                     "--delimiter", ",")
  assert code == 2 and "target column 'label' not found" in err and "a;b;label" in err
  code, _, err = run(capsys, "compare", "--csv", str(semi), "--target", "label",
                     "--delimiter", ";;")
  assert code == 2 and err == ("lossreg-jax compare: error: --delimiter must be one character "
                               "(or tab, comma, semicolon), got ';;'\n")
  code, _, err = run(capsys, "compare", "--delimiter", ";")
  assert code == 2 and err == "lossreg-jax compare: error: --delimiter needs --csv\n"


def test_positive_label_chooses_class_1(capsys, monkeypatch, tmp_path):
  path = tmp_path / "d.csv"
  path.write_text("a,b,outcome\n1,2,ok\n3,4,fraud\n5,6,ok\n7,8,ok\n")
  # Default: the label that sorts second ('ok') is class 1.
  seen, err = _what_compare_gets(capsys, monkeypatch, "--csv", str(path), "--target",
                                 "outcome", "--cost", "fn=5,fp=1")
  assert seen["y"].tolist() == [1, 0, 1, 1] and "(positive class 'ok')" in err
  seen, err = _what_compare_gets(capsys, monkeypatch, "--csv", str(path), "--target",
                                 "outcome", "--positive-label", "fraud", "--cost", "fn=5,fp=1")
  assert seen["y"].tolist() == [0, 1, 0, 0] and "(positive class 'fraud')" in err
  # Bundled: breast_cancer's default positive class is malignant; benign flips it.
  seen, err = _what_compare_gets(capsys, monkeypatch, "--positive-label", "benign")
  from lossreg_jax import datasets
  assert seen["y"].tolist() == (1 - datasets.load("breast_cancer").y).tolist()
  assert "task binary (positive class 'benign')" in err
  numeric = tmp_path / "n.csv"  # numeric labels match as numbers: 1.0 is '1'
  numeric.write_text("a,y\n1,0\n2,1\n3,0\n")
  seen, err = _what_compare_gets(capsys, monkeypatch, "--csv", str(numeric), "--target", "y",
                                 "--positive-label", "0.0")
  assert seen["y"].tolist() == [1, 0, 1] and "(positive class '0')" in err
  for argv, message in (
      (["--csv", str(path), "--target", "outcome", "--positive-label", "fraud!"],
       "--positive-label 'fraud!' is not a class of the target; its classes: fraud, ok"),
      (["--dataset", "wine", "--positive-label", "class_0"],
       "--positive-label applies to a binary target, but the task is multiclass")):
    code, out, err = run(capsys, "compare", *argv, *FAST)
    assert code == 2 and out == "" and err == f"lossreg-jax compare: error: {message}\n"


def test_regression_cost_puts_its_loss_among_the_defaults(capsys, monkeypatch):
  for cost, third in (("under=3,over=1,squared", "asymmetric:under=3,over=1"),
                      ("under=3,over=1", "quantile:q=0.75"),
                      ("under=1,over=2,linear", "quantile:q=0.333333")):
    seen, _ = _what_compare_gets(capsys, monkeypatch, "--dataset", "diabetes", "--cost", cost)
    assert seen["specs"] == ["mse", "huber:delta=1", third], cost
    assert seen["cost"].label == cost
  seen, _ = _what_compare_gets(capsys, monkeypatch, "--dataset", "diabetes")
  assert seen["specs"] == ["mse", "huber:delta=1", "asymmetric:under=1,over=0.1"]
  seen, _ = _what_compare_gets(capsys, monkeypatch, "--dataset", "diabetes", "--cost",
                               "under=3,over=1", "--loss", "mse")  # --loss: as given
  assert seen["specs"] == ["mse"]
  code, out, _ = run(capsys, "compare", "--help")
  assert code == 0 and "-> quantile:q=U/(U+O)" in out


def test_path_alpha_at_the_grid_edge_warns_on_stderr(capsys, monkeypatch, tmp_path):
  import numpy as np
  from lossreg_jax import experiments
  alphas = np.geomspace(1.0, 1e-3, 4)
  fake = experiments.PathResult(
      alphas=alphas, coefs=np.zeros((10, 4)), mse_path=np.ones((4, 3)), alpha=float(alphas[-1]),
      coef=np.zeros(10), intercept=0.0, l1_ratio=0.5, feature_names=tuple("abcdefghij"),
      seconds={"path": 0.1, "cv_first": 0.2, "cv": 0.1}, sklearn=None)
  monkeypatch.setattr(experiments, "regularization_path", lambda *a, **k: fake)
  code, out, err = run(capsys, "path", "--out", str(tmp_path / "o"), "--quiet")
  assert code == 0 and "chosen alpha = 0.001" in out
  assert err == ("lossreg-jax path: warning: the chosen alpha 0.001 is the SMALLEST of the "
                 "grid: the best alpha may be smaller; extend the grid (a smaller --eps or "
                 "more --n-alphas).\n")
  assert "SMALLEST" in (tmp_path / "o" / "report.md").read_text()


def test_parse_errors_are_one_line(capsys):
  for argv, line in (
      (["compare", "--learning_rate", "0.1"], "lossreg-jax compare: error: unrecognized option "
                                              "'--learning_rate'; did you mean '--learning-rate'?"),
      (["path", "--l1_ratio=0.9"], "lossreg-jax path: error: unrecognized option '--l1_ratio'; "
                                   "did you mean '--l1-ratio'?"),
      (["--quite", "compare"], "lossreg-jax compare: error: unrecognized option '--quite'; did "
                               "you mean '--quiet'?"),
      (["compare", "--zzz", "3"], "lossreg-jax compare: error: unrecognized arguments: --zzz 3 "
                                  "(see 'lossreg-jax compare --help')"),
      (["compare", "--dataset", "iris"],
       "lossreg-jax compare: error: argument --dataset: invalid choice: 'iris' (choose from "
       "'breast_cancer', 'digits', 'wine', 'diabetes', 'macrodata')"),
      ([], "lossreg-jax: error: the following arguments are required: COMMAND (see "
           "'lossreg-jax --help')")):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err == line + "\n", argv


def test_version_info_and_check_out_help(capsys, monkeypatch):
  import lossreg_jax
  code, out, _ = run(capsys, "--version")
  assert code == 0 and out == f"lossreg-jax {lossreg_jax.__version__}\n"
  monkeypatch.setenv("LOSSREG_JAX_CACHE", "off")
  monkeypatch.setitem(sys.modules, "sklearn", None)
  code, out, _ = run(capsys, "info")
  lines = out.splitlines()
  assert code == 0 and lines[0] == f"lossreg-jax {lossreg_jax.__version__}"
  assert lines[2] == "compile cache: off ($LOSSREG_JAX_CACHE)"
  assert lines[3].startswith("scikit-learn: not installed") and "lossreg-jax[test]" in lines[3]
  assert lines[4] == "data sets: breast_cancer, digits, wine, diabetes, macrodata"
  for command in ("check", "bench"):  # --out is optional there: no default folder shown
    code, out, _ = run(capsys, command, "--help")
    help_out = " ".join(out.rsplit("--out OUT", 1)[1].split())  # its help, not usage
    assert code == 0 and help_out.startswith("also write report.md and results.json to this "
                                             "folder (default: none, only print)")
    assert "lossreg_out" not in out
