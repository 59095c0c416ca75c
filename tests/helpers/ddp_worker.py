"""Run by tests/test_distributed.py under torchrun (2 processes, gloo, 127.0.0.1): a short fit under
DDP, a resume, a diverging run; writes each rank's parameters and observations to OUT."""
from __future__ import annotations

import json
import math
import os
import sys

import torch

torch.set_num_threads(1)
from torch import nn  # noqa: E402

import vae.training.run as run_module  # noqa: E402
from vae.data.dataset import ImageDataset  # noqa: E402
from vae.train import TrainingDiverged, fit  # noqa: E402


class Regression(nn.Module):
    """A deterministic loss (no sampling): squared error of a linear map to a fixed target."""

    def __init__(self, nan_after: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(16, 3)
        self.calls, self.nan_after = 0, nan_after

    def loss_terms(self, x):
        self.calls += 1
        err = ((self.lin(x.flatten(1)) - x.flatten(1)[:, :3].sum(1, keepdim=True)) ** 2).sum()
        if self.nan_after is not None and self.calls > self.nan_after:
            err = err * math.nan
        return {"loss": err, "se": err}


def data() -> ImageDataset:
    g = torch.Generator().manual_seed(1)
    return ImageDataset(torch.rand(64, 1, 4, 4, generator=g))


def main(out: str) -> None:
    rank = int(os.environ["RANK"])
    saves = []
    real_save = run_module.save_checkpoint
    run_module.save_checkpoint = lambda state, path: (saves.append(int(state["epoch"])), real_save(state, path))[1]
    kw = dict(batch_size=8, lr=0.05, val_fraction=0.25, progress=False, seed=3)
    m = Regression()
    hist = fit(m, data(), epochs=2, checkpoint=os.path.join(out, "ddp.pt"), **kw)
    torch.save(m.state_dict(), os.path.join(out, f"params_{rank}.pt"))
    m2 = Regression()
    resumed = fit(m2, data(), epochs=3, checkpoint=os.path.join(out, "ddp.pt"), resume=True, **kw)
    torch.save(m2.state_dict(), os.path.join(out, f"resumed_{rank}.pt"))
    diverged = None
    try:
        fit(Regression(nan_after=4), data(), epochs=3, **kw)
    except TrainingDiverged as err:
        diverged = str(err)
    with open(os.path.join(out, f"rank_{rank}.json"), "w") as f:
        json.dump({"saves": saves, "rows": hist.rows, "resumed_rows": resumed.rows, "diverged": diverged,
                   "world": hist.meta.get("world_size")}, f)


if __name__ == "__main__":
    main(sys.argv[1])
