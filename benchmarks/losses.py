"""Side-by-side timing of lossreg_jax's regression and classification losses vs optax.

Each row times ``jax.jit(jax.value_and_grad(loss))`` (mean reduction, gradient
with respect to the predictions / logits) of one of our losses and of optax's
equivalent on the same inputs, in one process, alternating the two so both see
the same machine load. Reported: the median time of each, ``ratio`` = optax /
ours (> 1 means ours is faster) and ``bytes`` = inputs read + gradient written,
so ``bytes / seconds`` is the achieved bandwidth.

A second section (``run_bce``) times sigmoid BCE's value-and-grad three ways in
one rotation: ours, the plain fused formula ``max(x, 0) − x·y +
log1p(exp(−|x|))`` by autodiff, and optax; it prints min and median of many
calls and the ratios (> 1: ours is faster). On a shared CPU the absolute
times swing by 2-3x between runs; compare the ratios, and rerun.

Usage::

  python benchmarks/losses.py [--n N] [--repeats R] [--bce-repeats B] [--bce-only]

or, from Python, ``from benchmarks.losses import run; rows = run(n=2**20)``.
Nothing here is run by the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import optax

from lossreg_jax import losses

__all__ = ["run", "run_bce", "format_table", "format_bce", "main"]

_NUM_CLASSES = 1000


def _time(fn: Callable, args: tuple) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def _keras_bce(p: jax.Array, y: jax.Array) -> jax.Array:
  """``keras.losses.binary_crossentropy`` on probabilities, written in jnp."""
  p = jnp.clip(p, 1e-7, 1 - 1e-7)
  return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p)).mean()


def _cases(n: int, key: jax.Array) -> list[tuple[str, Callable, Callable, str, Callable]]:
  """(name, ours, baseline, baseline name, make_args): inputs are made per case,
  so that only one case's arrays are alive at a time (large ``n`` on a GPU)."""
  k1, k2, k3 = jax.random.split(key, 3)
  rows = max(n // _NUM_CLASSES, 1)
  pred = lambda: jax.random.normal(k1, (n,), jnp.float32)
  target = lambda: jax.random.normal(k2, (n,), jnp.float32)
  labels01 = lambda: jax.random.bernoulli(k3, 0.3, (n,)).astype(jnp.float32)
  cls_logits = lambda: 3 * jax.random.normal(k1, (rows, _NUM_CLASSES), jnp.float32)
  int_labels = lambda: jax.random.randint(k3, (rows,), 0, _NUM_CLASSES)
  onehot = lambda: jax.nn.one_hot(int_labels(), _NUM_CLASSES, dtype=jnp.float32)
  ol = optax.losses
  return [
      ("squared_error", losses.squared_error,
       lambda p, t: ol.squared_error(p, t).mean(), "optax", lambda: (pred(), target())),
      ("absolute_error", losses.absolute_error,
       lambda p, t: jnp.abs(p - t).mean(), "jnp.abs", lambda: (pred(), target())),
      ("huber_loss", losses.huber_loss,
       lambda p, t: ol.huber_loss(p, t).mean(), "optax", lambda: (pred(), target())),
      ("smooth_l1_loss", losses.smooth_l1_loss,
       lambda p, t: ol.huber_loss(p, t, delta=1.0).mean(), "optax", lambda: (pred(), target())),
      ("quantile_loss[0.9]", partial(losses.quantile_loss, quantile=0.9),
       lambda p, t: jnp.maximum(0.9 * (t - p), -0.1 * (t - p)).mean(), "jnp",
       lambda: (pred(), target())),
      ("asymmetric_squared_error", losses.asymmetric_squared_error,
       lambda p, t: (jnp.where(p < t, 1.0, 0.1) * (t - p) ** 2).mean(), "jnp",
       lambda: (pred(), target())),
      ("log_cosh", losses.log_cosh,
       lambda p, t: ol.log_cosh(p, t).mean(), "optax", lambda: (pred(), target())),
      ("sigmoid_binary_cross_entropy", losses.sigmoid_binary_cross_entropy,
       lambda x, y: ol.sigmoid_binary_cross_entropy(x, y).mean(), "optax",
       lambda: (3 * pred(), labels01())),
      ("binary_cross_entropy", losses.binary_cross_entropy, _keras_bce, "keras",
       lambda: (jax.nn.sigmoid(3 * pred()), labels01())),
      ("sigmoid_focal_loss", losses.sigmoid_focal_loss,
       lambda x, y: ol.sigmoid_focal_loss(x, y).mean(), "optax",
       lambda: (3 * pred(), labels01())),
      ("hinge_loss", losses.hinge_loss,
       lambda p, t: ol.hinge_loss(p, t).mean(), "optax",
       lambda: (pred(), 2 * labels01() - 1)),
      (f"softmax_cross_entropy[{_NUM_CLASSES}]", losses.softmax_cross_entropy,
       lambda x, y: ol.softmax_cross_entropy(x, y).mean(), "optax",
       lambda: (cls_logits(), onehot())),
      (f"softmax_ce_integer_labels[{_NUM_CLASSES}]",
       losses.softmax_cross_entropy_with_integer_labels,
       lambda x, y: ol.softmax_cross_entropy_with_integer_labels(x, y).mean(), "optax",
       lambda: (cls_logits(), int_labels())),
  ]


def run(n: int = 2**22, repeats: int = 20) -> list[dict]:
  """Times value-and-grad of each loss and its optax equivalent on ``n`` elements.

  Args:
    n: Number of float32 elements of the predictions / logits (softmax losses
      use ``n // 1000`` rows of 1000 classes).
    repeats: Timed calls of each function after one warm-up call.

  Returns:
    One dict per loss with keys ``name``, ``shape``, ``baseline`` (what was
    compared), ``ours_s`` and ``baseline_s`` (median seconds), ``ratio``
    (baseline_s / ours_s) and ``bytes`` (inputs read + gradient written).
  """
  results = []
  for name, ours, base, base_name, make_args in _cases(n, jax.random.key(0)):
    args = jax.block_until_ready(make_args())
    f_ours = jax.jit(jax.value_and_grad(ours))
    f_base = jax.jit(jax.value_and_grad(base))
    _time(f_ours, args)  # compile + warm up
    _time(f_base, args)
    t_ours, t_base = [], []
    for _ in range(repeats):  # alternate so both see the same machine load
      t_ours.append(_time(f_ours, args))
      t_base.append(_time(f_base, args))
    ours_s, base_s = statistics.median(t_ours), statistics.median(t_base)
    nbytes = sum(a.nbytes for a in args) + args[0].nbytes
    results.append(dict(
        name=name, shape=tuple(args[0].shape), baseline=base_name, ours_s=ours_s,
        baseline_s=base_s, ratio=base_s / ours_s, bytes=nbytes))
    del args, f_ours, f_base
  return results


def _plain_fused_bce(x: jax.Array, y: jax.Array) -> jax.Array:
  """The textbook fused sigmoid BCE, ``max(x, 0) − x·y + log1p(exp(−|x|))``, by autodiff."""
  return (jnp.maximum(x, 0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x)))).mean()


