"""Side-by-side timing of ``compare_losses``'s training engine.

Two comparisons, each in ONE run of this script:

1. **This tree against a git revision** (``--baseline``, default ``HEAD``): the
   revision is exported with ``git archive`` into a temporary folder and both
   trees run the default comparison (breast cancer, the three default specs,
   ``--repeats`` × ``--folds`` folds) in fresh Python processes, alternating
   ``--rounds`` times so both see the same machine load. Each process times its
   first call (trace + compile + run) and then the median of ``--calls``
   further calls (steady state). The mean of every metric per spec is printed
   for both trees, with the largest difference (the engines draw different
   initializations, so the means agree to within the folds' spread, not
   exactly).
2. **A sweep against separate candidates**, in this tree: ``bce:positive_weight=``
   with 8 values as one swept spec (one program vmapped over the values) and as
   8 separate specs (8 runs of one compiled program), steady-state medians,
   and the largest per-fold score difference between the two.

Usage::

  python benchmarks/engine.py [--baseline REV] [--repeats 3] [--folds 5] [--calls 3]
                              [--rounds 2] [--skip-baseline] [--skip-sweep]

Nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = "bce:positive_weight=" + "|".join(["1", "1.5", "2", "3", "4", "6", "8", "10"])

__all__ = ["main"]


def _child(calls: int, repeats: int, folds: int) -> None:
  """In a fresh process: first-call and steady-state seconds, and metric means, as JSON."""
  import numpy as np
  from lossreg_jax import datasets, experiments
  ds = datasets.load("breast_cancer")
  kw = dict(folds=folds, repeats=repeats, seed=0)
  start = time.perf_counter()
  res = experiments.compare_losses(ds.X, ds.y, None, **kw)
  first = time.perf_counter() - start
  steady = []
  for _ in range(calls):
    start = time.perf_counter()
    experiments.compare_losses(ds.X, ds.y, None, **kw)
    steady.append(time.perf_counter() - start)
  means = {s: {m: float(np.mean(res.scores[s][m])) for m in res.metrics} for s in res.specs}
  print(json.dumps({"first": first, "steady": statistics.median(steady), "means": means}))


def _run_tree(tree: str, args) -> dict:
  env = dict(os.environ, PYTHONPATH=tree)
  cmd = [sys.executable, os.path.abspath(__file__), "--child", "--calls", str(args.calls),
         "--repeats", str(args.repeats), "--folds", str(args.folds)]
  out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def _export(rev: str, dest: str) -> None:
  archive = os.path.join(dest, "tree.tar")
  subprocess.run(["git", "-C", ROOT, "archive", "-o", archive, rev], check=True)
  with tarfile.open(archive) as tar:
    tar.extractall(os.path.join(dest, "tree"), filter="data")


def baseline_table(args) -> str:
  """This tree against ``args.baseline``: first call, steady state, metric means."""
  with tempfile.TemporaryDirectory() as tmp:
    _export(args.baseline, tmp)
    trees = {"this tree": ROOT, f"baseline {args.baseline}": os.path.join(tmp, "tree")}
    runs = {name: [] for name in trees}
    for _ in range(args.rounds):
      for name, tree in trees.items():
        runs[name].append(_run_tree(tree, args))
  lines = [f"default compare on breast_cancer, {args.repeats} x {args.folds} folds, "
           f"{args.rounds} fresh processes per tree (medians)",
           f"{'tree':<24} {'first call s':>13} {'steady s':>10}"]
  med = {n: {k: statistics.median(r[k] for r in rs) for k in ("first", "steady")}
         for n, rs in runs.items()}
  for name in trees:
    lines.append(f"{name:<24} {med[name]['first']:>13.2f} {med[name]['steady']:>10.3f}")
  new, old = med["this tree"], med[f"baseline {args.baseline}"]
  lines.append(f"ratio this / baseline: first call {new['first'] / old['first']:.2f}x, "
               f"steady state {new['steady'] / old['steady']:.2f}x")
  a, b = (runs[n][0]["means"] for n in trees)
  diff = max(abs(a[s][m] - b[s][m]) for s in a for m in a[s])
  lines.append(f"largest difference of a metric's mean over folds: {diff:.3f}")
  for s in a:
    lines.append(f"  {s:<24} " + "  ".join(f"{m} {a[s][m]:.3f}/{b[s][m]:.3f}"
                                           for m in ("accuracy", "roc_auc", "brier")))
  return "\n".join(lines)


def sweep_table(args) -> str:
  """One swept spec of 8 values against the same 8 values as separate specs."""
  import numpy as np
  from lossreg_jax import datasets, experiments
  ds = datasets.load("breast_cancer")
  kw = dict(folds=args.folds, repeats=args.repeats, seed=0)
  separate = {s: s for s in experiments.expand_sweeps(SWEEP)[0]}
  modes = {"sweep (one program)": [SWEEP], "8 separate specs": separate}
  results = {m: experiments.compare_losses(ds.X, ds.y, c, **kw) for m, c in modes.items()}
  times = {m: [] for m in modes}
  for _ in range(args.calls):
    for mode, cands in modes.items():
      start = time.perf_counter()
      experiments.compare_losses(ds.X, ds.y, cands, **kw)
      times[mode].append(time.perf_counter() - start)
  a, b = results.values()
  diff = max(float(np.max(np.abs(a.scores[s][m] - b.scores[s][m])))
             for s in separate for m in a.metrics)
  med = {m: statistics.median(t) for m, t in times.items()}
  lines = [f"{SWEEP} on breast_cancer, {args.repeats} x {args.folds} folds, "
           f"median of {args.calls} steady-state calls"]
  lines += [f"{m:<24} {t:>8.3f} s" for m, t in med.items()]
  lines.append(f"speed-up of the sweep: {med['8 separate specs'] / med['sweep (one program)']:.1f}x; "
               f"largest per-fold score difference {diff:.2g}")
  return "\n".join(lines)


def main(argv=None) -> int:
  """Parses options, runs both comparisons, prints their tables."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--baseline", default="HEAD")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--folds", type=int, default=5)
  p.add_argument("--calls", type=int, default=3)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--skip-baseline", action="store_true")
  p.add_argument("--skip-sweep", action="store_true")
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  a = p.parse_args(argv)
  if a.child:
    _child(a.calls, a.repeats, a.folds)
    return 0
  import jax
  print(f"backend {jax.default_backend()} ({jax.devices()[0]}), {os.cpu_count()} CPUs")
  if not a.skip_baseline:
    print(baseline_table(a))
  if not a.skip_sweep:
    print(sweep_table(a))
  return 0


if __name__ == "__main__":
  sys.exit(main())
