"""Statement parser: the grammar, errors with columns, unknown names, fuzzing."""
import pytest
from hypothesis import given, settings, strategies as st

from pgm.statements import _KEYWORDS, Statement, parse

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
    "X ⟂ Y | Z": (("X",), ("Y",), ("Z",), True),             # U+27C2 perpendicular
    "X ⟂⟂ Y ∣ Z": (("X",), ("Y",), ("Z",), True),            # U+2223 divides as the bar
    "X⊥Y∣{Z,W}": (("X",), ("Y",), ("W", "Z"), True),
    "X ⟂̸ Y ∣ Z": (("X",), ("Y",), ("Z",), False),
    "X !⟂ Y": (("X",), ("Y",), (), False),
    "X /⟂ Y": (("X",), ("Y",), (), False),
    "X not ⟂ Y": (("X",), ("Y",), (), False),
    "not X ⟂ Y ∣ Z": (("X",), ("Y",), ("Z",), False),
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
    ("A ⊥ A", r"'A' appears on both the left and the right side \(columns 1 and 5\)"),
    ("A ⊥ B | B", r"'B' appears on both the right and the given side \(columns 5 and 9\)"),
    ("{A, B} ⟂ C ∣ D, A", r"'A' appears on both the left and the given side \(columns 2 and 17\)"),
    ("{A, B, A} ⊥ C", r"'A' repeated in one side \(column 8; first at column 2\)"),
    ("A ⟂ ∣ B", r"variable name at column 5, found '∣'"),
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


NAMES = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.']{0,4}", fullmatch=True).filter(
    lambda n: n.lower() not in _KEYWORDS)


@st.composite
def statements(draw):
    """Random valid statements: disjoint sides of generated names, either claim."""
    names = draw(st.lists(NAMES, min_size=2, max_size=7, unique=True))
    cut1 = draw(st.integers(1, len(names) - 1))
    cut2 = draw(st.integers(cut1 + 1, len(names)))
    return Statement.of(names[:cut1], names[cut1:cut2], names[cut2:], draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(statements())
def test_round_trip_text(s):
    assert parse(str(s)) == s and parse(s.text) == s
    assert parse(s.text.replace("\u22a5", "\u27c2").replace(" | ", " \u2223 ")) == s

