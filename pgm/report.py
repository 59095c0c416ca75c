"""The answer key of exercises Q1.1–Q1.3: records (JSON-ready) and readable text.

Every record of the answer key has ``kind``, ``exercise``, ``id``, ``expected`` and ``correct``
(the computed answer equals the expected one).  Statement records add ``statement``, ``holds``,
``witness`` and more.  A statement decided without an answer key (free mode, ``expected`` None)
has no ``correct``: ``holds`` is its answer, and there is nothing to compare it with.

>>> records, text = answer_key()                      # doctest: +SKIP
>>> all(r["correct"] for r in records)                # doctest: +SKIP
True
"""

from __future__ import annotations

from .blanket import markov_blanket
from .chordal import chordality, factorisation_text, maximal_cliques
from .exercises import (BLANKET_Q12, CLIQUES_Q12, CLIQUES_Q13, CYCLE_Q12, CYCLE_Q13,
                        MAP_COUNTEREXAMPLES_Q12, NETWORKS, STATEMENTS, network)
from .independence import decide
from .maps import compare
from .statements import Statement
from .numeric import eliminate_check, independence_gap, joint, random_cpds, random_potentials, scale_check

__all__ = ["answer_key", "statement_record", "bn_factorisation_text", "NUMERIC_TOL"]

NUMERIC_TOL = 1e-9
_YES = {True: "yes", False: "no"}


def bn_factorisation_text(bn) -> str:
    """``P(A) P(B | S) ...`` in sorted order."""
    parts = []
    for v in sorted(bn.nodes):
        pa = sorted(bn.predecessors(v))
        parts.append(f"P({v} | {','.join(pa)})" if pa else f"P({v})")
    return " ".join(parts)


def statement_record(verdict, exercise=None, id=None, network_key=None, expected=None, gap=None) -> dict:
    """A JSON record for one verdict (``expected`` None in free mode)."""
    rec = {"kind": "statement", "exercise": exercise, "id": id, "network": network_key}
    rec.update(verdict.record())
    rec["expected"] = expected
    if gap is not None:
        rec["numeric_gap"] = gap
        rec["numeric_agrees"] = (gap < NUMERIC_TOL) == verdict.independent
    if expected is not None:  # without an answer key (free mode) a verdict is neither right nor wrong
        rec["correct"] = verdict.holds == expected and rec.get("numeric_agrees", True)
    return rec


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: combining marks (the stroke of ``⊥̸``) take none, wide
    (East Asian) characters two."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 0)


def _key_column(statements) -> int:
    """Width of the ``e') M ⊥ T | I`` part of the answer key's verdict rows (at least 25), so that
    every row's ``holds:`` starts at the same column, whatever the label's length."""
    return max([25] + [display_width(f"{s.id}) {s.text}") for s in statements])


def _verdict_text(rec: dict, note: str = "", width: int = 25) -> list[str]:
    mark = "✓" if rec["correct"] else "✗ MISMATCH"
    out = [f"  {_pad(rec['id'] + ') ' + rec['statement'], width)} holds: {_YES[rec['holds']]:<4}"
           f"(expected {_YES[rec['expected']]}) {mark}"]
    out.append("     why: " + rec["reason"].replace("\n", "\n     "))
    if "numeric_gap" in rec:
        out.append(f"     numeric (random parameters): max |P(x,y,z)P(z) − P(x,z)P(y,z)| = {rec['numeric_gap']:.2e}")
    if note:
        out.append(f"     note: {note}")
    return out


