"""The README's measured numbers are the committed result files' numbers: every results block of
README.md equals what benchmarks/readme_numbers.py renders from benchmarks/results/."""
from __future__ import annotations

from pathlib import Path
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _renderer():
    return load_script(ROOT / "benchmarks" / "readme_numbers.py", "readme_numbers")


def test_readme_blocks_equal_the_result_files():
    mod = _renderer()
    text = (ROOT / "README.md").read_text()
    names = [m.group("name") for m in mod.BLOCK.finditer(text)]
    assert set(names) >= {"study", "training", "speed", "metrics"}, names
    assert mod.render(text) == text, "README.md is stale: run python benchmarks/readme_numbers.py --write"


def test_a_changed_number_is_caught():
    mod = _renderer()
    text = (ROOT / "README.md").read_text()
    block = next(mod.BLOCK.finditer(text))
    body = block.group("body")
    digit = next(i for i, c in enumerate(body) if c.isdigit())
    tampered = text.replace(body, body[:digit] + str((int(body[digit]) + 1) % 10) + body[digit + 1:], 1)
    assert mod.render(tampered) != tampered
