"""d-separation on a DAG with the reason (Bayes-ball, Koller & Friedman alg. 3.1).

``active_trail`` is one linear-time breadth-first pass over (node, direction) states from all
of X at once, with parent pointers; the first node of Y reached gives a shortest active trail,
and every collider on it is explained by the same pass over Z's ancestors that the search uses
(observed itself, or a shortest directed path to an observed descendant).

For an independence, ``d_separation`` lists blocked trails at a bounded cost: the shortest
simple trails under a hard work budget (:func:`pgm.trails.shortest_trails`), completed, when
the budget runs out, by linear passes: one shortest trail of the skeleton
(:func:`pgm.trails.shortest_trail`), and the trails read off the reachability passes
themselves: where an active trail from X and an active trail from Y (a second Bayes-ball pass)
meet at a node that blocks them, the two make a trail blocked exactly there.

>>> import networkx as nx
>>> g = nx.DiGraph([("M", "I"), ("S", "I"), ("I", "T"), ("F", "T"), ("I", "D"), ("T", "D")])
>>> str(active_trail(g, ["F"], ["D"]))
'F → T → D'
>>> active_trail(g, ["M"], ["F"]) is None
True
>>> [str(o) for o in collider_openings(g, active_trail(g, ["M"], ["F"], ["D"]), ["D"])]
['collider T is opened by its observed descendant D via T → D']
"""

from __future__ import annotations

from collections import deque
from itertools import chain
from typing import Iterable, Mapping

import networkx as nx

from .statements import Statement
from .trails import explain_budget, shortest_trail, shortest_trails
from .verdict import Block, BlockedTrail, Opening, Trail, Verdict

__all__ = ["ancestors_of", "active_trail", "is_d_separated", "trail_blocks", "collider_openings",
           "d_separation"]

_UP, _DOWN = 0, 1  # arrived from a child (moving up) / from a parent (moving down)
_State = tuple[str, int]


def _toward_observed(g: nx.DiGraph, zs: Iterable[str]) -> dict[str, str | None]:
    """Z and its ancestors, each mapped to the next node on a shortest directed path into Z
    (None for the nodes of Z): one breadth-first pass up the parents from all of Z."""
    pred = g._pred
    toward: dict[str, str | None] = dict.fromkeys(sorted(set(zs)))
    queue = deque(toward)
    while queue:
        node = queue.popleft()
        for p in pred[node]:
            if p not in toward:
                toward[p] = node
                queue.append(p)
    return toward


def ancestors_of(g: nx.DiGraph, nodes: Iterable[str]) -> set[str]:
    """The nodes and all their ancestors."""
    return set(_toward_observed(g, nodes))


def _reach(g: nx.DiGraph, sources: Iterable[str], targets: set[str], z: set[str],
           anc: Mapping[str, object]) -> tuple[dict[_State, _State | None], _State | None, int]:
    """Bayes-ball from ``sources``: parent pointers of every reachable state, the first target
    state reached (None if none) and the number of transitions examined."""
    pred, succ = g._pred, g._succ
    back: dict[_State, _State | None] = {}
    queue: deque[_State] = deque()
    for x in sorted(set(sources)):
        back[(x, _UP)] = None
        queue.append((x, _UP))
    steps = 0
    while queue:
        state = queue.popleft()
        node, d = state
        nxt: list[_State] = []
        if node not in z:
            nxt.extend((c, _DOWN) for c in succ[node])
            if d == _UP:
                nxt.extend((p, _UP) for p in pred[node])
        if d == _DOWN and node in anc:
            nxt.extend((p, _UP) for p in pred[node])
        steps += len(nxt)
        for s in nxt:
            if s not in back:
                back[s] = state
                if s[0] in targets and s[0] not in z:
                    return back, s, steps
                queue.append(s)
    return back, None, steps


def _walk(back: Mapping[_State, _State | None], state: _State) -> list[_State]:
    """The states from a source to ``state``."""
    states = [state]
    while back[states[-1]] is not None:
        states.append(back[states[-1]])
    states.reverse()
    return states


def _trail(back: Mapping[_State, _State | None], hit: _State) -> Trail:
    states = _walk(back, hit)
    return Trail(tuple(s[0] for s in states), tuple("→" if s[1] == _DOWN else "←" for s in states[1:]))


def active_trail(g: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> Trail | None:
    """A shortest active trail from X to Y given Z, or None if X and Y are d-separated by Z."""
    z = set(zs)
    back, hit, _ = _reach(g, xs, set(ys), z, ancestors_of(g, z))
    return None if hit is None else _trail(back, hit)


def is_d_separated(g: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str] = ()) -> bool:
    """True iff every trail between X and Y is blocked by Z."""
    return active_trail(g, xs, ys, zs) is None


