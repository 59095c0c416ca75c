"""Agreement with pgmpy is_dconnected and networkx is_d_separator on random graphs, and
every witness checked by an independent active-trail checker written here."""
import random
from itertools import combinations, product

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


# --- exact blocking nodes and rules, against an oracle that enumerates every simple trail ----------

def oracle_blocks(g, trail, z):
    """Every interior node of ``trail`` that blocks it given ``z``, with the rule, from the
    definitions: a collider blocks iff neither it nor a descendant is observed; an observed
    non-collider blocks, as a chain (one arrow in, one out) or a fork (both arrows out)."""
    z = set(z)
    out = []
    for a, b, c in zip(trail, trail[1:], trail[2:]):
        in_a, in_c = g.has_edge(a, b), g.has_edge(c, b)
        if in_a and in_c:
            if not (nx.descendants(g, b) | {b}) & z:
                out.append((b, "collider"))
        elif b in z:
            out.append((b, "fork" if not in_a and not in_c else "chain"))
    return out


def all_trails(g, x, y):
    return [tuple(p) for p in nx.all_simple_paths(g.to_undirected(as_view=True), x, y)]


def test_blocking_nodes_and_rules_match_trail_oracle_on_random_dags():
    from pgm.dseparation import trail_blocks
    rng = random.Random(11)
    n_trails = n_multi = n_sep = 0
    for _ in range(60):
        g = random_dag(rng, rng.randint(4, 7), rng.uniform(0.3, 0.6))
        nodes = sorted(g.nodes)
        for _ in range(6):
            rng.shuffle(nodes)
            x, y, z = nodes[0], nodes[1], sorted(nodes[2:2 + rng.randint(0, 3)])
            trails = all_trails(g, x, y)
            truth = {t: oracle_blocks(g, t, z) for t in trails}
            for t in trails:       # all blocking nodes of every trail, in trail order, with the rule
                assert [(b.node, b.rule) for b in trail_blocks(g, t, z)] == truth[t], (sorted(g.edges), t, z)
                n_multi += len(truth[t]) > 1
            n_trails += len(trails)
            independent = all(truth.values())
            v = d_separation(g, Statement.of(x, y, z), limit=10_000)
            assert v.independent == independent
            if independent:        # the explanation lists exactly the simple trails, each with its blocks
                n_sep += 1
                assert not v.truncated
                got = {bt.trail.nodes: [(b.node, b.rule) for b in bt.blocks] for bt in v.blocked}
                assert got == truth
            else:
                assert not truth[v.witness.nodes] and v.witness.nodes in truth
    assert n_trails > 500 and n_multi > 50 and n_sep > 50      # the oracle saw varied cases


def test_collider_with_observed_descendant_fixed_case():
    g = nx.DiGraph([("A", "C"), ("B", "C"), ("C", "D")])
    v = d_separation(g, Statement.of("A", "B", ["D"]))
    assert not v.independent and str(v.witness) == "A → C ← B"
    v = d_separation(g, Statement.of("A", "B"))
    assert v.independent
    assert [(str(bt.trail), [(b.node, b.rule) for b in bt.blocks]) for bt in v.blocked] == \
        [("A → C ← B", [("C", "collider")])]


def test_random_dags_6_to_18_nodes_sets_vs_pgmpy_and_networkx():
    from pgmpy.base import DAG
    rng = random.Random(23)
    seen = {True: 0, False: 0}
    for _ in range(150):
        g = random_dag(rng, rng.randint(6, 18), rng.uniform(0.08, 0.35))
        dag = DAG()
        dag.add_nodes_from(g.nodes)
        dag.add_edges_from(g.edges)
        nodes = sorted(g.nodes)
        rng.shuffle(nodes)
        a, b, c = rng.randint(1, 2), rng.randint(1, 2), rng.randint(0, 5)
        xs, ys, zs = nodes[:a], nodes[a:a + b], nodes[a + b:a + b + c]
        v = d_separation(g, Statement.of(xs, ys, zs), limit=3)
        pg = not any(dag.is_dconnected(x, y, list(zs)) for x in xs for y in ys)
        assert v.independent == pg == nx.is_d_separator(g, set(xs), set(ys), set(zs))
        if v.witness:
            check_active_trail(g, v.witness.nodes, zs)
        seen[v.independent] += 1
    assert min(seen.values()) > 30


def test_all_undirected_graphs_on_4_nodes_all_queries_vs_networkx():
    nodes = ["a", "b", "c", "d"]
    pairs = list(combinations(nodes, 2))
    n_queries = 0
    for mask in range(1 << len(pairs)):                       # all 64 graphs
        h = nx.Graph()
        h.add_nodes_from(nodes)
        h.add_edges_from(p for i, p in enumerate(pairs) if mask >> i & 1)
        for labels in product("xyzn", repeat=4):   # each node: X, Y, Z or none
            xs = [v for v, l in zip(nodes, labels) if l == "x"]
            ys = [v for v, l in zip(nodes, labels) if l == "y"]
            zs = [v for v, l in zip(nodes, labels) if l == "z"]
            if not xs or not ys:
                continue
            rest = h.subgraph([v for v in nodes if v not in zs])
            truth = not any(nx.has_path(rest, x, y) for x in xs for y in ys)
            v = separation(h, Statement.of(xs, ys, zs))
            assert v.independent == truth, (sorted(h.edges), xs, ys, zs)
            if v.witness:
                w = v.witness.nodes
                assert w[0] in xs and w[-1] in ys and not set(w) & set(zs)
                assert all(h.has_edge(p, q) for p, q in zip(w, w[1:]))
            else:
                for bt in v.blocked:
                    assert [b.node for b in bt.blocks] == [n for n in bt.trail.nodes[1:-1] if n in zs]
            n_queries += 1
    assert n_queries == 64 * 110
