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
  rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{int(i % 7 > 3)}" for i in range(40)]
  rows[5] = "1,,0"
  path = tmp_path / "data.csv"
  path.write_text("\n".join(rows) + "\n")
  code, out, err = run(capsys, "compare", "--csv", str(path), "--target", "label",
                       "--drop-missing", "--loss", "bce:positive_weight=2", *FAST,
                       "--out", str(tmp_path / "o"))
  assert code == 0, err
  assert "39 rows" in err and "bce:positive_weight=2" in out


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


def test_path_without_sklearn_says_so(capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)  # find_spec -> None: "not installed"
  code, out, err = run(capsys, "path", "--vs-sklearn", "--n-alphas", "5")
  assert code == 1 and "scikit-learn" in err and "not installed" in err and out == ""


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
