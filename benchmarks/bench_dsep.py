"""d-separation speed on one random DAG (2,000 nodes, ~4,000 edges), 1,000 random queries, |Z| ≤ 5:

* ours, verdict only   — ``d_separation(g, q, explain=False)``: the verdict and, when d-connected,
                         the witness trail;
* ours, fully explained — ``d_separation(g, q, limit=6)`` plus the reason text: what the CLI
                         prints (for a d-separation, the shortest trails and where each is blocked);
* pgmpy ``DAG.is_dconnected`` and networkx ``is_d_separator`` (verdict only).

    python benchmarks/bench_dsep.py [--nodes 2000 --edges 4000 --queries 1000 --seed 0]

Prints median per-query times and ratios (target: verdict-only ours ≤ 1.0× pgmpy).  Not part of
the tests.
"""
import argparse
import os
import platform
import random
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
warnings.filterwarnings("ignore")

import networkx as nx  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--edges", type=int, default=4000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from pgmpy.base import DAG
    from pgm.dseparation import d_separation
    from pgm.statements import Statement

    rng = random.Random(a.seed)
    nodes = [f"X{i}" for i in range(a.nodes)]
    order = nodes[:]
    rng.shuffle(order)
    edges = set()
    while len(edges) < a.edges:
        i, j = sorted(rng.sample(range(a.nodes), 2))
        edges.add((order[i], order[j]))
    g = nx.DiGraph()
    g.add_nodes_from(sorted(nodes))
    g.add_edges_from(sorted(edges))
    dag = DAG()
    dag.add_nodes_from(sorted(nodes))
    dag.add_edges_from(sorted(edges))
    queries = []
    for _ in range(a.queries):
        picked = rng.sample(nodes, 2 + rng.randint(0, 5))
        queries.append(Statement.of(picked[0], picked[1], picked[2:]))

    def timed(fn):
        out, times = [], []
        for q in queries:
            t = time.perf_counter()
            out.append(fn(q))
            times.append(time.perf_counter() - t)
        return out, statistics.median(times), sum(times)

    ours, t_ours, s_ours = timed(lambda q: d_separation(g, q, explain=False))
    full, t_full, s_full = timed(lambda q: (lambda v: (v, v.reason()))(d_separation(g, q, limit=6)))
    pg, t_pg, s_pg = timed(lambda q: not dag.is_dconnected(q.left[0], q.right[0], list(q.given)))
    nxs, t_nx, s_nx = timed(lambda q: nx.is_d_separator(g, set(q.left), set(q.right), set(q.given)))
    agree = all(v.independent == f.independent == p == n for v, (f, _), p, n in zip(ours, full, pg, nxs))
    n_dep = sum(not v.independent for v in ours)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU; "
          f"Python {platform.python_version()}, networkx {nx.__version__}")
    print(f"DAG: {a.nodes} nodes, {g.number_of_edges()} edges; {a.queries} queries (|Z| ≤ 5), "
          f"{n_dep} d-connected (witness returned), {a.queries - n_dep} d-separated; all four verdicts agree: {agree}")
    print(f"median per query: ours (verdict only) {t_ours * 1e6:9.1f} µs   "
          f"ours (fully explained, as the CLI prints) {t_full * 1e6:9.1f} µs")
    print(f"                  pgmpy is_dconnected {t_pg * 1e6:9.1f} µs   networkx is_d_separator {t_nx * 1e6:9.1f} µs")
    print(f"total:            ours verdict {s_ours:8.3f} s   ours explained {s_full:8.3f} s   pgmpy {s_pg:8.3f} s   "
          f"networkx {s_nx:8.3f} s")
    print(f"ratio (median), verdict only:    ours/pgmpy = {t_ours / t_pg:.3f}  (target ≤ 1.0)   "
          f"ours/networkx = {t_ours / t_nx:.3f}")
    print(f"ratio (median), fully explained: ours/pgmpy = {t_full / t_pg:.3f}   ours/networkx = {t_full / t_nx:.3f}   "
          f"(pgmpy and networkx give the verdict only)")
    print(f"ratio (total), fully explained:  ours/pgmpy = {s_full / s_pg:.3f}   ours/networkx = {s_full / s_nx:.3f}")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
