"""Side-by-side timing: ``compare_losses`` with R × k folds in one program vs one by one.

The same comparison runs twice in ONE process: with ``vmap_folds=True`` (each
spec's R × k fold-models train as one compiled, ``vmap``-ed program) and with
``vmap_folds=False`` (the same per-fold program, jit-compiled once, called R × k
times in a Python loop: R × k trainings one after another). Both give the same
numbers (checked here: the largest per-fold score difference is printed). Each
mode's first call (trace + compile + run) is timed in a fresh Python process of
its own, so that neither mode reuses the other's compiled scoring programs; the
steady state is the median of ``--repeats-timing`` further calls in this
process, alternating the two modes so that both see the same machine load.

Usage::

  python benchmarks/compare.py [--dataset breast_cancer] [--folds 5] [--repeats 3]
                               [--epochs 30] [--hidden 16] [--repeats-timing 3]

Nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):  # `python benchmarks/compare.py`: make the repo importable
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np

from lossreg_jax import datasets, experiments

__all__ = ["run", "format_table", "main"]


def run(*, dataset: str = "breast_cancer", folds: int = 5, repeats: int = 3, epochs: int = 30,
        hidden: int = 16, batch_size: int = 32, repeats_timing: int = 3) -> dict:
  """Times both modes; returns first-call and median seconds and the largest difference."""
  ds = experiments.next_quarter_growth() if dataset == "macrodata" else datasets.load(dataset)
  specs = list(experiments.default_specs(ds.task))
  kw = dict(folds=folds, repeats=repeats, epochs=epochs, hidden=hidden,
            batch_size=batch_size, seed=0)

  def once(vmap_folds):
    start = time.perf_counter()
    res = experiments.compare_losses(ds.X, ds.y, specs, vmap_folds=vmap_folds, **kw)
    return time.perf_counter() - start, res

  first = {mode: _first_call_in_fresh_process(mode, dataset=dataset, **kw) for mode in (True, False)}
  results = {mode: once(mode)[1] for mode in (True, False)}
  steady = {True: [], False: []}
  for _ in range(repeats_timing):
    for mode in (True, False):
      steady[mode].append(once(mode)[0])
  diff = max(float(np.max(np.abs(results[True].scores[s][m] - results[False].scores[s][m])))
             for s in specs for m in results[True].metrics)
  return {"dataset": dataset, "n": int(ds.X.shape[0]), "specs": specs, "folds": folds,
          "repeats": repeats, "epochs": epochs, "hidden": hidden,
          "backend": jax.default_backend(), "device": str(jax.devices()[0]),
          "first": first, "median": {m: statistics.median(v) for m, v in steady.items()},
          "max_score_difference": diff}


def _first_call_in_fresh_process(vmap_folds: bool, *, dataset: str, **kw) -> float:
  args = [sys.executable, os.path.abspath(__file__), "--first-call", "vmap" if vmap_folds
          else "loop", "--dataset", dataset, "--folds", str(kw["folds"]), "--repeats",
          str(kw["repeats"]), "--epochs", str(kw["epochs"]), "--hidden", str(kw["hidden"])]
  out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
  return float(out.strip().splitlines()[-1])


def format_table(r: dict) -> str:
  """The result of :func:`run` as a text table."""
  rk = r["repeats"] * r["folds"]
  lines = [f"compare_losses on {r['dataset']} ({r['n']} rows), {len(r['specs'])} specs x "
           f"{r['repeats']} x {r['folds']} = {rk} folds each, {r['epochs']} epochs, hidden "
           f"{r['hidden']}; {r['backend']} ({r['device']})",
           f"{'mode':<44} {'first call s':>13} {'median s':>10}"]
  for mode, label in ((True, f"{rk} folds as one vmapped program"),
                      (False, f"{rk} trainings one after another (loop)")):
    lines.append(f"{label:<44} {r['first'][mode]:>13.2f} {r['median'][mode]:>10.2f}")
  lines[1] = f"{'mode':<44} {'first call s':>13} {'median s':>10}   (first call: fresh process)"
  lines.append(f"speed-up (loop / vmapped): first call {r['first'][False] / r['first'][True]:.1f}x,"
               f" steady state {r['median'][False] / r['median'][True]:.1f}x; largest per-fold "
               f"score difference {r['max_score_difference']:.2g}")
  return "\n".join(lines)


def main(argv=None) -> int:
  """Parses options, runs, prints the table."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="breast_cancer",
                 choices=datasets.list_datasets())
  p.add_argument("--folds", type=int, default=5)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--epochs", type=int, default=30)
  p.add_argument("--hidden", type=int, default=16)
  p.add_argument("--repeats-timing", type=int, default=3)
  p.add_argument("--first-call", choices=("vmap", "loop"), help=argparse.SUPPRESS)
  a = p.parse_args(argv)
  if a.first_call:  # internal: one cold call in this fresh process, seconds on stdout
    ds = (experiments.next_quarter_growth() if a.dataset == "macrodata"
          else datasets.load(a.dataset))
    start = time.perf_counter()
    experiments.compare_losses(ds.X, ds.y, None, folds=a.folds, repeats=a.repeats,
                               epochs=a.epochs, hidden=a.hidden, seed=0,
                               vmap_folds=a.first_call == "vmap")
    print(time.perf_counter() - start)
    return 0
  print(format_table(run(dataset=a.dataset, folds=a.folds, repeats=a.repeats, epochs=a.epochs,
                         hidden=a.hidden, repeats_timing=a.repeats_timing)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
