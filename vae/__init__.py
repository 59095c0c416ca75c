"""Pyro VAEs: model/guide pairs with swappable priors, data sets, training, metrics and variants.

Sub-modules are imported on demand (``import vae.priors``), so ``import vae`` stays cheap.
"""
