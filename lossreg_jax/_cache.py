"""The persistent XLA compilation cache of the ``lossreg-jax`` command.

Every new process compiles its programs again: ``lossreg-jax compare`` on the
default data spends most of its time in XLA compilation. JAX can keep compiled
executables on disk (``jax_compilation_cache_dir``) and load them in the next
process. Its defaults only keep programs that took at least one second to
compile, which leaves out most CPU programs of this library, so the command
lowers both thresholds (``jax_persistent_cache_min_compile_time_secs = 0``,
``jax_persistent_cache_min_entry_size_bytes = -1``).

Where the folder is: ``$LOSSREG_JAX_CACHE`` if set (``off``, ``0``, ``none``
or an empty value disable the cache), else ``$XDG_CACHE_HOME/lossreg_jax/xla``
(an absolute ``XDG_CACHE_HOME`` only, as the XDG base-directory specification
says), else ``~/.cache/lossreg_jax/xla``.

The cache never fails a run: a folder that cannot be created or written (a
read-only home, a file in the way) gives one warning line on stderr and the
run goes on without a cache. Concurrent runs are safe: the folder is created
with ``exist_ok``, and with ``filelock`` installed JAX takes a file lock around
each read and write of an entry (enabled by bounding the cache size, which
also keeps the folder from growing without end).

Library users get the same cache with two lines before their first ``jit``::

  jax.config.update("jax_compilation_cache_dir", "/path/to/cache")
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Mapping

__all__ = ["ENV_VAR", "cache_dir", "cache_stats", "configure_compilation_cache"]

ENV_VAR = "LOSSREG_JAX_CACHE"
_OFF = ("", "0", "off", "none", "false", "no")
# Bounding the size turns on JAX's LRU eviction, which is what takes the file
# lock (filelock) around every entry read and write: concurrent runs never see
# half-written entries.
_MAX_SIZE_BYTES = 2 << 30

_stats = {"hits": 0, "writes": 0}
_listening = False


def cache_dir(env: Mapping[str, str] | None = None) -> Path | None:
  """Returns the cache folder named by ``env`` (default ``os.environ``), or None if off.

  Args:
    env: Environment variables to read (``LOSSREG_JAX_CACHE``, ``XDG_CACHE_HOME``,
      ``HOME``); default ``os.environ``.

  Returns:
    The folder (not created here), or None when ``LOSSREG_JAX_CACHE`` turns the
    cache off.

  Examples:
    >>> cache_dir({"XDG_CACHE_HOME": "/var/cache/me"}).as_posix()
    '/var/cache/me/lossreg_jax/xla'
    >>> cache_dir({"LOSSREG_JAX_CACHE": "off"}) is None
    True
  """
  env = os.environ if env is None else env
  if ENV_VAR in env:
    value = env[ENV_VAR].strip()
    return None if value.lower() in _OFF else Path(value).expanduser()
  xdg = env.get("XDG_CACHE_HOME", "")
  if xdg and os.path.isabs(xdg):  # relative values are invalid and ignored (XDG spec)
    base = Path(xdg)
  else:
    home = env.get("HOME")
    base = (Path(home) if home else Path.home()) / ".cache"
  return base / "lossreg_jax" / "xla"


def _writable_folder(path: Path) -> str | None:
  """Creates ``path`` if needed and proves it writable; returns why not, or None."""
  try:
    path.mkdir(parents=True, exist_ok=True)  # exist_ok: a concurrent run may win the race
    fd, probe = tempfile.mkstemp(dir=path, prefix=".probe-")  # a unique name per process
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    return e.strerror or type(e).__name__
  return None


def _count(event: str, **kwargs) -> None:
  del kwargs
  if event == "/jax/compilation_cache/cache_hits":
    _stats["hits"] += 1
  elif event == "/jax/compilation_cache/cache_misses":  # recorded when an entry is written
    _stats["writes"] += 1


def cache_stats() -> dict[str, int]:
  """Returns this process's persistent-cache ``hits`` and ``writes`` so far.

  Counted from JAX's monitoring events once ``configure_compilation_cache`` has
  enabled the cache.

  Returns:
    ``{"hits": int, "writes": int}``.

  Examples:
    >>> sorted(cache_stats())
    ['hits', 'writes']
  """
  return dict(_stats)


def configure_compilation_cache(*, enabled: bool = True, env: Mapping[str, str] | None = None,
                                prog: str = "lossreg-jax") -> Path | None:
  """Turns on JAX's persistent compilation cache in the folder ``cache_dir(env)`` names.

  Call it before the first compilation that should be cached. A folder that
  cannot be created or written prints one warning line on stderr and returns
  None; the run goes on without a cache.

  Args:
    enabled: False (``--no-cache``) leaves JAX's configuration alone.
    env: Environment variables to read (default ``os.environ``).
    prog: Name that starts the warning line.

  Returns:
    The cache folder in use, or None when the cache is off.

  Examples:
    >>> configure_compilation_cache(enabled=False) is None
    True
  """
  global _listening
  import jax  # here, so that reading the folder's name does not import JAX
  if not enabled:
    return None
  path = cache_dir(env)
  if path is None:
    return None
  path = path.absolute()
  reason = _writable_folder(path)
  if reason is not None:
    print(f"{prog}: warning: compilation cache off ({path}: {reason})", file=sys.stderr)
    return None
  if jax.config.jax_compilation_cache_dir not in (None, str(path)):
    # JAX opens its cache folder once per process; a new folder needs a reset.
    from jax.experimental.compilation_cache import compilation_cache
    compilation_cache.reset_cache()
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size floor
  if importlib.util.find_spec("filelock") is not None:
    jax.config.update("jax_compilation_cache_max_size", _MAX_SIZE_BYTES)
  if not _listening:
    jax.monitoring.register_event_listener(_count)
    _listening = True
  return path
