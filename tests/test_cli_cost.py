"""``lossreg-jax compare --cost / --cost-matrix``: the cost table, cost.png and bad input (issue 15)."""

import json
import re

import numpy as np
import pytest

from lossreg_jax import cli

# test_cli's settings, so the compiled training programs are shared.
FAST = ["--folds", "3", "--epochs", "2", "--hidden", "4", "--learning-rate", "0.05"]


def run(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def _cost_rows(report: str) -> list[list[str]]:
  section = report.split("## What the mistakes cost", 1)[1].split("\n## ", 1)[0]
  return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
          if line.startswith("| `")]


@pytest.mark.slow
def test_compare_cost_binary_default_data(capsys, tmp_path):
  out_dir = tmp_path / "report"
  code, out, err = run(capsys, "compare", "--cost", "fn=5,fp=1", *FAST, "--out",
                       str(out_dir), "--quiet")
  assert code == 0, err
  assert "cost_tuned" in out and "lowest mean expected cost per row" in out
  assert (out_dir / "cost.png").read_bytes()[:4] == b"\x89PNG"
  report = (out_dir / "report.md").read_text()
  data = json.loads((out_dir / "results.json").read_text())
  specs = [r["spec"] for r in data["results"]]
  assert specs == ["bce", "bce:positive_weight=3", "focal:gamma=2"]  # the binary defaults
  assert "a false negative costs 5, a false positive 1" in report
  assert "P(y=1) >= 0.167" in report and "![expected cost against the decision](cost.png)" in report
  # The cost table: every spec at three decisions, the numbers of results.json.
  rows = _cost_rows(report)
  assert [(r[0], r[1]) for r in rows] == [(f"`{s}`", d) for s in specs
                                          for d in ("default", "cost-derived", "tuned")]
  cost = data["cost"]
  assert cost["matrix"] == [[0.0, 1.0], [5.0, 0.0]] and cost["text"] == "fn=5,fp=1"
  for row, entry in zip(rows, cost["table"]):
    folds = next(r for r in data["results"] if r["spec"] == entry["spec"])["metrics"][
        entry["metric"]]["folds"]
    assert entry["mean"] == pytest.approx(np.mean(folds))
    assert row[2].startswith(f"{entry['mean']:.3f} ± ")
  baseline_tuned = cost["table"][2]
  assert baseline_tuned["vs_baseline_tuned"] is None and rows[2][4] == "(reference)"
  for s in specs:
    assert cost["decisions"][s]["derived"] == pytest.approx([1 / 6] * 3)
    assert len(cost["decisions"][s]["tuned"]) == 3
    assert all(0 <= t <= 1 for t in cost["decisions"][s]["tuned"])
    curve = cost["curves"][s]
    assert len(curve["x"]) == len(curve["cost"]) == 101
    assert curve["x"][0] == 0 and curve["x"][-1] == 1
    # At threshold 0 every row is called positive: each negative costs 1.
    labels = np.array(data["curves"][s]["confusion"]).sum(axis=1)
    assert curve["cost"][0] == pytest.approx(labels[0] / labels.sum())
  # The paired test of every cost metric, and the command that reproduces the run.
  assert set(data["results"][1]["paired"]) >= {"cost_default", "cost_derived", "cost_tuned"}
  assert "--cost fn=5,fp=1" in data["context"]["command"]


@pytest.mark.slow
def test_compare_cost_matrix_multiclass(capsys, tmp_path):
  matrix = tmp_path / "costs.csv"
  matrix.write_text("true/predicted,class_0,class_1,class_2\nclass_0,0,1,5\nclass_1,1,0,1\n"
                    "class_2,10,1,0\n")
  out_dir = tmp_path / "report"
  code, out, err = run(capsys, "compare", "--dataset", "wine", "--cost-matrix", str(matrix),
                       "--loss", "ce", "--loss", "ce:label_smoothing=0.1", *FAST, "--out",
                       str(out_dir), "--quiet")
  assert code == 0, err
  data = json.loads((out_dir / "results.json").read_text())
  assert data["cost"]["matrix"] == [[0, 1, 5], [1, 0, 1], [10, 1, 0]]
  assert (out_dir / "cost.png").is_file()
  report = (out_dir / "report.md").read_text()
  assert "argmin_j Σ_i p_i·C[i, j]" in report and len(_cost_rows(report)) == 6
  assert all(d == 1.0 for d in data["cost"]["decisions"]["ce"]["derived"])


@pytest.mark.slow
def test_compare_cost_regression_squared(capsys, tmp_path):
  out_dir = tmp_path / "report"
  code, out, err = run(capsys, "compare", "--dataset", "diabetes", "--cost",
                       "under=3,over=1,squared", "--loss", "mse", "--loss",
                       "asymmetric:under=3,over=1", *FAST, "--out", str(out_dir), "--quiet")
  assert code == 0, err
  report = (out_dir / "report.md").read_text()
  assert "squared cost per row: 3·max(y − ŷ, 0)² + 1·max(ŷ − y, 0)²" in report
  assert "τ-expectile, τ = 0.75" in report
  data = json.loads((out_dir / "results.json").read_text())
  assert data["cost"]["kind"] == "squared" and data["cost"]["under"] == 3
  # An MSE model under-predicts as often as it over-predicts; when under-prediction
  # costs 3x, the cost-derived offset moves its predictions up.
  assert all(d > 0 for d in data["cost"]["decisions"]["mse"]["derived"])


