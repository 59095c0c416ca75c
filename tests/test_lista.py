"""ISTA / LISTA and sparsity metrics against independent truth."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from vae.lista import LISTA, fraction_zeros, hoyer_sparsity, ista, lasso_objective, soft_threshold


def _problem(seed=0, n=20, k=30, batch=4):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n, k, generator=g, dtype=torch.float64)
    D = D / D.norm(dim=0, keepdim=True)
    x = torch.randn(batch, n, generator=g, dtype=torch.float64)
    return x, D


def test_soft_threshold_by_hand():
    x = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.7, 2.5])
    assert soft_threshold(x, 0.5).tolist() == pytest.approx([-2.5, -0.5, 0.0, 0.0, 0.2, 2.0])


@pytest.mark.parametrize("alpha", [None, 0.01])
def test_lista_from_ista_reproduces_ista_iterates(alpha):
    x, D = _problem()
    lam, T = 0.1, 12
    lista = LISTA.from_ista(D, lam, alpha, n_steps=T)
    a = 1.0 / float(torch.linalg.matrix_norm(D, ord=2) ** 2) if alpha is None else alpha
    assert torch.allclose(lista.W1, a * D.t(), atol=1e-15)
    assert torch.allclose(lista.W2, torch.eye(30, dtype=torch.float64) - a * D.t() @ D, atol=1e-15)
    assert torch.allclose(lista.theta, torch.full((30,), a * lam, dtype=torch.float64), atol=1e-15)
    ref = ista(x, D, lam, n_steps=T, alpha=alpha, return_iterates=True)
    got = lista(x, return_iterates=True)
    assert len(got) == len(ref) == T
    for z_ref, z_got in zip(ref, got):
        assert torch.allclose(z_got, z_ref, rtol=1e-12, atol=1e-12)
    # the same zeros appear at every step (soft-thresholding is exact)
    assert torch.equal(got[-1] == 0, ref[-1] == 0)


def test_ista_converges_to_sklearn_lasso():
    x, D = _problem(seed=1, n=15, k=25, batch=3)
    lam = 0.05
    z = ista(x, D, lam, n_steps=20000)
    n = D.shape[0]
    for i in range(x.shape[0]):
        # sklearn minimises 1/(2 n) ||y - X w||^2 + a ||w||_1, so a = lam / n for our objective
        ref = Lasso(alpha=lam / n, fit_intercept=False, tol=1e-12, max_iter=200000).fit(D.numpy(), x[i].numpy())
        np.testing.assert_allclose(z[i].numpy(), ref.coef_, atol=1e-5)
        ours = float(lasso_objective(x[i : i + 1], D, z[i : i + 1], lam))
        theirs = float(lasso_objective(x[i : i + 1], D, torch.from_numpy(ref.coef_)[None], lam))
        assert ours <= theirs + 1e-9


def test_ista_on_orthogonal_dictionary_is_soft_thresholding():
    g = torch.Generator().manual_seed(2)
    Q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    x = torch.randn(5, 10, generator=g, dtype=torch.float64)
    lam = 0.4
    z = ista(x, Q, lam, n_steps=50)
    # with D^T D = I the lasso solution is soft_lam(D^T x), and ISTA with alpha = 1 hits it in one step
    expected = soft_threshold(x @ Q, lam)
    assert torch.allclose(z, expected, atol=1e-12)
    assert (expected == 0).any()


def test_lista_is_differentiable_and_learns():
    torch.manual_seed(0)
    x, D = _problem(seed=3, n=12, k=16, batch=64)
    x = x.float()
    target = ista(x, D.float(), 0.1, n_steps=500)
    lista = LISTA(12, 16, n_steps=3)
    opt = torch.optim.Adam(lista.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss = ((lista(x) - target) ** 2).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_hoyer_sparsity_hand_examples():
    z = torch.tensor(
        [
            [0.0, 0.0, 5.0, 0.0],  # one-hot: 1
            [2.0, -2.0, 2.0, 2.0],  # flat: 0
            [3.0, 4.0, 0.0, 0.0],  # l1 = 7, l2 = 5 -> (2 - 1.4) / 1 = 0.6
            [0.0, 0.0, 0.0, 0.0],  # all zero: defined as 1
        ]
    )
    assert hoyer_sparsity(z).tolist() == pytest.approx([1.0, 0.0, 0.6, 1.0])
    # 9 entries, two of them 1: l1/l2 = 2 / sqrt(2) = sqrt(2); (3 - sqrt 2) / 2
    v = torch.zeros(9)
    v[[1, 4]] = 1.0
    assert float(hoyer_sparsity(v)) == pytest.approx((3 - 2**0.5) / 2)
    with pytest.raises(ValueError):
        hoyer_sparsity(torch.ones(3, 1))


def test_fraction_zeros():
    assert fraction_zeros(torch.tensor([[0.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.75)
    assert fraction_zeros(torch.tensor([1e-9, 1.0]), atol=1e-6) == pytest.approx(0.5)
