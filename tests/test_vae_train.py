"""vae.train.fit: the one training loop. Tested with tiny hand-written modules exposing loss_terms
(independent of the VAE code), plus one real Pyro VAE when vae.model is importable."""
from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from vae.data.dataset import ImageDataset
from vae.staging import exact_uint8 as _exact_uint8, to_uint8 as _to_uint8
from vae.train import (History, TrainingDiverged, TrainingInterrupted, _batch_bounds, fit,
                       has_batchnorm, load_checkpoint, recalibrate_batchnorm, restore_model, save_checkpoint)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread is faster (and far less noisy on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------------------ tiny test models
class TinyAE(nn.Module):
    """A small stochastic autoencoder with everything that makes resuming hard: BatchNorm (running
    statistics), Dropout (RNG), a reparameterised Gaussian code (RNG) and numpy/python RNG use."""

    def __init__(self, d_in: int = 16, hidden: int = 12, latent: int = 3, interrupt_after: int | None = None,
                 nan_after: int | None = None) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(hidden, 2 * latent))
        self.dec = nn.Linear(latent, d_in)
        self.train_calls = 0
        self.interrupt_after, self.nan_after = interrupt_after, nan_after

    def loss_terms(self, x):
        if self.training:
            self.train_calls += 1
            if self.interrupt_after is not None and self.train_calls > self.interrupt_after:
                raise KeyboardInterrupt
        h = self.enc(x.flatten(1))
        loc, log_scale = h.chunk(2, dim=1)
        z = loc + log_scale.exp() * torch.randn_like(loc)
        recon = nn.functional.binary_cross_entropy_with_logits(self.dec(z), x.flatten(1), reduction="sum")
        kl = 0.5 * (loc ** 2 + (2 * log_scale).exp() - 2 * log_scale - 1).sum()
        loss = recon + kl
        if self.nan_after is not None and self.training and self.train_calls > self.nan_after:
            loss = loss * float("nan")
        return {"loss": loss, "recon": recon, "kl": kl}


