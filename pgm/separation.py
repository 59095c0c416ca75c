"""Separation in a Markov network (undirected graph), with the reason.

The verdict is one breadth-first pass from X avoiding Z.  For a separation the blocked paths
are the shortest simple paths under a hard work budget (:func:`pgm.trails.shortest_trails`),
completed, when the budget runs out, by linear passes: one shortest path
(:func:`pgm.trails.shortest_trail`), and for each node of Z next to both the part reachable
from X and the part reachable from Y, a path through it joining the two.

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

from .statements import Statement
from .trails import explain_budget, shortest_trail, shortest_trails
from .verdict import Block, BlockedTrail, Trail, Verdict

__all__ = ["separating_path", "is_separated", "separation"]


def _reach(h: nx.Graph, sources: Iterable[str], targets: set[str], z: set[str]
           ) -> tuple[dict[str, str | None], str | None, int]:
    """Breadth-first from ``sources`` avoiding Z: parent pointers, the first target reached (or
    None) and the number of neighbour look-ups."""
    back: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for x in sorted(set(sources)):
        back[x] = None
        queue.append(x)
    adj = h._adj
    steps = 0
    while queue:
        node = queue.popleft()
        for nb in adj[node]:
            steps += 1
            if nb in back or nb in z:
                continue
            back[nb] = node
            if nb in targets:
                return back, nb, steps
            queue.append(nb)
    return back, None, steps


def _walk(back: dict[str, str | None], node: str) -> list[str]:
    path = [node]
    while back[path[-1]] is not None:
        path.append(back[path[-1]])
    path.reverse()
    return path


def separating_path(h: nx.Graph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> Trail | None:
    """A shortest path from X to Y avoiding Z, or None if Z separates X from Y."""
    back, hit, _ = _reach(h, xs, set(ys), set(zs))
    if hit is None:
        return None
    path = _walk(back, hit)
    return Trail(tuple(path), ("–",) * (len(path) - 1))


def is_separated(h: nx.Graph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> bool:
    """True iff every path from X to Y passes through Z."""
    return separating_path(h, xs, ys, zs) is None


def _meeting_paths(h: nx.Graph, back_x: dict, back_y: dict, z: set[str], limit: int) -> list[tuple[str, ...]]:
    """Up to ``limit`` paths, shortest first: for each node of Z with a neighbour reached from X
    and one reached from Y, the shortest path through it (simple: the two parts are disjoint)."""
    depth_x, depth_y = _depths(back_x), _depths(back_y)
    meets = []
    for v in sorted(z):
        a = min((n for n in h._adj[v] if n in depth_x), key=lambda n: (depth_x[n], n), default=None)
        b = min((n for n in h._adj[v] if n in depth_y), key=lambda n: (depth_y[n], n), default=None)
        if a is not None and b is not None:
            meets.append((depth_x[a] + depth_y[b], v, a, b))
    meets.sort()
    return [tuple(_walk(back_x, a)) + (v,) + tuple(reversed(_walk(back_y, b))) for _, v, a, b in meets[:limit]]


def _depths(back: dict[str, str | None]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for n, p in back.items():      # breadth-first insertion order: a parent comes first
        depth[n] = 0 if p is None else depth[p] + 1
    return depth


def separation(h: nx.Graph, stmt: Statement, limit: int = 10, explain: bool = True) -> Verdict:
    """Decide ``stmt`` on the undirected graph ``h``: a path avoiding Z, or up to ``limit``
    blocked paths, at a bounded cost (two passes plus ``explain_budget(limit)`` search steps)."""
    budget = explain_budget(limit)
    z = set(stmt.given)
    back_x, hit, work = _reach(h, stmt.left, set(stmt.right), z)
    if hit is not None:
        path = _walk(back_x, hit)
        return Verdict(stmt, False, Trail(tuple(path), ("–",) * (len(path) - 1)), criterion="separation",
                       observed=stmt.given, work=work)
    if not explain:
        return Verdict(stmt, True, None, criterion="separation", observed=stmt.given, work=work)
    search = shortest_trails(h._adj.__getitem__, stmt.left, stmt.right, limit, budget)
    work += search.steps
    paths, exhaustive, complete_below = list(search.paths), search.exhaustive, search.complete_below
    if not exhaustive and len(paths) < limit:     # budget spent: complete from linear passes
        one, steps = shortest_trail(h._adj.__getitem__, stmt.left, stmt.right)
        work += steps
        if one is None:                             # X and Y are not even connected
            paths, exhaustive = [], True
        else:
            complete_below = max(complete_below, len(one) - 1)
            back_y, _, steps = _reach(h, stmt.right, set(), z)
            work += steps + len(z)
            paths = sorted(set(paths) | {one} | set(_meeting_paths(h, back_x, back_y, z, limit)),
                           key=lambda p: (len(p), p))
    shown = paths[:limit]
    blocked = tuple(BlockedTrail(Trail(p, ("–",) * (len(p) - 1)),
                                 tuple(Block(n, "separator") for n in p[1:-1] if n in z))
                    for p in shown)
    truncated = not exhaustive or len(paths) > limit
    shortest = not shown or len(shown[-1]) - 1 <= complete_below
    return Verdict(stmt, True, None, blocked, truncated, criterion="separation", observed=stmt.given,
                   shortest=shortest, work=work)
