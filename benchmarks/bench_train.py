"""Benchmark: training throughput (images/s) of a 64×64 network three ways, in one run, and as a fraction
of what the machine can do: ``vae.train.fit``
(Pyro ELBO via ``VAE.loss_terms``), a true Pyro SVI loop
``pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), TraceMeanField_ELBO())``, and a
hand-written plain-PyTorch loop — same network, batch size, data and optimiser.

Networks (``--arch``): ``report`` — ConvEncoder64 / ConvDecoder64, the network of the original homework
report (a Persian course report on deep generative models, see docs/exercises.md; latent 16,
batch 256 by default) — and ``standard`` — the disentanglement literature's StandardEncoder64 /
StandardDecoder64 (latent 10, batch 64 by default), each with a StandardNormal prior and a Bernoulli
likelihood (analytic KL).

Machine limit: the attainable fp32 FLOP/s is measured in the same run (the best of several large
square matmuls on all threads); the achieved FLOP/s of a training step is the FLOPs of one
forward + backward pass counted by ``torch.utils.flop_counter.FlopCounterMode`` from the layer
shapes, times the images/s. A fourth path, ``plain (NCHW)``, is the plain loop with the
contiguous (NCHW) memory layout the project used before channels-last: today's speed-up in the same run. Plain loop: the same
modules, ``z = loc + scale·ε``, ``BCE-with-logits(sum) + closed-form KL``, ``(loss / B).backward()``,
``torch.optim.Adam(lr=1e-3, fused=True)`` (fit's default Adam), the same batch permutation and per-batch indexing of a tensor that
lives on the device, losses accumulated on the device (read once per epoch).

SVI loop: ``svi.step(x)`` per batch (it returns the loss as a Python float: one host synchronisation
per step, inherent to SVI; it minimises the batch *sum*, which Adam's scale invariance makes
equivalent to fit's per-image mean up to Adam's epsilon). ``fit`` runs with ``bn_recalibration=0``:
its per-epoch BatchNorm recalibration (10 forward batches; ~0.4 % of a full 782-step dSprites epoch,
but a large share of a short timed pass) is not training throughput.

One timed pass is ``--steps`` batches (a full epoch only if the data has exactly that many). The
three paths alternate pass by pass (``--rounds`` rounds after a one-step warm-up each), which keeps a shared machine's load changes from favouring one side. Reported:
images/s of each from the fastest epoch (best-of-N: other users' load only ever adds time, so the
minimum is the robust estimate on a shared machine) and from the median epoch, and the ratios
fit / plain (target >= 0.9) and SVI / plain, fit / SVI.

``--overhead`` also times the forward loss alone on a small batch (where framework overhead shows):
``VAE.loss_terms`` vs the plain expression, and Pyro's ``TraceMeanField_ELBO.differentiable_loss``.

    python benchmarks/bench_train.py --device cpu --steps 8 --rounds 2 --record benchmarks/results/train_bench_cpu.txt
    python benchmarks/bench_train.py --device cuda --steps 50 --rounds 5 --record benchmarks/results/train_bench_cuda.txt
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from vae.data.dataset import ImageDataset  # noqa: E402
from vae.device import resolve_device  # noqa: E402


ARCH_BATCH = {"report": 256, "standard": 64}


def make_vae(seed: int, latent: int | None, name: str | None = None, arch: str = "report", channels_last: bool = True):
    from vae.model import VAE
    from vae.nets import make_conv64
    from vae.priors import StandardNormal

    torch.manual_seed(seed)
    enc, dec = make_conv64(arch, latent)
    if not channels_last:
        for m in (enc, dec):
            m.channels_last = False
            m.to(memory_format=torch.contiguous_format)
    return VAE(enc, dec, StandardNormal(enc.latent_dim), name=name or f"bench{seed}{arch}{int(channels_last)}")


def attainable_flops(threads: int, n: int = 2048, reps: int = 8) -> float:
    """The machine's attainable fp32 FLOP/s: the best of ``reps`` (n × n) @ (n × n) matmuls."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def step_flops(vae, batch: int, device) -> float:
    """FLOPs of one training step's forward + backward per image (FlopCounterMode, from the shapes)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = (torch.rand(batch, 1, 64, 64, device=device) < 0.1).float()
    with FlopCounterMode(display=False) as counter:
        loss = plain_loss(vae.encoder, vae.decoder, x)[0] / batch
        loss.backward()
    vae.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def make_data(kind: str, n: int, seed: int) -> torch.Tensor:
    if kind == "dsprites":
        from vae.data.dsprites import load_dsprites

        return load_dsprites(max_samples=n, seed=seed, cache=False).images
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) < 0.1).float()


def plain_loss(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    loc, scale = encoder(x)
    z = loc + scale * torch.randn_like(loc)
    recon = nn.functional.binary_cross_entropy_with_logits(decoder(z), x, reduction="sum")
    kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1.0).sum() - scale.log().sum()
    return recon + kl, recon, kl


def plain_epoch(vae, opt, images: torch.Tensor, batch_size: int, gen: torch.Generator) -> float:
    """One epoch of the hand-written loop; returns seconds (synchronised at the end)."""
    device = images.device
    t0 = time.perf_counter()
    vae.train()
    index = torch.randperm(len(images), generator=gen).to(device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for s in range(0, len(images), batch_size):
        x = images[index[s:s + batch_size]]
        loss, recon, kl = plain_loss(vae.encoder, vae.decoder, x)
        opt.zero_grad(set_to_none=True)
        (loss / len(x)).backward()
        opt.step()
        sums += torch.stack([loss.detach(), recon.detach(), kl.detach()]).double()
    sums.cpu()  # the one host synchronisation of the epoch
    return time.perf_counter() - t0


def fit_epoch(vae, images: torch.Tensor, batch_size: int, device, seed: int) -> float:
    """One pass of ``vae.train.fit`` over ``images``; returns the seconds as fit measures them."""
    from vae.train import fit

    hist = fit(vae, ImageDataset(images), epochs=1, batch_size=batch_size, val_fraction=0.0, device=device,
               seed=seed, progress=False, bn_recalibration=0)
    return hist.rows[0]["seconds"]


def make_svi(vae):
    """The plain Pyro route: SVI over the VAE's model and guide with Pyro's Adam and analytic KL."""
    import pyro

    return pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}),
                          pyro.infer.TraceMeanField_ELBO(max_plate_nesting=1))


def svi_epoch(vae, svi, images: torch.Tensor, batch_size: int, gen: torch.Generator) -> float:
    """One pass of ``svi.step`` over ``images`` in a random order; returns seconds."""
    device = images.device
    t0 = time.perf_counter()
    vae.train()
    index = torch.randperm(len(images), generator=gen).to(device)
    total = 0.0
    for s in range(0, len(images), batch_size):
        total += svi.step(images[index[s:s + batch_size]])  # a float: synchronises every step
    return time.perf_counter() - t0


def bench_arch(arch: str, args, device, batch_size: int) -> dict:
    """Time fit / SVI / plain (channels-last) / plain (NCHW) for one architecture, alternating."""
    import pyro

    n = args.steps * batch_size
    images = make_data(args.data, n, seed=0).to(device)
    latent = args.latent_dim
    ours, plain = make_vae(0, latent, arch=arch).to(device), make_vae(0, latent, arch=arch).to(device)
    old = make_vae(0, latent, arch=arch, channels_last=False).to(device)
    pyro.clear_param_store()
    pyro_vae = make_vae(0, latent, name=f"bench_svi_{arch}", arch=arch).to(device)
    svi = make_svi(pyro_vae)
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-3, fused=True)  # fit's default Adam
    old_opt = torch.optim.Adam(old.parameters(), lr=1e-3, fused=True)
    gen, svi_gen, old_gen = (torch.Generator().manual_seed(0) for _ in range(3))
    flops = step_flops(make_vae(0, latent, arch=arch).to(device), batch_size, device)
    print(f"[{arch}] {n} images per timed pass ({args.steps} steps × batch {batch_size}), "
          f"{flops / 1e9:.3f} GFLOP per image-step (forward + backward)", flush=True)
    warm = images[:batch_size]
    fit_epoch(ours, warm, batch_size, device, seed=0)
    plain_epoch(plain, plain_opt, warm, batch_size, gen)
    plain_epoch(old, old_opt, warm, batch_size, old_gen)
    svi_epoch(pyro_vae, svi, warm, batch_size, svi_gen)
    times: dict[str, list[float]] = {"fit": [], "svi": [], "plain": [], "plain_nchw": []}
    for r in range(args.rounds):
        times["fit"].append(fit_epoch(ours, images, batch_size, device, seed=r + 1))
        times["svi"].append(svi_epoch(pyro_vae, svi, images, batch_size, svi_gen))
        times["plain"].append(plain_epoch(plain, plain_opt, images, batch_size, gen))
        times["plain_nchw"].append(plain_epoch(old, old_opt, images, batch_size, old_gen))
        print(f"  round {r + 1}: " + "   ".join(f"{k} {n / v[-1]:8.1f} img/s" for k, v in times.items()), flush=True)
    best = {k: n / min(v) for k, v in times.items()}
    med = {k: n / statistics.median(v) for k, v in times.items()}
    return {
        "arch": arch, "batch_size": batch_size, "steps": args.steps, "rounds": args.rounds,
        "gflop_per_image_step": round(flops / 1e9, 5),
        "images_per_s": {k: round(v, 2) for k, v in best.items()},
        "images_per_s_median": {k: round(v, 2) for k, v in med.items()},
        "ratio_fit_plain": round(best["fit"] / best["plain"], 4),
        "ratio_fit_plain_median": round(med["fit"] / med["plain"], 4),
        "ratio_svi_plain": round(best["svi"] / best["plain"], 4),
        "speedup_channels_last": round(best["plain"] / best["plain_nchw"], 4),
        "achieved_gflops": {k: round(v * flops / 1e9, 2) for k, v in best.items()},
        "pass_seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--arch", nargs="+", choices=("report", "standard"), default=["report", "standard"])
    p.add_argument("--steps", type=int, default=20, help="batches per timed epoch (default: 20)")
    p.add_argument("--rounds", type=int, default=3, help="timed epochs per path, alternating (default: 3)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size (default: 256 for report, the original report's; 64 for standard)")
    p.add_argument("--latent-dim", type=int, default=None, help="latent size (default: the architecture's own)")
    p.add_argument("--data", choices=("random", "dsprites"), default="random",
                   help="random binary 64x64 images (10%% on) or procedurally generated dSprites")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--record", default=None, help="write the result as text to this path and as JSON next to it")
    p.add_argument("--note", default="", help="free text stored with the record (e.g. machine load)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or (args.batch_size is not None and args.batch_size < 2):
        p.error("--steps and --rounds must be >= 1, --batch-size >= 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    load0 = os.getloadavg()
    peak = attainable_flops(torch.get_num_threads()) if device.type == "cpu" else math.nan
    print(f"device {device}, {torch.get_num_threads()} threads, attainable fp32 {peak / 1e9:.1f} GFLOP/s "
          f"(matmul), load average {load0[0]:.1f}", flush=True)
    archs = [bench_arch(a, args, device, args.batch_size or ARCH_BATCH[a]) for a in args.arch]
    for r in archs:
        r["fraction_of_attainable"] = {k: round(v * 1e9 / peak, 4) for k, v in r["achieved_gflops"].items()}
    result = {
        "command": "python benchmarks/bench_train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "data": args.data, "attainable_gflops": round(peak / 1e9, 2), "archs": archs,
        "load_average_start_end": [round(load0[0], 2), round(os.getloadavg()[0], 2)], "note": args.note,
    }
    lines = [
        "bench_train: vae.train.fit vs pyro.infer.SVI vs a plain PyTorch loop (channels-last, and NCHW as before)",
        f"command: {result['command']}",
        f"date: {result['date']}",
        f"device: {result['device']} ({result['device_name']}), torch {result['torch']}, {result['threads']} threads",
        f"attainable fp32: {result['attainable_gflops']:.1f} GFLOP/s (best 2048^3 matmul, same run)",
    ]
    for r in archs:
        lines += [
            f"[{r['arch']}] batch {r['batch_size']}, {r['steps']} steps per pass, {r['rounds']} alternating rounds; "
            f"{r['gflop_per_image_step']:.4f} GFLOP per image-step",
            "              best images/s   median images/s   achieved GFLOP/s   fraction of attainable",
        ]
        for k in ("fit", "svi", "plain", "plain_nchw"):
            lines.append(f"  {k:<10} {r['images_per_s'][k]:12.1f} {r['images_per_s_median'][k]:17.1f} "
                         f"{r['achieved_gflops'][k]:18.1f} {r['fraction_of_attainable'][k]:23.3f}")
        lines.append(f"  ratio fit/plain = {r['ratio_fit_plain']:.3f} (best), {r['ratio_fit_plain_median']:.3f} (median) "
                     f"(target >= 0.9); svi/plain = {r['ratio_svi_plain']:.3f}; channels-last / NCHW = "
                     f"{r['speedup_channels_last']:.2f}x")
    lines.append(f"load average at start/end: {result['load_average_start_end']}")
    if args.note:
        lines.append(f"note: {args.note}")
    text = "\n".join(lines)
    print(text)
    if args.record:
        os.makedirs(os.path.dirname(os.path.abspath(args.record)), exist_ok=True)
        with open(args.record, "w") as f:
            f.write(text + "\n")
        with open(os.path.splitext(args.record)[0] + ".json", "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
