"""``regularization_path``: the elastic-net path and its CV curve, for the CLI.

A thin wrapper around ``linear.elastic_net_path`` and ``linear.elastic_net_cv``
that times them and, optionally, scikit-learn's ``ElasticNetCV`` on the same
alpha grid and the same (``KFold``) folds.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import jax
import numpy as np
from jax.typing import ArrayLike

from lossreg_jax import linear

__all__ = ["PathResult", "regularization_path"]


@dataclasses.dataclass(frozen=True)
class PathResult:
  """What :func:`regularization_path` computed (NumPy arrays).

  Attributes:
    alphas: The alpha grid, descending, shape ``(n_alphas,)``.
    coefs: Path coefficients, shape ``(n_features, n_alphas)``.
    mse_path: Held-out MSE per alpha and fold, shape ``(n_alphas, cv)``.
    alpha: The alpha with the lowest mean held-out MSE.
    coef: Coefficients refit at ``alpha`` on all rows, shape ``(n_features,)``.
    intercept: Intercept of the refit.
    l1_ratio: The elastic-net mix used.
    feature_names: One name per feature.
    seconds: ``{"path": ..., "cv_first": ... (with compilation), "cv": ...}``.
    sklearn: ``None``, or ``{"alpha", "seconds", "ratio"}`` from
      ``ElasticNetCV`` on the same grid (``ratio`` = sklearn seconds / ours).
  """

  alphas: np.ndarray
  coefs: np.ndarray
  mse_path: np.ndarray
  alpha: float
  coef: np.ndarray
  intercept: float
  l1_ratio: float
  feature_names: tuple[str, ...]
  seconds: dict
  sklearn: dict | None

  def table(self) -> str:
    """A short text summary: the chosen alpha, CV error and non-zero coefficients."""
    k = int(np.argmin(np.abs(self.alphas - self.alpha)))
    mean = self.mse_path.mean(axis=1)
    lines = [f"l1_ratio = {self.l1_ratio:g}, {len(self.alphas)} alphas "
             f"[{self.alphas.min():.4g}, {self.alphas.max():.4g}], {self.mse_path.shape[1]} folds",
             f"chosen alpha = {self.alpha:.6g} (CV MSE {mean[k]:.4g} ± "
             f"{self.mse_path[k].std():.4g})",
             f"non-zero coefficients: {int(np.sum(self.coef != 0))} of {len(self.coef)}",
             f"lossreg_jax elastic_net_cv: {self.seconds['cv']:.3f} s "
             f"(first call, with compilation: {self.seconds['cv_first']:.3f} s)"]
    if self.sklearn is not None:
      lines.append(f"scikit-learn ElasticNetCV: {self.sklearn['seconds']:.3f} s, alpha = "
                   f"{self.sklearn['alpha']:.6g}; time ratio sklearn / lossreg_jax = "
                   f"{self.sklearn['ratio']:.2f}")
    width = max(len(n) for n in self.feature_names)
    lines += [f"  {n:<{width}}  {c:+.5g}" for n, c in zip(self.feature_names, self.coef)]
    return "\n".join(lines)

  def to_dict(self) -> dict:
    """A JSON-ready dictionary."""
    return {
        "l1_ratio": self.l1_ratio, "alpha": self.alpha, "intercept": self.intercept,
        "coef": dict(zip(self.feature_names, map(float, self.coef))),
        "alphas": self.alphas.tolist(), "cv_mse_mean": self.mse_path.mean(1).tolist(),
        "cv_mse_std": self.mse_path.std(1).tolist(), "seconds": self.seconds,
        "sklearn": self.sklearn,
    }


def _sklearn_cv(X, y, alphas, l1_ratio, cv, tol, max_iter):
  try:
    from sklearn.linear_model import ElasticNetCV
  except ImportError:
    raise ImportError("vs_sklearn needs scikit-learn, which is not installed (it is only a "
                      "test extra): pip install scikit-learn") from None
  model = ElasticNetCV(alphas=alphas, l1_ratio=l1_ratio, cv=cv, tol=tol, max_iter=max_iter)
  start = time.perf_counter()
  model.fit(np.asarray(X, np.float64), np.asarray(y, np.float64))
  return float(model.alpha_), time.perf_counter() - start


def regularization_path(
    X: ArrayLike,
    y: ArrayLike,
    *,
    l1_ratio: float = 0.5,
    n_alphas: int = 100,
    eps: float = 1e-3,
    cv: int = 5,
    tol: float = 1e-4,
    max_iter: int = 1000,
    feature_names: Sequence[str] | None = None,
    vs_sklearn: bool = False,
) -> PathResult:
  """Elastic-net path and cross-validated choice of alpha, timed.

  Computes ``linear.elastic_net_path`` on scikit-learn's alpha grid and
  ``linear.elastic_net_cv`` with ``KFold(cv)`` folds (one compiled program for
  all folds x alphas; timed twice, with and without compilation). With
  ``vs_sklearn=True`` it also fits ``sklearn.linear_model.ElasticNetCV`` on the
  same grid and folds and records its alpha and time.

  Args:
    X: Features, shape ``(n, d)``.
    y: Real targets, shape ``(n,)``.
    l1_ratio: Elastic-net mix in ``(0, 1]``.
    n_alphas: Length of the alpha grid.
    eps: ``alpha_min / alpha_max``.
    cv: Number of folds.
    tol: Duality-gap tolerance of the solver.
    max_iter: Most solver iterations.
    feature_names: Names for the report; default ``x0, x1, ...``.
    vs_sklearn: Also time scikit-learn (which must be importable).

  Returns:
    A :class:`PathResult`.

  Raises:
    ValueError: for bad shapes or options (from ``lossreg_jax.linear``).
    ImportError: if ``vs_sklearn`` and scikit-learn is missing.

  Examples:
    >>> from lossreg_jax import datasets
    >>> ds = datasets.load("diabetes")
    >>> res = regularization_path(ds.X, ds.y, n_alphas=12, cv=3)
    >>> res.coefs.shape, res.mse_path.shape, bool(res.alphas.min() <= res.alpha)
    ((10, 12), (12, 3), True)
  """
  X = np.asarray(X, np.float32)
  y = np.asarray(y, np.float32)
  if X.ndim != 2:
    raise ValueError(f"X must have shape (n, d), got {X.shape}.")
  if feature_names is None:
    feature_names = [f"x{i}" for i in range(X.shape[1])]
  if len(feature_names) != X.shape[1]:
    raise ValueError(f"feature_names has {len(feature_names)} names for {X.shape[1]} "
                     f"features.")
  opts = dict(l1_ratio=l1_ratio, eps=eps, n_alphas=n_alphas, tol=tol, max_iter=max_iter)
  start = time.perf_counter()
  alphas, coefs = jax.block_until_ready(linear.elastic_net_path(X, y, **opts))
  path_s = time.perf_counter() - start
  times = []
  for _ in range(2):  # the first call compiles
    start = time.perf_counter()
    res = jax.block_until_ready(linear.elastic_net_cv(X, y, cv=cv, **opts))
    times.append(time.perf_counter() - start)
  sk = None
  if vs_sklearn:
    sk_alpha, sk_s = _sklearn_cv(X, y, np.asarray(res.alphas, np.float64), l1_ratio, cv, tol,
                                 max_iter)
    sk = {"alpha": sk_alpha, "seconds": sk_s, "ratio": sk_s / times[1]}
  return PathResult(
      alphas=np.asarray(alphas), coefs=np.asarray(coefs), mse_path=np.asarray(res.mse_path),
      alpha=float(res.alpha), coef=np.asarray(res.coef), intercept=float(res.intercept),
      l1_ratio=float(l1_ratio), feature_names=tuple(feature_names),
      seconds={"path": path_s, "cv_first": times[0], "cv": times[1]}, sklearn=sk)
