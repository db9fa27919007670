"""Wall time of a first and a second ``lossreg-jax compare`` process, side by side.

Two modes. Default: each repeat makes a fresh, empty cache folder (``LOSSREG_JAX_CACHE``), runs
``python -m lossreg_jax compare --quiet`` on the default data (breast cancer,
the three default specs, 5 folds, 30 epochs) twice in new processes, and then
once more with ``--no-cache`` as the uncached reference. Reported per run: the
wall time of the whole process (import + data + compile + train + report) and
the cache hits / new entries the report's ``compile cache`` line records.

``--parts``: where one ``compare`` goes, in fresh processes (the median of
``--repeats``, wall and CPU seconds): importing ``lossreg_jax`` and
matplotlib, loading the data, ``compare_losses`` with the command's defaults
(compilation included, no persistent cache), the first ``result.curves()``
(JAX compiles the curve metrics there), ``write_report`` as a whole and each
figure of it (the time building it before its ``savefig`` call, and the
``savefig`` call itself: layout, draw and PNG encoding), then ``write_report``
once more in the same process (warm). ``--root DIR`` imports ``lossreg_jax`` from another checkout,
to compare two versions with the same command.

Usage::

  python benchmarks/startup.py [--repeats 3] [-- extra compare options]
  python benchmarks/startup.py --parts [--repeats 3] [--root DIR]

Nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cache: Path, out: Path, extra: list[str]) -> tuple[float, str]:
  env = {**os.environ, "LOSSREG_JAX_CACHE": str(cache),
         "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "lossreg_jax", "compare", "--quiet",
                         "--out", str(out), *extra], env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f"compare failed ({proc.returncode}):\n{proc.stderr}")
  context = json.loads((out / "results.json").read_text())["context"]
  return seconds, context["compile cache"]


def run(repeats: int = 3, extra: list[str] | None = None) -> dict[str, list]:
  """Returns ``{"first": [...], "second": [...], "no_cache": [...]}`` of (seconds, cache line)."""
  rows = {"first": [], "second": [], "no_cache": []}
  for _ in range(repeats):
    with tempfile.TemporaryDirectory(prefix="lossreg-startup-") as tmp:
      tmp = Path(tmp)
      rows["first"].append(_run(tmp / "cache", tmp / "o1", list(extra or [])))
      rows["second"].append(_run(tmp / "cache", tmp / "o2", list(extra or [])))
      rows["no_cache"].append(_run(tmp / "cache", tmp / "o3", [*(extra or []), "--no-cache"]))
  return rows


def format_table(rows: dict[str, list]) -> str:
  lines = [f"{'process':<34} {'median s':>9} {'all runs (s)':<24} cache",
           "-" * 100]
  labels = {"first": "1st compare (empty cache)", "second": "2nd compare (cache from 1st)",
            "no_cache": "compare --no-cache"}
  for name, label in labels.items():
    times = [t for t, _ in rows[name]]
    cache = rows[name][-1][1]
    cache = cache.rsplit("(", 1)[-1].rstrip(")") if "(" in cache else cache
    lines.append(f"{label:<34} {statistics.median(times):>9.2f} "
                 f"{' '.join(f'{t:.2f}' for t in times):<24} {cache}")
  first = statistics.median(t for t, _ in rows["first"])
  second = statistics.median(t for t, _ in rows["second"])
  lines.append(f"\nsecond / first = {second / first:.2f}")
  return "\n".join(lines)


def _parts_child() -> None:
  """Runs in a fresh process: prints ``{row label: [wall seconds, CPU seconds]}`` as JSON."""
  rows: dict[str, list[float]] = {}
  wall, cpu = time.perf_counter, time.process_time
  clock = lambda: (wall(), cpu())
  since = lambda t: [wall() - t[0], cpu() - t[1]]
  start = clock()
  import lossreg_jax  # noqa: F401
  from lossreg_jax import datasets, experiments
  rows["import lossreg_jax (+ experiments, datasets)"] = since(start)
  start = clock()
  import matplotlib
  import matplotlib.figure
  from matplotlib.backends import backend_agg  # noqa: F401
  rows["import matplotlib (figure, Agg)"] = since(start)
  start = clock()
  ds = datasets.load("breast_cancer")
  rows["load breast_cancer"] = since(start)
  start = clock()
  result = experiments.compare_losses(ds.X, ds.y, None)
  rows["compare_losses (3 default specs, 5 folds, 30 epochs)"] = since(start)
  result.settings.setdefault("class_names", list(ds.target_names))
  start = clock()
  result.curves()  # JAX metrics: compiled on the first call, reused by write_report
  rows["result.curves() (first call: compiles the curve metrics)"] = since(start)
  saves: list[tuple[str, tuple, tuple]] = []
  savefig = matplotlib.figure.Figure.savefig

  def timed_savefig(fig, fname, *args, **kwargs):
    begin = clock()
    out = savefig(fig, fname, *args, **kwargs)
    saves.append((Path(str(fname)).name, begin, clock()))
    return out

  matplotlib.figure.Figure.savefig = timed_savefig
  context = {"data": "breast_cancer", "classes": ", ".join(ds.target_names)}
  with tempfile.TemporaryDirectory(prefix="lossreg-parts-") as tmp:
    for call in ("first", "warm"):
      saves.clear()
      start = clock()
      experiments.write_report(result, Path(tmp) / call, context=context)
      total = since(start)
      rows[f"write_report ({call} call in the process)"] = total
      previous, figures = start, [0.0, 0.0]
      for name, begin, end in saves:
        rows[f"  {call}: {name} build"] = [b - p for b, p in zip(begin, previous)]
        rows[f"  {call}: {name} savefig"] = [e - b for e, b in zip(end, begin)]
        figures = [f + e - p for f, e, p in zip(figures, end, previous)]
        previous = end
      rows[f"  {call}: all figures (build + savefig)"] = figures
      rows[f"  {call}: the rest (report.md, results.json, folder swap)"] = [
          t - f for t, f in zip(total, figures)]
  print(json.dumps(rows))


def run_parts(repeats: int = 3, root: Path = ROOT) -> dict[str, list[list[float]]]:
  """Returns ``{row label: [[wall, CPU seconds] per process]}``, each process fresh."""
  env = {**os.environ, "LOSSREG_JAX_CACHE": "off",
         "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
  rows: dict[str, list[list[float]]] = {}
  for _ in range(repeats):
    proc = subprocess.run([sys.executable, __file__, "--parts-child"], env=env,
                          capture_output=True, text=True, cwd=root)
    if proc.returncode != 0:
      raise RuntimeError(f"parts run failed ({proc.returncode}):\n{proc.stderr}")
    for label, seconds in json.loads(proc.stdout.strip().splitlines()[-1]).items():
      rows.setdefault(label, []).append(seconds)
  return rows


def format_parts(rows: dict[str, list[list[float]]]) -> str:
  """Median wall and CPU seconds per part, and every run's wall seconds.

  CPU seconds (this process only) are what a part costs on an idle machine
  when it runs on one thread (the figures); wall seconds include waiting for
  a busy machine's cores.
  """
  width = max(len(label) for label in rows)
  lines = [f"{'part':<{width}} {'wall s':>7} {'CPU s':>7}  wall s of each run",
           "-" * (width + 40)]
  for label, runs in rows.items():
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    lines.append(f"{label:<{width}} {statistics.median(walls):>7.3f} "
                 f"{statistics.median(cpus):>7.3f}  {' '.join(f'{t:.3f}' for t in walls)}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--parts", action="store_true",
                      help="time the parts of one compare (imports, compare, each figure)")
  parser.add_argument("--root", type=Path, default=ROOT,
                      help="with --parts: the checkout to import lossreg_jax from")
  parser.add_argument("--parts-child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("extra", nargs="*", help="extra `compare` options (after --)")
  args = parser.parse_args(argv)
  if args.parts_child:
    _parts_child()
    return 0
  if args.parts:
    print(format_parts(run_parts(args.repeats, args.root.resolve())))
    return 0
  print(format_table(run(args.repeats, args.extra)))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
