"""Independence statements written as text, parsed into :class:`Statement`.

Grammar (whitespace is free; keywords are case-insensitive)::

    statement  := [ "not" ] side relation side [ given side ]
    relation   := INDEP | DEP | "not" INDEP
    INDEP      := "⊥" | "⊥⊥" | "⟂" | "⟂⟂" | "⫫" | "_|_" | "indep"
    DEP        := "⊥̸" (⊥ + U+0338) | "⟂̸" | "⫫̸" | "!⊥" | "!⟂" | "!_|_" | "/⊥" | "/⟂" | "dep"
    given      := "|" | "∣" (U+2223) | "given"
    side       := "{" [ names ] "}" | names          (only the conditioning side may be empty)
    names      := NAME { "," NAME }
    NAME       := letters, digits, "_", "." or "'" (starting with a letter, digit or "_"),
                  other than the keywords not / indep / dep / given

A leading ``not`` negates the whole claim.  Examples::

    >>> parse("M ⊥ F | T")
    Statement(left=('M',), right=('F',), given=('T',), independent=True)
    >>> str(parse("{A, B} _|_ C given D, E"))
    '{A, B} ⊥ C | D, E'
    >>> parse("not X ⊥ Y").independent
    False
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable

__all__ = ["Statement", "parse", "check_variables", "GRAMMAR"]

GRAMMAR = __doc__.split("Grammar")[1].split("Examples::")[0]

NOT_SLASH = "\u0338"  # combining long solidus overlay: ⊥̸
_KEYWORDS = {"not", "indep", "dep", "given"}
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.']*")
# Longest first so that "⊥⊥" wins over "⊥" and "!_|_" over "!".
# ⊥ (U+22A5, up tack) and ⟂ (U+27C2, perpendicular) are both written for independence.
_PERP = ("\u22a5", "\u27c2")
_SYMBOLS = sorted(
    [("!_|_", "DEP"), ("\u2aeb" + NOT_SLASH, "DEP"), ("\u2aeb", "INDEP"), ("_|_", "INDEP"),
     ("|", "GIVEN"), ("\u2223", "GIVEN"), (",", "COMMA"), ("{", "LBRACE"), ("}", "RBRACE")]
    + [(sym, kind) for t in _PERP for sym, kind in [
        ("!" + t, "DEP"), ("/" + t, "DEP"), (t + t + NOT_SLASH, "DEP"), (t + NOT_SLASH + t, "DEP"),
        (t + NOT_SLASH, "DEP"), (t + t, "INDEP"), (t, "INDEP")]],
    key=lambda item: -len(item[0]))


@dataclass(frozen=True)
class Statement:
    """``left ⊥ right | given`` (``independent=True``) or its negation ``⊥̸``.

    Sides are sorted tuples of variable names, so equal claims compare equal.

    >>> Statement.of("B", ["A"], "D C".split()).text
    'B ⊥ A | C, D'
    """

    left: tuple[str, ...]
    right: tuple[str, ...]
    given: tuple[str, ...] = ()
    independent: bool = True

    @classmethod
    def of(cls, left, right, given=(), independent: bool = True) -> "Statement":
        """Build from names or iterables of names (each side is sorted; side order is kept)."""
        def norm(side) -> tuple[str, ...]:
            return (side,) if isinstance(side, str) else tuple(sorted(set(side)))
        stmt = cls(norm(left), norm(right), norm(given), independent)
        stmt.validate()
        return stmt

    def validate(self) -> None:
        """Raise ValueError if a side is empty or the sides overlap."""
        if not self.left or not self.right:
            raise ValueError("both sides of an independence statement need at least one variable")
        for (na, a), (nb, b) in [(("left", self.left), ("right", self.right)),
                                 (("left", self.left), ("given", self.given)),
                                 (("right", self.right), ("given", self.given))]:
            both = sorted(set(a) & set(b))
            if both:
                raise ValueError(f"variable(s) {', '.join(both)} appear on both the {na} and the {nb} side")

    @property
    def key(self) -> tuple:
        """Order-free identity: ``A ⊥ B`` and ``B ⊥ A`` share a key."""
        return (frozenset([self.left, self.right]), self.given, self.independent)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.left) | set(self.right) | set(self.given)))

    def negated(self) -> "Statement":
        return Statement(self.left, self.right, self.given, not self.independent)

    @property
    def text(self) -> str:
        def side(names: tuple[str, ...]) -> str:
            return names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"
        rel = "\u22a5" if self.independent else "\u22a5" + NOT_SLASH
        out = f"{side(self.left)} {rel} {side(self.right)}"
        return out + (f" | {', '.join(self.given)}" if self.given else "")

    def __str__(self) -> str:
        return self.text


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """Split into (kind, value, 1-based column) tokens; ValueError on a stray character."""
    out: list[tuple[str, str, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        for sym, kind in _SYMBOLS:
            if text.startswith(sym, i):
                out.append((kind, sym, i + 1))
                i += len(sym)
                break
        else:
            m = _NAME_RE.match(text, i)
            if not m:
                raise ValueError(f"unexpected character {ch!r} at column {i + 1} in {text!r}")
            word = m.group()
            kind = word.upper() if word.lower() in _KEYWORDS else "NAME"
            out.append((kind, word, i + 1))
            i = m.end()
    out.append(("END", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.pos]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.pos]
        self.pos = min(self.pos + 1, len(self.toks) - 1)
        return tok

    def fail(self, what: str, tok: tuple[str, str, int]) -> ValueError:
        found = "end of text" if tok[0] == "END" else repr(tok[1])
        return ValueError(f"expected {what} at column {tok[2]}, found {found} in {self.text!r}")

    def side(self, allow_empty: bool) -> list[tuple[str, int]]:
        """One side: its names, each with the 1-based column where it is written."""
        col = self.peek()[2]
        names: list[tuple[str, int]] = []
        braced = self.peek()[0] == "LBRACE"
        if braced:
            self.take()
            if self.peek()[0] == "RBRACE":
                self.take()
                if not allow_empty:
                    raise ValueError(f"empty set at column {col} in {self.text!r}: this side needs a variable")
                return names
        while True:
            tok = self.take()
            if tok[0] != "NAME":
                raise self.fail("a variable name", tok)
            names.append((tok[1], tok[2]))
            if self.peek()[0] != "COMMA":
                break
            self.take()
        if braced:
            tok = self.take()
            if tok[0] != "RBRACE":
                raise self.fail("'}' closing the set", tok)
        return names

    def relation(self) -> bool:
        """The independence (True) or dependence (False) symbol after the left side."""
        tok = self.take()
        if tok[0] == "NOT":
            tok = self.take()
            if tok[0] != "INDEP":
                raise self.fail("an independence symbol after 'not' (⊥, _|_ or indep)", tok)
            return False
        if tok[0] in ("INDEP", "DEP"):
            return tok[0] == "INDEP"
        raise self.fail("an independence symbol (⊥, _|_, indep, ⊥̸, dep)", tok)

    def check_sides(self, sides: dict[str, list[tuple[str, int]]]) -> None:
        """ValueError, with the column, for a name repeated in a side or written on two sides."""
        first: dict[str, tuple[str, int]] = {}
        for side_name, names in sides.items():
            seen: dict[str, int] = {}
            for name, col in names:
                if name in seen:
                    raise ValueError(f"variable {name!r} repeated in one side (column {col}; first at column "
                                     f"{seen[name]}) of {self.text!r}")
                seen[name] = col
                if name in first:
                    other, col0 = first[name]
                    raise ValueError(f"variable {name!r} appears on both the {other} and the {side_name} side "
                                     f"(columns {col0} and {col}) of {self.text!r}")
                first[name] = (side_name, col)

    def statement(self) -> tuple[Statement, dict[str, int]]:
        """The whole statement and the column of each variable name."""
        negate = False
        if self.peek()[0] == "NOT":
            self.take()
            negate = True
        left = self.side(False)
        independent = self.relation()
        right = self.side(False)
        given: list[tuple[str, int]] = []
        if self.peek()[0] == "GIVEN":
            self.take()
            given = self.side(True)
        tok = self.take()
        if tok[0] != "END":
            raise self.fail("end of statement" if given else "'|' / 'given' or end of statement", tok)
        self.check_sides({"left": left, "right": right, "given": given})
        columns = {name: col for side in (left, right, given) for name, col in side}
        names = lambda side: [name for name, _ in side]
        stmt = Statement.of(names(left), names(right), names(given), independent != negate)
        return stmt, columns


def check_variables(stmt: Statement, known: Iterable[str], columns: dict[str, int] | None = None,
                    text: str | None = None) -> None:
    """Raise ValueError naming an unknown variable, the known ones and a close match."""
    known_sorted = sorted(set(known))
    known_set = set(known_sorted)
    for name in stmt.variables:
        if name not in known_set:
            where = f" at column {columns[name]}" if columns and name in columns else ""
            src = f" in {text!r}" if text else ""
            close = difflib.get_close_matches(name, known_sorted, n=1, cutoff=0.5)
            if not close:
                close = [k for k in known_sorted if k.lower() == name.lower()][:1]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            shown = ", ".join(known_sorted[:40]) + (", ..." if len(known_sorted) > 40 else "")
            raise ValueError(f"unknown variable {name!r}{where}{src}{hint}. Known variables: {shown}")


def parse(text: str, variables: Iterable[str] | None = None) -> Statement:
    """Parse one statement; with ``variables``, also check every name is known.

    >>> parse("X indep Y given Z").text
    'X ⊥ Y | Z'
    >>> parse("A, B !_|_ C").text
    '{A, B} ⊥̸ C'
    """
    if not isinstance(text, str):
        raise ValueError(f"a statement must be text, got {type(text).__name__}")
    stmt, columns = _Parser(text).statement()
    if variables is not None:
        check_variables(stmt, variables, columns, text)
    return stmt
