"""The answer key of docs/exercises.md Q1.1–Q1.3, asserted exactly."""
import pytest

from pgm.blanket import markov_blanket
from pgm.chordal import chordality, factorisation_text, maximal_cliques
from pgm.exercises import (BLANKET_Q12, CLIQUES_Q12, CLIQUES_Q13, CYCLE_Q12, CYCLE_Q13, STATEMENTS,
                           network)
from pgm.independence import decide
from pgm.maps import compare, moralize
from pgm.networks import bayesian_network
from pgm.statements import Statement


@pytest.mark.parametrize("s", STATEMENTS, ids=lambda s: f"{s.exercise}{s.id}")
def test_every_statement_matches_key(s):
    v = decide(network(s.network), s.statement)
    assert v.holds == s.expected
    assert (v.witness is None) == v.independent


WITNESSES = {("1.1", "a"): "F → T → D", ("1.1", "d"): "M → I → T ← F",
             ("1.2", "3-mn"): "S – B – T", ("1.2", "3-bn'"): "A → M ← B",
             ("1.3", "a"): "A – B – E – G", ("1.3", "b"): "A – B – E – F"}


@pytest.mark.parametrize("key,text", WITNESSES.items())
def test_witness_trails(key, text):
    s = next(s for s in STATEMENTS if (s.exercise, s.id) == key)
    assert str(decide(network(s.network), s.statement).witness) == text


def test_q11_c_blocked_at_colliders():
    v = decide(network("1.1"), "M ⊥ F")
    got = {str(b.trail): [(x.node, x.rule) for x in b.blocks] for b in v.blocked}
    assert got == {"M → I → T ← F": [("T", "collider")], "M → I → D ← T ← F": [("D", "collider")]}
    assert not v.truncated


def test_q11_b_and_e_blocked_by_observed_chain_I():
    v = decide(network("1.1"), "S ⊥ D | I")
    assert {str(b.trail) for b in v.blocked} == {"S → I → D", "S → I → T → D"}
    assert all(b.blocks[0] == type(b.blocks[0])("I", "chain") for b in v.blocked)
    v = decide(network("1.1"), "M ⊥ T | I, D")
    by = {str(b.trail): b.blocks for b in v.blocked}
    assert [(x.node, x.rule) for x in by["M → I → D ← T"]] == [("I", "chain")]   # D observed: open there


def test_q12_blanket():
    b = markov_blanket(network("1.2-bn"), "T")
    assert (b.parents, b.children, b.coparents, b.members) == (
        BLANKET_Q12["parents"], BLANKET_Q12["children"], BLANKET_Q12["coparents"], BLANKET_Q12["blanket"])
    assert markov_blanket(network("1.2-mn"), "T").members == ("A", "B", "M", "O")


def test_q12_maps_not_dmap_not_imap_with_genuine_counterexamples():
    bn, mn = network("1.2-bn"), network("1.2-mn")
    r = compare(bn, mn)
    assert (r.is_imap, r.is_dmap, r.is_perfect) == (False, False, False)
    assert r.missing_moral_edges == (("A", "B"),) and r.extra_edges == ()
    ce = r.imap_counterexample            # separated in the MN, d-connected in the BN
    assert decide(mn, ce).independent and not decide(bn, ce).independent
    ce = r.dmap_counterexample            # d-separated in the BN, connected in the MN
    assert decide(bn, ce).independent and not decide(mn, ce).independent
    # the report's counterexample, and the I-map one it missed (docs/exercises.md)
    stc = Statement.of("S", "T", ["O"])
    assert decide(bn, stc).independent and not decide(mn, stc).independent
    assert str(decide(mn, stc).witness) == "S – B – T"
    ab = Statement.of("A", "B", ["M", "T", "O"])
    assert decide(mn, ab).independent and not decide(bn, ab).independent
    assert decide(mn, Statement.of("A", "B", ["M", "T", "S"])).independent


def test_q12_moral_graph_marries_coparents():
    m, married = moralize(network("1.2-bn"))
    assert married == (("A", "B"), ("A", "O"), ("B", "T"))
    assert set(map(tuple, map(sorted, network("1.2-mn").edges))) < set(map(tuple, map(sorted, m.edges)))


