#!/usr/bin/env python
"""Train a Pyro VAE (the ``vae-train`` command; see ``--help``): a thin wrapper over :mod:`vae.cli.train`."""
from vae.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
