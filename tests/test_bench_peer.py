"""benchmarks/bench_peer.py: argument checks, the exit-2 message without pythae, the table from a fake
result; with pythae importable (its own venv), the adapters and a tiny end-to-end run."""
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    # pythae's save pickles the adapters' module by value: it must be findable in sys.modules
    mod = load_script(ROOT / "benchmarks" / "bench_peer.py", "bench_peer", register=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield mod
    torch.set_num_threads(threads)
    sys.modules.pop("bench_peer", None)


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--epochs", "-1"], ["--priors", "laplace"], ["--lr", "0"],
                                  ["--lr", "nan"], ["--sides", "ours", "plain"], ["--train-images", "1"],
                                  ["--prior-sizes", "0"], ["--iwae-samples", "0"],
                                  ["--time-limit", "0"]])
def test_bad_arguments_exit_2(bench, argv, capsys):
    with pytest.raises(SystemExit) as err:
        bench.parse_args(argv)
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err


def test_defaults(bench):
    a = bench.parse_args([])
    assert (a.rounds, a.epochs, a.threads, a.batch_size, a.components, a.lr) == (4, 3, 2, 100, 500, 1e-3)
    assert a.sides == list(bench.SIDES) and a.hidden == [300, 300] and a.latent_dim == 40 and a.nll_seeds == 4
    assert bench.parse_args(["--sides", "plain", "pythae", "ours"]).sides == ["ours", "pythae", "plain"]


