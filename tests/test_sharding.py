"""Losses and metrics give the same value and gradient on a sharded batch.

The cases run in their own process with 4 simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``) and a ("data",) mesh:
a global weighted mean, never a mean of shard means.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from compile_settings import with_xla_flags

SCRIPT = pathlib.Path(__file__).with_name("sharding_cases.py")


@pytest.fixture(scope="module")
def results():
  env = dict(with_xla_flags(os.environ, "--xla_force_host_platform_device_count=4"),
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                        env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
  assert len(rows) >= 40, proc.stdout[-2000:] + proc.stderr[-2000:]
  return rows


@pytest.mark.slow
def test_every_case_ran_on_four_shards(results):
  errors = [r for r in results if "error" in r]
  assert not errors, errors
  assert all(r["shards"] == 4 for r in results)


@pytest.mark.slow
def test_sharded_equals_unsharded(results):
  bad = [r for r in results if "error" not in r and r["diff"] > 1e-5 * r["scale"]]
  assert not bad, bad
