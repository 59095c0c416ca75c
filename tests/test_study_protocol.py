"""The β-VAE study's training path and protocol: uint8 storage, index views, the standard nets,
epoch slices, the bootstrap, the protocol end to end (smoke size), resume, saved means, the GPU
script's code path on CPU, vectorised particles."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyro
import pytest
import torch

from vae.data.dataset import ImageDataset
from vae.nets import StandardDecoder64, StandardEncoder64, count_parameters, make_conv64
from vae.stats import bootstrap_mean_ci
from vae.train import _stream_positions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---------------------------------------------------------------- storage
def test_uint8_storage_round_trips_exactly():
    k = torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8)
    ds = ImageDataset(k)
    x = ds.batch(torch.arange(4))
    assert x.dtype == torch.float32
    assert torch.equal(x, k.to(torch.float32) / 255)  # exactly k/255, every k
    assert torch.equal((x * 255).round().to(torch.uint8), k)


def test_dsprites_loads_as_uint8_equal_to_the_generator():
    from vae.data.dsprites import generate_dsprites, load_dsprites

    ds = load_dsprites(max_samples=50, seed=3, cache=False)
    assert ds.storage.dtype == torch.uint8 and set(torch.unique(ds.storage).tolist()) <= {0, 255}
    idx = np.sort(np.random.default_rng(3).choice(737_280, 50, replace=False))
    imgs, _, classes = generate_dsprites(idx)
    assert torch.equal(ds.batch(torch.arange(50))[:, 0], torch.from_numpy(imgs).float())
    assert np.array_equal(ds.factors, classes[:, 1:])


def test_split_and_subset_share_storage():
    images = torch.randint(0, 256, (100, 1, 4, 4), dtype=torch.uint8)
    ds = ImageDataset(images, np.arange(100)[:, None], ("i",))
    train, val = ds.split(0.2, seed=1)
    assert train.storage is images and val.storage is images  # no copy
    assert train.storage.data_ptr() == images.data_ptr()
    assert len(train) == 80 and len(val) == 20
    assert sorted(np.concatenate([train.factors[:, 0], val.factors[:, 0]]).tolist()) == list(range(100))
    sub = train.subset([0, 5, 7])  # a view of a view
    assert sub.storage is images
    assert torch.equal(sub.raw(), images[train.index[[0, 5, 7]]])
    assert np.array_equal(sub.factors[:, 0], train.factors[[0, 5, 7], 0])


def test_view_indices_are_checked():
    ds = ImageDataset(torch.zeros(5, 1, 2, 2))
    with pytest.raises(IndexError):
        ds.subset([5])
    with pytest.raises(ValueError, match="mask"):
        ds.subset(np.array([True, False]))


# ---------------------------------------------------------------- networks
def test_standard_network_parameter_counts():
    # encoder: 1·32·16+32, 32·32·16+32, 32·64·16+64, 64·64·16+64, 1024·256+256, 2·(256·10+10)
    assert count_parameters(StandardEncoder64(10)) == 544 + 16_416 + 32_832 + 65_600 + 262_400 + 5_140 == 382_932
    # decoder: 10·256+256, 256·1024+1024, 64·64·16+64, 64·32·16+32, 32·32·16+32, 32·1·16+1
    assert count_parameters(StandardDecoder64(10)) == 2_816 + 263_168 + 65_600 + 32_800 + 16_416 + 513 == 381_313
    enc, dec = make_conv64("standard")
    loc, scale = enc(torch.rand(3, 1, 64, 64))
    assert loc.shape == (3, 10) and bool((scale > 0).all()) and dec(loc).shape == (3, 1, 64, 64)
    with pytest.raises(ValueError, match="unknown architecture"):
        make_conv64("resnet")


def test_channels_last_changes_layout_not_results():
    torch.manual_seed(0)
    a = StandardEncoder64(10, channels_last=True)
    b = StandardEncoder64(10, channels_last=False)
    b.load_state_dict(a.state_dict())  # same keys and shapes
    x = torch.rand(4, 1, 64, 64)
    torch.testing.assert_close(a(x)[0], b(x)[0], rtol=1e-4, atol=1e-5)
    assert a.convs[0].weight.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- epoch slices
def test_epoch_slices_visit_every_image_once_per_pass():
    n, size = 10, 4
    stream = torch.cat([_stream_positions(e, n, size, seed=7) for e in range(1, 6)])  # 20 = two passes
    assert sorted(stream[:10].tolist()) == list(range(10))
    assert sorted(stream[10:].tolist()) == list(range(10))
    assert not torch.equal(stream[:10], stream[10:])  # a new permutation per pass
    assert torch.equal(_stream_positions(3, n, size, seed=7), stream[8:12])  # straddles two passes, reproducibly


# ---------------------------------------------------------------- bootstrap
def test_bootstrap_interval_on_a_known_sample():
    # n = 2: the 4 resamples have means 0, 0.5, 0.5, 1 -> quantiles by linear interpolation
    r = bootstrap_mean_ci([0.0, 1.0], level=0.5)
    sorted_means = [0.0, 0.5, 0.5, 1.0]
    assert r["exact"] and r["mean"] == 0.5
    assert r["lo"] == pytest.approx(np.quantile(sorted_means, 0.25)) == pytest.approx(0.375)
    assert r["hi"] == pytest.approx(0.625)
    # n = 3, by hand: all 27 resamples of (0, 1, 5)
    means = sorted(sum(c) / 3 for c in itertools.product([0.0, 1.0, 5.0], repeat=3))
    r = bootstrap_mean_ci([0.0, 1.0, 5.0])
    assert r["lo"] == pytest.approx(np.quantile(means, 0.025)) and r["hi"] == pytest.approx(np.quantile(means, 0.975))
    assert bootstrap_mean_ci([2.0, 2.0, 2.0])["lo"] == 2.0
    big = bootstrap_mean_ci(list(range(20)), n_boot=2000, seed=0)
    assert not big["exact"] and big["lo"] < 9.5 < big["hi"]


# ---------------------------------------------------------------- the protocol, smoke size
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from vae.protocol import PROTOCOLS, run_protocol

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("protocol")
    records = run_protocol(PROTOCOLS["smoke"], out, out / "means", "cpu", log=lambda m: None)
    return out, records


def test_protocol_smoke_runs_every_beta_and_seed(smoke_run):
    out, records = smoke_run
    from vae.protocol import PROTOCOLS

    proto = PROTOCOLS["smoke"]
    assert [(r["beta"], r["seed"]) for r in records] == proto.runs()
    for r in records:
        assert set(r) >= {"beta", "seed", "mig", "null", "per_factor", "final", "steps", "wall_seconds", "device",
                          "means_file", "kl_per_dim", "mig_curve"}
        assert r["steps"] == proto.epochs * (proto.epoch_size // proto.batch_size)
        assert [p["epoch"] for p in r["mig_curve"]] == list(range(1, proto.epochs + 1))
        assert set(r["per_factor"]) == {"shape", "scale", "orientation", "posX", "posY"}
        assert 0 <= r["null"] < 0.05 and len(r["kl_per_dim"]) == 10


def test_saved_means_reproduce_the_recorded_mig_exactly(smoke_run):
    from vae.data.dsprites import index_to_classes
    from vae.metrics import mig

    _, records = smoke_run
    for r in records:
        with np.load(r["means_file"], allow_pickle=False) as f:
            means, indices = f["means"], f["indices"]
        assert means.shape == (1000, 10) and means.dtype == np.float32
        assert mig(means, index_to_classes(indices)[:, 1:], n_bins=20).score == r["mig"]


def test_protocol_report_writes_tables_and_figures_for_every_beta(smoke_run, tmp_path):
    from vae.protocol_report import write_protocol_report

    out, records = smoke_run
    results = tmp_path / "study.json"
    path = write_protocol_report(out, results=results)
    text = path.read_text()
    assert "MIG per β" in text and "0.0001–0.0003" in text
    saved = json.loads(results.read_text())
    assert saved["records"][0]["beta"] == 1.0 and {"command", "device", "date"} <= set(saved)
    for beta in ("1", "4"):
        for kind in ("pca", "recon", "traversals"):
            assert (out / "figures" / f"{kind}_beta_{beta}_seed_0.png").stat().st_size > 5000
    summary = json.loads((out / "summary.json").read_text())
    assert [s["beta"] for s in summary] == [1.0, 4.0]
    m = summary[0]["mig"]
    assert m["mean"] == pytest.approx(np.mean([r["mig"] for r in records if r["beta"] == 1.0]))


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    from vae.data.dsprites import load_dsprites
    from vae.protocol import PROTOCOLS, mig_images, run_one

    proto = replace(PROTOCOLS["smoke"], epochs=1, max_samples=400, mig_samples=300, null_repeats=1)
    data = load_dsprites(max_samples=proto.max_samples, seed=0, cache=False)
    mig_data, idx = mig_images(proto)
    first = run_one(proto, 4.0, 0, data, mig_data, idx, tmp_path, tmp_path / "m", "cpu", log=lambda m: None)
    (tmp_path / "beta_4_seed_0" / "record.json").unlink()  # as if stopped before finishing
    longer = replace(proto, epochs=2)
    rec = run_one(longer, 4.0, 0, data, mig_data, idx, tmp_path, tmp_path / "m", "cpu", log=lambda m: None)
    assert [p["epoch"] for p in rec["mig_curve"]] == [1, 2]
    assert rec["mig_curve"][0] == first["mig_curve"][0]  # epoch 1 was not trained again
    hist = json.loads((tmp_path / "beta_4_seed_0" / "history.json").read_text())
    assert [row["epoch"] for row in hist["rows"]] == [1, 2]


def test_shards_and_claims_cover_every_run_once(tmp_path):
    from vae.protocol import PROTOCOLS, claim_run, shard_runs

    runs = PROTOCOLS["cpu"].runs()
    parts = [shard_runs(runs, f"{i}/4") for i in range(4)]
    assert sorted(itertools.chain(*parts)) == sorted(runs) and len(set(itertools.chain(*parts))) == 9
    with pytest.raises(ValueError, match="i/N"):
        shard_runs(runs, "4/4")
    assert claim_run(tmp_path / "r")
    (tmp_path / "r" / "claim.pid").write_text("1")  # pid 1 is alive: someone else's claim
    assert not claim_run(tmp_path / "r")
    (tmp_path / "r" / "claim.pid").write_text("999999999")  # a dead process: taken over
    assert claim_run(tmp_path / "r")


def test_gpu_script_code_path_runs_on_cpu_at_tiny_size(tmp_path):
    rec = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_study.py"), "--tiny", "--device", "cpu",
                           "--out", str(tmp_path / "run"), "--record", str(rec), "--no-figures"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(rec.read_text())
    assert result["fit_options"]["autocast"] == "bf16" and result["fit_options"]["check_every"] == 0
    assert [m["beta"] for m in result["mig"]] == [1.0, 5.0]
    assert set(result["wall_seconds"]) >= {"data_train_score", "report_figures", "total", "train_per_run"}


# ---------------------------------------------------------------- vectorised particles
def test_vectorised_particles_equal_the_sequential_elbo():
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal

    pyro.clear_param_store()
    torch.manual_seed(0)
    vae = VAE(MLPEncoder(2, (1, 2, 2), (8,)), MLPDecoder(2, (1, 2, 2), (8,)), StandardNormal(2), name="vec")
    x = torch.rand(4, 1, 2, 2).round()  # batch 4 == number of particles: the case that was silently wrong
    elbo = pyro.infer.TraceMeanField_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
    torch.manual_seed(1)
    vec = float(elbo.differentiable_loss(vae.model, vae.guide, x))
    # the same 4 particles one by one: z = loc + scale·ε with the ε the vectorised guide drew
    torch.manual_seed(1)
    eps = torch.randn(4, 4, 2)
    loc, scale = vae.encode(x)
    terms = []
    for p in range(4):
        z = loc + scale * eps[p]
        recon = -vae.likelihood.distribution(vae.decode(z), 3).log_prob(x).sum()
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0)).sum()
        terms.append(float(recon + kl))
    assert vec == pytest.approx(np.mean(terms), rel=1e-5)


def test_a_run_folder_reloads_to_the_same_outputs(smoke_run):
    import vae
    from vae.analysis import encode_stats
    from vae.protocol import mig_images, PROTOCOLS

    out, records = smoke_run
    run = vae.load_run(out / "beta_4_seed_1")
    assert type(run.model).__name__ == "VAE" and run.model.beta == 4.0 and run.epoch == PROTOCOLS["smoke"].epochs
    mig_data, _ = mig_images(PROTOCOLS["smoke"])
    loc, _ = encode_stats(run.model, mig_data, batch_size=500)
    with np.load(records[-1]["means_file"], allow_pickle=False) as f:
        np.testing.assert_array_equal(loc.astype(np.float32), f["means"])  # the saved means, exactly
    z = torch.zeros(2, run.model.latent_dim)
    assert run.model.decode(z).shape == (2, 1, 64, 64)


def test_model_specs_only_call_builders_of_this_package():
    from vae.training.runs import build_from_spec, model_spec

    with pytest.raises(ValueError, match="only builders of the vae package"):
        build_from_spec(model_spec("os:system", command="true"))
    with pytest.raises(ValueError, match="not a model spec"):
        build_from_spec({"kwargs": {}})


@pytest.mark.parametrize("name", ["btcvae", "factorvae"])
def test_an_objective_protocol_trains_with_its_objective_and_records_it(tmp_path, name):
    from vae.data.dsprites import load_dsprites
    from vae.protocol import OBJECTIVE_CONFIGS, PROTOCOLS, mig_images, run_one
    from vae.train import load_checkpoint

    torch.set_num_threads(1)
    assert PROTOCOLS[f"cpu-{name}"].objective == OBJECTIVE_CONFIGS[name] and PROTOCOLS[f"cpu-{name}"].runs() == [(1.0, 0)]
    proto = replace(PROTOCOLS["smoke"], epochs=1, max_samples=400, mig_samples=300, null_repeats=1,
                    objective=OBJECTIVE_CONFIGS[name])
    data = load_dsprites(max_samples=proto.max_samples, seed=0, cache=False)
    mig_data, idx = mig_images(proto)
    rec = run_one(proto, 1.0, 0, data, mig_data, idx, tmp_path, tmp_path / "m", "cpu", log=lambda m: None)
    assert rec["objective"] == OBJECTIVE_CONFIGS[name]
    saved = load_checkpoint(tmp_path / "beta_1_seed_0" / "checkpoint.pt")["config"]["objective"]
    assert saved["name"] == name and {"tc", "d_loss"} & {k.removeprefix("train_") for k in rec["final"]}
