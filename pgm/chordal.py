"""Chordality (with a chordless cycle as witness), triangulation, maximal cliques, factorisation.

>>> from pgm.exercises import network
>>> r = chordality(network("1.3"))
>>> r.is_chordal, " – ".join(r.cycle)
(False, 'B – C – F – E')
>>> factorisation_text(maximal_cliques(network("1.3")))
'P = (1/Z) φ1(A,B,C) φ2(B,C,D) φ3(C,D,F) φ4(B,E) φ5(E,F) φ6(E,G)'
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

__all__ = ["Chordality", "chordality", "shortest_chordless_cycle", "maximal_cliques",
           "factorisation_text", "clique_model", "sorted_graph"]


def sorted_graph(g: nx.Graph) -> nx.Graph:
    """A plain undirected copy with nodes and edges inserted in sorted order."""
    h = nx.Graph()
    h.add_nodes_from(sorted(g.nodes))
    h.add_edges_from(sorted(tuple(sorted(e)) for e in g.edges))
    return h


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    i = cycle.index(min(cycle))
    rot = cycle[i:] + cycle[:i]
    back = [rot[0]] + rot[1:][::-1]
    return tuple(min(rot, back))


def shortest_chordless_cycle(g: nx.Graph) -> tuple[str, ...] | None:
    """The shortest chordless cycle of length ≥ 4 (lexicographically first), or None if chordal."""
    h = sorted_graph(g)
    if nx.is_chordal(h):
        return None
    for bound in range(4, h.number_of_nodes() + 1):
        found = [_canonical(list(c)) for c in nx.chordless_cycles(h, length_bound=bound) if len(c) == bound]
        if found:
            return min(found)
    raise AssertionError("a non-chordal graph has a chordless cycle")  # pragma: no cover


@dataclass(frozen=True)
class Chordality:
    is_chordal: bool
    cycle: tuple[str, ...] | None          # a chordless cycle (closing edge implied)
    missing_chords: tuple[tuple[str, str], ...]
    fill_in: tuple[tuple[str, str], ...]   # edges that make the graph chordal
    triangulated_cliques: tuple[tuple[str, ...], ...]

    def __str__(self) -> str:
        if self.is_chordal:
            return "chordal: yes (every cycle of length ≥ 4 has a chord)"
        cyc = " – ".join(self.cycle + self.cycle[:1])
        miss = ", ".join(f"{a}–{b}" for a, b in self.missing_chords)
        fill = ", ".join(f"{a}–{b}" for a, b in self.fill_in)
        return (f"chordal: no — the cycle {cyc} has no chord (missing {miss}); "
                f"triangulation adds {fill}")


def chordality(g: nx.Graph) -> Chordality:
    """Chordal? If not: a shortest chordless cycle, its missing chords and a minimal fill-in."""
    h = sorted_graph(g)
    cycle = shortest_chordless_cycle(h)
    if cycle is None:
        return Chordality(True, None, (), (), maximal_cliques(h))
    k = len(cycle)
    missing = tuple(sorted(tuple(sorted((cycle[i], cycle[j])))
                           for i in range(k) for j in range(i + 2, k) if not (i == 0 and j == k - 1)))
    tri, _ = nx.complete_to_chordal_graph(h)
    fill = tuple(sorted(tuple(sorted(e)) for e in tri.edges if not h.has_edge(*e)))
    return Chordality(False, cycle, missing, fill, maximal_cliques(tri))


def maximal_cliques(g: nx.Graph) -> tuple[tuple[str, ...], ...]:
    """Maximal cliques, each sorted; larger first, then by names."""
    cl = {tuple(sorted(c)) for c in nx.find_cliques(sorted_graph(g))}
    return tuple(sorted(cl, key=lambda c: (-len(c), c)))


def factorisation_text(cliques) -> str:
    """``P = (1/Z) φ1(..) φ2(..) ...`` for the given cliques."""
    return "P = (1/Z) " + " ".join(f"φ{i}({','.join(c)})" for i, c in enumerate(cliques, 1))


def clique_model(g: nx.Graph, cardinality: int = 2, seed: int | None = 0):
    """A pgmpy ``DiscreteMarkovNetwork`` with one factor per maximal clique.

    ``seed=None`` gives all-ones potentials; otherwise positive random potentials.
    """
    import numpy as np
    from pgmpy.factors.discrete import DiscreteFactor
    from pgmpy.models import DiscreteMarkovNetwork

    rng = np.random.default_rng(seed)
    h = sorted_graph(g)
    mn = DiscreteMarkovNetwork()
    mn.add_nodes_from(h.nodes)
    mn.add_edges_from(h.edges)
    for c in maximal_cliques(h):
        shape = [cardinality] * len(c)
        vals = np.ones(shape) if seed is None else rng.uniform(0.1, 2.0, size=shape)
        mn.add_factors(DiscreteFactor(list(c), shape, vals))
    return mn
