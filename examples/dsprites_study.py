#!/usr/bin/env python
"""The β-VAE study on dSprites (the ``vae-study`` command; see ``--help``): a thin wrapper over :mod:`vae.cli.study`."""
from vae.cli.study import main

if __name__ == "__main__":
    raise SystemExit(main())
