"""``compare_multitask``: classify and localize, several multi-task objectives, k-fold CV.

The detection-style case of the seed: a two-head MLP predicts a class and a box
``(cx, cy, w, h)`` in image units (a sigmoid keeps it in ``[0, 1]``), trained
on a combination of a classification loss and box losses. Each spec names the
terms and how they combine (the mini-grammar is in :func:`parse_multitask_spec`).
As in ``compare_losses``, and through the same engine
(:mod:`~lossreg_jax.experiments.engine`: a Flax NNX model, ``training.train_step``),
the k fold-models of a spec train in ONE compiled program ``vmap``-ed over the
folds (each fold's minibatches hold its training rows only), and held-out
accuracy and mean IoU are reported side by side. :func:`make_shapes` generates the bundled
rectangles-and-discs data of notebook 06.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from flax import nnx

from lossreg_jax import losses, metrics, selection
from lossreg_jax.experiments import engine, models
from lossreg_jax.experiments.compare import _adam, _progress

__all__ = [
    "MultitaskResult",
    "MultitaskSpec",
    "compare_multitask",
    "make_shapes",
    "parse_multitask_spec",
]

CLASS_TERMS = ("ce",)
BOX_TERMS = ("smooth_l1", "iou", "giou", "diou", "ciou")
SMOOTH_L1_BETA = 0.05  # in image units: 0.05 of the image side, as notebook 06
METRICS = ("accuracy", "mean_iou")
_TERM = re.compile(r"^(?:(?P<weight>[0-9.eE+-]+)\*)?(?P<name>[a-z_0-9]+)$")


def make_shapes(key: jax.Array | int, n: int, *, size: int = 16,
                noise: float = 0.15) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Generates ``n`` noisy images of one rectangle (class 0) or one disc (class 1).

  The data of notebook 06: a rectangle has integer corners and sides drawn in
  ``[4, 11]`` pixels (at ``size=16``, scaled with ``size``), a disc a radius in
  ``[2.5, 5.5]`` pixels; both lie inside the image. Gaussian pixel noise of
  standard deviation ``noise`` is added. Pixel ``(i, j)`` has its centre at
  ``(j + 0.5, i + 0.5)``.

  Args:
    key: ``jax.random`` key or int seed.
    n: Number of images.
    size: Image side in pixels.
    noise: Standard deviation of the pixel noise.

  Returns:
    ``(images, classes, boxes)``: float32 ``(n, size, size)``, int32 ``(n,)``
    and float32 ``(n, 4)`` boxes in ``cxcywh`` format, in image units
    (``[0, 1]``).

  Raises:
    ValueError: if ``n`` or ``size`` is too small.

  Examples:
    >>> images, classes, boxes = make_shapes(0, 8)
    >>> images.shape, classes.shape, boxes.shape
    ((8, 16, 16), (8,), (8, 4))
    >>> bool(((boxes[:, 2:] > 0) & (boxes[:, 2:] <= 1)).all())
    True
  """
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f"n must be an int >= 1, got {n!r}.")
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
    raise ValueError(f"size must be an int >= 8, got {size!r}.")
  key = jax.random.key(key) if isinstance(key, (int, np.integer)) else key
  return _shapes(key, int(n), int(size), jnp.float32(noise))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _shapes(key, n, size, noise):
  k_cls, k_wh, k_xy, k_r, k_c, k_noise = jax.random.split(key, 6)
  scale = size / 16
  classes = jax.random.randint(k_cls, (n,), 0, 2)
  wh = jnp.round(jax.random.uniform(k_wh, (n, 2), minval=4 * scale, maxval=11 * scale))
  x0y0 = jnp.round(jax.random.uniform(k_xy, (n, 2)) * (size - wh))
  r = jax.random.uniform(k_r, (n, 1), minval=2.5 * scale, maxval=5.5 * scale)
  centre = r + jax.random.uniform(k_c, (n, 2)) * (size - 2 * r)
  grid = jnp.arange(size, dtype=jnp.float32) + 0.5  # pixel centres
  xx, yy = grid[None, None, :], grid[None, :, None]
  rect = ((xx > x0y0[:, :1, None]) & (xx < (x0y0 + wh)[:, :1, None])
          & (yy > x0y0[:, 1:, None]) & (yy < (x0y0 + wh)[:, 1:, None]))
  disc = (xx - centre[:, :1, None]) ** 2 + (yy - centre[:, 1:, None]) ** 2 < r[:, :, None] ** 2
  is_disc = classes == 1
  images = jnp.where(is_disc[:, None, None], disc, rect).astype(jnp.float32)
  images = images + noise * jax.random.normal(k_noise, images.shape)
  boxes = jnp.where(is_disc[:, None], jnp.concatenate([centre, 2 * r, 2 * r], axis=1)[:, :4],
                    jnp.concatenate([x0y0 + wh / 2, wh], axis=1))
  return images, classes.astype(jnp.int32), (boxes / size).astype(jnp.float32)


