"""Moralisation and the map relations between a BN G and an MN H on the same variables.

With I(P) = I(G):  H is an **I-map** if I(H) ⊆ I(G) (every separation in H is a d-separation
in G); a **D-map** if I(G) ⊆ I(H); a **perfect map** if both.  Both sets are determined by the
pairwise statements ``x ⊥ y | Z`` (a set statement holds iff all its pairs do), so the search
below enumerates pairs and conditioning sets, smallest set first, names in order, and returns
the first statement that is in one set and not the other.

>>> from pgm.exercises import network
>>> r = compare(network("1.2-bn"), network("1.2-mn"))
>>> r.is_imap, r.is_dmap, r.is_perfect
(False, False, False)
>>> r.missing_moral_edges
(('A', 'B'),)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import networkx as nx

from .dseparation import is_d_separated
from .separation import is_separated
from .statements import Statement

__all__ = ["moralize", "MapReport", "compare", "find_counterexample", "minimal_counterexamples"]


def moralize(g: nx.DiGraph) -> tuple[nx.Graph, tuple[tuple[str, str], ...]]:
    """The moral graph (sorted nodes) and the marriage edges it added between co-parents."""
    m = nx.Graph()
    m.add_nodes_from(sorted(g.nodes))
    m.add_edges_from(sorted(tuple(sorted(e)) for e in g.edges))
    married = set()
    for child in sorted(g.nodes):
        for a, b in combinations(sorted(g.predecessors(child)), 2):
            if not m.has_edge(a, b):
                married.add((a, b))
    m.add_edges_from(sorted(married))
    return m, tuple(sorted(married))


def find_counterexample(nodes, in_first: Callable[[str, str, tuple], bool],
                        in_second: Callable[[str, str, tuple], bool],
                        max_given: int | None = None, budget: int = 200_000) -> tuple[Statement | None, bool]:
    """First pairwise ``x ⊥ y | Z`` with in_first true and in_second false, smallest Z first.

    Returns (statement or None, exhaustive?) — exhaustive is False when the budget or
    ``max_given`` cut the search short.
    """
    nodes = sorted(nodes)
    top = len(nodes) - 2 if max_given is None else min(max_given, len(nodes) - 2)
    checks = 0
    for k in range(0, top + 1):
        for x, y in combinations(nodes, 2):
            rest = [n for n in nodes if n != x and n != y]
            for z in combinations(rest, k):
                checks += 1
                if checks > budget:
                    return None, False
                if in_first(x, y, z) and not in_second(x, y, z):
                    return Statement.of(x, y, z), True
    return None, top == len(nodes) - 2


def minimal_counterexamples(nodes, in_first: Callable[[str, str, tuple], bool],
                            in_second: Callable[[str, str, tuple], bool], max_given: int | None = None,
                            budget: int = 200_000) -> tuple[tuple[Statement, ...], bool]:
    """Every pairwise ``x ⊥ y | Z`` with in_first true and in_second false whose Z is minimal
    (no proper subset of Z gives a counterexample for the same pair).

    Sorted by |Z|, then names.  Returns (statements, exhaustive?) — exhaustive is False when
    the budget or ``max_given`` cut the search short.
    """
    nodes = sorted(nodes)
    top = len(nodes) - 2 if max_given is None else min(max_given, len(nodes) - 2)
    found: dict[tuple[str, str], list[frozenset]] = {}
    checks = 0
    for k in range(0, top + 1):
        for x, y in combinations(nodes, 2):
            rest = [n for n in nodes if n != x and n != y]
            for z in combinations(rest, k):
                if any(m <= set(z) for m in found.get((x, y), ())):
                    continue                      # a subset already is a counterexample: not minimal
                checks += 1
                if checks > budget:
                    return _sorted_statements(found), False
                if in_first(x, y, z) and not in_second(x, y, z):
                    found.setdefault((x, y), []).append(frozenset(z))
    return _sorted_statements(found), top == len(nodes) - 2


def _sorted_statements(found: dict[tuple[str, str], list[frozenset]]) -> tuple[Statement, ...]:
    out = [Statement.of(x, y, z) for (x, y), zs in found.items() for z in zs]
    return tuple(sorted(out, key=lambda s: (len(s.given), s.left, s.right, s.given)))


@dataclass(frozen=True)
class MapReport:
    is_imap: bool
    is_dmap: bool | None                       # None: search budget exhausted without a counterexample
    imap_counterexample: Statement | None      # separated in H, d-connected in G
    dmap_counterexample: Statement | None      # d-separated in G, connected in H
    missing_moral_edges: tuple[tuple[str, str], ...]
    extra_edges: tuple[tuple[str, str], ...]   # edges of H not in the moral graph of G
    marriages: tuple[tuple[str, str], ...]
    imap_counterexamples: tuple[Statement, ...] = ()   # all with a minimal conditioning set
    dmap_counterexamples: tuple[Statement, ...] = ()

    @property
    def is_perfect(self) -> bool | None:
        if self.is_imap is False or self.is_dmap is False:
            return False
        return None if self.is_dmap is None else True

    def lines(self, show: int = 12) -> list[str]:
        """Readable lines; at most ``show`` minimal counterexamples of each kind are listed."""
        e = lambda es: ", ".join(f"{a}–{b}" for a, b in es) or "none"
        out = [f"moral graph marries co-parents: {e(self.marriages)}",
               f"moral-graph edges missing from the MN: {e(self.missing_moral_edges)}; "
               f"MN edges not in the moral graph: {e(self.extra_edges)}"]
        if self.is_imap:
            out.append("I-map: yes (the MN contains the moral graph, so each of its separations is a d-separation)")
        else:
            out.append(f"I-map: no — {self.imap_counterexample} is a separation in the MN but not a "
                       f"d-separation in the BN")
            out += self._listed("I-map", self.imap_counterexamples, show)
        if self.is_dmap:
            out.append("D-map: yes (every d-separation of the BN is a separation in the MN)")
        elif self.is_dmap is None:
            out.append("D-map: undecided (no counterexample within the search budget)")
        else:
            out.append(f"D-map: no — {self.dmap_counterexample} holds in the BN but not in the MN")
            out += self._listed("D-map", self.dmap_counterexamples, show)
        out.append("perfect map: " + {True: "yes", False: "no", None: "undecided"}[self.is_perfect])
        return out

    @staticmethod
    def _listed(kind: str, found: tuple[Statement, ...], show: int) -> list[str]:
        if len(found) < 2:
            return []
        more = f" ... and {len(found) - show} more" if len(found) > show else ""
        return [f"  all {len(found)} {kind} counterexamples with a minimal conditioning set: "
                + "; ".join(map(str, found[:show])) + more]


def compare(bn: nx.DiGraph, mn: nx.Graph, max_given: int | None = None, budget: int = 200_000) -> MapReport:
    """I-map / D-map / perfect-map relation of ``mn`` to ``bn``, with smallest counterexamples.

    The I-map verdict is exact: I(H) ⊆ I(G) iff H contains every edge of G's moral graph.
    """
    if set(bn.nodes) != set(mn.nodes):
        raise ValueError("the BN and the MN must have the same variables: "
                         f"{sorted(set(bn.nodes) ^ set(mn.nodes))} differ")
    moral, married = moralize(bn)
    h_edges = {tuple(sorted(e)) for e in mn.edges}
    m_edges = {tuple(sorted(e)) for e in moral.edges}
    missing = tuple(sorted(m_edges - h_edges))
    extra = tuple(sorted(h_edges - m_edges))
    sep_h = lambda x, y, z: is_separated(mn, [x], [y], z)
    sep_g = lambda x, y, z: is_d_separated(bn, [x], [y], z)
    imap_all, _ = minimal_counterexamples(bn.nodes, sep_h, sep_g, max_given, budget)
    imap_ce = imap_all[0] if imap_all else None
    if imap_ce is None and missing:   # outside the search limits: the missing edge gives one
        a, b = missing[0]
        imap_ce = Statement.of(a, b, [n for n in bn.nodes if n not in (a, b)])
    dmap_all, exhaustive = minimal_counterexamples(bn.nodes, sep_g, sep_h, max_given, budget)
    dmap_ce = dmap_all[0] if dmap_all else None
    is_dmap = False if dmap_ce is not None else (True if exhaustive else None)
    return MapReport(not missing, is_dmap, imap_ce, dmap_ce, missing, extra, married, imap_all, dmap_all)
