"""elastic_net_cv splits its folds x alphas grid over devices and gives the same result.

The sharded cases run in their own process with 4 simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``, see
``linear_sharding_cases.py``); argument checks run here, on any device count.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from lossreg_jax import linear
from compile_settings import with_xla_flags

SCRIPT = pathlib.Path(__file__).with_name("linear_sharding_cases.py")
N_DEVICES, N_FOLDS, N_FEATURES = 4, 5, 10  # diabetes: 10 features, cv=5


@pytest.fixture(scope="module")
def results():
  env = dict(with_xla_flags(os.environ, f"--xla_force_host_platform_device_count={N_DEVICES}"),
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                        env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
  # devices= and mesh=, for one l1 ratio and for a list of two.
  assert len(rows) == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
  errors = [r for r in rows if "error" in r]
  assert not errors, errors
  return rows


@pytest.mark.slow
def test_sharded_equals_unsharded(results):
  for row in results:
    diff, scale = row["abs_diff"], row["scale"]
    # The selection is the same, not merely close.
    assert diff["alpha"] == 0 and diff["l1_ratio"] == 0 and diff["alphas"] == 0, row
    for field in ("coef", "intercept", "mse_path"):
      assert diff[field] <= 1e-12 * max(1.0, scale[field]), (field, row)


@pytest.mark.slow
def test_results_live_on_all_devices(results):
  for row in results:
    assert set(row["devices_per_field"].values()) == {N_DEVICES}, row


@pytest.mark.slow
def test_solver_loop_runs_on_a_per_device_share(results):
  # In the compiled SPMD program the solver's loop state is (folds + 1,
  # padded grid / devices, features) on each device; the full grid axis never
  # appears at that shape (nothing is gathered onto one device).
  for row in results:
    n_grid = row["n_grid"]
    padded = -(-n_grid // N_DEVICES) * N_DEVICES
    assert padded != n_grid  # both cases exercise the padding
    local = [N_FOLDS + 1, padded // N_DEVICES, N_FEATURES]
    assert local in row["loop_shapes"], row
    assert not any(s[1] in (n_grid, padded) for s in row["loop_shapes"]), row
    assert not row["full_batch_in_hlo"], row


def test_bad_devices_or_mesh_raise_naming_the_argument():
  X = np.arange(24.0).reshape(12, 2) % 5
  y = X @ np.array([1.0, -1.0])
  device = jax.devices()[0]
  with pytest.raises(ValueError, match="devices or mesh"):
    linear.elastic_net_cv(X, y, cv=3, devices=[device], mesh=Mesh(np.array([device]), ("a",)))
  with pytest.raises(TypeError, match="devices must be a sequence"):
    linear.elastic_net_cv(X, y, cv=3, devices=device)
  with pytest.raises(ValueError, match="devices must be a non-empty"):
    linear.elastic_net_cv(X, y, cv=3, devices=[])
  with pytest.raises(ValueError, match="devices must be a non-empty"):
    linear.elastic_net_cv(X, y, cv=3, devices=["cpu:0"])
  with pytest.raises(ValueError, match="devices must be distinct"):
    linear.elastic_net_cv(X, y, cv=3, devices=[device, device])
  with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
    linear.elastic_net_cv(X, y, cv=3, mesh=[device])
  with pytest.raises(ValueError, match="mesh must have exactly one axis"):
    linear.elastic_net_cv(X, y, cv=3, mesh=Mesh(np.array([device]).reshape(1, 1), ("a", "b")))