class ConstantLoss(nn.Module):
    """loss = Σ_images mean pixel value (independent of the parameter), n = batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def loss_terms(self, x):
        per_image = x.flatten(1).mean(1)
        return {"loss": per_image.sum() + 0.0 * self.w, "n": torch.tensor(float(len(x)))}


def patterns(n: int = 256, seed: int = 0) -> ImageDataset:
    """Binary 4×4 images: 4 fixed patterns with 5% flipped pixels (learnable structure)."""
    g = torch.Generator().manual_seed(seed)
    base = (torch.rand(4, 1, 4, 4, generator=g) > 0.5).float()
    imgs = base[torch.randint(0, 4, (n,), generator=g)]
    flip = (torch.rand(imgs.shape, generator=g) < 0.05).float()
    return ImageDataset((imgs + flip) % 2, name="patterns")


def binarize(x):
    return torch.bernoulli(x)


def state_equal(a: nn.Module, b: nn.Module) -> list[str]:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


# ----------------------------------------------------------------------------------------- tests
def test_tiny_training_lowers_the_loss():
    torch.manual_seed(1)
    hist = fit(TinyAE(), patterns(), epochs=15, batch_size=32, lr=3e-2, progress=False, seed=0)
    first, last = hist.rows[0], hist.rows[-1]
    # 16 binary pixels: ln 2 · 16 = 11.1 nats for a coin-flip model; the patterns are learnable
    assert last["train_loss"] < 0.7 * first["train_loss"], (first, last)
    assert last["val_loss"] < 0.7 * first["val_loss"]
    assert last["val_recon"] < 0.6 * 16 * math.log(2)
    assert hist.keys == ["loss", "recon", "kl"]
    assert [r["epoch"] for r in hist.rows] == list(range(1, 16))
    assert all(r["seconds"] > 0 for r in hist.rows)
    for r in hist.rows:  # loss = recon + kl per image
        assert r["train_loss"] == pytest.approx(r["train_recon"] + r["train_kl"], rel=1e-6)


def test_history_values_equal_a_recomputation():
    data = ImageDataset(torch.rand(103, 1, 3, 3), name="rand")
    hist = fit(ConstantLoss(), data, epochs=2, batch_size=10, val_fraction=0.1, seed=3, progress=False)
    train, val = data.split(0.1, seed=3)
    assert (hist.meta["n_train"], hist.meta["n_val"]) == (93, 10) == (len(train), len(val))
    expect_train = train.images.flatten(1).mean(1).double().mean().item()
    expect_val = val.images.flatten(1).mean(1).double().mean().item()
    for row in hist.rows:
        assert row["train_loss"] == pytest.approx(expect_train, rel=1e-6)
        assert row["val_loss"] == pytest.approx(expect_val, rel=1e-6)
        assert row["train_n"] == pytest.approx(1.0) and row["val_n"] == pytest.approx(1.0)


def test_validation_split_sizes_and_no_validation():
    data = patterns(200)
    hist = fit(ConstantLoss(), data, epochs=1, batch_size=64, val_fraction=0.05, progress=False)
    assert (hist.meta["n_train"], hist.meta["n_val"]) == (190, 10)
    hist0 = fit(ConstantLoss(), data, epochs=1, batch_size=64, val_fraction=0.0, progress=False)
    assert hist0.meta["n_train"] == 200 and not any(c.startswith("val_") for c in hist0.rows[0])


def test_batches_cover_every_image_and_never_leave_a_single_one():
    assert _batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert _batch_bounds(9, 4) == [(0, 4), (4, 9)]  # a trailing batch of 1 joins the previous one
    assert _batch_bounds(1, 4) == [(0, 1)]
    # BatchNorm model, 33 training images, batch 8 -> would leave one image alone: trains fine
    hist = fit(TinyAE(), patterns(33), epochs=1, batch_size=8, val_fraction=0.0, progress=False)
    assert math.isfinite(hist.final()["train_loss"])


def test_interrupt_and_resume_equals_uninterrupted(tmp_path):
    data = patterns(160)
    kw = dict(epochs=4, batch_size=32, lr=5e-3, seed=7, progress=False, transform=binarize, check_every=2)

    torch.manual_seed(123)
    ref = TinyAE()
    ref_hist = fit(ref, data, checkpoint=tmp_path / "ref.pt", **kw)

    torch.manual_seed(123)
    steps = len(_batch_bounds(152, 32))  # 152 training images
    broken = TinyAE(interrupt_after=2 * steps + 2)  # Ctrl-C during epoch 3
    with pytest.raises(TrainingInterrupted) as info:
        fit(broken, data, checkpoint=tmp_path / "run.pt", **kw)
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.last_epoch == 2 and load_checkpoint(tmp_path / "run.pt")["epoch"] == 2

    torch.manual_seed(999)  # a different initialisation: everything must come from the checkpoint
    resumed = TinyAE()
    hist = fit(resumed, data, checkpoint=tmp_path / "run.pt", resume=True, **kw)
    assert state_equal(ref, resumed) == []
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(hist.rows) == strip(ref_hist.rows)
    # the optimiser state and the final checkpoint agree too
    a, b = load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(tmp_path / "run.pt")
    assert a["epoch"] == b["epoch"] == 4
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_extends_a_finished_run(tmp_path):
    data = patterns(96)
    kw = dict(batch_size=16, seed=1, progress=False)
    torch.manual_seed(0)
    ref = TinyAE()
    fit(ref, data, epochs=3, **kw)
    torch.manual_seed(0)
    part = TinyAE()
    fit(part, data, epochs=1, checkpoint=tmp_path / "c.pt", **kw)
    cont = TinyAE()
    hist = fit(cont, data, epochs=3, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert [r["epoch"] for r in hist.rows] == [1, 2, 3]
    assert state_equal(ref, cont) == []


@pytest.mark.parametrize("check_every", [0, 1])
def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path, check_every):
    data = patterns(128)
    steps = len(_batch_bounds(122, 32))  # 4 steps per epoch
    good = {}
    model = TinyAE(nan_after=2 * steps + 1)  # the loss turns NaN at the second step of epoch 3
    ckpt = tmp_path / "c.pt"
    with pytest.raises(TrainingDiverged, match=r"epoch 3.*NaN/Inf.*holds epoch 2") as info:
        fit(model, data, epochs=6, batch_size=32, progress=False, checkpoint=ckpt, check_every=check_every,
            on_epoch_end=lambda e, row: good.update({e: {k: v.clone() for k, v in model.state_dict().items()}}))
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.epoch == 3 and err.last_good_epoch == 2 and err.checkpoint == ckpt
    assert err.step == (2 if check_every == 1 else None)
    assert len(err.history) == 2
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    fresh = TinyAE()
    restore_model(fresh, ckpt)
    assert all(torch.equal(fresh.state_dict()[k], good[2][k]) for k in good[2])
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_nan_at_the_first_epoch_writes_no_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="no checkpoint was written") as info:
        fit(TinyAE(nan_after=0), patterns(64), epochs=2, batch_size=16, progress=False,
            checkpoint=tmp_path / "c.pt")
    assert info.value.last_good_epoch is None and not (tmp_path / "c.pt").exists()


def test_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    fit(ConstantLoss(), patterns(40), epochs=2, batch_size=8, progress=False, checkpoint=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary files left
    before = path.read_bytes()
    real_save = torch.save

    def crash(obj, f, *a, **k):  # a partial write, then the process "dies"
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint({"format": 1}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python", "permutation"}


def test_history_csv_and_json_round_trip(tmp_path):
    hist = fit(TinyAE(), patterns(64), epochs=2, batch_size=16, progress=False)
    hist.to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_kl"]) for r in rows] == hist.column("val_kl")
    assert list(rows[0]) == ["epoch", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl",
                             "seconds"]
    back = History.from_json(hist.to_json(tmp_path / "h.json"))
    assert back.rows == hist.rows and back.meta["device"] == "cpu" and back.meta["n_val"] == 3
    assert hist.final() == hist.rows[-1] and History().final() == {}


class NoLossTerms(nn.Module):
    def forward(self, x):
        return x


class WrongTerms(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def loss_terms(self, x):
        return {"recon": self.w * x.sum()}


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(epochs=-3), "epochs"),
    (dict(epochs=2.5), "epochs"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(lr=-1.0), "lr must be"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(data=ImageDataset(torch.zeros(0, 1, 4, 4))), "data is empty"),
    (dict(model=NoLossTerms()), "loss_terms"),
    (dict(model=WrongTerms()), "key 'loss'"),
    (dict(resume=True), "resume=True needs checkpoint"),
    (dict(device="tpu"), "unknown device"),
    (dict(adam_impl="fast"), "adam_impl must be one of"),
])
def test_bad_inputs_raise_value_error(kwargs, match):
    args = dict(model=ConstantLoss(), data=patterns(16), epochs=1, batch_size=4, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit(args.pop("model"), args.pop("data"), **args)


def test_resume_checks_the_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(ConstantLoss(), patterns(16), epochs=1, batch_size=4, progress=False, checkpoint=tmp_path / "x.pt",
            resume=True)
    fit(ConstantLoss(), patterns(16), epochs=1, batch_size=4, progress=False, checkpoint=tmp_path / "c.pt")
    with pytest.raises(ValueError, match="batch_size=4 in the checkpoint, 8 now"):
        fit(ConstantLoss(), patterns(16), epochs=2, batch_size=8, progress=False, checkpoint=tmp_path / "c.pt",
            resume=True)


def test_resume_refuses_changed_settings_and_lists_them(tmp_path):
    ckpt = tmp_path / "c.pt"
    kw = dict(batch_size=16, progress=False, checkpoint=ckpt)
    fit(TinyAE(), patterns(64), epochs=1, lr=1e-3, config={"beta": 1.0, "prior": "normal"}, **kw)
    with pytest.raises(ValueError) as info:  # a changed lr is refused, not silently replaced by the saved one
        fit(TinyAE(), patterns(64), epochs=2, lr=1e-2, config={"beta": 4.0, "prior": "normal"}, resume=True, **kw)
    msg = str(info.value)
    assert "lr=0.001 in the checkpoint, 0.01 now" in msg and "beta=1.0 in the checkpoint, 4.0 now" in msg
    assert "prior" not in msg.split("settings:")[1].split(".")[0]  # unchanged settings are not listed
    with pytest.raises(ValueError, match="transform='binarize' in the checkpoint, 'None' now"):
        fit(TinyAE(), patterns(64), epochs=2, transform=None, resume=True,
            **{**kw, "checkpoint": _ckpt_with_transform(tmp_path)})
    # only the number of epochs may change
    hist = fit(TinyAE(), patterns(64), epochs=2, lr=1e-3, config={"beta": 1.0, "prior": "normal"}, resume=True, **kw)
    assert [r["epoch"] for r in hist.rows] == [1, 2]


class LinearAE(nn.Module):
    """A deterministic linear autoencoder: every parameter has a real gradient (with BatchNorm after a
    layer, that layer's bias gets rounding noise only, which Adam's normalised step turns into lr-sized
    moves, so implementations that round differently would part there)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.dec = nn.Linear(16, 3), nn.Linear(3, 16)

    def loss_terms(self, x):
        x = x.flatten(1)
        return {"loss": nn.functional.binary_cross_entropy_with_logits(self.dec(self.enc(x)), x, reduction="sum")}


