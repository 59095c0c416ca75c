"""Disentanglement metrics, each following disentanglement_lib's recipe, with one calling convention.

=====================  ===============================  ============================================
function               metric                           module (its docstring: recipe, deviations)
=====================  ===============================  ============================================
``mig``                Mutual Information Gap           :mod:`vae.metrics.mig` (+ ``mig_null``)
``mig_chen``           MIG, Chen et al.'s estimator     :mod:`vae.metrics.mig_chen`
``beta_vae_score``     BetaVAE score (Higgins 2017)     :mod:`vae.metrics.beta_vae`
``factor_vae_score``   FactorVAE score (Kim & Mnih)     :mod:`vae.metrics.factor_vae`
``dci``                DCI (Eastwood & Williams)        :mod:`vae.metrics.dci`
``sap``                SAP (Kumar et al. 2018)          :mod:`vae.metrics.sap`
``modularity``         modularity + explicitness        :mod:`vae.metrics.modularity`
                       (Ridgeway & Mozer 2018)
``evaluate_all``       all of them in one call          :mod:`vae.metrics.evaluate`
=====================  ===============================  ============================================

**Calling convention** — ``result = metric(representation, ground_truth, *, seed=0, ...)``:
``representation`` is an (N, D) array of codes (encoder means) with ``ground_truth`` the (N, K)
factor classes, or a representation function ``images (B, C, H, W) -> (B, D) codes`` with
``ground_truth`` a :class:`vae.data.ground_truth.GroundTruthData` (dSprites:
:class:`~vae.data.ground_truth.DSpritesData`), from which the metric samples its own points. The
BetaVAE and FactorVAE scores intervene on the factors and take only the second form. Every result
has ``score``, per-factor detail where the metric has it (``per_factor``) and ``to_dict()``.
Shared building blocks: :mod:`vae.metrics.info` (discretisation, joint counts, MI matrix,
entropy) and :func:`representation_from_encoder`.

>>> import numpy as np
>>> from vae.data.ground_truth import ArrayGridData
>>> g = np.stack(np.meshgrid(range(3), range(4), indexing="ij"), -1).reshape(-1, 2)
>>> data = ArrayGridData(g.reshape(-1, 1, 1, 2).astype(np.float32), (3, 4), ("a", "b"))
>>> copy = lambda x: x.reshape(len(x), -1)             # a code that copies each factor
>>> round(mig(copy, data, num_train=500).score, 2)   # 0.996: plug-in bias of the other dim
1.0
>>> sap(np.repeat(g, 50, axis=0), np.repeat(g, 50, axis=0)).to_dict()["metric"]
'sap'

**Other measurements that are metrics** live with their models and are re-exported here lazily
(importing ``vae.metrics`` does not import torch): per-dimension KL ``per_dim_kl`` /
``kl_per_dim_from_stats`` (:mod:`vae.analysis`), codebook ``perplexity`` / ``codebook_usage``
(:mod:`vae.vq`), sparsity ``sparsity_metrics`` (:mod:`vae.scvae`), ``hoyer_sparsity`` /
``fraction_zeros`` (:mod:`vae.lista`), ``psnr`` (:mod:`vae.autoencoders`), and the likelihood bounds
``iwae_log_likelihood`` / ``elbo_per_image`` (:mod:`vae.evaluate`).
"""
from __future__ import annotations

import importlib

from vae.metrics._common import MetricResult, ObservationalSets, observational_sets, representation_from_encoder, sample_factor_codes
from vae.metrics.beta_vae import BetaVAEResult, beta_vae_score
from vae.metrics.dci import DCIResult, dci, disentanglement_completeness
from vae.metrics.evaluate import INTERVENTIONAL, METRICS, evaluate_all, headline_scores, results_to_dict
from vae.metrics.factor_vae import FactorVAEResult, factor_vae_score
from vae.metrics.info import discrete_mutual_info, discretize, entropy, histogram_edges, joint_counts, mutual_information_matrix
from vae.metrics.mig import MIGResult, mig, mig_null, sample_codes
from vae.metrics.mig_chen import mig_chen
from vae.metrics.modularity import ModularityResult, modularity
from vae.metrics.sap import SAPResult, sap

# name -> module of the measurements that live elsewhere (imported on first use)
_LAZY = {
    "per_dim_kl": "vae.analysis",
    "kl_per_dim_from_stats": "vae.analysis",
    "encode_means": "vae.analysis",
    "encode_stats": "vae.analysis",
    "perplexity": "vae.vq",
    "codebook_usage": "vae.vq",
    "sparsity_metrics": "vae.scvae",
    "hoyer_sparsity": "vae.lista",
    "fraction_zeros": "vae.lista",
    "psnr": "vae.autoencoders",
    "iwae_log_likelihood": "vae.evaluate",
    "elbo_per_image": "vae.evaluate",
}

__all__ = [
    # results
    "MetricResult", "MIGResult", "BetaVAEResult", "FactorVAEResult", "DCIResult", "SAPResult", "ModularityResult",
    # metrics
    "mig", "mig_null", "mig_chen", "beta_vae_score", "factor_vae_score", "dci", "sap", "modularity",
    "evaluate_all", "headline_scores", "results_to_dict", "METRICS", "INTERVENTIONAL",
    # building blocks
    "discretize", "histogram_edges", "joint_counts", "mutual_information_matrix", "discrete_mutual_info",
    "entropy", "disentanglement_completeness", "sample_codes", "representation_from_encoder",
    "sample_factor_codes", "observational_sets", "ObservationalSets",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vae.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
