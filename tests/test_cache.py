"""Tests for the command's persistent compilation cache (lossreg_jax/_cache.py)."""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache

from lossreg_jax import _cache, cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def restore_jax_cache_config():
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes", "jax_compilation_cache_max_size")
  saved = {name: getattr(jax.config, name) for name in names}
  yield
  for name, value in saved.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()


def test_folder_rules():
  assert _cache.cache_dir({"LOSSREG_JAX_CACHE": "/x/y", "XDG_CACHE_HOME": "/c"}) == Path("/x/y")
  for off in ("", "off", "OFF", "0", "none"):
    assert _cache.cache_dir({"LOSSREG_JAX_CACHE": off, "XDG_CACHE_HOME": "/c"}) is None
  assert _cache.cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/lossreg_jax/xla")
  # A relative XDG_CACHE_HOME is invalid (XDG base-directory spec) and ignored.
  assert _cache.cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path(
      "/h/.cache/lossreg_jax/xla")
  assert _cache.cache_dir({"HOME": "/h"}) == Path("/h/.cache/lossreg_jax/xla")


def test_unwritable_folder_warns_once_and_turns_the_cache_off(
    tmp_path, capsys, restore_jax_cache_config):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  before = jax.config.jax_compilation_cache_dir
  got = _cache.configure_compilation_cache(env={"LOSSREG_JAX_CACHE": str(blocker / "cache")})
  err = capsys.readouterr().err
  assert got is None
  assert err.count("\n") == 1 and err.startswith("lossreg-jax: warning: compilation cache off")
  assert str(blocker / "cache") in err
  assert jax.config.jax_compilation_cache_dir == before  # JAX left alone


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders; the file-in-the-way test "
                           "covers the fallback")
def test_read_only_folder_warns_and_turns_the_cache_off(tmp_path, capsys,
                                                        restore_jax_cache_config):
  home = tmp_path / "home"
  home.mkdir()
  home.chmod(0o555)
  try:
    assert _cache.configure_compilation_cache(env={"HOME": str(home)}) is None
    assert "warning: compilation cache off" in capsys.readouterr().err
  finally:
    home.chmod(0o755)


def test_concurrent_runs_create_the_folder_without_failing(tmp_path):
  # Many runs creating the same fresh folder at once: every one must find it usable
  # (mkdir races are absorbed by exist_ok; each probe file has a unique name).
  folder = tmp_path / "a" / "b" / "cache"
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    reasons = list(pool.map(lambda _: _cache._writable_folder(folder), range(64)))
  assert reasons == [None] * 64
  assert list(folder.iterdir()) == []  # the probes are gone


def test_disabled_leaves_jax_alone(tmp_path, restore_jax_cache_config):
  before = jax.config.jax_compilation_cache_dir
  env = {"LOSSREG_JAX_CACHE": str(tmp_path / "c")}
  assert _cache.configure_compilation_cache(enabled=False, env=env) is None
  assert _cache.configure_compilation_cache(env={"LOSSREG_JAX_CACHE": "off"}) is None
  assert jax.config.jax_compilation_cache_dir == before
  assert not (tmp_path / "c").exists()


def test_enabled_cache_writes_small_cpu_programs(tmp_path, restore_jax_cache_config):
  folder = tmp_path / "new" / "cache"
  got = _cache.configure_compilation_cache(env={"LOSSREG_JAX_CACHE": str(folder)})
  assert got == folder and folder.is_dir()
  writes = _cache.cache_stats()["writes"]
  # A program no other test compiles; it compiles in milliseconds, below JAX's
  # default one-second threshold, so it is only written because of our settings.
  jax.jit(lambda x: jnp.sin(x) * 3.25 + 0.125)(jnp.arange(7.0)).block_until_ready()
  new = _cache.cache_stats()["writes"] - writes
  assert new >= 1
  assert sum(p.name.endswith("-cache") for p in folder.iterdir()) == new


def _compare_process(cache: Path, out: Path, *extra: str) -> dict:
  env = {**os.environ, "LOSSREG_JAX_CACHE": str(cache),
         "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
  proc = subprocess.run(
      [sys.executable, "-m", "lossreg_jax", "compare", "--loss", "bce", "--folds", "2",
       "--epochs", "1", "--hidden", "4", "--quiet", "--out", str(out), *extra],
      capture_output=True, text=True, env=env, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert "warning" not in proc.stderr
  return json.loads((out / "results.json").read_text())["context"]


@pytest.mark.slow
def test_second_compare_process_finds_cache_entries(tmp_path):
  cache = tmp_path / "cache"
  first = _compare_process(cache, tmp_path / "run1")
  entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
  second = _compare_process(cache, tmp_path / "run2")
  pattern = str(cache) + r" \((\d+) hits, (\d+) new entries\)"
  hits1, writes1 = map(int, re.fullmatch(pattern, first["compile cache"]).groups())
  hits2, writes2 = map(int, re.fullmatch(pattern, second["compile cache"]).groups())
  # A fresh folder: everything compiled. The report line is a snapshot taken
  # before the report's plots compile their few programs, hence <=.
  assert hits1 == 0 and 0 < writes1 <= len(entries)
  # The second process loads what the first wrote instead of compiling it.
  assert hits2 >= writes1 and writes2 == 0
  assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries


def test_no_cache_flag_parses_before_and_after_the_subcommand():
  parser = cli.build_parser()
  assert cli._defaults(parser.parse_args(["--no-cache", "compare"])).no_cache
  assert cli._defaults(parser.parse_args(["compare", "--no-cache"])).no_cache
  assert not cli._defaults(parser.parse_args(["compare"])).no_cache


@pytest.mark.parametrize("argv, enabled", [
    (["--no-cache", "compare"], False), (["compare", "--no-cache"], False), (["compare"], True),
    (["bench", "--only", "x"], False)])  # bench times compilation: never cached
def test_main_configures_the_cache_before_running(monkeypatch, capsys, argv, enabled):
  calls = []
  monkeypatch.setattr(_cache, "configure_compilation_cache",
                      lambda *, enabled, prog: calls.append(enabled))
  monkeypatch.setattr(cli, "_COMMANDS", {name: (lambda args: 0) for name in cli._COMMANDS})
  assert cli.main(argv) == 0
  assert calls == [enabled]
