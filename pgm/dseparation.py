"""d-separation on a DAG with the reason (Bayes-ball, Koller & Friedman alg. 3.1).

``active_trail`` is one linear-time breadth-first pass over (node, direction) states from all
of X at once, with parent pointers; the first node of Y reached gives a shortest active trail.
``d_separation`` adds, for an independence, the shortest trails and where each is blocked.

>>> import networkx as nx
>>> g = nx.DiGraph([("M", "I"), ("S", "I"), ("I", "T"), ("F", "T"), ("I", "D"), ("T", "D")])
>>> str(active_trail(g, ["F"], ["D"]))
'F → T → D'
>>> active_trail(g, ["M"], ["F"]) is None
True
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import networkx as nx

from .statements import Statement
from .verdict import Block, BlockedTrail, Trail, Verdict

__all__ = ["ancestors_of", "active_trail", "is_d_separated", "trail_blocks", "d_separation",
           "simple_trails"]

_UP, _DOWN = 0, 1  # arrived from a child (moving up) / from a parent (moving down)


def ancestors_of(g: nx.DiGraph, nodes: Iterable[str]) -> set[str]:
    """The nodes and all their ancestors."""
    pred = g._pred
    seen = set(nodes)
    stack = list(seen)
    while stack:
        for p in pred[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def active_trail(g: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> Trail | None:
    """A shortest active trail from X to Y given Z, or None if X and Y are d-separated by Z."""
    z = set(zs)
    targets = set(ys)
    anc = ancestors_of(g, z)
    pred, succ = g._pred, g._succ
    back: dict[tuple[str, int], tuple[str, int] | None] = {}
    queue: deque[tuple[str, int]] = deque()
    for x in sorted(set(xs)):
        back[(x, _UP)] = None
        queue.append((x, _UP))
    hit = None
    while queue and hit is None:
        state = queue.popleft()
        node, d = state
        nxt: list[tuple[str, int]] = []
        if node not in z:
            nxt.extend((c, _DOWN) for c in succ[node])
            if d == _UP:
                nxt.extend((p, _UP) for p in pred[node])
        if d == _DOWN and node in anc:
            nxt.extend((p, _UP) for p in pred[node])
        for s in nxt:
            if s not in back:
                back[s] = state
                if s[0] in targets and s[0] not in z:
                    hit = s
                    break
                queue.append(s)
    if hit is None:
        return None
    states = [hit]
    while back[states[-1]] is not None:
        states.append(back[states[-1]])
    states.reverse()
    nodes = tuple(s[0] for s in states)
    arrows = tuple("→" if s[1] == _DOWN else "←" for s in states[1:])
    return Trail(nodes, arrows)


def is_d_separated(g: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> bool:
    """True iff every trail between X and Y is blocked by Z."""
    return active_trail(g, xs, ys, zs) is None


def trail_blocks(g: nx.DiGraph, nodes: tuple[str, ...], zs: Iterable[str], anc: set[str] | None = None) -> tuple[Block, ...]:
    """All interior nodes of the trail that block it given Z (not just the first), in trail order,
    each with its rule: an observed ``chain`` or ``fork`` node, or a ``collider`` with neither
    itself nor a descendant in Z.  Empty iff the trail is active.  ``anc`` (Z and its ancestors)
    may be passed to save recomputing it.

    >>> g = nx.DiGraph([("A", "B"), ("B", "C"), ("D", "C"), ("D", "E")])
    >>> [str(b) for b in trail_blocks(g, ("A", "B", "C", "D", "E"), ["B", "D"])]
    ['B (observed chain node (head-to-tail))', 'C (collider, neither it nor a descendant observed)', 'D (observed fork node (tail-to-tail))']
    """
    z = set(zs)
    anc = ancestors_of(g, z) if anc is None else anc
    out = []
    for a, b, c in zip(nodes, nodes[1:], nodes[2:]):
        into_from_a, into_from_c = g.has_edge(a, b), g.has_edge(c, b)
        if into_from_a and into_from_c:
            if b not in anc:
                out.append(Block(b, "collider"))
        elif b in z:
            out.append(Block(b, "chain" if into_from_a or into_from_c else "fork"))
    return tuple(out)


def _arrows(g: nx.DiGraph, nodes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("→" if g.has_edge(a, b) else "←" for a, b in zip(nodes, nodes[1:]))


def simple_trails(skeleton: nx.Graph, xs: Iterable[str], ys: Iterable[str], limit: int = 10,
                  max_tries: int = 2000) -> tuple[list[tuple[str, ...]], bool]:
    """Up to ``limit`` shortest simple paths from X to Y with no other X/Y node inside.

    Returns (paths sorted by length then names, truncated?).  Deterministic for a graph
    built with sorted nodes.
    """
    xs, ys = sorted(set(xs)), sorted(set(ys))
    ends = set(xs) | set(ys)
    found: list[tuple[str, ...]] = []
    truncated = False
    for x in xs:
        for y in ys:
            if not nx.has_path(skeleton, x, y):
                continue
            tries = 0
            for path in nx.shortest_simple_paths(skeleton, x, y):
                tries += 1
                if not ends.intersection(path[1:-1]):
                    found.append(tuple(path))
                    if len(found) > limit * len(xs) * len(ys):
                        truncated = True
                        break
                if tries >= max_tries:
                    truncated = True
                    break
    found.sort(key=lambda p: (len(p), p))
    if len(found) > limit:
        truncated = True
    return found[:limit], truncated


def d_separation(g: nx.DiGraph, stmt: Statement, limit: int = 10, explain: bool = True) -> Verdict:
    """Decide ``stmt`` on DAG ``g``: the witness trail, or the blocked trails (up to ``limit``)."""
    trail = active_trail(g, stmt.left, stmt.right, stmt.given)
    if trail is not None or not explain:
        return Verdict(stmt, trail is None, trail, observed=stmt.given)
    anc = ancestors_of(g, stmt.given)
    skeleton = _skeleton(g)
    paths, truncated = simple_trails(skeleton, stmt.left, stmt.right, limit)
    blocked = []
    for p in paths:
        blocks = trail_blocks(g, p, stmt.given, anc)
        assert blocks, f"internal error: trail {p} is active but reachability found none"
        blocked.append(BlockedTrail(Trail(p, _arrows(g, p)), blocks))
    return Verdict(stmt, True, None, tuple(blocked), truncated, observed=stmt.given)


def _skeleton(g: nx.DiGraph) -> nx.Graph:
    s = nx.Graph()
    s.add_nodes_from(sorted(g.nodes))
    s.add_edges_from(sorted(tuple(sorted(e)) for e in g.edges))
    return s

