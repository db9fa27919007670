"""Side-by-side timing of ``lossreg_jax.linear.elastic_net_cv`` vs scikit-learn.

One problem, ``sklearn.datasets.make_regression(n_samples, n_features,
noise=NOISE, random_state=0)``, goes through scikit-learn's
``ElasticNetCV(l1_ratio=0.5, cv=5, alphas=n_alphas)`` (serial, and with
``n_jobs=-1``: threads over folds) and through ``elastic_net_cv`` (float64 and
float32) in ONE process, alternating so that both see the same machine load.
Our first call is timed separately (trace + compile + run) and the compile time
reported as its excess over the steady-state median. Reported: median seconds,
ratio = scikit-learn / ours (> 1: ours faster), both selected alphas (and their
grid index), the largest relative difference of the mean CV error curves, and
each method's distance from the exact solution: an untimed scikit-learn run at
``tol=1e-12`` is the reference for ``mse_path`` (largest relative error over
every alpha and fold) and the refit ``coef`` (largest error / largest |coef|).
All methods run at the same, default ``tol=1e-4``. On a shared machine compare
the ``min s`` column (the least-disturbed run).

Usage::

  python benchmarks/linear.py [--n-samples 2000] [--n-features 200] [--cv 5]
                              [--n-alphas 100] [--repeats 5]

or ``from benchmarks.linear import run; print(format_table(run()))``. Nothing here
is run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # `python benchmarks/linear.py`: make the repo importable
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np
from sklearn.datasets import make_regression
from sklearn.linear_model import ElasticNetCV

from lossreg_jax import linear

__all__ = ["NOISE", "run", "format_table", "main"]

# Noisy enough that the CV optimum is inside the alpha grid, not at its end
# (with little noise the smallest alpha always wins and "same alpha" is moot).
NOISE = 400.0
_SIZES = {"small": (2000, 200), "full": (20000, 1000)}


def _median_time(fn, repeats: int) -> tuple[float, object]:
  times, out = [], None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times), out


def run(n_samples: int = 2000, n_features: int = 200, cv: int = 5, n_alphas: int = 100,
        *, repeats: int = 5, size: str | None = None) -> dict:
  """Times scikit-learn's ElasticNetCV and ``elastic_net_cv`` on one problem.

  Args:
    n_samples, n_features: Shape of ``make_regression``'s problem.
    cv: Number of (contiguous, ``KFold``) folds.
    n_alphas: Alphas per grid.
    repeats: Timed runs of each method (the median is reported).
    size: ``"small"`` (2000 x 200) or ``"full"`` (20000 x 1000, at most 3
      repeats) overrides the shape (used by ``benchmarks/run.py``).

  Returns:
    A dict with the problem, the environment, per-method median seconds,
    compile seconds, selected alphas and agreement figures.
  """
  if size is not None:
    n_samples, n_features = _SIZES[size]
    if size == "full":
      repeats = min(repeats, 3)  # scikit-learn takes seconds per fit at this size
  X, y = make_regression(n_samples, n_features, noise=NOISE, random_state=0)
  out = dict(n_samples=n_samples, n_features=n_features, cv=cv, n_alphas=n_alphas,
             noise=NOISE, backend=jax.default_backend(), cpu_count=os.cpu_count(),
             load_avg=os.getloadavg()[0], methods={})

  def sklearn_fit(n_jobs):
    return lambda: ElasticNetCV(l1_ratio=0.5, cv=cv, alphas=n_alphas, n_jobs=n_jobs).fit(X, y)

  def ours(x64):
    # float32 data for the float32 run: no float64-in-float32 warning.
    data = (X, y) if x64 else (X.astype(np.float32), y.astype(np.float32))

    def fit():
      with jax.enable_x64(x64):
        res = linear.elastic_net_cv(*data, l1_ratio=0.5, cv=cv, n_alphas=n_alphas)
        return jax.block_until_ready(res)
    return fit

  # The exact solution (untimed): scikit-learn far past its default tolerance.
  exact = ElasticNetCV(l1_ratio=0.5, cv=cv, alphas=n_alphas, tol=1e-12, max_iter=100_000).fit(X, y)
  methods = {
      "sklearn ElasticNetCV": sklearn_fit(None),
      "sklearn ElasticNetCV n_jobs=-1": sklearn_fit(-1),
      "elastic_net_cv float64": ours(True),
      "elastic_net_cv float32": ours(False),
  }
  first = {}
  for name, fn in methods.items():  # warm up: jit compile, BLAS threads
    start = time.perf_counter()
    fn()
    first[name] = time.perf_counter() - start
  results = {name: [] for name in methods}
  last = {}
  for _ in range(repeats):  # alternate so that every method sees the same load
    for name, fn in methods.items():
      seconds, last[name] = _median_time(fn, 1)
      results[name].append(seconds)

  ref = last["sklearn ElasticNetCV"]
  ref_mean = ref.mse_path_.mean(axis=1)
  base = statistics.median(results["sklearn ElasticNetCV"])
  for name in methods:
    median = statistics.median(results[name])
    fit = last[name]
    if name.startswith("sklearn"):
      alpha, mse_path, coef = fit.alpha_, fit.mse_path_, fit.coef_
    else:
      alpha, mse_path, coef = float(fit.alpha), np.asarray(fit.mse_path), fit.coef
    mean_mse = np.asarray(mse_path).mean(axis=1)
    out["methods"][name] = dict(
        seconds=median,
        min_seconds=min(results[name]),
        compile_seconds=max(first[name] - median, 0.0) if not name.startswith("sklearn") else None,
        ratio=base / median,
        alpha=float(alpha),
        alpha_index=int(np.argmin(mean_mse)),
        same_alpha=bool(np.isclose(alpha, ref.alpha_, rtol=1e-5)),
        mse_rel_diff=float(np.max(np.abs(mean_mse / ref_mean - 1))),
        coef_rel_diff=float(np.max(np.abs(np.asarray(coef) - ref.coef_))
                            / np.max(np.abs(ref.coef_))),
        mse_err_exact=float(np.max(np.abs(np.asarray(mse_path) / exact.mse_path_ - 1))),
        coef_err_exact=float(np.max(np.abs(np.asarray(coef) - exact.coef_))
                             / np.max(np.abs(exact.coef_))),
    )
  out["load_avg_after"] = os.getloadavg()[0]
  return out


def format_table(result: dict) -> str:
  """The result of ``run`` as a printable table."""
  lines = [
      f"elastic_net_cv vs sklearn ElasticNetCV: make_regression({result['n_samples']}, "
      f"{result['n_features']}, noise={result['noise']:g}), cv={result['cv']}, "
      f"n_alphas={result['n_alphas']}, l1_ratio=0.5; backend={result['backend']}, "
      f"{result['cpu_count']} CPUs, load {result['load_avg']:.1f} -> "
      f"{result['load_avg_after']:.1f}",
      f"{'method':31s} {'median s':>8s} {'min s':>7s} {'compile':>7s} {'sk/ours':>7s} "
      f"{'alpha':>8s} {'idx':>3s} {'same':>5s} {'mse diff':>8s} {'coef dif':>8s} "
      f"{'mse err':>8s} {'coef err':>8s}",
  ]
  for name, r in result["methods"].items():
    comp = "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.2f}"
    lines.append(
        f"{name:31s} {r['seconds']:8.4f} {r['min_seconds']:7.4f} {comp:>7s} {r['ratio']:7.2f} "
        f"{r['alpha']:8.5g} {r['alpha_index']:3d} {str(r['same_alpha']):>5s} "
        f"{r['mse_rel_diff']:8.1e} {r['coef_rel_diff']:8.1e} {r['mse_err_exact']:8.1e} "
        f"{r['coef_err_exact']:8.1e}"
    )
  lines.append("sk/ours: median-time ratio; mse/coef diff: vs sklearn's default run; "
               "mse/coef err: vs the exact solution (sklearn, tol=1e-12)")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--n-samples", type=int, default=2000)
  p.add_argument("--n-features", type=int, default=200)
  p.add_argument("--cv", type=int, default=5)
  p.add_argument("--n-alphas", type=int, default=100)
  p.add_argument("--repeats", type=int, default=5)
  a = p.parse_args(argv)
  print(format_table(run(a.n_samples, a.n_features, a.cv, a.n_alphas, repeats=a.repeats)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
