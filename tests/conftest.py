"""Test-wide JAX settings and fixtures.

Implicit rank promotion is an error everywhere in the suite, so a loss that
silently broadcasts ``(n,)`` against ``(n, 1)`` fails loudly. The default float
is float32, as for users; tests that compare with scikit-learn in float64 use the
``x64`` fixture. XLA compiles with the suite's fast-compile flags
(``compile_settings.py``, imported before JAX starts a backend).
"""

import os

import compile_settings  # noqa: F401  (appends the suite's XLA_FLAGS)

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# In-process CLI tests must not write the user's persistent compilation cache.
os.environ.setdefault("LOSSREG_JAX_CACHE", "off")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

# Scripts that tests run in their own process (they set process-wide JAX flags
# such as the simulated device count and x64): never import them here, not even
# for --doctest-modules.
collect_ignore = [
    "sharding_cases.py", "linear_sharding_cases.py", "distributed_cases.py", "compile_settings.py",
    "compile_parity_cases.py",
]


@pytest.fixture
def x64():
  """Runs the test with 64-bit JAX types enabled."""
  with jax.enable_x64(True):
    yield


def pytest_collection_modifyitems(config, items):
  """Runs the tests marked slow first (a stable sort: otherwise in file order).

  pytest-xdist hands tests to its workers in this order, so the long ones start
  at once and the many short ones fill in after them: no worker is left alone
  with a 20-second test at the end of the run.
  """
  del config
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
