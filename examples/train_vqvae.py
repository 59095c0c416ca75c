#!/usr/bin/env python
"""A VQ-VAE and codebook collapse (the ``vae-vqvae`` command; see ``--help``): a thin wrapper over :mod:`vae.cli.vqvae`."""
from vae.cli.vqvae import main

if __name__ == "__main__":
    raise SystemExit(main())
