#!/usr/bin/env python
"""Plain, denoising and super-resolution autoencoders (the ``vae-autoencoder`` command; see ``--help``): a thin wrapper over :mod:`vae.cli.autoencoder`."""
from vae.cli.autoencoder import main

if __name__ == "__main__":
    raise SystemExit(main())
