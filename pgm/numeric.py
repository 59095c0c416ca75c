"""Numeric checks on small networks: random CPDs / potentials, the joint by brute force,
independence gaps, summing a variable out, scaling a potential.

Markov-network marginals are always normalised here (pgmpy's ``VariableElimination`` returns
them unnormalised on Markov networks; :func:`ve_marginal` fixes that).

>>> from pgm.exercises import network
>>> bn = random_cpds(network("1.1"), seed=0)
>>> j = joint(bn)
>>> round(float(j.table.sum()), 12), j.Z
(1.0, 1.0)
>>> independence_gap(j, "M ⊥ F") < 1e-12 < independence_gap(j, "M ⊥ F | T")
True
"""

from __future__ import annotations

from dataclasses import dataclass
from string import ascii_letters

import networkx as nx
import numpy as np

from .statements import Statement, parse

__all__ = ["random_cpds", "random_potentials", "Joint", "joint", "independence_gap",
           "sum_out", "eliminate_check", "scale_check", "ve_marginal"]


def random_cpds(bn: nx.DiGraph, cardinality: int = 2, seed: int = 0):
    """A copy of ``bn`` with random (Dirichlet(1)) CPDs, all variables of the same cardinality."""
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    rng = np.random.default_rng(seed)
    out = DiscreteBayesianNetwork()
    out.add_nodes_from(sorted(bn.nodes))
    out.add_edges_from(sorted(bn.edges))
    for node in sorted(bn.nodes):
        parents = sorted(bn.predecessors(node))
        cols = cardinality ** len(parents)
        table = rng.dirichlet(np.ones(cardinality), size=cols).T      # (card, cols), columns sum to 1
        out.add_cpds(TabularCPD(node, cardinality, table, evidence=parents or None,
                                evidence_card=[cardinality] * len(parents) or None))
    return out


def random_potentials(mn: nx.Graph, cardinality: int = 2, seed: int = 0):
    """A copy of ``mn`` with one positive random potential per maximal clique."""
    from .chordal import clique_model

    return clique_model(mn, cardinality, seed)


def _factors(model) -> list[tuple[tuple[str, ...], np.ndarray]]:
    if isinstance(model, nx.DiGraph):
        return [(tuple(c.variables), np.asarray(c.values, dtype=float)) for c in model.get_cpds()]
    return [(tuple(f.variables), np.asarray(f.values, dtype=float)) for f in model.get_factors()]


def _product(factors, variables: tuple[str, ...]) -> np.ndarray:
    if len(variables) > len(ascii_letters):
        raise ValueError(f"brute force is for small networks (≤ {len(ascii_letters)} variables)")
    letter = {v: ascii_letters[i] for i, v in enumerate(variables)}
    spec = ",".join("".join(letter[v] for v in vs) for vs, _ in factors)
    out = "".join(letter[v] for v in variables)
    return np.einsum(f"{spec}->{out}", *[a for _, a in factors]) if factors else np.ones(())


@dataclass(frozen=True)
class Joint:
    """``table[i, j, ...]`` = P(variables = (i, j, ...)); ``Z`` the normaliser of the product."""

    variables: tuple[str, ...]
    table: np.ndarray
    Z: float

    def marginal(self, names) -> np.ndarray:
        """P(names) as an array with axes in the order of ``names``."""
        names = list(names)
        keep = [self.variables.index(n) for n in names]
        drop = tuple(i for i in range(len(self.variables)) if i not in keep)
        m = self.table.sum(axis=drop)
        order = sorted(keep)
        return np.transpose(m, [order.index(i) for i in keep]) if keep else m


def joint(model) -> Joint:
    """The normalised joint of a BN with CPDs or an MN with factors, by brute force."""
    variables = tuple(sorted(model.nodes))
    facs = _factors(model)
    covered = {v for vs, _ in facs for v in vs}
    if covered != set(variables):
        raise ValueError(f"no CPD/factor covers {sorted(set(variables) - covered)}")
    prod = _product(facs, variables)
    z = float(prod.sum())
    return Joint(variables, prod / z, z)


