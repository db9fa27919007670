"""Conventions checked over every public name (dm_pix-style convention test)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import lossreg_jax

NAMESPACES = ("losses", "regularizers", "linear", "metrics", "selection", "training", "experiments",
              "checks", "datasets", "distributed")

# optax-style transforms whose strengths may be positional (DESIGN.md, Conventions).
POSITIONAL_STRENGTHS = {
    "add_l1_decay": {"strength"},
    "add_elastic_net_decay": {"alpha", "l1_ratio"},
    "proximal_l1": {"learning_rate", "strength"},
    "proximal_elastic_net": {"learning_rate", "alpha", "l1_ratio"},
}


def _public_objects():
  for ns in NAMESPACES:
    module = getattr(lossreg_jax, ns)
    for name in module.__all__:
      yield f"{ns}.{name}", getattr(module, name)


PUBLIC = dict(_public_objects())
FUNCTIONS = {k: v for k, v in PUBLIC.items() if inspect.isfunction(v)}


def test_top_level_exposes_exactly_the_namespaces():
  assert sorted(lossreg_jax.__all__) == sorted(NAMESPACES)
  assert isinstance(lossreg_jax.__version__, str)


def _defined_publicly_in(obj, module_name):
  # Names a module defines itself (not helpers imported from private modules or
  # other namespaces) must be listed in its __all__.
  home = getattr(obj, "__module__", "") or ""
  return home.startswith(module_name) and not any(
      part.startswith("_") for part in home.split(".")[1:])


@pytest.mark.parametrize("ns", NAMESPACES)
def test_all_is_complete_and_resolves(ns):
  module = getattr(lossreg_jax, ns)
  assert module.__all__, f"lossreg_jax.{ns} exports nothing"
  assert len(set(module.__all__)) == len(module.__all__), "duplicate names in __all__"
  for name in module.__all__:
    assert hasattr(module, name), f"lossreg_jax.{ns}.__all__ names missing {name!r}"
  public_here = {
      n for n, obj in vars(module).items()
      if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
      and _defined_publicly_in(obj, module.__name__)
  }
  missing = public_here - set(module.__all__)
  assert not missing, f"public names of lossreg_jax.{ns} missing from __all__: {missing}"


def test_each_public_name_has_one_path():
  # The same object must not be public under two namespaces.
  seen = {}
  for path, obj in PUBLIC.items():
    if inspect.isfunction(obj) or inspect.isclass(obj):
      assert id(obj) not in seen, f"{path} is also public as {seen.get(id(obj))}"
      seen[id(obj)] = path


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_docstring_has_sections_and_example(path):
  obj = PUBLIC[path]
  if not (inspect.isfunction(obj) or inspect.isclass(obj)):
    return
  doc = inspect.getdoc(obj) or ""
  assert doc.strip(), f"{path} has no docstring"
  if inspect.isfunction(obj):
    assert "Args:" in doc or not inspect.signature(obj).parameters, f"{path}: no Args section"
    assert "Returns:" in doc, f"{path}: no Returns section"
    assert ">>>" in doc, f"{path}: no doctest example"


@pytest.mark.parametrize("path", sorted(FUNCTIONS))
def test_options_are_keyword_only(path):
  fn = FUNCTIONS[path]
  allowed = POSITIONAL_STRENGTHS.get(fn.__name__, set())
  for p in inspect.signature(fn).parameters.values():
    if p.default is not inspect.Parameter.empty and p.kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
      assert p.name in allowed, f"{path}: option {p.name!r} must be keyword-only"


@pytest.mark.parametrize("path", sorted(FUNCTIONS))
def test_randomness_takes_key_first(path):
  params = list(inspect.signature(FUNCTIONS[path]).parameters)
  assert "rng" not in params, f"{path}: name the random key `key`, not `rng`"
  sig = inspect.signature(FUNCTIONS[path])
  key = sig.parameters.get("key")
  if key is not None and key.kind is not inspect.Parameter.KEYWORD_ONLY:
    assert params[0] == "key", f"{path}: a positional `key` must be the first argument"


def test_losses_follow_the_loss_contract():
  exempt = {"weighted_sum", "uncertainty_weighted", "per_example", "class_weights", "box_iou",
            "matched_box_iou", "box_convert"}  # not losses: no reduction contract
  for name in lossreg_jax.losses.__all__:
    fn = getattr(lossreg_jax.losses, name)
    if name in exempt or not inspect.isfunction(fn):
      continue
    params = inspect.signature(fn).parameters
    for opt in ("weights", "where", "reduction"):
      assert opt in params, f"losses.{name} lacks {opt}="
      assert params[opt].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["reduction"].default == "mean"


def test_every_module_is_importable():
  for info in pkgutil.walk_packages(lossreg_jax.__path__, "lossreg_jax."):
    if info.name.endswith("__main__"):
      continue
    importlib.import_module(info.name)
