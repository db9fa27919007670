"""The one benchmark entry point: every side-by-side comparison in one process.

Sections (``--only`` picks some, comma- or space-separated):

* ``copy``: measured device memory bandwidth, the best of a few memory-bound
  kernels over ``n`` float32 (a plain copy, a donated ``x + 1``, ``a + b``; see
  ``copy_bandwidth``). Always run when ``losses`` is, since their bandwidth is
  reported as a share of it.
* ``losses``: value-and-grad of every elementwise loss vs optax
  (``benchmarks/losses.py``), with GB/s and the share of copy bandwidth.
* ``large_vocab``: chunked large-vocabulary cross-entropy vs optax on
  materialized logits, time and memory (``benchmarks/large_vocab.py``).
* ``linear``: ``elastic_net_cv`` vs scikit-learn (``benchmarks/linear.py``).

``large_vocab`` runs first when selected: the device's peak-memory counter only
grows within a process, so its peak figures are only meaningful before the
multi-GiB elementwise arrays exist. A section that fails (a missing script, an
out-of-memory error) is recorded as an error and the others still run; the JSON
file is rewritten after every section, so a run cut short keeps what finished.

Usage::

  python -m benchmarks.run --size small            # CPU-friendly, < 2 minutes
  python -m benchmarks.run --size full --json bench.json   # the GPU shapes
  python -m benchmarks.run --only losses,large_vocab
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import statistics
import sys
import time
import traceback

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the repo importable
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp

__all__ = ["SIZES", "SECTIONS", "run_all", "format_report", "main"]

SECTIONS = ("losses", "large_vocab", "linear")
_ORDER = ("large_vocab", "copy", "losses", "linear")  # execution order, see module doc

# Per-section options for each --size. "full" is the GPU shapes: 2**30
# float32 elements for the elementwise losses (4 GiB per input), and
# (8192, 4096) @ (4096, 131072) bfloat16 for the large vocabulary.
SIZES = {
    "small": dict(
        copy=dict(n=2**24, repeats=10),
        losses=dict(n=2**20, repeats=5),
        large_vocab=dict(n=1024, d=256, v=32768, chunk_size=4096, dtype="bfloat16",
                         repeats=3),
        linear=dict(size="small", repeats=3),
    ),
    "full": dict(
        copy=dict(n=2**30, repeats=20),
        losses=dict(n=2**30, repeats=10),
        large_vocab=dict(n=8192, d=4096, v=131072, chunk_size=8192, dtype="bfloat16",
                         repeats=5),
        linear=dict(size="full", repeats=3),
    ),
}


def _import(name: str):
  """Imports ``benchmarks.<name>``; raises ImportError with a readable reason."""
  try:
    return importlib.import_module(f"benchmarks.{name}")
  except ModuleNotFoundError as e:
    if e.name in (f"benchmarks.{name}", "benchmarks"):
      raise ImportError(f"benchmarks/{name}.py is missing") from None
    raise


def _call_with_supported(fn, options: dict):
  """Calls ``fn`` with the options its signature accepts (the scripts evolve)."""
  params = inspect.signature(fn).parameters
  if any(p.kind is p.VAR_KEYWORD for p in params.values()):
    return fn(**options)
  return fn(**{k: v for k, v in options.items() if k in params})


def _median_seconds(fn, repeats: int) -> float:
  """Median wall time of ``fn()`` (which blocks) over ``repeats`` calls after a warm-up."""
  fn()  # compile + warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def copy_bandwidth(n: int, repeats: int = 10) -> dict:
  """Measures device memory bandwidth with a few memory-bound kernels on ``n`` float32.

  Kernels, each with the bytes it must move per call:

  * ``copy``: a jitted ``jnp.copy(x)`` into a new buffer (``2·n·4`` bytes; XLA
    emits a device-to-device copy);
  * ``x + 1 (donated)``: the input buffer is donated, so the output may reuse
    it, as an in-place update (``2·n·4`` bytes);
  * ``a + b``: two inputs, one output (``3·n·4`` bytes), the read-heavy mix of a
    loss's value and gradient.

  The highest GB/s is the reference ("copy bandwidth") for the losses' share:
  no single kernel reaches the device's peak on every backend.

  Returns:
    ``n``, ``kernel`` (the best one's name), its ``bytes``, median ``seconds``
    and ``gbps``, and ``kernels``: one such dict per kernel.
  """
  nbytes = n * 4
  kernels = []

  def record(name, moved, sec):
    kernels.append(dict(name=name, bytes=moved, seconds=sec, gbps=moved / sec / 1e9))

  x = jnp.zeros((n,), jnp.float32)
  copy = jax.jit(jnp.copy)
  record("copy", 2 * nbytes, _median_seconds(lambda: jax.block_until_ready(copy(x)), repeats))
  del x

  step = jax.jit(lambda x: x + 1, donate_argnums=0)
  state = [jnp.zeros((n,), jnp.float32)]

  def donated():
    state[0] = jax.block_until_ready(step(state[0]))

  record("x + 1 (donated)", 2 * nbytes, _median_seconds(donated, repeats))
  del state[0]

  a, b = jnp.zeros((n,), jnp.float32), jnp.ones((n,), jnp.float32)
  add = jax.jit(jnp.add)
  record("a + b", 3 * nbytes, _median_seconds(lambda: jax.block_until_ready(add(a, b)), repeats))
  del a, b

  best = max(kernels, key=lambda k: k["gbps"])
  return dict(n=n, kernel=best["name"], bytes=best["bytes"], seconds=best["seconds"],
              gbps=best["gbps"], kernels=kernels)


def _is_oom(err: BaseException) -> bool:
  text = str(err)
  return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def _run_losses(opts: dict, copy: dict | None) -> dict:
  mod = _import("losses")
  n, note = opts["n"], None
  try:
    rows = _call_with_supported(mod.run, opts)
  except Exception as e:  # noqa: BLE001 - retry smaller once on out-of-memory
    if not _is_oom(e):
      raise
    note = f"n={n} ran out of device memory; reran with n={n // 4}"
    n = n // 4
    rows = _call_with_supported(mod.run, {**opts, "n": n})
  for r in rows:
    r["ours_gbps"] = r["bytes"] / r["ours_s"] / 1e9
    base = r.get("baseline_s", r.get("optax_s"))
    r["baseline_gbps"] = None if base is None else r["bytes"] / base / 1e9
    if copy and copy.get("gbps"):
      r["ours_copy_share"] = r["ours_gbps"] / copy["gbps"]
      r["baseline_copy_share"] = (None if r["baseline_gbps"] is None
                                  else r["baseline_gbps"] / copy["gbps"])
  return dict(n=n, note=note, rows=rows)


def _run_large_vocab(opts: dict) -> dict:
  return _call_with_supported(_import("large_vocab").run, opts)


def _run_linear(opts: dict) -> dict:
  mod = _import("linear")
  return _call_with_supported(mod.run, opts)


def _environment() -> dict:
  import optax  # noqa: PLC0415
  env = dict(python=platform.python_version(), jax=jax.__version__, optax=optax.__version__,
             backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
             host=platform.node())
  try:
    import sklearn  # noqa: PLC0415
    env["sklearn"] = sklearn.__version__
  except ImportError:
    env["sklearn"] = None
  return env


def run_all(size: str = "small", only=None, json_path: str | None = None,
            log=print) -> dict:
  """Runs the selected sections; returns (and optionally writes) the results dict.

  Args:
    size: ``"small"`` or ``"full"`` (see ``SIZES``).
    only: Iterable of section names (default: all of ``SECTIONS``).
    json_path: Where to write the results as JSON after every section.
    log: Called with progress lines.

  Returns:
    ``{"size", "environment", "sections": {name: {"seconds", "result"} or
    {"seconds", "error", "traceback"}}}``.
  """
  selected = list(SECTIONS if not only else only)
  unknown = [s for s in selected if s not in SECTIONS + ("copy",)]
  if unknown:
    raise ValueError(f"--only must name sections among {', '.join(SECTIONS)}; got {unknown}")
  if "losses" in selected and "copy" not in selected:
    selected.append("copy")
  options = SIZES[size]
  report = dict(size=size, options=options, environment=_environment(), sections={})

  def save():
    if json_path:
      with open(json_path, "w") as f:
        json.dump(report, f, indent=1, default=str)

  save()
  for name in [s for s in _ORDER if s in selected]:
    log(f"[bench] {name} ({size}) ...")
    start = time.perf_counter()
    try:
      if name == "copy":
        result = copy_bandwidth(**options["copy"])
      elif name == "losses":
        copy = report["sections"].get("copy", {}).get("result")
        result = _run_losses(options["losses"], copy)
      elif name == "large_vocab":
        result = _run_large_vocab(options["large_vocab"])
      else:
        result = _run_linear(options["linear"])
      entry = dict(result=result)
    except Exception as e:  # noqa: BLE001 - a failed section must not stop the others
      entry = dict(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    entry["seconds"] = time.perf_counter() - start
    report["sections"][name] = entry
    log(f"[bench] {name} done in {entry['seconds']:.1f} s"
        + (f": ERROR {entry['error']}" if "error" in entry else ""))
    save()
  return report


def _gb(x) -> str:
  return "n/a" if x is None else f"{x:.1f}"


def _pct(x) -> str:
  return "n/a" if x is None else f"{100 * x:.0f}%"


def _format_losses(res: dict, copy: dict | None) -> str:
  lines = []
  if copy:
    lines.append(f"copy bandwidth: {copy['gbps']:.1f} GB/s (best of the kernels below, "
                 f"{copy['n']} float32 each)")
    for k in copy.get("kernels", ()):
      lines.append(f"  {k['name']:<16} {1e3 * k['seconds']:9.3f} ms {k['gbps']:9.1f} GB/s")
  if res.get("note"):
    lines.append(f"note: {res['note']}")
  head = (f"{'loss':<36} {'shape':>16} {'ours ms':>9} {'base ms':>9} {'base':>8} "
          f"{'base/ours':>9} {'ours GB/s':>9} {'% copy':>7} {'base GB/s':>9} {'% copy':>7}")
  lines += [head, "-" * len(head)]
  for r in res["rows"]:
    base_s = r.get("baseline_s", r.get("optax_s"))
    lines.append(
        f"{r['name']:<36} {str(tuple(r.get('shape', ()))):>16} {1e3 * r['ours_s']:9.3f} "
        f"{'n/a' if base_s is None else f'{1e3 * base_s:9.3f}':>9} "
        f"{str(r.get('baseline', 'optax')):>8} {r.get('ratio', float('nan')):9.2f} "
        f"{_gb(r['ours_gbps']):>9} {_pct(r.get('ours_copy_share')):>7} "
        f"{_gb(r['baseline_gbps']):>9} {_pct(r.get('baseline_copy_share')):>7}")
  return "\n".join(lines)


def _format_generic(res) -> str:
  if isinstance(res, dict):
    return "\n".join(f"  {k}: {v}" for k, v in res.items())
  return f"  {res}"


def format_report(report: dict) -> str:
  """Formats ``run_all``'s dict as plain-text tables, one per section."""
  env = report["environment"]
  out = [f"lossreg_jax benchmarks, size={report['size']}: jax {env['jax']}, optax "
         f"{env['optax']}, scikit-learn {env['sklearn']}, backend {env['backend']}, "
         f"devices {', '.join(env['devices'])}"]
  sections = report["sections"]
  copy = sections.get("copy", {}).get("result")
  for name in ("copy",) + SECTIONS:
    entry = sections.get(name)
    losses_ok = "result" in sections.get("losses", {})
    if entry is None or (name == "copy" and losses_ok and "error" not in entry):
      continue  # copy is printed with the losses table
    out.append(f"\n== {name} ({entry['seconds']:.1f} s)")
    if "error" in entry:
      out.append(f"  FAILED: {entry['error']}")
      continue
    res = entry["result"]
    try:
      if name == "copy":
        out.append(f"copy bandwidth: {res['gbps']:.1f} GB/s")
      elif name == "losses":
        out.append(_format_losses(res, copy))
      elif name == "large_vocab":
        out.append(_import("large_vocab").format_table(res))
      else:
        mod = _import("linear")
        fmt = getattr(mod, "format_table", None)
        out.append(fmt(res) if fmt else _format_generic(res))
    except Exception as e:  # noqa: BLE001 - the raw result is still in the JSON
      out.append(f"  (could not format: {type(e).__name__}: {e})\n{_format_generic(res)}")
  return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
  """Parses ``argv``, runs, prints the tables; returns 1 if any section failed."""
  p = argparse.ArgumentParser(prog="python -m benchmarks.run",
                              description=__doc__.splitlines()[0])
  p.add_argument("--size", choices=tuple(SIZES), default="small",
                 help="small: CPU-friendly (< 2 min); full: the GPU shapes")
  p.add_argument("--only", nargs="+", metavar="NAME",
                 help=f"sections to run, comma- or space-separated, among {', '.join(SECTIONS)}")
  p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
  a = p.parse_args(argv)
  only = None if not a.only else [s for item in a.only for s in item.split(",") if s]
  try:
    report = run_all(a.size, only, a.json, log=lambda s: print(s, flush=True))
  except ValueError as e:
    p.error(str(e))
  print(format_report(report), flush=True)
  if a.json:
    print(f"\nwrote {a.json}")
  return int(any("error" in e for e in report["sections"].values()))


if __name__ == "__main__":
  sys.exit(main())
