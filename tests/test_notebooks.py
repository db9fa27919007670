"""Every notebook in notebooks/ runs top to bottom on the CPU in under a minute.

Notebooks that train for long read ``LOSSREG_JAX_NOTEBOOK_SIZE`` in their first
cell: ``small`` (set here) trains for fewer epochs and seeds, so the suite checks
that every cell runs without paying for the full training. Their saved outputs
are the full run, which ``test_saved_outputs_are_a_full_error_free_run`` checks.
"""

from __future__ import annotations

import os
import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
SIZE_VAR = "LOSSREG_JAX_NOTEBOOK_SIZE"


def _outputs(nb):
  return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _reads_size(nb) -> bool:
  code = [c for c in nb.cells if c.cell_type == "code"]
  return SIZE_VAR in code[0].source


def _stdout(nb) -> str:
  return "".join(o.get("text", "") for o in _outputs(nb) if o.get("output_type") == "stream")


def test_there_are_notebooks():
  assert len(NOTEBOOKS) >= 6, NOTEBOOKS
  assert sum(_reads_size(nbformat.read(p, as_version=4)) for p in NOTEBOOKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
  nb = nbformat.read(path, as_version=4)
  monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
  monkeypatch.setenv(SIZE_VAR, "small")  # the kernel inherits it
  client = NotebookClient(nb, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}})
  start = time.perf_counter()
  client.execute()
  elapsed = time.perf_counter() - start
  errors = [o for o in _outputs(nb) if o.get("output_type") == "error"]
  assert not errors
  if _reads_size(nb):
    assert "notebook size: small" in _stdout(nb)
  assert elapsed < 90, f"{path.name} took {elapsed:.0f}s (budget: a minute on CPU)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_outputs_are_a_full_error_free_run(path):
  # What a reader sees: every code cell executed in order, no error, and for the
  # notebooks with a size setting, the full one.
  nb = nbformat.read(path, as_version=4)
  code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
  assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), path.name
  assert not [o for o in _outputs(nb) if o.get("output_type") == "error"]
  if _reads_size(nb):
    assert "notebook size: full" in _stdout(nb)
