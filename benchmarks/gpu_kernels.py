"""GPU kernels of each elementwise loss's value-and-grad, read without a GPU.

For every elementwise case of ``benchmarks/losses.py`` (ours and the optax
baseline), compiles ``jax.jit(jax.value_and_grad(loss))`` at ``n`` float32
elements for an NVIDIA H200 through XLA's compile-only CUDA topology, then
reports the kernels XLA launched and, for the largest one, the SASS
instructions its hot loop spends per element (PTX assembled with ``ptxas``,
disassembled with ``nvdisasm``). A value-and-grad that reads its inputs once
needs one large kernel; past ~60-65 instructions per element it is bound by
instruction issue rather than memory on an H200 (see the README's Performance
section). This is static evidence; ``benchmarks/run.py`` on a GPU measures.

Setup, in a separate virtual environment (nothing here is a project
dependency)::

  pip install -e . "jax-cuda13-plugin==$JAXLIB" "jax-cuda13-pjrt==$JAXLIB" \\
      nvidia-cuda-nvdisasm
  # ptxas from a CUDA toolkit on PATH (or --ptxas); nvdisasm from the wheel

Usage::

  JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1 python benchmarks/gpu_kernels.py [--n N] [NAME ...]

The environment variable skips the plugin's cuDNN check, which needs a device.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

if __package__ in (None, ""):  # `python benchmarks/gpu_kernels.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

__all__ = ["H200_TARGET", "hot_loop", "main"]

# XLA's GpuTargetConfig for an H200 SXM (132 SMs, 4.8 TB/s, sm_90).
H200_TARGET = """
gpu_device_info {
  threads_per_block_limit: 1024 threads_per_warp: 32
  shared_memory_per_block: 49152 shared_memory_per_core: 233472
  threads_per_core_limit: 2048 core_count: 132 fpus_per_core: 128
  block_dim_limit_x: 2147483647 block_dim_limit_y: 65535 block_dim_limit_z: 65535
  memory_bandwidth: 4800000000000 l2_cache_size: 52428800 clock_rate_ghz: 1.98
  device_memory_size: 150000000000 shared_memory_per_block_optin: 232448
  cuda_compute_capability { major: 9 }
  registers_per_core_limit: 65536 registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info { major: 9 minor: 8 }
runtime_version { major: 13 minor: 0 }
device_description_str: "NVIDIA H200"
"""

_ADDR = re.compile(r"/\*([0-9a-f]{4,})\*/")


def _compile_case(name: str, n: int, dump: str) -> None:
  """Compiles one case's value-and-grad with XLA dumping into ``dump``."""
  os.environ["XLA_FLAGS"] = (f"--xla_dump_to={dump} --xla_dump_hlo_as_text "
                             "--xla_dump_hlo_pass_re=^$")
  import jax
  from jax.experimental import topologies

  from benchmarks.losses import _cases

  topo = topologies.get_topology_desc(platform="cuda", target_config=H200_TARGET,
                                      topology="1x1x1")
  mesh = topologies.make_mesh(topo, (1,), ("d",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  which, _, case = name.partition(":")
  for case_name, ours, base, _, make_args in _cases(n, jax.random.key(0)):
    if case_name == case:
      args = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding)
              for a in jax.eval_shape(make_args)]
      fn = ours if which == "ours" else base
      jax.jit(jax.value_and_grad(fn)).lower(*args).compile()
      return
  raise SystemExit(f"unknown case {case!r}")


def hot_loop(sass: str) -> list[str]:
  """The instructions of the longest backward-branching loop in ``sass``."""
  lines = sass.splitlines()
  labels = {}
  for i, line in enumerate(lines):
    m = re.match(r"\s*(\.L_x_\d+):", line)
    if m and i + 1 < len(lines) and _ADDR.search(lines[i + 1]):
      labels[m.group(1)] = int(_ADDR.search(lines[i + 1]).group(1), 16)
  code = [(int(_ADDR.search(l).group(1), 16), re.sub(r"^\s*/\*[0-9a-f]+\*/\s*", "", l)
           .split(";")[0].strip()) for l in lines if _ADDR.search(l)]
  best: list[str] = []
  for addr, ins in code:
    m = re.search(r"BRA `\((\.L_x_\d+)\)", ins)
    if m and m.group(1) in labels and labels[m.group(1)] < addr:
      body = [i for a, i in code if labels[m.group(1)] <= a <= addr]
      best = max(best, body, key=len)
  return best or [i for _, i in code]


def _analyse(dump: str, ptxas: str, nvdisasm: str, n_inputs: int) -> dict:
  thunks = open(glob.glob(f"{dump}/*thunk_sequence.txt")[0]).read()
  kernels = re.findall(r"kCustomKernel.*?\] (\S+) grid: \[(\d+)", thunks)
  main_kernel = max(kernels, key=lambda k: int(k[1]))[0]
  for ptx in glob.glob(f"{dump}/*.ptx"):
    if re.search(rf"\.entry {re.escape(main_kernel)}\b", open(ptx).read()):
      break
  else:
    raise RuntimeError(f"no PTX for {main_kernel}")
  cubin = os.path.join(dump, "main.cubin")
  subprocess.run([ptxas, "-arch=sm_90a", ptx, "-o", cubin], check=True)
  sass = subprocess.run([nvdisasm, "-c", cubin], check=True, capture_output=True,
                        text=True).stdout
  loop = hot_loop(sass)
  floats = sum(4 if ".128" in i else 2 if ".64" in i else 1 for i in loop if "LDG" in i)
  elements = floats / n_inputs  # each element loads one float of every input
  big = sum(int(g) >= 1024 for _, g in kernels)  # kernels that sweep whole arrays
  return dict(kernels=[k for k, _ in kernels], big=big, main=main_kernel,
              per_element=len(loop) / elements if elements else None)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("names", nargs="*", help="cases of benchmarks/losses.py "
                      "(default: all elementwise ones)")
  parser.add_argument("--n", type=int, default=2**30, help="elements per input")
  parser.add_argument("--ptxas", default=shutil.which("ptxas") or "ptxas")
  wheel = glob.glob(os.path.join(sys.prefix, "lib", "python*", "site-packages", "nvidia",
                                 "cu*", "bin", "nvdisasm"))  # pip nvidia-cuda-nvdisasm
  parser.add_argument("--nvdisasm", default=shutil.which("nvdisasm") or next(iter(wheel),
                                                                              "nvdisasm"))
  parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one compile
  parser.add_argument("--dump", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.case:
    _compile_case(args.case, args.n, args.dump)
    return
  if not args.names:  # every elementwise case (the softmax ones reduce rows)
    import jax

    from benchmarks.losses import _cases
    args.names = [c[0] for c in _cases(8, jax.random.key(0)) if not c[0].startswith("softmax")]
  print(f"{'loss':<30} {'impl':<6} {'kernels':>7} {'large':>5} {'SASS/elt':>9}  "
        "largest kernel (SASS/elt: its hot loop; base: benchmarks/losses.py's baseline)")
  for name in args.names:
    for which in ("ours", "base"):
      with tempfile.TemporaryDirectory() as dump:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--n", str(args.n),
                        "--case", f"{which}:{name}", "--dump", dump], check=True,
                       capture_output=True)
        r = _analyse(dump, args.ptxas, args.nvdisasm, n_inputs=2)
      per = f"{r['per_element']:9.1f}" if r["per_element"] else f"{'?':>9}"
      print(f"{name:<30} {which:<6} {len(r['kernels']):>7} {r['big']:>5} {per}  {r['main']}")


if __name__ == "__main__":
  main()
