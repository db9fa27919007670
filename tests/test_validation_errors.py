"""Bad arguments to library functions fail early, with the argument named.

Each case used to end in an error from deep inside JAX, Flax or NumPy ("Error
interpreting argument to JitFn", "'NoneType' object is not callable", a pytree
structure dump, "could not convert string to float") or in no error at all. A
case passes when the error has the right type and its message names the
argument (and, where useful, the leaf or value seen).
"""

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import lossreg_jax
from lossreg_jax import checks, datasets, losses, regularizers, selection, training

X = jnp.ones((8, 2))
Y = jnp.zeros(8)


def mse(z, t, **kw):
  return losses.squared_error(z[:, 0], t, **kw)


@pytest.fixture
def model_and_optimizer():
  model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
  return model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)


def raises(error, pattern, fn, *args, **kwargs):
  with pytest.raises(error) as info:
    fn(*args, **kwargs)
  assert re.search(pattern, str(info.value)), str(info.value)
  return info.value


# ------------------------------------------------------------------- training


@pytest.mark.parametrize("make", [training.make_train_step, training.make_eval_step])
def test_step_builders_check_their_functions(make):
  raises(TypeError, r"^loss_fn must be a callable, got NoneType", make, None)
  raises(TypeError, r"^penalty must be a callable or None, got int 3", make, mse, penalty=3)
  raises(TypeError, r"^metrics_fn must be a callable or None, got str", make, mse,
         metrics_fn="accuracy")


def test_steps_check_model_and_optimizer(model_and_optimizer):
  model, opt = model_and_optimizer
  step = training.make_train_step(mse)
  raises(TypeError, r"^model must be an nnx.Module, got function", step, lambda x: x, opt,
         (X, Y))
  raises(TypeError, r"^optimizer must be an nnx.Optimizer.*got GradientTransformation", step,
         model, optax.sgd(0.1), (X, Y))
  raises(TypeError, r"^model must be an nnx.Module, got str",
         training.make_eval_step(mse), "model", (X, Y))
  loss, _ = step(model, opt, (X, Y))  # the checks leave good calls alone
  assert np.isfinite(float(loss))


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(epochs=True), ValueError, r"^epochs must be an int >= 1, got True"),
    (dict(batch_size=0), ValueError, r"^batch_size must be an int >= 1, got 0"),
    (dict(key="seed"), TypeError, r"^key must be a jax.random key or an int seed, got str"),
    (dict(key=1.5), TypeError, r"^key must be .* got float 1.5"),
    (dict(loss_fn=None), TypeError, r"^loss_fn must be a callable"),
    (dict(early_stopping=5), TypeError, r"^early_stopping must have init\(params\)"),
    (dict(train_data=(np.array(["a"] * 8), Y)), TypeError,
     r"^train_data must hold numeric arrays; train_data\[0\] has dtype <U1"),
    (dict(model="model"), TypeError, r"^model must be an nnx.Module"),
    (dict(optimizer=optax.adam(0.1)), TypeError, r"^optimizer must be an nnx.Optimizer"),
])
def test_fit_names_the_bad_argument(model_and_optimizer, kwargs, error, pattern):
  model, opt = model_and_optimizer
  args = dict(model=model, optimizer=opt, train_data=(X, Y), loss_fn=mse, epochs=1,
              batch_size=4, key=0, progress=False)
  args.update(kwargs)
  raises(error, pattern, training.fit, **args)


def test_fit_accepts_numpy_int_seeds(model_and_optimizer):
  model, opt = model_and_optimizer
  history = training.fit(model, opt, (X, Y), loss_fn=mse, epochs=1, batch_size=8,
                         key=np.int64(3), progress=False)
  assert history["epochs_run"] == 1


# ------------------------------------------------------------------ selection


def _fit_eval(data, train_w, test_w):
  return {"score": test_w @ data[1]}


