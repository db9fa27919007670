"""Tests for lossreg_jax.datasets: bundled data, splits and the CSV loader."""

import csv
import io
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import datasets as skd
from sklearn import model_selection

from lossreg_jax import datasets

DATA = pathlib.Path(datasets.__file__).parent / "data"


@pytest.mark.parametrize(
    "name, loader, task",
    [("breast_cancer", skd.load_breast_cancer, "binary"),
     ("digits", skd.load_digits, "multiclass"),
     ("wine", skd.load_wine, "multiclass"),
     ("diabetes", skd.load_diabetes, "regression")])
def test_bundled_equal_sklearn(name, loader, task):
  ds = datasets.load(name)
  ref = loader()
  assert ds.task == task
  assert ds.X.dtype == jnp.float32 and ds.X.shape == ref.data.shape
  np.testing.assert_array_equal(ds.X, ref.data.astype(np.float32))
  assert ds.feature_names == tuple(str(n) for n in ref.feature_names)
  if task == "regression":
    assert ds.y.dtype == jnp.float32
    np.testing.assert_array_equal(ds.y, ref.target.astype(np.float32))
  elif name == "breast_cancer":
    # Relabelled so that the disease is the positive class.
    assert ds.y.dtype == jnp.int32
    np.testing.assert_array_equal(ds.y, 1 - ref.target)
    assert ds.target_names == ("benign", "malignant")
    assert ds.target_names[int(ds.y[0])] == ref.target_names[ref.target[0]]
  else:
    assert ds.y.dtype == jnp.int32
    np.testing.assert_array_equal(ds.y, ref.target)
    assert ds.target_names == tuple(str(n) for n in ref.target_names)


def test_macrodata_matches_csv_and_target_option():
  with open(DATA / "macrodata.csv") as f:
    rows = list(csv.reader(f))
  header, values = rows[0], np.array(rows[1:], float)
  assert header[:3] == ["year", "quarter", "realgdp"] and len(values) == 203
  ds = datasets.load("macrodata")
  assert ds.task == "regression" and ds.target_names == ("unemp",)
  assert "year" not in ds.feature_names and "unemp" not in ds.feature_names
  np.testing.assert_allclose(ds.y, values[:, header.index("unemp")], rtol=1e-6)
  gdp = datasets.load("macrodata", target="realgdp")
  np.testing.assert_allclose(gdp.y, values[:, 2], rtol=1e-6)
  assert gdp.X.shape == (203, 11)
  # Time series: the test split is the last quarters, in order.
  test = datasets.load("macrodata", split="test", test_size=20)
  np.testing.assert_allclose(test.y, values[-20:, header.index("unemp")], rtol=1e-6)
  with pytest.raises(ValueError, match="target"):
    datasets.load("wine", target="x")


def test_list_and_unknown_name():
  assert set(datasets.list_datasets()) == {"breast_cancer", "digits", "wine", "diabetes",
                                           "macrodata"}
  with pytest.raises(ValueError, match="name.*'wine'"):
    datasets.load("iris")
  with pytest.raises(ValueError, match="split"):
    datasets.load("wine", split="validation")


def test_split_deterministic_disjoint_and_stratified():
  train = datasets.load("breast_cancer", split="train", seed=3)
  train2 = datasets.load("breast_cancer", split="train", seed=3)
  test = datasets.load("breast_cancer", split="test", seed=3)
  other = datasets.load("breast_cancer", split="train", seed=4)
  np.testing.assert_array_equal(train.X, train2.X)
  assert not np.array_equal(train.X, other.X)
  assert train.X.shape[0] + test.X.shape[0] == 569
  assert abs(test.X.shape[0] - 143) <= 1  # ceil(0.25 * 569)
  full = np.asarray(datasets.load("breast_cancer").X)
  rows = {r.tobytes() for r in np.asarray(train.X)}
  assert not rows & {r.tobytes() for r in np.asarray(test.X)}
  assert len(rows | {r.tobytes() for r in np.asarray(test.X)}) == len({r.tobytes() for r in full})
  # Class shares kept (sklearn's stratified split gives the same counts).
  y = np.asarray(datasets.load("breast_cancer").y)
  _, y_te = model_selection.train_test_split(y, test_size=0.25, stratify=y, random_state=0)
  assert abs(int(test.y.sum()) - int(y_te.sum())) <= 1


