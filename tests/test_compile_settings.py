"""The suite's fast-compile XLA flags change no result (``compile_settings.py``).

The panel of ``compile_parity_cases.py`` (every public loss's value and gradient on
ordinary and extreme inputs in float32 and float16, metrics, Flax training steps,
the linear solvers) is computed here, under the suite's flags, and in a
subprocess with XLA's default pipeline, and the two must agree.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import compile_parity_cases
import compile_settings

SCRIPT = pathlib.Path(__file__).with_name("compile_parity_cases.py")


def _default_xla_env():
  env = dict(os.environ, **{compile_settings.FLAGS_VAR: "default"})
  kept = [f for f in env.get("XLA_FLAGS", "").split() if f not in compile_settings.FAST_COMPILE_FLAGS]
  env["XLA_FLAGS"] = " ".join(kept)
  return env


def test_the_suite_runs_with_the_fast_flags():
  flags = os.environ.get("XLA_FLAGS", "").split()
  if os.environ.get(compile_settings.FLAGS_VAR, "fast") != "default":
    assert set(compile_settings.FAST_COMPILE_FLAGS) <= set(flags)
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=2"}
  compile_settings.apply(env)  # the caller's own value of a flag is kept
  assert env["XLA_FLAGS"].split() == ["--xla_backend_optimization_level=2",
                                      "--xla_cpu_use_fusion_emitters=false",
                                      "--xla_llvm_disable_expensive_passes=true"]
  compile_settings.apply(env)  # idempotent
  assert len(env["XLA_FLAGS"].split()) == 3
  off = {compile_settings.FLAGS_VAR: "default"}
  compile_settings.apply(off)
  assert "XLA_FLAGS" not in off
  assert compile_settings.with_xla_flags({"XLA_FLAGS": "--a"}, "--b")["XLA_FLAGS"] == "--a --b"
  assert compile_settings.with_xla_flags({}, "--b")["XLA_FLAGS"] == "--b"


@pytest.mark.slow
def test_results_equal_xla_default_pipeline():
  proc = subprocess.Popen([sys.executable, str(SCRIPT)], env=_default_xla_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  fast = compile_parity_cases.panel()  # meanwhile, here, under the suite's flags
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-4000:]
  default = json.loads(out.strip().splitlines()[-1])
  assert sorted(fast) == sorted(default)
  bad = {}
  for name, values in fast.items():
    a, b = np.asarray(values, np.float64), np.asarray(default[name], np.float64)
    assert a.shape == b.shape, name
    same_kind = np.array_equal(np.isfinite(a), np.isfinite(b))
    close = np.allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, float(np.nanmax(np.abs(b)))),
                        equal_nan=True)
    if not (same_kind and close):
      bad[name] = float(np.nanmax(np.abs(a - b)))
  assert not bad, bad
  assert len(fast) >= 60 and all(math.isfinite(x) for v in fast.values() for x in v)