def answer_key(seed: int = 0, limit: int = 6) -> tuple[list[dict], str]:
    """All records and the full text of the answer key."""
    records: list[dict] = []
    text: list[str] = []
    joints = {}
    width = _key_column(STATEMENTS)
    for key, (kind, *_rest) in NETWORKS.items():
        model = random_cpds(network(key), seed=seed) if kind == "bn" else random_potentials(network(key), seed=seed)
        joints[key] = (model, joint(model))

    def statements(exercise: str, ids=None):
        for s in STATEMENTS:
            if s.exercise == exercise and (ids is None or s.id in ids):
                v = decide(network(s.network), s.statement, limit=limit)
                gap = independence_gap(joints[s.network][1], s.statement)
                rec = statement_record(v, s.exercise, s.id, s.network, s.expected, gap)
                records.append(rec)
                text.extend(_verdict_text(rec, s.note, width))

    bn11, bn12, mn12, mn13 = network("1.1"), network("1.2-bn"), network("1.2-mn"), network("1.3")
    text += [f"{NETWORKS['1.1'][3]}: " + ", ".join(f"{a}→{b}" for a, b in NETWORKS["1.1"][2]),
             f"  joint: {bn_factorisation_text(bn11)}"]
    statements("1.1")

    text += ["", f"{NETWORKS['1.2-bn'][3]}: " + ", ".join(f"{a}→{b}" for a, b in NETWORKS["1.2-bn"][2])
             + "; C isolated",
             f"{NETWORKS['1.2-mn'][3]}: " + ", ".join(f"{a}–{b}" for a, b in NETWORKS["1.2-mn"][2])
             + "; C isolated",
             f"  1) joint of the BN: {bn_factorisation_text(bn12)}"]
    b = markov_blanket(bn12, "T")
    ok = all(getattr(b, k) == BLANKET_Q12[k] for k in ("parents", "children", "coparents")) \
        and b.members == BLANKET_Q12["blanket"]
    records.append({"kind": "blanket", "exercise": "1.2", "id": "2", "network": "1.2-bn", **b.record(),
                    "expected": list(BLANKET_Q12["blanket"]), "correct": ok})
    text.append(f"  2) {b}  {'✓' if ok else '✗ MISMATCH'}")
    text.append("  3) Is the MN a perfect map of P (I(P) = I(BN))?")
    statements("1.2")
    m = compare(bn12, mn12)
    found = {s.key for s in m.imap_counterexamples + m.dmap_counterexamples}
    ok = (m.is_imap, m.is_dmap, m.is_perfect) == (False, False, False) \
        and decide(mn12, m.imap_counterexample).independent and not decide(bn12, m.imap_counterexample).independent \
        and decide(bn12, m.dmap_counterexample).independent and not decide(mn12, m.dmap_counterexample).independent \
        and all(Statement.of(*x).key in found for x in MAP_COUNTEREXAMPLES_Q12)
    records.append({"kind": "maps", "exercise": "1.2", "id": "3", "network": "1.2-mn",
                    "is_imap": m.is_imap, "is_dmap": m.is_dmap, "is_perfect": m.is_perfect,
                    "imap_counterexample": str(m.imap_counterexample),
                    "dmap_counterexample": str(m.dmap_counterexample),
                    "imap_counterexamples": [str(x) for x in m.imap_counterexamples],
                    "dmap_counterexamples": [str(x) for x in m.dmap_counterexamples],
                    "missing_moral_edges": [list(e) for e in m.missing_moral_edges],
                    "expected": {"is_imap": False, "is_dmap": False, "is_perfect": False}, "correct": ok})
    text += ["     map relations, found by search (smallest conditioning set first):"]
    text += [f"     {line}" for line in m.lines()]
    text.append("     → not a D-map (the search finds the report's S ⊥ T | O among the minimal counterexamples) "
                "and, beyond the report, not an I-map either (A ⊥ B | M, O, T and A ⊥ B | M, S, T).  "
                + ("✓" if ok else "✗ MISMATCH"))
    c = chordality(mn12)
    ok = not c.is_chordal and frozenset(c.cycle) == CYCLE_Q12 and len(c.cycle) == 4
    records.append({"kind": "chordality", "exercise": "1.2", "id": "4", "network": "1.2-mn",
                    "is_chordal": c.is_chordal, "cycle": list(c.cycle or []),
                    "missing_chords": [list(e) for e in c.missing_chords],
                    "fill_in": [list(e) for e in c.fill_in], "expected": False, "correct": ok})
    text.append(f"  4) {c}  {'✓' if ok else '✗ MISMATCH'}")
    text.append("     (the report's 'chords O–B and S–T' are the missing chords)")
    cl = maximal_cliques(mn12)
    ok = set(cl) == set(CLIQUES_Q12)
    records.append({"kind": "cliques", "exercise": "1.2", "id": "5", "network": "1.2-mn",
                    "cliques": [list(x) for x in cl], "factorisation": factorisation_text(cl),
                    "expected": [list(x) for x in CLIQUES_Q12], "correct": ok})
    text.append("  5) maximal cliques: " + ", ".join("{" + ",".join(x) + "}" for x in cl)
                + f"  {'✓' if ok else '✗ MISMATCH'}")
    text.append(f"     {factorisation_text(cl)}")
    e_bn = eliminate_check(joints["1.2-bn"][0], "C")
    e_mn = eliminate_check(joints["1.2-mn"][0], "C")
    ok = e_bn["max_abs_diff"] < NUMERIC_TOL and e_mn["max_abs_diff"] < NUMERIC_TOL \
        and abs(e_mn["Z_prime"] - e_mn["Z_over_constant"]) < 1e-9 * e_mn["Z"]
    records.append({"kind": "elimination", "exercise": "1.2", "id": "6", "bn": e_bn, "mn": e_mn,
                    "expected": True, "correct": ok})
    text += ["  6) eliminating C (random parameters, brute force):",
             f"     BN: Σ_C P(C) = {e_bn['dropped_sum']:.6f}; Σ_C of the joint vs the product of the other six "
             f"CPDs: max diff {e_bn['max_abs_diff']:.1e}",
             f"     MN: Σ_C φ6(C) = {e_mn['constant']:.4f}; Z = {e_mn['Z']:.4f}, Z' = Z / Σ_C φ6 = "
             f"{e_mn['Z_over_constant']:.4f} = normaliser of the other five ({e_mn['Z_prime']:.4f}); "
             f"P(rest) max diff {e_mn['max_abs_diff']:.1e}  {'✓' if ok else '✗ MISMATCH'}"]

    text += ["", f"{NETWORKS['1.3'][3]}: " + ", ".join(f"{a}–{b}" for a, b in NETWORKS["1.3"][2])]
    statements("1.3")
    c = chordality(mn13)
    cl = maximal_cliques(mn13)
    ok = not c.is_chordal and frozenset(c.cycle) == CYCLE_Q13 and set(cl) == set(CLIQUES_Q13)
    records.append({"kind": "chordality", "exercise": "1.3", "id": "chordal", "network": "1.3",
                    "is_chordal": c.is_chordal, "cycle": list(c.cycle or []),
                    "cliques": [list(x) for x in cl], "expected": False, "correct": ok})
    text += [f"  {c}  {'✓' if ok else '✗ MISMATCH'}",
             "  maximal cliques: " + ", ".join("{" + ",".join(x) + "}" for x in cl),
             f"  {factorisation_text(cl)}"]
    s = scale_check(joints["1.3"][0], ("E", "G"), 5.0)
    ok = abs(s["Z_ratio"] - 5.0) < 1e-9 and s["max_abs_diff_P"] < NUMERIC_TOL
    records.append({"kind": "scaling", "exercise": "1.3", "id": "scale", **s, "expected": True, "correct": ok})
    text += [f"  scaling φ(E,G) by 5: Z {s['Z_before']:.4f} → {s['Z_after']:.4f} (×{s['Z_ratio']:.6f}); "
             f"P changes by at most {s['max_abs_diff_P']:.1e}  {'✓' if ok else '✗ MISMATCH'}",
             "  (the new partition function is 5·Z; the report's Z' = Z/5 mixes old and new normalisers)"]
    n_ok = sum(r["correct"] for r in records)
    text += ["", f"{n_ok}/{len(records)} answers match the key" + ("" if n_ok == len(records) else " — MISMATCHES above")]
    return records, "\n".join(text)
