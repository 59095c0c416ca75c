#!/usr/bin/env python
"""An SC-VAE beside a plain VAE (the ``vae-scvae`` command; see ``--help``): a thin wrapper over :mod:`vae.cli.scvae`."""
from vae.cli.scvae import main

if __name__ == "__main__":
    raise SystemExit(main())
