"""A real multi-process JAX job on one host equals the single-process run.

``distributed_cases.py`` runs as 2 processes x 2 CPU devices that talk through
gloo collectives (the code path of a multi-host GPU/TPU job) and, at the same
time, as 1 process x 1 device; each process reads only its own rows. Losses
(values and gradients, with weights and where), metrics, a Flax NNX
data-parallel train step and ``elastic_net_cv`` over the 4 devices are compared
with the single-process run. The launcher's failure paths (a dying process, a
hang, bad arguments) are tested with tiny scripts.
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import distributed_cases as cases
from lossreg_jax import distributed, losses

SCRIPT = pathlib.Path(__file__).with_name("distributed_cases.py")
# Generous: the job takes ~20-30 s on 2 idle cores; this only stops a hang.
TIMEOUT = 300


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  data = tmp_path_factory.mktemp("distributed_data")
  cases.write_data(data)
  # Both jobs at once; each process prints one RESULT line (else this fails).
  return cases.run_both(data, timeout=TIMEOUT)


def _max_abs_diff(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  assert a.shape == b.shape, (a.shape, b.shape)
  return float(np.max(np.abs(a - b), initial=0.0))


@pytest.mark.slow
def test_two_processes_with_two_devices_each_read_half_the_rows(runs):
  multi, single = runs
  assert [r["process_index"] for r in multi] == [0, 1]
  assert single["process_count"] == 1 and single["device_count"] == 1
  assert single["row_slice"] == [0, cases.N]
  for i, r in enumerate(multi):
    assert r["process_count"] == 2 and r["device_count"] == 4
    assert r["local_rows"] == cases.N // 2
    assert r["row_slice"] == [i * cases.N // 2, (i + 1) * cases.N // 2]
    # Inputs, replicated parameters and the CV result span all 4 devices.
    assert r["input_devices"] == r["cv_input_devices"] == 4
    assert r["train"]["param_devices"] == r["cv_devices"] == 4


def _contract_losses():
  names = set()
  for name in losses.__all__:
    fn = getattr(losses, name)
    if inspect.isfunction(fn) and {"weights", "where", "reduction"} <= set(inspect.signature(fn).parameters):
      names.add(name)
  return names


@pytest.mark.slow
def test_every_loss_with_the_reduction_contract_is_compared(runs):
  _, single = runs
  for red in ("mean", "weighted_mean"):
    missing = {n for n in _contract_losses() if f"{n}/{red}" not in single["losses"]}
    assert not missing, (red, missing)


@pytest.mark.slow
def test_loss_values_and_gradients_equal_the_single_process_run(runs):
  multi, single = runs
  for r in multi:
    assert r["losses"].keys() == single["losses"].keys()
    for name, (value, grad) in single["losses"].items():
      got_value, got_grad = r["losses"][name]
      scale = max(1.0, float(np.max(np.abs(value))))
      # float32 sums in another order: a few ulps of the value.
      assert _max_abs_diff(got_value, value) <= 2e-6 * scale, (name, got_value, value)
      gscale = max(1.0, float(np.max(np.abs(grad), initial=0.0)))
      assert _max_abs_diff(got_grad, grad) <= 2e-6 * gscale, name


@pytest.mark.slow
def test_a_mean_of_per_process_means_would_have_been_caught(runs):
  # The comparison above has teeth: averaging each process's own weighted mean
  # (what a per-host loss followed by a plain average does) is far off.
  multi, single = runs
  wrong = np.mean([r["local_only_weighted_mean"] for r in multi])
  right = single["losses"]["squared_error/weighted_mean"][0]
  assert abs(wrong - right) > 1e-3 * abs(right), (wrong, right)


@pytest.mark.slow
def test_metrics_of_process_local_predictions_equal_the_single_process_run(runs):
  multi, single = runs
  assert len(single["metrics"]) >= 15
  for r in multi:
    for name, value in single["metrics"].items():
      assert _max_abs_diff(r["metrics"][name], value) <= 2e-6 * max(1.0, np.max(np.abs(value))), name


@pytest.mark.slow
def test_data_parallel_train_step_gives_the_single_process_parameters(runs):
  multi, single = runs
  curve = single["train"]["loss_curve"]
  assert len(curve) == cases.STEPS and curve[-1] < 0.7 * curve[0]  # it trained
  for r in multi:
    assert r["train"]["params"].keys() == single["train"]["params"].keys()
    for path, value in single["train"]["params"].items():
      assert _max_abs_diff(r["train"]["params"][path], value) <= 1e-5, path
    assert _max_abs_diff(r["train"]["loss_curve"], curve) <= 1e-5


@pytest.mark.slow
def test_elastic_net_cv_over_four_devices_of_two_processes_picks_the_same_alpha(runs):
  multi, single = runs
  ref = single["cv"]
  assert np.shape(ref["mse_path"]) == (cases.N_ALPHAS, cases.CV)
  for r in multi:
    got = r["cv"]
    # The selection and the grid are the same, not merely close.
    assert got["alpha"] == ref["alpha"] and got["l1_ratio"] == ref["l1_ratio"]
    assert got["alphas"] == ref["alphas"]
    for field in ("mse_path", "coef", "intercept"):
      scale = float(np.max(np.abs(ref[field])))
      assert _max_abs_diff(got[field], ref[field]) <= 1e-12 * scale, field


@pytest.mark.slow
def test_compare_losses_over_four_devices_of_two_processes_equals_one_device(runs):
  multi, single = runs
  assert single["compare"]["devices"] == 1
  ref = single["compare"]["scores"]
  for r in multi:
    assert r["compare"]["devices"] == 4  # 2 processes x 2 devices
    assert r["compare"]["scores"].keys() == ref.keys()
    for spec, metrics_ in ref.items():
      for m, value in metrics_.items():
        assert _max_abs_diff(r["compare"]["scores"][spec][m], value) <= 1e-5, (spec, m)


# ------------------------------------------------------------ the launcher


def _script(tmp_path, body):
  path = tmp_path / "job.py"
  path.write_text(textwrap.dedent(body))
  return path


@pytest.mark.slow
def test_a_dying_process_stops_the_job_and_reports_its_stderr(tmp_path):
  # Process 1 dies while process 0 waits for it in a collective. Without
  # initialize's exit_on_error process 1 would wait at JAX's shutdown barrier
  # and process 0 in the collective; without the launcher's check process 0
  # would hang until a JAX timeout.
  script = _script(tmp_path, """
      from lossreg_jax import distributed
      info = distributed.initialize()
      if info.process_index == 1:
        raise FileNotFoundError("process 1 lost its data")
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("never completes")
      print("process 0 went past the barrier")
      """)
  with pytest.raises(distributed.ProcessFailedError, match="process 1 of 2 exited") as info:
    distributed.launch_local(script, num_processes=2, local_devices=1, timeout=TIMEOUT)
  assert info.value.process_index == 1 and info.value.returncode == 1
  assert "FileNotFoundError: process 1 lost its data" in str(info.value)
  assert "went past the barrier" not in info.value.stdout[0]


@pytest.mark.slow
def test_a_job_past_its_timeout_is_stopped(tmp_path):
  script = _script(tmp_path, "import time\ntime.sleep(600)\n")
  with pytest.raises(distributed.ProcessFailedError, match="still running after timeout") as info:
    distributed.launch_local(script, num_processes=2, timeout=1.0)
  assert info.value.process_index is None


@pytest.mark.slow
def test_module_entry_point_runs_every_process_and_fails_loudly(tmp_path):
  ok = tmp_path / "ok.py"
  ok.write_text("import os, sys\nprint('rank', os.environ['JAX_PROCESS_ID'], 'of', "
                "os.environ['JAX_NUM_PROCESSES'], 'devices', os.environ['JAX_NUM_CPU_DEVICES'], "
                "*sys.argv[1:])\n")
  cmd = [sys.executable, "-m", "lossreg_jax.distributed", "--num-processes", "2",
         "--local-devices", "3", "--timeout", "120"]
  proc = subprocess.run([*cmd, "--", str(ok), "--flag", "x"], capture_output=True, text=True,
                        timeout=180, env=dict(os.environ), check=False)
  assert proc.returncode == 0, proc.stderr
  assert "[0] rank 0 of 2 devices 3 --flag x" in proc.stdout
  assert "[1] rank 1 of 2 devices 3 --flag x" in proc.stdout
  bad = tmp_path / "bad.py"
  bad.write_text("import os, sys\nif os.environ['JAX_PROCESS_ID'] == '1':\n"
                 "  sys.exit('no such file: shard-1.csv')\n")
  proc = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=180,
                        env=dict(os.environ), check=False)
  assert proc.returncode == 1
  assert "process 1 of 2 exited with status 1" in proc.stderr
  assert "no such file: shard-1.csv" in proc.stderr


def test_launch_local_checks_its_arguments(tmp_path):
  with pytest.raises(ValueError, match="num_processes must be an int >= 1, got 0"):
    distributed.launch_local(SCRIPT, num_processes=0)
  with pytest.raises(ValueError, match="local_devices must be an int >= 1"):
    distributed.launch_local(SCRIPT, local_devices=0)
  with pytest.raises(ValueError, match="timeout must be positive"):
    distributed.launch_local(SCRIPT, timeout=0)
  with pytest.raises(FileNotFoundError, match="missing.py"):
    distributed.launch_local(tmp_path / "missing.py")


# ------------------------------------------------- in this (single) process


def test_initialize_checks_arguments_and_environment(monkeypatch):
  for var in (distributed.ENV_COORDINATOR_ADDRESS, distributed.ENV_NUM_PROCESSES,
              distributed.ENV_PROCESS_ID, distributed.ENV_LOCAL_DEVICES):
    monkeypatch.delenv(var, raising=False)
  with pytest.raises(ValueError, match="num_processes must be >= 1, got 0"):
    distributed.initialize(num_processes=0)
  with pytest.raises(ValueError, match=r"process_id must be an int in \[0, num_processes=2\), got 2"):
    distributed.initialize(num_processes=2, process_id=2, coordinator_address="127.0.0.1:1")
  with pytest.raises(ValueError, match="process_id must be an int"):
    distributed.initialize(num_processes=2, coordinator_address="127.0.0.1:1")
  with pytest.raises(ValueError, match="needs a coordinator_address"):
    distributed.initialize(num_processes=2, process_id=0)
  with pytest.raises(ValueError, match="local_device_count must be >= 1, got 0"):
    distributed.initialize(local_device_count=0)
  monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "two")
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an int, got 'two'"):
    distributed.initialize()
  monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "2")
  monkeypatch.setenv(distributed.ENV_PROCESS_ID, "1")
  with pytest.raises(ValueError, match="JAX_COORDINATOR_ADDRESS"):
    distributed.initialize()


def test_initialize_after_jax_started_raises_instead_of_half_starting(monkeypatch):
  monkeypatch.delenv(distributed.ENV_NUM_PROCESSES, raising=False)
  jax.devices()  # the backends exist now
  with pytest.raises(RuntimeError, match="before any other JAX work"):
    distributed.initialize(num_processes=2, process_id=0, coordinator_address="127.0.0.1:1")
  info = distributed.initialize()  # alone: nothing to start, just the facts
  assert (info.process_index, info.process_count, info.device_count) == (0, 1, jax.device_count())


def test_process_slice_and_host_local_to_global_in_one_process():
  assert distributed.process_slice(6) == slice(0, 6)
  mesh = distributed.data_mesh(axis_name="rows")
  sharding = NamedSharding(mesh, P("rows"))
  assert distributed.process_slice(6 * mesh.size, sharding=sharding) == slice(0, 6 * mesh.size)
  with pytest.raises(ValueError, match="n_rows must be a positive int, got 0"):
    distributed.process_slice(0)
  x = np.arange(2.0 * mesh.size * 3).reshape(-1, 3).astype(np.float32)
  out = distributed.host_local_to_global({"x": x, "y": x[:, 0]}, mesh)
  np.testing.assert_array_equal(np.asarray(out["x"]), x)
  assert out["y"].sharding.spec == P("rows")
  with pytest.raises(ValueError, match="needs a row axis"):
    distributed.host_local_to_global(np.float32(1.0), mesh)
  with pytest.raises(ValueError, match="name the row axis"):
    distributed.host_local_to_global(x, jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("a", "b")))

