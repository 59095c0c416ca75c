"""Agreement with pgmpy is_dconnected and networkx is_d_separator on random graphs, and
every witness checked by an independent active-trail checker written here."""
import random
from itertools import combinations

import networkx as nx
import pytest

from pgm.dseparation import active_trail, d_separation
from pgm.separation import separating_path, separation
from pgm.statements import Statement


def random_dag(rng, n, p):
    nodes = [f"V{i}" for i in range(n)]
    order = nodes[:]
    rng.shuffle(order)
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((order[i], order[j]) for i in range(n) for j in range(i + 1, n) if rng.random() < p)
    return g


def descendants_or_self(g, v):
    return nx.descendants(g, v) | {v}


def check_active_trail(g, nodes, z):
    """Independent check: consecutive nodes adjacent, simple, every interior node open."""
    z = set(z)
    assert len(set(nodes)) == len(nodes), "not simple"
    for a, b in zip(nodes, nodes[1:]):
        assert g.has_edge(a, b) or g.has_edge(b, a)
    for a, b, c in zip(nodes, nodes[1:], nodes[2:]):
        if g.has_edge(a, b) and g.has_edge(c, b):
            assert descendants_or_self(g, b) & z, f"closed collider {b}"
        else:
            assert b not in z, f"observed non-collider {b}"


def test_exhaustive_small_dags_vs_networkx_pgmpy():
    from pgmpy.base import DAG
    rng = random.Random(1)
    n_queries = 0
    for _ in range(80):
        g = random_dag(rng, rng.randint(3, 5), rng.choice([0.3, 0.5, 0.7]))
        dag = DAG()
        dag.add_nodes_from(g.nodes)
        dag.add_edges_from(g.edges)
        nodes = sorted(g.nodes)
        for x, y in combinations(nodes, 2):
            rest = [v for v in nodes if v not in (x, y)]
            for k in range(len(rest) + 1):
                for z in combinations(rest, k):
                    t = active_trail(g, [x], [y], z)
                    sep = t is None
                    assert sep == nx.is_d_separator(g, {x}, {y}, set(z))
                    assert sep == (not dag.is_dconnected(x, y, list(z)))
                    if t is not None:
                        assert t.nodes[0] == x and t.nodes[-1] == y
                        check_active_trail(g, t.nodes, z)
                    n_queries += 1
    assert n_queries > 1500


def test_random_larger_dags_sets_vs_networkx():
    rng = random.Random(7)
    for _ in range(300):
        g = random_dag(rng, rng.randint(6, 14), rng.uniform(0.1, 0.4))
        nodes = sorted(g.nodes)
        rng.shuffle(nodes)
        a, b, c = rng.randint(1, 2), rng.randint(1, 2), rng.randint(0, 4)
        xs, ys, zs = nodes[:a], nodes[a:a + b], nodes[a + b:a + b + c]
        stmt = Statement.of(xs, ys, zs)
        v = d_separation(g, stmt, limit=5)
        assert v.independent == nx.is_d_separator(g, set(xs), set(ys), set(zs))
        if v.witness:
            assert v.witness.nodes[0] in xs and v.witness.nodes[-1] in ys
            assert not set(v.witness.nodes[1:-1]) & (set(xs) | set(ys))
            check_active_trail(g, v.witness.nodes, zs)
        for bt in v.blocked:      # every listed trail really is blocked, at the named nodes
            with pytest.raises(AssertionError):
                check_active_trail(g, bt.trail.nodes, zs)
            assert bt.blocks


def test_random_undirected_graphs_vs_networkx():
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(3, 12)
        h = nx.gnp_random_graph(n, rng.uniform(0.1, 0.5), seed=rng.randint(0, 10**6))
        h = nx.relabel_nodes(h, {i: f"N{i}" for i in range(n)})
        nodes = sorted(h.nodes)
        for _ in range(10):
            rng.shuffle(nodes)
            x, y, zs = nodes[0], nodes[1], nodes[2:2 + rng.randint(0, 3)]
            p = separating_path(h, [x], [y], zs)
            rest = h.subgraph([v for v in h.nodes if v not in zs])
            assert (p is None) == (not nx.has_path(rest, x, y))
            if p:
                assert p.nodes[0] == x and p.nodes[-1] == y and not set(p.nodes) & set(zs)
                assert all(h.has_edge(a, b) for a, b in zip(p.nodes, p.nodes[1:]))
            else:
                v = separation(h, Statement.of(x, y, zs))
                assert all(set(bt.trail.nodes[1:-1]) & set(zs) for bt in v.blocked)


def test_dependence_claim_holds_when_connected():
    g = nx.DiGraph([("A", "B"), ("B", "C")])
    v = d_separation(g, Statement.of("A", "C", (), independent=False))
    assert v.holds and not v.independent
