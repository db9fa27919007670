"""The financial case's data: next-quarter real GDP growth from ``macrodata``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lossreg_jax import datasets

__all__ = ["next_quarter_growth"]

FEATURES = ("gdp_growth", "cons_growth", "inv_growth", "govt_growth", "dpi_growth", "infl",
            "tbilrate", "unemp", "unemp_change", "realint")


def next_quarter_growth() -> datasets.Dataset:
  """Next-quarter real GDP growth from this quarter's macro data (notebook 6's case).

  From ``datasets.load("macrodata")`` (US, 1959Q1-2009Q3): the target is the
  annualized growth of real GDP in the *next* quarter, ``400·Δlog realgdp``
  (percent); the features are this quarter's annualized growth of GDP,
  consumption, investment, government spending and disposable income, plus
  inflation, the T-bill rate, unemployment, its change and the real interest
  rate. Rows stay in time order (201 quarters); under-predicting growth is
  what the ``asymmetric`` loss makes costly.

  Returns:
    A regression :class:`~lossreg_jax.datasets.Dataset` with 201 rows and 10
    features, target name ``"realgdp_growth_next"``.

  Examples:
    >>> ds = next_quarter_growth()
    >>> ds.X.shape, ds.task, ds.target_names
    ((201, 10), 'regression', ('realgdp_growth_next',))
  """
  macro = datasets.load("macrodata", target="realgdp")
  col = {n: np.asarray(macro.X[:, i], np.float64) for i, n in enumerate(macro.feature_names)}
  growth = lambda v: 400.0 * np.diff(np.log(v))  # annualized quarterly growth, %
  gdp = growth(np.asarray(macro.y, np.float64))
  X = np.stack([gdp, growth(col["realcons"]), growth(col["realinv"]), growth(col["realgovt"]),
                growth(col["realdpi"]), col["infl"][1:], col["tbilrate"][1:], col["unemp"][1:],
                np.diff(col["unemp"]), col["realint"][1:]], axis=1)
  # Quarter t's features predict the growth of quarter t + 1.
  return datasets.Dataset(jnp.asarray(X[:-1], jnp.float32), jnp.asarray(gdp[1:], jnp.float32),
                          FEATURES, ("realgdp_growth_next",), "regression")
