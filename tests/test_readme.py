"""The README's opening commands and its Python examples stay true."""

from __future__ import annotations

import pathlib
import re

import pytest

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()


def test_readme_opens_with_exactly_two_commands():
  first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
  assert len(first_block) == 2
  assert "lossreg-jax" in first_block[0]
  assert "pytest" in first_block[1]
  ci = (pathlib.Path(__file__).parents[1] / ".ci" / "run").read_text()
  assert "-m pytest -n 2 -q" in ci and "-m pytest -n 2 -q" in first_block[1]


@pytest.mark.slow
def test_python_examples_run(capsys):
  blocks = re.findall(r"```python\n(.*?)```", README, re.S)
  assert blocks
  for block in blocks:
    exec(compile(block, "README.md", "exec"), {})
  out = capsys.readouterr().out
  assert "1.386" in out
  assert "0." in out
