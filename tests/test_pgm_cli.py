"""The main job: exit codes, JSON, errors without tracebacks, plots.

A few real subprocess runs (the answer key; a fast error path; writing into a closed pipe); the
rest call ``pgm.cli.main`` in-process, which is what the script runs, to keep the suite fast.
"""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgm.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "examples" / "check_independence.py")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_answer_key_subprocess_exit0_and_json():
    r = run("--json")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    stm = {(x["exercise"], x["id"]): x for x in recs if x["kind"] == "statement"}
    assert len(stm) == 14
    for x in stm.values():
        assert {"exercise", "id", "statement", "holds", "witness"} <= set(x)
    assert stm[("1.1", "a")]["holds"] is False and stm[("1.1", "a")]["witness"] == ["F", "T", "D"]
    assert stm[("1.1", "c")]["holds"] is True and stm[("1.1", "c")]["witness"] is None
    assert stm[("1.3", "b")]["witness"] == ["A", "B", "E", "F"]
    assert all(x["correct"] for x in recs)


def test_cyclic_edges_subprocess_clean_error():
    r = run("--edges", "A->B, B->C, C->A", "A ⊥ C")
    assert r.returncode == 2 and "cycle: A → B → C → A" in r.stderr and "Traceback" not in r.stderr


def test_answer_key_text(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "21/21 answers match the key" in out
    assert "active trail M → I → T ← F" in out
    assert "I-map: no" in out and "D-map: no" in out


def test_free_mode(capsys, tmp_path):
    assert main(["--edges", "M->I, S->I, I->T, F->T, I->D, T->D", "F ⊥ D", "M _|_ F | T", "--json"]) == 1
    recs = json.loads(capsys.readouterr().out)
    assert [x["witness"] for x in recs] == [["F", "T", "D"], ["M", "I", "T", "F"]]
    assert recs[0]["exercise"] is None and recs[0]["holds"] is False
    assert main(["--undirected", "A-B, B-E, E-G", "A indep G given E", "--plot", str(tmp_path)]) == 0
    assert "holds" in capsys.readouterr().out
    assert (tmp_path / "network.png").stat().st_size > 1000


@pytest.mark.parametrize("args,msg", [
    (["--edges", "A->B", "A ⊥ Q"], "unknown variable 'Q'"),
    (["--edges", "A->B", "A ⊥"], "column 4"),
    (["--edges", "A-B", "A ⊥ B"], "expected directed"),
    (["--model", "asai", "x ⊥ y"], "did you mean 'asia'"),
    (["--bif", "/no/such.bif", "x ⊥ y"], "no such BIF file"),
    (["A ⊥ B"], "need a network"),
])
def test_bad_input_exit2(capsys, args, msg):
    assert main(args) == 2
    assert msg in capsys.readouterr().err


def test_bundled_model_offline(capsys):
    assert main(["--model", "asia", "smoke ⊥ dysp | either, bronc", "--blanket", "lung"]) == 0
    out = capsys.readouterr().out
    assert "MB(lung) = parents {smoke} ∪ children {either} ∪ co-parents {tub}" in out


def test_help_mentions_grammar(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "_|_" in out and "--undirected" in out


def test_answer_key_exits_1_and_names_a_changed_expectation(monkeypatch, capsys):
    import dataclasses

    import pgm.report
    from pgm.exercises import STATEMENTS
    flipped = [dataclasses.replace(s, expected=not s.expected) if (s.exercise, s.id) == ("1.1", "c") else s
               for s in STATEMENTS]
    monkeypatch.setattr(pgm.report, "STATEMENTS", tuple(flipped))
    assert main([]) == 1
    out, err = capsys.readouterr()
    assert "mismatch: Q1.1 c) M ⊥ F" in err and err.count("mismatch:") == 1
    bad = [line for line in out.splitlines() if "MISMATCH" in line and ")" in line and "holds" in line]
    assert len(bad) == 1 and bad[0].lstrip().startswith("c) M ⊥ F") and "(expected no)" in bad[0]
    assert "20/21 answers match the key — MISMATCHES above" in out


def red_pixels(png):
    """How many pixels of ``png`` have the witness colour (#d62728, give or take anti-aliasing)."""
    import matplotlib.image
    import numpy as np
    from pgm.draw import HIGHLIGHT
    rgb = matplotlib.image.imread(png)[..., :3]
    want = np.array([int(HIGHLIGHT[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(rgb - want).max(axis=-1) < 0.08).sum())


def test_answer_key_plot_writes_pngs_with_highlighted_witness(tmp_path, capsys):
    assert main(["--plot", str(tmp_path)]) == 0
    capsys.readouterr()
    names = {p.name for p in tmp_path.iterdir()}
    networks = {"q1_1.png", "q1_2-bn.png", "q1_2-mn.png", "q1_3.png"}
    witnesses = {"q1_1_a.png", "q1_1_d.png", "q1_2_3-mn.png", "q1_2_3-bn-prime.png", "q1_3_a.png", "q1_3_b.png"}
    assert names == networks | witnesses
    for name in networks:
        assert red_pixels(tmp_path / name) == 0, name
    for name in witnesses:
        assert red_pixels(tmp_path / name) > 300, name


def test_slug_is_readable_and_file_safe():
    from hypothesis import given, settings, strategies as st

    from pgm.cli import _slug
    from pgm.exercises import STATEMENTS
    assert _slug("3-bn'") == "3-bn-prime" and _slug("M ⊥ F | T") == "M-indep-F-given-T"
    assert _slug("X ⊥̸ Y") == _slug("X _|_ Y").replace("indep", "dep") == "X-dep-Y"
    ids = [(s.exercise, _slug(s.id)) for s in STATEMENTS]  # the answer key's file names stay apart
    assert len(set(ids)) == len(ids)

    @settings(max_examples=150, deadline=None)
    @given(st.text(alphabet="ab _-'+⊥|{},.̸\u27c2é中/\\:*?\"<>", max_size=12))
    def safe(text):
        slug = _slug(text)
        assert slug and len(slug) <= 120 and slug[0] != "-" and slug[-1] != "-" and "--" not in slug
        assert all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
    safe()


class ClosedPipe(io.StringIO):
    """stdout whose reader has gone away."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("args", [[], ["--edges", "A->B", "A ⊥ B"]])
def test_closed_pipe_in_process_is_quiet(monkeypatch, capsys, args):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(args) == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args,codes", [(["--list-models"], {1}),
                                        (["--help"], {0, 1})])   # argparse itself ignores write errors
def test_closed_pipe_subprocess_is_quiet(args, codes):
    read_end, write_end = os.pipe()
    os.close(read_end)                     # like `| head` that has already exited
    try:
        r = subprocess.run([sys.executable, SCRIPT, *args], stdout=write_end, stderr=subprocess.PIPE,
                           text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode in codes and r.stderr == ""


def test_bif_without_variables_is_an_error_naming_the_file(tmp_path, capsys):
    from pgm.networks import read_bif
    bad = tmp_path / "garbage.bif"
    bad.write_text("garbage {")
    with pytest.raises(ValueError, match=r"garbage\.bif defines no variables"):
        read_bif(bad)
    empty = tmp_path / "empty.bif"
    empty.write_text("\n")
    with pytest.raises(ValueError, match=r"empty\.bif is empty"):
        read_bif(empty)
    assert main(["--bif", str(bad), "x ⊥ y"]) == 2
    assert str(bad) in capsys.readouterr().err


def test_blanket_text_of_isolated_bn_and_mn_nodes():
    from pgm.blanket import markov_blanket
    from pgm.networks import bayesian_network, markov_network
    bn = bayesian_network([("A", "B")], ["C"])
    assert str(markov_blanket(bn, "C")) == "MB(C) = parents {} ∪ children {} ∪ co-parents {} = {}"
    assert str(markov_blanket(bn, "A")) == "MB(A) = parents {} ∪ children {B} ∪ co-parents {} = {B}"
    mn = markov_network([("A", "B")], ["C"])
    assert str(markov_blanket(mn, "C")) == "MB(C) = neighbours {}"
    assert str(markov_blanket(mn, "A")) == "MB(A) = neighbours {B}"
