"""The vae.metrics package: what it exports, the one calling convention, evaluate_all."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import vae.metrics as M
from vae.data.ground_truth import ArrayGridData, DSpritesData

SIZES = (3, 4, 2)


def grid_data(seed=0) -> ArrayGridData:
    g = np.array(list(itertools.product(*[range(s) for s in SIZES])))
    noise = np.random.default_rng(seed).random((len(g), 3))
    pixels = np.column_stack([g / (np.array(SIZES) - 1.0), noise]).astype(np.float32)
    return ArrayGridData(pixels.reshape(len(g), 1, 1, -1), SIZES, ("a", "b", "c"))


def entangled(x):
    z = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    w = np.random.default_rng(1).normal(size=(z.shape[1], 4))
    return np.tanh(z @ w)


def test_every_name_the_old_module_had_is_still_importable():
    from vae.metrics import (MIGResult, discretize, entropy, histogram_edges, joint_counts, mig, mig_chen,  # noqa: F401
                             mig_null, mutual_information_matrix, sample_codes)
    for name in ("mig", "beta_vae_score", "factor_vae_score", "dci", "sap", "modularity", "evaluate_all"):
        assert callable(getattr(M, name)) and name in M.__all__


def test_the_other_measurements_are_re_exported_lazily():
    import vae.analysis
    import vae.autoencoders
    import vae.lista
    import vae.scvae
    import vae.vq

    assert M.kl_per_dim_from_stats is vae.analysis.kl_per_dim_from_stats
    assert M.per_dim_kl is vae.analysis.per_dim_kl
    assert M.perplexity is vae.vq.perplexity and M.codebook_usage is vae.vq.codebook_usage
    assert M.sparsity_metrics is vae.scvae.sparsity_metrics and M.hoyer_sparsity is vae.lista.hoyer_sparsity
    assert M.psnr is vae.autoencoders.psnr
    assert {"psnr", "perplexity", "sparsity_metrics"} <= set(dir(M))
    with pytest.raises(AttributeError):
        M.no_such_metric  # noqa: B018
    # importing the package pulls in neither torch nor scikit-learn
    code = "import sys, vae.metrics; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_function_and_data_form_equals_the_array_form_on_the_same_points():
    # The convention: with a function and a GroundTruthData a metric draws num_train then num_test
    # points with default_rng(seed); the same points as arrays give the same result.
    data = grid_data()
    rng = np.random.default_rng(7)
    z_tr, y_tr = M.sample_factor_codes(entangled, data, 300, rng)
    z_te, y_te = M.sample_factor_codes(entangled, data, 150, rng)
    kw = dict(num_train=300, num_test=150, seed=7)
    a, b = M.sap(entangled, data, **kw), M.sap(z_tr, y_tr, test=(z_te, y_te))
    np.testing.assert_array_equal(a.score_matrix, b.score_matrix)
    a, b = M.modularity(entangled, data, **kw), M.modularity(z_tr, y_tr, test=(z_te, y_te))
    assert a.score == b.score and a.explicitness == b.explicitness
    quick = {"n_estimators": 5}
    a, b = M.dci(entangled, data, **kw, gbt_params=quick), M.dci(z_tr, y_tr, test=(z_te, y_te), seed=7, gbt_params=quick)  # seed: the trees
    assert a.score == b.score and a.completeness == b.completeness
    a, b = M.mig(entangled, data, num_train=300, seed=7), M.mig(z_tr, y_tr)
    assert a.score == b.score
    assert a.factor_names == ("a", "b", "c") and b.factor_names is None
    assert list(a.to_dict()["per_factor"]) == ["a", "b", "c"]  # names from the data set
    with pytest.raises(ValueError, match="GroundTruthData"):
        M.sap(entangled, y_tr)
    with pytest.raises(ValueError, match="function"):
        M.dci(z_tr, data)


def test_evaluate_all_equals_the_separate_calls():
    data, s = grid_data(), 0.03  # 300 + 150 points, 300 + 150 BetaVAE/FactorVAE groups
    opts = {"dci": {"gbt_params": {"n_estimators": 5}}, "factor_vae": {"batch_size": 16}, "beta_vae": {"batch_size": 16}}
    lines = []
    res = M.evaluate_all(entangled, data, seed=3, sample_scale=s, options=opts, log=lines.append)
    assert list(res) == list(M.METRICS) and len(lines) == 7
    kw = dict(num_train=300, num_test=150, seed=3)
    assert res["mig"].score == M.mig(entangled, data, num_train=300, seed=3).score
    assert res["dci"].score == M.dci(entangled, data, **kw, **opts["dci"]).score
    assert res["sap"].score == M.sap(entangled, data, **kw).score
    assert res["modularity"].explicitness == M.modularity(entangled, data, **kw).explicitness
    assert res["beta_vae"].score == M.beta_vae_score(entangled, data, seed=3, num_train=300, num_eval=150, batch_size=16).score
    assert res["factor_vae"].score == M.factor_vae_score(entangled, data, seed=3, num_train=300, num_eval=150,
                                                         num_variance_estimate=300, batch_size=16).score
    scores = M.headline_scores(res)
    assert set(scores) == {"mig", "beta_vae", "factor_vae", "dci_disentanglement", "dci_completeness",
                           "dci_informativeness", "sap", "modularity", "explicitness"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    d = json.loads(json.dumps(M.results_to_dict(res)))
    assert {v["metric"] for v in d.values()} == set(M.METRICS) and d["sap"]["per_factor"].keys() == {"a", "b", "c"}


def test_evaluate_all_on_arrays_and_its_errors():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=(300, 2))
    z = np.column_stack([y + 0.1 * rng.normal(size=(300, 2)), rng.normal(size=300)])
    res = M.evaluate_all(z, y, seed=1, options={"dci": {"gbt_params": {"n_estimators": 5}}})
    assert list(res) == ["mig", "dci", "sap", "modularity"]
    assert res["sap"].score == M.sap(z, y, seed=1).score and res["mig"].score == M.mig(z, y).score
    with pytest.raises(ValueError, match="intervene"):
        M.evaluate_all(z, y, metrics=["beta_vae"])
    with pytest.raises(ValueError, match="unknown metrics"):
        M.evaluate_all(z, y, metrics=["irs"])
    with pytest.raises(ValueError, match="sample counts"):
        M.evaluate_all(z, y, options={"sap": {"num_train": 5}})
    with pytest.raises(ValueError, match="unknown metrics"):
        M.evaluate_all(z, y, options={"bogus": {}})


def test_representation_from_encoder_gives_the_encoder_means():
    import torch

    from vae.analysis import encode_means
    from vae.model import VAE
    from vae.nets import MLPDecoder, MLPEncoder
    from vae.priors import StandardNormal

    torch.manual_seed(0)
    model = VAE(MLPEncoder(4, (1, 64, 64), (16,)), MLPDecoder(4, (1, 64, 64), (16,)), StandardNormal(4))
    model.train()
    data = DSpritesData()
    images = data.images_from_factors(data.sample_factors(37, rng=0))
    fn = M.representation_from_encoder(model, batch_size=10)
    codes = fn(images)
    assert codes.shape == (37, 4) and codes.dtype == np.float64 and model.training  # mode restored
    np.testing.assert_allclose(codes, encode_means(model, torch.from_numpy(images)), rtol=1e-6, atol=1e-7)
    u8 = torch.from_numpy((images * 255).astype(np.uint8))
    np.testing.assert_allclose(fn(u8), codes, rtol=1e-6, atol=1e-7)  # uint8 k means k / 255
    res = M.mig(fn, data, num_train=200, seed=0)  # the whole path: data -> images -> encoder -> metric
    assert 0.0 <= res.score <= 1.0 and res.n_points == 200