def test_adam_implementations_are_the_same_algorithm_and_fused_is_the_default(tmp_path, monkeypatch):
    optimisers = []  # every Adam fit makes; .defaults holds the implementation it was built with

    class RecordingAdam(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            optimisers.append(self)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    kw = dict(epochs=3, batch_size=16, lr=1e-2, progress=False, seed=3)
    models = {}
    for impl in (None, "for-loop", "foreach"):
        torch.manual_seed(0)
        models[impl] = LinearAE()
        hist = fit(models[impl], patterns(64), **kw, **({} if impl is None else {"adam_impl": impl}))
        assert hist.meta["adam_impl"] == (impl or "fused")
    made = [o.defaults for o in optimisers]
    assert [made[0]["fused"], made[0]["foreach"]] == [True, None] and made[1]["foreach"] is False
    assert made[2]["foreach"] is True
    ref = models[None].state_dict()
    for impl in ("for-loop", "foreach"):  # 12 steps of Adam: equal up to rounding
        for k, v in models[impl].state_dict().items():
            assert torch.allclose(v.float(), ref[k].float(), rtol=1e-4, atol=1e-5), (impl, k)
    # a run trained with one implementation resumes under another (the optimiser state is the same)
    ckpt = tmp_path / "c.pt"
    torch.manual_seed(0)
    fit(LinearAE(), patterns(64), **{**kw, "epochs": 2}, adam_impl="for-loop", checkpoint=ckpt)
    torch.manual_seed(0)
    resumed = LinearAE()
    hist = fit(resumed, patterns(64), **kw, checkpoint=ckpt, resume=True)
    assert [r["epoch"] for r in hist.rows] == [1, 2, 3] and optimisers[-1].defaults["fused"] is True
    # the saved groups said for-loop; after loading them the resumed optimiser steps fused, as asked
    assert all(g["fused"] is True and not g["foreach"] for g in optimisers[-1].param_groups)
    for k, v in resumed.state_dict().items():
        assert torch.allclose(v.float(), models["for-loop"].state_dict()[k].float(), rtol=1e-4, atol=1e-5), k


def _ckpt_with_transform(tmp_path):
    path = tmp_path / "t.pt"
    fit(TinyAE(), patterns(64), epochs=1, batch_size=16, progress=False, checkpoint=path, transform=binarize)
    return path


def test_resume_and_restore_with_another_architecture_raise_value_error(tmp_path):
    ckpt = tmp_path / "c.pt"
    fit(TinyAE(hidden=12), patterns(64), epochs=1, batch_size=16, progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"does not fit this TinyAE.*enc\.0\.weight: shape \(12, 16\) in the "
                                         r"checkpoint, \(10, 16\) in the model"):
        fit(TinyAE(hidden=10), patterns(64), epochs=2, batch_size=16, progress=False, checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match="does not fit this TinyAE"):
        restore_model(TinyAE(latent=4), ckpt)


def test_checkpoint_has_ordinary_file_permissions(tmp_path):
    path = save_checkpoint({"format": 1}, tmp_path / "c.pt")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------------------------ batchnorm
def _affine_data(n: int = 512, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g) * torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5]) + torch.tensor([4.0, -2, 0, 7, 1])


