"""Markov blankets with their parts.

>>> from pgm.exercises import network
>>> b = markov_blanket(network("1.2-bn"), "T")
>>> b.parents, b.children, b.coparents, b.members
(('A', 'O'), ('M',), ('A', 'B'), ('A', 'B', 'M', 'O'))
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

__all__ = ["Blanket", "markov_blanket"]


@dataclass(frozen=True)
class Blanket:
    """MB(node): parents, children, co-parents (other parents of its children) for a BN;
    neighbours for an MN.  ``members`` is the union."""

    node: str
    members: tuple[str, ...]
    parents: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    coparents: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()
    directed: bool = False          # True: a node of a Bayesian network

    def __str__(self) -> str:
        """``MB(T) = parents {..} ∪ children {..} ∪ co-parents {..} = {..}`` for a BN node (even an
        isolated one), ``MB(T) = neighbours {..}`` for an MN node."""
        s = lambda xs: "{" + ", ".join(xs) + "}"
        if not self.directed:
            return f"MB({self.node}) = neighbours {s(self.neighbours)}"
        return (f"MB({self.node}) = parents {s(self.parents)} ∪ children {s(self.children)} "
                f"∪ co-parents {s(self.coparents)} = {s(self.members)}")

    def record(self) -> dict:
        """JSON-ready fields."""
        return {"node": self.node, "directed": self.directed, "blanket": list(self.members),
                "parents": list(self.parents),
                "children": list(self.children), "coparents": list(self.coparents),
                "neighbours": list(self.neighbours)}


def markov_blanket(model: nx.Graph, node: str) -> Blanket:
    """The Markov blanket of ``node`` in a BN (DiGraph) or MN (Graph)."""
    if node not in model:
        raise ValueError(f"unknown node {node!r}; known: {', '.join(sorted(model.nodes))}")
    if isinstance(model, nx.DiGraph):
        parents = tuple(sorted(model.predecessors(node)))
        children = tuple(sorted(model.successors(node)))
        co = tuple(sorted({p for c in children for p in model.predecessors(c)} - {node}))
        members = tuple(sorted(set(parents) | set(children) | set(co)))
        return Blanket(node, members, parents, children, co, directed=True)
    nbrs = tuple(sorted(model.neighbors(node)))
    return Blanket(node, nbrs, neighbours=nbrs)
