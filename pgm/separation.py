"""Separation in a Markov network (undirected graph), with the reason.

>>> import networkx as nx
>>> h = nx.Graph([("A", "B"), ("B", "E"), ("E", "G")])
>>> str(separating_path(h, ["A"], ["G"]))
'A – B – E – G'
>>> separating_path(h, ["A"], ["G"], ["E"]) is None
True
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import networkx as nx

from .dseparation import simple_trails
from .statements import Statement
from .verdict import Block, BlockedTrail, Trail, Verdict

__all__ = ["separating_path", "is_separated", "separation"]


def separating_path(h: nx.Graph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> Trail | None:
    """A shortest path from X to Y avoiding Z, or None if Z separates X from Y."""
    z, targets = set(zs), set(ys)
    back: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for x in sorted(set(xs)):
        back[x] = None
        queue.append(x)
    adj = h._adj
    while queue:
        node = queue.popleft()
        for nb in adj[node]:
            if nb in back or nb in z:
                continue
            back[nb] = node
            if nb in targets:
                path = [nb]
                while back[path[-1]] is not None:
                    path.append(back[path[-1]])
                path.reverse()
                return Trail(tuple(path), ("–",) * (len(path) - 1))
            queue.append(nb)
    return None


def is_separated(h: nx.Graph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> bool:
    """True iff every path from X to Y passes through Z."""
    return separating_path(h, xs, ys, zs) is None


def separation(h: nx.Graph, stmt: Statement, limit: int = 10, explain: bool = True) -> Verdict:
    """Decide ``stmt`` on the undirected graph ``h``: a path avoiding Z, or the blocked paths."""
    path = separating_path(h, stmt.left, stmt.right, stmt.given)
    if path is not None or not explain:
        return Verdict(stmt, path is None, path, criterion="separation", observed=stmt.given)
    g = nx.Graph()
    g.add_nodes_from(sorted(h.nodes))
    g.add_edges_from(sorted(tuple(sorted(e)) for e in h.edges))
    paths, truncated = simple_trails(g, stmt.left, stmt.right, limit)
    z = set(stmt.given)
    blocked = tuple(
        BlockedTrail(Trail(p, ("–",) * (len(p) - 1)),
                     tuple(Block(n, "separator") for n in p[1:-1] if n in z))
        for p in paths)
    return Verdict(stmt, True, None, blocked, truncated, criterion="separation", observed=stmt.given)
