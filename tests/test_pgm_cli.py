"""The main job: exit codes, JSON, errors without tracebacks, plots.

Two real subprocess runs (the answer key; a fast error path); the rest call ``pgm.cli.main``
in-process, which is what the script runs, to keep the suite fast.
"""
import json
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