def test_cross_validate_names_the_bad_argument():
  masks = selection.kfold_masks(8, 2)
  raises(TypeError, r"^fit_eval_fn must be a callable, got NoneType", selection.cross_validate,
         None, (X, Y), masks)
  # Was: "dot_general requires contracting dimensions to have the same shape".
  raises(ValueError, r"^data must .* 5 rows as masks has shape \(2, 5\); got data\[0\] of "
         r"shape \(8, 2\)", selection.cross_validate, _fit_eval, (X, Y),
         selection.kfold_masks(5, 2))
  raises(TypeError, r"^data must be a pytree .* data is str", selection.cross_validate,
         _fit_eval, "abc", masks)
  raises(TypeError, r"^devices must be jax.Device objects.*got int 1",
         selection.cross_validate, _fit_eval, (X, Y), masks, devices=[1, 2])
  assert selection.cross_validate(_fit_eval, (X, Y), masks)["score"].shape == (2,)


def test_rfe_names_the_bad_argument():
  coef = lambda X, y: np.ones(X.shape[1])
  raises(TypeError, r"^fit_fn must be a callable", selection.rfe, None, np.ones((5, 3)),
         np.ones(5))
  raises(TypeError, r"^X must hold numbers, got dtype <U1", selection.rfe, coef,
         np.array([["a", "b"]]), np.ones(1))
  raises(ValueError, r"^y must have one entry per row of X \(5 rows\), got shape \(4,\)",
         selection.rfe, coef, np.ones((5, 3)), np.ones(4))


# --------------------------------------------------------------- regularizers


PENALTIES = [
    regularizers.l1_penalty,
    regularizers.l2_penalty,
    lambda p: regularizers.elastic_net_penalty(p, alpha=1.0, l1_ratio=0.5),
    regularizers.group_lasso_penalty,
]


@pytest.mark.parametrize("penalty", PENALTIES)
def test_penalties_want_a_pytree_of_floats(penalty):
  raises(TypeError, r"^params must be a pytree .* of floating arrays; params\['w'\] is "
         r"\w+ with dtype int", penalty, {"w": np.ones((2, 2), np.int32)})
  raises(TypeError, r"params is str", penalty, "weights")
  raises(TypeError, r"params is object", penalty, object())
  assert np.isfinite(float(jax.jit(penalty)({"w": jnp.ones((2, 2))})))


def test_penalty_strengths_must_be_numbers():
  raises(TypeError, r"^alpha must be a number, got str 'a'",
         regularizers.elastic_net_penalty, {"w": jnp.ones(2)}, alpha="a", l1_ratio=0.5)


TRANSFORMS = [
    regularizers.add_l1_decay(0.1),
    regularizers.add_elastic_net_decay(0.1, 0.5),
    regularizers.proximal_l1(0.1, 0.1),
    regularizers.proximal_elastic_net(0.1, 0.1, 0.5),
]


@pytest.mark.parametrize("tx", TRANSFORMS)
def test_transforms_want_float_trees_of_one_structure(tx):
  params = {"w": jnp.ones(2)}
  state = tx.init(params)
  ints = {"w": jnp.ones(2, jnp.int32)}
  raises(TypeError, r"^params must be a pytree of floating arrays; params\['w'\] is "
         r"\w+ with dtype int32", tx.update, params, state, ints)
  raises(TypeError, r"^updates must be a pytree of floating arrays; updates\['w'\]",
         tx.update, ints, state, params)
  # Was a pytree-structure dump from jax.tree.map.
  raises(ValueError, r"^updates and params must have the same tree structure; got updates "
         r"PyTreeDef\(\{'w': \*\}\) and params PyTreeDef\(\{'v': \*\}\)",
         tx.update, params, state, {"v": jnp.ones(2)})
  updates, _ = jax.jit(tx.update)(params, state, params)
  assert jax.tree.structure(updates) == jax.tree.structure(params)


