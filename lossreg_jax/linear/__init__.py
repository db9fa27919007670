"""Ridge, lasso and elastic net at scikit-learn parity: fits, paths and CV grids.

``models`` holds the fits and the regularization path, ``cv`` the
cross-validation grid (folds x l1 ratios x alphas in one compiled program), and
``_solvers`` the batched solvers behind both.
"""

from lossreg_jax.linear.cv import EnetCVResult, elastic_net_cv
from lossreg_jax.linear.models import LinearFit, elastic_net, elastic_net_path, lasso, ridge

__all__ = [
    "EnetCVResult",
    "LinearFit",
    "elastic_net",
    "elastic_net_cv",
    "elastic_net_path",
    "lasso",
    "ridge",
]
