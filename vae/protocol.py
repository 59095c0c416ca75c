"""The β-VAE study as a protocol: a grid of (β, seed) runs on dSprites, each resumable, each scored.

A *protocol* fixes the architecture, the training length, the batch, the β grid and the seeds
(:data:`PROTOCOLS`). :func:`run_protocol` trains every run of the grid (or one shard of it) through
:func:`vae.train.fit` with ``epoch_size`` slices, so each run is checkpointed every ``epoch_size``
images and ``resume`` continues an interrupted run; a finished run (its ``record.json``) is skipped.
After every slice the encoder means of the fixed MIG images are scored (the MIG-vs-steps curve).
At the end of a run its record holds MIG on the encoder means of 10,000 fixed random dSprites
images (disentanglement_lib's recipe), the shuffled-factor null, per-factor MIG, the final losses,
the per-dimension KL, steps and wall time; the means are saved with their dSprites indices
(``.npz``: ``means``, ``indices``) so every number can be recomputed.

    >>> PROTOCOLS["cpu"].runs()[:2]
    [(1.0, 0), (1.0, 1)]

Command line: ``python -m vae.protocol --protocol cpu --out runs/protocol_cpu`` (``--shard i/N``
trains every N-th run; ``python -m vae.protocol_report`` gathers the records into the report).
"""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Protocol", "PROTOCOLS", "OBJECTIVE_CONFIGS", "run_protocol", "run_one", "mig_images", "shard_runs", "run_name",
           "build_study_model"]

ACTIVE_KL = 0.01  # nats: a latent dimension whose mean KL exceeds this is "active"


