"""Every ``--objective`` of examples/train_vae.py trains one quick epoch and logs its own terms, and
``fit(objective=...)`` checkpoints the objective, resumes it and stops early."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vae.data.dataset import ImageDataset
from vae.objectives import make_objective
from vae.train import fit, load_checkpoint
from helpers.models import mlp_vae
from helpers.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_vae.py"
TERMS = {"elbo": "beta", "annealed": "capacity", "btcvae": "tc", "factorvae": "d_loss", "dipvae1": "penalty",
         "dipvae2": "penalty", "iwae": "recon"}


@pytest.fixture(scope="module")
def train_vae():
    return load_script(SCRIPT, "train_vae_script")


@pytest.mark.parametrize("name", [n if n in ("btcvae", "factorvae") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in TERMS])
def test_every_objective_trains_one_quick_epoch_from_the_cli(train_vae, name, tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / name
    train_vae.main(["--dataset", "mnist", "--objective", name, "--quick", "--epochs", "1", "--max-samples", "120",
                    "--batch-size", "20", "--iwae-samples", "0", "--out", str(out), "--no-progress", "--json"])
    hist = json.loads((out / "history.json").read_text())
    row = hist["rows"][0]
    assert f"train_{TERMS[name]}" in row and torch.isfinite(torch.tensor(row["val_loss"]))
    assert load_checkpoint(out / "checkpoint.pt")["config"]["objective"]["name"] == name


def _model():
    return mlp_vae(3, (1, 4, 4), (16,))


def test_factorvae_discriminator_state_survives_resume_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    data = ImageDataset((torch.rand(80, 1, 4, 4) < 0.3).float())
    ck = tmp_path / "c.pt"
    straight = fit(_model(), data, epochs=3, batch_size=16, progress=False, objective=make_objective("factorvae", latent_dim=3))
    fit(_model(), data, epochs=2, batch_size=16, progress=False, checkpoint=ck, objective=make_objective("factorvae", latent_dim=3))
    resumed = fit(_model(), data, epochs=3, batch_size=16, progress=False, checkpoint=ck, resume=True,
                  objective=make_objective("factorvae", latent_dim=3))
    assert resumed.rows[-1]["val_loss"] == straight.rows[-1]["val_loss"]
    assert resumed.rows[-1]["train_d_loss"] == straight.rows[-1]["train_d_loss"]
    with pytest.raises(ValueError, match="objective"):  # another objective is another run
        fit(_model(), data, epochs=4, batch_size=16, progress=False, checkpoint=ck, resume=True,
            objective=make_objective("btcvae"))


def test_early_stopping_stops_and_restores_the_best_epoch():
    torch.set_num_threads(1)
    data = ImageDataset((torch.rand(60, 1, 4, 4) < 0.3).float())
    model = _model()
    # a learning rate this large makes the validation loss rise after the first epochs
    hist = fit(model, data, epochs=30, batch_size=10, lr=0.5, progress=False, early_stopping=2, seed=1)
    best = hist.meta["best_epoch"]
    vals = [r["val_loss"] for r in hist.rows]
    assert hist.meta["stopped_early_at"] == len(vals) < 30
    assert vals[best - 1] == min(vals) and len(vals) - best == 2
    with pytest.raises(ValueError, match="validation"):
        fit(_model(), data, epochs=2, batch_size=10, val_fraction=0.0, early_stopping=1, progress=False)


def test_a_train_run_folder_reloads_with_load_run(train_vae, tmp_path):
    import vae

    torch.set_num_threads(1)
    out = tmp_path / "run"
    train_vae.main(["--dataset", "mnist", "--quick", "--epochs", "1", "--max-samples", "120", "--batch-size", "20",
                    "--iwae-samples", "0", "--latent-dim", "5", "--out", str(out), "--no-progress", "--json"])
    run = vae.load_run(out)
    assert run.model.latent_dim == 5 and run.epoch == 1 and len(run.history.rows) == 1
    x = torch.rand(3, 1, 28, 28)
    loc, _ = run.model.encode(x)
    again = vae.load_run(out).model.encode(x)[0]
    assert torch.equal(loc, again) and run.model.decode(loc).shape == (3, 1, 28, 28)


class _NoisyLoss(torch.nn.Module):
    """A loss of pure noise (plus a parameter the optimiser may move): only the RNG sets its value."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def loss_terms(self, x):
        noise = torch.rand(x.shape[0]).sum()
        return {"loss": noise + 0.0 * self.w, "noise": noise}


def test_validation_draws_the_same_random_numbers_every_epoch():
    torch.set_num_threads(1)
    data = ImageDataset(torch.rand(40, 1, 2, 2))
    kw = dict(epochs=3, batch_size=10, val_fraction=0.25, progress=False, seed=2)
    hist = fit(_NoisyLoss(), data, val_seed=5, **kw)
    vals = [r["val_loss"] for r in hist.rows]
    trains = [r["train_loss"] for r in hist.rows]
    assert vals[0] == vals[1] == vals[2]      # common random numbers across epochs
    assert len(set(trains)) == 3               # training noise still fresh every epoch
    plain = fit(_NoisyLoss(), data, **kw)      # without val_seed: validation draws from the training stream
    assert len({r["val_loss"] for r in plain.rows}) == 3 and plain.rows[0]["train_loss"] == trains[0]
    assert [r["train_loss"] for r in plain.rows][1:] != trains[1:]


def test_early_stopping_start_ignores_the_warm_up_epochs():
    torch.set_num_threads(1)
    data = ImageDataset((torch.rand(60, 1, 4, 4) < 0.3).float())
    kw = dict(epochs=30, batch_size=10, lr=0.5, progress=False, early_stopping=2, seed=1)
    plain = fit(_model(), data, **kw)
    start = plain.meta["best_epoch"] + 3          # the plain run's best lies inside this "warm-up"
    late = fit(_model(), data, early_stopping_start=start, **kw)
    vals = [r["val_loss"] for r in late.rows]
    best = late.meta["best_epoch"]
    assert best > start and vals[best - 1] == min(vals[start:])
    assert late.meta["stopped_early_at"] == best + 2
    with pytest.raises(ValueError, match="early_stopping_start"):
        fit(_model(), data, epochs=2, batch_size=10, early_stopping=1, early_stopping_start=-1, progress=False)
