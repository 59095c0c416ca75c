"""One entry point: decide a statement (text or :class:`Statement`) on a BN or an MN.

>>> from pgm.exercises import network
>>> v = decide(network("1.1"), "M ⊥ F | T")
>>> v.independent, str(v.witness)
(False, 'M → I → T ← F')
"""

from __future__ import annotations

import networkx as nx

from .dseparation import d_separation
from .separation import separation
from .statements import Statement, check_variables, parse
from .verdict import Verdict

__all__ = ["decide"]


def decide(model: nx.Graph, statement: str | Statement, limit: int = 10, explain: bool = True) -> Verdict:
    """d-separation for a directed model, separation for an undirected one; names are checked."""
    if isinstance(statement, str):
        stmt = parse(statement, model.nodes)
    else:
        stmt = statement
        stmt.validate()
        check_variables(stmt, model.nodes)
    if isinstance(model, nx.DiGraph):
        return d_separation(model, stmt, limit, explain)
    return separation(model, stmt, limit, explain)
