"""examples/gamma_vi.py: --json output (subprocess and in-process), plots, bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "gamma_vi.py"


def _load_cli():
    return load_script(SCRIPT, "gamma_vi_cli")


cli = _load_cli()


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def test_json_single_x_subprocess():
    p = _run("--x", "3", "--quick", "--json", "--seed", "1")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)          # exactly one JSON object on stdout
    assert d["x"] == 3.0
    assert d["theta_analytic"] == 4.0
    assert abs(d["theta_svi"] / 4.0 - 1) <= 0.01
    assert d["log_evidence"] == pytest.approx(-2 * math.log(4.0), abs=1e-12)
    assert abs(d["elbo"] - d["log_evidence"]) <= 0.02
    assert d["steps"] == 500 and d["seed"] == 1


def test_json_several_x_structure(capsys):
    assert cli.main(["--x", "0", "2", "--steps", "300", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["symbolic"]["theta_star"] == "x + 1"
    assert d["settings"]["steps"] == 300
    assert [f["x"] for f in d["fits"]] == [0.0, 2.0]
    for f in d["fits"]:
        assert f["theta_analytic"] == f["x"] + 1
        assert abs(f["theta_svi"] / f["theta_analytic"] - 1) <= 0.01   # 300 steps: within 1%
        assert abs(f["elbo"] - f["log_evidence"]) <= 0.02


def test_data_learn_shape_json_and_plot(capsys, tmp_path):
    assert cli.main(["--data", "1.2,0.4,2.0", "--learn-shape", "--steps", "60", "--json",
                     "--plot", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["data"] == [1.2, 0.4, 2.0]
    assert (d["alpha_analytic"], d["theta_analytic"]) == (4.0, pytest.approx(4.6))
    assert d["learn_shape"] is True
    png = Path(d["plot"])
    assert png.parent == tmp_path and png.name == "gamma_vi_data_n3_learned.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_text_report(capsys):
    assert cli.main(["--x", "1", "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "θ* = x + 1" in out and "−2 log(x + 1)" in out
    row = [line for line in out.splitlines() if line.split()[:1] == ["1"]]
    assert row and "2.0000" in row[0]


@pytest.mark.parametrize(
    "args, message",
    [(["--x", "-1"], "x = -1.0 is outside the support [0, inf)"),
     (["--x", "nan"], "x = nan is not finite"),
     (["--x", "inf"], "x = inf is not finite"),
     (["--data", "1,abc"], "--data item 'abc' is not a number"),
     (["--data", "1,-2"], "data[1] = -2.0 is outside the support [0, inf)"),
     (["--data", ","], "--data needs comma-separated numbers"),
     (["--steps", "0"], "expected a positive integer"),
     (["--shape", "-2"], "--shape = -2.0 is not allowed"),
     (["--x", "1", "--data", "2"], "not allowed with argument")],
)
def test_bad_input_exits_with_message(capsys, args, message):
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err


def test_bad_input_subprocess_has_no_traceback():
    p = _run("--x", "-0.5")
    assert p.returncode == 2
    assert "x = -0.5 is outside the support [0, inf)" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_help_mentions_the_options():
    p = _run("--help")
    assert p.returncode == 0
    for opt in ("--x", "--data", "--learn-shape", "--steps", "--seed", "--json", "--plot"):
        assert opt in p.stdout
