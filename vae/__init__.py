"""Pyro VAEs: model/guide pairs with swappable priors, data sets, training, metrics and variants.

Sub-modules are imported on demand (``import vae.priors``), so ``import vae`` stays cheap.
"""

__all__ = ["load_run"]


def __getattr__(name: str):
    """``vae.load_run`` (from :mod:`vae.training.runs`) without importing torch at ``import vae``."""
    if name == "load_run":
        from vae.training.runs import load_run

        return load_run
    raise AttributeError(f"module 'vae' has no attribute {name!r}")
