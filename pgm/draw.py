"""Draw a network to PNG (networkx + matplotlib), optionally with a witness trail highlighted
and, for each collider on it opened by an observed descendant, the directed path to that
descendant (dashed, another colour; a legend names the styles).

Every node is its label in a box (a circle for short names, a rounded box for long ones) and
every edge is clipped to the boxes, so long names never hide under arrows.  The figure size,
the node spacing and the font follow the node count and the longest label, so a 37-node
network such as pgmpy's ``alarm`` stays readable.  matplotlib is imported only when drawing.

>>> from pgm.exercises import network                         # doctest: +SKIP
>>> draw(network("1.1"), "q11.png", witness=decide(network("1.1"), "F ⊥ D").witness)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from .verdict import Opening, Trail

__all__ = ["layout", "draw", "render", "style_for", "opening_edges", "HIGHLIGHT", "OPENING", "EDGE",
           "OBSERVED", "NODE"]

HIGHLIGHT = "#d62728"   # witness trail: edges and node borders
OPENING = "#ff7f0e"     # collider → … → observed descendant paths: dashed edges
EDGE = "#555555"
OBSERVED = "#bdbdbd"    # fill of observed nodes
NODE = "#cfe3ff"        # fill of the others
_BORDER = "#1f3b73"


@dataclass(frozen=True)
class Style:
    """Sizes for one drawing: font (points), one layout unit in inches, figure size (inches)."""

    font: float
    unit_x: float
    unit_y: float
    round_nodes: bool       # circles (all labels short) or rounded boxes


def style_for(model: nx.Graph) -> Style:
    """Font and spacing for ``model``: smaller font for more nodes, spacing from the longest label."""
    n = model.number_of_nodes()
    longest = max((len(str(v)) for v in model.nodes), default=1)
    font = 14.0 if n <= 12 else 11.0 if n <= 40 else 8.0 if n <= 120 else 6.0
    label_in = longest * 0.62 * font / 72           # bold sans: ~0.62 em per character
    box_in = label_in + 2 * 0.45 * font / 72        # plus the box padding on both sides
    round_nodes = longest <= 3
    unit_x = max(box_in + 0.25, 0.9 if n <= 40 else 0.5)
    unit_y = max(3.2 * font / 72 + 0.45, 0.8)
    return Style(font, unit_x, unit_y, round_nodes)


def _dag_depths(g: nx.DiGraph) -> dict[str, int]:
    """Longest-path layers, with each source pulled down to just above its highest child."""
    depth = {v: d for d, layer in enumerate(nx.topological_generations(g)) for v in layer}
    for v in g.nodes:
        if g.in_degree(v) == 0 and g.out_degree(v) > 0:
            depth[v] = min(depth[c] for c in g.successors(v)) - 1
    return depth


def _order_layers(g: nx.DiGraph, layers: list[list[str]], sweeps: int = 4) -> list[list[str]]:
    """Barycentre heuristic: reorder each layer by the mean position of its neighbours in the
    layers already placed (down, then up), which removes most edge crossings."""
    pos = {v: i - (len(layer) - 1) / 2 for layer in layers for i, v in enumerate(layer)}

    def sweep(order, neighbours):
        for layer in order:
            key = {}
            for v in layer:
                nb = [pos[u] for u in neighbours(v)]
                key[v] = (sum(nb) / len(nb) if nb else pos[v], v)
            layer.sort(key=key.__getitem__)
            for i, v in enumerate(layer):
                pos[v] = i - (len(layer) - 1) / 2

    for _ in range(sweeps):
        sweep(layers[1:], g.predecessors)
        sweep(layers[-2::-1], g.successors)
    return layers


def _spread(pos: dict, min_dx: float = 1.05, min_dy: float = 0.5, rounds: int = 100) -> dict:
    """Push apart, sideways, any two nodes closer than one slot across and half a row down
    (their labels would overlap).  Deterministic."""
    pos = {v: list(xy) for v, xy in sorted(pos.items())}
    names = list(pos)
    for _ in range(rounds):
        moved = False
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                dx, dy = pos[b][0] - pos[a][0], pos[b][1] - pos[a][1]
                if abs(dx) < min_dx and abs(dy) < min_dy:
                    push = (min_dx - abs(dx)) / 2 + 1e-6
                    sign = 1.0 if dx >= 0 else -1.0
                    pos[a][0] -= sign * push
                    pos[b][0] += sign * push
                    moved = True
        if not moved:
            break
    return {v: (x, y) for v, (x, y) in pos.items()}


def layout(model: nx.Graph) -> dict[str, tuple[float, float]]:
    """Positions in layout units (one unit = one node slot).

    A DAG is layered top-down (parents above children, crossings reduced); an undirected graph
    uses Kamada–Kawai scaled so neighbours sit about two units apart, isolated nodes in a
    column on the right.  Deterministic.
    """
    if isinstance(model, nx.DiGraph):
        g = nx.DiGraph()
        g.add_nodes_from(sorted(model.nodes))
        g.add_edges_from(sorted(model.edges))
        depth = _dag_depths(g)
        top = min(depth.values(), default=0)
        layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) - top + 1)]
        for v in sorted(g.nodes):
            layers[depth[v] - top].append(v)
        layers = _order_layers(g, [layer for layer in layers if layer])
        width = max(len(layer) for layer in layers) if layers else 1
        pos = {}
        for d, layer in enumerate(layers):
            shift = 0.3 if d % 2 and len(layer) < width else 0.0   # keep long edges off node centres
            for i, v in enumerate(layer):
                pos[v] = (i - (len(layer) - 1) / 2 + shift, -float(d))
        return pos
    h = nx.Graph()
    h.add_nodes_from(sorted(model.nodes))
    h.add_edges_from(sorted(tuple(sorted(e)) for e in model.edges))
    lone = [v for v in h.nodes if h.degree(v) == 0]
    linked = [v for v in h.nodes if h.degree(v) > 0]
    pos: dict = {}
    if linked:
        sub = h.subgraph(linked)
        pos = nx.kamada_kawai_layout(sub, scale=1.0)
        edge_len = [((pos[a][0] - pos[b][0]) ** 2 + (pos[a][1] - pos[b][1]) ** 2) ** 0.5 for a, b in sub.edges]
        k = 2.0 / (sum(edge_len) / len(edge_len))       # mean edge length -> 2 units
        pos = _spread({v: (float(x) * k, float(y) * k) for v, (x, y) in pos.items()})
    right = max((x for x, _ in pos.values()), default=0.0) + 1.5
    top = max((y for _, y in pos.values()), default=0.0)
    for i, v in enumerate(lone):   # isolated nodes in a column on the right, never on top of others
        pos[v] = (right, top - 1.2 * i)
    return pos


def opening_edges(openings=(), witness: Trail | None = None) -> list[tuple[str, str]]:
    """The directed edges of the collider-opening paths (collider → … → observed descendant),
    in order, without repeats and without the witness's own edges (drawn as the trail).

    >>> opening_edges([Opening("C", ("C", "E", "D"))])
    [('C', 'E'), ('E', 'D')]
    """
    on_trail = {frozenset(e) for e in zip(witness.nodes, witness.nodes[1:])} if witness is not None else set()
    out: list[tuple[str, str]] = []
    for o in openings:
        for e in zip(o.path, o.path[1:]):
            if e not in out and frozenset(e) not in on_trail:
                out.append(e)
    return out


def draw(model: nx.Graph, path: str | Path, title: str | None = None, witness: Trail | None = None,
         observed=(), dpi: int = 120, openings: tuple[Opening, ...] = ()) -> Path:
    """Write ``model`` as a PNG (see :func:`render`).  Returns the path."""
    import matplotlib.pyplot as plt

    fig = render(model, title, witness, observed, dpi, openings)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def render(model: nx.Graph, title: str | None = None, witness: Trail | None = None, observed=(),
           dpi: int = 120, openings: tuple[Opening, ...] = ()):
    """The matplotlib figure of ``model``: witness edges and node borders red, observed nodes grey,
    the paths that open colliders (``openings``, see :func:`opening_edges`) dashed orange, and a
    legend under the network when anything is highlighted.

    Sized from :func:`style_for` and the layout extent (capped at 60 × 45 inches; the
    resolution drops for very large figures).  The caller closes it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch

    directed = isinstance(model, nx.DiGraph)
    style = style_for(model)
    pos = layout(model)
    xs = [x for x, _ in pos.values()] or [0.0]
    ys = [y for _, y in pos.values()] or [0.0]
    span_x, span_y = max(xs) - min(xs) + 1.4, max(ys) - min(ys) + 1.4
    lines = [title or ("Bayesian network" if directed else "Markov network")]
    if witness is not None:
        lines.append(f"witness: {witness}")
    lines += [str(o) for o in openings if not o.observed]
    if observed:
        lines.append("observed (grey): " + ", ".join(sorted(observed)))
    opened = opening_edges(openings, witness)
    legend = [(Line2D([], [], color=HIGHLIGHT, linewidth=3.0), "active trail")] if witness is not None else []
    if opened:
        legend.append((Line2D([], [], color=OPENING, linewidth=2.5, linestyle="--"),
                       "collider → observed descendant"))
    if observed and legend:
        legend.append((Patch(facecolor=OBSERVED, edgecolor=_BORDER), "observed"))
    title_in = 0.3 + 0.25 * len(lines)
    legend_in = 0.45 if legend else 0.0
    text_in = max([len(line) * 0.6 * 12 / 72 for line in lines]          # title lines at 12 pt
                  + [sum(len(label) * 0.6 * 10 / 72 + 1.0 for _, label in legend)]) + 0.4   # legend at 10 pt
    fig_w = min(max(span_x * style.unit_x, 5.0, text_in), 60.0)
    fig_h = min(max(span_y * style.unit_y, 3.0) + title_in + legend_in, 45.0)
    dpi = min(dpi, int(6000 / max(fig_w, fig_h)) or 1)
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes((0, legend_in / fig_h, 1, 1 - (title_in + legend_in) / fig_h))
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.axis("off")

    observed = set(observed)
    on_trail_nodes = set(witness.nodes) if witness is not None else set()
    on_trail = {frozenset(e) for e in zip(witness.nodes, witness.nodes[1:])} if witness is not None else set()
    box = "circle,pad=0.35" if style.round_nodes else "round,pad=0.45"
    labels = {}
    for v in sorted(model.nodes):
        labels[v] = ax.text(*pos[v], str(v), ha="center", va="center", fontsize=style.font, fontweight="bold",
                            zorder=3, bbox=dict(boxstyle=box, facecolor=OBSERVED if v in observed else NODE,
                                                edgecolor=HIGHLIGHT if v in on_trail_nodes else _BORDER,
                                                linewidth=2))
    opened = set(opened)
    for a, b in sorted(tuple(e) if directed else tuple(sorted(e)) for e in model.edges):
        hot = frozenset((a, b)) in on_trail
        opens = (a, b) in opened
        far = directed and abs(pos[a][1] - pos[b][1]) > 1.5     # skips a layer: bend it past the nodes
        arrow = FancyArrowPatch(
            pos[a], pos[b], patchA=labels[a].get_bbox_patch(), patchB=labels[b].get_bbox_patch(),
            arrowstyle="-|>,head_length=0.6,head_width=0.3" if directed else "-",
            mutation_scale=style.font * 1.3, shrinkA=1, shrinkB=1,
            connectionstyle=f"arc3,rad={0.12 if far else 0.0}",
            color=HIGHLIGHT if hot else OPENING if opens else EDGE,
            linewidth=3.0 if hot else 2.5 if opens else 1.2, linestyle="--" if opens else "-",
            zorder=4 if hot else 3 if opens else 2)
        arrow.set_gid(f"{a}->{b}" if directed else f"{a}-{b}")     # names the edge (for tests and SVG)
        ax.add_patch(arrow)
    fig.suptitle("\n".join(lines), fontsize=12, y=1 - 0.12 / fig_h, va="top")
    if legend:
        fig.legend(*zip(*legend), loc="lower center", ncol=len(legend), frameon=False, fontsize=10,
                   bbox_to_anchor=(0.5, 0.0))
    fig.canvas.draw()      # places the label boxes, so that the arrows clip to them when saved
    return fig