def test_train_test_split_api():
  X = jnp.arange(20.0).reshape(10, 2)
  y = jnp.arange(10)
  a = datasets.train_test_split(jax.random.key(0), X, y, test_size=0.3)
  b = datasets.train_test_split(jax.random.key(0), X, y, test_size=0.3)
  assert len(a) == 4 and a[0].shape == (7, 2) and a[1].shape == (3, 2)
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u, v)
  np.testing.assert_array_equal(a[0][:, 0] / 2, a[2])  # rows stay aligned
  assert sorted(np.concatenate([a[2], a[3]]).tolist()) == list(range(10))
  assert datasets.train_test_split(0, y, test_size=2)[1].shape == (2,)
  with pytest.raises(ValueError, match="first dimension"):
    datasets.train_test_split(0, X, y[:5])
  with pytest.raises(ValueError, match="test_size"):
    datasets.train_test_split(0, X, test_size=1.5)


def test_stratified_split_refuses_an_empty_side():
  # The cases of scikit-learn's sklearn/model_selection/tests/test_split.py::
  # test_stratified_shuffle_split_init, which StratifiedShuffleSplit refuses.
  X = np.arange(7)
  y = np.asarray([0, 1, 1, 1, 2, 2, 2])
  with pytest.raises(ValueError, match="stratify: the least populated class"):
    datasets.train_test_split(0, X, test_size=0.2, stratify=y)
  X = np.arange(9)
  y = np.asarray([0, 0, 0, 1, 1, 1, 2, 2, 2])
  with pytest.raises(ValueError, match="test_size=2 gives 2 test rows.*3 classes"):
    datasets.train_test_split(0, X, test_size=2, stratify=y)
  with pytest.raises(ValueError, match="test_size=7 gives 2 train rows"):  # train_size=2
    datasets.train_test_split(0, X, test_size=7, stratify=y)
  with pytest.raises(ValueError):  # the reference refuses it too
    model_selection.train_test_split(X, test_size=2, stratify=y)
  # Before: 10 rows, 2 classes, test_size=0.05 rounded every class to 0 test rows.
  y = np.asarray([0] * 5 + [1] * 5)
  with pytest.raises(ValueError, match="1 test rows.*2 classes"):
    datasets.train_test_split(0, np.arange(10), test_size=0.05, stratify=y)
  # Every class keeps a row on each side when the per-class share rounds to 0.
  y = np.asarray([0] * 18 + [1] * 2)
  _, _, y_tr, y_te = datasets.train_test_split(0, np.arange(20), y, test_size=0.2, stratify=y)
  assert set(np.asarray(y_te).tolist()) == {0, 1} and set(np.asarray(y_tr).tolist()) == {0, 1}


