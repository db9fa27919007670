"""Start N local processes of one script as a multi-process JAX job.

``launch_local`` is a rehearsal of a cluster job on one machine: every process
gets the environment that ``initialize`` reads (a coordinator on a free
127.0.0.1 port, the process count, its id and a CPU device count), the
processes talk through gloo TCP collectives exactly as hosts would, and a
process that dies or a job that hangs stops the others and raises with the
failing process's stderr, instead of leaving them waiting on a collective.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Mapping, Sequence, TextIO

from lossreg_jax.distributed import runtime

__all__ = [
    "LaunchResult",
    "ProcessFailedError",
    "free_port",
    "launch_local",
]

_TAIL = 4000  # characters of a failing process's stderr put in the error


class ProcessFailedError(RuntimeError):
  """A process of a ``launch_local`` job failed, or the job ran past its timeout.

  Attributes:
    process_index: The process that failed first (None for a timeout).
    returncode: Its exit status (None for a timeout).
    stdout: Every process's standard output, in process order.
    stderr: Every process's standard error, in process order.
  """

  def __init__(self, message, *, process_index, returncode, stdout, stderr):
    super().__init__(message)
    self.process_index = process_index
    self.returncode = returncode
    self.stdout = tuple(stdout)
    self.stderr = tuple(stderr)


@dataclasses.dataclass(frozen=True)
class LaunchResult:
  """What every process of a finished ``launch_local`` job wrote.

  Attributes:
    stdout: Standard output of each process, in process order.
    stderr: Standard error of each process, in process order.
    seconds: Wall time from the first start to the last exit.
  """

  stdout: tuple[str, ...]
  stderr: tuple[str, ...]
  seconds: float

  def summary(self) -> str:
    """One line: how many processes ran and for how long."""
    return f"{len(self.stdout)} processes finished in {self.seconds:.1f}s"

  def to_dict(self) -> dict:
    """The result as plain Python values (JSON-ready)."""
    return dataclasses.asdict(self)


def free_port(*, host: str = "127.0.0.1") -> int:
  """A TCP port on ``host`` that nothing listens on right now.

  The operating system picks it (bind to port 0); another program could take
  it before the coordinator binds, which is unlikely on a laptop or CI runner.

  Args:
    host: The interface to look on.

  Returns:
    The port number.

  Examples:
    >>> 0 < free_port() < 65536
    True
  """
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind((host, 0))
    return sock.getsockname()[1]


def _pump(stream, sink: list[str], echo: TextIO | None, prefix: str) -> None:
  for line in iter(stream.readline, ""):
    sink.append(line)
    if echo is not None:
      echo.write(prefix + line)
      echo.flush()
  stream.close()


def _kill(procs) -> None:
  for proc in procs:
    if proc.poll() is None:
      try:  # the process and anything it started (its own session)
        os.killpg(proc.pid, signal.SIGKILL)
      except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()
  for proc in procs:
    proc.wait()


def _tail(text: str, limit: int = _TAIL) -> str:
  return text if len(text) <= limit else "..." + text[-limit:]


def launch_local(
    script: str | os.PathLike,
    *,
    num_processes: int = 2,
    local_devices: int = 2,
    args: Sequence[str] = (),
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
    echo: bool = False,
    python: str = sys.executable,
) -> LaunchResult:
  """Runs ``python script *args`` as ``num_processes`` processes of one JAX job.

  The processes run on this machine's CPU, ``local_devices`` XLA devices each,
  and find each other through a coordinator on a free ``127.0.0.1`` port. Each
  gets ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``
  and ``JAX_NUM_CPU_DEVICES`` (plus ``JAX_PLATFORMS=cpu``), so the script only
  has to call ``lossreg_jax.distributed.initialize()`` first. Output is
  collected per process (and echoed with a ``[i]`` prefix with ``echo``). When
  a process exits with an error the others are killed at once (they would
  otherwise wait on a collective) and ``ProcessFailedError`` carries its
  stderr; a job still running after ``timeout`` seconds is killed the same way.

  Args:
    script: Path of the Python script every process runs.
    num_processes: Number of processes.
    local_devices: CPU devices per process.
    args: Command-line arguments for the script.
    timeout: Seconds the whole job may run.
    env: Extra environment variables for every process (on top of this
      process's environment).
    echo: Also print each process's output lines, prefixed with ``[i]``.
    python: The interpreter to run.

  Returns:
    A ``LaunchResult(stdout, stderr, seconds)`` with one entry per process.

  Raises:
    ValueError: for ``num_processes`` or ``local_devices`` below 1 or a
      non-positive ``timeout``.
    FileNotFoundError: when ``script`` does not exist.
    ProcessFailedError: when a process exits with a non-zero status (the
      message names it and ends with its stderr) or the job times out.

  Examples:
    >>> import pathlib, tempfile
    >>> script = pathlib.Path(tempfile.mkdtemp()) / "hello.py"
    >>> _ = script.write_text("import os; print('process', os.environ['JAX_PROCESS_ID'])")
    >>> launch_local(script, num_processes=2, timeout=60).stdout
    ('process 0\\n', 'process 1\\n')
  """
  for name, value in (("num_processes", num_processes), ("local_devices", local_devices)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
  if not timeout > 0:
    raise ValueError(f"timeout must be positive, got {timeout!r}.")
  if not os.path.isfile(script):
    raise FileNotFoundError(f"script {os.fspath(script)!r} does not exist.")
  address = f"127.0.0.1:{free_port()}"
  base = dict(os.environ, **(env or {}))
  base.update({
      runtime.ENV_COORDINATOR_ADDRESS: address,
      # Listen on the loopback interface only (JAX's default is every interface).
      "JAX_COORDINATOR_BIND_ADDRESS": address,
      runtime.ENV_NUM_PROCESSES: str(num_processes),
      runtime.ENV_LOCAL_DEVICES: str(local_devices),
      "JAX_PLATFORMS": "cpu",
      "PYTHONUNBUFFERED": "1",
  })
  outs = [[] for _ in range(num_processes)]
  errs = [[] for _ in range(num_processes)]
  procs, threads = [], []
  start = time.perf_counter()
  try:
    for i in range(num_processes):
      proc = subprocess.Popen(
          [python, os.fspath(script), *map(str, args)],
          env=dict(base, **{runtime.ENV_PROCESS_ID: str(i)}),
          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
          text=True, start_new_session=True)
      procs.append(proc)
      for stream, sink, echo_to in ((proc.stdout, outs[i], sys.stdout),
                                    (proc.stderr, errs[i], sys.stderr)):
        thread = threading.Thread(target=_pump, daemon=True,
                                  args=(stream, sink, echo_to if echo else None, f"[{i}] "))
        thread.start()
        threads.append(thread)
    failed = None
    while failed is None:
      codes = [proc.poll() for proc in procs]
      failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
      if failed is None and all(code == 0 for code in codes):
        break
      if failed is None and time.perf_counter() - start > timeout:
        break
      time.sleep(0.05)
  finally:
    _kill(procs)
    for thread in threads:
      thread.join(timeout=10)
  seconds = time.perf_counter() - start
  stdout = tuple("".join(o) for o in outs)
  stderr = tuple("".join(e) for e in errs)
  if failed is not None:
    code = procs[failed].returncode
    others = "".join(
        f"\n--- process {i} (stopped) stderr:\n{_tail(e, _TAIL // 4)}"
        for i, e in enumerate(stderr) if i != failed and e.strip())
    raise ProcessFailedError(
        f"process {failed} of {num_processes} exited with status {code} after {seconds:.1f}s "
        f"(the others were stopped); its stderr:\n{_tail(stderr[failed])}{others}",
        process_index=failed, returncode=code, stdout=stdout, stderr=stderr)
  if any(proc.returncode != 0 for proc in procs):  # killed at the timeout
    tails = "\n".join(f"--- process {i} stderr:\n{_tail(e)}" for i, e in enumerate(stderr))
    raise ProcessFailedError(
        f"the {num_processes} processes were still running after timeout={timeout}s and were "
        f"stopped.\n{tails}", process_index=None, returncode=None, stdout=stdout, stderr=stderr)
  return LaunchResult(stdout, stderr, seconds)
