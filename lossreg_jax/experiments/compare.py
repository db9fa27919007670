"""``compare_losses``: one model, several losses / regularizers, repeated k-fold CV.

Every candidate trains on the same R × k folds from the same initializations and
minibatch orders; each candidate's R × k fold-models train as ONE compiled,
``vmap``-ed program (:mod:`~lossreg_jax.experiments.engine`: Flax NNX models
trained through ``training.train_step``). Every candidate is then compared with
the first on those folds: the paired per-fold differences of each held-out
metric, with the corrected resampled t-test's interval
(``stats.corrected_resampled_ttest``). Each phase (data, folds, one candidate's
training, scoring, paired tests) is a short function below.
"""

from __future__ import annotations

import functools
import hashlib
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from lossreg_jax import training
from lossreg_jax.linear.cv import problem_mesh
from lossreg_jax.experiments import engine, models
from lossreg_jax.experiments._layout import (bootstrap as _bootstrap, check_data as _check_data,
                                             check_int as _check_int,
                                             check_number as _check_number,
                                             fold_layout as _fold_layout,
                                             validation_rows as _validation_rows)
from lossreg_jax.experiments.candidates import Candidate, resolve_candidates
from lossreg_jax.experiments.cost import COST_METRICS, DecisionCost, as_decision_cost, fold_costs
from lossreg_jax.experiments._scoring import METRICS, decode, fold_scores
from lossreg_jax.experiments.result import PAIRED_KEYS, ComparisonResult
from lossreg_jax.experiments.spec import LossSpec, default_specs
from lossreg_jax.experiments.stats import corrected_resampled_ttest

__all__ = ["ComparisonResult", "TrainingDivergedError", "compare_losses"]


class TrainingDivergedError(training.TrainingDivergedError):
  """A comparison's training loss became NaN or infinite; the message names the
  spec, fold and epoch (a ``training.TrainingDivergedError``, a ``ValueError``)."""


DEFAULT_SPECS = default_specs("binary")  # breast cancer, the CLI's default data set

def _diverged(spec: str, curve: np.ndarray, folds: int, repeats: int) -> None:
  bad = ~np.isfinite(curve)
  if bad.any():
    fold, epoch = np.argwhere(bad)[0]
    where = f"fold {fold + 1}" + (f" = repeat {fold // folds + 1}, fold {fold % folds + 1}"
                                  if repeats > 1 else "")
    raise TrainingDivergedError(
        f"training diverged for spec {spec!r} ({where}, epoch {epoch + 1}): the training "
        f"loss is {curve[fold, epoch]}; try a smaller learning_rate or a stronger penalty.")


