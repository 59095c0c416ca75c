"""Drawings: readable for big networks (no two labels overlap), the witness highlighted."""
import random

import networkx as nx
import pytest

from pgm.draw import HIGHLIGHT, layout, render, style_for
from pgm.verdict import Trail


def long_named_dag(n=37, seed=5):
    """A random DAG with alarm-like size and names (12 characters)."""
    rng = random.Random(seed)
    names = [f"VARIABLE{i:02d}XY" for i in range(n)]
    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from((names[i], names[j]) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.07)
    return g


def label_overlaps(fig):
    renderer = fig.canvas.get_renderer()
    texts = fig.axes[0].texts
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in texts]
    frame = fig.bbox
    outside = [t.get_text() for t, b in zip(texts, boxes)
               if b.x0 < frame.x0 or b.y0 < frame.y0 or b.x1 > frame.x1 or b.y1 > frame.y1]
    pairs = [(texts[i].get_text(), texts[j].get_text())
             for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    return pairs, outside


@pytest.mark.parametrize("directed", [True, False])
def test_37_long_names_no_label_overlaps(directed):
    import matplotlib.pyplot as plt
    g = long_named_dag()
    model = g if directed else nx.Graph(g)
    fig = render(model, "big")
    try:
        pairs, outside = label_overlaps(fig)
        assert len(fig.axes[0].texts) == 37
        assert pairs == [] and outside == []
        assert min(t.get_fontsize() for t in fig.axes[0].texts) >= 8
    finally:
        plt.close(fig)


def test_layered_layout_parents_above_children():
    g = long_named_dag()
    pos = layout(g)
    assert all(pos[a][1] > pos[b][1] for a, b in g.edges)
    rows = {}
    for v, (x, y) in pos.items():
        rows.setdefault(y, []).append(x)
    for xs in rows.values():            # one layout unit between neighbours in a row
        xs = sorted(xs)
        assert all(b - a >= 1 - 1e-9 for a, b in zip(xs, xs[1:]))


def test_spacing_and_font_follow_size_and_label_length():
    small = nx.DiGraph([("A", "B")])
    big = long_named_dag()
    s, b = style_for(small), style_for(big)
    assert s.round_nodes and not b.round_nodes
    assert b.font < s.font and b.unit_x > 12 * 0.5 * b.font / 72     # a slot is wider than its label


def test_witness_edges_and_nodes_in_highlight_colour():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex
    g = nx.DiGraph([("M", "I"), ("S", "I"), ("I", "T"), ("F", "T"), ("I", "D"), ("T", "D")])
    fig = render(g, witness=Trail(("M", "I", "T", "F"), ("→", "→", "←")), observed=("T",))
    try:
        ax = fig.axes[0]
        hot = {to_hex(p.get_edgecolor()) == HIGHLIGHT for p in ax.patches}
        assert sum(to_hex(p.get_edgecolor()) == HIGHLIGHT for p in ax.patches) == 3 and hot == {True, False}
        red_nodes = {t.get_text() for t in ax.texts if to_hex(t.get_bbox_patch().get_edgecolor()) == HIGHLIGHT}
        assert red_nodes == {"M", "I", "T", "F"}
        grey = {t.get_text() for t in ax.texts if to_hex(t.get_bbox_patch().get_facecolor()) == "#bdbdbd"}
        assert grey == {"T"}
    finally:
        plt.close(fig)


@pytest.mark.slow
def test_alarm_plot_readable(tmp_path):
    """The real 37-node alarm network (slow: pgmpy parses its BIF file)."""
    import matplotlib.pyplot as plt
    from pgm.networks import bundled_model
    fig = render(bundled_model("alarm"), "alarm")
    try:
        pairs, outside = label_overlaps(fig)
        assert pairs == [] and outside == []
    finally:
        plt.close(fig)


def opened_collider_figure():
    from pgm.dseparation import d_separation
    from pgm.statements import Statement
    g = nx.DiGraph([("A", "C"), ("B", "C"), ("C", "E"), ("E", "D"), ("F", "E")])
    v = d_separation(g, Statement.of("A", "B", ["D"]))
    return g, v, render(g, "A ⊥ B | D", v.witness, v.observed, openings=v.openings)


def test_opening_edges_follow_the_collider_paths():
    from pgm.draw import opening_edges
    from pgm.verdict import Opening
    openings = [Opening("C", ("C", "E", "D")), Opening("K", ("K",)), Opening("G", ("G", "E", "D"))]
    assert opening_edges(openings) == [("C", "E"), ("E", "D"), ("G", "E")]
    assert opening_edges(openings, Trail(("G", "E", "H"), ("→", "←"))) == [("C", "E"), ("E", "D")]


def test_collider_path_to_observed_descendant_drawn_dashed_with_legend():
    """Issue 13, item 4: the figure shows C → E → D, the path that opens collider C."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex
    from pgm.draw import EDGE, OPENING
    g, v, fig = opened_collider_figure()
    try:
        assert str(v.witness) == "A → C ← B" and [o.path for o in v.openings] == [("C", "E", "D")]
        ax = fig.axes[0]
        style = {p.get_gid(): (to_hex(p.get_edgecolor()), p.get_linestyle()) for p in ax.patches}
        assert style == {"A->C": (HIGHLIGHT, "-"), "B->C": (HIGHLIGHT, "-"), "C->E": (OPENING, "--"),
                         "E->D": (OPENING, "--"), "F->E": (EDGE, "-")}
        (legend,) = fig.legends
        assert [t.get_text() for t in legend.get_texts()] == ["active trail", "collider → observed descendant",
                                                             "observed"]
        assert "collider C is opened by its observed descendant D via C → E → D" in fig.get_suptitle()
        pairs, outside = label_overlaps(fig)
        assert pairs == [] and outside == []
    finally:
        plt.close(fig)


def test_no_legend_without_highlight():
    import matplotlib.pyplot as plt
    fig = render(long_named_dag(8), "plain")
    try:
        assert fig.legends == []
    finally:
        plt.close(fig)


def test_plot_option_draws_the_opening_path(tmp_path, capsys):
    import matplotlib.image
    import numpy as np
    from pgm.cli import main
    from pgm.draw import OPENING

    def orange(png):
        rgb = matplotlib.image.imread(png)[..., :3]
        want = np.array([int(OPENING[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        return int((np.abs(rgb - want).max(axis=-1) < 0.08).sum())

    assert main(["--edges", "A->C, B->C, C->E, E->D, F->E", "A ⊥ B | D", "A ⊥ B | C", "--plot", str(tmp_path)]) == 1
    capsys.readouterr()
    assert orange(tmp_path / "stmt1_A-indep-B-given-D.png") > 200
    assert orange(tmp_path / "stmt2_A-indep-B-given-C.png") == 0     # C observed itself: nothing to draw
    assert orange(tmp_path / "network.png") == 0
