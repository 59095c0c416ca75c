"""Every disentanglement metric of the package in one call, sampled the disentanglement_lib way.

>>> from vae.data.ground_truth import ArrayGridData
>>> g = np.stack(np.meshgrid(range(3), range(4), indexing="ij"), -1).reshape(-1, 1, 1, 2)
>>> data = ArrayGridData(g.astype(np.float32), (3, 4))
>>> def rep(x):  # the factors, plus one noise dimension made from the image
...     f = x.reshape(len(x), -1)
...     return np.column_stack([f, np.sin(37.0 * f.sum(1))])
>>> res = evaluate_all(rep, data, seed=0, sample_scale=0.02, options={"dci": {"gbt_params": {"n_estimators": 5}}})
>>> list(res)
['mig', 'beta_vae', 'factor_vae', 'dci', 'sap', 'modularity']
>>> headline_scores(res)["factor_vae"]
1.0
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import numpy as np

from vae.metrics._common import DEFAULT_CHUNK, MetricResult, is_data, observational_sets
from vae.metrics.beta_vae import beta_vae_score
from vae.metrics.dci import dci
from vae.metrics.factor_vae import factor_vae_score
from vae.metrics.mig import mig
from vae.metrics.modularity import modularity
from vae.metrics.sap import sap

__all__ = ["METRICS", "INTERVENTIONAL", "evaluate_all", "headline_scores", "results_to_dict"]

METRICS = ("mig", "beta_vae", "factor_vae", "dci", "sap", "modularity")
INTERVENTIONAL = ("beta_vae", "factor_vae")
_SAMPLING_KEYS = {"num_train", "num_test", "num_eval", "num_variance_estimate", "seed", "test", "chunk_size"}


def _n(base: int, scale: float, lo: int = 2) -> int:
    return max(lo, int(round(base * scale)))


def evaluate_all(representation, ground_truth, seed: int = 0, *, metrics: Sequence[str] | None = None,
                 sample_scale: float = 1.0, chunk_size: int = DEFAULT_CHUNK,
                 options: Mapping[str, Mapping] | None = None,
                 log: Callable[[str], None] | None = None) -> dict[str, MetricResult]:
    """``{name: result}`` for the metrics in ``metrics`` (default: all that apply), in :data:`METRICS` order.

    * ``representation`` a function images -> (B, D) codes (e.g.
      :func:`vae.metrics.representation_from_encoder`) and ``ground_truth`` a GroundTruthData (e.g.
      :class:`vae.data.ground_truth.DSpritesData`): every metric, each with disentanglement_lib's
      sample counts times ``sample_scale`` (MIG 10,000 points; DCI, SAP, modularity 10,000 + 5,000;
      BetaVAE 10,000 + 5,000 pairs of 64-image batches; FactorVAE 10,000 variance images and
      10,000 + 5,000 batches of 64). The observational metrics share one sample — the points each
      of them would draw itself with this ``seed`` (train first, then test), so the results equal
      separate calls; the intervention-based ones each start from ``default_rng(seed)``, as the
      library starts each evaluation from its ``random_state``.
    * ``representation`` an (N, D) array of encoder means and ``ground_truth`` the (N, K) factor
      classes: the observational metrics only (MIG on all rows, the others on the seeded 2 : 1
      train/test split, see :func:`vae.metrics._common.observational_sets`); asking for BetaVAE or
      FactorVAE raises ValueError. ``sample_scale`` is unused.

    ``options``: extra keyword arguments per metric, e.g. ``{"dci": {"n_jobs": 2}, "mig": {"n_bins":
    20}, "factor_vae": {"prune_threshold": 0.05}}`` (sample counts and seeds are set here, not there).
    ``log`` receives one line per metric with its time. Cost on the full recipe: ~2.9 M images
    through the representation (BetaVAE 1.92 M, FactorVAE 0.97 M) and, for dSprites, a few CPU
    minutes of boosted trees in DCI (orientation has 40 classes): pass ``sample_scale < 1`` for quick runs.
    """
    options = {k: dict(v) for k, v in (options or {}).items()}
    unknown = set(options) - set(METRICS)
    if unknown:
        raise ValueError(f"options for unknown metrics {sorted(unknown)}; the metrics are {list(METRICS)}")
    for name, opts in options.items():
        bad = set(opts) & _SAMPLING_KEYS
        if bad:
            raise ValueError(f"options[{name!r}] sets {sorted(bad)}: sample counts, seed and chunk size are "
                             "evaluate_all's own arguments (sample_scale, seed, chunk_size)")
    functional = callable(representation) and is_data(ground_truth)
    wanted = list(METRICS if metrics is None else metrics)
    if metrics is None and not functional:
        wanted = [m for m in METRICS if m not in INTERVENTIONAL]
    bad = [m for m in wanted if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metrics {bad}; the metrics are {list(METRICS)}")
    if not functional and any(m in INTERVENTIONAL for m in wanted):
        raise ValueError("BetaVAE and FactorVAE scores intervene on the factors: they need a representation "
                         "function and a GroundTruthData, not arrays of codes and factors")
    if not sample_scale > 0:
        raise ValueError(f"sample_scale must be > 0; got {sample_scale!r}")
    s = float(sample_scale)
    results: dict[str, MetricResult] = {}

    def run(name, fn):
        t0 = time.perf_counter()
        results[name] = fn()
        if log is not None:
            log(f"{name}: score {results[name].score:.4f} in {time.perf_counter() - t0:.1f} s")

    observational = [m for m in wanted if m not in INTERVENTIONAL]
    if functional:
        kw_obs = {}
        if observational:
            t0 = time.perf_counter()
            need_test = any(m != "mig" and not (m == "sap" and options.get("sap", {}).get("continuous")) for m in observational)
            sets = observational_sets(representation, ground_truth, num_train=_n(10_000, s, 3),
                                      num_test=_n(5_000, s) if need_test else 0, seed=seed, chunk_size=chunk_size)
            if log is not None:
                log(f"sampled and encoded {len(sets.train_codes)} + {0 if sets.test_codes is None else len(sets.test_codes)} "
                    f"points in {time.perf_counter() - t0:.1f} s")
            codes, factors = sets.train_codes, sets.train_factors
            kw_obs = dict(factor_names=sets.factor_names)
            test = None if sets.test_codes is None else (sets.test_codes, sets.test_factors)
        for name in wanted:
            o = options.get(name, {})
            if name == "mig":
                run(name, lambda: mig(codes, factors, **o, **kw_obs))
            elif name == "sap" and o.get("continuous"):
                run(name, lambda: sap(codes, factors, **o, **kw_obs))
            elif name in ("dci", "sap", "modularity"):
                fn = {"dci": dci, "sap": sap, "modularity": modularity}[name]
                run(name, lambda: fn(codes, factors, test=test, seed=seed, **o, **kw_obs))
            elif name == "beta_vae":
                run(name, lambda: beta_vae_score(representation, ground_truth, seed=seed, num_train=_n(10_000, s),
                                                 num_eval=_n(5_000, s, 1), chunk_size=chunk_size, **o))
            else:
                run(name, lambda: factor_vae_score(representation, ground_truth, seed=seed, num_train=_n(10_000, s, 1),
                                                   num_eval=_n(5_000, s, 1), num_variance_estimate=_n(10_000, s),
                                                   chunk_size=chunk_size, **o))
    else:
        codes = np.asarray(representation)
        for name in wanted:
            o = options.get(name, {})
            fn = {"mig": mig, "dci": dci, "sap": sap, "modularity": modularity}[name]
            run(name, lambda: fn(codes, ground_truth, **o) if name == "mig" else fn(codes, ground_truth, seed=seed, **o))
    return {m: results[m] for m in METRICS if m in results}


def headline_scores(results: Mapping[str, MetricResult]) -> dict[str, float]:
    """One number per reported quantity: ``mig``, ``beta_vae``, ``factor_vae``, ``dci_disentanglement``,
    ``dci_completeness``, ``dci_informativeness`` (test accuracy), ``sap``, ``modularity``,
    ``explicitness`` (test) — those present in ``results``."""
    out: dict[str, float] = {}
    for name, r in results.items():
        if name == "dci":
            out.update(dci_disentanglement=r.score, dci_completeness=r.completeness,
                       dci_informativeness=r.informativeness_test)
        elif name == "modularity":
            out.update(modularity=r.score, explicitness=r.explicitness)
        else:
            out[name] = r.score
    return {k: float(v) for k, v in out.items()}


def results_to_dict(results: Mapping[str, MetricResult], factor_names=None) -> dict[str, dict]:
    """``{name: result.to_dict(factor_names)}``: JSON-ready."""
    return {name: r.to_dict(factor_names) for name, r in results.items()}
