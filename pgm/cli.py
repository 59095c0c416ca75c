"""Command line of ``examples/check_independence.py`` and of the installed ``pgm-check`` (see ``--help``)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .statements import GRAMMAR
from .trails import MAX_LIMIT

EPILOG = f"""\
modes:
  (no network option)   print the answer key of exercises Q1.1-Q1.3; exit 0 iff every answer
                        matches the expected one, 1 otherwise
  --bif/--model/--edges/--undirected STATEMENT...
                        decide each statement on that network; exit 0 iff every statement
                        holds as written, 1 if one does not, 2 on bad input
  (a closed output pipe, e.g. "| head -3", ends the run quietly with exit status 1)

statement grammar:{GRAMMAR}
examples:
  check_independence.py
  check_independence.py --json
  check_independence.py --edges "M->I, S->I, I->T, F->T, I->D, T->D" "F ⊥ D" "M _|_ F | T"
  check_independence.py --undirected "A-B, B-E, E-G" "A indep G given E"
  check_independence.py --model asia "smoke ⊥ dysp | either, bronc" --blanket lung
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(  # prog: the name it was run by (check_independence.py or pgm-check)
        description="Decide conditional-independence statements on Bayesian networks (d-separation) "
                    "and Markov networks (separation), with the reason: an active trail, or every "
                    "trail and the node and rule that block it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    net = p.add_mutually_exclusive_group()
    net.add_argument("--bif", metavar="FILE", help="Bayesian network from a BIF file (.bif or .bif.gz)")
    net.add_argument("--model", metavar="NAME", help="a BIF model bundled with pgmpy (alarm, asia, child, ...)")
    net.add_argument("--edges", metavar="EDGES", help='Bayesian network from directed edges, e.g. "A->B, B->C"')
    net.add_argument("--undirected", metavar="EDGES", help='Markov network from undirected edges, e.g. "A-B, B-C"')
    p.add_argument("statements", nargs="*", metavar="STATEMENT", help='e.g. "X ⊥ Y | Z" (free mode only)')
    p.add_argument("--blanket", metavar="NODE", action="append", default=[], help="also print MB(NODE) (free mode)")
    p.add_argument("--json", action="store_true", help="print one JSON document (a list of records) instead of text")
    p.add_argument("--plot", metavar="DIR", help="write the networks (and witness trails) as PNGs into DIR")
    p.add_argument("--limit", type=int, default=6, metavar="N",
                   help=f"blocked trails listed per statement (default 6; must be ≥ 1; values above {MAX_LIMIT} "
                        f"are capped at {MAX_LIMIT}, which bounds the explanation's work)")
    p.add_argument("--list-models", action="store_true", help="list the bundled pgmpy models and exit")
    return p


def _load(args):
    from . import networks

    if args.bif:
        return networks.read_bif(args.bif), args.bif
    if args.model:
        return networks.bundled_model(args.model), args.model
    if args.edges is not None:
        nodes, edges = networks.parse_edges(args.edges, directed=True)
        return networks.bayesian_network(edges, nodes), "edges"
    nodes, edges = networks.parse_edges(args.undirected, directed=False)
    return networks.markov_network(edges, nodes), "undirected"


_SLUG_WORDS = tuple((sym, "dep") for sym in ("⊥̸", "⟂̸", "⫫̸", "!_|_")) + tuple(
    (sym, "indep") for sym in ("_|_", "⫫", "⊥", "⟂")) + (("|", "given"), ("∣", "given"), ("'", "prime"), ("+", "plus"))
_SLUG_MAX = 120


def _slug(text: str) -> str:
    """A readable, file-name-safe form of ``text``: ASCII letters and digits in words joined by '-'.

    Symbols become words (``⊥`` indep, ``⊥̸`` dep, ``|`` given, ``'`` prime, ``+`` plus), other
    letters their ASCII base (``é`` e) or ``uXXXX``; spaces, commas, braces and other punctuation
    separate words.  Not injective ("A,B" and "A B" are both ``A-B``): a command that writes
    several files keeps them apart itself (``stmt<i>_`` in free mode; the answer key's ids give
    distinct slugs).  A slug longer than 120 characters is cut and ends in a SHA-1 digest of the
    text.

    >>> _slug("3-bn"), _slug("3-bn'"), _slug("M ⊥ F | T"), _slug("{A, B} ⊥̸ C")
    ('3-bn', '3-bn-prime', 'M-indep-F-given-T', 'A-B-dep-C')
    """
    import unicodedata

    spaced = text
    for sym, word in _SLUG_WORDS:
        spaced = spaced.replace(sym, f" {word} ")
    words, word = [], []
    for c in spaced:
        base = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() if not c.isascii() else c
        if base and base.isalnum():
            word.append(base)
        elif not c.isascii() and c.isalnum():  # a letter without an ASCII form
            word.append(f"u{ord(c):04x}")
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    slug = "-".join(words) or "empty"
    if len(slug) > _SLUG_MAX:
        import hashlib

        slug = slug[:_SLUG_MAX - 13].rstrip("-") + "-" + hashlib.sha1(text.encode()).hexdigest()[:12]
    return slug


def free_mode(args) -> int:
    from .blanket import markov_blanket
    from .independence import decide
    from .report import statement_record

    model, name = _load(args)
    if not args.statements and not args.blanket:
        raise ValueError("give at least one statement (e.g. \"A ⊥ B | C\") or --blanket NODE after the network; "
                         f"variables: {', '.join(sorted(model.nodes)[:40])}")
    verdicts = [decide(model, s, limit=args.limit) for s in args.statements]  # parse all first: fail early
    blankets = [markov_blanket(model, n) for n in args.blanket]
    records = [statement_record(v, None, str(i), name) for i, v in enumerate(verdicts, 1)]
    records += [{"kind": "blanket", "exercise": None, "id": f"MB({b.node})", "network": name, **b.record()}
                for b in blankets]
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
    else:
        kind = "Bayesian network (d-separation)" if model.is_directed() else "Markov network (separation)"
        print(f"{name}: {kind}, {model.number_of_nodes()} nodes, {model.number_of_edges()} edges")
        for v in verdicts:
            print(f"{v.statement}: {'holds' if v.holds else 'does NOT hold'} — " + v.reason())
        for b in blankets:
            print(b)
    if args.plot:
        from .draw import draw

        written = [draw(model, f"{args.plot}/network.png", name)]
        for i, v in enumerate(verdicts, 1):
            written.append(draw(model, f"{args.plot}/stmt{i}_{_slug(v.statement.text)}.png",
                                f"{name}: {v.statement}", v.witness, v.observed, openings=v.openings))
        _say_written(args, written)
    return 0 if all(v.holds for v in verdicts) else 1


def _say_written(args, paths) -> None:
    """One line naming the PNGs ``--plot`` wrote (on stderr with ``--json``: stdout is the JSON)."""
    names = ", ".join(os.path.basename(str(p)) for p in paths)
    print(f"--plot: wrote {len(paths)} PNG{'s' if len(paths) != 1 else ''} to {args.plot}: {names}",
          file=sys.stderr if args.json else sys.stdout)


def key_mode(args) -> int:
    from .report import answer_key

    records, text = answer_key(limit=args.limit)
    print(json.dumps(records, ensure_ascii=False, indent=1) if args.json else text)
    if args.plot:
        from .draw import draw
        from .exercises import NETWORKS, STATEMENTS, network
        from .independence import decide

        written = [draw(network(key), f"{args.plot}/q{key.replace('.', '_')}.png", title)
                   for key, (_, _, _, title) in NETWORKS.items()]
        for s in STATEMENTS:
            v = decide(network(s.network), s.statement)
            if v.witness is not None:
                written.append(draw(network(s.network),
                                    f"{args.plot}/q{s.exercise.replace('.', '_')}_{_slug(s.id)}.png",
                                    f"Q{s.exercise} {s.id}) {v.statement}", v.witness, v.observed,
                                    openings=v.openings))
        _say_written(args, written)
    wrong = [r for r in records if not r["correct"]]
    for r in wrong:
        what = r.get("statement") or r["kind"]
        print(f"mismatch: Q{r['exercise']} {r['id']}) {what}: computed answer differs from the expected one",
              file=sys.stderr)
    return 1 if wrong else 0


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush cannot fail again
    (the recipe of the Python docs, "Note on SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):   # replaced stream (tests): nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 / 1 as in the epilog, 2 on bad input).

    A reader that goes away early (``check_independence.py | head -3``) ends the run quietly
    with status 1, as the Python docs recommend, instead of an error message.
    """
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()      # also after --help: a closed pipe shows up here, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return 1


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.limit < 1:
            raise ValueError(f"--limit must be at least 1 (got {args.limit}): it is the number of blocked "
                             "trails listed per statement")
        args.limit = min(args.limit, MAX_LIMIT)
        if args.list_models:
            from .networks import bundled_model_names

            print("\n".join(bundled_model_names()))
            return 0
        if args.bif or args.model or args.edges is not None or args.undirected is not None:
            return free_mode(args)
        if args.statements or args.blanket:
            raise ValueError("statements need a network: --edges, --undirected, --bif or --model")
        return key_mode(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