def test_early_stopping_names_the_bad_argument():
  raises(TypeError, r"^min_delta must be a number, got str", regularizers.early_stopping,
         min_delta="a")
  raises(TypeError, r"^baseline must be a number, got str", regularizers.early_stopping,
         baseline="a")
  raises(ValueError, r"^baseline must be in .* got nan", regularizers.early_stopping,
         baseline=float("nan"))
  es = regularizers.early_stopping(patience=1)
  raises(TypeError, r"^params must be a pytree .* params is str", es.init, "weights")
  state = es.init({"w": jnp.zeros(2)})
  raises(TypeError, r"^metric must be a number .* got str 'a'", es.update, state, "a",
         {"w": jnp.zeros(2)})
  raises(ValueError, r"^params and the params given to init must have the same tree "
         r"structure", es.update, state, 1.0, {"v": jnp.zeros(2)})
  raises(TypeError, r"^state must be the EarlyStoppingState", es.update, (0, 1), 1.0,
         {"w": jnp.zeros(2)})
  state = jax.jit(es.update)(state, 1.0, {"w": jnp.ones(2)})
  assert int(state.best_step) == 0


# --------------------------------------------------------- checks, multitask


def test_check_loss_names_the_bad_argument():
  loss = lambda p, t: (p - t) ** 2
  raises(TypeError, r"^key must be a jax.random key .* got str 'a'", checks.check_loss, loss,
         key="a")
  raises(TypeError, r"^shape must be a tuple of positive ints, e.g. \(4,\), got int 3",
         checks.check_loss, loss, shape=3)
  raises(TypeError, r"^rtol must be a number, got str", checks.check_loss, loss, rtol="a")
  raises(TypeError, r"^fn must be callable", checks.check_loss, 3)


def test_weighted_sum_names_the_bad_argument():
  raises(TypeError, r"^losses\['cls'\] must be a number or a numeric array, got str 'x'",
         losses.weighted_sum, {"cls": "x"}, {"cls": 1.0})
  # Was: "Only integer scalar arrays can be converted to a scalar index".
  raises(TypeError, r"^weights\['cls'\] must be a number or a numeric array, got str",
         losses.weighted_sum, {"cls": 1.0}, {"cls": "x"})
  raises(ValueError, r"^weights\['cls'\] is NaN", losses.weighted_sum, {"cls": 1.0},
         {"cls": float("nan")})
  total, _ = jax.jit(losses.weighted_sum)({"cls": jnp.array(2.0)}, {"cls": jnp.array(0.5)})
  assert float(total) == 1.0  # traced weights pass through the checks


# ------------------------------------- hyperparameter types, every loss and regularizer

