"""Benchmark: every metric of vae.metrics vs a straightforward reference written the
disentanglement_lib way, in one run, on dSprites with disentanglement_lib's sample counts.

Data: :class:`vae.data.ground_truth.DSpritesData` (the procedural images). Representation: a cheap
deterministic 10-d code computed from each image — foreground area, centroid (x, y), second moments
(xx, yy, xy) and 4 random projections — partly disentangled (area ~ scale, centroid ~ position),
so the scores are neither 0 nor 1.

Points (the library's study configuration): MIG 10,000; DCI, SAP, modularity/explicitness 10,000
train + 5,000 test; BetaVAE score 10,000 + 5,000 pairs of 64-image batches; FactorVAE score
10,000 variance images + 10,000 + 5,000 batches of 64.

References, written as the library writes them, on the *same* points (the same factors, drawn with
our documented stream), so the scores must agree:

* observational: codes built 16 images at a time with ``np.vstack`` (``generate_batch_factor_code``),
  then MIG / modularity with ``np.digitize`` per latent and ``sklearn.metrics.mutual_info_score`` per
  (latent, factor) pair, SAP with one ``LinearSVC`` per pair, DCI with one
  ``GradientBoostingClassifier`` per factor (same estimator as ours: expect a ratio near 1),
  explicitness with ``MultiLabelBinarizer`` + ``roc_auc_score``;
* intervention-based: one Python iteration per training point, each rendering and encoding its own
  64-image batch(es), then the same classifier (BetaVAE) / majority vote (FactorVAE).

    python benchmarks/bench_metrics.py [--metrics mig sap ...] [--scale 1.0] [--out benchmarks/results/metrics_bench_cpu]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import warnings  # noqa: E402

import vae.metrics as M  # noqa: E402
from vae.data.ground_truth import DSpritesData  # noqa: E402
from vae.metrics._common import encode_factors  # noqa: E402
from vae.metrics.dci import canonical_column_order  # noqa: E402

ALL = ("mig", "beta_vae", "factor_vae", "dci", "sap", "modularity")


class MomentCode:
    """images (B, 1, 64, 64) -> (B, 10): area, centroid, second moments, 4 random projections.

    Computed in float64 and rounded to float32: BLAS sums in an order that depends on the batch
    size, and the rounding makes each image's code independent of how many images share the call
    (so ours, 512 at a time, and the references, 16 or 64 at a time, see the very same codes)."""

    def __init__(self, seed: int = 0) -> None:
        r, c = np.meshgrid(np.arange(64.0), np.arange(64.0), indexing="ij")
        basis = np.stack([np.ones(4096), c.ravel(), r.ravel(), c.ravel() ** 2, r.ravel() ** 2, (r * c).ravel()], 1)
        proj = np.random.default_rng(seed).normal(size=(4096, 4)) / 64.0
        self.w = np.concatenate([basis, proj], axis=1)

    def __call__(self, images) -> np.ndarray:
        s = np.asarray(images, dtype=np.float64).reshape(len(images), -1) @ self.w
        m = np.maximum(s[:, 0], 1e-6)
        cx, cy = s[:, 1] / m, s[:, 2] / m
        vx, vy, cxy = s[:, 3] / m - cx**2, s[:, 4] / m - cy**2, s[:, 5] / m - cx * cy
        z = np.column_stack([m / 100.0, cx / 10.0, cy / 10.0, vx / 20.0, vy / 20.0, cxy / 20.0, s[:, 6:]])
        return z.astype(np.float32).astype(np.float64)


# --- references, the disentanglement_lib way ---------------------------------------------------------------
def ref_codes(fn, data, factors, batch_size=16):
    reps = None
    for i in range(0, len(factors), batch_size):
        r = fn(data.images_from_factors(factors[i : i + batch_size]))
        reps = r if reps is None else np.vstack((reps, r))
    return reps


def ref_discretize(mus, n_bins=20):
    out = np.zeros_like(mus)
    for i in range(mus.shape[0]):
        out[i, :] = np.digitize(mus[i, :], np.histogram(mus[i, :], n_bins)[1][:-1])
    return out


def ref_mi(mus, ys):
    import sklearn.metrics

    return np.array([[sklearn.metrics.mutual_info_score(ys[j], mus[i]) for j in range(ys.shape[0])] for i in range(mus.shape[0])])


def ref_mig(z, y):
    mus, ys = z.T, y.T
    m = ref_mi(ref_discretize(mus), ys)
    h = np.array([ref_mi(ys[j : j + 1], ys[j : j + 1])[0, 0] for j in range(ys.shape[0])])
    s = np.sort(m, axis=0)[::-1]
    return float(np.mean((s[0] - s[1]) / h))


def ref_sap(z, y, zt, yt):
    from sklearn import svm

    mat = np.zeros((z.shape[1], y.shape[1]))
    for i in range(z.shape[1]):
        for j in range(y.shape[1]):
            clf = svm.LinearSVC(C=0.01, class_weight="balanced").fit(z[:, i][:, None], y[:, j])
            mat[i, j] = np.mean(clf.predict(zt[:, i][:, None]) == yt[:, j])
    s = np.sort(mat, axis=0)
    return float(np.mean(s[-1] - s[-2]))


def ref_dci(z, y, zt, yt, seed=0):
    import scipy.stats
    from sklearn.ensemble import GradientBoostingClassifier

    imp = np.zeros((z.shape[1], y.shape[1]))
    train_acc, test_acc = [], []
    for k in range(y.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(z, y[:, k])
        imp[:, k] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(z) == y[:, k]))
        test_acc.append(np.mean(model.predict(zt) == yt[:, k]))
    per_code = 1.0 - scipy.stats.entropy(imp.T + 1e-11, base=imp.shape[1])
    return float(np.sum(per_code * imp.sum(1) / imp.sum()))


def ref_modularity(z, y, zt, yt):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MultiLabelBinarizer

    mus, ys = z.T, y.T
    sq = np.square(ref_mi(ref_discretize(mus), ys))
    top = sq.max(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mod = 1.0 - (sq.sum(1) - top) / (top * (sq.shape[1] - 1.0))
    mod[top == 0] = 0.0
    mean, std = mus.mean(1), mus.std(1)
    x_tr, x_te = ((mus - mean[:, None]) / std[:, None]).T, ((zt.T - mean[:, None]) / std[:, None]).T
    aucs = []
    for j in range(ys.shape[0]):
        clf = LogisticRegression().fit(x_tr, y[:, j])
        aucs.append(roc_auc_score(MultiLabelBinarizer().fit_transform(yt[:, j][:, None]), clf.predict_proba(x_te)))
    return float(np.mean(mod)), float(np.mean(aucs))


def ref_beta_vae(fn, data, seed, n_train, n_eval, b=64):
    from sklearn.linear_model import LogisticRegression

    rng, k = np.random.default_rng(seed), data.num_factors

    def points(n):
        labels = rng.integers(k, size=n)
        f1 = data.sample_factors(n * b, rng).reshape(n, b, k)
        f2 = data.sample_factors(n * b, rng).reshape(n, b, k)
        x = None
        for i in range(n):
            a2 = f2[i].copy()
            a2[:, labels[i]] = f1[i][:, labels[i]]
            v = np.mean(np.abs(fn(data.images_from_factors(f1[i])) - fn(data.images_from_factors(a2))), axis=0)
            x = np.zeros((n, len(v))) if x is None else x
            x[i] = v
        return x, labels

    x, lab = points(n_train)
    model = LogisticRegression(random_state=seed).fit(x, lab)
    xe, le = points(n_eval)
    return float(model.score(xe, le))


def ref_factor_vae(fn, data, seed, n_train, n_eval, n_var, b=64, threshold=0.05):
    rng, k = np.random.default_rng(seed), data.num_factors
    gv = np.var(fn(data.images_from_factors(data.sample_factors(n_var, rng))), axis=0, ddof=1)
    active = np.sqrt(gv) >= threshold
    idx = np.flatnonzero(active)

    def votes(n):
        labels = rng.integers(k, size=n)
        f = data.sample_factors(n * b, rng).reshape(n, b, k)
        v = np.zeros((k, len(gv)), dtype=np.int64)
        for i in range(n):
            g = f[i].copy()
            g[:, labels[i]] = g[0, labels[i]]
            local = np.var(fn(data.images_from_factors(g)), axis=0, ddof=1)
            v[labels[i], idx[np.argmin(local[active] / gv[active])]] += 1
        return v

    vt = votes(n_train)
    clf = np.argmax(vt, axis=0)
    ve = votes(n_eval)
    return float(ve[clf, np.arange(ve.shape[1])].sum() / ve.sum())


def timed(fn):
    """``(cpu seconds of this process, wall seconds, result)``. The machine is shared with other jobs,
    so ratios use CPU time (single-threaded here: run with OMP_NUM_THREADS=1), wall time is kept too."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - t0, out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics", nargs="+", default=list(ALL), choices=ALL, help="metrics to time (default: all)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every sample count (default 1: the recipe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write OUT.json and OUT.txt (numbers, command, device, date)")
    args = p.parse_args(argv)
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    n = lambda base: max(2, int(round(base * args.scale)))  # noqa: E731
    data, fn = DSpritesData(), MomentCode(0)
    fn(data.images_from_factors(data.sample_factors(64, 0)))  # warm-up: the sprite bank, BLAS
    import scipy.stats  # noqa: F401  warm-up: imports are not timed (scikit-learn's take seconds)
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import sklearn.svm  # noqa: F401
    lines, rows = [], []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    n_tr, n_te = n(10_000), n(5_000)
    rng = np.random.default_rng(args.seed)
    f_tr, f_te = data.sample_factors(n_tr, rng), data.sample_factors(n_te, rng)
    say(f"vae.metrics vs disentanglement_lib-style references on dSprites (procedural), 10-d moment code; "
        f"{n_tr:,} train / {n_te:,} test points")
    say("times: CPU seconds of this process (wall seconds in the JSON); ratio = reference / ours")
    say("observational rows (mig, dci, sap, modularity): the metric on given codes; 'with codes' adds encoding the points")
    say(f"{'metric':<11} {'ours (s)':>9} {'ref (s)':>9} {'ratio':>7} {'with codes':>10}   {'score ours':>12} {'score ref':>12} {'|diff|':>9}")
    t_codes, w_codes, (z, zt) = timed(lambda: (encode_factors(fn, data, f_tr), encode_factors(fn, data, f_te)))
    t_ref_codes, w_ref_codes, (rz, rzt) = timed(lambda: (ref_codes(fn, data, f_tr), ref_codes(fn, data, f_te)))
    assert np.array_equal(z, rz) and np.array_equal(zt, rzt)  # the same codes (see MomentCode)
    say(f"{'(codes)':<11} {t_codes:9.2f} {t_ref_codes:9.2f} {t_ref_codes / t_codes:7.1f}x {'':>10}   encoding the "
        f"{n_tr + n_te:,} points: chunks of {M._common.DEFAULT_CHUNK} vs batches of 16")
    jobs = {
        "mig": (lambda: M.mig(z, f_tr).score, lambda: ref_mig(rz, f_tr)),
        "sap": (lambda: M.sap(z, f_tr, test=(zt, f_te)).score, lambda: ref_sap(rz, f_tr, rzt, f_te)),
        "modularity": (lambda: (lambda r: (r.score, r.explicitness))(M.modularity(z, f_tr, test=(zt, f_te), seed=args.seed)),
                       lambda: ref_modularity(rz, f_tr, rzt, f_te)),
        "dci": (lambda: M.dci(z, f_tr, test=(zt, f_te), seed=args.seed).score,
                # the same fit as ours: columns handed over in ours' canonical order (see vae.metrics.dci)
                lambda: (lambda o: ref_dci(rz[:, o], f_tr, rzt[:, o], f_te, args.seed))(canonical_column_order(rz))),
        "beta_vae": (lambda: M.beta_vae_score(fn, data, seed=args.seed, num_train=n(10_000), num_eval=n(5_000)).score,
                     lambda: ref_beta_vae(fn, data, args.seed, n(10_000), n(5_000))),
        "factor_vae": (lambda: M.factor_vae_score(fn, data, seed=args.seed, num_train=n(10_000), num_eval=n(5_000),
                                                  num_variance_estimate=n(10_000)).score,
                       lambda: ref_factor_vae(fn, data, args.seed, n(10_000), n(5_000), n(10_000))),
    }
    for name in [m for m in ALL if m in args.metrics]:
        ours_fn, ref_fn = jobs[name]
        t_o, w_o, s_o = timed(ours_fn)
        t_r, w_r, s_r = timed(ref_fn)
        obs = name in ("mig", "sap", "modularity", "dci")
        e2e = (t_r + t_ref_codes) / (t_o + t_codes) if obs else t_r / t_o
        pairs = list(zip(s_o, s_r)) if isinstance(s_o, tuple) else [(s_o, s_r)]
        diff = max(abs(a - b) for a, b in pairs)
        shown = " / ".join(f"{a:.6f}" for a, _ in pairs), " / ".join(f"{b:.6f}" for _, b in pairs)
        say(f"{name:<11} {t_o:9.2f} {t_r:9.2f} {t_r / t_o:7.1f}x {e2e:9.1f}x   {shown[0]:>12} {shown[1]:>12} {diff:9.2e}")
        rows.append({"metric": name, "ours_cpu_seconds": t_o, "reference_cpu_seconds": t_r, "ratio": t_r / t_o,
                     "ratio_including_codes": e2e, "ours_wall_seconds": w_o, "reference_wall_seconds": w_r,
                     "score_ours": [a for a, _ in pairs], "score_reference": [b for _, b in pairs], "abs_difference": diff})
    say("(modularity row: modularity / explicitness; DCI row: disentanglement. Logistic regressions run with"
        " scikit-learn's defaults, max_iter=100, in ours and the references alike; lbfgs convergence warnings hidden)")
    import sklearn

    out = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:])),
        "device": f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, no GPU used",
        "date": datetime.date.today().isoformat(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__,
        "n_train": n_tr, "n_test": n_te, "scale": args.scale, "seed": args.seed,
        "codes_cpu_seconds": {"ours": t_codes, "reference": t_ref_codes},
        "chunk_size": M._common.DEFAULT_CHUNK,
        "results": rows,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".json", "w") as f:
            json.dump(out, f, indent=2)
        with open(args.out + ".txt", "w") as f:
            f.write(f"# metrics benchmark, {out['date']}, {out['device']}, numpy {np.__version__}, "
                    f"scikit-learn {sklearn.__version__}, OMP_NUM_THREADS={out['OMP_NUM_THREADS']}\n"
                    f"# $ {out['command']}\n" + "\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    main()
