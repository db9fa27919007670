"""``python -m lossreg_jax`` runs the ``lossreg-jax`` command."""

from lossreg_jax.cli import main

raise SystemExit(main())
