#!/usr/bin/env python
"""The Gamma exercise solved in closed form and with Pyro SVI (the ``vi-gamma`` command; see ``--help``): a thin wrapper over :mod:`vi.cli`."""
from vi.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
