"""Large-vocabulary cross-entropy: chunked (ours) vs optax on materialized logits.

Times ``jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))`` (gradients with
respect to ``hidden`` and ``weight``) of
``lossreg_jax.losses.linear_softmax_cross_entropy`` with both strategies
(``"tokens"``: fused, token-chunked, 3 matmuls; ``"vocab"``: vocabulary-chunked,
4 matmuls) and of ``optax.losses.softmax_cross_entropy_with_integer_labels(
hidden @ weight, labels).mean()`` in one process, alternating them. It also
reports each compiled program's temporary memory (``memory_analysis()``) and,
where the device reports it (GPU), the allocator's peak bytes in use after each
one first ran. The peak counter never goes down within a process, so each
figure is the peak of everything run so far: ours run first (tokens, then
vocab), so optax's larger peak does not hide theirs; vocab's figure is a true
peak only where it exceeds tokens'.

Usage::

  python benchmarks/large_vocab.py                # sizes for the backend (below)
  python benchmarks/large_vocab.py --n 1024 --d 256 --v 32768 --chunk-size 4096

Without size flags, an accelerator runs the H200 configuration (N=8192, D=4096,
V=131072, bfloat16) and a CPU a small one (N=2048, D=64, V=8192, float32) that
finishes in seconds.

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

__all__ = ["run", "format_table", "main", "default_sizes"]


def _peak_bytes() -> int | None:
  stats = jax.local_devices()[0].memory_stats()
  return None if not stats else stats.get("peak_bytes_in_use")


def _time(fn, args) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


# Default sizes per backend: the H200 configuration, and a small one for CPUs.
ACCELERATOR_SIZES = dict(n=8192, d=4096, v=131072, dtype="bfloat16")
CPU_SIZES = dict(n=2048, d=64, v=8192, dtype="float32")


def default_sizes(backend: str | None = None) -> dict:
  """``CPU_SIZES`` on a CPU backend, else ``ACCELERATOR_SIZES``."""
  backend = jax.default_backend() if backend is None else backend
  return dict(CPU_SIZES if backend == "cpu" else ACCELERATOR_SIZES)


def run(
    n: int = 8192,
    d: int = 4096,
    v: int = 131072,
    chunk_size: int | None = None,
    dtype: str = "bfloat16",
    repeats: int = 5,
    token_chunk_size: int | None = None,
) -> dict:
  """Times forward + backward of both our strategies and of optax on materialized logits.

  Args:
    n: Tokens (rows of ``hidden``).
    d: Hidden size.
    v: Vocabulary size.
    chunk_size: The ``"vocab"`` strategy's vocabulary chunk (``None``: automatic).
    dtype: Input dtype of ``hidden`` and ``weight`` (``"bfloat16"``,
      ``"float16"`` or ``"float32"``).
    repeats: Timed calls of each after one warm-up call.
    token_chunk_size: The ``"tokens"`` strategy's token chunk (``None``: automatic).

  Returns:
    A dict with the shapes and, for each of ``tokens``, ``vocab`` and
    ``optax``: ``<name>_s`` (median seconds), ``<name>_tflops`` (6·N·D·V matmul
    FLOPs per second), ``<name>_temp_bytes`` (compiled temporary memory),
    ``<name>_peak_bytes`` (device peak so far after it ran, ``None`` where not
    reported), ``<name>_loss``; ``<name>_ratio`` (optax_s / <name>_s) and
    ``<name>_loss_rel_diff`` for ours; ``logits_bytes`` (N·V·4); ``rows`` (the
    table's rows as dicts). The ``ours_*`` keys, ``ratio`` and
    ``loss_rel_diff`` repeat the default strategy's (``"tokens"``).
  """
  dt = jnp.dtype(dtype)
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  hidden = jax.random.normal(k1, (n, d), jnp.float32).astype(dt)
  weight = (jax.random.normal(k2, (d, v), jnp.float32) / d**0.5).astype(dt)
  labels = jax.random.randint(k3, (n,), 0, v)
  args = (hidden, weight, labels)
  jax.block_until_ready(args)

  def tokens(h, w, y):
    return losses.linear_softmax_cross_entropy(h, w, y, strategy="tokens",
                                               token_chunk_size=token_chunk_size)

  def vocab(h, w, y):
    return losses.linear_softmax_cross_entropy(h, w, y, strategy="vocab", chunk_size=chunk_size)

  def materialized(h, w, y):
    return optax.losses.softmax_cross_entropy_with_integer_labels(h @ w, y).mean()

  result = dict(n=n, d=d, v=v, chunk_size=chunk_size, token_chunk_size=token_chunk_size,
                dtype=str(dt), repeats=repeats, logits_bytes=n * v * 4,
                backend=jax.default_backend())
  fns = {}
  for name, loss in (("tokens", tokens), ("vocab", vocab), ("optax", materialized)):
    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(*args).compile()
    mem = compiled.memory_analysis()
    if isinstance(mem, (list, tuple)):  # some jax versions: one entry per device
      mem = mem[0] if mem else None
    result[f"{name}_temp_bytes"] = None if mem is None else int(mem.temp_size_in_bytes)
    value, _ = jax.block_until_ready(compiled(*args))  # warm-up
    result[f"{name}_loss"] = float(value)
    result[f"{name}_peak_bytes"] = _peak_bytes()  # ours first: see the module doc
    fns[name] = compiled
  times = {name: [] for name in fns}
  for _ in range(repeats):  # alternate so all see the same machine load
    for name, fn in fns.items():
      times[name].append(_time(fn, args))
  flops = 6 * n * d * v  # forward matmul + the two gradient matmuls
  for name in fns:
    sec = statistics.median(times[name])
    result[f"{name}_s"] = sec
    result[f"{name}_tflops"] = flops / sec / 1e12
  for name in ("tokens", "vocab"):
    result[f"{name}_ratio"] = result["optax_s"] / result[f"{name}_s"]
    result[f"{name}_loss_rel_diff"] = abs(result[f"{name}_loss"] - result["optax_loss"]) / max(
        abs(result["optax_loss"]), 1e-30)
  for key in ("s", "tflops", "temp_bytes", "peak_bytes", "loss"):  # the default strategy
    result[f"ours_{key}"] = result[f"tokens_{key}"]
  result["ratio"] = result["tokens_ratio"]
  result["loss_rel_diff"] = result["tokens_loss_rel_diff"]
  result["rows"] = [
      dict(name=label, ms=1e3 * result[f"{key}_s"], tflops=result[f"{key}_tflops"],
           temp_bytes=result[f"{key}_temp_bytes"], peak_bytes=result[f"{key}_peak_bytes"],
           loss=result[f"{key}_loss"])
      for key, label in _ROWS]
  return result


_ROWS = (("tokens", "ours (tokens)"), ("vocab", "ours (vocab)"), ("optax", "optax"))


def _mib(x) -> str:
  return "n/a" if x is None else f"{x / 2**20:.1f}"


def format_table(r: dict) -> str:
  """Formats ``run``'s dict as a text table."""
  token_chunk = r.get("token_chunk_size") or "auto"
  lines = [
      f"large vocab: hidden ({r['n']}, {r['d']}) @ weight ({r['d']}, {r['v']}) {r['dtype']}, "
      f"vocab chunk {r.get('chunk_size') or 'auto'}, token chunk {token_chunk}, "
      f"logits (f32) {_mib(r['logits_bytes'])} MiB",
      f"{'':<14} {'ms':>10} {'TFLOP/s':>9} {'temp MiB':>10} {'peak MiB':>10} {'loss':>12}",
  ]
  for key, label in _ROWS:
    lines.append(
        f"{label:<14} {1e3 * r[key + '_s']:10.2f} {r[key + '_tflops']:9.3f} "
        f"{_mib(r[key + '_temp_bytes']):>10} {_mib(r[key + '_peak_bytes']):>10} "
        f"{r[key + '_loss']:12.6f}")
  for key, label in _ROWS[:2]:
    lines.append(f"{label}: optax/ours time {r[key + '_ratio']:.2f}x, "
                 f"loss rel diff {r[key + '_loss_rel_diff']:.2e}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--n", type=int, default=None, help="tokens (default: per backend)")
  p.add_argument("--d", type=int, default=None, help="hidden size (default: per backend)")
  p.add_argument("--v", type=int, default=None, help="vocabulary (default: per backend)")
  p.add_argument("--chunk-size", type=int, default=None, help="vocab chunk (default: auto)")
  p.add_argument("--dtype", default=None, help="input dtype (default: per backend)")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--token-chunk-size", type=int, default=None)
  a = p.parse_args(argv)
  print(f"jax {jax.__version__}, optax {optax.__version__}, devices {jax.devices()}")
  sizes = default_sizes()
  sizes.update({k: getattr(a, k) for k in sizes if getattr(a, k) is not None})
  r = run(**sizes, chunk_size=a.chunk_size, repeats=a.repeats,
          token_chunk_size=a.token_chunk_size)
  print(format_table(r))
  return r


if __name__ == "__main__":
  main()
