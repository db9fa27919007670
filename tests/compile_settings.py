"""How the test suite compiles: a cheap XLA CPU pipeline.

Most of the suite's time is XLA compiling thousands of tiny programs that then
run for microseconds (measured on ``tests/test_focal.py`` and three other files:
65 s of 88 s were backend compilation). Importing this module (``conftest.py``
does, before JAX starts a backend) appends fast-compile flags to ``XLA_FLAGS``:
XLA's elemental emitters instead of its fusion emitters, and LLVM at -O0 without
its expensive passes. On those four files the suite's CPU time fell from 123 s
to 45 s. The HLO program is the same and XLA keeps IEEE semantics (no fast
math); ``tests/test_compile_settings.py`` checks that loss values, gradients,
metrics, training steps and the linear solvers equal a process run with XLA's
defaults.

``LOSSREG_JAX_TEST_XLA=default`` runs the suite with XLA's default pipeline. A
flag already in ``XLA_FLAGS`` keeps its value. Environment variables are
inherited, so the flags reach CLI runs, notebook kernels and the sharded and
multi-process jobs; a test that sets flags of its own appends them with
``with_xla_flags``.
"""

from __future__ import annotations

import os
from typing import Mapping, MutableMapping

FLAGS_VAR = "LOSSREG_JAX_TEST_XLA"
FAST_COMPILE_FLAGS = ("--xla_cpu_use_fusion_emitters=false",
                      "--xla_backend_optimization_level=0",
                      "--xla_llvm_disable_expensive_passes=true")


def with_xla_flags(env: Mapping[str, str], *flags: str) -> dict[str, str]:
  """Returns a copy of ``env`` whose ``XLA_FLAGS`` also holds ``flags`` (appended)."""
  return dict(env, XLA_FLAGS=" ".join([env.get("XLA_FLAGS", ""), *flags]).strip())


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
  """Appends the fast-compile flags to ``environ["XLA_FLAGS"]`` (idempotent)."""
  if environ.get(FLAGS_VAR, "fast").strip().lower() == "default":
    return
  named = {flag.split("=")[0] for flag in environ.get("XLA_FLAGS", "").split()}
  missing = [f for f in FAST_COMPILE_FLAGS if f.split("=")[0] not in named]
  if missing:
    environ["XLA_FLAGS"] = with_xla_flags(environ, *missing)["XLA_FLAGS"]


apply()
