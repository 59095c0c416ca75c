"""Verdicts with reasons: trails, the nodes that block them, and the rule used.

>>> t = Trail(("F", "T", "D"), ("→", "→"))
>>> str(t)
'F → T → D'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .statements import Statement

__all__ = ["Trail", "Block", "BlockedTrail", "Verdict", "RULES"]

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
class Verdict:
    """The graph's answer to a statement and why.

    ``independent`` is the graph's truth; ``holds`` says whether the statement as written
    (an independence or a dependence claim) is true.
    """

    statement: Statement
    independent: bool
    witness: Trail | None = None
    blocked: tuple[BlockedTrail, ...] = ()
    truncated: bool = False
    criterion: str = "d-separation"
    observed: tuple[str, ...] = field(default=())

    @property
    def holds(self) -> bool:
        return self.independent == self.statement.independent

    def reason(self) -> str:
        """One paragraph a student can read."""
        if not self.independent:
            return f"active trail {self.witness}" if self.criterion == "d-separation" \
                else f"path {self.witness} avoids the observed set"
        if not self.blocked:
            return "no trail connects the two sides" if self.criterion == "d-separation" \
                else "no path connects the two sides"
        head = "every trail is blocked" if self.criterion == "d-separation" else "every path is blocked"
        if self.truncated:
            head += f" (showing the {len(self.blocked)} shortest; all others checked by reachability)"
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
            "reason": self.reason(),
        }