# One call per public function, with good primary arrays and good values of
# the required hyperparameters; the sweep overrides one hyperparameter at a time.
_P, _Y = jnp.full((4,), 0.5), jnp.array([0.0, 1.0, 1.0, 0.0])
_BOX = jnp.array([[0.0, 0.0, 1.0, 1.0]] * 2)
_IMG, _ONE_HOT = jnp.ones((2, 4, 4, 1)), jnp.eye(2)
_KEY = jax.random.key(0)
_TREE = {"w": jnp.ones(2)}
SWEEP_CALLS = {
    "losses": {
        **{name: (lambda name: lambda **k: getattr(losses, name)(_P, _Y, **k))(name) for name in (
            "squared_error", "absolute_error", "huber_loss", "smooth_l1_loss", "log_cosh",
            "quantile_loss", "asymmetric_squared_error", "binary_cross_entropy",
            "sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "hinge_loss")},
        **{name: (lambda name: lambda **k: getattr(losses, name)(_BOX, _BOX, **k))(name) for name in (
            "iou_loss", "giou_loss", "diou_loss", "ciou_loss", "box_iou", "matched_box_iou")},
        "softmax_cross_entropy": lambda **k: losses.softmax_cross_entropy(_ONE_HOT, _ONE_HOT, **k),
        "softmax_cross_entropy_with_integer_labels":
            lambda **k: losses.softmax_cross_entropy_with_integer_labels(
                _ONE_HOT, jnp.array([0, 1]), **k),
        "categorical_cross_entropy":
            lambda **k: losses.categorical_cross_entropy(_ONE_HOT, _ONE_HOT, **k),
        "class_weights": lambda **k: losses.class_weights(
            jnp.array([0, 1]), **{"num_classes": 2, **k}),
        "linear_softmax_cross_entropy": lambda **k: losses.linear_softmax_cross_entropy(
            jnp.ones((3, 2)), jnp.ones((2, 5)), jnp.array([0, 1, 2]), **k),
    },
    "regularizers": {
        "elastic_net_penalty": lambda **k: regularizers.elastic_net_penalty(
            _TREE, **{"alpha": 1.0, "l1_ratio": 0.5, **k}),
        "group_lasso_penalty": lambda **k: regularizers.group_lasso_penalty(_TREE, **k),
        "sklearn_to_l1_l2": lambda **k: regularizers.sklearn_to_l1_l2(
            **{"alpha": 1.0, "l1_ratio": 0.5, **k}),
        "keras_to_l1_l2": lambda **k: regularizers.keras_to_l1_l2(**{"l1": 1.0, "l2": 0.5, **k}),
        "add_l1_decay": lambda **k: regularizers.add_l1_decay(**{"strength": 1.0, **k}),
        "add_elastic_net_decay": lambda **k: regularizers.add_elastic_net_decay(
            **{"alpha": 1.0, "l1_ratio": 0.5, **k}),
        "proximal_l1": lambda **k: regularizers.proximal_l1(
            **{"learning_rate": 0.1, "strength": 1.0, **k}),
        "proximal_elastic_net": lambda **k: regularizers.proximal_elastic_net(
            **{"learning_rate": 0.1, "alpha": 1.0, "l1_ratio": 0.5, **k}),
        "dropout": lambda **k: regularizers.dropout(_KEY, _P, **{"rate": 0.5, **k}),
        "gaussian_noise": lambda **k: regularizers.gaussian_noise(_KEY, _P, **{"stddev": 0.5, **k}),
        "mixup": lambda **k: regularizers.mixup(_KEY, _P[:2, None], _ONE_HOT, **{"alpha": 1.0, **k}),
        "cutmix": lambda **k: regularizers.cutmix(_KEY, _IMG, _ONE_HOT, **{"alpha": 1.0, **k}),
        "GaussianNoise": lambda **k: regularizers.GaussianNoise(**{"stddev": 0.1, **k}),
        "MixUp": lambda **k: regularizers.MixUp(**{"alpha": 0.1, **k}),
        "CutMix": lambda **k: regularizers.CutMix(**{"alpha": 0.1, **k}),
        **{name: (lambda name: lambda **k: getattr(regularizers, name)(_KEY, _IMG, **k))(name)
           for name in ("random_flip", "random_rotation", "random_shift", "random_shear",
                        "random_zoom", "random_affine")},
        "early_stopping": lambda **k: regularizers.early_stopping(**k),
    },
}
# A hyperparameter is numeric (or a flag) by its annotation; weights and the
# converters' Any-annotated strengths are numeric by name.
_NUMERIC = re.compile(r"\b(float|int|ScalarOrSchedule)\b")
_NUMERIC_BY_NAME = {"weights", "class_weights", "alpha", "l1_ratio", "l1", "l2"}


def _swept_parameters(obj):
  target = obj.__init__ if inspect.isclass(obj) else obj
  for p in inspect.signature(target).parameters.values():
    annotation = p.annotation if isinstance(p.annotation, str) else ""
    if p.name in ("self", "num_samples") or annotation.startswith("Mapping"):
      continue
    if annotation.startswith("bool"):
      yield p.name, ("1", 1)  # a flag: a string or a number is no bool
    elif (_NUMERIC.search(annotation) and "str" not in annotation) or p.name in _NUMERIC_BY_NAME:
      yield p.name, ("1", True)  # '1' converts silently and True is an int


def test_every_numeric_hyperparameter_refuses_strings_and_bools():
  # Issue 22: huber_loss(delta='1'), random_affine(rotation_range='10') and
  # rate=True were taken as numbers. One shared check (check_number, via
  # check_in_range / check_int / check_bool) refuses them, naming the argument
  # and the value. The parameters are found by introspection, so a new public
  # hyperparameter is swept (or this test names the function it cannot call).
  missing, wrong, swept = [], [], 0
  for ns in ("losses", "regularizers"):
    module = getattr(lossreg_jax, ns)
    for name in module.__all__:
      params = list(_swept_parameters(getattr(module, name)))
      if not params:
        continue
      if name not in SWEEP_CALLS[ns]:
        missing.append(f"{ns}.{name}")
        continue
      for param, bads in params:
        for bad in bads:
          swept += 1
          call = lambda: SWEEP_CALLS[ns][name](**{param: bad})  # noqa: E731
          try:  # weights are checked in the reduction: traced only, nothing compiles
            jax.jit(call)() if param in ("weights", "class_weights") else call()
            wrong.append(f"{ns}.{name}({param}={bad!r}): accepted")
          except TypeError as e:
            if not (str(e).startswith(param) and repr(bad) in str(e)):
              wrong.append(f"{ns}.{name}({param}={bad!r}): {e}")
          except Exception as e:  # noqa: BLE001 - report any other error
            wrong.append(f"{ns}.{name}({param}={bad!r}): {type(e).__name__}: {e}")
  assert not missing, f"add a call to SWEEP_CALLS for {missing}"
  assert not wrong, "\n".join(wrong)
  assert swept >= 150, swept
  # The mappings of the multi-task losses: their values are checked one by one.
  for bad in ("1", True):
    raises(TypeError, rf"^log_vars\['a'\] must be a number .*{bad!r}",
           losses.uncertainty_weighted, {"a": 1.0}, {"a": bad})
    raises(TypeError, rf"^weights\['a'\] must be a number .*{bad!r}", losses.weighted_sum,
           {"a": 1.0}, {"a": bad})


def test_integer_and_flag_arguments_keep_their_good_forms():
  # The shared checks accept what they should: NumPy ints and bools, int
  # arrays as numbers, traced numbers, a schedule, a negative axis.
  x = jnp.ones((2, 3))

  def good(d):
    return (losses.class_weights(jnp.array([0, 1]), np.int64(2)),
            losses.huber_loss(_P, _Y, delta=np.int32(1)), losses.huber_loss(_P, _Y, delta=d),
            losses.softmax_cross_entropy(_ONE_HOT, _ONE_HOT, axis=np.int64(-1)),
            regularizers.dropout(_KEY, x, rate=0.5, broadcast_dims=(np.int32(0), -1)),
            regularizers.dropout(_KEY, x, rate=0.5, deterministic=np.bool_(True)))
  weights, huber, huber_traced, ce, dropped, kept = jax.jit(good)(2.0)
  np.testing.assert_allclose(weights, [1.0, 1.0])
  np.testing.assert_allclose([huber, huber_traced, ce], [0.125, 0.125, np.log1p(np.exp(-1.0))], rtol=1e-6)
  assert np.all(dropped == dropped[0, 0]) and np.all(kept == x)
  regularizers.add_l1_decay(optax.linear_schedule(0.1, 0.0, 10))
  raises(ValueError, r"^broadcast_dims\[0\] must be an axis of x \(rank 2\), got 2",
         regularizers.dropout, _KEY, x, rate=0.5, broadcast_dims=(2,))
  raises(ValueError, r"^num_classes must be an int >= 1, got 0", losses.class_weights,
         jnp.array([0]), 0)
  raises(TypeError, r"^weights must be a number, got ndarray of shape \(4,\) with dtype bool",
         losses.squared_error, _P, _Y, weights=np.ones(4, bool))


# ------------------------------------------------------------------- datasets


def test_load_csv_names_the_bad_argument(tmp_path):
  path = tmp_path / "d.csv"
  path.write_text("a,y\n1,0\n2,1\n")
  raises(TypeError, r"^path must be a file path .* got int 3", datasets.load_csv, 3,
         target="y")
  raises(TypeError, r"^target must be a column name \(str\), got NoneType",
         datasets.load_csv, path, target=None)
  raises(ValueError, r"^delimiter must be one character or None \(detect\), got ',,'",
         datasets.load_csv, path, target="y", delimiter=",,")
  raises(TypeError, r"^drop_missing must be a bool, got str", datasets.load_csv, path,
         target="y", drop_missing="no")


def test_train_test_split_names_a_bad_key():
  raises(TypeError, r"^key must be a jax.random key or an int seed, got str",
         datasets.train_test_split, "seed", np.ones(4))