class MultitaskSpec(NamedTuple):
  """A parsed multi-task spec: ``terms`` is ``((name, weight), ...)``."""

  text: str
  terms: tuple[tuple[str, float], ...]
  combine: str  # "weighted" (losses.weighted_sum) or "uncertainty" (losses.uncertainty_weighted)


def parse_multitask_spec(text: str) -> MultitaskSpec:
  """Reads ``TERM(+TERM)*[:uncertainty]``, TERM being ``[WEIGHT*]NAME``.

  NAME is ``ce`` (integer-label softmax cross-entropy, exactly once) or a box
  loss on ``cxcywh`` boxes: ``smooth_l1`` (``beta = 0.05`` image units),
  ``iou``, ``giou``, ``diou``, ``ciou`` (at least one). Without a suffix the
  terms combine by ``losses.weighted_sum`` with the given weights (default 1):
  ``"ce+5*smooth_l1+giou"``. With ``:uncertainty`` they combine by
  ``losses.uncertainty_weighted`` with one learned log-variance per term,
  initialized at 0 and trained with the model; weights are then not allowed.

  Args:
    text: The spec.

  Returns:
    A :class:`MultitaskSpec`.

  Raises:
    ValueError: naming the bad part and the allowed names.

  Examples:
    >>> parse_multitask_spec("ce+5*smooth_l1+giou").terms
    (('ce', 1.0), ('smooth_l1', 5.0), ('giou', 1.0))
    >>> parse_multitask_spec("ce+smooth_l1+giou:uncertainty").combine
    'uncertainty'
  """
  if not isinstance(text, str) or not text.strip():
    raise ValueError(f"a multi-task spec must be a non-empty string, got {text!r}.")
  body, _, suffix = text.strip().partition(":")
  if suffix not in ("", "uncertainty"):
    raise ValueError(f"spec {text!r}: unknown combination {suffix!r}; the only suffix is "
                     f"':uncertainty' (default: a weighted sum).")
  terms = []
  for part in body.split("+"):
    match = _TERM.match(part.strip())
    if match is None or match["name"] not in CLASS_TERMS + BOX_TERMS:
      raise ValueError(f"spec {text!r}: bad term {part!r}; a term is [WEIGHT*]NAME with NAME "
                       f"in {CLASS_TERMS + BOX_TERMS}.")
    try:
      weight = 1.0 if match["weight"] is None else float(match["weight"])
    except ValueError:
      raise ValueError(f"spec {text!r}: weight {match['weight']!r} is not a number.") from None
    if not (np.isfinite(weight) and weight > 0):
      raise ValueError(f"spec {text!r}: weights must be positive, got {weight}.")
    if suffix and match["weight"] is not None:
      raise ValueError(f"spec {text!r}: ':uncertainty' learns the weights; drop {part!r}'s "
                       f"weight.")
    terms.append((match["name"], weight))
  names = [name for name, _ in terms]
  if names.count("ce") != 1 or len(set(names)) != len(names) or len(names) < 2:
    raise ValueError(f"spec {text!r} must name 'ce' once and at least one box loss of "
                     f"{BOX_TERMS}, each once.")
  return MultitaskSpec(text.strip(), tuple(terms), suffix or "weighted")