def test_q12_chordality_and_cliques():
    c = chordality(network("1.2-mn"))
    assert not c.is_chordal and len(c.cycle) == 4 and frozenset(c.cycle) == CYCLE_Q12
    assert c.missing_chords == (("B", "O"), ("S", "T"))
    assert set(maximal_cliques(network("1.2-mn"))) == set(CLIQUES_Q12)
    assert factorisation_text(maximal_cliques(network("1.2-mn"))) == \
        "P = (1/Z) φ1(A,M,T) φ2(A,O,T) φ3(B,M,T) φ4(B,S) φ5(O,S) φ6(C)"


def test_q13_chordality_and_cliques():
    c = chordality(network("1.3"))
    assert not c.is_chordal and c.cycle == ("B", "C", "F", "E") and frozenset(c.cycle) == CYCLE_Q13
    assert maximal_cliques(network("1.3")) == CLIQUES_Q13
    import networkx as nx
    tri = nx.Graph(network("1.3").edges)
    tri.add_edges_from(c.fill_in)
    assert nx.is_chordal(tri)


def test_cyclic_bn_error_names_the_cycle():
    with pytest.raises(ValueError, match=r"cycle: A → B → C → A"):
        bayesian_network([("A", "B"), ("B", "C"), ("C", "A")])


def test_answer_key_records_all_correct_and_deterministic():
    from pgm.report import answer_key
    r1, t1 = answer_key()
    r2, t2 = answer_key()
    assert t1 == t2 and r1 == r2
    assert all(r["correct"] for r in r1)
    assert sum(r["kind"] == "statement" for r in r1) == len(STATEMENTS)


def brute_minimal_counterexamples(bn, mn, first_is_bn):
    """Pairwise x ⊥ y | Z holding in one graph and not the other, Z inclusion-minimal — by
    brute force with networkx (is_d_separator; node removal + has_path)."""
    import networkx as nx
    from itertools import chain, combinations
    nodes = sorted(bn.nodes)
    g, h = nx.DiGraph(bn.edges), nx.Graph(mn.edges)
    g.add_nodes_from(nodes)
    h.add_nodes_from(nodes)
    in_bn = lambda x, y, z: nx.is_d_separator(g, {x}, {y}, set(z))
    in_mn = lambda x, y, z: not nx.has_path(h.subgraph(set(nodes) - set(z)), x, y)
    first, second = (in_bn, in_mn) if first_is_bn else (in_mn, in_bn)
    out = set()
    for x, y in combinations(nodes, 2):
        rest = [n for n in nodes if n not in (x, y)]
        subsets = list(chain.from_iterable(combinations(rest, k) for k in range(len(rest) + 1)))
        hits = [set(z) for z in subsets if first(x, y, z) and not second(x, y, z)]
        out |= {(x, y, tuple(sorted(z))) for z in hits if not any(o < z for o in hits)}
    return out


def test_q12_map_search_finds_all_minimal_counterexamples_including_the_reports():
    from pgm.exercises import MAP_COUNTEREXAMPLES_Q12
    bn, mn = network("1.2-bn"), network("1.2-mn")
    r = compare(bn, mn)
    as_tuples = lambda stmts: {(s.left[0], s.right[0], s.given) for s in stmts}
    assert as_tuples(r.dmap_counterexamples) == brute_minimal_counterexamples(bn, mn, True)
    assert as_tuples(r.imap_counterexamples) == brute_minimal_counterexamples(bn, mn, False)
    assert ("S", "T", ("O",)) in as_tuples(r.dmap_counterexamples)          # the report's, found by search
    assert {("A", "B", ("M", "O", "T")), ("A", "B", ("M", "S", "T"))} <= as_tuples(r.imap_counterexamples)
    assert set(MAP_COUNTEREXAMPLES_Q12) <= as_tuples(r.dmap_counterexamples + r.imap_counterexamples)
    assert r.dmap_counterexample == r.dmap_counterexamples[0] and r.imap_counterexample == r.imap_counterexamples[0]
    text = "\n".join(r.lines(show=100))
    assert "S ⊥ T | O" in text and "A ⊥ B | M, S, T" in text
