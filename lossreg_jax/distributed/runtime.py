"""One program, many processes: start-up and the per-process share of the rows.

A multi-host JAX job runs the same script once per process (usually one per
host). Each process calls ``initialize`` before any other JAX work; afterwards
``jax.devices()`` lists the devices of every process, a ``Mesh`` over them spans
the job, each process loads only its own rows (``process_slice``) and
``host_local_to_global`` assembles them into global arrays sharded over the
mesh. The library's losses, metrics and CV grids then reduce over all processes
with no change (global sums, never means of per-process means).

On one CPU host the same code path runs with several local processes that talk
over gloo TCP collectives, which is how ``launch_local`` rehearses a cluster job.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "ENV_COORDINATOR_ADDRESS",
    "ENV_LOCAL_DEVICES",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "ProcessInfo",
    "data_mesh",
    "host_local_to_global",
    "initialize",
    "process_slice",
]

# The environment variables ``initialize`` reads when an argument is not given.
# The address variable is also JAX's own (jax.distributed.initialize reads it).
ENV_COORDINATOR_ADDRESS = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
# JAX's own name for the ``jax_num_cpu_devices`` option: CPU devices per process.
ENV_LOCAL_DEVICES = "JAX_NUM_CPU_DEVICES"


class ProcessInfo(NamedTuple):
  """Where this process stands in the job, as ``initialize`` left it.

  Attributes:
    process_index: This process's id, ``0 .. process_count - 1``.
    process_count: Number of processes in the job (1 when not distributed).
    local_device_count: Devices this process drives.
    device_count: Devices of all processes together.
    coordinator_address: ``host:port`` of the coordinator, or None for a
      single process that did not start the distributed runtime.
  """

  process_index: int
  process_count: int
  local_device_count: int
  device_count: int
  coordinator_address: str | None


def _env_int(name: str) -> int | None:
  raw = os.environ.get(name)
  if raw is None or raw == "":
    return None
  try:
    return int(raw)
  except ValueError:
    raise ValueError(f"environment variable {name} must be an int, got {raw!r}.") from None


def _backends_started() -> bool:
  # The backends are created lazily on the first device query or computation,
  # after which the distributed runtime and the CPU device count can no longer
  # be set. JAX has no public query for this; the private one has been stable.
  from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  return xla_bridge.backends_are_initialized()


_coordinator: list[str] = []  # the address this module initialized with, if any


def _info() -> ProcessInfo:
  return ProcessInfo(jax.process_index(), jax.process_count(), jax.local_device_count(),
                     jax.device_count(), _coordinator[0] if _coordinator else None)


def _exit_after(hook):
  """``hook`` (which prints the traceback), then an immediate exit with status 1."""

  def excepthook(exc_type, exc, tb):
    try:
      hook(exc_type, exc, tb)
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      # Skips the atexit handlers, among them JAX's distributed shutdown
      # barrier, which would wait for processes that wait for this one.
      os._exit(1)  # pylint: disable=protected-access

  return excepthook


def initialize(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_count: int | None = None,
    initialization_timeout: int = 60,
    exit_on_error: bool = True,
) -> ProcessInfo:
  """Joins this process to a multi-process JAX job (or stays alone).

  Call it first, before any other JAX work. Each argument left as None is read
  from the environment: ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
  ``JAX_PROCESS_ID`` and ``JAX_NUM_CPU_DEVICES`` (what ``launch_local`` and
  ``python -m lossreg_jax.distributed`` set). With a coordinator address and a
  process count above 1 it calls ``jax.distributed.initialize``; cross-process
  collectives on CPU use gloo over TCP (``jax_cpu_collectives_implementation``),
  on GPU and TPU the platform's own. With none of them set the process runs
  alone and nothing is started, so the same script also runs as one process.
  ``local_device_count`` splits this process's CPU into that many XLA devices
  (``jax_num_cpu_devices``, the same as
  ``--xla_force_host_platform_device_count``); it has no effect on GPU or TPU
  devices. On TPU pods and SLURM clusters, where JAX detects the job itself,
  call ``jax.distributed.initialize()`` directly.

  With ``exit_on_error`` (the default) an uncaught exception in a process of a
  multi-process job prints its traceback and ends the process at once
  (``os._exit(1)``). Otherwise JAX's exit handler would wait for the other
  processes at a shutdown barrier (up to 5 minutes) while they wait for this
  one in a collective, and the job would hang instead of failing. End a
  process with an exception, not ``sys.exit``, for the same reason.

  Calling it again once the job is set up returns the same ``ProcessInfo``.

  Args:
    coordinator_address: ``host:port`` of process 0's coordinator service,
      reachable by every process.
    num_processes: Number of processes in the job.
    process_id: This process's id in ``0 .. num_processes - 1``.
    local_device_count: CPU devices for this process (None: JAX's default).
    initialization_timeout: Seconds to wait for every process to connect
      before failing (JAX's default is 300; a missing process should fail a
      rehearsal quickly).
    exit_on_error: In a multi-process job, end the process right after an
      uncaught exception's traceback (installs a ``sys.excepthook``).

  Returns:
    A ``ProcessInfo(process_index, process_count, local_device_count,
    device_count, coordinator_address)``.

  Raises:
    ValueError: for a process count below 1, a process id outside
      ``[0, num_processes)``, a count above 1 without a coordinator address,
      a non-positive ``local_device_count`` or a non-int environment value.
    RuntimeError: when JAX already ran a computation (or listed its devices)
      in this process, so the job can no longer be set up.

  Examples:
    Alone (no coordinator in the environment) nothing is started:

    >>> info = initialize()
    >>> info.process_index, info.process_count
    (0, 1)
  """
  address = coordinator_address or os.environ.get(ENV_COORDINATOR_ADDRESS) or None
  count = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
  pid = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
  local = local_device_count if local_device_count is not None else _env_int(ENV_LOCAL_DEVICES)
  if count is None:
    count = 1
  if count < 1:
    raise ValueError(f"num_processes must be >= 1, got {count}.")
  if pid is None:
    pid = 0 if count == 1 else None
  if pid is None or not 0 <= pid < count:
    raise ValueError(f"process_id must be an int in [0, num_processes={count}), got {pid!r} "
                     f"(argument or {ENV_PROCESS_ID}).")
  if count > 1 and not address:
    raise ValueError(f"num_processes={count} needs a coordinator_address 'host:port' "
                     f"(argument or {ENV_COORDINATOR_ADDRESS}).")
  if local is not None and local < 1:
    raise ValueError(f"local_device_count must be >= 1, got {local}.")
  if jax.distributed.is_initialized():
    info = _info()
    if (info.process_count, info.process_index) != (count, pid) and count > 1:
      raise RuntimeError(f"jax.distributed is already initialized as process "
                         f"{info.process_index} of {info.process_count}, not {pid} of {count}.")
    return info
  if _backends_started():
    if count == 1 and local in (None, jax.local_device_count()):
      return _info()
    raise RuntimeError(
        "initialize must run before any other JAX work in the process: JAX has already "
        "created its devices (a computation or jax.devices() ran), so the job size and the "
        "CPU device count can no longer change.")
  if local is not None:
    jax.config.update("jax_num_cpu_devices", int(local))
  if count > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=address, num_processes=count,
                               process_id=pid, initialization_timeout=initialization_timeout)
    _coordinator[:] = [address]
    if exit_on_error:
      sys.excepthook = _exit_after(sys.excepthook)
  return _info()


def data_mesh(*, axis_name: str = "data") -> Mesh:
  """A 1-axis mesh over every device of every process, in process order.

  Process 0's devices come first, so with ``P(axis_name)`` process ``i``'s
  devices hold the ``i``-th contiguous block of rows, which is the block
  ``process_slice`` names.

  Args:
    axis_name: Name of the mesh axis.

  Returns:
    A ``jax.sharding.Mesh`` of shape ``(jax.device_count(),)``.

  Examples:
    >>> mesh = data_mesh()
    >>> mesh.axis_names, mesh.size == jax.device_count()
    (('data',), True)
  """
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(np.array(devices), (axis_name,))


def process_slice(n_rows: int, *, sharding: jax.sharding.Sharding | None = None) -> slice:
  """The rows of a global batch that this process loads.

  Without ``sharding`` the ``n_rows`` are split into ``jax.process_count()``
  equal contiguous blocks and this process gets block ``jax.process_index()``.
  With a ``sharding`` (e.g. ``NamedSharding(data_mesh(), P("data"))``) the
  block is the rows that sharding puts on this process's devices, so loading
  exactly those rows is what ``host_local_to_global`` expects.

  Args:
    n_rows: Rows of the global batch.
    sharding: How the global batch will be laid out over the devices.

  Returns:
    A ``slice(start, stop)`` into the global rows.

  Raises:
    ValueError: when ``n_rows`` does not split evenly over the processes (or
      the sharding's devices), or when the sharding gives this process rows
      that are not one contiguous block.

  Examples:
    >>> process_slice(8)  # one process: every row
    slice(0, 8, None)
  """
  if not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
    raise ValueError(f"n_rows must be a positive int, got {n_rows!r}.")
  if sharding is None:
    count, index = jax.process_count(), jax.process_index()
    if n_rows % count:
      raise ValueError(f"n_rows={n_rows} must be a multiple of the process count {count}.")
    block = n_rows // count
    return slice(index * block, (index + 1) * block)
  n_shards = len(sharding.device_set)
  try:
    index_map = sharding.addressable_devices_indices_map((int(n_rows),))
  except ValueError as error:
    raise ValueError(f"n_rows={n_rows} does not split evenly over the sharding's {n_shards} "
                     f"devices: {error}") from None
  rows = sorted({(s[0].indices(n_rows)[0], s[0].indices(n_rows)[1])
                 for s in index_map.values()})
  start, stop = rows[0][0], rows[0][1]
  for lo, hi in rows[1:]:
    if lo != stop:
      raise ValueError(f"the sharding gives process {jax.process_index()} the rows {rows}, not "
                       f"one contiguous block; build the mesh with data_mesh().")
    stop = hi
  return slice(start, stop)


def host_local_to_global(local: Any, mesh: Mesh, *, axis_name: str | None = None) -> Any:
  """Assembles every process's rows into global arrays sharded along the rows.

  Each leaf of ``local`` holds this process's rows (``process_slice``); the
  result's leaves are global ``jax.Array``s whose first axis, the concatenation
  of all processes' rows, is split over ``axis_name`` of ``mesh``
  (``jax.make_array_from_process_local_data`` with ``P(axis_name)``). With one
  process it is ``jax.device_put`` onto the same sharding.

  Args:
    local: A pytree of arrays, each with this process's rows on its first axis.
    mesh: The mesh to shard over, e.g. ``data_mesh()``.
    axis_name: The mesh axis along which the rows are split (default: the
      mesh's only axis).

  Returns:
    The same pytree of global arrays, each of ``process_count`` times the
    local rows (for equal local shares).

  Raises:
    ValueError: for a mesh with several axes and no ``axis_name``, or a leaf
      without a row axis.

  Examples:
    >>> mesh = data_mesh()
    >>> batch = host_local_to_global({"x": np.ones((4, 3), np.float32)}, mesh)
    >>> batch["x"].shape, batch["x"].sharding.spec == PartitionSpec("data")
    ((4, 3), True)
  """
  if axis_name is None:
    if len(mesh.axis_names) != 1:
      raise ValueError(f"mesh has axes {mesh.axis_names}: name the row axis with axis_name=.")
    axis_name = mesh.axis_names[0]
  sharding = NamedSharding(mesh, PartitionSpec(axis_name))

  def to_global(x):
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    if x.ndim == 0:
      raise ValueError(f"every leaf needs a row axis to shard, got a scalar {x!r}.")
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree.map(to_global, local)
