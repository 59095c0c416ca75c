"""Read a BIF file strictly: the whole text parses, every variable has a CPD, every CPD is a
distribution.  Anything else is one ``ValueError`` line naming the file and what is wrong.

pgmpy's ``BIFReader`` finds blocks with a regular expression and silently skips text it cannot
match, so a truncated file can load as a network with variables but no CPDs and no edges, and
give a wrong verdict.  Here the block structure is checked first (every ``network``,
``variable`` and ``probability`` block closed, nothing else outside them), pgmpy then parses
the blocks, and the result is checked against them.

>>> text = "network n {}\\nvariable a { type discrete [ 2 ] { x, y }; }\\nprobability ( a ) { table 0.5, 0.5; }"
>>> sorted(read_bif_text(text, "n.bif").nodes)
['a']
>>> read_bif_text(text[:-10], "n.bif")
Traceback (most recent call last):
...
ValueError: BIF file n.bif: the block 'probability ( a )' that starts on line 3 is not closed (is the file truncated?)
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["read_bif", "read_bif_text", "SUM_TOLERANCE"]

SUM_TOLERANCE = 1e-3    # |column sum - 1| allowed in a CPD (printed tables are rounded)

_COMMENT = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")|(/\*.*?\*/|//[^\n]*)', re.DOTALL)   # as pgmpy strips them
_BRACES = re.compile(r'[{}"]')
_KEYWORD = re.compile(r"(network|variable|probability)\b")
_TYPE = re.compile(r"type\s+\S+\s*\[\s*(\d+)\s*\]")
_PROB_HEADER = re.compile(r"\(\s*(.+?)(?:\s*\|\s*(.+?))?\s*\)\s*$")   # ( var | parents ), as pgmpy reads it


@dataclass(frozen=True)
class _Block:
    kind: str       # network / variable / probability
    header: str     # the text between the keyword and '{', stripped
    text: str       # the whole block, keyword to closing brace
    line: int


def _strip_comments(text: str) -> str:
    """Remove ``//`` and ``/* */`` comments (not inside quotes), keeping line numbers."""
    return _COMMENT.sub(lambda m: m.group(1) or "\n" * m.group(2).count("\n"), text)


def _blocks(text: str, where: str) -> list[_Block]:
    """Split comment-free BIF text into its top-level blocks; ValueError on anything else."""
    blocks: list[_Block] = []
    pos, n = 0, len(text)
    line, counted = 1, 0

    def line_of(i: int) -> int:      # called with increasing i: counts each newline once
        nonlocal line, counted
        line += text.count("\n", counted, i)
        counted = i
        return line

    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos == n:
            return blocks
        m = _KEYWORD.match(text, pos)
        if not m:
            snippet = text[pos:pos + 40].split("\n")[0]
            raise ValueError(f"BIF file {where}: unexpected text on line {line_of(pos)}: {snippet!r} "
                             "(expected a 'network', 'variable' or 'probability' block)")
        start, i = pos, m.end()
        while i < n and text[i] not in "{};":
            i += 1
        header = " ".join(text[m.end():i].split())
        title = f"{m.group(1)} {header}".strip()
        if i == n or text[i] != "{":
            raise ValueError(f"BIF file {where}: the block '{title}' on line {line_of(start)} has no '{{'"
                             + (" (is the file truncated?)" if i == n else ""))
        depth, quoted, end = 0, False, None
        for t in _BRACES.finditer(text, i):
            c = t.group()
            if c == '"':
                quoted = not quoted
            elif not quoted:
                depth += 1 if c == "{" else -1
                if depth == 0:
                    end = t.start()
                    break
        if end is None:
            raise ValueError(f"BIF file {where}: the block '{title}' that starts on line {line_of(start)} "
                             "is not closed (is the file truncated?)")
        blocks.append(_Block(m.group(1), header, text[start:end + 1], line_of(start)))
        pos = end + 1


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_cpds(reader, where: str) -> None:
    """Every variable has a CPD of the right shape whose columns are distributions."""
    import numpy as np

    states, parents, cpds = reader.variable_states, reader.variable_parents, reader.variable_cpds
    missing = [v for v in reader.variable_names if v not in cpds]
    if missing:
        raise ValueError(f"BIF file {where}: no CPD ('probability' block) for variable"
                         f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} (is the file truncated?)")
    for var in reader.variable_names:
        values = np.asarray(cpds[var], dtype=float)
        pa = parents.get(var, [])
        cards = [len(states[p]) for p in pa]
        want = (len(states[var]), int(np.prod(cards)))
        if values.shape != want:
            raise ValueError(f"BIF file {where}: the CPD of {var} has {values.size} values, expected "
                             f"{want[0] * want[1]} ({want[0]} states × {want[1]} parent configurations)")
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            r, c = map(int, np.argwhere(bad)[0])
            raise ValueError(f"BIF file {where}: the CPD of {var} has the entry {values[r, c]:g} "
                             f"(P({var} = {states[var][r]}{_given(pa, states, cards, c)})); "
                             "probabilities must be finite and non-negative")
        sums = values.sum(axis=0)
        off = np.flatnonzero(np.abs(sums - 1) > SUM_TOLERANCE)
        if off.size:
            c = int(off[0])
            raise ValueError(f"BIF file {where}: the CPD of {var} sums to {sums[c]:.6g}, not 1, "
                             f"for P({var}{_given(pa, states, cards, c)})"
                             + (" (a missing row?)" if sums[c] == 0 else ""))


def _given(parents: list[str], states: dict, cards: list[int], column: int) -> str:
    """`` | a = x, b = y`` for CPD column ``column`` (the last parent varies fastest, as in pgmpy)."""
    import numpy as np

    if not parents:
        return ""
    idx = np.unravel_index(column, cards)
    return " | " + ", ".join(f"{p} = {states[p][int(i)]}" for p, i in zip(parents, idx))


