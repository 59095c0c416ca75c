"""What every metric shares: the calling convention, the result base class, sampling codes.

**Calling convention** (all metrics)::

    result = metric(representation, ground_truth, *, seed=0, <the recipe's sample counts>)

* ``representation``: either an (N, D) array of codes (encoder means) or a *representation
  function* ``images (B, C, H, W) float32 array -> (B, D) codes`` (numpy, or a torch tensor that is
  moved to the CPU); :func:`representation_from_encoder` makes one from a VAE.
* ``ground_truth``: with an array, the (N, K) integer factor classes of the same rows; with a
  function, a :class:`vae.data.ground_truth.GroundTruthData`, from which the metric samples its own
  points exactly as disentanglement_lib does (``num_train`` points, then ``num_test``).

The observational metrics (MIG, DCI, SAP, modularity/explicitness) accept both forms; the
intervention-based ones (BetaVAE and FactorVAE scores) need the function and the data, because they
choose which factors to hold fixed. Randomness: one ``numpy.random.default_rng(seed)`` per call,
so equal seeds give equal points and equal scores (as disentanglement_lib's ``random_state``).

Deviation, on purpose: disentanglement_lib calls the representation 16 images at a time; here
``chunk_size`` images at a time (default 128) — the same codes for any deterministic
representation, far fewer calls.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from vae.metrics.info import _check_factors, _check_latents

__all__ = ["MetricResult", "Representation", "ObservationalSets", "representation_from_encoder",
           "encode_factors", "sample_factor_codes", "observational_sets"]

Representation = Callable[[np.ndarray], Any]
# Images per representation call. 128 keeps a chunk's images (uint8, float32 and the code's own
# copies) in the CPU caches: on benchmarks/bench_metrics.py's numpy code BetaVAE took 1.49 s of CPU
# at 128, 2.0 s at 256, 2.26 s at 512 (1,000 + 500 points). Pass a larger chunk_size for a GPU encoder.
DEFAULT_CHUNK = 128


def as_rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def is_data(obj) -> bool:
    return callable(getattr(obj, "sample_factors", None)) and callable(getattr(obj, "images_from_factors", None))


def jsonable(v):
    """Floats (None for NaN/Inf), ints, nested lists: something ``json.dumps`` accepts."""
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


class MetricResult:
    """Base of every result: ``score`` (the headline number), ``factor_names`` (or None) and
    :meth:`to_dict`. Subclasses are dataclasses with their per-factor detail."""

    metric: ClassVar[str] = ""
    score: float
    factor_names: tuple[str, ...] | None

    def names(self, factor_names=None, k: int | None = None) -> list[str]:
        """``factor_names`` given here, else the ones the result carries, else ``factor_0..``."""
        k = len(self.per_factor) if k is None else k  # type: ignore[attr-defined]
        names = factor_names if factor_names is not None else self.factor_names
        names = list(names) if names is not None else [f"factor_{j}" for j in range(k)]
        if len(names) != k:
            raise ValueError(f"{len(names)} factor names for {k} factors")
        return names

    def keyed(self, values, factor_names=None) -> dict:
        return {n: jsonable(v) for n, v in zip(self.names(factor_names, len(values)), values)}

    def to_dict(self, factor_names=None) -> dict:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


def codes_of(representation_fn: Representation, images) -> np.ndarray:
    """(B, D) float64 codes of ``images`` (the function's output converted from torch if need be)."""
    out = representation_fn(images)
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != len(images):
        raise ValueError(f"the representation function must return ({len(images)}, D) codes; got shape {out.shape}")
    return out


def encode_factors(representation_fn: Representation, data, factors, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """(N, D) codes of the images of ``factors`` (N, K): rendered and encoded ``chunk_size`` at a time."""
    factors = np.asarray(factors)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    parts = [codes_of(representation_fn, data.images_from_factors(factors[a : a + int(chunk_size)]))
             for a in range(0, len(factors), int(chunk_size))]  # a loop over chunks, not points
    if not parts:
        raise ValueError("no points to encode")
    dims = {p.shape[1] for p in parts}
    if len(dims) > 1:
        raise ValueError(f"the representation function returned codes of different widths {sorted(dims)}")
    return np.concatenate(parts)


def sample_factor_codes(representation_fn: Representation, data, n: int, rng=None,
                        chunk_size: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (n, D), factors (n, K))`` of n random points: disentanglement_lib's
    ``generate_batch_factor_code`` (factors from ``data.sample_factors(n, rng)``, their images, codes)."""
    if int(n) < 1:
        raise ValueError(f"the number of points must be >= 1; got {n}")
    factors = data.sample_factors(int(n), as_rng(rng))
    return encode_factors(representation_fn, data, factors, chunk_size), factors


@dataclass
class ObservationalSets:
    """Codes and factors for training (and testing) an observational metric."""

    train_codes: np.ndarray
    train_factors: np.ndarray
    test_codes: np.ndarray | None
    test_factors: np.ndarray | None
    factor_names: tuple[str, ...] | None


def observational_sets(representation, ground_truth, *, num_train: int, num_test: int, seed=0,
                       chunk_size: int = DEFAULT_CHUNK, test=None, factor_names: Sequence[str] | None = None) -> ObservationalSets:
    """The train/test points of an observational metric under the calling convention.

    * function + data: ``num_train`` then ``num_test`` points sampled with ``default_rng(seed)``
      (disentanglement_lib: 10,000 and 5,000).
    * arrays: ``test=(codes, factors)`` when given; otherwise, when ``num_test > 0``, the rows are
      split by ``default_rng(seed).permutation(N)``: the last ``N // 3`` positions are the test
      set, the others the training set (each sorted back into row order) — disentanglement_lib's
      2 : 1 ratio of 10,000 : 5,000. ``num_train`` is ignored (every row is used).
    """
    if callable(representation) and not isinstance(representation, np.ndarray):
        if not is_data(ground_truth):
            raise ValueError("with a representation function, ground_truth must be a GroundTruthData "
                             f"(sample_factors, images_from_factors); got {type(ground_truth).__name__}")
        if test is not None:
            raise ValueError("test=(codes, factors) only goes with arrays of codes")
        rng = as_rng(seed)
        tr_c, tr_f = sample_factor_codes(representation, ground_truth, num_train, rng, chunk_size)
        te_c, te_f = (sample_factor_codes(representation, ground_truth, num_test, rng, chunk_size)
                      if num_test > 0 else (None, None))
        return ObservationalSets(tr_c, tr_f, te_c, te_f, tuple(getattr(ground_truth, "factor_names", ())) or None)
    if is_data(ground_truth):
        raise ValueError("with a GroundTruthData, representation must be a function images -> codes; "
                         "with an (N, D) array of codes pass the (N, K) factor classes")
    codes = _check_latents(representation).astype(np.float64, copy=False)
    factors = _check_factors(ground_truth, codes.shape[0])
    names = tuple(factor_names) if factor_names is not None else None
    if test is not None:
        te_c = _check_latents(test[0]).astype(np.float64, copy=False)
        te_f = _check_factors(test[1], te_c.shape[0])
        if te_c.shape[1] != codes.shape[1] or te_f.shape[1] != factors.shape[1]:
            raise ValueError(f"test codes/factors have {te_c.shape[1]}/{te_f.shape[1]} columns; "
                             f"training ones {codes.shape[1]}/{factors.shape[1]}")
        return ObservationalSets(codes, factors, te_c, te_f, names)
    if num_test <= 0:
        return ObservationalSets(codes, factors, None, None, names)
    n = codes.shape[0]
    if n < 3:
        raise ValueError(f"need at least 3 rows to hold a third out as the test set; got {n}")
    perm = as_rng(seed).permutation(n)
    tr, te = np.sort(perm[: n - n // 3]), np.sort(perm[n - n // 3 :])
    return ObservationalSets(codes[tr], factors[tr], codes[te], factors[te], names)


def varying_factor_mask(factors: np.ndarray, metric: str) -> np.ndarray:
    """(K,) True for factors with at least two classes among ``factors``; a RuntimeWarning names the
    others, which the metric leaves out (their per-factor entries are NaN)."""
    varying = np.array([len(np.unique(factors[:, k])) > 1 for k in range(factors.shape[1])])
    for k in np.flatnonzero(~varying):
        warnings.warn(f"factor {k} takes a single value; it is excluded from {metric} and its per-factor "
                      "score is NaN", RuntimeWarning, stacklevel=3)
    if not varying.any():
        raise ValueError(f"every factor takes a single value; {metric} is undefined (no factor varies)")
    return varying


def representation_from_encoder(model, device=None, batch_size: int = 1024) -> Representation:
    """A representation function: images -> (B, D) float64 encoder means ``model.encode(x)[0]``.

    Runs in eval mode (:func:`vae.modes.eval_mode`, every submodule's mode restored) without
    gradients, ``batch_size`` images at a time, on ``device`` (default: where the model's
    parameters are). Accepts numpy arrays or tensors (uint8 ``k`` is read as ``k / 255``).

    >>> import torch
    >>> from vae.model import VAE
    >>> from vae.nets import MLPEncoder, MLPDecoder
    >>> from vae.priors import StandardNormal
    >>> m = VAE(MLPEncoder(3, (1, 4, 4), (8,)), MLPDecoder(3, (1, 4, 4), (8,)), StandardNormal(3))
    >>> representation_from_encoder(m)(np.zeros((5, 1, 4, 4), np.float32)).shape
    (5, 3)
    """
    import torch

    from vae.modes import eval_mode

    if device is None:
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = torch.device(device)
    bs = int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")

    def representation(images) -> np.ndarray:
        x = torch.as_tensor(images)
        out = []
        with torch.no_grad(), eval_mode(model):
            for a in range(0, len(x), bs):
                xb = x[a : a + bs].to(dev, non_blocking=True)
                xb = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb.float()
                enc = model.encode(xb)
                loc = enc[0] if isinstance(enc, (tuple, list)) else enc
                out.append(loc.detach().to("cpu", torch.float64))
        return torch.cat(out).numpy()

    return representation
