"""Draw a network to PNG (networkx + matplotlib), optionally with a witness trail highlighted.

matplotlib is imported only when drawing.

>>> from pgm.exercises import network                         # doctest: +SKIP
>>> draw(network("1.1"), "q11.png", witness=decide(network("1.1"), "F ⊥ D").witness)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from .verdict import Trail

__all__ = ["layout", "draw"]


def layout(model: nx.Graph) -> dict[str, tuple[float, float]]:
    """Layered top-down positions for a DAG; Kamada–Kawai for an undirected graph (deterministic)."""
    if isinstance(model, nx.DiGraph):
        pos = {}
        layers = [sorted(layer) for layer in nx.topological_generations(model)]
        width = max(len(layer) for layer in layers) if layers else 1
        for depth, layer in enumerate(layers):
            for i, node in enumerate(layer):
                pos[node] = (i - (len(layer) - 1) / 2 + (0.25 if depth % 2 else 0) * (len(layer) < width), -depth)
        return pos
    h = nx.Graph()
    h.add_nodes_from(sorted(model.nodes))
    h.add_edges_from(sorted(tuple(sorted(e)) for e in model.edges))
    lone = [v for v in h.nodes if h.degree(v) == 0]
    if len(lone) == h.number_of_nodes():
        return nx.circular_layout(h)
    pos = nx.kamada_kawai_layout(h.subgraph([v for v in h.nodes if h.degree(v) > 0]))
    right = max(x for x, _ in pos.values()) + 0.5
    top = max(y for _, y in pos.values())
    for i, v in enumerate(lone):   # isolated nodes in a column on the right, never on top of others
        pos[v] = (right, top - 0.5 * i)
    return pos


def draw(model: nx.Graph, path: str | Path, title: str | None = None, witness: Trail | None = None,
         observed=(), dpi: int = 120) -> Path:
    """Write ``model`` as a PNG; witness edges red, observed nodes shaded.  Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directed = isinstance(model, nx.DiGraph)
    n = model.number_of_nodes()
    big = n > 40
    pos = layout(model)
    fig, ax = plt.subplots(figsize=(min(4 + 0.6 * n ** 0.8, 30), min(3.5 + 0.45 * n ** 0.8, 24)), dpi=dpi)
    on_trail = set()
    if witness is not None:
        on_trail = {frozenset(e) for e in zip(witness.nodes, witness.nodes[1:])}
    colours = ["#d62728" if frozenset(e) in on_trail else "#555555" for e in model.edges]
    widths = [3.5 if frozenset(e) in on_trail else 1.4 for e in model.edges]
    node_size = 250 if big else 1100
    fill = ["#bdbdbd" if v in set(observed) else "#cfe3ff" for v in model.nodes]
    border = ["#d62728" if witness is not None and v in witness.nodes else "#1f3b73" for v in model.nodes]
    nx.draw_networkx_nodes(model, pos, ax=ax, node_color=fill, edgecolors=border, linewidths=2,
                           node_size=node_size)
    kw = dict(arrows=True, arrowstyle="-|>", arrowsize=22, node_size=node_size) if directed else {}
    nx.draw_networkx_edges(model, pos, ax=ax, edge_color=colours, width=widths, **kw)
    nx.draw_networkx_labels(model, pos, ax=ax, font_size=7 if big else 14, font_weight="bold")
    lines = [title or ("Bayesian network" if directed else "Markov network")]
    if witness is not None:
        lines.append(f"witness: {witness}")
    if observed:
        lines.append("observed (grey): " + ", ".join(sorted(observed)))
    ax.set_title("\n".join(lines), fontsize=12)
    ax.margins(0.15)
    ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
