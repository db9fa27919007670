"""Run by tests/test_distributed.py as every process of a local multi-process job.

``launch_local`` starts it as 2 processes x 2 CPU devices (gloo collectives) and
as 1 process x 1 device (the reference). Each process calls
``distributed.initialize()`` first, reads ONLY its own rows of the data files
(memory-mapped ``.npy`` files, ``process_slice``), assembles global arrays over a
mesh of every process's devices and computes, with everything jitted:

* every loss's value and gradient with ``weights`` and ``where`` under the
  ``mean`` and ``weighted_mean`` reductions (plus ``class_weights``, a
  statistic of the global labels);
* the parameters after STEPS steps of a ``training.make_train_step`` step on a
  Flax NNX model whose state is replicated over the mesh;
* ``elastic_net_cv`` (float64) with the folds x alphas grid split over the mesh;
* metrics of process-local predictions;
* ``experiments.compare_losses`` with its folds split over every device of
  every process.

Each process prints one line ``RESULT {json}``; the test compares every
process's line with the single-process one. ``main`` sets process-wide JAX
options, so pytest never collects this file; the test imports it only for the
driver side (``write_data``, ``run_both``), which does no JAX work itself.
``python tests/distributed_cases.py --compare`` runs both jobs and prints the
largest differences and each process's timings.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np

N, C, F = 64, 5, 8  # rows (a multiple of 4 devices), classes, features
STEPS = 30
CV, N_ALPHAS, CV_ROWS = 4, 12, 440


def write_data(directory) -> None:
  """Writes the global data set as one ``.npy`` file per array (NumPy only)."""
  from sklearn.datasets import load_diabetes  # pylint: disable=import-outside-toplevel

  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  f = lambda *s: rng.normal(size=s).astype(np.float32)
  xy = rng.uniform(0, 10, size=(N, 2)).astype(np.float32)
  wh = rng.uniform(0.5, 5, size=(N, 2)).astype(np.float32)
  boxes_a = np.concatenate([xy, xy + wh], -1)
  int_labels = rng.integers(0, C, size=(N,)).astype(np.int32)
  X_cv, y_cv = load_diabetes(return_X_y=True)
  arrays = dict(
      pred=f(N, 3), target=f(N, 3), logits=f(N, C),
      probs=rng.uniform(0.01, 0.99, size=(N, 3)).astype(np.float32),
      bin_labels=rng.integers(0, 2, size=(N, 3)).astype(np.float32),
      int_labels=int_labels, onehot=np.eye(C, dtype=np.float32)[int_labels],
      weights=rng.uniform(0.1, 2.0, size=(N, 1)).astype(np.float32),
      weights1=rng.uniform(0.1, 2.0, size=(N,)).astype(np.float32),
      where=rng.uniform(size=(N, 1)) > 0.3, where1=rng.uniform(size=(N,)) > 0.3,
      boxes_a=boxes_a, boxes_b=boxes_a + rng.normal(scale=0.5, size=(N, 4)).astype(np.float32),
      hidden=f(N, 16),
      # The training batch: features and binary targets that depend on them.
      features=f(N, F),
      scores=f(N), bin_int=rng.integers(0, 2, size=(N,)).astype(np.int32),
      pred_int=np.where(rng.uniform(size=N) < 0.6, int_labels,
                        rng.integers(0, C, size=N)).astype(np.int32),
      # Diabetes' first 440 rows (a multiple of 4): the elastic_net_cv data.
      X_cv=X_cv[:CV_ROWS], y_cv=y_cv[:CV_ROWS],
  )
  arrays["train_targets"] = (arrays["features"] @ np.linspace(-1, 1, F) > 0).astype(np.float32)
  arrays["reg_pred"] = arrays["pred"][:, 0] + 0.5 * arrays["target"][:, 0]
  for name, value in arrays.items():
    np.save(directory / f"{name}.npy", value)


# linear_softmax_cross_entropy's vocabulary matrix: the same in every process
# (not split by rows; a replicated input of the jitted program).
VOCAB_SEED = 1


def _loss_cases(losses, d, vocab_weight):
  """(name, fn, differentiated input, other inputs, options), for every loss."""
  ew = dict(weights=d["weights"], where=d["where"])
  ew1 = dict(weights=d["weights1"], where=d["where1"])
  out = []
  for red in ("mean", "weighted_mean"):
    for name in ("squared_error", "absolute_error", "huber_loss", "smooth_l1_loss", "log_cosh",
                 "quantile_loss", "asymmetric_squared_error"):
      out.append((f"{name}/{red}", getattr(losses, name), d["pred"], (d["target"],), dict(ew, reduction=red)))
    out += [
        (f"binary_cross_entropy/{red}", losses.binary_cross_entropy, d["probs"], (d["bin_labels"],),
         dict(ew, reduction=red, positive_weight=3.0)),
        (f"sigmoid_binary_cross_entropy/{red}", losses.sigmoid_binary_cross_entropy, d["pred"],
         (d["bin_labels"],), dict(ew, reduction=red, positive_weight=3.0)),
        (f"sigmoid_focal_loss/{red}", losses.sigmoid_focal_loss, d["pred"], (d["bin_labels"],),
         dict(ew, reduction=red, alpha=0.25)),
        (f"hinge_loss/{red}", losses.hinge_loss, d["pred"], (2 * d["bin_labels"] - 1,), dict(ew, reduction=red)),
        (f"softmax_cross_entropy/{red}", losses.softmax_cross_entropy, d["logits"], (d["onehot"],),
         dict(ew1, reduction=red, label_smoothing=0.1)),
        (f"categorical_cross_entropy/{red}", losses.categorical_cross_entropy, d["probs_c"], (d["onehot"],),
         dict(ew1, reduction=red)),
        (f"softmax_cross_entropy_with_integer_labels/{red}", losses.softmax_cross_entropy_with_integer_labels,
         d["logits"], (d["int_labels"],), dict(ew1, reduction=red, class_weights=np.arange(1.0, C + 1.0, dtype=np.float32))),
        (f"linear_softmax_cross_entropy/{red}", losses.linear_softmax_cross_entropy, d["hidden"],
         (vocab_weight, d["int_labels"]), dict(ew1, reduction=red, chunk_size=16)),
    ]
    for box in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss"):
      out.append((f"{box}/{red}", getattr(losses, box), d["boxes_b"], (d["boxes_a"],), dict(ew1, reduction=red)))
  return out


def _metric_cases(metrics, d):
  kw = dict(weights=d["weights1"], where=d["where1"])
  out = [("accuracy", metrics.accuracy, (d["pred_int"], d["int_labels"]), kw),
         ("confusion_matrix", metrics.confusion_matrix, (d["pred_int"], d["int_labels"]), dict(kw, num_classes=C)),
         ("roc_auc", metrics.roc_auc, (d["scores"], d["bin_int"]), kw)]
  for avg in ("micro", "macro", "weighted"):
    for name in ("precision", "recall", "f1_score"):
      out.append((f"{name}/{avg}", getattr(metrics, name), (d["pred_int"], d["int_labels"]),
                  dict(kw, num_classes=C, average=avg)))
    out.append((f"fbeta_score/{avg}", metrics.fbeta_score, (d["pred_int"], d["int_labels"]),
                dict(kw, num_classes=C, average=avg, beta=2.0)))
  # Regression metrics, where the metrics module has them.
  for name in ("mean_squared_error", "mean_absolute_error", "r2_score"):
    if name in metrics.__all__:
      out.append((name, getattr(metrics, name), (d["reg_pred"], d["target"][:, 0]), kw))
  return out


def main(data_dir: str) -> None:
  start = time.perf_counter()
  from lossreg_jax import distributed  # pylint: disable=import-outside-toplevel

  info = distributed.initialize()  # from the environment that launch_local sets
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=import-outside-toplevel

  from lossreg_jax import linear, losses, metrics, training  # pylint: disable=import-outside-toplevel

  jax.config.update("jax_numpy_rank_promotion", "raise")  # as the test suite
  mesh = distributed.data_mesh()
  replicated = NamedSharding(mesh, P())
  data_dir = pathlib.Path(data_dir)

  def load(name):  # only this process's rows are read from disk
    arr = np.load(data_dir / f"{name}.npy", mmap_mode="r")
    return np.ascontiguousarray(arr[distributed.process_slice(arr.shape[0])])

  names = [p.stem for p in sorted(data_dir.glob("*.npy")) if not p.stem.endswith("_cv")]
  local = {name: load(name) for name in names}
  local["probs_c"] = np.asarray(jax.nn.softmax(local["logits"]))  # row-wise: local is exact
  d = distributed.host_local_to_global(local, mesh)
  vocab_weight = np.random.default_rng(VOCAB_SEED).normal(size=(16, C)).astype(np.float32)
  result = dict(process_index=info.process_index, process_count=info.process_count,
                device_count=info.device_count, local_rows=int(local["pred"].shape[0]),
                input_devices=len(d["pred"].sharding.device_set))

  seconds = {"start-up": time.perf_counter() - start}
  tick = time.perf_counter()
  # Losses: value and gradient of the differentiated input, all in one program.
  cases = _loss_cases(losses, d, vocab_weight)

  # Options that are arrays are inputs of the program; the others (reduction,
  # chunk sizes, ...) are static and closed over.
  static = [{k: v for k, v in o.items() if not hasattr(v, "shape")} for *_, o in cases]
  dynamic = [(x, rest, {k: v for k, v in o.items() if hasattr(v, "shape")})
             for _, _, x, rest, o in cases]

  @jax.jit
  def all_losses(dyn, labels):
    out = {}
    for (name, fn, *_), st, (x, rest, opts) in zip(cases, static, dyn):
      value, grad = jax.value_and_grad(lambda x, fn=fn, r=rest, o=opts, s=st: fn(x, *r, **o, **s))(x)
      out[name] = (value, grad)
    # A statistic of the global labels (class counts): no gradient to compare.
    out["class_weights/balanced"] = (losses.class_weights(labels, C), jnp.zeros(()))
    return jax.lax.with_sharding_constraint(out, replicated)

  loss_out = all_losses(dynamic, d["int_labels"])
  # The wrong way, for the test to tell apart: this process's own weighted mean
  # (a mean of these over processes is not the global weighted mean).
  result["local_only_weighted_mean"] = float(losses.squared_error(
      local["pred"], local["target"], weights=local["weights"], where=local["where"],
      reduction="weighted_mean"))
  row_slice = distributed.process_slice(N)
  result["row_slice"] = [row_slice.start, row_slice.stop]
  result["losses"] = {k: (np.asarray(v).tolist(), np.asarray(g).ravel().tolist())
                      for k, (v, g) in loss_out.items()}

  seconds["losses"], tick = time.perf_counter() - tick, time.perf_counter()
  # Metrics of process-local predictions (assembled above like every input).
  mcases = _metric_cases(metrics, d)
  mstatic = [{k: v for k, v in o.items() if not hasattr(v, "shape")} for *_, o in mcases]
  mdyn = [(a, {k: v for k, v in o.items() if hasattr(v, "shape")}) for _, _, a, o in mcases]

  @jax.jit
  def all_metrics(dyn):
    out = {name: fn(*a, **o, **s) for (name, fn, *_), s, (a, o) in zip(mcases, mstatic, dyn)}
    return jax.lax.with_sharding_constraint(out, replicated)

  result["metrics"] = {k: np.asarray(v).tolist() for k, v in all_metrics(mdyn).items()}

  seconds["metrics"], tick = time.perf_counter() - tick, time.perf_counter()
  # A data-parallel Flax NNX train step: replicated state, row-sharded batch.
  class MLP(nnx.Module):
    def __init__(self, *, rngs):
      self.hidden = nnx.Linear(F, 16, rngs=rngs)
      self.out = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
      return self.out(nnx.relu(self.hidden(x)))[:, 0]

  model = MLP(rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  nnx.update((model, optimizer), jax.device_put(nnx.state((model, optimizer)), replicated))
  step = training.make_train_step(
      lambda out, y, weights=None: losses.sigmoid_binary_cross_entropy(
          out, y, weights=weights, reduction="weighted_mean"))
  batch = {"inputs": d["features"], "targets": d["train_targets"], "weights": d["weights1"]}
  curve = [float(step(model, optimizer, batch)[0]) for _ in range(STEPS)]
  params = nnx.state(model, nnx.Param)
  result["train"] = dict(
      loss_curve=curve,
      params={jax.tree_util.keystr(path): np.asarray(leaf).ravel().tolist()
              for path, leaf in jax.tree_util.tree_leaves_with_path(params)},
      param_devices=len(jax.tree.leaves(params)[0].sharding.device_set))

  seconds["train"], tick = time.perf_counter() - tick, time.perf_counter()
  # elastic_net_cv in float64: each process reads its rows; the grid is split
  # over all devices of all processes.
  with jax.enable_x64(True):
    Xy = distributed.host_local_to_global({"X": load("X_cv"), "y": load("y_cv")}, mesh)
    cv = linear.elastic_net_cv(Xy["X"], Xy["y"], l1_ratio=0.5, cv=CV, n_alphas=N_ALPHAS,
                               tol=1e-8, max_iter=100_000, mesh=mesh)
    result["cv"] = {field: np.asarray(getattr(cv, field)).tolist() for field in cv._fields}
    result["cv_devices"] = len(cv.mse_path.sharding.device_set)
    result["cv_input_devices"] = len(Xy["X"].sharding.device_set)

  seconds["cv"] = time.perf_counter() - tick
  tick = time.perf_counter()
  # compare_losses: every process builds the same data, folds and keys from the
  # seed; the 6 folds are split over all devices of all processes.
  from lossreg_jax import experiments  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  Xc = rng.normal(size=(60, 3)).astype(np.float32)
  yc = (Xc[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(np.int32)
  res = experiments.compare_losses(Xc, yc, ["bce", "focal:gamma=0|2"],
                                   folds=3, repeats=2, epochs=2, hidden=4,
                                   learning_rate=0.05)
  result["compare"] = dict(devices=res.settings["devices"], scores={
      s: {m: np.asarray(v).tolist() for m, v in res.scores[s].items()} for s in res.specs})
  seconds["compare"] = time.perf_counter() - tick
  result["seconds"] = seconds
  print("RESULT " + json.dumps(result), flush=True)


def parse_results(launch_result) -> list[dict]:
  """The ``RESULT`` line of every process of a ``launch_local`` job, in order."""
  rows = []
  for i, out in enumerate(launch_result.stdout):
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if len(lines) != 1:
      raise AssertionError(f"process {i} printed {len(lines)} RESULT lines:\n{out[-2000:]}")
    rows.append(json.loads(lines[0][len("RESULT "):]))
  return rows


def run_both(data_dir, *, timeout: float) -> tuple[list[dict], dict]:
  """Runs this script as 2 processes x 2 devices and as 1 x 1, at the same time."""
  import concurrent.futures  # pylint: disable=import-outside-toplevel

  from lossreg_jax import distributed  # pylint: disable=import-outside-toplevel

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    multi = pool.submit(distributed.launch_local, __file__, num_processes=2, local_devices=2,
                        args=[data_dir], timeout=timeout)
    single = pool.submit(distributed.launch_local, __file__, num_processes=1, local_devices=1,
                         args=[data_dir], timeout=timeout)
    return parse_results(multi.result()), parse_results(single.result())[0]


def _diff(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))


def differences(multi: list[dict], single: dict) -> dict:
  """Largest absolute differences of the multi-process results from the single one."""
  out = {}
  for r in multi:
    p = f"process {r['process_index']}"
    out[f"{p}: loss values"] = max(_diff(r["losses"][k][0], v) for k, (v, _) in single["losses"].items())
    out[f"{p}: loss gradients"] = max(_diff(r["losses"][k][1], g) for k, (_, g) in single["losses"].items())
    out[f"{p}: metrics"] = max(_diff(r["metrics"][k], v) for k, v in single["metrics"].items())
    out[f"{p}: train params"] = max(_diff(r["train"]["params"][k], v)
                                    for k, v in single["train"]["params"].items())
    out[f"{p}: train loss curve"] = _diff(r["train"]["loss_curve"], single["train"]["loss_curve"])
    for field in single["cv"]:
      out[f"{p}: elastic_net_cv {field}"] = _diff(r["cv"][field], single["cv"][field])
  return out


def compare() -> None:
  """``python tests/distributed_cases.py --compare``: run both jobs, print the differences."""
  import tempfile  # pylint: disable=import-outside-toplevel

  with tempfile.TemporaryDirectory() as data_dir:
    write_data(data_dir)
    start = time.perf_counter()
    multi, single = run_both(data_dir, timeout=600)
    print(f"2 processes x 2 devices and 1 x 1 at once: {time.perf_counter() - start:.1f}s; "
          f"{len(single['losses'])} loss cases, {len(single['metrics'])} metrics, "
          f"{STEPS} train steps, elastic_net_cv cv={CV} x {N_ALPHAS} alphas")
    print(f"single-process elastic_net_cv alpha = {single['cv']['alpha']!r}")
    for name, value in differences(multi, single).items():
      print(f"  max |diff| {name}: {value:.3g}")
    wrong = np.mean([r["local_only_weighted_mean"] for r in multi])
    print(f"squared_error weighted_mean: global {single['losses']['squared_error/weighted_mean'][0]:.6f}, "
          f"mean of per-process means {wrong:.6f}")
    for r in multi + [single]:
      print(f"  process {r['process_index']}/{r['process_count']} seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items()))


if __name__ == "__main__":
  if sys.argv[1:] == ["--compare"]:
    compare()
  else:
    main(sys.argv[1])