def test_without_pythae_exit_2_with_install_hint(bench, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pythae", None)  # import pythae -> ImportError
    assert bench.import_pythae() is None
    assert bench.main(["--rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "pip install pythae==0.1.2" in err and "--system-site-packages" in err


def _fake_result(bench):
    def side(ips, nll, step, own=True):
        r = {"seconds": [1.0] * 3, "epoch_seconds": [[0.5] * 3] * 3, "images_per_s": ips,
             "images_per_s_with_setup": [v * 0.9 for v in ips], "step_ms": step, "nll": nll, "nll_se": 1.5}
        if own:
            r["own_iwae"] = {"nll": nll - 0.5, "seconds": 2.0}
        return r

    normal = {"ours": side([1300.0, 1200.0, 1250.0], 120.0, 8.0), "pythae": side([1000.0] * 3, 121.0, 9.0),
              "ours_forloop": side([1500.0, 1450.0, 1400.0], 120.1, 7.0, own=False),
              "plain": side([1400.0] * 3, 119.9, 7.5, own=False), "nll_diff_se": 0.2, "epochs_trained": 9,
              "nll_by_seed": [{"seed": 0, "ours": 120.0, "pythae": 121.0}, {"seed": 1, "ours": 121.5, "pythae": 121.0},
                              {"seed": 2, "ours": 119.0, "pythae": 120.5}]}
    vamp = {"ours": side([500.0, 480.0, 520.0], 118.5, 25.0), "pythae": side([200.0, 210.0, 190.0], 117.0, 70.0),
            "nll_diff_se": 0.3, "epochs_trained": 6, "prior_fwd_bwd_ms": {"100": {"ours": 3.0, "pythae": 9.0}}}
    a = bench.parse_args(["--rounds", "3", "--note", "fake numbers"])
    return {"command": "python benchmarks/bench_peer.py", "date": "2026-01-01T00:00:00",
            "device": {"cpu": "Test CPU", "cores": 2, "threads": 2, "torch": "2.x", "pythae": "0.1.2", "python": "3.11",
                       "omp": "OMP_PROC_BIND=true", "load_average_start": [1.0, 2.0, 3.0],
                       "load_average_end": [1.5, 2.0, 3.0]},
            "settings": vars(a), "n_train": 4500, "n_test": 500, "differences": list(bench.DIFFERENCES),
            "priors": {"normal": normal, "vamp": vamp}, "wall_s": 123.0}


def test_summary_and_table_from_a_fake_result(bench):
    result = _fake_result(bench)
    m = bench.summarise(result["priors"]["normal"])
    assert m["ratio"] == pytest.approx(1.25) and m["speed_ok"] and m["nll_ok"]
    assert m["nll_diff"] == pytest.approx(-1.0) and m["step_ratio"] == pytest.approx(8 / 9)
    assert m["ratio_forloop"] == pytest.approx(1.45)  # median of 1.5, 1.45, 1.4
    # over the 3 trainings: differences -1, +0.5, -1.5 -> mean -2/3, se = stdev / sqrt(3)
    assert m["nll_seeds"] == 3 and m["nll_seed_diff"] == pytest.approx(-2 / 3)
    assert m["nll_seed_diff_se"] == pytest.approx(math.sqrt((1 / 9 + 49 / 36 + 25 / 36) / 2 / 3))
    v = bench.summarise(result["priors"]["vamp"])
    assert v["speed_ok"] and not v["nll_ok"]  # 2.5x faster, but 1.5 ± 0.3 nats worse
    text = bench.format_table(result)
    for needle in ("Test CPU, 2 cores, 2 threads", "OMP_PROC_BIND=true", "load average (1, 5, 15 min) 1.0 2.0 3.0",
                   "2026-01-01",
                   "python benchmarks/bench_peer.py", "images/s 1.25x", "NLL -1.00 ± 0.20 nats", "B=100: ours 3.00 ms",
                   "(0.33x)", "NOT MET", "vamp 2.50x (>= 1.2x), NLL worse (+1.50 ± 0.30)", "note: fake numbers", "normal +0.10 nats",
                   "normal 9 epochs, vamp 6 epochs of 9 planned", "120.00 ± 1.50",
                   "0: 120.00 / 121.00, 1: 121.50 / 121.00", "ours - pythae -0.67 ± 0.60 (se over seeds)",
                   "NLL equal or better (-0.67 ± 0.60 over 3 trainings)"):
        assert needle in text, needle
    lines = {ln.split()[1]: ln for ln in text.splitlines() if ln.startswith("normal ") and "ours/pythae" not in ln}
    assert "1.40x" in lines["plain"] and "1.00x" in lines["pythae"]
    json.dumps(result)  # the record is JSON-able


def test_pythae_adapters_and_tiny_run(bench, tmp_path):
    pytest.importorskip("pythae")
    a = bench.parse_args(["--components", "3", "--latent-dim", "2", "--hidden", "8"])
    peer, ours = bench.build("pythae", "vamp", a), bench.build("ours", "vamp", a)
    assert all(torch.equal(p, q) for p, q in zip(peer.encoder.net.parameters(), ours.encoder.parameters()))
    wrapped = bench.peer_as_ours(peer, "vamp", a)
    assert torch.equal(wrapped.prior.inputs(), ours.prior.inputs())  # the same initial pseudo-inputs
    assert torch.equal(ours.prior.offset, peer.pseudo_inputs[0].bias.reshape(ours.prior.offset.shape))
    other = bench.build("ours", "vamp", a, seed=1)
    assert not torch.equal(other.prior.inputs(), ours.prior.inputs())
    free = bench.build("ours", "vamp", bench.parse_args(["--components", "3", "--latent-dim", "2", "--hidden", "8",
                                                           "--pseudo-inputs", "free"]))
    assert free.prior.offset is None and torch.equal(free.prior.inputs(), ours.prior.inputs())
    z = torch.randn(5, 2)
    with torch.no_grad():  # the same log p(z) up to pythae's dropped -D/2 log 2 pi, the same decoder
        assert torch.allclose(wrapped.prior.log_prob(z) + 0.5 * 2 * math.log(2 * math.pi), peer._log_p_z(z),
                              atol=1e-4)
        assert torch.allclose(torch.sigmoid(wrapped.decode(z)), peer.decoder(z).reconstruction)
    record = tmp_path / "peer.txt"
    assert bench.main(["--rounds", "1", "--epochs", "1", "--train-images", "200", "--test-images", "4",
                       "--components", "3", "--iwae-samples", "2", "--own-samples", "2", "--step-reps", "1",
                       "--prior-sizes", "4", "--hidden", "16", "--threads", "1", "--nll-seeds", "1",
                       "--record", str(record)]) == 0
    assert "target (>= 1.2x" in record.read_text()
    assert set(json.loads(record.with_suffix(".json").read_text())["priors"]) == {"normal", "vamp"}
