"""An output folder that appears whole or not at all.

A report is a set of files (``report.md``, ``results.json``, plots) that only
make sense together. :func:`atomic_folder` writes them into a hidden sibling
folder and swaps it in for the target at the end, so an error or a Ctrl-C
while writing leaves the previous report exactly as it was, and a finished run
replaces the previous report as a whole (a ``path`` run's plots never stay
beside a later ``compare`` report).

A target folder that holds anything besides report files (those listed in
the hidden manifest a report writes, or the names reports have always used)
is left untouched and the run is refused with a message, so a user's own
files are never deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator

__all__ = ["MANIFEST", "REPORT_FILES", "atomic_folder", "check_out_dir", "discard_pending"]

# A hidden file listing the files of the report written with it.
MANIFEST = ".lossreg-jax-report"
# The names a report of this package held before manifests existed. A folder
# holding only these and the files its manifest lists (all plain files) is a
# previous report and may be replaced as a whole.
REPORT_FILES = frozenset({
    "report.md", "results.json", "metrics.png", "train_loss.png", "coef_path.png",
    "cv_curve.png",
})

# Temporary folders being written by this process, for discard_pending().
_PENDING: set[Path] = set()


def check_out_dir(out_dir: str | Path) -> Path:
  """Checks that ``out_dir`` can receive a report; returns it as a ``Path``.

  Nothing is created. ``out_dir`` may be missing (it is created later, with
  its parents), an empty folder, or a folder holding a previous report (the
  files its manifest lists, or those of :data:`REPORT_FILES`).

  Args:
    out_dir: The folder a report is about to be written to.

  Returns:
    ``Path(out_dir)``.

  Raises:
    ValueError: naming ``out_dir`` if it is a file, lies under a file, or
      holds something that is not a report file (listed in the message).

  Examples:
    >>> import tempfile, pathlib
    >>> check_out_dir(pathlib.Path(tempfile.mkdtemp()) / "new").name
    'new'
  """
  out = Path(out_dir)
  if Path.cwd().resolve().is_relative_to(out.resolve()):
    raise ValueError(f"out_dir {str(out)!r} holds the current folder; give a folder below it.")
  for parent in reversed((out, *out.parents)):
    if parent.exists() and not parent.is_dir():
      where = "is a file" if parent == out else f"is under {str(parent)!r}, which is a file"
      raise ValueError(f"out_dir {str(out)!r} {where}; give a folder path.")
  if out.is_dir():
    ours = REPORT_FILES | {MANIFEST}
    if (out / MANIFEST).is_file() and not (out / MANIFEST).is_symlink():
      ours |= set((out / MANIFEST).read_text().split("\n"))
    foreign = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                     if p.name not in ours or p.is_symlink() or not p.is_file())
    if foreign:
      shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                        else "")
      raise ValueError(
          f"out_dir {str(out)!r} holds {shown}, which a report does not write; it is left "
          f"untouched. Give a new or empty folder, or one holding only a previous report.")
  if not os.access(out if out.is_dir() else _existing_parent(out), os.W_OK):
    raise ValueError(f"out_dir {str(out)!r} is not writable.")
  return out


def _existing_parent(path: Path) -> Path:
  for parent in path.absolute().parents:
    if parent.exists():
      return parent
  return Path("/")


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
  """Holds SIGINT back until the block ends, so a swap is never cut in half.

  The Python-level handler is swapped, not the thread's signal mask: XLA's
  threads would still take a process-directed SIGINT and have the main thread
  run the handler.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received = []
  previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
      previous(signal.SIGINT, received[0])


@contextlib.contextmanager
def atomic_folder(out_dir: str | Path) -> Iterator[Path]:
  """Yields an empty temporary folder that replaces ``out_dir`` on success.

  The temporary folder is a hidden sibling of ``out_dir`` (same file system,
  so the swap is two renames, done with SIGINT held back). If the body raises
  (an error, ``KeyboardInterrupt``), the temporary folder is removed and
  ``out_dir`` is left as it was.

  Args:
    out_dir: The folder to fill; see :func:`check_out_dir` for what it may be.

  Yields:
    The temporary folder to write into.

  Raises:
    ValueError: from :func:`check_out_dir`, before anything is written.

  Examples:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
    >>> with atomic_folder(out) as tmp:
    ...   _ = (tmp / "report.md").write_text("# hello")
    >>> sorted(p.name for p in out.iterdir())
    ['.lossreg-jax-report', 'report.md']
  """
  out = check_out_dir(out_dir)
  if out.is_symlink():  # swap the folder it points to; the link keeps pointing there
    out = out.resolve()
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
  _PENDING.add(tmp)
  try:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0o700 would outlive the swap
    yield tmp
    names = sorted(p.name for p in tmp.iterdir())
    (tmp / MANIFEST).write_text("\n".join(names) + "\n")
    check_out_dir(out)  # the folder may have changed while we were writing
    with _sigint_deferred():
      old = None
      if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old)  # `old` is an empty folder: rename(2) replaces it
      os.replace(tmp, out)
      _PENDING.discard(tmp)
      if old is not None:
        shutil.rmtree(old, ignore_errors=True)
  finally:
    if tmp in _PENDING:
      _PENDING.discard(tmp)
      shutil.rmtree(tmp, ignore_errors=True)


def discard_pending() -> None:
  """Removes the temporary folders of unfinished :func:`atomic_folder` calls.

  For a signal handler that ends the process without unwinding the stack.

  Examples:
    >>> discard_pending()
  """
  for tmp in list(_PENDING):
    _PENDING.discard(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
