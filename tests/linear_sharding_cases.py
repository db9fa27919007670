"""Run in a subprocess with 4 simulated CPU devices by tests/test_linear_sharding.py.

For one l1 ratio and for a list of two it runs ``elastic_net_cv`` on diabetes in
float64 unsharded, with ``devices=jax.devices()`` and with a 4-device mesh, and
prints one JSON line per sharded run: the largest difference of every result
field from the unsharded run, the devices each result array lives on, and what
the compiled program's solver loop looks like (the per-device shapes of its
state), so that a sharding that is silently dropped or gathered shows.
"""

from __future__ import annotations

import json
import os
import re
import sys

# Appended: the suite's compile flags (tests/compile_settings.py) come in XLA_FLAGS.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402

jax.config.update("jax_enable_x64", True)

from lossreg_jax import linear  # noqa: E402
from lossreg_jax.linear import cv as _linear_cv  # noqa: E402

N_ALPHAS = 15  # 15 and 30 problems per fold: both need padding to a multiple of 4
FIELDS = ("alpha", "l1_ratio", "coef", "intercept", "alphas", "mse_path")


def _spy_cv_impl():
  """Records the arguments of every ``cv_impl`` call (to compile it again here)."""
  calls, original = [], _linear_cv.cv_impl

  def spy(*args, **kwargs):
    calls.append((args, kwargs))
    return original(*args, **kwargs)

  _linear_cv.cv_impl = spy
  return calls, original


def _loop_shapes(hlo: str, n_features: int):
  """Shapes ``[batch, problems, n_features]`` of the f64 arrays in the while loops."""
  shapes = set()
  for line in hlo.splitlines():
    if " while(" in line:
      for dims in re.findall(r"f64\[(\d+),(\d+),(\d+)\]", line.split(" while(")[0]):
        if int(dims[2]) == n_features and int(dims[0]) > 1:
          shapes.add(tuple(int(d) for d in dims))
  return sorted(shapes)


def main():
  assert jax.device_count() == 4, jax.devices()
  X, y = load_diabetes(return_X_y=True)
  calls, original = _spy_cv_impl()
  mesh = Mesh(np.array(jax.devices()[::-1]), ("grid",))
  for l1_ratio in (0.5, [0.3, 0.9]):
    kwargs = dict(l1_ratio=l1_ratio, cv=5, n_alphas=N_ALPHAS, tol=1e-8, max_iter=100_000)
    plain = linear.elastic_net_cv(X, y, **kwargs)
    n_grid = N_ALPHAS * np.size(l1_ratio)
    for how, extra in (("devices", dict(devices=jax.devices())), ("mesh", dict(mesh=mesh))):
      row = dict(case=f"{how}/l1_ratio={l1_ratio}", n_grid=n_grid)
      try:
        calls.clear()
        sharded = linear.elastic_net_cv(X, y, **kwargs, **extra)
        # Before any host transfer: where do the result arrays live?
        row["devices_per_field"] = {f: len(getattr(sharded, f).sharding.device_set)
                                    for f in FIELDS}
        row["abs_diff"] = {f: float(np.max(np.abs(np.asarray(getattr(sharded, f))
                                                  - np.asarray(getattr(plain, f)))))
                           for f in FIELDS}
        row["scale"] = {f: float(np.max(np.abs(np.asarray(getattr(plain, f))))) for f in FIELDS}
        (args, kw), = calls
        hlo = original.lower(*args, **kw).compile().as_text()
        row["loop_shapes"] = _loop_shapes(hlo, X.shape[1])
        row["full_batch_in_hlo"] = bool(re.search(
            rf"f64\[{cv_plus_one(kwargs)},({n_grid}|{-(-n_grid // 4) * 4}),{X.shape[1]}\]", hlo))
      except Exception as e:  # reported, and the test fails on it
        row["error"] = f"{type(e).__name__}: {e}"
      print(json.dumps(row))
  sys.stdout.flush()


def cv_plus_one(kwargs):
  return kwargs["cv"] + 1


if __name__ == "__main__":
  main()
