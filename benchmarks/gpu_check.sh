#!/usr/bin/env bash
# One short GPU run of every benchmark at the full shapes, plus a quick
# on-device correctness check of the large-vocabulary loss.
#
# Run from the repository root on the GPU machine:
#   OUT=/some/dir bash benchmarks/gpu_check.sh
# Writes $OUT/bench_gpu.json (rewritten after every section, so a run cut short
# keeps what finished) and $OUT/bench_gpu.log. Total time: the benchmark is
# capped at 6 minutes and the check at 1 minute (typically ~2-3 minutes total).
# A failing step is reported and the next one still runs (no `set -e`).
set -uo pipefail

OUT="${OUT:-/tmp/lossreg_bench}"
mkdir -p "$OUT"
ROOT="$(pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
LOG="$OUT/bench_gpu.log"
SIZE="${BENCH_SIZE:-full}"  # BENCH_SIZE=small for a dry run on a CPU machine
PY="${PYTHON:-python3}"
: > "$LOG"

step() {  # step NAME TIMEOUT_S CMD...: runs CMD, tees its output, reports its status
  local name="$1" limit="$2"
  shift 2
  echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)" | tee -a "$LOG"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$LOG"
}

step "nvidia-smi -L" 30 nvidia-smi -L
step "versions" 60 "$PY" -c "
import jax, optax, sys
print(sys.version.split()[0], 'jax', jax.__version__, 'optax', optax.__version__)
print(jax.devices())
import lossreg_jax; print('lossreg_jax', lossreg_jax.__version__)"

step "benchmarks.run --size $SIZE" 360 \
  "$PY" -m benchmarks.run --size "$SIZE" --json "$OUT/bench_gpu.json"

# On-device correctness: value and both gradients of the chunked loss equal
# optax on materialized logits (float32, ragged last chunk), and bf16 is finite.
step "large_vocab GPU correctness" 60 "$PY" -c "
import jax, jax.numpy as jnp, numpy as np, optax
from lossreg_jax.losses import linear_softmax_cross_entropy as lsce
k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
s = int('${CHECK_SHRINK:-1}')  # CHECK_SHRINK=8 for a CPU dry run
n, d, v = 2048 // s, 512 // s, 50000 // s
h = jax.random.normal(k1, (n, d)); w = jax.random.normal(k2, (d, v)) / d**0.5
y = jax.random.randint(k3, (n,), 0, v)
ours = jax.jit(jax.value_and_grad(lambda h, w: lsce(h, w, y, chunk_size=8192), argnums=(0, 1)))
ref = jax.jit(jax.value_and_grad(lambda h, w: optax.losses.softmax_cross_entropy_with_integer_labels(
    jnp.dot(h, w, precision='highest'), y).mean(), argnums=(0, 1)))
with jax.default_matmul_precision('highest'):
  (a, (ah, aw)), (b, (bh, bw)) = ours(h, w), ref(h, w)
err = lambda p, q: float(jnp.max(jnp.abs(p - q)) / jnp.max(jnp.abs(q)))
print('f32 value rel err', abs(float(a - b)) / float(b), 'd_hidden', err(ah, bh), 'd_weight', err(aw, bw))
assert abs(float(a - b)) / float(b) < 1e-4 and err(ah, bh) < 1e-3 and err(aw, bw) < 1e-3
vb, (gh, gw) = jax.jit(jax.value_and_grad(lambda h, w: lsce(h, w, y, chunk_size=8192), argnums=(0, 1)))(
    h.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
print('bf16 value', float(vb), 'vs f32', float(b), 'finite grads',
      bool(jnp.all(jnp.isfinite(gh)) & jnp.all(jnp.isfinite(gw))))
assert bool(jnp.isfinite(vb)) and abs(float(vb) - float(b)) / float(b) < 2e-2
print('GPU correctness OK')"

echo "=== done; files in $OUT:" | tee -a "$LOG"
ls -l "$OUT" | tee -a "$LOG"