def _bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, momentum=0.01), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=0.01))


def test_recalibrate_batchnorm_one_batch_equals_the_data_statistics():
    net, x = _bn_net(), _affine_data()
    net.train()
    rng_before = torch.get_rng_state()
    assert recalibrate_batchnorm(net, x, n_batches=1, batch_size=len(x), seed=3) == len(x)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG stream is untouched
    assert net.training and all(m.training for m in net.modules())  # modes restored
    assert net[1].momentum == 0.01 and net[5].momentum == 0.01  # momenta restored
    with torch.no_grad():
        h = net[0](x)  # the first BatchNorm's input, computed independently
        assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-5)
        assert torch.allclose(net[1].running_var, h.var(0, unbiased=True), rtol=1e-4)
        net.eval()
        # eval-mode output == the batch-statistics (train-mode, dropout off) output on the whole data
        ref = nn.functional.batch_norm(net[4](torch.relu(net[1](h))), None, None, net[5].weight, net[5].bias,
                                       training=True, eps=net[5].eps)
        out = net(x)
    # (running_var is the unbiased variance and the second layer's statistics were gathered behind the
    # first layer's batch statistics: differences of order 1/N remain)
    assert torch.allclose(out, ref, atol=0.02)
    with torch.no_grad():
        stale = _bn_net().eval()(x)  # never recalibrated: the initial running statistics
    assert (stale - ref).abs().max() > 0.5
    assert torch.allclose(out.mean(0), net[5].bias, atol=2e-3)


