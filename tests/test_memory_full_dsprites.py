"""All 737,280 dSprites images load as uint8 and fit starts on them under 4 GB peak RSS (slow)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

CODE = r"""
import json, resource, torch
torch.set_num_threads(1)
from vae.data.dsprites import load_dsprites
from vae.protocol import build_study_model
from vae.train import fit
data = load_dsprites(cache=True)
train, val = data.split(0.005, seed=0)
hist = fit(build_study_model("standard", 4.0, None, 0), data, epochs=1, batch_size=32, epoch_size=64,
           val_fraction=0.005, progress=False)
print(json.dumps({"n": len(data), "dtype": str(data.storage.dtype), "shared": train.storage is data.storage,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "rows": len(hist.rows)}))
"""


@pytest.mark.slow
def test_all_of_dsprites_trains_under_4_gb():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n"] == 737_280 and out["dtype"] == "torch.uint8" and out["shared"] and out["rows"] == 1
    assert out["peak_rss_gb"] < 4.0, out
