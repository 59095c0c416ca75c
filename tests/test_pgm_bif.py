"""A BIF file must parse completely, give every variable a CPD and every CPD must be a
distribution; otherwise one error line naming the file and the defect, and exit status 2."""
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from pgm.bif import read_bif_text
from pgm.cli import main
from pgm.networks import _bundled_dir, bundled_model_names, read_bif

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "examples" / "check_independence.py")


def asia_text() -> str:
    with gzip.open(_bundled_dir() / "asia.bif.gz", "rt", encoding="utf-8") as fh:
        return fh.read()


def written_bif() -> str:
    """Q1.1's network with random CPDs, written by pgmpy's BIFWriter."""
    from pgmpy.readwrite import BIFWriter

    from pgm.exercises import network
    from pgm.numeric import random_cpds
    return str(BIFWriter(random_cpds(network("1.1"), seed=3)))


def test_truncated_asia_subprocess_exit2_one_line_error(tmp_path):
    """The issue's case: asia.bif cut in half used to load as 8 nodes, 0 edges and 'smoke ⊥ dysp' held."""
    text = asia_text()
    cut = tmp_path / "asia_half.bif"
    cut.write_text(text[: len(text) // 2])
    r = subprocess.run([sys.executable, SCRIPT, "--bif", str(cut), "smoke ⊥ dysp"], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""                                   # no verdict printed
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: BIF file ") and str(cut) in lines[0]
    assert "is not closed (is the file truncated?)" in lines[0] and "Traceback" not in r.stderr


@pytest.mark.parametrize("source", ["asia", "written"])
def test_every_truncation_is_an_error_naming_the_file(source):
    text = asia_text() if source == "asia" else written_bif()
    full = read_bif_text(text, "x.bif")
    assert full.check_model()
    body = text.rstrip()
    cuts = sorted(set(range(1, len(body), max(1, len(body) // 150))) | {body.rfind("probability")})
    for k in cuts:
        with pytest.raises(ValueError) as e:
            read_bif_text(body[:k], "cut.bif")
        msg = str(e.value)
        assert "cut.bif" in msg and "\n" not in msg, (k, msg)


def test_cut_between_blocks_names_the_variables_without_cpd():
    text = asia_text()
    k = text.index("probability ( either")
    with pytest.raises(ValueError, match=r"cut\.bif: no CPD \('probability' block\) for variables either, "
                                         r"xray, dysp \(is the file truncated\?\)"):
        read_bif_text(text[:k], "cut.bif")


BASE = """network n {
}
variable a {
  type discrete [ 2 ] { x, y };
}
variable b {
  type discrete [ 2 ] { u, v };
}
probability ( a ) {
  table 0.3, 0.7;
}
probability ( b | a ) {
  (x) 0.1, 0.9;
  (y) 0.5, 0.5;
}
"""


@pytest.mark.parametrize("old,new,msg", [
    ("0.3, 0.7", "0.3, 0.8", r"the CPD of a sums to 1\.1, not 1, for P\(a\)"),
    ("0.3, 0.7", "-0.3, 1.3", r"the CPD of a has the entry -0\.3 \(P\(a = x\)\); probabilities must be finite "
                              r"and non-negative"),
    ("  (y) 0.5, 0.5;\n", "", r"the CPD of b sums to 0, not 1, for P\(b \| a = y\) \(a missing row\?\)"),
    ("}\n", "}\nhello world\n", r"unexpected text on line 3: 'hello world'"),
    ("[ 2 ] { x, y }", "[ 3 ] { x, y }", r"variable a \(line 3\) declares 3 states but lists 2: x, y"),
    ("0.3, 0.7", "0.3, 0.2, 0.2, 0.3", r"the CPD of a has 4 values, expected 2"),
    ("probability ( b | a )", "probability ( b | q )", r"'probability \( b \| q \)' on line 12 names undeclared "
                                                       r"variable q"),
    ("variable b {", "variable a {\n  type discrete [ 2 ] { x, y };\n}\nvariable b {",
     r"declared more than once: a"),
    ("  table 0.3, 0.7;\n}\n", "  table 0.3, 0.7;\n}\nprobability ( a ) {\n  table 0.5, 0.5;\n}\n",
     r"3 'probability' blocks for 2 variables"),
    ("  (y) 0.5, 0.5;\n}\n", "  (y) 0.5, 0.5;\n", r"the block 'probability \( b \| a \)' that starts on line 12 is "
                                                 r"not closed"),
])
def test_defects_are_one_line_errors_naming_file_and_defect(tmp_path, capsys, old, new, msg):
    assert old in BASE
    bad = tmp_path / "net.bif"
    bad.write_text(BASE.replace(old, new, 1))
    with pytest.raises(ValueError, match=msg) as e:
        read_bif(bad)
    assert str(e.value).count("\n") == 0 and str(bad) in str(e.value)
    assert main(["--bif", str(bad), "a ⊥ b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err


def test_valid_files_still_load(tmp_path):
    m = read_bif_text(BASE, "ok.bif")
    assert sorted(m.edges) == [("a", "b")] and len(m.get_cpds()) == 2
    commented = "// a comment with { braces\n/* and } more */\n" + BASE.rstrip()   # no final newline
    assert sorted(read_bif_text(commented, "c.bif").edges) == [("a", "b")]
    text = written_bif()
    f = tmp_path / "q11.bif"
    f.write_text(text)
    from pgm.exercises import network
    assert sorted(read_bif(f).edges) == sorted(network("1.1").edges)
    g = tmp_path / "q11.bif.gz"
    with gzip.open(g, "wt", encoding="utf-8") as fh:
        fh.write(text)
    assert read_bif(g).check_model()


def test_cut_gzip_is_an_error(tmp_path, capsys):
    g = tmp_path / "asia.bif.gz"
    data = (_bundled_dir() / "asia.bif.gz").read_bytes()
    g.write_bytes(data[: len(data) // 2])
    assert main(["--bif", str(g), "smoke ⊥ dysp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(g) in err and err.count("\n") == 1


@pytest.mark.slow
def test_every_bundled_model_passes_the_checks():
    for name in bundled_model_names():
        from pgm.networks import bundled_model
        assert bundled_model(name).number_of_nodes() > 0, name