def trail_blocks(g: nx.DiGraph, nodes: tuple[str, ...], zs: Iterable[str], anc=None) -> tuple[Block, ...]:
    """All interior nodes of the trail that block it given Z (not just the first), in trail order,
    each with its rule: an observed ``chain`` or ``fork`` node, or a ``collider`` with neither
    itself nor a descendant in Z.  Empty iff the trail is active.  ``anc`` (Z and its ancestors,
    any container) may be passed to save recomputing it.

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


def collider_openings(g: nx.DiGraph, trail: Trail, zs: Iterable[str],
                      toward: Mapping[str, str | None] | None = None) -> tuple[Opening, ...]:
    """Why each collider of the active ``trail`` is open given Z, in trail order: observed, or the
    shortest directed path to an observed descendant.  ValueError for a closed collider.
    ``toward`` (from the pass over Z's ancestors) may be passed to save recomputing it."""
    toward = _toward_observed(g, zs) if toward is None else toward
    nodes = trail.nodes
    out = []
    for a, b, c in zip(nodes, nodes[1:], nodes[2:]):
        if g.has_edge(a, b) and g.has_edge(c, b):
            if b not in toward:
                raise ValueError(f"collider {b} is closed: the trail {trail} is not active")
            path = [b]
            while toward[path[-1]] is not None:
                path.append(toward[path[-1]])
            out.append(Opening(b, tuple(path)))
    return tuple(out)


def _arrows(g: nx.DiGraph, nodes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("→" if g.has_edge(a, b) else "←" for a, b in zip(nodes, nodes[1:]))


def _meeting_trails(back_x: dict, back_y: dict, ends: set[str], z: set[str], anc: Mapping,
                    limit: int) -> list[tuple[str, ...]]:
    """Up to ``limit`` trails, shortest first, each an active trail from X and one from Y that
    meet at a node that blocks them: an observed non-collider, or a collider outside Z's
    ancestors.  Built from the two reachability passes' parent pointers only."""
    depth_x, depth_y = _depths(back_x), _depths(back_y)
    meets = []
    for sy, wy in back_y.items():
        v = sy[0]
        if wy is None or v in ends:
            continue
        for sx in ((v, _UP), (v, _DOWN)):
            wx = back_x.get(sx)
            if wx is None or wx[0] == wy[0]:
                continue
            collider = sx[1] == _DOWN and sy[1] == _DOWN      # both edges point into v
            blocks = v not in anc if collider else v in z
            if blocks:
                meets.append((depth_x[sx] + depth_y[sy], sx, sy))
    meets.sort()
    out: list[tuple[str, ...]] = []
    seen = set()
    for _, sx, sy in meets:
        nodes = tuple(s[0] for s in _walk(back_x, sx)) + tuple(s[0] for s in reversed(_walk(back_y, sy)[:-1]))
        if len(set(nodes)) == len(nodes) and not ends.intersection(nodes[1:-1]) and nodes not in seen:
            seen.add(nodes)
            out.append(nodes)
            if len(out) == limit:
                break
    return out


def _depths(back: Mapping[_State, _State | None]) -> dict[_State, int]:
    depth: dict[_State, int] = {}
    for s, p in back.items():      # breadth-first insertion order: a parent comes before its states
        depth[s] = 0 if p is None else depth[p] + 1
    return depth


def d_separation(g: nx.DiGraph, stmt: Statement, limit: int = 10, explain: bool = True) -> Verdict:
    """Decide ``stmt`` on DAG ``g``: the witness trail with its colliders explained, or up to
    ``limit`` (≥ 1) blocked trails with every node blocking each.

    The cost is bounded: ``Verdict.work`` (steps counted) is at most 10·|E| + 2·|V| +
    ``explain_budget(limit)`` — two Bayes-ball passes and a bidirectional search, each linear,
    plus the trail search's budget, whatever the number of trails.
    """
    budget = explain_budget(limit)
    z = set(stmt.given)
    toward = _toward_observed(g, z)
    back_x, hit, work = _reach(g, stmt.left, set(stmt.right), z, toward)
    if hit is not None:
        trail = _trail(back_x, hit)
        return Verdict(stmt, False, trail, observed=stmt.given, work=work,
                       openings=collider_openings(g, trail, z, toward))
    if not explain:
        return Verdict(stmt, True, None, observed=stmt.given, work=work)
    pred, succ = g._pred, g._succ

    def neighbours(u: str):
        return chain(succ[u], pred[u])

    search = shortest_trails(neighbours, stmt.left, stmt.right, limit, budget)
    work += search.steps
    paths, exhaustive, complete_below = list(search.paths), search.exhaustive, search.complete_below
    if not exhaustive and len(paths) < limit:     # budget spent: complete from linear passes
        one, steps = shortest_trail(neighbours, stmt.left, stmt.right)
        work += steps
        if one is None:                             # X and Y are not even connected
            paths, exhaustive = [], True
        else:
            complete_below = max(complete_below, len(one) - 1)
            back_y, _, steps = _reach(g, stmt.right, set(), z, toward)
            extra = _meeting_trails(back_x, back_y, set(stmt.left) | set(stmt.right), z, toward, limit)
            work += steps + len(back_y)
            paths = sorted(set(paths) | {one} | set(extra), key=lambda p: (len(p), p))
    shown = paths[:limit]
    blocked = []
    for p in shown:
        blocks = trail_blocks(g, p, z, toward)
        assert blocks, f"internal error: trail {p} is active but reachability found none"
        blocked.append(BlockedTrail(Trail(p, _arrows(g, p)), blocks))
    truncated = not exhaustive or len(paths) > limit
    shortest = not shown or len(shown[-1]) - 1 <= complete_below
    return Verdict(stmt, True, None, tuple(blocked), truncated, observed=stmt.given, shortest=shortest,
                   work=work)