def run_bce(n: int = 2**22, repeats: int = 50) -> dict:
  """Times sigmoid BCE's jitted value-and-grad: ours, the plain fused formula, optax.

  The three run in one process on the same inputs (logits ``3·N(0, 1)``, hard
  labels), in rotation so that all see the same machine load; reported are the
  minimum (the least disturbed run: this machine is shared) and the median of
  ``repeats`` calls each.

  Returns:
    A dict ``{"ours": (min_s, median_s), "plain": ..., "optax": ...}`` plus
    ``n`` and ``repeats``.
  """
  k1, k2 = jax.random.split(jax.random.key(1))
  args = jax.block_until_ready((3 * jax.random.normal(k1, (n,), jnp.float32),
                                jax.random.bernoulli(k2, 0.3, (n,)).astype(jnp.float32)))
  fns = {
      "ours": losses.sigmoid_binary_cross_entropy,
      "plain": _plain_fused_bce,
      "optax": lambda x, y: optax.losses.sigmoid_binary_cross_entropy(x, y).mean(),
  }
  jitted = {k: jax.jit(jax.value_and_grad(f)) for k, f in fns.items()}
  for f in jitted.values():  # compile + warm up
    _time(f, args)
    _time(f, args)
  times = {k: [] for k in jitted}
  for _ in range(repeats):
    for k, f in jitted.items():
      times[k].append(_time(f, args))
  out = {k: (min(t), statistics.median(t)) for k, t in times.items()}
  return dict(out, n=n, repeats=repeats)


def format_bce(r: dict) -> str:
  """Formats ``run_bce``'s result: times and the ratios the speed claim rests on."""
  lines = [f"sigmoid_binary_cross_entropy value_and_grad, n={r['n']}, "
           f"{r['repeats']} calls each (min / median ms)"]
  for k in ("ours", "plain", "optax"):
    lines.append(f"  {k:<6} {1e3 * r[k][0]:8.2f} {1e3 * r[k][1]:8.2f}")
  for k in ("plain", "optax"):
    lines.append(f"  {k}/ours: min {r[k][0] / r['ours'][0]:.3f}, "
                 f"median {r[k][1] / r['ours'][1]:.3f}  (> 1: ours is faster)")
  return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
  """Formats ``run``'s rows as a fixed-width text table."""
  head = (f"{'loss':<36} {'shape':>14} {'ours ms':>9} {'base ms':>9} "
          f"{'base':>8} {'base/ours':>9} {'ours GB/s':>9}")
  lines = [head, "-" * len(head)]
  for r in rows:
    lines.append(
        f"{r['name']:<36} {str(r['shape']):>14} {1e3 * r['ours_s']:9.2f} "
        f"{1e3 * r['baseline_s']:9.2f} {r['baseline']:>8} {r['ratio']:9.2f} "
        f"{r['bytes'] / r['ours_s'] / 1e9:9.2f}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=2**22, help="elements per input")
  parser.add_argument("--repeats", type=int, default=20, help="timed calls per loss")
  parser.add_argument("--bce-repeats", type=int, default=50,
                      help="timed calls of each sigmoid BCE variant")
  parser.add_argument("--bce-only", action="store_true",
                      help="only the sigmoid BCE comparison (ours, plain formula, optax)")
  args = parser.parse_args(argv)
  print(f"jax {jax.__version__}, optax {optax.__version__}, backend "
        f"{jax.default_backend()}, n={args.n}, repeats={args.repeats}")
  if not args.bce_only:
    print(format_table(run(n=args.n, repeats=args.repeats)))
  print(format_bce(run_bce(n=args.n, repeats=args.bce_repeats)))


if __name__ == "__main__":
  main()