@dataclass(frozen=True)
class Protocol:
    """One study design: what is trained (architecture, β grid, seeds) and for how long."""

    name: str
    arch: str = "standard"
    betas: tuple[float, ...] = (1.0, 4.0, 16.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    latent_dim: int | None = None           # None: the architecture's own (10 standard, 16 report)
    batch_size: int = 64
    lr: float = 1e-3
    epochs: int = 5                         # slices of epoch_size images each
    epoch_size: int | None = 64_000         # None: a whole pass over the training images
    max_samples: int | None = None          # None: all 737,280 dSprites images
    val_fraction: float = 0.005
    mig_samples: int = 10_000
    mig_seed: int = 10_001                  # the MIG images are the same for every run
    mig_bins: int = 20
    null_repeats: int = 5
    report_kwargs: dict = field(default_factory=dict)  # e.g. dropout / batchnorm for the report net
    fit_options: dict = field(default_factory=dict)    # passed to fit: autocast, compile, checkpoint_every, ...
    objective: dict | None = None           # an objective's config (vae.objectives); None: the model's β-ELBO
    description: str = ""

    def runs(self) -> list[tuple[float, int]]:
        """Every (β, seed) of the grid, β-major."""
        return [(float(b), int(s)) for b in self.betas for s in self.seeds]

    def steps_per_run(self, n_train: int) -> int:
        per_epoch = self.epoch_size or n_train
        return self.epochs * math.ceil(per_epoch / self.batch_size)


PROTOCOLS: dict[str, Protocol] = {
    # Adam's for-loop implementation, as the committed cpu results (study and objectives) were trained:
    # fit's default (fused) is faster and differs in rounding only, which 5,000 steps amplify per seed.
    "cpu": Protocol(
        "cpu", fit_options={"adam_impl": "for-loop"},
        description="standard network (latent 10), β ∈ {1, 4, 16} × seeds {0, 1, 2}, batch 64, Adam 1e-3 (for-loop), "
        "5 × 64,000 images (5,000 steps) per run on all 737,280 images: about 100 min on a shared 2-core CPU "
        "(two workers, one thread each)"),
    "smoke": Protocol(
        "smoke", betas=(1.0, 4.0), seeds=(0, 1), batch_size=32, epochs=2, epoch_size=256, max_samples=2_000,
        val_fraction=0.05, mig_samples=1_000, null_repeats=2,
        description="the cpu protocol's code path at toy size (tests): seconds"),
    "report": Protocol(
        "report", arch="report", betas=(1.0, 5.0, 10.0), seeds=(0,), batch_size=256, lr=1e-3, epochs=50,
        epoch_size=None, max_samples=200_000, val_fraction=0.05,
        description="the study of the original homework report (docs/exercises.md): its network, β 1/5/10, 50 epochs × 200,000 images, batch 256 "
        "(≈111,000 steps: a GPU run)"),
}

#: The objectives compared on the cpu protocol (seed 0 each; the β-VAE rows come from the study itself):
#: each objective's usual weight (disentanglement_lib's defaults or the paper's), the capacity of the
#: annealed objective raised to 25 nats over the run's 5,000 steps instead of Burgess et al.'s 100,000.
OBJECTIVE_CONFIGS: dict[str, dict] = {
    "annealed": {"name": "annealed", "gamma": 1000.0, "c_max": 25.0, "n_steps": 5_000},
    "btcvae": {"name": "btcvae", "beta": 6.0},
    "factorvae": {"name": "factorvae", "gamma": 10.0},
    "dipvae1": {"name": "dipvae1", "lambda_od": 10.0, "lambda_d": 100.0},
    "dipvae2": {"name": "dipvae2", "lambda_od": 10.0, "lambda_d": 10.0},
    "iwae": {"name": "iwae", "k": 5},
}
for _name, _cfg in OBJECTIVE_CONFIGS.items():
    PROTOCOLS[f"cpu-{_name}"] = replace(
        PROTOCOLS["cpu"], name=f"cpu-{_name}", betas=(1.0,), seeds=(0,), objective=_cfg,
        description=f"the cpu protocol trained with the {_name} objective ({_cfg}), seed 0")


def run_name(beta: float, seed: int) -> str:
    return f"beta_{beta:g}_seed_{seed}".replace(".", "p")


def shard_runs(runs: list[tuple[float, int]], shard: str | None) -> list[tuple[float, int]]:
    """The runs of shard ``"i/N"`` (0-based i): every N-th run starting at i; all for ``None``.

    >>> shard_runs([(1.0, 0), (1.0, 1), (4.0, 0)], "1/2")
    [(1.0, 1)]
    """
    if shard is None:
        return list(runs)
    try:
        i, n = (int(v) for v in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/N (e.g. 0/2); got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard i/N needs 0 <= i < N; got {shard!r}")
    return [r for k, r in enumerate(runs) if k % n == i]


def claim_run(rdir: Path) -> bool:
    """Claim a run folder for this process (``claim.pid``, created exclusively); a claim whose process
    is gone is taken over. Workers started side by side with ``claim=True`` thus share one queue."""
    import os

    rdir.mkdir(parents=True, exist_ok=True)
    lock = rdir / "claim.pid"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid == os.getpid():
                return True
            if pid > 0 and _alive(pid):
                return False
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mig_images(protocol: Protocol, path=None):
    """The fixed MIG images: ``mig_samples`` random dSprites images of the full grid (seed
    ``mig_seed``), as ``(ImageDataset, indices)``."""
    from vae.data.dataset import ImageDataset
    from vae.data.dsprites import (LATENTS_POSSIBLE_VALUES, N_IMAGES, VARYING_FACTOR_NAMES, generate_dsprites,
                                   load_dsprites_npz)
    import torch

    idx = np.sort(np.random.default_rng(protocol.mig_seed).choice(N_IMAGES, protocol.mig_samples, replace=False))
    if path is not None:
        imgs, _, classes, _ = load_dsprites_npz(path)
        imgs, classes = imgs[idx], classes[idx]
    else:
        imgs, _, classes = generate_dsprites(idx)
    images = torch.from_numpy(np.ascontiguousarray(imgs))[:, None].mul_(255)
    data = ImageDataset(images, classes[:, 1:].astype(np.int64), VARYING_FACTOR_NAMES, "dsprites-mig",
                        {k: LATENTS_POSSIBLE_VALUES[k].copy() for k in VARYING_FACTOR_NAMES})
    return data, idx


def build_study_model(arch: str, beta: float, latent_dim: int | None, seed: int, **kwargs):
    """The study's VAE: ``arch`` encoder/decoder, Bernoulli likelihood, standard Normal prior, β;
    initialised under ``seed``."""
    import torch

    from vae.model import VAE
    from vae.nets import make_conv64
    from vae.priors import StandardNormal

    torch.manual_seed(seed)
    enc, dec = make_conv64(arch, latent_dim, **kwargs)
    return VAE(enc, dec, StandardNormal(enc.latent_dim), likelihood="bernoulli", beta=beta)


def _score(model, mig_data, protocol: Protocol, device, seed: int) -> dict[str, Any]:
    from vae.analysis import encode_stats, kl_per_dim_from_stats
    from vae.metrics import mig, mig_null

    loc, scale = encode_stats(model, mig_data, batch_size=1000, device=device)
    res = mig(loc, mig_data.factors, n_bins=protocol.mig_bins)
    nulls = [mig_null(loc, mig_data.factors, n_bins=protocol.mig_bins, seed=seed * 101 + r).score
             for r in range(protocol.null_repeats)]
    kl = kl_per_dim_from_stats(loc, scale)
    return {"loc": loc, "mig": float(res.score), "null": float(np.mean(nulls)), "null_scores": nulls,
            "per_factor": {n: float(v) for n, v in zip(mig_data.factor_names, res.per_factor)},
            "kl_per_dim": kl.tolist(), "active_dims": int((kl > ACTIVE_KL).sum())}


def run_one(protocol: Protocol, beta: float, seed: int, data, mig_data, mig_indices, out: Path,
            means_dir: Path, device, progress: bool = False, log=print) -> dict[str, Any]:
    """Train and score one (β, seed) run into ``out/<run_name>``; resumes from its checkpoint."""
    import torch

    from vae.analysis import encode_stats
    from vae.metrics import mig
    from vae.train import fit
    from vae.training.runs import model_spec

    rdir = out / run_name(beta, seed)
    rdir.mkdir(parents=True, exist_ok=True)
    record_path = rdir / "record.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    curve_path = rdir / "mig_curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.is_file() else []
    model = build_study_model(protocol.arch, beta, protocol.latent_dim, seed, **protocol.report_kwargs)
    ckpt = rdir / "checkpoint.pt"
    n_train = len(data) - int(round(protocol.val_fraction * len(data)))
    steps_per_epoch = math.ceil((protocol.epoch_size or n_train) / protocol.batch_size)

    curve_every = int(protocol.fit_options.get("checkpoint_every", 1))

    def on_epoch_end(epoch: int, row: dict) -> None:
        if epoch % curve_every and epoch != protocol.epochs:
            return
        loc, _ = encode_stats(model, mig_data, batch_size=1000, device=device)
        point = {"epoch": epoch, "step": epoch * steps_per_epoch, "mig": float(mig(loc, mig_data.factors).score),
                 "val_loss": row.get("val_loss"), "val_recon": row.get("val_recon"), "val_kl": row.get("val_kl")}
        curve[:] = [c for c in curve if c["epoch"] < epoch] + [point]
        curve_path.write_text(json.dumps(curve, indent=1))
        log(f"  {run_name(beta, seed)} epoch {epoch}/{protocol.epochs}: step {point['step']}, "
            f"val loss {row.get('val_loss', float('nan')):.2f}, MIG {point['mig']:.4f}")

    objective = None
    if protocol.objective is not None:
        from vae.objectives import objective_from_config

        objective = objective_from_config(protocol.objective, model_latent_dim=model.latent_dim)
    t0 = time.time()
    hist = fit(model, data, epochs=protocol.epochs, objective=objective, batch_size=protocol.batch_size, lr=protocol.lr,
               val_fraction=protocol.val_fraction, device=device, seed=seed, checkpoint=ckpt,
               resume=ckpt.is_file(), progress=progress, epoch_size=protocol.epoch_size,
               config={"beta": beta, "arch": protocol.arch, "latent_dim": model.latent_dim,
                       "protocol": protocol.name,
                       "model_spec": model_spec("vae.protocol:build_study_model", arch=protocol.arch, beta=beta,
                                                latent_dim=protocol.latent_dim, seed=seed, **protocol.report_kwargs)},
               on_epoch_end=on_epoch_end, **protocol.fit_options)
    hist.to_json(rdir / "history.json")
    s = _score(model, mig_data, protocol, device, seed)
    means_dir.mkdir(parents=True, exist_ok=True)
    means_file = means_dir / f"means_{run_name(beta, seed)}.npz"
    np.savez_compressed(means_file, means=s.pop("loc").astype(np.float32), indices=mig_indices.astype(np.int64))
    # MIG of the stored float32 means (what anyone reloading the file recomputes)
    with np.load(means_file, allow_pickle=False) as f:
        s["mig"] = float(mig(f["means"], mig_data.factors, n_bins=protocol.mig_bins).score)
    final = hist.final()
    record = {"protocol": protocol.name, "arch": protocol.arch, "beta": beta, "seed": seed, **s,
              **({"objective": dict(protocol.objective)} if protocol.objective is not None else {}),
              "final": {k: v for k, v in final.items() if k != "epoch"},
              "steps": protocol.steps_per_run(n_train), "images_seen": protocol.epochs * (protocol.epoch_size or n_train),
              "batch_size": protocol.batch_size, "lr": protocol.lr, "latent_dim": model.latent_dim,
              "wall_seconds": float(sum(r.get("seconds", 0.0) for r in hist.rows)),
              "wall_seconds_this_process": time.time() - t0, "device": _device_name(device),
              "means_file": str(means_file), "mig_curve": curve, "checkpoint": str(ckpt),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "mig_bins": protocol.mig_bins,
              "mig_samples": protocol.mig_samples, "mig_seed": protocol.mig_seed}
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(record_path)
    return record


def _device_name(device) -> str:
    import torch

    if str(device).startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {__import__('os').cpu_count()} cores, {torch.get_num_threads()} threads)"


def run_protocol(protocol: Protocol, out: str | Path, means_dir: str | Path, device=None, shard: str | None = None,
                 data_path=None, progress: bool = False, log=print, claim: bool = False) -> list[dict[str, Any]]:
    """Train and score every run of ``protocol`` (or of one ``shard``); returns the records of the
    runs finished so far. With ``claim=True`` a run another live worker has claimed is skipped
    (several workers on one machine share the grid as a queue)."""
    from vae.data.dsprites import load_dsprites
    from vae.device import resolve_device

    out, means_dir = Path(out), Path(means_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "protocol.json").write_text(json.dumps(asdict(protocol), indent=1))
    dev = resolve_device(device)
    runs = shard_runs(protocol.runs(), shard)
    todo = [r for r in runs if not (out / run_name(*r) / "record.json").is_file()]
    log(f"protocol {protocol.name}: {len(runs)} run(s) in this shard, {len(todo)} to train, device {dev}")
    records = []
    if todo:
        t0 = time.time()
        data = load_dsprites(max_samples=protocol.max_samples, seed=0, path=data_path, cache=True)
        mig_data, mig_idx = mig_images(protocol, data_path)
        log(f"data: {len(data):,} training images ({data.storage.dtype}, {data.nbytes() / 1e9:.2f} GB), "
            f"{len(mig_data):,} MIG images, {time.time() - t0:.0f} s")
    for beta, seed in runs:
        if (beta, seed) in todo:
            if claim and not claim_run(out / run_name(beta, seed)):
                log(f"run β = {beta:g}, seed {seed}: claimed by another worker, skipped")
                continue
            log(f"run β = {beta:g}, seed {seed}")
            rec = run_one(protocol, beta, seed, data, mig_data, mig_idx, out, means_dir, dev, progress, log)
            log(f"  done: MIG {rec['mig']:.4f} (null {rec['null']:.4f}), {rec['active_dims']} active dims, "
                f"{rec['wall_seconds']:.0f} s")
        else:
            rec = json.loads((out / run_name(beta, seed) / "record.json").read_text())
        records.append(rec)
        (out / run_name(beta, seed) / "claim.pid").unlink(missing_ok=True)
    return records


def main(argv=None) -> int:
    import argparse

    import torch

    p = argparse.ArgumentParser(prog="python -m vae.protocol", description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="cpu")
    p.add_argument("--out", default=None, help="run folders (default runs/protocol_<name>)")
    p.add_argument("--means-dir", default=None, help="where the means .npz files go (default <out>/means)")
    p.add_argument("--shard", default=None, help="train only shard i/N of the runs (e.g. 0/2)")
    p.add_argument("--claim", action="store_true",
                   help="share the grid with other workers on this folder: skip runs a live worker has claimed")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--epochs", type=int, default=None, help="override the protocol's number of slices")
    p.add_argument("--data-path", default=None)
    p.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    proto = PROTOCOLS[a.protocol]
    if a.epochs:
        proto = replace(proto, epochs=a.epochs)
    out = Path(a.out or f"runs/protocol_{proto.name}")
    run_protocol(proto, out, a.means_dir or out / "means", a.device, a.shard, a.data_path, a.progress, claim=a.claim)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
