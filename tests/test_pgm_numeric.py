"""Numeric checks on random parametrisations."""
import numpy as np
import pytest

from pgm.exercises import STATEMENTS, network
from pgm.numeric import (eliminate_check, independence_gap, joint, random_cpds, random_potentials,
                         scale_check, ve_marginal)


@pytest.fixture(scope="module")
def joints():
    out = {}
    for key in ("1.1", "1.2-bn"):
        out[key] = joint(random_cpds(network(key), seed=11))
    for key in ("1.2-mn", "1.3"):
        out[key] = joint(random_potentials(network(key), seed=11))
    return out


@pytest.mark.parametrize("s", STATEMENTS, ids=lambda s: f"{s.exercise}{s.id}")
def test_statements_numerically(joints, s):
    gap = independence_gap(joints[s.network], s.statement)
    graph_independent = s.expected == s.statement.independent
    if graph_independent:
        assert gap < 1e-12
    else:
        assert gap > 1e-5


def test_joint_sums_to_one_and_bn_matches_chain_rule():
    bn = random_cpds(network("1.1"), seed=2)
    j = joint(bn)
    assert abs(j.table.sum() - 1) < 1e-12 and abs(j.Z - 1) < 1e-12
    # P(F) from the joint equals the CPD of the root F
    assert np.allclose(j.marginal(["F"]), bn.get_cpds("F").values)


def test_elimination_q126():
    e = eliminate_check(random_cpds(network("1.2-bn"), seed=3), "C")
    assert e["max_abs_diff"] < 1e-12 and abs(e["dropped_sum"] - 1) < 1e-12
    e = eliminate_check(random_potentials(network("1.2-mn"), seed=3), "C")
    assert e["tau_is_constant"] and e["max_abs_diff"] < 1e-12
    assert e["Z_prime"] == pytest.approx(e["Z"] / e["constant"], rel=1e-12)


def test_scaling_q133():
    s = scale_check(random_potentials(network("1.3"), seed=4), ("G", "E"), 5.0)
    assert s["Z_ratio"] == pytest.approx(5.0, rel=1e-12) and s["max_abs_diff_P"] < 1e-12


def test_markov_marginals_are_normalised():
    from pgmpy.inference import VariableElimination
    mn = random_potentials(network("1.3"), seed=5)
    raw = VariableElimination(mn).query(["A"], show_progress=False).values
    assert abs(raw.sum() - 1) > 1e-3          # pgmpy leaves it unnormalised on MNs
    m = ve_marginal(mn, ["A", "G"])
    assert abs(m.sum() - 1) < 1e-12
    assert np.allclose(m, joint(mn).marginal(["A", "G"]))
