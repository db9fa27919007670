"""The ``lossreg-jax`` command under faults, run as subprocesses.

Bad ``--out`` folders, interrupted report writes, SIGINT during training,
diverging settings and odd CSV files: each ends with the exit code, the one
line on stderr and the files on disk that the command promises. The
subprocesses start together (``_run_all``) so the slow part, importing JAX,
overlaps; each one uses small settings.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lossreg_jax import cli, experiments
from lossreg_jax.experiments import _output, _plots

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
# The settings of test_cli, so in-process runs reuse its compiled programs.
FAST = ["--folds", "3", "--epochs", "2", "--hidden", "4", "--learning-rate", "0.05"]
PREVIOUS = {"report.md": "# previous report\n", "results.json": '{"previous": true}\n',
            "metrics.png": "not really a png\n"}


def _previous_report(folder: Path) -> Path:
  folder.mkdir(parents=True, exist_ok=True)
  for name, text in PREVIOUS.items():
    (folder / name).write_text(text)
  return folder


def _assert_previous_intact(folder: Path) -> None:
  assert sorted(p.name for p in folder.iterdir()) == sorted(PREVIOUS)
  for name, text in PREVIOUS.items():
    assert (folder / name).read_text() == text
  leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
  assert leftovers == []  # no temporary folder left behind


def _run_all(commands, cwd, timeout=300):
  """Runs ``python -m lossreg_jax ARGV`` for each ARGV at once; returns CompletedProcess-es."""
  procs = [subprocess.Popen([sys.executable, "-m", "lossreg_jax", *argv], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for argv in commands]
  results = []
  for argv, p in zip(commands, procs):
    out, err = p.communicate(timeout=timeout)
    results.append(subprocess.CompletedProcess(argv, p.returncode, out, err))
  return results


def _one_error_line(proc, command, pattern):
  lines = proc.stderr.splitlines()
  assert proc.returncode == 2, (proc.args, proc.returncode, proc.stderr)
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith(f"lossreg-jax {command}: error: ")
  assert pattern in lines[0], (pattern, lines[0])


@pytest.mark.slow
def test_usage_faults(tmp_path, capsys, monkeypatch):
  (tmp_path / "afile").write_text("keep me\n")
  (tmp_path / "dir_report" / "report.md").mkdir(parents=True)
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "thesis.tex").write_text("keep me too\n")
  only_target = tmp_path / "only_target.csv"
  only_target.write_text("label\n0\n1\n0\n1\n")
  huge_number = tmp_path / "huge_number.csv"
  huge_number.write_text("a,label\n" + "9" * 200_000 + ",0\n2,1\n")
  mixed = tmp_path / "mixed.csv"
  mixed.write_text("a,b,label\n1,2,0\n3,4,1\n5,oops,0\n")
  sys_exit = tmp_path / "exits_at_import.py"
  sys_exit.write_text("import sys\nsys.exit(3)\ndef f(p, t):\n  return (p - t) ** 2\n")
  exits_when_called = tmp_path / "exits_when_called.py"
  exits_when_called.write_text("import sys\ndef f(p, t):\n  sys.exit(4)\n")
  cases = [  # (argv, command, text of the one stderr line)
      (["compare", "--out", "afile"], "compare", "'afile' is a file"),
      (["compare", "--out", "afile/sub"], "compare", "is under 'afile', which is a file"),
      (["path", "--out", "dir_report"], "path", "holds report.md/"),
      (["compare", "--out", "mine"], "compare", "holds thesis.tex"),
      (["check", "lossreg_jax.losses:hinge_loss", "--out", "afile"], "check", "is a file"),
      (["bench", "--out", "afile"], "bench", "is a file"),
      (["compare", "--learning-rate", "-1"], "compare", "--learning-rate must be a finite"),
      (["compare", "--learning-rate", "nan"], "compare", "got nan"),
      (["compare", "--hidden", "-1"], "compare", "--hidden must be an integer >= 0"),
      (["compare", "--folds", "1"], "compare", "--folds must be an integer >= 2"),
      (["compare", "--epochs", "0"], "compare", "--epochs must be"),
      (["path", "--l1-ratio", "0"], "path", "--l1-ratio must be a number in (0, 1]"),
      (["path", "--eps", "inf"], "path", "--eps must be"),
      (["compare", "--csv", str(only_target), "--target", "label"], "compare",
       "no feature column besides the target 'label'"),
      (["compare", "--csv", str(huge_number), "--target", "label"], "compare",
       "(200000 characters)"),
      (["compare", "--csv", str(mixed), "--target", "label"], "compare",
       "line 4, column 'b': cannot read 'oops'"),
      (["compare", "--csv", str(mixed), "--target", "label", "--features", "zz"], "compare",
       "features names column(s) 'zz' not found"),
      (["check", f"{sys_exit}:f"], "check", "called sys.exit(3)"),
      (["check", f"{exits_when_called}:f"], "check", "called sys.exit(4) while being checked"),
      (["bench", "--size", "huge"], "bench", "--size must be one of small, full"),
  ]
  assert cases[17][0][0] == "check" and cases[13][0][1] == "--csv"  # the indices below
  # Each fault once as a real process; a process costs seconds (the JAX import), so
  # those are the first ones of each kind, and all of them run in process too.
  in_subprocess = [0, 6, 13, 17]
  procs = _run_all([cases[i][0] for i in in_subprocess], tmp_path)
  for proc, i in zip(procs, in_subprocess):
    _one_error_line(proc, cases[i][1], cases[i][2])
  monkeypatch.chdir(tmp_path)
  for argv, command, pattern in cases:
    code = cli.main(argv)
    proc = subprocess.CompletedProcess(argv, code, "", capsys.readouterr().err)
    _one_error_line(proc, command, pattern)
  assert (tmp_path / "afile").read_text() == "keep me\n"
  assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["thesis.tex"]
  assert (tmp_path / "dir_report" / "report.md").is_dir()
  assert not (tmp_path / "lossreg_out").exists()  # nothing ran far enough to write


@pytest.mark.slow
def test_version_and_check_out(tmp_path):
  version, check = _run_all([
      ["--version"],
      ["check", "lossreg_jax.losses:hinge_loss", "--task", "binary", "--out", "chk", "-q"]],
      tmp_path)
  import lossreg_jax
  assert version.returncode == 0 and version.stdout == f"lossreg-jax {lossreg_jax.__version__}\n"
  assert check.returncode == 0, check.stderr
  assert check.stderr == ""
  data = json.loads((tmp_path / "chk" / "results.json").read_text())
  assert data["loss"] == "hinge_loss" and data["task"] == "binary" and data["passed"]
  assert [p["name"] for p in data["properties"]][:2] == ["evaluates", "non_negative"]
  text = (tmp_path / "chk" / "report.md").read_text()
  assert text.startswith("# check_loss(hinge_loss, task='binary')") and "| jit | PASS |" in text


def _start_announcing(argv, cwd):
  """Starts ``main(argv)`` in a child that first says when it was ready.

  ``import lossreg_jax.cli`` does not import JAX (the namespaces load
  lazily), so the interrupt, timed from ``ready``, lands anywhere from JAX's
  own import through loading, compiling, training and writing.
  """
  code = ("import sys, time, lossreg_jax.cli as c; "
          "print('ready', time.time(), file=sys.stderr, flush=True); "
          f"sys.exit(c.main({argv!r}))")
  return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigint_during_training_exits_130_with_one_line(tmp_path):
  argv = ["compare", "--loss", "bce", "--loss", "hinge", "--folds", "2", "--epochs", "300",
          "--hidden", "4", "--quiet"]
  delays = (0.2, 1.5, 3.0)  # 0.2 s: still importing JAX
  runs = []
  for delay in delays:
    folder = _previous_report(tmp_path / f"d{delay}" / "out")
    runs.append((folder, _start_announcing(argv + ["--out", str(folder)], folder.parent)))
  for delay, (_, proc) in zip(delays, runs):
    word, ready = proc.stderr.readline().split()
    assert word == "ready"
    time.sleep(max(0.0, float(ready) + delay - time.time()))
    assert proc.poll() is None  # still working
    proc.send_signal(signal.SIGINT)
  for folder, proc in runs:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err)  # was -11 (segfault) or 0
    assert err == "lossreg-jax compare: interrupted\n", err
    _assert_previous_intact(folder)


@pytest.mark.slow
def test_sigint_through_the_module_entry_point(tmp_path):
  # `python -m lossreg_jax` as a user runs it: interrupt once the status line
  # says the command has started (with progress bars on).
  folder = _previous_report(tmp_path / "out")
  proc = subprocess.Popen(
      [sys.executable, "-m", "lossreg_jax", "compare", "--loss", "bce", "--folds", "2",
       "--epochs", "300", "--hidden", "4", "--out", str(folder)],
      cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  status = proc.stderr.readline()
  assert "rows" in status, status
  time.sleep(1.0)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err
  assert err.rstrip("\n").splitlines()[-1] == "lossreg-jax compare: interrupted"
  assert "Traceback" not in err and "Exception ignored" not in err
  _assert_previous_intact(folder)


def test_interrupt_line_starts_a_new_line_after_an_open_progress_bar(monkeypatch):
  # A tqdm bar on a pipe ends its line with "\r": the interrupt message must not
  # join it (seen once compilation got fast enough for the bar to be up in 1 s).
  from tqdm.auto import tqdm
  monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
  assert not cli._mid_line()
  bar = tqdm(range(3), file=sys.stderr, disable=False)
  try:
    assert cli._mid_line()
  finally:
    bar.close()
  assert not cli._mid_line()


# ------------------------------------------------------------ in-process writes


@pytest.fixture(scope="module")
def comparison():
  from lossreg_jax import datasets
  ds = datasets.load("breast_cancer")
  return experiments.compare_losses(ds.X, ds.y, ["bce"], folds=3, epochs=2, hidden=4,
                                    learning_rate=0.05)


@pytest.fixture(scope="module")
def path_result():
  from lossreg_jax import datasets
  ds = datasets.load("diabetes")
  return experiments.regularization_path(ds.X, ds.y, n_alphas=5, cv=3)


@pytest.mark.parametrize("fault", [KeyboardInterrupt, ValueError])
def test_interrupted_write_leaves_the_previous_report(tmp_path, monkeypatch, comparison, fault):
  folder = _previous_report(tmp_path / "out")

  def broken_loss_figure(result):  # metrics.png is written, then the fault
    raise fault("while plotting")

  monkeypatch.setattr(_plots, "loss_figure", broken_loss_figure)
  with pytest.raises(fault):
    experiments.write_report(comparison, folder)
  _assert_previous_intact(folder)
  # Without a previous report, a failed plot leaves nothing (no lone metrics.png).
  with pytest.raises(fault):
    experiments.write_report(comparison, tmp_path / "fresh")
  assert not (tmp_path / "fresh").exists()
  assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.slow
def test_a_new_report_replaces_the_old_one_as_a_set(tmp_path, comparison, path_result):
  folder = tmp_path / "out"
  experiments.write_report(path_result, folder)
  assert (folder / "coef_path.png").is_file()
  experiments.write_report(comparison, folder)
  names = sorted(p.name for p in folder.iterdir())
  assert "coef_path.png" not in names and "cv_curve.png" not in names  # the path's plots
  assert {"report.md", "results.json", "metrics.png", "train_loss.png"} <= set(names)
  assert json.loads((folder / "results.json").read_text())["results"][0]["spec"] == "bce"
  assert [p.name for p in tmp_path.iterdir()] == ["out"]
  umask = os.umask(0)
  os.umask(umask)
  assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir, not mkdtemp's 0o700


def test_a_folder_with_other_files_is_left_untouched(tmp_path, path_result):
  folder = _previous_report(tmp_path / "out")
  (folder / "notes.txt").write_text("mine\n")
  with pytest.raises(ValueError, match="out_dir .* holds notes.txt.*left untouched"):
    experiments.write_report(path_result, folder)
  assert (folder / "notes.txt").read_text() == "mine\n"
  assert (folder / "report.md").read_text() == PREVIOUS["report.md"]
  with pytest.raises(ValueError, match="is a file"):
    experiments.write_report(path_result, folder / "notes.txt")
  with pytest.raises(ValueError, match="which is a file"):
    experiments.write_report(path_result, folder / "notes.txt" / "deeper")


def test_interrupt_handler_removes_the_temporary_folder(tmp_path):
  # What the SIGINT handler does before os._exit: no temporary folder is left.
  out = tmp_path / "out"
  with pytest.raises(KeyboardInterrupt):
    with _output.atomic_folder(out) as tmp:
      (tmp / "report.md").write_text("half")
      assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-")
      _output.discard_pending()
      assert not tmp.exists()
      raise KeyboardInterrupt
  assert list(tmp_path.iterdir()) == []


def test_option_checks_run_before_any_work(capsys, monkeypatch):
  monkeypatch.setattr(cli, "_compare", lambda args: pytest.fail("ran despite a bad option"))
  for argv, message in ((["--seed", "-1", "compare"], "--seed must be"),
                        (["compare", "--batch-size", "0"], "--batch-size must be"),
                        (["compare", "--learning-rate", "inf"], "finite")):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_bench_out_writes_the_table_and_results(capsys, tmp_path, monkeypatch):
  class FakeRun:
    SIZES = {"small": {}, "full": {}}
    SECTIONS = ("losses", "linear")

    @staticmethod
    def main(argv):
      path = argv[argv.index("--json") + 1]
      Path(path).write_text(json.dumps({"size": "small", "sections": {"losses": {}}}))
      print("TABLE")
      return 0

    @staticmethod
    def format_report(report):
      return f"sections: {', '.join(report['sections'])}"

  monkeypatch.setattr(cli, "_bench_module", lambda: FakeRun)
  folder = _previous_report(tmp_path / "bench")
  assert cli.main(["bench", "--out", str(folder), "-q"]) == 0
  assert json.loads((folder / "results.json").read_text())["size"] == "small"
  assert "sections: losses" in (folder / "report.md").read_text()
  assert "metrics.png" not in {p.name for p in folder.iterdir()}  # replaced as a set
  assert cli.main(["bench", "--only", "gpu_kernels"]) == 2
  assert "--only must name sections among losses, linear" in capsys.readouterr().err


def test_sigint_during_the_swap_is_held_until_the_new_report_is_in_place(tmp_path, monkeypatch):
  folder = _previous_report(tmp_path / "out")
  seen = []
  previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(
      sorted(p.name for p in folder.iterdir()) if folder.exists() else None))
  real_replace = os.replace

  def replace_after_a_sigint(src, dst):  # Ctrl-C right between the two renames
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(100):  # bytecode boundaries, where Python runs signal handlers
      pass
    real_replace(src, dst)

  monkeypatch.setattr(os, "replace", replace_after_a_sigint)
  try:
    with _output.atomic_folder(folder) as tmp:
      (tmp / "report.md").write_text("new")
  finally:
    signal.signal(signal.SIGINT, previous)
  # The handler ran once the swap was complete, never with the folder missing.
  assert seen == [[".lossreg-jax-report", "report.md"]]
  assert (folder / "report.md").read_text() == "new"


@pytest.mark.slow
def test_csv_with_text_columns_and_column_options(capsys, tmp_path):
  # pandas reads the file; a text column is one-hot encoded, --drop / --features choose.
  rows = ["id,size,colour,price"] + [
      f"r{i},{i % 5},{('red', 'blue', 'green')[i % 3]},{1.5 * (i % 5) + (i % 3) + 0.01 * i}"
      for i in range(30)]
  path = tmp_path / "prices.csv"
  path.write_text("\n".join(rows) + "\n")
  out = tmp_path / "o"
  code = cli.main(["path", "--csv", str(path), "--target", "price", "--drop", "id",
                   "--n-alphas", "5", "--cv", "3", "--out", str(out), "-q"])
  assert code == 0, capsys.readouterr().err
  coef = json.loads((out / "results.json").read_text())["coef"]
  assert sorted(coef) == ["colour=blue", "colour=green", "colour=red", "size"]
  # The same four features chosen by name (same shapes: the compiled path is reused).
  (out / "report.md").write_text("previous")
  code = cli.main(["path", "--csv", str(path), "--target", "price", "--features",
                   "colour,size", "--n-alphas", "5", "--cv", "3", "--out", str(out), "-q"])
  assert code == 0
  assert sorted(json.loads((out / "results.json").read_text())["coef"]) == sorted(coef)
  assert (out / "report.md").read_text() != "previous"
  assert cli.main(["path", "--features", "size"]) == 2
  assert "--features and --drop need --csv" in capsys.readouterr().err


def test_out_may_be_a_link_to_a_previous_report(tmp_path):
  target = _previous_report(tmp_path / "real")
  (tmp_path / "link").symlink_to(target)
  with _output.atomic_folder(tmp_path / "link") as tmp:
    (tmp / "report.md").write_text("new")
  assert (tmp_path / "link").is_symlink() and (tmp_path / "link" / "report.md").read_text() == "new"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
