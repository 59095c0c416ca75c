"""Statement parser: the grammar, errors with columns, unknown names, fuzzing."""
import pytest
from hypothesis import given, settings, strategies as st

from pgm.statements import Statement, parse

CASES = {
    "X ⊥ Y | Z": (("X",), ("Y",), ("Z",), True),
    "X _|_ Y | Z": (("X",), ("Y",), ("Z",), True),
    "X indep Y given Z": (("X",), ("Y",), ("Z",), True),
    "{A, B} ⊥ C | D, E": (("A", "B"), ("C",), ("D", "E"), True),
    "A, B ⊥ C": (("A", "B"), ("C",), (), True),
    "X ⊥̸ Y | Z": (("X",), ("Y",), ("Z",), False),
    "X not ⊥ Y": (("X",), ("Y",), (), False),
    "not X ⊥ Y | Z": (("X",), ("Y",), ("Z",), False),
    "X !_|_ Y": (("X",), ("Y",), (), False),
    "X dep Y given {}": (("X",), ("Y",), (), False),
    "X⊥⊥Y|{Z,W}": (("X",), ("Y",), ("W", "Z"), True),
}


@pytest.mark.parametrize("text,expected", CASES.items())
def test_grammar(text, expected):
    s = parse(text)
    assert (s.left, s.right, s.given, s.independent) == expected
    assert parse(s.text) == s          # canonical text round-trips


@pytest.mark.parametrize("text,pattern", [
    ("A ⊥", r"column 4.*end of text"),
    ("A B", r"independence symbol.*column 3"),
    ("A # B", r"unexpected character '#' at column 3"),
    ("{A ⊥ B", r"'\}'.*column 4"),
    ("A ⊥ A", r"both the left and the right"),
    ("A ⊥ B | B", r"both the right and the given"),
    ("{} ⊥ B", r"empty set at column 1"),
])
def test_errors_say_what_and_where(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse(text)


def test_unknown_variable_lists_known_and_close_match():
    with pytest.raises(ValueError, match=r"unknown variable 'Tt' at column 5.*did you mean 'T'.*Known variables: D, F, I, M, S, T"):
        parse("M ⊥ Tt", "MSIFTD")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("AB C,{}|⊥_!̸ notdepgivenX") + [" ", "\u22a5"]), max_size=30) | st.text(max_size=30))
def test_fuzz_statement_or_valueerror(text):
    try:
        s = parse(text)
    except ValueError:
        return
    assert isinstance(s, Statement) and s.left and s.right