BAD_COSTS = [
    (["--cost", "fn=5"], r"--cost: cost 'fn=5': give both fn and fp"),
    (["--cost", "fn=5,fp=-1"], r"fp must be finite and >= 0, got '-1'"),
    (["--cost", "fn=5,fp=nan"], r"fp must be finite and >= 0"),
    (["--cost", "fn=0,fp=0"], r"fn \+ fp must be > 0"),
    (["--cost", "fn=1,fp=1,squared"], r"give both fn and fp"),
    (["--cost", "cost=3"], r"expected fn=..,fp=.. or under=..,over=.."),
    (["--cost", "under=3,over=1"], r"prices under- and over-prediction, but the task is binary"),
    (["--dataset", "diabetes", "--cost", "fn=5,fp=1"], r"prices classes, but the task is "
                                                       r"regression"),
    (["--dataset", "diabetes", "--cost", "under=0,over=1"], r"under and over must both be (finite and )?> 0"),
    (["--cost-matrix", "{missing}"], r"--cost-matrix: cost matrix file '.*' does not exist"),
    (["--cost-matrix", "{square3}"], r"is 3 x 3, but the data have 2 classes"),
    (["--cost-matrix", "{ragged}"], r"must be square"),
    (["--cost-matrix", "{negative}"], r"entry \[1, 0\] must be a finite number >= 0, got '-2'"),
    (["--cost-matrix", "{infinite}"], r"entry \[0, 1\] must be a finite number >= 0, got 'inf'"),
    (["--cost-matrix", "{diagonal}"], r"diagonal .* must be 0, got \[1.0, 0.0\].*"
                                      r"--allow-cost-diagonal"),
    (["--cost-matrix", "{cheap_error}", "--allow-cost-diagonal"], r"each error must cost at "
                                                               r"least as much as the correct"),
    (["--cost", "fn=1,fp=1", "--allow-cost-diagonal"], r"only applies to --cost-matrix"),
    (["--cost", "fn=1,fp=1", "--cost-matrix", "{square3}"], r"not allowed with argument"),
]
MATRICES = {"square3": "0,1,1\n1,0,1\n1,1,0\n", "ragged": "0,1\n1,0,2\n",
            "negative": "0,1\n-2,0\n", "infinite": "0,inf\n1,0\n", "diagonal": "1,1\n1,0\n",
            "cheap_error": "2,1\n1,0\n"}  # a false positive (1) costs less than a true negative (2)


@pytest.mark.parametrize("argv, message", BAD_COSTS, ids=[" ".join(a) for a, _ in BAD_COSTS])
def test_bad_cost_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
  files = {"missing": tmp_path / "missing.csv"}
  for name, text in MATRICES.items():
    files[name] = tmp_path / f"{name}.csv"
    files[name].write_text(text)
  argv = [a.format(**files) for a in argv]
  out_dir = tmp_path / "out"
  code, out, err = run(capsys, "compare", *argv, *FAST, "--out", str(out_dir), "--quiet")
  assert code == 2 and out == "" and "Traceback" not in err
  error = [line for line in err.splitlines() if "error:" in line]
  assert len(error) == 1 and error[0].startswith("lossreg-jax compare: error:"), err
  assert re.search(message, error[0]), err
  assert not out_dir.exists()  # refused before anything was trained or written


def test_implied_loss_spec_is_the_cost_up_to_a_factor():
  # The spec the CLI adds for a regression --cost: for a linear cost the pinball loss at
  # q = U / (U + O) (scikit-learn's mean_pinball_loss(alpha=q) is the cost / (U + O));
  # for a squared cost the asymmetric loss with the same weights (the cost itself).
  from sklearn.metrics import mean_pinball_loss
  from lossreg_jax import losses
  from lossreg_jax.experiments import cost as cost_module
  rng = np.random.default_rng(0)
  y, pred = rng.normal(size=200), rng.normal(size=200)
  for text, spec in (("under=3,over=1", "quantile:q=0.75"),
                     ("under=1,over=4,linear", "quantile:q=0.2"),
                     ("under=3,over=1,squared", "asymmetric:under=3,over=1"),
                     ("under=0.5,over=2.5,squared", "asymmetric:under=0.5,over=2.5")):
    c = cost_module.parse_cost(text)
    assert cost_module.implied_loss_spec(c) == cost_module.implied_loss_spec(text) == spec
    power = 2 if c.squared else 1
    total = np.mean(c.under * np.maximum(y - pred, 0) ** power
                    + c.over * np.maximum(pred - y, 0) ** power)
    if c.squared:
      loss = losses.asymmetric_squared_error(pred, y, under_weight=c.under, over_weight=c.over)
      assert float(loss) == pytest.approx(total, rel=1e-5)
    else:
      q = c.under / (c.under + c.over)
      assert mean_pinball_loss(y, pred, alpha=q) * (c.under + c.over) == pytest.approx(total)
      assert float(losses.quantile_loss(pred, y, quantile=q)) == pytest.approx(
          mean_pinball_loss(y, pred, alpha=q), rel=1e-5)
  with pytest.raises(ValueError, match="prices classes"):
    cost_module.implied_loss_spec("fn=5,fp=1")
  with pytest.raises(TypeError, match="DecisionCost or a cost string"):
    cost_module.implied_loss_spec(3.0)
