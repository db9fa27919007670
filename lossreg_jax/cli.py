"""The ``lossreg-jax`` command (placeholder until the CLI issue lands)."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="lossreg-jax",
      description="Compare losses and regularizers on real data.",
  )
  return parser


def main(argv: list[str] | None = None) -> int:
  build_parser().parse_args(argv)
  return 0
