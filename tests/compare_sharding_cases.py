"""Run in a subprocess with 4 simulated CPU devices by test_experiments: the folds
of compare_losses split over 2 and 4 devices equal one device's."""

import json
import sys

import numpy as np

from lossreg_jax import experiments


def main() -> None:
  rng = np.random.default_rng(0)
  X = rng.normal(size=(60, 3)).astype(np.float32)
  y = (X[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(np.int32)
  kw = dict(folds=3, repeats=1, epochs=2, hidden=4, learning_rate=0.05)
  specs = ["bce", "focal:gamma=0|2+noise:0.1", "bce+ensemble:2"]
  one = experiments.compare_losses(X, y, specs, devices=1, **kw)
  out = {"devices": [], "diff": []}
  for d in (2, 4):  # 3 folds over 2 devices: padded; over 4: padded too
    many = experiments.compare_losses(X, y, specs, devices=d, **kw)
    out["devices"].append(many.settings["devices"])
    out["diff"].append(max(float(np.max(np.abs(many.scores[s][m] - one.scores[s][m])))
                           for s in one.specs for m in one.metrics))
  json.dump(out, sys.stdout)


if __name__ == "__main__":
  main()
