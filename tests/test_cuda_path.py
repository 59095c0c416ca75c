"""The GPU path of the study (skipped without CUDA): uint8 staging resident on the device, the
pinned-buffer fallback, no host synchronisation inside training steps, ``cuda`` vs ``cuda:0``,
VQ-VAE without per-step syncs, bf16 autocast, and the study's quick run. CUDA runs are not
bit-reproducible (TF32, atomics): they are compared with CPU runs within a tolerance."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
ROOT = Path(__file__).resolve().parents[1]


def _uint8_data(n: int = 512):
    from vae.data.dataset import ImageDataset

    g = torch.Generator().manual_seed(0)
    return ImageDataset(((torch.rand(n, 1, 64, 64, generator=g) < 0.1).to(torch.uint8) * 255))


def test_cuda_and_cuda0_are_one_device_and_data_is_not_copied_back():
    from vae.device import resolve_device
    from vae.staging import stage_views

    assert resolve_device("cuda") == resolve_device("cuda:0")
    data = _uint8_data()
    on_gpu = data.storage.to("cuda:0")
    from vae.data.dataset import ImageDataset

    ds = ImageDataset(on_gpu)
    train, val = ds.split(0.25, seed=0)
    t, v = stage_views([train, val], resolve_device("cuda"))
    assert t.store.data_ptr() == on_gpu.data_ptr() and v.store.data_ptr() == on_gpu.data_ptr()


def test_uint8_staging_resident_and_pinned_give_the_same_batches():
    from vae.staging import stage_views

    data = _uint8_data()
    train, val = data.split(0.25, seed=0)
    dev = torch.device("cuda", 0)
    resident = stage_views([train, val], dev, keep_on_device=True)[0]
    pinned = stage_views([train, val], dev, keep_on_device=False)[0]
    assert resident.on_device and resident.store.dtype == torch.uint8 and resident.store.is_cuda
    assert not pinned.on_device and not pinned.store.is_cuda
    for k in range(3):  # the alternating buffers are reused without corrupting a batch in flight
        idx = torch.arange(k * 64, (k + 1) * 64)
        a = resident.batch(idx.to(resident.index_device))
        b = pinned.batch(idx)
        assert torch.equal(a, b) and a.dtype == torch.float32
        assert torch.equal(a.cpu(), train.batch(idx))


def test_training_steps_do_not_synchronise_the_host():
    from vae.protocol import build_study_model
    from vae.staging import stage_views

    dev = torch.device("cuda", 0)
    model = build_study_model("standard", 4.0, None, 0).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    imgs = stage_views([_uint8_data()], dev, keep_on_device=True)[0]
    index = torch.randperm(imgs.n).to(dev)
    sums = torch.zeros(3, dtype=torch.float64, device=dev)
    model.train()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for s in range(0, 256, 64):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                terms = model.loss_terms(imgs.batch(index[s:s + 64]))
            opt.zero_grad(set_to_none=True)
            (terms["loss"] / 64).backward()
            opt.step()
            sums += torch.stack([terms[k].detach().double() for k in ("loss", "recon", "kl")])
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(sums).all()


def test_vq_vae_step_does_not_synchronise_the_host():
    from vae.vq import VectorQuantizer

    vq = VectorQuantizer(n_codes=32, code_dim=8, ema=True, reseed=True, init="uniform").cuda().train()
    z = torch.randn(256, 8, device="cuda")
    vq(z)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            out = vq(z)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.quantized.shape == z.shape


def test_fit_on_cuda_matches_cpu_within_tolerance():
    from vae.protocol import build_study_model
    from vae.train import fit

    data = _uint8_data(256)
    rows = {}
    for dev in ("cpu", "cuda"):
        m = build_study_model("standard", 4.0, None, 0)
        h = fit(m, data, epochs=2, batch_size=32, device=dev, progress=False, seed=0, check_every=0)
        rows[dev] = h.rows[-1]
    assert rows["cuda"]["val_loss"] == pytest.approx(rows["cpu"]["val_loss"], rel=0.05)


def test_gpu_study_script_tiny_on_cuda(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_study.py"), "--tiny", "--device", "cuda",
                           "--out", str(tmp_path / "run"), "--no-figures"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_study_quick_run_on_cuda(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "dsprites_study.py"), "--quick", "--device", "cuda",
                           "--out", str(tmp_path / "q"), "--no-progress"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "q" / "report.md").is_file()
