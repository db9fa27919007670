"""Large-vocabulary cross-entropy: chunked (ours) vs optax on materialized logits.

Times ``jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))`` (gradients with
respect to ``hidden`` and ``weight``) of
``lossreg_jax.losses.linear_softmax_cross_entropy`` and of
``optax.losses.softmax_cross_entropy_with_integer_labels(hidden @ weight,
labels).mean()`` in one process, alternating the two. It also reports each
compiled program's temporary memory (``memory_analysis()``) and, where the
device reports it (GPU), the allocator's peak bytes in use after each one ran.
Ours runs first, so its peak is not inflated by optax's (the peak counter never
goes down within a process).

Usage::

  python benchmarks/large_vocab.py --n 1024 --d 256 --v 32768 --chunk-size 4096

or ``from benchmarks.large_vocab import run; run(n=8192, d=4096, v=131072)``.
Nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # `python benchmarks/large_vocab.py`: make the repo importable
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import optax

from lossreg_jax import losses

__all__ = ["run", "format_table", "main"]


def _peak_bytes() -> int | None:
  stats = jax.local_devices()[0].memory_stats()
  return None if not stats else stats.get("peak_bytes_in_use")


def _time(fn, args) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def run(
    n: int = 8192,
    d: int = 4096,
    v: int = 131072,
    chunk_size: int = 8192,
    dtype: str = "bfloat16",
    repeats: int = 5,
) -> dict:
  """Times forward + backward of ours and of optax on materialized logits.

  Args:
    n: Tokens (rows of ``hidden``).
    d: Hidden size.
    v: Vocabulary size.
    chunk_size: Our vocabulary chunk.
    dtype: Input dtype of ``hidden`` and ``weight`` (``"bfloat16"``,
      ``"float16"`` or ``"float32"``).
    repeats: Timed calls of each after one warm-up call.

  Returns:
    A dict with the shapes, ``ours_s`` / ``optax_s`` (median seconds),
    ``ratio`` (optax_s / ours_s), ``*_tflops`` (6·N·D·V matmul FLOPs per second),
    ``*_temp_bytes`` (compiled temporary memory), ``*_peak_bytes`` (device peak
    after each ran, ``None`` where not reported), ``logits_bytes`` (N·V·4),
    ``ours_loss`` / ``optax_loss`` and their ``loss_rel_diff``.
  """
  dt = jnp.dtype(dtype)
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  hidden = jax.random.normal(k1, (n, d), jnp.float32).astype(dt)
  weight = (jax.random.normal(k2, (d, v), jnp.float32) / d**0.5).astype(dt)
  labels = jax.random.randint(k3, (n,), 0, v)
  args = (hidden, weight, labels)
  jax.block_until_ready(args)

  def ours(h, w, y):
    return losses.linear_softmax_cross_entropy(h, w, y, chunk_size=chunk_size)

  def materialized(h, w, y):
    return optax.losses.softmax_cross_entropy_with_integer_labels(h @ w, y).mean()

  result = dict(n=n, d=d, v=v, chunk_size=chunk_size, dtype=str(dt), repeats=repeats,
                logits_bytes=n * v * 4, backend=jax.default_backend())
  fns = {}
  for name, loss in (("ours", ours), ("optax", materialized)):
    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(*args).compile()
    mem = compiled.memory_analysis()
    if isinstance(mem, (list, tuple)):  # some jax versions: one entry per device
      mem = mem[0] if mem else None
    result[f"{name}_temp_bytes"] = None if mem is None else int(mem.temp_size_in_bytes)
    value, _ = jax.block_until_ready(compiled(*args))  # warm-up
    result[f"{name}_loss"] = float(value)
    result[f"{name}_peak_bytes"] = _peak_bytes()  # ours first: see the module doc
    fns[name] = compiled
  times = {"ours": [], "optax": []}
  for _ in range(repeats):  # alternate so both see the same machine load
    for name, fn in fns.items():
      times[name].append(_time(fn, args))
  flops = 6 * n * d * v  # forward matmul + the two gradient matmuls
  for name in fns:
    sec = statistics.median(times[name])
    result[f"{name}_s"] = sec
    result[f"{name}_tflops"] = flops / sec / 1e12
  result["ratio"] = result["optax_s"] / result["ours_s"]
  result["loss_rel_diff"] = abs(result["ours_loss"] - result["optax_loss"]) / max(
      abs(result["optax_loss"]), 1e-30)
  return result


def _mib(x) -> str:
  return "n/a" if x is None else f"{x / 2**20:.1f}"


def format_table(r: dict) -> str:
  """Formats ``run``'s dict as a text table."""
  lines = [
      f"large vocab: hidden ({r['n']}, {r['d']}) @ weight ({r['d']}, {r['v']}) {r['dtype']}, "
      f"chunk {r['chunk_size']}, logits (f32) {_mib(r['logits_bytes'])} MiB",
      f"{'':<8} {'ms':>10} {'TFLOP/s':>9} {'temp MiB':>10} {'peak MiB':>10} {'loss':>12}",
  ]
  for name in ("ours", "optax"):
    lines.append(
        f"{name:<8} {1e3 * r[name + '_s']:10.2f} {r[name + '_tflops']:9.3f} "
        f"{_mib(r[name + '_temp_bytes']):>10} {_mib(r[name + '_peak_bytes']):>10} "
        f"{r[name + '_loss']:12.6f}")
  lines.append(f"optax/ours time {r['ratio']:.2f}x, loss rel diff {r['loss_rel_diff']:.2e}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--n", type=int, default=8192)
  p.add_argument("--d", type=int, default=4096)
  p.add_argument("--v", type=int, default=131072)
  p.add_argument("--chunk-size", type=int, default=8192)
  p.add_argument("--dtype", default="bfloat16")
  p.add_argument("--repeats", type=int, default=5)
  a = p.parse_args(argv)
  print(f"jax {jax.__version__}, optax {optax.__version__}, devices {jax.devices()}")
  r = run(n=a.n, d=a.d, v=a.v, chunk_size=a.chunk_size, dtype=a.dtype, repeats=a.repeats)
  print(format_table(r))
  return r


if __name__ == "__main__":
  main()