def independence_gap(j: Joint, statement: str | Statement) -> float:
    """max |P(x,y,z) P(z) − P(x,z) P(y,z)| over all values: 0 iff X ⊥ Y | Z in this joint."""
    s = parse(statement, j.variables) if isinstance(statement, str) else statement
    xs, ys, zs = list(s.left), list(s.right), list(s.given)
    pxyz = j.marginal(xs + ys + zs)
    nx_, ny, nz = len(xs), len(ys), len(zs)
    pz = pxyz.sum(axis=tuple(range(nx_ + ny)))
    pxz = pxyz.sum(axis=tuple(range(nx_, nx_ + ny)))
    pyz = pxyz.sum(axis=tuple(range(nx_)))
    lhs = pxyz * pz.reshape((1,) * (nx_ + ny) + pz.shape)
    rhs = pxz.reshape(pxz.shape[:nx_] + (1,) * ny + pxz.shape[nx_:]) * \
        pyz.reshape((1,) * nx_ + pyz.shape)
    return float(np.abs(lhs - rhs).max())


def sum_out(model, var: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Σ_var of the joint: the marginal of the other variables (sorted), by brute force."""
    j = joint(model)
    rest = tuple(v for v in j.variables if v != var)
    return j.marginal(rest), rest


def eliminate_check(model, var: str) -> dict:
    """Sum ``var`` out and compare with the reduced factorisation (Q1.2.6).

    BN: drop P(var | ...) when ``var`` is a leaf/isolated (it sums to 1).  MN: Σ_var of the
    factors that mention ``var`` becomes τ; when τ is a constant c (var in its own clique only),
    P(rest) = (1/Z') Π others with Z' = Z / c.
    """
    marg, rest = sum_out(model, var)
    facs = _factors(model)
    with_var = [(vs, a) for vs, a in facs if var in vs]
    others = [(vs, a) for vs, a in facs if var not in vs]
    involved = tuple(sorted({v for vs, _ in with_var for v in vs} - {var}))
    tau = _product(with_var, involved + (var,)).sum(axis=-1)
    reduced = _product(others + [(involved, tau)], rest)
    z_reduced = float(_product(others, rest).sum()) if not involved else float(reduced.sum())
    out = {"variable": var, "remaining": list(rest), "Z": joint(model).Z,
           "tau_is_constant": not involved, "max_abs_diff": None}
    if isinstance(model, nx.DiGraph):
        if list(model.successors(var)):
            raise ValueError(f"{var} has children; summing it out does not just drop its CPD")
        prod = _product(others, rest)
        out.update(max_abs_diff=float(np.abs(prod - marg).max()), dropped_sum=float(tau.max()))
    else:
        c = float(tau) if not involved else None
        p = reduced / reduced.sum()
        out.update(max_abs_diff=float(np.abs(p - marg).max()), constant=c,
                   Z_prime=z_reduced, Z_over_constant=(out["Z"] / c if c else None))
    return out


def scale_check(mn, clique, factor: float = 5.0) -> dict:
    """Multiply the potential on ``clique`` by ``factor``: P unchanged, Z multiplied (Q1.3.3)."""
    before = joint(mn)
    facs = _factors(mn)
    key = tuple(sorted(clique))
    hits = [i for i, (vs, _) in enumerate(facs) if tuple(sorted(vs)) == key]
    if not hits:
        raise ValueError(f"no potential on {key}; potentials: {[vs for vs, _ in facs]}")
    facs[hits[0]] = (facs[hits[0]][0], facs[hits[0]][1] * factor)
    prod = _product(facs, before.variables)
    z_after = float(prod.sum())
    return {"clique": list(key), "factor": factor, "Z_before": before.Z, "Z_after": z_after,
            "Z_ratio": z_after / before.Z,
            "max_abs_diff_P": float(np.abs(prod / z_after - before.table).max())}


def ve_marginal(model, variables) -> np.ndarray:
    """P(variables) through pgmpy ``VariableElimination``, normalised (MNs come back unnormalised)."""
    from pgmpy.inference import VariableElimination

    f = VariableElimination(model).query(list(variables), joint=True, show_progress=False)
    order = [f.variables.index(v) for v in variables]
    vals = np.transpose(np.asarray(f.values, dtype=float), order)
    return vals / vals.sum()