def _name(text: str) -> str:
    return " ".join(text.replace('"', " ").split())


_READER = None


def _reader_class():
    """pgmpy's ``BIFReader``, building its pyparsing grammars once instead of per file (that takes
    about a second: the names admit every Unicode letter)."""
    global _READER
    if _READER is None:
        from pgmpy.readwrite import BIFReader

        class Reader(BIFReader):
            _grammars: dict = {}

            def get_variable_grammar(self):
                if "variable" not in self._grammars:
                    self._grammars["variable"] = super().get_variable_grammar()
                return self._grammars["variable"]

            def get_probability_grammar(self):
                if "probability" not in self._grammars:
                    self._grammars["probability"] = super().get_probability_grammar()
                return self._grammars["probability"]

        _READER = Reader
    return _READER


def _parse(blocks: list[_Block]):
    """pgmpy's ``BIFReader`` on the blocks, one per line (its block pattern needs a line end)."""
    return _reader_class()(string="\n".join(b.text for b in blocks) + "\n")


def _prob_names(header: str) -> list[str]:
    """The variable and its parents named by a probability block's header ``( var | parents )``."""
    m = _PROB_HEADER.match(header)
    if not m:
        return []
    if m.group(2):
        return [m.group(1).strip()] + [p.strip() for p in m.group(2).split(",")]
    return m.group(1).split()          # the old form: ( var parent parent )


def _culprit(blocks: list[_Block]) -> str:
    """`` (in the block 'probability ( x )' on line 7)``: the first probability block pgmpy fails on
    alone (with just the variables it names), if there is one."""
    variables = {_name(b.header).lower(): b for b in blocks if b.kind == "variable"}
    for b in blocks:
        if b.kind == "probability":
            try:
                _parse([variables[_name(n).lower()] for n in dict.fromkeys(_prob_names(b.header))] + [b])
            except Exception:
                return f" (in the block '{b.kind} {b.header}' on line {b.line})"
    return ""


def _check_headers(variables: list[_Block], probabilities: list[_Block], where: str) -> None:
    """Each variable block has a type; each probability block names declared variables only."""
    for b in variables:
        if not _TYPE.search(b.text):
            raise ValueError(f"BIF file {where}: the block '{b.kind} {b.header}' on line {b.line} has no "
                             "'type discrete [ N ] { ... };' declaration")
    declared = {_name(b.header).lower() for b in variables}      # pgmpy matches names case-blind
    for b in probabilities:
        names = _prob_names(b.header)
        unknown = [x for x in names if _name(x).lower() not in declared]
        if not names or unknown:
            what = f"undeclared variable {unknown[0]}" if unknown else "no variable"
            raise ValueError(f"BIF file {where}: the block '{b.kind} {b.header}' on line {b.line} names {what}")


def _check_read(reader, variables: list[_Block], probabilities: list[_Block], where: str) -> None:
    """pgmpy read one variable per variable block, the declared number of states, one CPD each."""
    lower = [n.lower() for n in reader.variable_names]
    dup = sorted({n for n in reader.variable_names if lower.count(n.lower()) > 1})
    if dup or len(lower) != len(variables):
        raise ValueError(f"BIF file {where}: {len(variables)} 'variable' blocks but {len(set(lower))} distinct "
                         "variables read" + (f" (declared more than once: {', '.join(dup)})" if dup else ""))
    for b in variables:
        n_declared = int(_TYPE.search(b.text).group(1))
        listed = reader.variable_states.get(_name(b.header))
        if listed is not None and n_declared != len(listed):
            raise ValueError(f"BIF file {where}: variable {_name(b.header)} (line {b.line}) declares "
                             f"{n_declared} states but lists {len(listed)}: {', '.join(listed)}")
    if len(reader.variable_cpds) != len(probabilities):
        raise ValueError(f"BIF file {where}: {len(probabilities)} 'probability' blocks for "
                         f"{len(reader.variable_cpds)} variables (a variable has more than one CPD)")


def read_bif_text(text: str, where: str = "<string>"):
    """A checked ``DiscreteBayesianNetwork`` with CPDs from BIF ``text``; ``where`` names it in errors."""
    if not text.strip():
        raise ValueError(f"BIF file {where} is empty")
    text = _strip_comments(text)
    blocks = _blocks(text, where) if re.search(r"\bvariable\b", text) else []
    variables = [b for b in blocks if b.kind == "variable"]
    probabilities = [b for b in blocks if b.kind == "probability"]
    if not variables:
        raise ValueError(f"BIF file {where} defines no variables (is it a BIF file? it should contain "
                         f"'network ... {{ }}' and 'variable NAME {{ ... }}' blocks)")
    _check_headers(variables, probabilities, where)
    try:
        reader = _parse(blocks)
    except Exception as exc:  # pyparsing / pandas / numpy errors from a malformed block
        raise ValueError(f"could not read BIF file {where}: {_one_line(exc)}{_culprit(blocks)}") from exc
    _check_read(reader, variables, probabilities, where)
    _check_cpds(reader, where)
    try:
        return reader.get_model()
    except Exception as exc:  # cycles, inconsistent CPDs
        raise ValueError(f"could not read BIF file {where}: {_one_line(exc)}") from exc


def read_bif(path: str | Path):
    """A checked ``DiscreteBayesianNetwork`` with CPDs from a BIF file (``.bif`` or ``.bif.gz``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such BIF file: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:   # unreadable, bad or cut gzip, not text
        raise ValueError(f"could not read BIF file {path}: {_one_line(exc)}") from exc
    return read_bif_text(text, str(path))