def _first_repeat(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """Each row's value from the repeat-0 fold that held it out: ``(n, ...)``."""
  holder = np.argmax(masks, axis=0)  # masks: (folds, n), one True per column
  return values[holder, np.arange(masks.shape[1])]


@functools.lru_cache(maxsize=32)
def _adam(learning_rate: float) -> optax.GradientTransformation:
  # One transformation object per rate: nnx.Optimizer's graph holds its
  # functions, so repeated comparisons reuse the compiled fold programs.
  return optax.adam(learning_rate)


def _resolve_model(model, hidden: int) -> tuple[Any, str]:
  """``(model, name)``: a built-in ``ModelSpec`` or the user's factory, and its name
  for the report (``"mlp"`` / ``"linear"`` for the default of ``hidden``)."""
  if model is None:
    return (models.mlp(hidden=hidden), "mlp") if hidden else (models.linear(), "linear")
  if isinstance(model, str):
    model = models.parse_model(model)
  if isinstance(model, models.ModelSpec):
    return model, model.text
  if not callable(model):
    raise TypeError(f"model must be a factory rngs -> nnx.Module, a model string such as "
                    f"'mlp:hidden=16', or None; got {type(model).__name__}.")
  return model, getattr(model, "__name__", type(model).__name__)


def _model_factory(model, X: np.ndarray, candidate: Candidate, task: str,
                   num_classes: int) -> Callable[[nnx.Rngs], nnx.Module]:
  """``rngs -> nnx.Module`` for a candidate: the user's factory, or a built-in model."""
  if isinstance(model, models.ModelSpec):
    classes = candidate.outputs == "classes" or (candidate.outputs is None and
                                                 task == "multiclass")
    return model.factory(X.shape[1:], num_classes if classes else 1,
                         dropout=candidate.dropout)
  if candidate.dropout is not None:
    raise ValueError("a dropout spec term applies to the built-in models only; with your "
                     "own model, put nnx.Dropout in it.")
  return model


def _build(model_fn, name: str, tx, keys, X, task: str, *, folds: int, members: int):
  """``(graphdef, squeeze, states)``: the model built, its outputs' shape checked."""
  try:  # the user's factory: any failure is reported as one line
    graphdef, states = engine.initial_states(model_fn, tx, *keys, folds=folds,
                                             members=members)
  except engine.NotAModuleError as e:
    raise TypeError(f"model must be a factory rngs -> nnx.Module; for {name!r} it {e}"
                    ) from None
  except Exception as e:
    raise ValueError(f"model: the factory failed for {name!r}: {type(e).__name__}: {e}"
                     ) from None
  out = jax.eval_shape(lambda s: nnx.merge(graphdef, s)[0](X[:2]), _first(states, members))
  shape = getattr(out, "shape", None)
  if shape is None or len(shape) not in (1, 2) or shape[0] != 2:
    raise ValueError(f"model: the outputs for {name!r} must be shaped (batch,) or (batch, "
                     f"outputs), got {shape if shape is not None else type(out).__name__}.")
  squeeze = len(shape) == 2 and shape[1] == 1 and task != "multiclass"
  return graphdef, squeeze, states


def _first(states, members: int):
  return jax.tree.map(lambda a: a[0, 0] if members > 1 else a[0], states)


# Data-side terms compiled into the program (the rest, noise and mixup, are traced).
_STATIC_DATA = ("augment", "early_stopping")


def _data_side(candidate: Candidate, X: np.ndarray, task: str, num_classes: int, name: str):
  """``(static Program fields, validation share of early stopping or None)``."""
  data = dict(candidate.data)
  augment = None
  if "augment" in data:
    a = data["augment"]
    if X.ndim != 4:
      raise ValueError(f"augment in {name!r} needs images X shaped (n, height, width, "
                       f"channels), got X of shape {X.shape}.")
    augment = tuple(float(a[k]) for k in ("rotation", "shift", "zoom", "flip"))
  stopping = data.get("early_stopping")
  static = dict(augment=augment, num_classes=num_classes if task == "multiclass" else 0,
                patience=None if stopping is None else int(stopping["patience"]))
  return static, None if stopping is None else float(stopping["validation"])


def _prepare(name: str, candidate: Candidate, layout: dict, X, *, model, optimizer,
             task, num_classes, folds) -> tuple[engine.Program, dict, tuple, tuple]:
  """A candidate's ``(program, hyper, per-fold inputs, extra inputs)`` for the engine."""
  members = candidate.members
  tx = optimizer if candidate.transform is None else optax.chain(optimizer,
                                                                 candidate.transform)
  model_fn = _model_factory(model, X, candidate, task, num_classes)
  graphdef, squeeze, states = _build(model_fn, name, tx, layout["keys"], X, task,
                                     folds=folds, members=members)
  static, share = _data_side(candidate, X, task, num_classes, name)
  program = engine.Program(graphdef, candidate.loss, candidate.penalty,
                           task == "regression", squeeze, **static)
  hyper = _hyper(candidate)
  masks = layout["masks"]
  weights = None if members == 1 else _bootstrap(layout["bootstrap_key"], masks, members)
  batches, valid, val_masks = layout["batches"], layout["valid"], None
  if share is not None:  # the fold trains on its other training rows
    val_np = _validation_rows(masks, share, layout["seed"])
    batches, valid = layout["batches_for"](masks | val_np)
    val_masks = jnp.asarray(val_np)
  keys = None
  if hyper["data"] or static["augment"] is not None:  # random bits only where needed
    keys = jax.random.split(layout["data_key"], (len(masks), members) if members > 1
                            else len(masks))
  return (program, hyper, (jnp.asarray(masks), batches, valid, states, weights),
          (keys, val_masks))


def _hyper(candidate: Candidate) -> dict:
  """A candidate's traced numbers: the loss's, the penalties', noise's and mixup's."""
  data = {k: v for k, v in candidate.data if k not in _STATIC_DATA}
  return {"loss": dict(candidate.loss_params), "penalties": dict(candidate.penalties),
          "data": data}


def _static_key(candidate: Candidate) -> tuple:
  """What must be equal for two candidates to share one program: all but traced numbers."""
  # Static terms by their numbers, traced ones (and the loss, the penalties) by name.
  data = tuple((k, tuple(sorted((p, float(x)) for p, x in v.items())) if k in _STATIC_DATA
                else tuple(sorted(v))) for k, v in candidate.data)
  return (candidate.loss, candidate.penalty, candidate.transform, candidate.dropout,
          candidate.members, candidate.outputs, tuple(sorted(candidate.loss_params)),
          tuple((k, tuple(sorted(v))) for k, v in candidate.penalties), data)


def _prepare_group(names, group, layout, X, **common) -> list:
  """Each candidate prepared; a sweep's values that share one program are built once."""
  first = _prepare(names[0], group[0], layout, X, **common)
  key = _static_key(group[0])
  return [first] + [(first[0], _hyper(c), first[2], first[3]) if _static_key(c) == key
                    else _prepare(name, c, layout, X, **common)
                    for name, c in zip(names[1:], group[1:])]


def _train(prepared, X, y, *, vmap_folds: bool, mesh=None):
  """Runs a prepared candidate: ``(outputs, curves, held-out curves)`` with a fold axis."""
  program, hyper, per_fold, extra = prepared
  if mesh is not None:
    return engine.train_sharded(*per_fold, X, y, hyper, *extra, program=program, mesh=mesh)
  if vmap_folds:
    return engine.train_folds(*per_fold, X, y, hyper, *extra, program=program)
  pick = lambda i: jax.tree.map(lambda a: a[i], (per_fold, extra))
  runs = [engine.train_one_fold(*pick(i)[0], X, y, hyper, *pick(i)[1], program=program)
          for i in range(len(per_fold[0]))]
  return tuple(jnp.stack([r[i] for r in runs]) for i in range(3))


def _train_group(prepared: list, X, y, *, vmap_folds: bool, mesh=None) -> list:
  """Trains candidates; those that differ only in traced numbers as ONE vmapped program."""
  first = prepared[0]
  same = lambda p: p[0] == first[0] and (jax.tree.structure((p[1], p[2], p[3])) ==
                                         jax.tree.structure((first[1], first[2], first[3])))
  if len(prepared) == 1 or not vmap_folds or not all(same(p) for p in prepared):
    return [_train(p, X, y, vmap_folds=vmap_folds, mesh=mesh) for p in prepared]
  hyper = jax.tree.map(lambda *v: jnp.stack(v), *[p[1] for p in prepared])
  if mesh is not None:
    out = engine.train_sharded(*first[2], X, y, hyper, *first[3], program=first[0],
                               mesh=mesh, sweep=True)
  else:
    out = engine.train_sweep(*first[2], X, y, hyper, *first[3], program=first[0])
  return [tuple(o[i] for o in out) for i in range(len(prepared))]


def _finish(out, *, members: int, task: str):
  """An ensemble's outputs averaged over its members; host copies of the curves."""
  z, curve, held = out
  if members > 1:  # the members' mean probability; their mean loss curves
    z = engine.average_members(z, regression=task == "regression")
    curve, held = curve.mean(axis=1), held.mean(axis=1)
  return z, np.asarray(curve), np.asarray(held)


def _score(z, y_np, masks, *, task, num_classes, pinball_alpha, cost, folds):
  """Per-fold scores, decisions and the first repeat's held-out predictions."""
  yj, masks_j = jnp.asarray(y_np), jnp.asarray(masks)
  out = fold_scores(z, yj, masks_j, task=task, num_classes=num_classes,
                    pinball_alpha=pinball_alpha)
  chosen = None
  if cost is not None:
    spent, chosen = fold_costs(z, yj, masks_j, task=task, cost=cost)
    out = {**out, **spent}
    chosen = {k: np.asarray(v, np.float64) for k, v in chosen.items()}
  z0 = np.asarray(z[:folds])
  if task == "regression":
    pred = prob = _first_repeat(z0, masks[:folds])
  else:
    pred, prob = (np.asarray(a) for a in jax.vmap(lambda v: decode(v, task))(z[:folds]))
    pred, prob = _first_repeat(pred, masks[:folds]), _first_repeat(prob, masks[:folds])
  return out, chosen, pred, prob


def _paired(scores: dict, names: list[str], metrics, n_folds: int, *, folds: int,
            confidence: float) -> dict:
  """Every candidate after the first against the first: corrected resampled t-tests."""
  diffs = (np.stack([[scores[s][m] - scores[names[0]][m] for m in metrics]
                     for s in names[1:]]) if len(names) > 1 else
           np.zeros((0, len(metrics), n_folds)))
  tests = [np.asarray(v) for v in corrected_resampled_ttest(
      diffs, test_train_ratio=1 / (folds - 1), confidence=confidence)]
  return {s: {m: {k: float(v[i, j]) for k, v in zip(PAIRED_KEYS, tests)}
              for j, m in enumerate(metrics)} for i, s in enumerate(names[1:])}


def _fold_mesh(devices, vmap_folds: bool):
  """The 1-axis mesh the folds are split over, or None for one device."""
  if devices is None:  # every device of every process (lossreg_jax.distributed)
    every = jax.devices()
    return problem_mesh(every, None) if len(every) > 1 and vmap_folds else None
  if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
    local = jax.local_devices()
    if not 1 <= devices <= len(local):
      raise ValueError(f"devices must be in [1, {len(local)}] (the local devices), got "
                       f"{devices}.")
    devices = local[:devices]
  mesh = problem_mesh(devices, None)
  if not vmap_folds:
    raise ValueError("devices needs vmap_folds=True (the folds are split over devices).")
  return None if mesh.devices.size == 1 else mesh


def compare_losses(
    X: ArrayLike,
    y: ArrayLike,
    specs: Sequence[str | LossSpec] | Mapping[str, Any] | None,
    *,
    model: Callable[[nnx.Rngs], nnx.Module] | str | models.ModelSpec | None = None,
    optimizer: optax.GradientTransformation | None = None,
    losses: Mapping[str, Callable] | None = None,
    task: str | None = None,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    hidden: int = 16,
    confidence: float = 0.95,
    target_recall: float = 0.95,
    pinball_alpha: float = 0.9,
    cost: DecisionCost | str | ArrayLike | None = None,
    vmap_folds: bool = True,
    devices: int | Sequence[jax.Device] | None = None,
    progress: bool = False,
) -> ComparisonResult:
  """Trains one model under each loss / regularizer candidate with repeated k-fold CV.

  The model is ``model``: a factory ``rngs -> nnx.Module`` (any Flax NNX
  architecture, with its own ``nnx.Dropout`` / ``BatchNorm``; called as
  ``model(nnx.Rngs(key, dropout=dropout_key))``), a built-in model string
  (``"linear"``, ``"mlp:hidden=H,layers=L"``, ``"cnn:channels=C"``, see
  :mod:`~lossreg_jax.experiments.models`), or None: a one-hidden-layer ReLU MLP
  (``hidden`` units; ``hidden=0`` gives logistic / softmax / linear
  regression). It trains on inputs standardized with each fold's training
  statistics (per column; per channel for images ``(n, H, W, C)``) by
  ``optimizer`` (default Adam at ``learning_rate``) on shuffled minibatches of
  the fold's training rows. Regression targets are standardized the same way
  for training (so a ``huber`` ``delta`` is in units of the target's std) and
  predictions are mapped back to target units before scoring.

  The folds are ``repeats`` repetitions of k-fold CV (``selection.kfold_masks``,
  stratified by class for classification, reshuffled for every repeat). All
  ``repeats * folds`` fold-models of a spec train in ONE compiled, ``vmap``-ed
  program (``vmap_folds=False`` runs the same per-fold program in a Python
  loop: same numbers, for checking). Every spec uses the same folds, the same
  initializations (one per repeat) and the same minibatch order, so the
  per-fold scores are paired: each spec after the first gets, per metric,
  the mean difference to the first spec with a ``confidence`` interval and
  p-value from the corrected resampled t-test
  (:func:`~lossreg_jax.experiments.corrected_resampled_ttest`, ``n_test /
  n_train = 1 / (folds - 1)``).

  A spec with an ``ensemble:M`` term (e.g. ``bce+l2:1e-3+ensemble:5``) is a
  bagged ensemble, compared like any regularizer: each of a fold's ``M``
  members trains on a bootstrap resample of that fold's training rows
  (``n_train`` draws with replacement among them, via
  :func:`~lossreg_jax.training.bootstrap_weights`, used as per-row loss
  weights; held-out rows weigh 0), from its own initialization and dropout
  key (member 0 has the single model's), on the same minibatch order. The
  members are a ``vmap`` axis inside the same compiled program as the folds.
  The fold's held-out prediction averages the members' probabilities (mean
  sigmoid / mean softmax; regression: mean prediction) and is scored as a
  single model's; its ``train_loss`` and ``held_out_loss`` are the members'
  average curves.

  Metrics (``lossreg_jax.metrics``, on each fold's held-out rows): binary
  (class 1 positive) accuracy, precision, recall, F1, ROC AUC, Brier score and
  ECE of P(y=1); multiclass the same with macro averages (ROC AUC: the macro
  one-vs-rest AUC of the softmax probabilities);
  regression MSE, RMSE, MAE, R², the pinball loss at ``pinball_alpha`` and the
  share of under-predicted targets.

  With ``cost``, three more lower-is-better metrics price the held-out
  mistakes (:mod:`lossreg_jax.experiments.cost`): ``cost_default`` (the
  model's own decision), ``cost_derived`` (the decision the costs imply for a
  calibrated model, e.g. P(y=1) >= c_fp / (c_fp + c_fn)) and ``cost_tuned``
  (a threshold, temperature or offset tuned on each fold's training rows
  only, then applied to its held-out rows; a loss that already weighs the
  errors, such as ``positive_weight``, is corrected twice by the derived
  decision); they are paired like any metric,
  and ``ComparisonResult.decisions`` holds each fold's derived and tuned
  decision.

  Args:
    X: Features, shape ``(n, d)``, or images ``(n, H, W, C)``; finite.
    y: Targets, shape ``(n,)``: integer class labels ``0..k-1``, or floats for
      regression.
    specs: The candidates; the first is the baseline. Spec strings (see
      :func:`parse_spec`) or parsed specs, or a mapping ``name -> spec string |
      loss callable | experiments.Candidate`` (a callable is a loss
      ``loss(predictions, targets, *, weights=None, where=None) -> scalar``:
      ``predictions`` ``(n,)`` for a one-output model, else ``(n, C)``;
      ``targets`` int32 labels or standardized regression targets). ``None``: :func:`default_specs` of the task (binary ``bce``,
      ``bce:positive_weight=3``, ``focal:gamma=2``; multiclass ``ce``,
      ``ce:label_smoothing=0.1``, ``ce+l2:1e-3``; regression ``mse``,
      ``huber:delta=1``, ``asymmetric:under=1,over=0.1``).
    model: A factory ``rngs -> nnx.Module``, a model string or
      :class:`~lossreg_jax.experiments.models.ModelSpec`, or None (the MLP of
      ``hidden`` units). A user model's outputs are ``(batch,)`` or
      ``(batch, outputs)``; a trailing axis of 1 is dropped for the loss.
    optimizer: An ``optax.GradientTransformation``; None: ``optax.adam(learning_rate)``.
    losses: The user's losses by name, usable as loss terms of spec strings
      with ``KEY=VALUE`` numbers passed as keywords (``{"linex": linex}`` and
      the spec ``"linex:a=0.5+l2:1e-3"``); each follows the loss contract
      ``loss(predictions, targets, *, weights=None, where=None, **numbers)``.
    task: ``"binary"``, ``"multiclass"`` or ``"regression"``; None infers it
      from ``y``'s dtype (integers: classes; floats: regression).
    folds: Number of CV folds ``k >= 2``.
    repeats: Number of repetitions of k-fold CV ``R >= 1``.
    seed: Seeds the folds, the initialization, the shuffling and dropout.
    epochs: Passes over the training rows.
    batch_size: Rows per minibatch.
    learning_rate: Adam's learning rate, finite and ``> 0`` (without ``optimizer``).
    hidden: Hidden units of the default model, an int ``>= 0``; 0 for a linear model.
    confidence: Coverage of the paired intervals, in ``(0, 1)``.
    target_recall: Binary: the recall at which ``threshold_for_recall`` is
      reported in ``to_dict()`` and the report, in ``(0, 1]``.
    pinball_alpha: Regression: the quantile of the ``pinball`` metric, in ``(0, 1)``.
    cost: What mistakes cost: a :class:`~lossreg_jax.experiments.DecisionCost`,
      a string (``"fn=5,fp=1"`` binary; ``"under=3,over=1"`` or
      ``"under=3,over=1,squared"`` regression; see
      :func:`~lossreg_jax.experiments.parse_cost`) or a ``(C, C)`` cost matrix
      indexed ``[true, predicted]``. None: no cost metrics.
    vmap_folds: Train the folds as one vmapped program (default) or in a loop.
    devices: Split the folds (repeats × folds) over devices: an int (the
      first ``N`` local devices), a sequence of ``jax.Device``, or None for
      every device (of every process, in a ``lossreg_jax.distributed`` job:
      each process computes the same folds and keys from ``seed``, trains
      the folds of its devices and gets all scores). Each device trains its
      folds with no communication; the scores equal one device's up to
      rounding.
    progress: Show a tqdm bar over the specs.

  Returns:
    A :class:`ComparisonResult`; ``.table()`` prints mean ± std per metric and
    the paired differences to the first spec.

  Raises:
    TrainingDivergedError: (a ``ValueError``) if a training loss becomes NaN
      or infinite: "training diverged for spec S (fold F, epoch E)".
    ValueError: for a bad spec, a loss that does not fit the task, targets
      that do not fit ``task``, non-finite ``X`` or ``y``, or a setting out
      of range (the message names the argument).

  Examples:
    >>> from lossreg_jax import datasets
    >>> ds = datasets.load("breast_cancer")
    >>> res = compare_losses(ds.X, ds.y, ["bce", "hinge+l1:1e-3"], folds=3, epochs=2,
    ...                      hidden=4, learning_rate=0.05)
    >>> res.specs, res.metrics[:4], res.scores["bce"]["f1"].shape
    (('bce', 'hinge+l1:1e-3'), ('accuracy', 'precision', 'recall', 'f1'), (3,))
    >>> float(res.scores["bce"]["accuracy"].mean()) > 0.9
    True
    >>> sorted(res.paired["hinge+l1:1e-3"]["accuracy"])
    ['ci_high', 'ci_low', 'mean_diff', 'p_value', 't']
  """
  X, y_np, task, num_classes = _check_data(X, y, task)
  folds, repeats = _check_int("folds", folds, 2), _check_int("repeats", repeats, 1)
  epochs, batch_size = _check_int("epochs", epochs, 1), _check_int("batch_size", batch_size, 1)
  hidden, seed = _check_int("hidden", hidden, 0), _check_int("seed", seed, 0)
  learning_rate = _check_number("learning_rate", learning_rate, low=0.0)
  confidence = _check_number("confidence", confidence, low=0.0, high=1.0, high_open=True)
  target_recall = _check_number("target_recall", target_recall, low=0.0, high=1.0)
  pinball_alpha = _check_number("pinball_alpha", pinball_alpha, low=0.0, high=1.0,
                                high_open=True)
  if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
    raise TypeError(f"optimizer must be an optax.GradientTransformation such as "
                    f"optax.adam(1e-3), got {type(optimizer).__name__}.")
  texts, candidates, groups, sweeps = resolve_candidates(specs, task, num_classes, losses)
  n = X.shape[0]
  smallest = n if task == "regression" else int(np.bincount(y_np).min())
  if folds > smallest:
    raise ValueError(f"folds={folds} exceeds " + (f"the number of rows ({n})." if task ==
                     "regression" else f"the size of the smallest class ({smallest} rows)."))
  model, model_text = _resolve_model(model, hidden)
  linear = isinstance(model, models.ModelSpec) and model.name == "linear"
  if linear and any(c.dropout is not None for c in candidates):
    raise ValueError("dropout needs a hidden layer: use hidden > 0 or a model other than "
                     "'linear'.")
  cost = None if cost is None else as_decision_cost(cost).check(task, num_classes)
  names = METRICS[task] + (COST_METRICS if cost is not None else ())
  layout = _fold_layout(X, y_np, task, folds=folds, repeats=repeats, epochs=epochs,
                        batch_size=batch_size, seed=seed)
  settings = dict(folds=folds, repeats=repeats, seed=seed, epochs=epochs,
                  batch_size=batch_size, learning_rate=learning_rate, hidden=hidden,
                  n_samples=int(n), n_features=int(np.prod(X.shape[1:])),
                  num_classes=num_classes, model=model_text,
                  optimizer="adam" if optimizer is None else "custom",
                  confidence=confidence, target_recall=target_recall,
                  pinball_alpha=pinball_alpha, test_train_ratio=1 / (folds - 1),
                  data_sha256=hashlib.sha256(X.tobytes() + y_np.tobytes()).hexdigest())
  if cost is not None:
    settings["cost"] = cost.to_dict()
  optimizer = _adam(learning_rate) if optimizer is None else optimizer
  mesh = _fold_mesh(devices, vmap_folds)
  settings["devices"] = 1 if mesh is None else int(mesh.devices.size)
  Xj, yj = jnp.asarray(X), jnp.asarray(y_np)
  scores, curves, held_curves, seconds, preds, probs, decisions, examples = (
      {} for _ in range(8))
  common = dict(model=model, optimizer=optimizer, task=task, num_classes=num_classes,
                folds=folds)
  for group in _progress(groups, progress):
    start = time.perf_counter()
    prepared = _prepare_group([texts[i] for i in group], [candidates[i] for i in group],
                              layout, X, **common)
    outs = _train_group(prepared, Xj, yj, vmap_folds=vmap_folds, mesh=mesh)
    for i, prep, out in zip(group, prepared, outs):
      text = texts[i]
      z, curve, held = _finish(out, members=candidates[i].members, task=task)
      _diverged(text, curve, folds, repeats)
      out, chosen, preds[text], probs[text] = _score(
          z, y_np, layout["masks"], task=task, num_classes=num_classes,
          pinball_alpha=pinball_alpha, cost=cost, folds=folds)
      if chosen is not None:
        decisions[text] = chosen
      scores[text] = {m: np.asarray(out[m], np.float64) for m in names}
      if "average_precision" in out:  # binary: for the report's PR legend
        scores[text]["average_precision"] = np.asarray(out["average_precision"], np.float64)
      curves[text], held_curves[text] = curve, held
      if prep[0].augment is not None:
        examples[text] = _augmented_examples(prep, Xj, yj)
    for i in group:  # a sweep's values share one program: each gets its share
      seconds[texts[i]] = (time.perf_counter() - start) / len(group)
  paired = _paired(scores, texts, names, len(layout["masks"]), folds=folds,
                   confidence=confidence)
  return ComparisonResult(tuple(texts), scores, curves, seconds, task, settings, preds,
                          names, probs, y_np, held_curves, paired, cost, decisions,
                          tuple(sweeps), examples)


def _augmented_examples(prepared, X, y, count: int = 8) -> dict:
  """A few of fold 0's training images, standardized, and as its first step augments them."""
  program, _, (masks, batches, *_), (keys, _) = prepared
  rows = batches[0, 0, 0, :count]
  Xs = engine.standardize(X, ~masks[0])[0][rows]
  key = keys[0] if keys.ndim == 1 else keys[0, 0]  # fold 0 (member 0 of an ensemble)
  augmented, _ = engine.training_batch(program, engine.minibatch_keys(key, batches[0])[0, 0],
                                       Xs, y[rows], {})
  return {"original": np.asarray(Xs), "augmented": np.asarray(augmented)}


def _progress(items, enabled: bool):
  if not enabled:
    return items
  from tqdm.auto import tqdm
  return tqdm(items, desc="specs", unit="spec", leave=False)