def test_standardize_uses_train_statistics():
  train = datasets.load("wine", split="train", standardize=True)
  test = datasets.load("wine", split="test", standardize=True)
  raw_train = datasets.load("wine", split="train")
  raw_test = datasets.load("wine", split="test")
  np.testing.assert_allclose(train.X.mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(train.X.std(0), 1, atol=1e-4)
  mean, std = np.asarray(raw_train.X).mean(0), np.asarray(raw_train.X).std(0)
  np.testing.assert_allclose(test.X, (np.asarray(raw_test.X) - mean) / std, rtol=1e-4,
                             atol=1e-4)


# ----------------------------------------------------------------- CSV loader


def write(tmp_path, text, name="data.csv"):
  path = tmp_path / name
  path.write_text(text)
  return path


def test_csv_reads_numbers_and_string_labels(tmp_path):
  path = write(tmp_path, "x1,x2,y\n1,2.5,cat\n-3,4e-1,dog\n5,6,cat\n")
  ds = datasets.load_csv(path, target="y")
  np.testing.assert_allclose(ds.X, [[1, 2.5], [-3, 0.4], [5, 6]])
  np.testing.assert_array_equal(ds.y, [0, 1, 0])
  assert ds.feature_names == ("x1", "x2") and ds.target_names == ("cat", "dog")
  assert ds.task == "binary" and ds.y.dtype == jnp.int32
  reg = datasets.load_csv(write(tmp_path, "a,t\n1,0.5\n2,1.5\n3,2.25\n"), target="t")
  assert reg.task == "regression" and reg.y.dtype == jnp.float32
  multi = datasets.load_csv(write(tmp_path, "a,t\n1,0\n2,2\n3,1\n"), target="t")
  assert multi.task == "multiclass" and multi.target_names == ("0", "1", "2")


def test_csv_round_trip_of_a_bundled_set(tmp_path):
  ds = datasets.load("wine")
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(list(ds.feature_names) + ["cultivar"])
  for x, y in zip(np.asarray(ds.X), np.asarray(ds.y)):
    w.writerow([repr(float(v)) for v in x] + [int(y)])
  got = datasets.load_csv(write(tmp_path, buf.getvalue()), target="cultivar")
  np.testing.assert_array_equal(got.X, ds.X)
  np.testing.assert_array_equal(got.y, ds.y)
  assert got.task == "multiclass"


def test_csv_missing_file(tmp_path):
  with pytest.raises(ValueError, match="not found.*nope.csv"):
    datasets.load_csv(tmp_path / "nope.csv", target="y")


def test_csv_missing_target_lists_columns(tmp_path):
  path = write(tmp_path, "age,weight,label\n1,2,0\n3,4,1\n")
  with pytest.raises(ValueError, match="'target'.*available columns: age, weight, label"):
    datasets.load_csv(path, target="target")


def test_csv_non_numeric_cell_names_line_column_value(tmp_path):
  path = write(tmp_path, "age,weight,label\n1,2,0\n3,heavy,1\n")
  with pytest.raises(ValueError, match=r"line 3, column 'weight'.*'heavy'"):
    datasets.load_csv(path, target="label")
  reg = write(tmp_path, "a,t\n1,0.5\n2,high\n", name="reg.csv")
  with pytest.raises(ValueError, match=r"line 3, column 't'.*'high'"):
    datasets.load_csv(reg, target="t", task="regression")


def test_csv_missing_cells_named_or_dropped(tmp_path):
  path = write(tmp_path, "a,b,y\n1,2,0\n,4,1\n5,NaN,1\n7,8,0\n9,10,1\n")
  with pytest.raises(ValueError, match=r"line\(s\) 3, 4.*drop_missing=True"):
    datasets.load_csv(path, target="y")
  ds = datasets.load_csv(path, target="y", drop_missing=True)
  np.testing.assert_array_equal(ds.X, [[1, 2], [7, 8], [9, 10]])
  np.testing.assert_array_equal(ds.y, [0, 0, 1])


def test_csv_single_class_target(tmp_path):
  path = write(tmp_path, "a,y\n1,1\n2,1\n3,1\n")
  with pytest.raises(ValueError, match="single class"):
    datasets.load_csv(path, target="y")
  with pytest.raises(ValueError, match="single class"):
    datasets.load_csv(path, target="y", task="binary")


def test_csv_ragged_and_empty(tmp_path):
  # pandas' reading: a short row lacks cells (missing), a long one is an error.
  with pytest.raises(ValueError, match=r"missing or NaN cells in line\(s\) 3"):
    datasets.load_csv(write(tmp_path, "a,b,y\n1,2,0\n3,1\n"), target="y")
  with pytest.raises(ValueError, match="Expected 3 fields in line 3, saw 4"):
    datasets.load_csv(write(tmp_path, "a,b,y\n1,2,0\n3,1,0,9\n", name="long.csv"),
                      target="y")
  with pytest.raises(ValueError, match="empty"):
    datasets.load_csv(write(tmp_path, "", name="e.csv"), target="y")
  with pytest.raises(ValueError, match="no data rows"):
    datasets.load_csv(write(tmp_path, "a,y\n", name="h.csv"), target="y")
  with pytest.raises(ValueError, match="task"):
    datasets.load_csv(write(tmp_path, "a,y\n1,0\n2,1\n", name="t.csv"), target="y",
                      task="ranking")


def test_package_data_has_readme_with_licenses():
  text = (DATA / "README.md").read_text()
  for word in ("breast_cancer", "digits", "wine", "diabetes", "macrodata", "public domain",
               "CC BY 4.0"):
    assert word in text


def test_csv_categorical_columns_are_one_hot(tmp_path):
  path = write(tmp_path, "size,colour,price\n1,red,2.5\n2,blue,3.75\n3,red,4.1\n4,green,5\n")
  ds = datasets.load_csv(path, target="price")
  assert ds.feature_names == ("size", "colour=blue", "colour=green", "colour=red")
  np.testing.assert_array_equal(ds.X, [[1, 0, 0, 1], [2, 1, 0, 0], [3, 0, 0, 1], [4, 0, 1, 0]])
  assert ds.task == "regression"  # continuous target
  np.testing.assert_allclose(ds.y, [2.5, 3.75, 4.1, 5.0])


def test_csv_features_and_drop_choose_columns(tmp_path):
  path = write(tmp_path, "id,a,b,c,y\nr1,1,2,3,0\nr2,4,5,6,1\nr3,7,8,9,0\n")
  ds = datasets.load_csv(path, target="y", features=["c", "a"])
  assert ds.feature_names == ("a", "c")  # the file's order
  np.testing.assert_array_equal(ds.X, [[1, 3], [4, 6], [7, 9]])
  ds = datasets.load_csv(path, target="y", drop=["id", "b"])
  assert ds.feature_names == ("a", "c")
  with pytest.raises(ValueError, match="features names column.*'zzz' not found.*available"):
    datasets.load_csv(path, target="y", features=["zzz"])
  with pytest.raises(ValueError, match="drop names column.*'q'"):
    datasets.load_csv(path, target="y", drop=["q"])
  with pytest.raises(ValueError, match="features must not include the target"):
    datasets.load_csv(path, target="y", features=["a", "y"])
  with pytest.raises(TypeError, match="features must be a sequence"):
    datasets.load_csv(path, target="y", features="a")
  with pytest.raises(ValueError, match="no feature column"):
    datasets.load_csv(path, target="y", drop=["id", "a", "b", "c"])


def test_csv_only_the_target_column(tmp_path):
  # Was a ZeroDivisionError deep in the reader.
  with pytest.raises(ValueError, match="no feature column besides the target 'y'"):
    datasets.load_csv(write(tmp_path, "y\n0\n1\n0\n"), target="y")


def test_csv_huge_cells(tmp_path):
  # Python's csv module stops at 131072 characters per cell (_csv.Error).
  big = "x" * 200_000
  path = write(tmp_path, f"a,note,y\n1,{big},0\n2,short,1\n3,{big},0\n")
  ds = datasets.load_csv(path, target="y")
  assert ds.X.shape == (3, 3) and ds.feature_names[1] == "note=short"
  number = "1" + "0" * 200_000  # a number that overflows float64
  path = write(tmp_path, f"a,y\n{number},0\n2,1\n", name="n.csv")
  with pytest.raises(ValueError, match=r"line 2, column 'a'.*\(200001 characters\)") as e:
    datasets.load_csv(path, target="y")
  assert len(str(e.value)) < 300  # the message stays one readable line


def test_csv_mixed_column_names_the_first_text_cell(tmp_path):
  path = write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n5,oops,0\n")
  with pytest.raises(ValueError, match=r"line 4, column 'b'.*'oops'"):
    datasets.load_csv(path, target="y")


DELIMITED = {  # text -> the separator load_csv(delimiter=None) must detect
    "a,b,y\n1,2,0\n3,4,1\n": ",",
    "a;b;y\n1;2;0\n3;4;1\n": ";",
    "a\tb\ty\n1\t2\t0\n3\t4\t1\n": "\t",
    'a,b,y\n"1;5",2,0\n"3;7",4,1\n': ",",  # semicolons inside quoted cells do not count
    "a;b;y\n1,5;2;0\n3;4,25;1\n": ";",  # decimal commas: the comma splits unevenly
    "a,b,y\n1,2,0\n3,1,0,9\n": ",",  # a long row: still commas (then pandas' error)
    "y\n0\n1\n": ",",  # one column: none of them
}


def test_csv_delimiter_is_detected_among_comma_semicolon_tab(tmp_path):
  for i, (text, expected) in enumerate(DELIMITED.items()):
    path = write(tmp_path, text, name=f"d{i}.csv")
    assert datasets._detect_delimiter(path) == expected, text
    if i < 4:  # where Python's csv.Sniffer (restricted to the three) is sure, it agrees
      assert csv.Sniffer().sniff(text, delimiters=",;\t").delimiter == expected, text
  semi = write(tmp_path, "a;b;label\n1;2;no\n3;4;yes\n5;6;no\n", name="semi.csv")
  ds = datasets.load_csv(semi, target="label")
  np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
  assert ds.feature_names == ("a", "b") and ds.target_names == ("no", "yes")
  # An explicit delimiter is used as given: a comma splits nothing here.
  with pytest.raises(ValueError, match="'label' not found.*available columns: a;b;label"):
    datasets.load_csv(semi, target="label", delimiter=",")
  with pytest.raises(ValueError, match=r"one character or None \(detect\), got ';;'"):
    datasets.load_csv(semi, target="label", delimiter=";;")
