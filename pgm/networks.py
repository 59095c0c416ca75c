"""Build networks: edge lists (text or pairs), clique lists, BIF files (checked: :mod:`pgm.bif`),
pgmpy's bundled models.

pgmpy (slow to import) is imported inside the builders.  Nodes and edges are inserted in
sorted order so every algorithm downstream is deterministic.

>>> parse_edges("A->B, B->C, D", directed=True)
(['A', 'B', 'C', 'D'], [('A', 'B'), ('B', 'C')])
>>> bn = bayesian_network([("A", "B"), ("B", "C")])
>>> sorted(bn.edges)
[('A', 'B'), ('B', 'C')]
"""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path
from typing import Iterable, Sequence

import networkx as nx

from .bif import read_bif

__all__ = ["parse_edges", "bayesian_network", "markov_network", "markov_network_from_cliques",
           "read_bif", "bundled_model_names", "bundled_model", "is_directed"]

_DIRECTED = re.compile(r"\s*(?:->|→)\s*")
_UNDIRECTED = re.compile(r"\s*(?:--|-|–|—)\s*")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.']*$")


def parse_edges(text: str, directed: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Parse ``"A->B, B->C"`` (or ``"A-B, B-C"``); chains ``A->B->C`` and lone nodes ``C`` allowed."""
    sep = _DIRECTED if directed else _UNDIRECTED
    nodes: set[str] = set()
    edges: list[tuple[str, str]] = []
    for raw in re.split(r"[,;\n]", text):
        item = raw.strip()
        if not item:
            continue
        wrong = (not _DIRECTED.search(item) and _UNDIRECTED.search(item)) if directed else _DIRECTED.search(item)
        if wrong:
            kind = "directed ('A->B')" if directed else "undirected ('A-B')"
            raise ValueError(f"edge {item!r}: expected {kind} edges here")
        parts = sep.split(item)
        for name in parts:
            if not _NAME.match(name):
                raise ValueError(f"bad node name {name!r} in edge {item!r} (letters, digits, '_', '.' allowed)")
        nodes.update(parts)
        for a, b in zip(parts, parts[1:]):
            if a == b:
                raise ValueError(f"self-loop {a!r} in edge {item!r}")
            edges.append((a, b))
    if not nodes:
        raise ValueError(f"no edges or nodes in {text!r}")
    return sorted(nodes), sorted(set(edges))


def is_directed(model) -> bool:
    """True for Bayesian networks / DAGs, False for Markov networks."""
    return isinstance(model, nx.DiGraph)


def _check_acyclic(nodes: Iterable[str], edges: Sequence[tuple[str, str]]) -> None:
    g = nx.DiGraph()
    g.add_nodes_from(sorted(nodes))
    g.add_edges_from(sorted(edges))
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return
    names = [u for u, _ in cycle] + [cycle[0][0]]
    raise ValueError("a Bayesian network must be acyclic, but these edges form a cycle: " + " → ".join(names))


def bayesian_network(edges: Iterable[tuple[str, str]], nodes: Iterable[str] = ()):
    """A pgmpy ``DiscreteBayesianNetwork`` (no CPDs); ValueError naming a cycle if there is one."""
    edges = sorted(set(map(tuple, edges)))
    all_nodes = sorted(set(nodes) | {n for e in edges for n in e})
    _check_acyclic(all_nodes, edges)          # before the (slow) pgmpy import: errors come fast
    from pgmpy.models import DiscreteBayesianNetwork

    bn = DiscreteBayesianNetwork()
    bn.add_nodes_from(all_nodes)
    bn.add_edges_from(edges)
    return bn


def markov_network(edges: Iterable[tuple[str, str]], nodes: Iterable[str] = ()):
    """A pgmpy ``DiscreteMarkovNetwork`` (no factors) from undirected edges."""
    from pgmpy.models import DiscreteMarkovNetwork

    edges = sorted({tuple(sorted(e)) for e in edges})
    for a, b in edges:
        if a == b:
            raise ValueError(f"self-loop {a!r}")
    mn = DiscreteMarkovNetwork()
    mn.add_nodes_from(sorted(set(nodes) | {n for e in edges for n in e}))
    mn.add_edges_from(edges)
    return mn


def markov_network_from_cliques(cliques: Iterable[Iterable[str]]):
    """A Markov network whose edges join every pair inside each clique.

    >>> sorted(markov_network_from_cliques([["A", "B", "C"], ["C", "D"], ["E"]]).edges)
    [('A', 'B'), ('A', 'C'), ('B', 'C'), ('C', 'D')]
    """
    cliques = [sorted(set(c)) for c in cliques]
    edges = [e for c in cliques for e in combinations(c, 2)]
    return markov_network(edges, {n for c in cliques for n in c})


def _bundled_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pgmpy")
    if spec is None or not spec.origin:
        raise ValueError("pgmpy is not installed")
    return Path(spec.origin).parent / "utils" / "example_models"


def bundled_model_names() -> list[str]:
    """Names of the BIF models shipped inside the installed pgmpy (alarm, asia, child, ...)."""
    return sorted(p.name[: -len(".bif.gz")] for p in _bundled_dir().glob("*.bif.gz"))


def bundled_model(name: str):
    """Load a bundled pgmpy model from its BIF file (offline; never the hub)."""
    names = bundled_model_names()
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown bundled model {name!r}{hint}. Available: {', '.join(names)}")
    return read_bif(_bundled_dir() / f"{name}.bif.gz")