@dataclasses.dataclass(frozen=True)
class MultitaskResult:
  """What :func:`compare_multitask` measured.

  Attributes:
    specs: The spec strings, in order.
    scores: ``{spec: {"accuracy" | "mean_iou": per-fold values (folds,)}}`` on
      each fold's held-out rows (mean IoU of predicted vs true boxes).
    train_loss: ``{spec: array (folds, epochs)}``, each epoch's mean objective.
    seconds: ``{spec: wall seconds}`` (compilation included).
    settings: The model and training settings.
    test_masks: Boolean ``(folds, n)``, True where a row is held out.
    predictions: ``{spec: {"classes": (n,), "boxes": (n, 4) cxcywh}}``, each
      row predicted by the model of the fold that held it out.
    log_vars: ``{spec: {term: (folds,)}}``: the learned log-variances of
      ``:uncertainty`` specs (empty for weighted sums).
  """

  specs: tuple[str, ...]
  scores: dict
  train_loss: dict
  seconds: dict
  settings: dict
  test_masks: np.ndarray
  predictions: dict
  log_vars: dict

  def summary(self) -> dict:
    """``{spec: {metric: (mean, std)}}`` over folds (``std`` with ``ddof=0``)."""
    return {s: {m: (float(np.mean(v)), float(np.std(v))) for m, v in self.scores[s].items()}
            for s in self.specs}

  def table(self) -> str:
    """The summary as a fixed-width text table, one row per spec."""
    width = max(len("spec"), *(len(s) for s in self.specs))
    head = f"{'spec':<{width}}  " + "  ".join(f"{m:>15}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for spec, row in self.summary().items():
      cells = "  ".join(f"{row[m][0]:>7.3f} ± {row[m][1]:.3f}" for m in METRICS)
      lines.append(f"{spec:<{width}}  {cells}")
    return "\n".join(lines)

  def to_dict(self) -> dict:
    """A JSON-ready dictionary with per-fold values, means and stds."""
    return {
        "task": "multitask", "settings": self.settings,
        "results": [{
            "spec": s, "seconds": self.seconds[s],
            "metrics": {m: {"mean": float(np.mean(v)), "std": float(np.std(v)),
                            "folds": [float(x) for x in v]}
                        for m, v in self.scores[s].items()},
            "train_loss_mean": [float(x) for x in np.mean(self.train_loss[s], axis=0)],
            "log_vars": {k: [float(x) for x in v] for k, v in self.log_vars[s].items()},
        } for s in self.specs],
    }


class TwoHeadMLP(nnx.Module):
  """A shared ReLU layer, class logits and a sigmoid box; the log-variances of
  ``:uncertainty`` as a parameter (zeros; unused, and untouched, otherwise)."""

  def __init__(self, num_inputs: int, num_classes: int, num_terms: int, rngs: nnx.Rngs, *,
               hidden: int):
    dense = functools.partial(nnx.Linear, kernel_init=nnx.initializers.glorot_uniform(),
                              rngs=rngs)
    self.shared = dense(num_inputs, hidden)
    self.cls = dense(hidden, num_classes)
    self.box = dense(hidden, 4)
    self.log_vars = nnx.Param(jnp.zeros((num_terms,)))

  def __call__(self, x):
    h = jax.nn.relu(self.shared(x.reshape(x.shape[0], -1)))
    # The log-variances ride along with every row, so that the loss (a function
    # of the outputs, as every engine loss) can weigh the terms with them.
    log_vars = jnp.broadcast_to(self.log_vars[...], (x.shape[0], self.log_vars.shape[0]))
    return {"logits": self.cls(h), "boxes": jax.nn.sigmoid(self.box(h)), "log_vars": log_vars}


def _term(name, logits, boxes, labels, target_boxes, where):
  if name == "ce":
    return losses.softmax_cross_entropy_with_integer_labels(logits, labels, where=where)
  if name == "smooth_l1":
    return losses.smooth_l1_loss(boxes, target_boxes, beta=SMOOTH_L1_BETA, where=where[:, None])
  box_loss = {"iou": losses.iou_loss, "giou": losses.giou_loss, "diou": losses.diou_loss,
              "ciou": losses.ciou_loss}[name]
  return box_loss(boxes, target_boxes, box_format="cxcywh", where=where)


def _multitask_loss(outputs, targets, *, where=None, weights=None, names, combine, **factor):
  """The spec's objective on the two heads; ``factor`` holds the traced term weights."""
  del weights  # no bagging here
  where = jnp.ones(targets["labels"].shape, bool) if where is None else where
  terms = {name: _term(name, outputs["logits"], outputs["boxes"], targets["labels"],
                       targets["boxes"], where) for name in names}
  if combine == "uncertainty":
    log_vars = {name: outputs["log_vars"][0, i] for i, name in enumerate(names)}
    return losses.uncertainty_weighted(terms, log_vars)[0]
  return losses.weighted_sum(terms, {name: factor[f"w_{name}"] for name in names})[0]


@functools.lru_cache(maxsize=64)
def _loss_for(names: tuple, combine: str):
  # One loss object per (terms, combination): repeated comparisons reuse the program.
  return functools.partial(_multitask_loss, names=names, combine=combine)


def _train_spec(spec: MultitaskSpec, masks, batches, valid, Xj, targets, *, key, hidden,
                num_classes, learning_rate):
  """Every fold of a spec through the comparison engine: ``(classes, boxes, curve, log_vars)``."""
  names = tuple(name for name, _ in spec.terms)
  model_fn = models.Factory(TwoHeadMLP, (Xj.shape[1], num_classes, len(names)),
                            (("hidden", hidden),))
  graphdef, states = engine.initial_states(
      model_fn, _adam(learning_rate), [jax.random.fold_in(key, 2)],
      [jax.random.fold_in(key, 3)], folds=masks.shape[0])
  # Pixels as given (in [0, 1] plus noise): standardizing them per pixel would
  # blow the background's noise up to the shapes' scale.
  program = engine.Program(graphdef, _loss_for(names, spec.combine), None, False, False,
                           standardize=False)
  hyper = {"loss": {f"w_{name}": jnp.float32(w) for name, w in spec.terms}, "penalties": {},
           "data": {}}
  z, curve, _ = engine.train_folds(masks, batches, valid, states, None, Xj, targets, hyper,
                                   program=program)
  log_vars = {name: z["log_vars"][:, 0, i] for i, name in enumerate(names)}
  return jnp.argmax(z["logits"], axis=-1), z["boxes"], curve, log_vars


@jax.jit
def _fold_scores(pred_classes, pred_boxes, labels, boxes, test_masks):
  """Held-out accuracy and mean IoU per fold, shape ``(folds,)`` each."""

  def one(c, b, m):
    iou = 1 - losses.iou_loss(b, boxes, box_format="cxcywh", reduction="none")
    return {"accuracy": metrics.accuracy(c, labels, where=m),
            "mean_iou": jnp.sum(jnp.where(m, iou, 0)) / jnp.sum(m)}

  return jax.vmap(one)(pred_classes, pred_boxes, test_masks)


def _check_int(name: str, value, minimum: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")


def compare_multitask(
    images: ArrayLike,
    classes: ArrayLike,
    boxes: ArrayLike,
    specs: Sequence[str | MultitaskSpec],
    *,
    folds: int = 5,
    seed: int = 0,
    epochs: int = 15,
    batch_size: int = 125,
    learning_rate: float = 1e-3,
    hidden: int = 128,
    progress: bool = False,
) -> MultitaskResult:
  """Trains a classify-and-localize model under each multi-task spec with k-fold CV.

  The model is a two-head Flax NNX MLP (:class:`TwoHeadMLP`) on the flattened
  images as given (``hidden`` ReLU units;
  class logits and a sigmoid box ``(cx, cy, w, h)``), trained by Adam on
  shuffled minibatches of the fold's training rows. Folds are ``selection.kfold_masks`` stratified by
  class; all folds of a spec train in ONE compiled, ``vmap``-ed program, and
  specs with the same terms and combination share it. Reported per fold on its
  held-out rows: classification accuracy and the mean IoU of the predicted
  boxes.

  Args:
    images: ``(n, ...)`` images (flattened per row), e.g. from :func:`make_shapes`.
    classes: Integer class labels ``(n,)``.
    boxes: Target boxes ``(n, 4)`` in ``cxcywh`` format, image units.
    specs: Spec strings (see :func:`parse_multitask_spec`) or parsed specs.
    folds: Number of CV folds ``k >= 2``.
    seed: Seeds the folds, the initialization and the shuffling.
    epochs: Passes over the training rows.
    batch_size: Rows per minibatch.
    learning_rate: Adam's learning rate.
    hidden: Hidden units of the shared layer.
    progress: Show a tqdm bar over the specs.

  Returns:
    A :class:`MultitaskResult`; ``.table()`` prints accuracy and mean IoU.

  Raises:
    ValueError: for a bad spec or mismatched shapes.

  Examples:
    >>> images, classes, boxes = make_shapes(0, 240)
    >>> specs = ["ce+smooth_l1+giou", "ce+smooth_l1+giou:uncertainty"]
    >>> res = compare_multitask(images, classes, boxes, specs, folds=3, epochs=4,
    ...                         batch_size=60, hidden=32, learning_rate=3e-3)
    >>> res.scores["ce+smooth_l1+giou"]["mean_iou"].shape, sorted(res.log_vars[specs[1]])
    ((3,), ['ce', 'giou', 'smooth_l1'])
  """
  parsed = [s if isinstance(s, MultitaskSpec) else parse_multitask_spec(s) for s in specs]
  if not parsed:
    raise ValueError("specs must name at least one spec, e.g. ['ce+smooth_l1'].")
  texts = [s.text for s in parsed]
  if len(set(texts)) != len(texts):
    raise ValueError(f"specs must be distinct, got {texts}.")
  X = np.asarray(images, np.float32)
  y = np.asarray(classes)
  B = np.asarray(boxes, np.float32)
  n = X.shape[0] if X.ndim else 0
  if X.ndim < 2 or y.shape != (n,) or B.shape != (n, 4):
    raise ValueError(f"images must be (n, ...), classes (n,) and boxes (n, 4) with one n, "
                     f"got shapes {X.shape}, {y.shape}, {B.shape}.")
  if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
    raise ValueError(f"classes must be integer labels 0..k-1, got dtype {y.dtype}.")
  _check_int("folds", folds, 2)
  _check_int("epochs", epochs, 1)
  _check_int("batch_size", batch_size, 1)
  _check_int("hidden", hidden, 1)
  num_classes = int(y.max()) + 1
  if folds > np.bincount(y).min():
    raise ValueError(f"folds={folds} exceeds the size of the smallest class "
                     f"({np.bincount(y).min()} rows).")
  key = jax.random.key(seed)
  masks = selection.kfold_masks(n, folds, key=jax.random.fold_in(key, 1),
                                stratify=jnp.asarray(y))
  Xj, yj, Bj = jnp.asarray(X.reshape(n, -1)), jnp.asarray(y.astype(np.int32)), jnp.asarray(B)
  # Each fold's minibatches hold its training rows only, in one shared row order.
  rows, ok = engine.fold_batches(engine.shuffles(n, epochs, seed), np.asarray(masks),
                                 batch_size)
  batches, valid = jnp.asarray(rows), jnp.asarray(ok)
  settings = dict(folds=folds, seed=seed, epochs=epochs, batch_size=batch_size,
                  learning_rate=learning_rate, hidden=hidden, n_samples=n,
                  n_features=int(Xj.shape[1]), num_classes=num_classes,
                  smooth_l1_beta=SMOOTH_L1_BETA, model="two-head mlp", optimizer="adam")
  scores, curves, seconds, predictions, log_vars = {}, {}, {}, {}, {}
  for spec in _progress(parsed, progress):
    start = time.perf_counter()
    pred_c, pred_b, curve, lv = _train_spec(
        spec, masks, batches, valid, Xj, {"labels": yj, "boxes": Bj}, key=key, hidden=hidden,
        num_classes=num_classes, learning_rate=float(learning_rate))
    out = _fold_scores(pred_c, pred_b, yj, Bj, masks)
    scores[spec.text] = {m: np.asarray(out[m]) for m in METRICS}
    curves[spec.text] = np.asarray(curve)
    # Each row is held out by exactly one fold: pick that fold's prediction.
    predictions[spec.text] = {
        "classes": np.asarray(jnp.sum(jnp.where(masks, pred_c, 0), axis=0)),
        "boxes": np.asarray(jnp.sum(jnp.where(masks[..., None], pred_b, 0), axis=0))}
    log_vars[spec.text] = ({k: np.asarray(v) for k, v in lv.items()}
                           if spec.combine == "uncertainty" else {})
    seconds[spec.text] = time.perf_counter() - start
  return MultitaskResult(tuple(texts), scores, curves, seconds, settings, np.asarray(masks),
                         predictions, log_vars)
