"""Bundled real data sets, a deterministic train/test split and a CSV loader.

Data sets ship inside the package (``lossreg_jax/data/``; sources and licenses
in its README), so nothing is downloaded and scikit-learn is not needed at run
time. Everything here runs on the host once, before training: these functions
are not meant for ``jax.jit``.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax._validation import check_choice

__all__ = [
    "Dataset",
    "list_datasets",
    "load",
    "load_csv",
    "train_test_split",
]

_TASKS = ("binary", "multiclass", "regression")
# name -> (task, file, one-line description)
_BUNDLED = {
    "breast_cancer": ("binary", "breast_cancer.npz",
                      "569 tumours x 30 features; 1 = malignant, 0 = benign"),
    "digits": ("multiclass", "digits.npz",
               "1797 8x8 images of digits 0-9 (pixel values 0-16)"),
    "wine": ("multiclass", "wine.npz", "178 wines x 13 chemical features, 3 cultivars"),
    "diabetes": ("regression", "diabetes.npz",
                 "442 patients x 10 scaled features; disease progression after one year"),
    "macrodata": ("regression", "macrodata.csv",
                  "US macro data, 203 quarters 1959Q1-2009Q3; target default 'unemp'"),
}
# Image sets: the (height, width, channels) of one row of X.
_IMAGE_SHAPES = {"digits": (8, 8, 1)}
_MACRO_INDEX = ("year", "quarter")
_MISSING = ("", "na", "nan", "n/a", "null", "none")


class Dataset(NamedTuple):
  """A data set as JAX arrays.

  Attributes:
    X: Features, float32, shape ``(n_samples, n_features)``.
    y: Targets, shape ``(n_samples,)``: int32 class indices for ``"binary"`` and
      ``"multiclass"``, float32 for ``"regression"``.
    feature_names: One name per column of ``X``.
    target_names: Class names indexed by ``y`` for classification; the target
      column's name (one entry) for regression.
    task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
    image_shape: For an image set, ``(height, width, channels)`` of one row:
      ``X.reshape(-1, *image_shape)`` gives the images (``digits``: ``(8, 8,
      1)``, for ``compare_losses(model="cnn")``); None for a table.

  Examples:
    >>> ds = load("digits")
    >>> ds.X.shape, ds.image_shape, ds.X.reshape(-1, *ds.image_shape).shape
    ((1797, 64), (8, 8, 1), (1797, 8, 8, 1))
    >>> load("wine").image_shape is None
    True
  """

  X: jax.Array
  y: jax.Array
  feature_names: tuple[str, ...]
  target_names: tuple[str, ...]
  task: str
  image_shape: tuple[int, ...] | None = None


def list_datasets() -> tuple[str, ...]:
  """Names of the bundled data sets, for :func:`load`.

  Returns:
    A tuple of names.

  Examples:
    >>> list_datasets()
    ('breast_cancer', 'digits', 'wine', 'diabetes', 'macrodata')
  """
  return tuple(_BUNDLED)


def _as_dataset(X, y, feature_names, target_names, task) -> Dataset:
  y = np.asarray(y)
  y = jnp.asarray(y, jnp.float32 if task == "regression" else jnp.int32)
  return Dataset(jnp.asarray(np.asarray(X, np.float64), jnp.float32), y,
                 tuple(str(n) for n in feature_names),
                 tuple(str(n) for n in target_names), task)


def _load_bundled(name: str, target: str | None) -> tuple[Dataset, bool]:
  """Returns the full data set and whether its rows are a time series."""
  task, filename, _ = _BUNDLED[name]
  source = resources.files("lossreg_jax").joinpath("data", filename)
  if name == "macrodata":
    with resources.as_file(source) as path:
      full = load_csv(path, target=target or "unemp", task="regression")
    keep = [i for i, n in enumerate(full.feature_names) if n not in _MACRO_INDEX]
    return full._replace(X=full.X[:, np.asarray(keep)],
                         feature_names=tuple(full.feature_names[i] for i in keep)), True
  if target is not None:
    raise ValueError(f"target= only applies to 'macrodata' (a CSV), got target={target!r} "
                     f"for {name!r}.")
  with source.open("rb") as f, np.load(f, allow_pickle=False) as npz:
    X, y = npz["X"], npz["y"]
    feature_names, target_names = npz["feature_names"], npz["target_names"]
  if name == "breast_cancer":
    # scikit-learn encodes 0 = malignant; make the disease the positive class.
    y = 1 - y
    target_names = target_names[::-1]
  full = _as_dataset(X, y, feature_names, target_names, task)
  return full._replace(image_shape=_IMAGE_SHAPES.get(name)), False


def load(
    name: str,
    *,
    split: str | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    standardize: bool = False,
    target: str | None = None,
) -> Dataset:
  """Loads a bundled real data set.

  ``breast_cancer``, ``digits``, ``wine`` and ``diabetes`` hold the same numbers
  as scikit-learn's ``load_*`` functions (default arguments), except that
  ``breast_cancer`` labels *malignant* as 1 (scikit-learn: 0), so that the
  positive class is the disease. ``macrodata`` is statsmodels' US quarterly
  macro series (1959Q1-2009Q3) in time order; ``year`` and ``quarter`` are
  dropped from the features and ``target`` picks the column to predict
  (default ``"unemp"``, the unemployment rate).

  Args:
    name: One of :func:`list_datasets`.
    split: ``None`` for all rows, ``"train"`` or ``"test"`` for one side of
      :func:`train_test_split` with ``seed`` and ``test_size``, stratified by
      class for classification. The time series ``macrodata`` is split in time
      order (the last quarters are the test set) and ``seed`` is unused.
    test_size: Fraction (in ``(0, 1)``) or number of rows in the test split.
    seed: Seed of the shuffle behind ``split``.
    standardize: If True, centre and scale every feature to unit variance with
      the statistics of the training rows (all rows when ``split=None``), so
      that train and test are scaled alike. Constant features are centred only.
    target: Target column of ``macrodata``; not allowed for the other sets.

  Returns:
    A :class:`Dataset`.

  Raises:
    ValueError: for an unknown ``name``, ``split`` or ``target``.

  Examples:
    >>> ds = load("breast_cancer")
    >>> ds.X.shape, ds.X.dtype, ds.y.dtype, ds.task, ds.target_names
    ((569, 30), dtype('float32'), dtype('int32'), 'binary', ('benign', 'malignant'))
    >>> train = load("wine", split="train", standardize=True)
    >>> train.X.shape, round(float(train.X.mean()), 4) == 0.0
    ((133, 13), True)
  """
  check_choice("name", name, tuple(_BUNDLED))
  if split is not None:
    check_choice("split", split, ("train", "test"))
  full, time_series = _load_bundled(name, target)
  if split is None:
    train_X = full.X
  else:
    stratify = None if full.task == "regression" else full.y
    X_tr, X_te, y_tr, y_te = train_test_split(
        seed, full.X, full.y, test_size=test_size, stratify=stratify,
        shuffle=not time_series)
    train_X = X_tr
    full = full._replace(X=X_tr, y=y_tr) if split == "train" else full._replace(X=X_te, y=y_te)
  if standardize:
    train_X = np.asarray(train_X, np.float64)
    mean, std = train_X.mean(axis=0), train_X.std(axis=0)
    X = (np.asarray(full.X, np.float64) - mean) / np.where(std > 0, std, 1.0)
    full = full._replace(X=jnp.asarray(X, jnp.float32))
  return full


def _test_count(n: int, test_size: float) -> int:
  if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
    if not 0 < test_size < n:
      raise ValueError(f"test_size must be a row count in [1, {n - 1}] for {n} rows, "
                       f"got {test_size}.")
    return int(test_size)
  if not 0.0 < float(test_size) < 1.0:
    raise ValueError(f"test_size must be a fraction in (0, 1) or a row count, got {test_size!r}.")
  count = int(math.ceil(float(test_size) * n))  # as scikit-learn: ceil for the test side
  if not 0 < count < n:
    raise ValueError(f"test_size={test_size} leaves an empty train or test split for {n} rows.")
  return count


def train_test_split(
    key: jax.Array | int,
    *arrays: ArrayLike,
    test_size: float = 0.25,
    stratify: ArrayLike | None = None,
    shuffle: bool = True,
) -> tuple[jax.Array, ...]:
  """Splits arrays into train and test rows, deterministically for a key.

  The same ``key`` (a ``jax.random`` key or an int seed) always gives the same
  split. With ``stratify``, each class keeps its share in both splits (the
  test share of class ``c`` is ``round(test_size * n_c)``, at least 1 and
  at most ``n_c - 1``, so both sides hold every class); with
  ``shuffle=False`` the last rows are the test set (time series).

  Args:
    key: ``jax.random.key`` / ``PRNGKey`` or an int seed.
    *arrays: Arrays with the same first dimension ``n``.
    test_size: Fraction of rows in ``(0, 1)`` (the test count is rounded up, as
      scikit-learn) or an int number of test rows.
    stratify: Optional class labels, shape ``(n,)``.
    shuffle: Shuffle before splitting. ``stratify`` needs ``shuffle=True``.

  Returns:
    ``(a_train, a_test, b_train, b_test, ...)``: two arrays per input, in order.

  Raises:
    ValueError: if the arrays disagree on ``n``, ``test_size`` is invalid, or
      (with ``stratify``) a class has a single row or a side would have fewer
      rows than there are classes (scikit-learn's ``StratifiedShuffleSplit``
      raises there too).
    TypeError: if ``key`` is neither a ``jax.random`` key nor an int.

  Examples:
    >>> X, y = jnp.arange(8.0).reshape(4, 2), jnp.arange(4)
    >>> X_tr, X_te, y_tr, y_te = train_test_split(0, X, y, test_size=0.25, shuffle=False)
    >>> y_tr, y_te
    (Array([0, 1, 2], dtype=int32), Array([3], dtype=int32))
  """
  if not arrays:
    raise ValueError("train_test_split needs at least one array after the key.")
  arrays = tuple(np.asarray(a) for a in arrays)
  n = arrays[0].shape[0] if arrays[0].ndim else 0
  for i, a in enumerate(arrays):
    if a.ndim == 0 or a.shape[0] != n:
      raise ValueError(f"arrays must share their first dimension: arrays[0] has {n} rows, "
                       f"arrays[{i}] has shape {a.shape}.")
  n_test = _test_count(n, test_size)
  if isinstance(key, bool) or not (isinstance(key, (int, np.integer)) or (
      isinstance(key, (jax.Array, np.ndarray)) and (
          jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == np.uint32))):
    raise TypeError(f"key must be a jax.random key or an int seed, got "
                    f"{type(key).__name__} {key!r:.60}.")
  if isinstance(key, (int, np.integer)):
    key = jax.random.key(int(key))
  # One draw from the JAX key seeds a host generator: the split is then plain
  # NumPy indexing, with no compilation per array shape.
  rng = np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))
  if stratify is not None:
    if not shuffle:
      raise ValueError("stratify needs shuffle=True.")
    labels = np.asarray(stratify)
    if labels.shape != (n,):
      raise ValueError(f"stratify must have shape ({n},), got {labels.shape}.")
    classes, counts = np.unique(labels, return_counts=True)
    # scikit-learn's StratifiedShuffleSplit refuses these splits rather than
    # return one side without some class (or empty).
    if counts.min() < 2:
      raise ValueError(f"stratify: the least populated class ({classes[counts.argmin()]!r}) "
                       f"has only 1 row; a stratified split needs at least 2 per class.")
    for side, size in (("test", n_test), ("train", n - n_test)):
      if size < len(classes):
        raise ValueError(f"test_size={test_size!r} gives {size} {side} rows for {n} rows, "
                         f"fewer than the {len(classes)} classes of stratify; every class "
                         f"needs a row on each side.")
    test_parts = []
    for c in classes:
      rows = rng.permutation(np.flatnonzero(labels == c))
      take = min(max(int(round(n_test / n * len(rows))), 1), len(rows) - 1)
      test_parts.append(rows[:take])
    is_test = np.zeros(n, bool)
    is_test[np.concatenate(test_parts)] = True
    order = rng.permutation(n)
    train_idx, test_idx = order[~is_test[order]], order[is_test[order]]
  else:
    order = rng.permutation(n) if shuffle else np.arange(n)
    train_idx, test_idx = order[: n - n_test], order[n - n_test:]
  out = []
  for a in arrays:
    out += [jnp.asarray(a[train_idx]), jnp.asarray(a[test_idx])]
  return tuple(out)


# --------------------------------------------------------------------------- CSV


def _shown(text: str, limit: int = 40) -> str:
  """``repr`` of a cell, shortened: a message stays one readable line."""
  if len(text) <= limit:
    return repr(text)
  return repr(text[:limit]) + f"... ({len(text)} characters)"


_DELIMITERS = (",", ";", "\t")  # what load_csv(delimiter=None) chooses among


def _detect_delimiter(path: Path, lines: int = 50) -> str:
  """The separator among comma, semicolon and tab that splits the first lines alike.

  Each candidate is counted on the first ``lines`` non-blank lines, outside
  double-quoted cells (a line is taken as a record: no limit on a cell's
  length, unlike the ``csv`` module's sniffer). The winner gives the
  header more than one cell and the most data lines the header's cell count,
  then the most cells; ties go to the comma. A semicolon file with decimal
  commas (``1,5;2``) is seen as semicolon-separated: its comma counts vary.
  A file with none of them (one column) reads as comma-separated.

  Examples:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "semi.csv"
    >>> _ = p.write_text("a;b;label\\n1,5;2;yes\\n3;4,25;no\\n")
    >>> _detect_delimiter(p)
    ';'
  """
  import itertools
  import re

  if not path.is_file():
    return ","
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      sample = [line for line in itertools.islice(f, 4 * lines) if line.strip()][:lines]
  except (OSError, UnicodeDecodeError):
    return ","  # the reader reports the problem
  unquoted = [re.sub(r'"[^"]*"', "", line) for line in sample]
  best, best_score = ",", None
  for delimiter in _DELIMITERS:
    counts = [line.count(delimiter) + 1 for line in unquoted]
    if not counts or counts[0] < 2:
      continue
    score = (sum(c == counts[0] for c in counts[1:]), counts[0])
    if best_score is None or score > best_score:
      best, best_score = delimiter, score
  return best


def _read_table(path: Path, delimiter: str) -> tuple[list[str], np.ndarray, np.ndarray]:
  """Returns the header, the cells (strings, stripped) and each row's line number.

  pandas' C parser reads the file: no limit on a cell's length, quoting as
  the ``csv`` module. Rows whose cells are all empty are skipped; a row with
  fewer cells than the header has its missing cells empty.
  """
  import pandas as pd  # only the CSV path needs it

  if not path.is_file():
    raise ValueError(f"CSV file not found: {str(path)!r}.")
  try:
    # header=None: the header is row 0, so duplicated names are seen as they
    # are (pandas would rename them); every cell stays a string.
    frame = pd.read_csv(path, sep=delimiter, header=None, dtype=object, keep_default_na=False,
                        skip_blank_lines=False, encoding="utf-8-sig")
  except pd.errors.EmptyDataError:
    raise ValueError(f"{str(path)!r} is empty: expected a header row with column "
                     f"names.") from None
  except pd.errors.ParserError as e:
    detail = str(e).split("C error: ")[-1].strip()
    raise ValueError(f"{str(path)!r} cannot be read as CSV (delimiter {delimiter!r}): "
                     f"{detail}; pass the separator as delimiter= (CLI: --delimiter).") from None
  except UnicodeDecodeError as e:
    raise ValueError(f"{str(path)!r} is not UTF-8 text: {e}.") from None
  cells = frame.to_numpy(dtype=object)
  cells = np.vectorize(lambda c: "" if c is None or c != c else str(c).strip(),
                       otypes=[object])(cells) if cells.size else cells.astype(object)
  lines = np.arange(1, len(cells) + 1)  # line 1 is the header
  keep = (cells != "").any(axis=1)
  cells, lines = cells[keep], lines[keep]
  if len(cells) == 0:
    raise ValueError(f"{str(path)!r} is empty: expected a header row with column names.")
  header = [str(c) for c in cells[0]]
  if len(cells) == 1:
    raise ValueError(f"{str(path)!r} has a header but no data rows.")
  duplicated = sorted({h for h in header if header.count(h) > 1})
  if duplicated:
    raise ValueError(f"{str(path)!r} has duplicated column names: {', '.join(duplicated)}.")
  if "" in header:
    raise ValueError(f"{str(path)!r}: header column {header.index('') + 1} has no name.")
  return header, cells[1:], lines[1:]


def _format_lines(lines: Sequence[int]) -> str:
  shown = ", ".join(str(i) for i in lines[:10])
  return shown + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def _numbers(values: np.ndarray) -> np.ndarray:
  """Parses strings as float64; NaN where a cell is not a number."""
  out = np.full(len(values), np.nan)
  for i, text in enumerate(values):
    try:
      out[i] = float(text)
    except (TypeError, ValueError):
      pass
  return out


def _infer_task(values: np.ndarray) -> str:
  numbers = _numbers(values)
  if np.isnan(numbers).any():
    return "binary" if len(set(values)) <= 2 else "multiclass"
  distinct = set(numbers.tolist())
  if all(float(v).is_integer() for v in distinct) and len(distinct) <= 20:
    return "binary" if len(distinct) <= 2 else "multiclass"
  return "regression"


def _choose_columns(path, header, target, features, drop) -> list[str]:
  def check(option, names):
    if isinstance(names, str):
      raise TypeError(f"{option} must be a sequence of column names, got the string "
                      f"{names!r}; write [{names!r}].")
    names = list(names)
    unknown = [n for n in names if n not in header]
    if unknown:
      raise ValueError(f"{option} names column(s) {', '.join(map(repr, unknown))} not found "
                       f"in {str(path)!r}; available columns: {', '.join(header)}.")
    if target in names and option == "features":
      raise ValueError(f"features must not include the target column {target!r}.")
    return names

  columns = [h for h in header if h != target]
  if features is not None:
    chosen = check("features", features)
    columns = [h for h in columns if h in chosen]
  if drop is not None:
    dropped = check("drop", drop)
    columns = [h for h in columns if h not in dropped]
  if not columns:
    raise ValueError(f"{str(path)!r} leaves no feature column besides the target {target!r}"
                     + (" after features= / drop=" if features is not None or drop is not None
                        else "") + "; a data set needs at least one feature.")
  return columns


def load_csv(
    path: str | Path,
    *,
    target: str,
    task: str | None = None,
    drop_missing: bool = False,
    delimiter: str | None = None,
    features: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
) -> Dataset:
  """Loads a CSV file with a header row into a :class:`Dataset`.

  The file is read by pandas. Every column except ``target`` is a feature
  (``features`` / ``drop`` choose among them): a column of numbers is used as
  it is; a column with no number at all is categorical and one-hot encoded,
  one feature ``"column=value"`` per distinct value in sorted order; a column
  mixing numbers and text is an error (most likely a typo in one cell).
  Classification targets may be numbers or strings; their sorted distinct
  values become the classes ``0..k-1`` and ``target_names``. A cell that is
  empty or reads ``NA``, ``NaN``, ``null`` or ``None`` is missing, as are the
  cells a short row lacks. Line numbers in messages count records (line 1 is
  the header).

  Args:
    path: The CSV file.
    target: Name of the target column.
    task: ``"binary"``, ``"multiclass"``, ``"regression"``, or ``None`` to
      infer: a non-numeric target, or integers with at most 20 distinct values,
      is classification (binary for at most two classes); anything else (a
      continuous target) is regression.
    drop_missing: Drop rows with missing cells (in the chosen columns)
      instead of raising.
    delimiter: The cell separator (one character), or ``None`` to detect it
      among comma, semicolon and tab from the first 50 lines: the one that
      splits the header into more than one cell and the most rows into as
      many cells as the header (ties go to the comma).
    features: Names of the feature columns to use (default: all but
      ``target``), in the file's order.
    drop: Names of columns to leave out.

  Returns:
    A :class:`Dataset` with rows in file order.

  Raises:
    ValueError: with a message naming the problem: the file is missing,
      empty or not CSV; ``target``, a ``features`` or a ``drop`` name is not a
      column (the message lists the columns); no feature column is left; a
      cell is not a number (its line number, column and value); rows have
      missing cells (their line numbers; or pass ``drop_missing=True``); a
      classification target has a single class; ``delimiter`` is not one
      character.
    TypeError: if ``features`` or ``drop`` is a string instead of a sequence,
      or ``path``, ``target`` or ``drop_missing`` has the wrong type.

  Examples:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
    >>> _ = p.write_text("a,b,label\\n1,2,yes\\n3,4,no\\n5,6,yes\\n")
    >>> ds = load_csv(p, target="label")
    >>> ds.X.shape, ds.y, ds.target_names, ds.task
    ((3, 2), Array([1, 0, 1], dtype=int32), ('no', 'yes'), 'binary')
    >>> _ = p.write_text("size,colour,price\\n1,red,2.5\\n2,blue,3.75\\n3,red,4.1\\n")
    >>> ds = load_csv(p, target="price")
    >>> ds.feature_names, ds.task
    (('size', 'colour=blue', 'colour=red'), 'regression')
    >>> _ = p.write_text("a;b;label\\n1;2;yes\\n3;4;no\\n")  # the separator is detected
    >>> load_csv(p, target="label").X.shape
    (2, 2)
  """
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f"path must be a file path (str or pathlib.Path), got "
                    f"{type(path).__name__} {path!r:.60}.")
  path = Path(path)
  if task is not None:
    check_choice("task", task, _TASKS)
  if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
    raise ValueError(f"delimiter must be one character or None (detect), got {delimiter!r}.")
  if not isinstance(drop_missing, (bool, np.bool_)):
    raise TypeError(f"drop_missing must be a bool, got {type(drop_missing).__name__} "
                    f"{drop_missing!r}.")
  if not isinstance(target, str):
    raise TypeError(f"target must be a column name (str), got {type(target).__name__}.")
  header, cells, lines = _read_table(path, delimiter or _detect_delimiter(path))
  if target not in header:
    raise ValueError(f"target column {target!r} not found in {str(path)!r}; available "
                     f"columns: {', '.join(header)}.")
  columns = _choose_columns(path, header, target, features, drop)
  used = [header.index(c) for c in (*columns, target)]
  is_missing = np.isin(np.char.lower(cells[:, used].astype(str)), _MISSING)
  missing_rows = is_missing.any(axis=1)
  if missing_rows.any():
    if not drop_missing:
      raise ValueError(f"{str(path)!r} has missing or NaN cells in line(s) "
                       f"{_format_lines(lines[missing_rows].tolist())} (line 1 is the "
                       f"header); fill them or drop those rows with drop_missing=True (CLI: "
                       f"--drop-missing).")
    cells, lines = cells[~missing_rows], lines[~missing_rows]
    if not len(cells):
      raise ValueError(f"{str(path)!r}: every row has a missing cell; nothing is left.")
  blocks, names = [], []
  for name in columns:
    values = cells[:, header.index(name)]
    numbers = _numbers(values)
    bad = ~np.isfinite(numbers)
    if bad.all() and np.isnan(numbers).all():  # no number at all: categorical
      levels = sorted(set(values.tolist()))
      blocks.append((values[:, None] == np.asarray(levels, object)[None, :]).astype(np.float64))
      names += [f"{name}={level}" for level in levels]
      continue
    if bad.any():
      r = int(np.flatnonzero(bad)[0])
      raise ValueError(f"{str(path)!r} line {lines[r]}, column {name!r}: cannot read "
                       f"{_shown(values[r])} as a finite number.")
    blocks.append(numbers[:, None])
    names.append(name)
  X = np.concatenate(blocks, axis=1)
  y_text = cells[:, header.index(target)]
  task = task or _infer_task(y_text)
  if task == "regression":
    y = _numbers(y_text)
    bad = ~np.isfinite(y)
    if bad.any():
      r = int(np.flatnonzero(bad)[0])
      raise ValueError(f"{str(path)!r} line {lines[r]}, column {target!r}: cannot read "
                       f"{_shown(y_text[r])} as a finite number (task='regression').")
    return _as_dataset(X, y, names, [target], task)
  numbers = _numbers(y_text)
  keys = numbers.tolist() if not np.isnan(numbers).any() else y_text.tolist()
  classes = sorted(set(keys))
  if len(classes) < 2:
    raise ValueError(f"target column {target!r} in {str(path)!r} has a single class "
                     f"({_shown(y_text[0])}); classification needs at least two classes.")
  if task == "binary" and len(classes) > 2:
    raise ValueError(f"task='binary' but target column {target!r} has {len(classes)} "
                     f"classes; use task='multiclass'.")
  index = {c: k for k, c in enumerate(classes)}
  y = np.array([index[k] for k in keys], np.int32)
  target_names = [f"{c:g}" if isinstance(c, float) else c for c in classes]
  return _as_dataset(X, y, names, target_names, task)
