#!/usr/bin/env python
"""A VAE with a 2-d latent on MNIST (the ``vae-latent-plane`` command; see ``--help``): a thin wrapper over :mod:`vae.cli.latent_plane`."""
from vae.cli.latent_plane import main

if __name__ == "__main__":
    raise SystemExit(main())
