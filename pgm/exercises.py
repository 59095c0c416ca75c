"""The exercise networks and statements of ``docs/exercises.md`` (Q1.1–Q1.3), defined once.

A statement's ``note`` says where its expected answer comes from: "report:" is the reasoning of the
original homework report (a Persian course report on deep generative models, described in
``docs/exercises.md``); "beyond the report:" and "added:" mark answers the report does not give.

>>> [s.text for s in STATEMENTS if s.exercise == "1.1"][:2]
['F ⊥ D', 'S ⊥ D | I']
>>> sorted(network("1.1").edges)[:2]
[('F', 'T'), ('I', 'D')]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .statements import parse

__all__ = ["NETWORKS", "STATEMENTS", "ExerciseStatement", "network", "BLANKET_Q12",
           "CLIQUES_Q12", "CLIQUES_Q13", "CYCLE_Q12", "CYCLE_Q13", "MAP_COUNTEREXAMPLES_Q12"]

# key -> (kind, nodes, edges, title)
NETWORKS: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...], str]] = {
    "1.1": ("bn", tuple("DFIMST"),
            (("M", "I"), ("S", "I"), ("I", "T"), ("F", "T"), ("I", "D"), ("T", "D")),
            "Q1.1 Bayesian network"),
    "1.2-bn": ("bn", tuple("ABCMOST"),
               (("O", "S"), ("O", "T"), ("A", "T"), ("S", "B"), ("B", "M"), ("T", "M"), ("A", "M")),
               "Q1.2 Bayesian network"),
    "1.2-mn": ("mn", tuple("ABCMOST"),
               (("O", "A"), ("O", "T"), ("A", "T"), ("A", "M"), ("T", "M"), ("B", "T"), ("B", "M"),
                ("O", "S"), ("S", "B")),
               "Q1.2 Markov network (as given in the question)"),
    "1.3": ("mn", tuple("ABCDEFG"),
            (("A", "B"), ("A", "C"), ("B", "C"), ("B", "D"), ("C", "D"), ("C", "F"), ("D", "F"),
             ("B", "E"), ("E", "F"), ("E", "G")),
            "Q1.3 Markov network"),
}


@dataclass(frozen=True)
class ExerciseStatement:
    """One statement of the answer key: where it lives, the text and the expected truth."""

    exercise: str
    id: str
    network: str
    source: str
    expected: bool
    note: str = ""

    @property
    def statement(self):
        return parse(self.source, NETWORKS[self.network][1])

    @property
    def text(self) -> str:
        return self.statement.text


STATEMENTS: tuple[ExerciseStatement, ...] = (
    ExerciseStatement("1.1", "a", "1.1", "F ⊥ D", False, "report: trail F → T → D is active"),
    ExerciseStatement("1.1", "b", "1.1", "S ⊥ D | I", True, "report: every trail from S passes I as a chain"),
    ExerciseStatement("1.1", "c", "1.1", "M ⊥ F", True, "report: blocked at colliders T and D"),
    ExerciseStatement("1.1", "d", "1.1", "M ⊥ F | T", False, "report: observing collider T activates M → I → T ← F"),
    ExerciseStatement("1.1", "e", "1.1", "M ⊥ T | I, D", True, "report: M → I → D ← T is activated at D but blocked at I"),
    ExerciseStatement("1.1", "e'", "1.1", "M ⊥ T | I", True, "added: M ⊥ T | I alone also holds (D need not be observed)"),
    ExerciseStatement("1.2", "3-bn", "1.2-bn", "S ⊥ T | O", True, "report: holds in the Bayesian network"),
    ExerciseStatement("1.2", "3-mn", "1.2-mn", "S ⊥ T | O", False, "report: S – B – T stays open in the Markov network"),
    ExerciseStatement("1.2", "3-mn'", "1.2-mn", "A ⊥ B | M, T, O", True, "beyond the report: separated in the Markov network"),
    ExerciseStatement("1.2", "3-bn'", "1.2-bn", "A ⊥ B | M, T, O", False, "beyond the report: observing M activates A → M ← B"),
    ExerciseStatement("1.3", "a", "1.3", "A ⊥ G", False, "report: path A – B – E – G"),
    ExerciseStatement("1.3", "b", "1.3", "A ⊥ F | C, D", False, "report: path A – B – E – F avoids {C, D}"),
    ExerciseStatement("1.3", "c", "1.3", "C ⊥ G | E", True, "report: removing E cuts G off"),
    ExerciseStatement("1.3", "d", "1.3", "A ⊥ E | B, C", True, "report: removing B, C leaves A isolated"),
)

# Expected structural answers (asserted by the answer key and the tests).
BLANKET_Q12 = {"node": "T", "parents": ("A", "O"), "children": ("M",), "coparents": ("A", "B"),
               "blanket": ("A", "B", "M", "O")}
CLIQUES_Q12 = (("A", "M", "T"), ("A", "O", "T"), ("B", "M", "T"), ("B", "S"), ("O", "S"), ("C",))
CLIQUES_Q13 = (("A", "B", "C"), ("B", "C", "D"), ("C", "D", "F"), ("B", "E"), ("E", "F"), ("E", "G"))
CYCLE_Q12 = frozenset("OSBT")   # O – S – B – T – O, chords O–B and S–T missing
CYCLE_Q13 = frozenset("BCFE")   # B – C – F – E – B
# The map counterexamples of docs/exercises.md (x, y, Z), which the search must find by itself: the report's
# D-map one (S ⊥ T | O holds in the BN, not in the MN) and the I-map ones (A ⊥ B | M,T,O and
# A ⊥ B | M,T,S hold in the MN, not in the BN).
MAP_COUNTEREXAMPLES_Q12 = (("S", "T", ("O",)), ("A", "B", ("M", "O", "T")), ("A", "B", ("M", "S", "T")))


@lru_cache(maxsize=None)
def network(key: str):
    """The pgmpy model for an exercise network key (see :data:`NETWORKS`); cached, do not mutate."""
    from .networks import bayesian_network, markov_network

    kind, nodes, edges, _ = NETWORKS[key]
    return bayesian_network(edges, nodes) if kind == "bn" else markov_network(edges, nodes)