def test_recalibrate_batchnorm_several_batches_average_the_statistics():
    net, x = _bn_net(), _affine_data(1024)
    with torch.no_grad():
        before = net[0](x).mean(0)
    recalibrate_batchnorm(net, x, n_batches=4, batch_size=256, seed=0)
    mean, var = x.mean(0), x.var(0)
    with torch.no_grad():
        h = net[0](x)
    # 4 equal batches covering all the data: the average of the batch means is the data mean
    assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-4)
    assert torch.allclose(net[1].running_var, h.var(0), rtol=0.05)
    assert (before - net[1].running_mean).abs().max() < 1e-4 and mean.abs().max() > 1  # sanity of the data
    assert var.max() > 1
    # deterministic: the same call again gives the same buffers (Dropout is off, RNG seeded)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    recalibrate_batchnorm(net, x, n_batches=4, batch_size=256, seed=0)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_recalibrate_batchnorm_without_batchnorm_does_nothing_and_checks_inputs():
    net = nn.Sequential(nn.Linear(5, 2))
    assert not has_batchnorm(net) and has_batchnorm(_bn_net())
    assert recalibrate_batchnorm(net, _affine_data()) == 0
    with pytest.raises(ValueError, match="BatchNorm needs batches of at least 2 images"):
        recalibrate_batchnorm(_bn_net(), _affine_data(1))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        recalibrate_batchnorm(_bn_net(), _affine_data(), batch_size=1)


