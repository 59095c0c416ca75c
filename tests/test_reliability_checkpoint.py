"""Issue 13, item 5: a corrupt checkpoint (truncated, random bytes, empty, a missing key, NaN/Inf in
the model or optimiser state) is a ``ValueError`` naming the file and the problem, for
``load_checkpoint``, ``restore_model`` and ``fit(resume=True)`` alike."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from tests.test_vae_train import TinyAE, patterns
from vae.train import fit, load_checkpoint, restore_model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


KW = dict(batch_size=16, progress=False)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "c.pt"
    fit(TinyAE(), patterns(64), epochs=1, checkpoint=path, **KW)
    return path


def _edited(good, tmp_path, edit) -> object:
    state = torch.load(good, weights_only=True)
    edit(state)
    path = tmp_path / "c.pt"
    torch.save(state, path)
    return path


def _first_adam_tensor(state, key: str):
    return next(iter(state["optimizer"]["state"].values()))[key]


CASES = {
    "truncated": (lambda good, tmp: _bytes(tmp, good.read_bytes()[: good.stat().st_size // 2]), "unreadable"),
    "random bytes": (lambda good, tmp: _bytes(tmp, np.random.default_rng(0).bytes(5000)), "unreadable"),
    "empty": (lambda good, tmp: _bytes(tmp, b""), "is empty"),
    "a pickle, not a checkpoint": (lambda good, tmp: _bytes(tmp, pickle.dumps({"format": 1}, protocol=2)), "unreadable"),
    "missing key": (lambda good, tmp: _edited(good, tmp, lambda s: s.pop("rng")), "incomplete: missing rng"),
    "missing optimizer": (lambda good, tmp: _edited(good, tmp, lambda s: s.pop("optimizer")), "missing optimizer"),
    "epoch of the wrong type": (lambda good, tmp: _edited(good, tmp, lambda s: s.update(epoch="3")),
                                "malformed: epoch is str"),
    "NaN in the optimiser state": (lambda good, tmp: _edited(good, tmp, lambda s: _first_adam_tensor(s, "exp_avg")
                                                             .view(-1)[0].fill_(float("nan"))),
                                   r"NaN/Inf values in optimizer\.state\.\d+\.exp_avg"),
    "Inf in the optimiser state": (lambda good, tmp: _edited(good, tmp, lambda s: _first_adam_tensor(
        s, "exp_avg_sq").view(-1)[0].fill_(float("inf"))), r"NaN/Inf values in optimizer\.state\.\d+\.exp_avg_sq"),
    "NaN lr": (lambda good, tmp: _edited(good, tmp, lambda s: s["optimizer"]["param_groups"][0].update(
        lr=float("nan"))), r"optimizer\.param_groups\[0\]\.lr"),
    "NaN in the model": (lambda good, tmp: _edited(good, tmp, lambda s: s["model"]["dec.weight"].view(-1)[3]
                                                   .fill_(float("nan"))), r"NaN/Inf values in model\.dec\.weight"),
    "Inf in BatchNorm statistics": (lambda good, tmp: _edited(good, tmp, lambda s: s["model"]["enc.1.running_var"]
                                                              .fill_(float("inf"))), r"model\.enc\.1\.running_var"),
}


def _bytes(tmp_path, data: bytes):
    path = tmp_path / "c.pt"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_checkpoints_are_clear_value_errors(case, good, tmp_path):
    make, problem = CASES[case]
    path = make(good, tmp_path)
    for load in (lambda: load_checkpoint(path), lambda: restore_model(TinyAE(), path),
                 lambda: fit(TinyAE(), patterns(64), epochs=2, checkpoint=path, resume=True, **KW)):
        with pytest.raises(ValueError, match=problem) as info:
            load()
        assert str(path) in str(info.value)


def test_the_good_checkpoint_still_loads_and_resumes(good, tmp_path):
    state = load_checkpoint(good)
    assert state["epoch"] == 1
    path = tmp_path / "c.pt"
    path.write_bytes(good.read_bytes())
    hist = fit(TinyAE(), patterns(64), epochs=2, checkpoint=path, resume=True, **KW)
    assert [r["epoch"] for r in hist.rows] == [1, 2]


def test_a_malformed_rng_state_is_a_clear_error(good, tmp_path):
    path = _edited(good, tmp_path, lambda s: s["rng"].pop("numpy"))
    with pytest.raises(ValueError, match="random-number state is malformed"):
        fit(TinyAE(), patterns(64), epochs=2, checkpoint=path, resume=True, **KW)
