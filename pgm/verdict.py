"""Verdicts with reasons: trails, the nodes that block them, and the rule used.

>>> t = Trail(("F", "T", "D"), ("→", "→"))
>>> str(t)
'F → T → D'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .statements import Statement

__all__ = ["Trail", "Block", "BlockedTrail", "Opening", "Verdict", "RULES"]

RULES = {
    "chain": "observed chain node (head-to-tail)",
    "fork": "observed fork node (tail-to-tail)",
    "collider": "collider, neither it nor a descendant observed",
    "separator": "observed node on the path",
}


@dataclass(frozen=True)
class Trail:
    """Nodes in order; ``arrows[i]`` links ``nodes[i]`` and ``nodes[i+1]``: '→', '←' or '–'."""

    nodes: tuple[str, ...]
    arrows: tuple[str, ...]

    def __str__(self) -> str:
        out = [self.nodes[0]]
        for arrow, node in zip(self.arrows, self.nodes[1:]):
            out += [arrow, node]
        return " ".join(out)

    def __len__(self) -> int:
        return len(self.arrows)


@dataclass(frozen=True)
class Block:
    """``node`` blocks a trail by ``rule`` (a key of :data:`RULES`)."""

    node: str
    rule: str

    def __str__(self) -> str:
        return f"{self.node} ({RULES[self.rule]})"


@dataclass(frozen=True)
class BlockedTrail:
    trail: Trail
    blocks: tuple[Block, ...]

    def __str__(self) -> str:
        return f"{self.trail}  blocked at " + "; ".join(map(str, self.blocks))


@dataclass(frozen=True)
class Opening:
    """Why the collider ``node`` on an active trail is open: ``path`` is ``(node,)`` when it is
    observed, else a shortest directed path ``node → … → d`` to an observed descendant ``d``.

    >>> str(Opening("C", ("C", "D")))
    'collider C is opened by its observed descendant D via C → D'
    """

    node: str
    path: tuple[str, ...]

    @property
    def observed(self) -> bool:
        return len(self.path) == 1

    @property
    def descendant(self) -> str | None:
        return None if self.observed else self.path[-1]

    def __str__(self) -> str:
        if self.observed:
            return f"collider {self.node} is observed"
        return f"collider {self.node} is opened by its observed descendant {self.path[-1]} via " \
            + " → ".join(self.path)

    def record(self) -> dict:
        return {"node": self.node, "observed": self.observed, "descendant": self.descendant,
                "path": list(self.path), "text": str(self)}


@dataclass(frozen=True)
class Verdict:
    """The graph's answer to a statement and why.

    ``independent`` is the graph's truth; ``holds`` says whether the statement as written
    (an independence or a dependence claim) is true.  ``openings`` says why each collider of the
    witness is open; ``blocked`` lists some blocked trails (``truncated``: not all of them;
    ``shortest``: no unlisted trail is shorter than a listed one).  ``work`` counts the steps
    (trail extensions, neighbour look-ups) spent deciding and explaining.
    """

    statement: Statement
    independent: bool
    witness: Trail | None = None
    blocked: tuple[BlockedTrail, ...] = ()
    truncated: bool = False
    criterion: str = "d-separation"
    observed: tuple[str, ...] = field(default=())
    openings: tuple[Opening, ...] = ()
    shortest: bool = True
    work: int = field(default=0, compare=False)

    @property
    def holds(self) -> bool:
        return self.independent == self.statement.independent

    def reason(self) -> str:
        """One paragraph a student can read."""
        trails = "trail" if self.criterion == "d-separation" else "path"
        if not self.independent:
            head = f"active trail {self.witness}" if self.criterion == "d-separation" \
                else f"path {self.witness} avoids the observed set"
            return head + "".join(f"\n    {o}" for o in self.openings)
        if not self.blocked:
            return f"no {trails} connects the two sides"
        head = f"every {trails} is blocked"
        if self.truncated:
            which = f"the {len(self.blocked)} shortest" if self.shortest else f"{len(self.blocked)}"
            head += f" (showing {which}; all others checked by reachability)"
        return head + ":\n" + "\n".join(f"    {b}" for b in self.blocked)

    def record(self) -> dict:
        """JSON-ready fields (statement, holds, independent, witness, reason...)."""
        return {
            "statement": self.statement.text,
            "holds": self.holds,
            "independent": self.independent,
            "claim": "independence" if self.statement.independent else "dependence",
            "criterion": self.criterion,
            "witness": list(self.witness.nodes) if self.witness else None,
            "witness_text": str(self.witness) if self.witness else None,
            "blocked": [{"trail": list(b.trail.nodes), "text": str(b.trail),
                         "blocks": [{"node": x.node, "rule": x.rule} for x in b.blocks]}
                        for b in self.blocked],
            "truncated": self.truncated,
            "colliders": [o.record() for o in self.openings],
            "reason": self.reason(),
        }
