"""Multi-process (multi-host) JAX jobs: start-up, per-process rows, a local launcher.

``initialize`` joins a process to the job (from arguments or the environment),
``data_mesh``, ``process_slice`` and ``host_local_to_global`` lay the rows of a
global batch out over every process's devices, and ``launch_local`` (also
``python -m lossreg_jax.distributed``) starts N processes on one machine to
rehearse a cluster job on a laptop.
"""

from lossreg_jax.distributed.launch import LaunchResult
from lossreg_jax.distributed.launch import ProcessFailedError
from lossreg_jax.distributed.launch import free_port
from lossreg_jax.distributed.launch import launch_local
from lossreg_jax.distributed.runtime import ENV_COORDINATOR_ADDRESS
from lossreg_jax.distributed.runtime import ENV_LOCAL_DEVICES
from lossreg_jax.distributed.runtime import ENV_NUM_PROCESSES
from lossreg_jax.distributed.runtime import ENV_PROCESS_ID
from lossreg_jax.distributed.runtime import ProcessInfo
from lossreg_jax.distributed.runtime import data_mesh
from lossreg_jax.distributed.runtime import host_local_to_global
from lossreg_jax.distributed.runtime import initialize
from lossreg_jax.distributed.runtime import process_slice

__all__ = [
    "ENV_COORDINATOR_ADDRESS",
    "ENV_LOCAL_DEVICES",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "LaunchResult",
    "ProcessFailedError",
    "ProcessInfo",
    "data_mesh",
    "free_port",
    "host_local_to_global",
    "initialize",
    "launch_local",
    "process_slice",
]