class ShiftedBN(nn.Module):
    """Linear (bias +5) -> BatchNorm (Keras momentum) -> squared error: BN inputs have mean ~5."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 8)
        nn.init.constant_(self.lin.bias, 5.0)
        self.bn = nn.BatchNorm1d(8, momentum=0.01)
        self.out = nn.Linear(8, 16)

    def loss_terms(self, x):
        se = ((self.out(self.bn(self.lin(x.flatten(1)))) - x.flatten(1)) ** 2).sum()
        return {"loss": se}


def test_fit_recalibrates_batchnorm_after_a_short_run():
    data = patterns(256)
    torch.manual_seed(0)
    model = ShiftedBN()
    fit(model, data, epochs=1, batch_size=64, val_fraction=0.0, progress=False, bn_recalibration=4)
    with torch.no_grad():
        h = model.lin(data.images.flatten(1))
    # 4 steps of the exponential average would leave running_mean near 0.04 * 5; recalibrated: the data's
    assert torch.allclose(model.bn.running_mean, h.mean(0), atol=1e-4)
    assert torch.allclose(model.bn.running_var, h.var(0), rtol=0.05)
    torch.manual_seed(0)
    plain = ShiftedBN()
    fit(plain, data, epochs=1, batch_size=64, val_fraction=0.0, progress=False, bn_recalibration=0)
    assert (plain.bn.running_mean - h.mean(0)).abs().max() > 1.0  # what the fix is for


@pytest.mark.parametrize("n, batch_size, val_fraction", [(16, 1, 0.0), (2, 8, 0.5)])
def test_batchnorm_with_single_image_batches_is_a_clear_error(n, batch_size, val_fraction):
    with pytest.raises(ValueError, match="BatchNorm needs batches of at least 2 images"):
        fit(TinyAE(), patterns(n), epochs=1, batch_size=batch_size, val_fraction=val_fraction, progress=False)
    # without BatchNorm, batches of one image are fine
    hist = fit(ConstantLoss(), patterns(n), epochs=1, batch_size=batch_size, val_fraction=val_fraction,
               progress=False)
    assert len(hist) == 1


def test_uint8_storage_is_lossless():
    k = torch.randint(0, 256, (50, 1, 3, 3))
    imgs = k.float() / 255
    assert _exact_uint8(imgs)
    assert torch.equal(((imgs * 255).round().to(torch.uint8)).float().div_(255.0), imgs)
    assert not _exact_uint8(imgs + 1e-4)
    assert torch.equal(_to_uint8(imgs, chunk=7), k.to(torch.uint8))  # chunked conversion, ragged last chunk


def test_a_pyro_vae_trains_and_resumes_exactly(tmp_path):
    pytest.importorskip("vae.model")
    import pyro
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal, VampPrior

    data = patterns(128)

    def make(prior):
        torch.manual_seed(0)
        enc = MLPEncoder(2, (1, 4, 4), (16,))
        p = StandardNormal(2) if prior == "normal" else VampPrior(enc, 5, (1, 4, 4))
        return VAE(enc, MLPDecoder(2, (1, 4, 4), (16,)), p)

    pyro.clear_param_store()
    kw = dict(epochs=3, batch_size=16, lr=1e-2, progress=False, seed=2)
    ref = make("vamp")
    hist = fit(ref, data, checkpoint=tmp_path / "ref.pt", **kw)
    assert hist.rows[-1]["train_loss"] < hist.rows[0]["train_loss"]
    part = make("vamp")
    fit(part, data, checkpoint=tmp_path / "c.pt", **{**kw, "epochs": 1})
    cont = make("vamp")
    fit(cont, data, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert state_equal(ref, cont) == []
    # the VampPrior pseudo-inputs (registered by pyro.module like every parameter of the tree) train too
    assert not torch.equal(make("vamp").prior.pseudo_inputs, ref.prior.pseudo_inputs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_fit_on_cuda(tmp_path):
    data = patterns(512)
    torch.manual_seed(1)
    model = TinyAE()
    hist = fit(model, data, epochs=10, batch_size=32, lr=1e-2, device="cuda", progress=False,
               checkpoint=tmp_path / "c.pt", transform=binarize)
    assert hist.meta["device"].startswith("cuda") and hist.meta["data_on_device"]
    assert next(model.parameters()).is_cuda
    assert hist.rows[-1]["train_loss"] < 0.7 * hist.rows[0]["train_loss"]
    state = load_checkpoint(tmp_path / "c.pt")  # loads on CPU
    assert state["epoch"] == 10 and state["rng"]["cuda"]
    cpu = TinyAE()
    restore_model(cpu, tmp_path / "c.pt")
    assert all(torch.equal(a.cpu(), b) for a, b in zip(model.state_dict().values(), cpu.state_dict().values()))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pyro_vae_with_batchnorm_fits_and_resumes_on_cuda(tmp_path):
    """A Pyro VAE with the seed's BatchNorm/Dropout nets and a VampPrior on the GPU: trains, recalibrates
    BatchNorm, checkpoints (CUDA RNG state of the device in use only) and resumes to the same state."""
    import pyro
    from vae.model import VAE
    from vae.nets import ConvDecoder64, ConvEncoder64
    from vae.priors import VampPrior

    g = torch.Generator().manual_seed(0)
    data = ImageDataset((torch.rand(96, 1, 64, 64, generator=g) < 0.1).float(), name="rand64")

    def make():
        torch.manual_seed(0)
        enc = ConvEncoder64(4)
        return VAE(enc, ConvDecoder64(4), VampPrior(enc, 3, (1, 64, 64)))

    pyro.clear_param_store()
    kw = dict(epochs=2, batch_size=16, progress=False, seed=1, device="cuda")
    ref = make()
    hist = fit(ref, data, checkpoint=tmp_path / "ref.pt", **kw)
    assert hist.meta["device"].startswith("cuda") and math.isfinite(hist.final()["val_loss"])
    assert len(load_checkpoint(tmp_path / "ref.pt")["rng"]["cuda"]) == 1
    fit(make(), data, checkpoint=tmp_path / "c.pt", **{**kw, "epochs": 1})
    cont = make()
    fit(cont, data, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ref.state_dict().values(), cont.state_dict().values())
               if a.is_floating_point())


def test_ctrl_c_during_a_checkpoint_write_is_held_until_the_file_is_complete(tmp_path):
    import os
    import signal

    from vae.training.checkpoints import deferred_keyboard_interrupt

    done = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in an interactive run
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred_keyboard_interrupt():
                os.kill(os.getpid(), signal.SIGINT)  # arrives mid-block
                save_checkpoint({"format": 1, "x": torch.zeros(3)}, tmp_path / "c.pt")
                done.append(True)
        assert done == [True] and torch.load(tmp_path / "c.pt", weights_only=True)["x"].shape == (3,)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    finally:
        signal.signal(signal.SIGINT, before)
