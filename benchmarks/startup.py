"""Wall time of a first and a second ``lossreg-jax compare`` process, side by side.

Each repeat makes a fresh, empty cache folder (``LOSSREG_JAX_CACHE``), runs
``python -m lossreg_jax compare --quiet`` on the default data (breast cancer,
the three default specs, 5 folds, 30 epochs) twice in new processes, and then
once more with ``--no-cache`` as the uncached reference. Reported per run: the
wall time of the whole process (import + data + compile + train + report) and
the cache hits / new entries the report's ``compile cache`` line records.

Usage::

  python benchmarks/startup.py [--repeats 3] [-- extra compare options]

Nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cache: Path, out: Path, extra: list[str]) -> tuple[float, str]:
  env = {**os.environ, "LOSSREG_JAX_CACHE": str(cache),
         "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "lossreg_jax", "compare", "--quiet",
                         "--out", str(out), *extra], env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f"compare failed ({proc.returncode}):\n{proc.stderr}")
  context = json.loads((out / "results.json").read_text())["context"]
  return seconds, context["compile cache"]


def run(repeats: int = 3, extra: list[str] | None = None) -> dict[str, list]:
  """Returns ``{"first": [...], "second": [...], "no_cache": [...]}`` of (seconds, cache line)."""
  rows = {"first": [], "second": [], "no_cache": []}
  for _ in range(repeats):
    with tempfile.TemporaryDirectory(prefix="lossreg-startup-") as tmp:
      tmp = Path(tmp)
      rows["first"].append(_run(tmp / "cache", tmp / "o1", list(extra or [])))
      rows["second"].append(_run(tmp / "cache", tmp / "o2", list(extra or [])))
      rows["no_cache"].append(_run(tmp / "cache", tmp / "o3", [*(extra or []), "--no-cache"]))
  return rows


def format_table(rows: dict[str, list]) -> str:
  lines = [f"{'process':<34} {'median s':>9} {'all runs (s)':<24} cache",
           "-" * 100]
  labels = {"first": "1st compare (empty cache)", "second": "2nd compare (cache from 1st)",
            "no_cache": "compare --no-cache"}
  for name, label in labels.items():
    times = [t for t, _ in rows[name]]
    cache = rows[name][-1][1]
    cache = cache.rsplit("(", 1)[-1].rstrip(")") if "(" in cache else cache
    lines.append(f"{label:<34} {statistics.median(times):>9.2f} "
                 f"{' '.join(f'{t:.2f}' for t in times):<24} {cache}")
  first = statistics.median(t for t, _ in rows["first"])
  second = statistics.median(t for t, _ in rows["second"])
  lines.append(f"\nsecond / first = {second / first:.2f}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("extra", nargs="*", help="extra `compare` options (after --)")
  args = parser.parse_args(argv)
  print(format_table(run(args.repeats, args.extra)))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
