"""The shortest simple trails between two node sets, found under a hard work budget.

Explaining an independence lists trails and where each is blocked.  Enumerating simple paths
per pair of end points (``networkx.shortest_simple_paths``) can take minutes on a dense
network; here one breadth-first search over partial trails from all of X at once stops after
the first trail length at which more than ``limit`` trails are known, or after ``budget``
neighbour look-ups, whichever comes first.  When the budget runs out the callers complete the
list with one shortest trail (:func:`shortest_trail`, a bidirectional breadth-first search:
linear at worst, which also tells whether any trail exists) and with trails read off their
reachability passes (see :mod:`pgm.dseparation`, :mod:`pgm.separation`).

The explanation costs at most ``explain_budget(limit)`` look-ups here, that is
``STEPS_PER_TRAIL × limit``, never more than ``MAX_STEPS``; the command line caps ``--limit``
at ``MAX_LIMIT``.

>>> adj = {"A": ["B", "C"], "B": ["A", "D"], "C": ["A", "D"], "D": ["B", "C"]}
>>> s = shortest_trails(adj.__getitem__, ["A"], ["D"], limit=5, budget=100)
>>> s.paths, s.exhaustive
((('A', 'B', 'D'), ('A', 'C', 'D')), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

__all__ = ["TrailSearch", "shortest_trails", "shortest_trail", "explain_budget", "check_limit", "STEPS_PER_TRAIL",
           "MAX_STEPS", "MAX_LIMIT"]

STEPS_PER_TRAIL = 40     # trail-search look-ups allowed per trail asked for ...
MAX_STEPS = 200_000      # ... and never more than this, whatever the limit
MAX_LIMIT = 100          # the command line's cap on --limit


def check_limit(limit: int) -> int:
    """``limit`` itself if it is an int ≥ 1, else ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"the number of trails to list must be a whole number ≥ 1, not {limit!r}")
    return limit


def explain_budget(limit: int) -> int:
    """Neighbour look-ups the trail search may spend to list ``limit`` trails."""
    return min(STEPS_PER_TRAIL * check_limit(limit), MAX_STEPS)


@dataclass(frozen=True)
class TrailSearch:
    """What the search found: ``paths`` sorted by (length, names); ``exhaustive``: they are all
    the simple trails; every trail shorter than ``complete_below`` is among them; ``steps``:
    look-ups spent."""

    paths: tuple[tuple[str, ...], ...]
    exhaustive: bool
    complete_below: int
    steps: int


def shortest_trails(neighbours: Callable[[str], Iterable[str]], xs: Iterable[str], ys: Iterable[str],
                    limit: int, budget: int) -> TrailSearch:
    """Simple trails from a node of X to a node of Y with no X or Y node inside, shortest first.

    Breadth-first over partial trails; a length is always finished (so the result does not
    depend on the order of neighbours) unless the budget runs out first.  Stops once more than
    ``limit`` trails are found (so the caller knows whether there are more), when no partial
    trail is left, or after ``budget`` calls' worth of neighbours.
    """
    xs, ys = set(xs), set(ys)
    ends = xs | ys
    frontier: list[tuple[str, ...]] = [(x,) for x in sorted(xs)]
    found: list[tuple[str, ...]] = []
    steps = length = 0
    while frontier:
        length += 1
        grown: list[tuple[str, ...]] = []
        for path in frontier:
            for nb in neighbours(path[-1]):
                steps += 1
                if steps > budget:
                    return TrailSearch(tuple(sorted(found, key=_order)), False, length, budget)
                if nb in ys:
                    found.append(path + (nb,))
                elif nb not in ends and nb not in path:
                    grown.append(path + (nb,))
        if len(found) > limit:
            return TrailSearch(tuple(sorted(found, key=_order)), not grown, length + 1, steps)
        frontier = grown
    return TrailSearch(tuple(sorted(found, key=_order)), True, length + 1, steps)


def _order(path: tuple[str, ...]) -> tuple:
    return len(path), path


def shortest_trail(neighbours: Callable[[str], Iterable[str]], xs: Iterable[str], ys: Iterable[str]
                   ) -> tuple[tuple[str, ...] | None, int]:
    """One shortest trail from X to Y (so no X or Y node inside), or None if none exists, and the
    look-ups spent: breadth-first from both sets at once, a whole level of the smaller side at a
    time (networkx's bidirectional search, for node sets).

    >>> adj = {"A": ["B"], "B": ["A", "C"], "C": ["B", "D"], "D": ["C"], "E": []}
    >>> shortest_trail(adj.__getitem__, ["A"], ["D"])[0], shortest_trail(adj.__getitem__, ["A"], ["E"])[0]
    (('A', 'B', 'C', 'D'), None)
    """
    trees: tuple[dict[str, str | None], dict[str, str | None]] = \
        (dict.fromkeys(sorted(set(xs))), dict.fromkeys(sorted(set(ys))))
    fronts = [list(trees[0]), list(trees[1])]
    steps = 0
    while fronts[0] and fronts[1]:
        side = 0 if len(fronts[0]) <= len(fronts[1]) else 1
        mine, other = trees[side], trees[1 - side]
        grown: list[str] = []
        best: tuple | None = None
        for u in fronts[side]:
            for nb in neighbours(u):
                steps += 1
                if nb in other:
                    ends = (u, nb) if side == 0 else (nb, u)
                    path = tuple(_walk(trees[0], ends[0])[::-1]) + tuple(_walk(trees[1], ends[1]))
                    if best is None or (len(path), path) < (len(best), best):
                        best = path
                elif nb not in mine:
                    mine[nb] = u
                    grown.append(nb)
        if best is not None:
            return best, steps
        fronts[side] = grown
    return None, steps


def _walk(tree: dict[str, str | None], node: str) -> list[str]:
    """``node`` and its parents up to the root of its breadth-first tree."""
    out = [node]
    while tree[out[-1]] is not None:
        out.append(tree[out[-1]])
    return out
