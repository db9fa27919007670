"""``python -m lossreg_jax.distributed``: run a script as N local JAX processes.

    python -m lossreg_jax.distributed --num-processes 2 --local-devices 2 -- train.py --epochs 3

Every process runs ``train.py --epochs 3`` with the environment that
``lossreg_jax.distributed.initialize()`` reads; output lines are prefixed with
the process index. The exit status is 0 when every process succeeded, else 1
(the others are stopped and the failing process's stderr is printed).
"""

from __future__ import annotations

import argparse
import sys

from lossreg_jax.distributed.launch import ProcessFailedError, launch_local


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m lossreg_jax.distributed",
      description="Run SCRIPT as a multi-process JAX job on this machine's CPU (gloo "
                  "collectives, coordinator on a free 127.0.0.1 port).")
  parser.add_argument("--num-processes", type=int, default=2, help="processes (default 2)")
  parser.add_argument("--local-devices", type=int, default=2,
                      help="CPU devices per process (default 2)")
  parser.add_argument("--timeout", type=float, default=600.0,
                      help="seconds before every process is stopped (default 600)")
  parser.add_argument("script", help="the Python script each process runs")
  parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
  ns = parser.parse_args(argv)
  try:
    result = launch_local(ns.script, num_processes=ns.num_processes,
                          local_devices=ns.local_devices, args=ns.args, timeout=ns.timeout,
                          echo=True)
  except (ValueError, FileNotFoundError) as error:
    parser.error(str(error))
  except ProcessFailedError as error:
    print(f"lossreg_jax.distributed: {error}", file=sys.stderr)
    return 1
  print(f"lossreg_jax.distributed: {result.summary()}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
