"""``compare_losses``: one model, several loss / regularizer specs, repeated k-fold CV.

Every spec trains on the same R × k folds from the same initializations; each
spec's R × k fold-models train as ONE compiled, ``vmap``-ed program
(``_folds.train_folds``). Every spec is then compared with the first on those
folds: the paired per-fold differences of each held-out metric, with the
corrected resampled t-test's interval (``stats.corrected_resampled_ttest``).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax import selection
from lossreg_jax.training import bootstrap_weights  # defined in lossreg_jax._ensemble
from lossreg_jax.experiments import _folds
from lossreg_jax.experiments.cost import COST_METRICS, DecisionCost, as_decision_cost, fold_costs
from lossreg_jax.experiments._scoring import METRICS, decode, fold_scores
from lossreg_jax.experiments.result import PAIRED_KEYS, ComparisonResult
from lossreg_jax.experiments.spec import LossSpec, default_specs, parse_spec, resolve_loss
from lossreg_jax.experiments.stats import corrected_resampled_ttest

__all__ = ["ComparisonResult", "TrainingDivergedError", "compare_losses"]

DEFAULT_SPECS = default_specs("binary")  # breast cancer, the CLI's default data set
_batches = _folds.shuffles  # the host-side shuffles, shared with experiments.multitask
_TASKS = ("binary", "multiclass", "regression")


class TrainingDivergedError(ValueError):
  """A training loss became NaN or infinite; the message names spec, fold and epoch."""


def _infer_task(y: np.ndarray, task: str | None) -> tuple[str, int, np.ndarray]:
  """Returns ``(task, num_classes, y)`` with ``y`` cast to int32 or float32."""
  if task is not None and task not in _TASKS:
    raise ValueError(f"task must be one of {', '.join(_TASKS)} or None, got {task!r}.")
  if y.ndim != 1:
    raise ValueError(f"y must have shape (n,), got {y.shape}.")
  if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
    raise ValueError(f"y must be numeric, got dtype {y.dtype}.")
  if not np.all(np.isfinite(y)):
    raise ValueError(f"y must be finite, got {int(np.sum(~np.isfinite(y)))} NaN or infinite "
                     f"value(s).")
  integer = y.dtype == bool or np.issubdtype(y.dtype, np.integer)
  if task == "regression" or (task is None and not integer):
    if np.ptp(y) == 0 if y.size else True:
      raise ValueError("y must not be constant for regression.")
    return "regression", 0, y.astype(np.float32)
  if not integer and not np.all(y == np.round(y)):
    raise ValueError(f"task={task!r} needs class labels 0..k-1 in y, got non-integer values "
                     f"such as {y[y != np.round(y)][0]}.")
  y = y.astype(np.int32)
  classes = np.unique(y)
  if y.min() < 0 or len(classes) < 2:
    raise ValueError(f"y must hold class indices 0..k-1 with at least two classes, got "
                     f"{classes.tolist()[:10]}.")
  num_classes = int(y.max()) + 1
  inferred = "binary" if num_classes == 2 else "multiclass"
  if task is not None and task != inferred:
    raise ValueError(f"task={task!r} but y has {num_classes} classes ({inferred}).")
  return inferred, num_classes, y


def _check_int(name: str, value, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
  return int(value)


def _check_number(name: str, value, *, low: float, high: float = math.inf,
                  low_open: bool = True, high_open: bool = False) -> float:
  ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  v = float(value) if ok else math.nan
  if not (ok and math.isfinite(v) and (v > low if low_open else v >= low)
          and (v < high if high_open else v <= high)):
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    raise ValueError(f"{name} must be a finite number in {left}{low:g}, {high:g}{right}, "
                     f"got {value!r}.")
  return v


def _repeated_masks(n: int, folds: int, repeats: int, key, stratify) -> jax.Array:
  """``(repeats * folds, n)`` held-out masks: repeated (stratified) k-fold.

  Repeat 0 uses ``key`` itself, repeat ``r > 0`` ``fold_in(key, r)``: each
  repeat reshuffles the rows, each holds every row out exactly once.
  """
  keys = [key] + [jax.random.fold_in(key, r) for r in range(1, repeats)]
  return jnp.concatenate([selection.kfold_masks(n, folds, key=k, stratify=stratify)
                          for k in keys])


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


def _ensemble_inputs(key, init_keys, dropout_keys, masks: np.ndarray, *, members: int,
                     n_features: int, n_out: int, hidden: int):
  """Per-member initial parameters, dropout keys and bootstrap weights of every fold.

  Member 0 of a fold starts from the fold's single-model initialization and
  dropout key; member ``m > 0`` from ``fold_in`` of them with ``m``. Fold
  ``f``'s bootstrap: ``bootstrap_weights(fold_in(key, f), n_train,
  num_members=members)`` draws ``n_train`` rows with replacement among the
  fold's ``n_train`` training rows per member; the counts sit on those rows
  (in index order), the held-out rows get weight 0.

  Returns:
    ``(params, keys, weights)`` with leading axes ``(folds, members)``;
    ``weights`` is ``(folds, members, n)`` float32 (each member's sums to
    ``n_train``).
  """
  member = lambda k, m: k if m == 0 else jax.random.fold_in(k, m)
  folds = masks.shape[0] // len(init_keys)
  params = [jax.tree.map(lambda *p: jnp.stack(p), *[
      _folds.init_params(member(k, m), n_features, n_out, hidden) for m in range(members)])
            for k in init_keys]
  params = jax.tree.map(lambda *p: jnp.repeat(jnp.stack(p), folds, axis=0), *params)
  keys = jnp.stack([jnp.stack([member(k, m) for m in range(members)]) for k in dropout_keys])
  weights = np.zeros((masks.shape[0], members, masks.shape[1]), np.float32)
  for f, held_out in enumerate(masks):
    rows = np.flatnonzero(~held_out)
    weights[f][:, rows] = np.asarray(bootstrap_weights(
        jax.random.fold_in(key, f), len(rows), num_members=members))
  return params, keys, jnp.asarray(weights)


def compare_losses(
    X: ArrayLike,
    y: ArrayLike,
    specs: Sequence[str | LossSpec] | None,
    *,
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
    progress: bool = False,
) -> ComparisonResult:
  """Trains one model under each loss / regularizer spec with repeated k-fold CV.

  The model is a one-hidden-layer ReLU MLP (``hidden`` units; ``hidden=0``
  gives logistic / softmax / linear regression) on features standardized with
  each fold's training statistics, trained by Adam on shuffled minibatches.
  Regression targets are standardized the same way for training (so a
  ``huber`` ``delta`` is in units of the target's std) and predictions are
  mapped back to target units before scoring.

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
  ECE of P(y=1); multiclass the same with macro averages and without AUC;
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
    X: Features, shape ``(n, d)``, finite.
    y: Targets, shape ``(n,)``: integer class labels ``0..k-1``, or floats for
      regression.
    specs: Spec strings (see :func:`parse_spec`) or parsed specs; the first is
      the baseline. ``None``: :func:`default_specs` of the task (binary ``bce``,
      ``bce:positive_weight=3``, ``focal:gamma=2``; multiclass ``ce``,
      ``ce:label_smoothing=0.1``, ``ce+l2:1e-3``; regression ``mse``,
      ``huber:delta=1``, ``asymmetric:under=1,over=0.1``).
    task: ``"binary"``, ``"multiclass"`` or ``"regression"``; None infers it
      from ``y``'s dtype (integers: classes; floats: regression).
    folds: Number of CV folds ``k >= 2``.
    repeats: Number of repetitions of k-fold CV ``R >= 1``.
    seed: Seeds the folds, the initialization, the shuffling and dropout.
    epochs: Passes over the training rows.
    batch_size: Rows per minibatch.
    learning_rate: Adam's learning rate, finite and ``> 0``.
    hidden: Hidden units, an int ``>= 0``; 0 for a linear model.
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
  X = np.asarray(X, np.float32)
  y_np = np.asarray(y)
  if X.ndim != 2 or X.shape[0] != y_np.shape[0]:
    raise ValueError(f"X must have shape (n, d) with n = len(y) = {y_np.shape[0]}, got "
                     f"{X.shape}.")
  if not np.all(np.isfinite(X)):
    bad = np.argwhere(~np.isfinite(X))[0]
    raise ValueError(f"X must be finite, got {X[tuple(bad)]} at row {bad[0]}, column "
                     f"{bad[1]} ({int(np.sum(~np.isfinite(X)))} non-finite value(s)).")
  task, num_classes, y_np = _infer_task(y_np, task)
  folds, repeats = _check_int("folds", folds, 2), _check_int("repeats", repeats, 1)
  epochs, batch_size = _check_int("epochs", epochs, 1), _check_int("batch_size", batch_size, 1)
  hidden, seed = _check_int("hidden", hidden, 0), _check_int("seed", seed, 0)
  learning_rate = _check_number("learning_rate", learning_rate, low=0.0)
  confidence = _check_number("confidence", confidence, low=0.0, high=1.0, high_open=True)
  target_recall = _check_number("target_recall", target_recall, low=0.0, high=1.0)
  pinball_alpha = _check_number("pinball_alpha", pinball_alpha, low=0.0, high=1.0,
                                high_open=True)
  parsed = [s if isinstance(s, LossSpec) else parse_spec(s)
            for s in (default_specs(task) if specs is None else specs)]
  if not parsed:
    raise ValueError("specs must name at least one spec, e.g. ['bce'].")
  texts = [s.text for s in parsed]
  if len(set(texts)) != len(texts):
    raise ValueError(f"specs must be distinct, got {texts}.")
  n = X.shape[0]
  smallest = n if task == "regression" else int(np.bincount(y_np).min())
  if folds > smallest:
    raise ValueError(f"folds={folds} exceeds " + (f"the number of rows ({n})." if task ==
                     "regression" else f"the size of the smallest class ({smallest} rows)."))
  if hidden == 0 and any(n == "dropout" for s in parsed for n, _ in s.penalties):
    raise ValueError("dropout needs a hidden layer: use hidden > 0.")
  resolved = [resolve_loss(s, task, num_classes) for s in parsed]  # fail before training
  cost = None if cost is None else as_decision_cost(cost).check(task, num_classes)
  names = METRICS[task] + (COST_METRICS if cost is not None else ())

  key = jax.random.key(seed)
  masks = _repeated_masks(n, folds, repeats, jax.random.fold_in(key, 1), None if task ==
                          "regression" else jnp.asarray(y_np))
  Xj, yj = jnp.asarray(X), jnp.asarray(y_np)
  # Per repeat: a shuffle, an initialization and a dropout key, shared by the
  # repeat's folds and by every spec (the comparison is paired).
  shuffles = [_folds.shuffles(n, epochs, batch_size, seed if r == 0 else (seed, r))
              for r in range(repeats)]
  batches = jnp.asarray(np.repeat(np.stack([b for b, _ in shuffles]), folds, axis=0))
  valid = jnp.asarray(np.repeat(np.stack([v for _, v in shuffles]), folds, axis=0))
  per_repeat = lambda k, r: k if r == 0 else jax.random.fold_in(k, r)
  init_keys = [per_repeat(jax.random.fold_in(key, 2), r) for r in range(repeats)]
  dropout_keys = jnp.stack([per_repeat(jax.random.fold_in(key, 3), r)
                            for r in range(repeats) for _ in range(folds)])
  settings = dict(folds=folds, repeats=repeats, seed=seed, epochs=epochs,
                  batch_size=batch_size, learning_rate=learning_rate, hidden=hidden,
                  n_samples=int(n), n_features=int(X.shape[1]), num_classes=num_classes,
                  model="mlp" if hidden else "linear", optimizer="adam",
                  confidence=confidence, target_recall=target_recall,
                  pinball_alpha=pinball_alpha, test_train_ratio=1 / (folds - 1),
                  data_sha256=hashlib.sha256(X.tobytes() + y_np.tobytes()).hexdigest())
  if cost is not None:
    settings["cost"] = cost.to_dict()
  masks_np = np.asarray(masks)
  scores, curves, held_curves, seconds, preds, probs = {}, {}, {}, {}, {}, {}
  decisions = {}
  bar = _progress(parsed, progress)
  for spec, (loss_name, loss_params) in zip(bar, resolved):
    as_f32 = lambda d: {k: jnp.float32(v) for k, v in d.items() if v is not None}
    hyper = {"loss": as_f32(loss_params),
             "penalties": {name: as_f32(p) for name, p in spec.penalties}}
    static = dict(loss_name=loss_name, learning_rate=learning_rate,
                  regression=task == "regression")
    start = time.perf_counter()
    n_out = num_classes if loss_name == "ce" else 1
    if spec.members > 1:  # a bagged ensemble: a member axis inside the fold axis
      per_fold = (masks, batches, valid) + _ensemble_inputs(
          jax.random.fold_in(key, 4), init_keys, dropout_keys, masks_np,
          members=spec.members, n_features=X.shape[1], n_out=n_out, hidden=hidden)
      train, train_one = _folds.train_ensemble_folds, _folds.train_one_fold_ensemble
    else:
      params = [_folds.init_params(k, X.shape[1], n_out, hidden) for k in init_keys]
      params = jax.tree.map(lambda *p: jnp.repeat(jnp.stack(p), folds, axis=0), *params)
      per_fold = (masks, batches, valid, params, dropout_keys)
      train, train_one = _folds.train_folds, _folds.train_one_fold
    if vmap_folds:
      z, curve, held = train(*per_fold, Xj, yj, hyper, **static)
    else:
      runs = [train_one(*jax.tree.map(lambda a: a[i], per_fold), Xj, yj, hyper, **static)
              for i in range(len(masks_np))]
      z, curve, held = (jnp.stack([r[i] for r in runs]) for i in range(3))
    if spec.members > 1:  # the members' mean probability; their mean loss curves
      z = _folds.average_members(z, regression=task == "regression")
      curve, held = curve.mean(axis=1), held.mean(axis=1)
    curve = np.asarray(curve)
    _diverged(spec.text, curve, folds, repeats)
    out = fold_scores(z, yj, masks, task=task, num_classes=num_classes,
                      pinball_alpha=pinball_alpha)
    if cost is not None:
      spent, chosen = fold_costs(z, yj, masks, task=task, cost=cost)
      out = {**out, **spent}
      decisions[spec.text] = {k: np.asarray(v, np.float64) for k, v in chosen.items()}
    scores[spec.text] = {m: np.asarray(out[m], np.float64) for m in names}
    z0 = np.asarray(z[:folds])
    if task == "regression":
      preds[spec.text] = probs[spec.text] = _first_repeat(z0, masks_np[:folds])
    else:
      pred, prob = (np.asarray(a) for a in jax.vmap(lambda v: decode(v, task))(z[:folds]))
      preds[spec.text] = _first_repeat(pred, masks_np[:folds])
      probs[spec.text] = _first_repeat(prob, masks_np[:folds])
    curves[spec.text], held_curves[spec.text] = curve, np.asarray(held)
    seconds[spec.text] = time.perf_counter() - start
  # All paired tests at once: differences shaped (specs - 1, metrics, folds).
  diffs = np.stack([[scores[s][m] - scores[texts[0]][m] for m in names] for s in texts[1:]]
                   ) if len(texts) > 1 else np.zeros((0, len(names), len(masks_np)))
  tests = [np.asarray(v) for v in corrected_resampled_ttest(
      diffs, test_train_ratio=1 / (folds - 1), confidence=confidence)]
  paired = {s: {m: {k: float(v[i, j]) for k, v in zip(PAIRED_KEYS, tests)}
                for j, m in enumerate(names)} for i, s in enumerate(texts[1:])}
  return ComparisonResult(tuple(texts), scores, curves, seconds, task, settings, preds,
                          names, probs, y_np, held_curves, paired, cost, decisions)


def _progress(items, enabled: bool):
  if not enabled:
    return items
  from tqdm.auto import tqdm
  return tqdm(items, desc="specs", unit="spec", leave=False)
